// pmcstat end to end on a C program of known shape: sample it with
// `pmcstat -P cpu-clock -O log -- ./hotcold`, then check what `pmcstat -R
// log` makes of it in every output form. The expected share of `hot` comes
// from the loop counts given to the program; symbol sizes come from nm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildC, ok, pmcstat, tempDir } from './cli-fixture.js';

const dir = tempDir('sampling-callgraph-');
const prog = buildC(dir, 'sampling-hotcold.c', 'hotcold');
// About a second of CPU when nothing samples it; hot does three times cold's work.
const ROUNDS = 10;
const HOT = 150_000_000;
const COLD = 50_000_000;
const expectedHotShare = HOT / (HOT + COLD);

const log = join(dir, 'hotcold.pmclog');
const out = {
  callgraph: join(dir, 'callgraph.txt'),
  folded: join(dir, 'stacks.folded'),
  calltree: join(dir, 'callgrind.out'),
  pcs: join(dir, 'pcs.txt'),
  annotated: join(dir, 'chains.txt'),
  gmon: join(dir, 'gmon'),
};

/** nm's address and size of a function of the program. */
function symbol(name: string): { addr: bigint; size: bigint } {
  const line = execFileSync('nm', ['-S', '--defined-only', prog], { encoding: 'utf8' })
    .split('\n')
    .find((l) => l.endsWith(` ${name}`));
  assert.ok(line, `nm lists ${name}`);
  const [addr, size] = line.split(/\s+/);
  return { addr: BigInt(`0x${addr}`), size: BigInt(`0x${size}`) };
}

/**
 * Samples per leaf function of the program's process, from the folded stacks,
 * counting only stacks whose callers end in `callers` (e.g. "main;work").
 * A sample in a function's first instructions, before it has set up its frame,
 * unwinds to its caller's caller: such stacks skip a frame.
 */
function leafCounts(folded: string, callers = ''): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of folded.split('\n')) {
    const m = /^hotcold;(.*;)?(hot|cold) (\d+)$/.exec(line);
    if (m && (m[1] ?? '').endsWith(callers ? `${callers};` : '')) counts.set(m[2], (counts.get(m[2]) ?? 0) + Number(m[3]));
  }
  return counts;
}

const folded = (callers?: string): Map<string, number> => leafCounts(readFileSync(out.folded, 'utf8'), callers);

test('pmcstat -P cpu-clock -O records the program, and -R writes every output', () => {
  const run = ok(pmcstat(['-n', '100000', '-P', 'cpu-clock', '-O', log, '--', prog, `${ROUNDS}`, `${HOT}`, `${COLD}`], { cwd: dir }), 'pmcstat -P');
  assert.equal(run.status, 0);
  ok(
    pmcstat(['-R', log, '-G', out.callgraph, '--folded', out.folded, '-F', out.calltree, '-m', out.pcs, '-a', out.annotated, '-g', '-D', out.gmon], { cwd: dir }),
    'pmcstat -R',
  );
  for (const f of [out.callgraph, out.folded, out.calltree, out.pcs, out.annotated]) assert.ok(existsSync(f), `${f} written`);
});

test('--folded: main;work;hot carries hot\'s share of the loop work', (t) => {
  assert.ok((folded('main;work').get('hot') ?? 0) > 0, 'stacks hotcold;...;main;work;hot');
  const counts = folded();
  const hot = counts.get('hot') ?? 0;
  const cold = counts.get('cold') ?? 0;
  assert.ok(hot > 0 && cold > 0, `samples in hot (${hot}) and cold (${cold})`);
  const share = hot / (hot + cold);
  t.diagnostic(`hot ${hot}, cold ${cold}: ${(100 * share).toFixed(1)}%`);
  assert.ok(Math.abs(share - expectedHotShare) <= 0.05, `hot's share ${(100 * share).toFixed(1)}% (expected ${(100 * expectedHotShare).toFixed(1)}% +- 5 points)`);
});

test('-G: hot at the top level with work and main as its callers below', () => {
  const lines = readFileSync(out.callgraph, 'utf8').split('\n');
  assert.match(lines[0], /^@ cpu-clock \[\d+ samples\]$/);
  const at = lines.findIndex((l) => l.endsWith(` hot @ ${prog}`));
  assert.ok(at > 0, `a top-level entry for hot @ ${prog}`);
  const top = /^(\d+\.\d+%|100\.0%)\s+\[(\d+)\]\s+hot @ /.exec(lines[at]);
  assert.ok(top, `hot is a top-level line: ${lines[at]}`);
  assert.match(lines[at + 1], /^ \S+%\s+\[\d+\]\s+work$/);
  assert.match(lines[at + 2], /^ {2}\S+%\s+\[\d+\]\s+main$/);
  // The same samples as the folded stacks ending in hot.
  assert.equal(Number(top[2]), folded().get('hot'));
});

test('-F: the calltree has fn=hot, and work calls hot as often as hot was sampled under it', () => {
  const text = readFileSync(out.calltree, 'utf8');
  assert.match(text, /^fn=hot$/m);
  const block = text.split('\n\n').find((b) => b.includes('\nfn=work\n') && b.includes(`ob=${prog}`));
  assert.ok(block, 'a block for work in the program');
  const call = new RegExp(`cob=${prog.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\ncfl=.*\\ncfn=hot\\ncalls=(\\d+) `).exec(block);
  assert.ok(call, `work calls hot:\n${block}`);
  assert.equal(Number(call[1]), folded('work').get('hot'));
});

test('-m: every sample in hot lists hot with its address range, as long as nm says hot is', () => {
  const { addr, size } = symbol('hot');
  const lines = readFileSync(out.pcs, 'utf8').split('\n').filter((l) => / hot /.test(l));
  assert.equal(lines.length, folded().get('hot'));
  for (const l of lines.slice(0, 200)) {
    const [pc, name, start, end] = l.split(' ');
    assert.equal(name, 'hot');
    const [p, s, e] = [BigInt(pc), BigInt(start), BigInt(end)];
    assert.equal(e - s, size, l);
    // A PIE moves by whole pages: the offset in the page stays nm's.
    assert.equal(s & 0xfffn, addr & 0xfffn, l);
    assert.ok(p >= s && p < e, l);
  }
});

test('-a: call chains list hot, then work, then main, in the program', () => {
  const groups = readFileSync(out.annotated, 'utf8').split('--\n');
  const chain = groups.find((g) => / hot /.test(g.split('\n')[0]));
  assert.ok(chain, 'a chain sampled in hot');
  const frames = chain.split('\n').filter(Boolean).map((l) => l.split(' '));
  assert.deepEqual(
    frames.slice(0, 3).map((f) => [f[1], f[2]]),
    [
      ['hot', prog],
      ['work', prog],
      ['main', prog],
    ],
  );
});

test('-g -D: a gmon file for the program, which gprof reads', (t) => {
  const gmons = readdirSync(out.gmon, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('hotcold.gmon'));
  assert.equal(gmons.length, 1, `gmon files: ${readdirSync(out.gmon, { recursive: true }).join(', ')}`);
  if (spawnSync('gprof', ['--version']).status !== 0) {
    t.skip('gprof is not installed');
    return;
  }
  const flat = execFileSync('gprof', ['-b', '-p', prog, join(out.gmon, gmons[0])], { encoding: 'utf8' });
  const pct = (fn: string): number => Number(new RegExp(`^\\s*([\\d.]+)\\s.*\\s${fn}$`, 'm').exec(flat)?.[1]);
  assert.ok(pct('hot') > pct('cold'), `gprof's flat profile has hot above cold:\n${flat}`);
});
