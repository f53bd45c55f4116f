// Top mode (pmcstat -T) as a person sees it: in a real terminal (tmux), on
// a command (-P ... -- command) and on the whole system (-S), the hottest
// function first, keys that switch the PMC, the call chains and the
// per-process view, and q that ends everything. Into a pipe: plain text
// refreshes; with -R: a log's top view.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildC, ok, PMCSTAT, pmcstat, tempDir } from './cli-fixture.js';
import { noTmux, Terminal } from './tmux-fixture.js';

const dir = tempDir('visual-top-');
const env = { TSPMC_ADMIN_STATE: join(dir, 'admin.json'), TSPMC_CACHE_DIR: '' };
const prog = buildC(dir, 'sampling-hotcold.c', 'hotcold');
/** Runs long enough to be quit (about 15 s of CPU); hot has three quarters of it. */
const LONG = ['100', '150000000', '50000000'];

/** The table's rows: [%self, %total, process, image, function]. */
function rows(screen: string): string[][] {
  const lines = screen.split('\n');
  const head = lines.findIndex((l) => /%SELF\s+%TOTAL\s+PROCESS\s+IMAGE\s+FUNCTION/.test(l));
  return lines
    .slice(head + 1)
    .filter((l) => /^\s+\d+\.\d\d\s+\d+\.\d\d\s/.test(l))
    .map((l) => l.trim().split(/\s+/));
}

/** Processes still running `path`. */
function running(path: string): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0')[0] === path) pids.push(Number(d));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

test('-T on a command in a terminal: hot first, keys change the view, q quits and ends the command', { skip: noTmux }, async (t) => {
  const term = new Terminal([process.execPath, PMCSTAT, '-T', '-w', '0.3', '-n', '100000', '-P', 'cpu-clock', '-P', 'page-faults', '--', prog, ...LONG], dir, { width: 160, height: 40, env });
  t.after(() => term.close());
  // Enough samples for the shares to settle.
  let screen = await term.waitFor((s) => Number(/· ([\d,]+) samples/.exec(s)?.[1].replaceAll(',', '') ?? 0) >= 1000, '1,000 samples');
  screen = await term.waitFor((s) => rows(s)[0]?.[4] === 'hot', 'hot on the first row');
  assert.match(screen, /pmcstat top · PMC 1\/2: cpu-clock \(100,000 ns per sample\) · [\d,]+ samples since the start · 0 dropped · 0 lost/);
  assert.match(screen, /keys: p next PMC/);
  const [self, total, proc, image] = rows(screen)[0];
  assert.ok(Number(self) > 50 && Number(total) >= Number(self), screen);
  assert.equal(proc, 'hotcold');
  assert.equal(image, 'hotcold');
  // Call chains are on: hot's caller chain under it.
  assert.match(screen, /^\s+← work ← main/m);
  term.send('c');
  screen = await term.waitFor((s) => /call chains \(off\)/.test(s), 'call chains off');
  assert.doesNotMatch(screen, /← work/);
  term.send('P');
  await term.waitFor((s) => /per process \(on\)/.test(s), 'per-process view');
  term.send('p');
  screen = await term.waitFor((s) => /PMC 2\/2: page-faults/.test(s), 'the second PMC');
  term.send('d');
  await term.waitFor((s) => /samples since the last refresh/.test(s), 'the delta view');
  term.send('Space');
  await term.waitFor((s) => /PAUSED/.test(s), 'paused');
  term.send('q');
  screen = await term.waitFor(() => term.exited(), 'pmcstat to exit');
  assert.equal(term.exitStatus(), 0, screen);
  assert.deepEqual(running(prog), [], 'the command ended with pmcstat');
  // The last view stays on the terminal as text.
  assert.match(screen, /%SELF\s+%TOTAL\s+PROCESS\s+IMAGE\s+FUNCTION/);
});

test('-T -S in a terminal: the whole system, the busy program among the processes, q quits', { skip: noTmux }, async (t) => {
  const busy = spawn(prog, LONG, { stdio: 'ignore' });
  t.after(() => busy.kill('SIGKILL'));
  const term = new Terminal([process.execPath, PMCSTAT, '-T', '-w', '0.3', '-n', '1000000', '-S', 'cpu-clock'], dir, { width: 160, height: 40, env });
  t.after(() => term.close());
  const screen = await term.waitFor((s) => rows(s).some((r) => r[2] === 'hotcold' && r[4] === 'hot'), 'hot of hotcold in the system view');
  assert.match(screen, /PMC 1\/1: cpu-clock \(1,000,000 ns per sample\)/);
  term.send('q');
  await term.waitFor(() => term.exited(), 'pmcstat to exit');
  assert.equal(term.exitStatus(), 0);
  assert.equal(busy.exitCode, null, 'a system-wide top leaves other programs alone');
});

test('-T into a pipe: plain refreshes, the last one when the command ends; -T -R: a log\'s view', () => {
  const log = join(dir, 'top.pmclog');
  const r = ok(pmcstat(['-T', '-w', '0.2', '-n', '100000', '-P', 'cpu-clock', '-O', log, '--', prog, '4', '150000000', '50000000'], { env }), 'pmcstat -T | cat');
  const views = r.stdout.split(/^(?=pmcstat top)/m).filter((v) => v.startsWith('pmcstat top'));
  assert.ok(views.length >= 2, r.stdout.slice(0, 2000));
  assert.doesNotMatch(r.stdout, /\x1b\[/, 'no terminal control sequences');
  const last = views[views.length - 1];
  assert.equal(rows(last)[0][4], 'hot', last);
  assert.equal(rows(last)[1][4], 'cold', last);
  const replay = ok(pmcstat(['-T', '-R', log], { env }), 'pmcstat -T -R').stdout;
  assert.deepEqual(rows(replay).slice(0, 2).map((x) => x[4]), ['hot', 'cold']);
  assert.equal(/· ([\d,]+) samples/.exec(replay)?.[1], /· ([\d,]+) samples/.exec(last)?.[1], 'the replay counts what the last refresh showed');
  // -f threshold=10: only functions with 10% of the samples or more.
  const few = ok(pmcstat(['-T', '-f', 'threshold=10', '-R', log], { env }), 'pmcstat -T -f threshold=10 -R').stdout;
  assert.deepEqual(rows(few).map((x) => x[4]), ['hot', 'cold']);
  // The chain above hot runs through libc's start code, which has no symbol
  // (image+0xoffset) in a stripped libc; skiplink=1 leaves such frames out.
  const chainOf = (view: string): string => view.split('\n')[view.split('\n').findIndex((l) => /\shot$/.test(l)) + 1].trim();
  assert.match(chainOf(replay), /^← work ← main\b/);
  const linked = ok(pmcstat(['-T', '-f', 'skiplink=1', '-R', log], { env }), 'pmcstat -T -f skiplink=1 -R').stdout;
  assert.match(chainOf(linked), /^← work ← main\b/);
  assert.doesNotMatch(chainOf(linked), /\+0x[0-9a-f]+/);
  assert.equal(chainOf(linked).split(' ← ').length, chainOf(replay).split(' ← ').length - (chainOf(replay).match(/\S+\+0x[0-9a-f]+/g) ?? []).length);
});

test('-T without a sampling PMC is refused', () => {
  const r = pmcstat(['-T', '-p', 'task-clock', '--', 'true'], { env });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /option -T needs a sampling PMC/);
});
