// Counting output for people: pmcstat counting a program in a real terminal
// (tmux) ends with a summary whose digits are grouped and whose derived
// figures agree with the counts it prints; the same run into a pipe keeps
// pmcstat's rows. IPC needs hardware counters this machine may not have, so
// its formula is checked on given values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { formatSummary, groupThousands, type CountColumn } from '../src/cli/count-output.js';
import { buildC, ok, PMCSTAT, pmcstat, tempDir } from './cli-fixture.js';
import { noTmux, Terminal } from './tmux-fixture.js';

const dir = tempDir('visual-count-');
const env = { TSPMC_ADMIN_STATE: join(dir, 'admin.json') };
const prog = buildC(dir, 'sampling-hotcold.c', 'hotcold');
// Over a second of CPU, so task-clock passes 1,000 msec.
const workload = [prog, '16', '150000000', '50000000'];

test('in a terminal: grouped digits, CPUs utilised and rates that agree with the counts, elapsed time', { skip: noTmux }, async (t) => {
  const term = new Terminal([process.execPath, PMCSTAT, '-p', 'task-clock', '-p', 'page-faults', '-p', 'context-switches', '--', ...workload], dir, { width: 140, env });
  t.after(() => term.close());
  const screen = await term.waitFor((s) => /seconds elapsed/.test(s), 'the summary');
  assert.equal(term.exitStatus(), 0, screen);
  assert.match(screen, new RegExp(`pmcstat: counts for ${prog.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} 16 150000000 50000000 \\(exit status 0\\):`));
  const taskClock = /^\s+([\d,]+\.\d\d) msec\s+task-clock\s+#\s+([\d.]+) CPUs utilised$/m.exec(screen);
  assert.ok(taskClock, screen);
  assert.match(taskClock[1], /^\d{1,3}(,\d{3})+\.\d\d$/, 'milliseconds grouped by thousands');
  const ms = Number(taskClock[1].replaceAll(',', ''));
  const elapsed = Number(/^\s+([\d.]+) seconds elapsed$/m.exec(screen)![1]);
  assert.ok(Math.abs(ms / 1000 / elapsed - Number(taskClock[2])) <= 0.011, `CPUs utilised = ${ms} ms / ${elapsed} s`);
  const faults = /^\s+([\d,]+)\s+page-faults\s+#\s+([\d.]+)( K)?\/sec on CPU$/m.exec(screen);
  assert.ok(faults, screen);
  const rate = Number(faults[2]) * (faults[3] ? 1000 : 1);
  const expected = Number(faults[1].replaceAll(',', '')) / (ms / 1000);
  assert.ok(Math.abs(rate - expected) <= (faults[3] ? 10 : 0.01) + 0.002 * expected, `faults per second on CPU: ${rate} vs ${expected}`);
  assert.match(screen, /^\s+[\d,]+\s+context-switches\s+#\s+[\d.]+( K)?\/sec on CPU$/m);
});

test('into a pipe: pmcstat\'s header and row, digits not grouped', () => {
  const r = ok(pmcstat(['-p', 'task-clock', '-p', 'page-faults', '--', prog, '1', '1000', '1000'], { env }), 'pmcstat -p');
  const lines = r.stderr.trim().split('\n');
  assert.match(lines[0], /^# +p\/task-clock +p\/page-faults$/);
  assert.match(lines[1], /^ +\d+ +\d+$/);
  assert.doesNotMatch(r.stderr, /elapsed|,/);
});

test('summary figures: instructions per cycle, system PMCs per elapsed second, clocks in milliseconds', () => {
  const col = (event: string, mode: 'TC' | 'SC' = 'TC', cpu?: number): CountColumn => ({ event, mode, cpu, cumulative: false, saved: 0n });
  const text = formatSummary(
    [col('instructions'), col('cycles'), col('page-faults'), col('cpu-clock', 'SC', 0), col('context-switches', 'SC', 0)],
    [3_000_000_000n, 2_000_000_000n, 12_345n, 2_000_000_000n, 500n],
    2_000_000_000n,
    'the system',
  );
  assert.match(text, /^\s+3,000,000,000\s+instructions\s+#\s+1\.50 instructions per cycle$/m);
  assert.match(text, /^\s+12,345\s+page-faults\s+#\s+6\.17 K\/sec$/m, 'no task-clock: per elapsed second');
  assert.match(text, /^\s+2,000\.00 msec\s+cpu-clock \(CPU 0\)$/m);
  assert.match(text, /^\s+500\s+context-switches \(CPU 0\)\s+#\s+250\.00\/sec$/m);
  assert.match(text, /^\s+2\.000 seconds elapsed$/m);
  assert.equal(groupThousands(18446744073709551615n), '18,446,744,073,709,551,615');
  assert.equal(groupThousands('1234.50'), '1,234.50');
});
