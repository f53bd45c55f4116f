// pmcstat(8)'s other options: -L and -u describe what can be measured, -I
// puts sampled addresses at the top of each chain, -r finds executables
// under another root, -q and -v set how much is said, -f takes top mode's
// options; the options that make no sense here are refused with why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, renameSync, statSync, truncateSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { buildC, ok, pmcstat, tempDir } from './cli-fixture.js';

// The analysis caches parsed kallsyms: not in the user's cache directory.
process.env.TSPMC_CACHE_DIR = '';

const dir = tempDir('visual-options-');
const env = { TSPMC_ADMIN_STATE: join(dir, 'admin.json') };
const prog = buildC(dir, 'sampling-hotcold.c', 'hotcold');
const log = join(dir, 'hotcold.pmclog');
ok(pmcstat(['-n', '100000', '-P', 'cpu-clock', '-O', log, '--', prog, '2', '150000000', '50000000'], { env }), 'pmcstat -P');

test('-L lists the events of each class; -u describes one event, or lists the names containing it', () => {
  const list = ok(pmcstat(['-L'], { env }), 'pmcstat -L').stdout;
  assert.match(list, /^SOFT\n(\t.+\n)*\tcpu-clock\n/m);
  assert.match(list, /^\tpage-faults$/m);
  const one = ok(pmcstat(['-u', 'page-faults,usr'], { env }), 'pmcstat -u').stdout;
  assert.match(one, /^page-faults: class SOFT, event code 0x2\n {2}counting and sampling; class capabilities: .*INTERRUPT/);
  const some = ok(pmcstat(['-u', 'sched_swi'], { env }), 'pmcstat -u partial');
  assert.match(some.stdout, /names no event \(ENOENT\); events whose names contain it:\n\tTRACEPOINT\tsched:sched_switch\n/);
  const none = pmcstat(['-u', 'no-such-event-at-all'], { env });
  assert.equal(none.status, 1);
  assert.match(none.stderr, /no-such-event-at-all.*ENOENT/);
});

test('the options that do not fit are refused, each with its reason', () => {
  for (const [opt, why] of [
    ['-e', /GNU gprof reads only the 16-bit counters/],
    ['-Z', /gives it no meaning/],
    ['-A', /fork of FreeBSD only/],
    ['-b', /never multiplexes/],
  ] as const) {
    const r = pmcstat([opt, '-R', log], { env });
    assert.equal(r.status, 2, opt);
    assert.match(r.stderr, new RegExp(`^pmcstat: option ${opt} .*is not supported: `), opt);
    assert.match(r.stderr, why, opt);
  }
  const bad = pmcstat(['-f', 'speed=3', '-R', log], { env });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /option -f: "speed=3" is not threshold=<percent> or skiplink=0\|1/);
});

test('-I: the sampled PCs, inside hot, head the call graph in place of hot, each in its image', () => {
  const nm = execFileSync('nm', ['-S', prog], { encoding: 'utf8' });
  const [addr, size] = / T hot$/m.test(nm) ? nm.split('\n').find((l) => l.endsWith(' T hot'))!.split(' ') : [];
  const graph = ok(pmcstat(['-I', '-R', log, '-G', '-'], { env }), 'pmcstat -I').stdout;
  const tops = graph.split('\n').filter((l) => /^\d/.test(l));
  assert.ok(!tops.some((l) => / hot @/.test(l)), 'no function at the top');
  // A PIE moves by whole pages: the offset in the page tells where in hot a PC is.
  const start = parseInt(addr, 16);
  const inHot = tops.filter((l) => {
    const m = / 0x([0-9a-f]+) @/.exec(l);
    if (!m) return false;
    const page = parseInt(m[1], 16) % 4096;
    const lo = start % 4096;
    return page >= lo && page < lo + parseInt(size, 16);
  });
  assert.ok(inHot.length > 0, graph.slice(0, 800));
  for (const l of inHot) assert.ok(l.endsWith(` @ ${prog}`), l);
  // Every PC of this run lies in an image: the executable, a library, the kernel (resolved after the log is read).
  for (const l of tops) assert.match(l, / 0x[0-9a-f]+ @ (?!\[unknown\])\S+$/, l);
  for (const l of tops.filter((t) => / 0xffff/.test(t))) assert.match(l, / @ \[(?!unknown\])[\w.]+\]$/, l);
  // Under each sampled address: its caller, work.
  const at = graph.split('\n').indexOf(inHot[0]);
  assert.match(graph.split('\n')[at + 1], /\swork( @|$)/);
});

test('-r: executables are found under another root', () => {
  const root = join(dir, 'root');
  mkdirSync(join(root, dirname(prog)), { recursive: true });
  copyFileSync(prog, join(root, prog));
  const moved = `${prog}.moved`;
  renameSync(prog, moved);
  try {
    const without = ok(pmcstat(['-R', log, '--folded', '-'], { env }), 'pmcstat -R').stdout;
    assert.doesNotMatch(without, /;work;hot /);
    const withRoot = ok(pmcstat(['-r', root, '-R', log, '--folded', '-'], { env }), 'pmcstat -r -R').stdout;
    assert.match(withRoot, /;main;work;hot \d+$/m);
  } finally {
    renameSync(moved, prog);
  }
});

test('-q says only what was asked for; -v adds the conversion statistics', () => {
  const cut = join(dir, 'cut.pmclog');
  copyFileSync(log, cut);
  // Without its last record, the CLOSELOG: a log cut short, which the analysis warns about.
  truncateSync(cut, statSync(cut).size - 16);
  const loud = pmcstat(['-R', cut, '-G', '/dev/null'], { env });
  assert.match(loud.stderr, /WARNING: .*cut short/);
  const quiet = pmcstat(['-q', '-R', cut, '-G', '/dev/null'], { env });
  assert.doesNotMatch(quiet.stderr, /WARNING/);
  const verbose = ok(pmcstat(['-v', '-R', log, '-G', '/dev/null'], { env }), 'pmcstat -v');
  assert.match(verbose.stderr, /^CONVERSION STATISTICS:\n/);
});
