// Counting sets in perf groups (md/counter-group.ts) against the same
// counters opened alone, on a process that starts threads and forks
// children that start threads: every software event and tracepoint counts
// exactly the same events grouped and alone, read one by one or with one
// read per group, with and without descendants.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import type { Inheritance } from '../src/md/class-dep.js';
import { CountingSet } from '../src/md/counting-set.js';
import { PerfType, type PerfEventAttr } from '../src/md/perf-attr.js';
import { locateTracefs, tracepointId } from '../src/md/tracefs.js';
import { CountWorkload, useCountWorkload } from './count-workload-fixture.js';

useCountWorkload('tspmc-md-group-');

const software = (config: bigint): PerfEventAttr => ({ type: PerfType.SOFTWARE, config });
const TASK_CLOCK = software(1n);
const PAGE_FAULTS = software(2n);
const CONTEXT_SWITCHES = software(3n);
const MINOR_FAULTS = software(5n);

/** sched:sched_process_fork, counted in the task that forks (a thread's creation is a fork too), or why not. */
function forkTracepoint(): PerfEventAttr | string {
  const tracefs = locateTracefs();
  if (!('root' in tracefs)) return tracefs.reason;
  const id = tracepointId(tracefs.root, 'sched', 'sched_process_fork');
  return id === undefined ? 'no sched:sched_process_fork tracepoint' : { type: PerfType.TRACEPOINT, config: BigInt(id) };
}

/**
 * Resolves once `pid` sleeps and stays asleep (state S, the same count of
 * voluntary switches 20 ms apart): the workload blocked reading stdin after
 * "done" has switched out for the last time, so stopping one set after the
 * other cannot put a switch-out between them.
 */
async function settled(pid: number): Promise<void> {
  const look = (): string => {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    return `${/^State:\s+(\S)/m.exec(status)?.[1]} ${/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1]}`;
  };
  for (let i = 0; i < 500; i++) {
    const before = look();
    await sleep(20);
    if (before.startsWith('S') && look() === before) return;
  }
  throw new Error(`process ${pid} did not settle asleep in 10 s`);
}

/** User and system CPU time of `pid` in clock ticks. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** Polls `f` every 10 ms; a hang guard of 10 s. */
async function until(f: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (f()) return;
    await sleep(10);
  }
  throw new Error(`waited 10 s for ${what}`);
}

/** Opens every attr on `pid` twice: grouped in one owner's scope, and alone. */
function openBoth(attrs: PerfEventAttr[], pid: number, inheritance: Inheritance): { grouped: CountingSet[]; alone: CountingSet[] } {
  const scope = {};
  const grouped = attrs.map((a) => CountingSet.forProcess(a, pid, inheritance, false, scope));
  const alone = attrs.map((a) => CountingSet.forProcess(a, pid, inheritance));
  return { grouped, alone };
}

for (const inheritance of ['descendants', 'threads'] as const) {
  test(`grouped counters count what the same counters alone count: 3 children with 3 threads each, ${inheritance}`, async (t) => {
    const tp = forkTracepoint();
    if (typeof tp === 'string') t.diagnostic(`tracepoint not counted: ${tp}`);
    const attrs = [CONTEXT_SWITCHES, PAGE_FAULTS, MINOR_FAULTS, TASK_CLOCK, ...(typeof tp === 'string' ? [] : [tp])];
    const w = await CountWorkload.start('tree', '3', '30');
    const { grouped, alone } = openBoth(attrs, w.pid, inheritance);
    try {
      // One leader for the three software events, one each for task-clock and the tracepoint, on the one thread.
      const fds = (sets: CountingSet[]): number => sets.reduce((n, s) => n + s.fdCount, 0);
      assert.equal(fds(grouped) - fds(alone), attrs.length - 2, 'leaders');
      for (const s of [...grouped, ...alone]) s.start();
      await w.go();
      await settled(w.pid);
      for (const s of [...grouped, ...alone]) s.stop();
      const batch = grouped.map((s) => s.read(1));
      const single = grouped.map((s) => s.read());
      const reference = alone.map((s) => s.read());
      assert.deepEqual(batch, single, 'one read per group = one read per counter');
      for (const [i, name] of ['context-switches', 'page-faults', 'minor-faults'].entries()) {
        assert.equal(batch[i], reference[i], `${name}: grouped ${batch[i]}, alone ${reference[i]}`);
      }
      // 64 fresh pages per thread: 12 threads below the target with descendants, its own 3 without.
      const threads = inheritance === 'descendants' ? 12 : 3;
      assert.ok(batch[1]! >= BigInt(64 * threads), `page-faults ${batch[1]} for ${threads} threads of 64 pages`);
      // Grouped and alone are separate counters switched in one after the other: their clocks differ by a little.
      const [g, a] = [Number(batch[3]), Number(reference[3])];
      assert.ok(Math.abs(g - a) <= 0.01 * a, `task-clock grouped ${g} ns, alone ${a} ns`);
      // A thread's CPU clock also runs in its exit path after perf's exit hook, which task-clock does not see.
      assert.ok(g >= 0.9 * threads * 30e6, `task-clock ${g} ns for ${threads} threads of 30 ms`);
      if (typeof tp !== 'string') {
        // Forks by the target: 3 children + 3 threads; with descendants also each child's 3 threads.
        const forks = inheritance === 'descendants' ? 15n : 6n;
        assert.equal(batch[4], forks, 'sched_process_fork grouped');
        assert.equal(reference[4], forks, 'sched_process_fork alone');
      }
    } finally {
      for (const s of [...grouped, ...alone]) s.close();
      await w.finish();
    }
  });
}

test('a stopped member keeps its value while the rest of its group counts; a closed one leaves it counting', async () => {
  const w = await CountWorkload.start('tree', '2', '20');
  const scope = {};
  const [cs, faults, minor] = [CONTEXT_SWITCHES, PAGE_FAULTS, MINOR_FAULTS].map((a) => CountingSet.forProcess(a, w.pid, 'threads', false, scope)) as [CountingSet, CountingSet, CountingSet];
  try {
    cs.start();
    faults.start();
    minor.start();
    minor.stop();
    const frozen = minor.read(1);
    cs.close();
    await w.go();
    faults.stop();
    assert.equal(minor.read(2), frozen, 'a stopped member reads what it had at its stop');
    assert.ok(faults.read(2) >= 64n * 2n, `the member left running counted ${faults.read(2)} faults of 2 threads x 64 pages`);
    assert.equal(faults.read(2), faults.read(), 'one read per group = one read per counter');
    assert.equal(cs.fdCount, 0);
    // Two members and their leader, and each set's event no new thread inherits (counting-set.ts).
    assert.equal(faults.fdCount + minor.fdCount, 5, 'two members, their leader, two uncopied events');
  } finally {
    for (const s of [cs, faults, minor]) s.close();
    await w.finish();
  }
  assert.equal(faults.fdCount + minor.fdCount, 0, 'the last member closed the leader');
});

test('a member started while its thread runs counts from then on, whatever its PMU (enabled == running)', async () => {
  const tp = forkTracepoint();
  const attrs = [TASK_CLOCK, software(0n), CONTEXT_SWITCHES, PAGE_FAULTS, ...(typeof tp === 'string' ? [] : [tp])];
  const w = await CountWorkload.start('spin', '1000');
  const done = w.go();
  const scope = {};
  const sets = attrs.map((a) => CountingSet.forProcess(a, w.pid, 'threads', false, scope));
  try {
    // Started once the workload spins: it is on a CPU at the enable, most likely.
    await until(() => cpuTicks(w.pid) >= 2, 'the workload to spin');
    for (const s of sets) s.start();
    // readValue refuses a counter that ran less than it was enabled (EBUSY): a member whose group was not rescheduled when it was enabled.
    await until(() => sets[0]!.read() > 20_000_000n, 'task-clock to count 20 ms');
    const values = sets.map((s) => s.read());
    const batch = sets.map((s) => s.read(7));
    batch.forEach((v, i) => assert.ok(v >= values[i]!, `set ${i}: a group read ${v} after a single read ${values[i]}`));
  } finally {
    await done;
    for (const s of sets) s.close();
    await w.finish();
  }
});
