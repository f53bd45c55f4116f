// PMCREADMANY (Libpmc.readMany): several PMCs of one owner read in one op,
// counting PMCs on the same thread read with one read(2) of their perf
// group. Each PMC keeps hwpmc's life cycle: the values agree with PMCRW's,
// a stopped PMC keeps its value while the others of its group count, a
// released one leaves them counting, and errors are PMCRW's.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Libpmc } from '../src/lib/libpmc.js';
import { LocalModuleClient } from '../src/lib/module-client.js';
import { onlineCpus } from '../src/os/cpus.js';
import { isPmcError } from '../src/pmc-error.js';
import { CountWorkload, useCountWorkload } from './count-workload-fixture.js';

useCountWorkload('tspmc-group-read-');

/** A tracepoint this machine lets us count, or undefined (tracefs missing or not readable). */
async function tracepoint(lib: Libpmc): Promise<string | undefined> {
  const spec = 'sched:sched_process_fork';
  return lib.allocate(spec, 'TC').then(
    async (id) => (await lib.release(id), spec),
    () => undefined,
  );
}

test('readMany gives what PMCRW gives, running and stopped: software events, tracepoints, process and system PMCs together', async (t) => {
  const client = new LocalModuleClient();
  const lib = await Libpmc.init(client);
  const w = await CountWorkload.start('tree', '2', '40');
  try {
    const tp = await tracepoint(lib);
    if (!tp) t.diagnostic('no tracepoint counted: tracefs is missing or not readable');
    const specs = ['context-switches', 'page-faults', 'task-clock', 'minor-faults', ...(tp ? [tp] : [])];
    const ids = [];
    for (const spec of specs) {
      const id = await lib.allocate(spec, 'TC', { descendants: true });
      await lib.attach(id, w.pid);
      ids.push(id);
    }
    // System PMCs on one CPU: the two software events share a group there.
    for (const spec of ['cpu-clock', 'context-switches', 'page-faults']) ids.push(await lib.allocate(spec, 'SC', { cpu: onlineCpus()[0] }));
    for (const id of ids) await lib.start(id);
    const calls = (await lib.driverStats()).syscalls;
    const before = await lib.readMany(ids);
    assert.equal((await lib.driverStats()).syscalls, calls + 2, 'one op (and this GETDRIVERSTATS)');
    const running = lib.readMany(ids);
    await w.go();
    const during = await running;
    const after = await Promise.all(ids.map((id) => lib.read(id)));
    for (const [i, id] of ids.entries()) {
      assert.ok(before[i]! <= during[i]! && during[i]! <= after[i]!, `PMC 0x${id.toString(16)}: ${before[i]} <= ${during[i]} <= ${after[i]}`);
    }
    for (const id of ids) await lib.stop(id);
    const stopped = await lib.readMany(ids);
    assert.deepEqual(stopped, await Promise.all(ids.map((id) => lib.read(id))), 'stopped: the same values as PMCRW');
    assert.ok(stopped[1]! >= 64n * 6n, `page-faults ${stopped[1]} for 6 threads of 64 pages`);
    // A thread's CPU clock also runs in its exit path after perf's exit hook, which task-clock does not see.
    assert.ok(stopped[2]! >= BigInt(0.9 * 6 * 40e6), `task-clock ${stopped[2]} ns for 6 threads of 40 ms`);
    if (tp) assert.equal(stopped[4], 2n + 2n + 2n * 2n, 'forks: 2 children, 2 threads, 2 threads in each child');
    assert.deepEqual(await lib.readMany([ids[1]!, ids[1]!]), [stopped[1], stopped[1]], 'an id twice');
    assert.deepEqual(await lib.readMany([]), []);
  } finally {
    await lib.close();
    await w.finish();
  }
  assert.equal(client.module.openFdCount, 0, 'leaders closed with their members');
});

test('a stopped PMC of a group keeps its value while the others count; a released one leaves them counting', async () => {
  const lib = await Libpmc.init(new LocalModuleClient());
  const w = await CountWorkload.start('tree', '2', '20');
  try {
    const [faults, minor, cs] = [await lib.allocate('page-faults', 'TC'), await lib.allocate('minor-faults', 'TC'), await lib.allocate('context-switches', 'TC')];
    for (const id of [faults, minor, cs]) {
      await lib.attach(id, w.pid);
      await lib.start(id);
    }
    await lib.stop(minor);
    const [frozen] = await lib.readMany([minor]);
    await lib.release(cs);
    await w.go();
    const [f, m] = await lib.readMany([faults, minor]);
    assert.equal(m, frozen, 'the stopped PMC reads what it had at its stop');
    assert.ok(f! >= 64n * 2n, `the running PMC counted ${f} faults for 2 threads of 64 pages`);
    await lib.stop(faults);
    assert.deepEqual(await lib.readMany([faults, minor]), [await lib.read(faults), frozen]);
    await assert.rejects(lib.readMany([faults, cs]), (e) => isPmcError(e, 'EINVAL') && /no PMC with id/.test((e as Error).message), 'a released PMC');
  } finally {
    await lib.close();
    await w.finish();
  }
});

test('readMany fails as PMCRW does, with typed errors', async () => {
  const client = new LocalModuleClient();
  const lib = await Libpmc.init(client);
  try {
    await assert.rejects(lib.readMany([0x1234]), (e) => isPmcError(e, 'ESRCH'), 'an owner without PMCs');
    const id = await lib.allocate('page-faults', 'TC');
    await assert.rejects(lib.readMany([id, 0x1234]), (e) => isPmcError(e, 'EINVAL') && /0x1234/.test((e as Error).message));
    // Never attached nor started: PMCRW reads its initial value, 0.
    assert.deepEqual(await lib.readMany([id]), [0n]);
  } finally {
    await lib.close();
  }
});
