// Attaching to a running process that creates threads meanwhile (pmcstat
// -t): no thread may count twice, none may be missed. The reference is the
// process's own CPU time (utime + stime, read by the process itself with
// CLOCK_PROCESS_CPUTIME_ID, to the ns) over the same interval: from just
// after the PMC starts to its end.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Libpmc } from '../src/lib/libpmc.js';
import { tempDir } from './cli-fixture.js';
import { buildWorkload, killAll, Workload } from './proc-fixture.js';

let dir = '';
let workload = '';

before(() => {
  dir = tempDir('proc-threads-');
  workload = buildWorkload(dir);
  process.env.TSPMC_ADMIN_STATE = join(dir, 'admin.json');
  process.env.TSPMC_LOCAL = '1';
});

after(() => {
  killAll();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * Attaches task-clock to the workload as soon as it is ready (or prints
 * `when`): it is creating threads by then. A line on its stdin right after
 * the start has it print its CPU time (threads: and stop creating). Compares the count with the process's CPU
 * time over the same interval once it prints "done".
 */
async function countAgainstCpuTime(args: string[], when?: string): Promise<{ count: number; cpu: number; attachMs: number }> {
  const w = Workload.start(workload, args);
  const pid = await w.ready();
  if (when) await w.lines.expect(when);
  const lib = await Libpmc.init();
  try {
    const id = await lib.allocate('task-clock', 'TC');
    const t0 = process.hrtime.bigint();
    await lib.attach(id, pid);
    const attachMs = Number(process.hrtime.bigint() - t0) / 1e6;
    await lib.start(id);
    w.go();
    const cpu0 = Number((await w.lines.expect('cpu'))[0]);
    const cpu1 = Number((await w.lines.expect('done'))[0]);
    const count = Number(await lib.read(id));
    return { count, cpu: cpu1 - cpu0, attachMs };
  } finally {
    await lib.close();
    w.finish();
    await w.exited;
  }
}

function assertWithin(r: { count: number; cpu: number }, bound: number, what: string): void {
  const slack = bound * r.cpu;
  assert.ok(Math.abs(r.count - r.cpu) <= slack, `${what}: task-clock ${r.count} ns, utime+stime ${r.cpu} ns over the same interval (±${slack.toFixed(0)})`);
}

test('-t on a process that starts spinning threads while 1,000 idle ones make the attach long: no thread counts twice', async (t) => {
  // A spinner every millisecond (up to 100) until the attach is done, each spinning until the end:
  // a thread counted twice shows for its whole life.
  const r = await countAgainstCpuTime(['threads', '1000', '1000', '100'], 'creating');
  t.diagnostic(`attach took ${r.attachMs.toFixed(1)} ms; task-clock ${(r.count / 1e6).toFixed(1)} ms, utime+stime ${(r.cpu / 1e6).toFixed(1)} ms (ratio ${(r.count / r.cpu).toFixed(4)})`);
  assertWithin(r, 0.03, 'spinners created during the attach');
});

test('-t on a process creating a short-lived thread every millisecond: task-clock within 3% of its utime+stime', async (t) => {
  // Each thread burns 1 ms of CPU and exits; threads are created for 2 s, the attach among them.
  const r = await countAgainstCpuTime(['churn', '1000', '1000', '2000']);
  t.diagnostic(`attach took ${r.attachMs.toFixed(1)} ms; task-clock ${(r.count / 1e6).toFixed(1)} ms, utime+stime ${(r.cpu / 1e6).toFixed(1)} ms (ratio ${(r.count / r.cpu).toFixed(4)})`);
  assertWithin(r, 0.03, 'a thread every millisecond');
});
