// The module counting real perf events (loadModule(), the machine's classes)
// on C workloads. Expected values come from the kernel's own bookkeeping
// (/proc/PID/stat CPU times, the workload's own thread CPU clocks, the page
// count it touched, wall time), never from the code under test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Libpmc } from '../src/lib/libpmc.js';
import { LocalModuleClient } from '../src/lib/module-client.js';
import { onlineCpus, possibleCpuCount } from '../src/os/cpus.js';
import { machineClasses } from '../src/md/machine.js';
import { PerfType } from '../src/md/perf-attr.js';
import { COUNTING_READ_FORMAT, PerfEvent } from '../src/md/perf-event.js';
import type { Credentials } from '../src/os/procfs.js';
import { selfCaller } from '../src/module/caller.js';
import { loadModule } from '../src/module/load.js';
import type { OwnerSignal } from '../src/module/owner.js';
import { PmcModule } from '../src/module/pmc-module.js';
import { loadTunables } from '../src/module/tunables.js';
import { PmcError } from '../src/pmc-error.js';
import { CountWorkload, useCountWorkload } from './count-workload-fixture.js';
import { track } from './proc-fixture.js';

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
const NS_PER_TICK = 1e9 / CLK_TCK;
/** Default tunables whatever this machine's /etc/tspmc.conf says. */
const NO_CONFIG = { TSPMC_CONFIG: '/dev/null' };

useCountWorkload('module-counting-');

/** CPU time from /proc/PID/stat in ns: utime + stime, and cutime + cstime of waited-for children. */
function procCpuNs(pid: number): { self: number; children: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after "(comm)": state is field 3, utime 14, stime 15, cutime 16, cstime 17.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [utime, stime, cutime, cstime] = [f[11], f[12], f[13], f[14]].map(Number);
  return { self: (utime + stime) * NS_PER_TICK, children: (cutime + cstime) * NS_PER_TICK };
}

/** /proc truncates utime and stime to whole ticks each: allow two ticks besides the 5%. */
function assertNear(actual: number, expected: number, what: string): void {
  const slack = 0.05 * expected + 2 * NS_PER_TICK;
  assert.ok(Math.abs(actual - expected) <= slack, `${what}: ${actual} ns counted, ${expected} ns expected (±${slack})`);
}

/** Waits (on timers, every 10 ms) until `cond` holds; 60 s is a hang. */
async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (const hang = Date.now() + 60_000; !cond(); ) {
    assert.ok(Date.now() < hang, `${what}: still waiting after 60 s`);
    await sleep(10);
  }
}

function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

async function expectCode(code: string, fn: () => Promise<unknown>, why: string): Promise<PmcError> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof PmcError, `${why}: expected a PmcError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, `${why}: ${e.message}`);
    return e;
  }
  assert.fail(`${why}: expected ${code}, but it succeeded`);
}

// ---- counting -------------------------------------------------------------------

test('task-clock of a busy child matches its CPU time in /proc; the count outlives the child', async () => {
  const client = new LocalModuleClient();
  const lib = await Libpmc.init(client);
  const signals: OwnerSignal[] = [];
  client.onSignal((s) => signals.push(s));
  const w = await CountWorkload.start('spin', '1000');
  const id = await lib.allocate('task-clock', 'TC');
  await lib.attach(id, w.pid);
  await lib.start(id);
  await w.go();
  const counted = Number(await lib.read(id));
  assertNear(counted, procCpuNs(w.pid).self, 'task-clock of the spinning child');

  await w.finish();
  // The exit poll finds the exit on its own timer.
  await waitFor(() => signals.length > 0, 'the owner hears of the exit');
  assert.deepEqual(
    signals.map((s) => [s.signal, s.pmcId]),
    [['SIGIO', id]],
    'the owner hears that its only target exited',
  );
  const afterExit = Number(await lib.read(id));
  assert.ok(afterExit >= counted && afterExit <= counted * 1.05, `after exit ${afterExit}, before ${counted}`);
  await lib.stop(id);
  assert.equal(Number(await lib.read(id)), afterExit);
  await lib.close();
});

test('page-faults of a child touching 2000 fresh pages is at least 2000', async () => {
  const pages = 2000;
  const lib = await Libpmc.init();
  const w = await CountWorkload.start('pages', String(pages));
  const id = await lib.allocate('page-faults', 'TC');
  await lib.attach(id, w.pid);
  await lib.start(id);
  await w.go();
  const faults = await lib.read(id);
  assert.ok(faults >= BigInt(pages), `${faults} page faults for ${pages} pages`);
  // A bare wait after the work adds no faults: the count is the work's, give or take the loader.
  assert.ok(faults < BigInt(pages * 2), `${faults} page faults for ${pages} pages`);
  await w.finish();
  await lib.close();
});

test('threads started after attach are counted', async () => {
  const lib = await Libpmc.init();
  const w = await CountWorkload.start('threads', '2', '500');
  const id = await lib.allocate('task-clock', 'TC');
  await lib.attach(id, w.pid);
  await lib.start(id);
  const threadNs = (await w.go()).map(Number);
  assert.equal(threadNs.length, 2);
  const counted = Number(await lib.read(id));
  const sum = threadNs[0] + threadNs[1];
  assert.ok(counted > 1.5 * Math.max(...threadNs), `${counted} ns counted, threads used ${threadNs.join(' and ')} ns`);
  assertNear(counted, sum, 'task-clock against the threads own CPU clocks');
  assertNear(counted, procCpuNs(w.pid).self, 'task-clock against /proc');
  await w.finish();
  await lib.close();
});

test('with descendants a forked tree is counted whole; without, the children are not', async () => {
  const lib = await Libpmc.init();
  const w = await CountWorkload.start('fork', '2', '500');
  const tree = await lib.allocate('task-clock', 'TC', { descendants: true });
  const alone = await lib.allocate('task-clock', 'TC');
  await lib.attach(tree, w.pid);
  await lib.attach(alone, w.pid);
  await lib.start(tree);
  await lib.start(alone);
  await w.go();
  const [treeNs, aloneNs] = [Number(await lib.read(tree)), Number(await lib.read(alone))];
  const cpu = procCpuNs(w.pid); // the children were waited for: their time is in cutime + cstime
  assert.ok(cpu.children > 0.9e9, `the two children used ${cpu.children} ns`);
  assertNear(treeNs, cpu.self + cpu.children, 'descendants: parent and children');
  assert.ok(aloneNs < 0.5 * cpu.children, `without descendants ${aloneNs} ns, children used ${cpu.children} ns`);
  assertNear(aloneNs, cpu.self, 'without descendants: the parent alone');
  await w.finish();
  await lib.close();
});

test('a system-mode counting PMC on the first online CPU counts wall time', async () => {
  const lib = await Libpmc.init();
  for (const event of ['cpu-clock', 'task-clock']) {
    const id = await lib.allocate(event, 'SC', { cpu: onlineCpus()[0] });
    const t0 = process.hrtime.bigint();
    await lib.start(id);
    const t1 = process.hrtime.bigint();
    await sleep(200);
    const t2 = process.hrtime.bigint();
    const counted = await lib.read(id);
    const t3 = process.hrtime.bigint();
    // The CPU's clock runs from some time in [t0, t1] to some time in [t2, t3].
    const [low, high] = [Number(t2 - t1), Number(t3 - t0)];
    assert.ok(Number(counted) >= low * 0.99 && Number(counted) <= high * 1.01, `${event} on CPU 0: ${counted} ns in [${low}, ${high}]`);
    await lib.release(id);
  }
  await lib.close();
});

test('an owner that exits leaves no descriptor behind', async () => {
  const w = await CountWorkload.start('threads', '2', '100'); // its pipes are not the module's
  const fdsBefore = fdCount();
  const client = new LocalModuleClient();
  const lib = await Libpmc.init(client);
  const ids = [
    await lib.allocate('task-clock', 'TC'),
    await lib.allocate('page-faults', 'TC', { descendants: true }),
    await lib.allocate('context-switches', 'TC'),
    await lib.allocate('cpu-clock', 'SC', { cpu: onlineCpus()[0] }),
  ];
  for (const id of ids.slice(0, 3)) await lib.attach(id, w.pid);
  const self = await lib.allocate('task-clock', 'TC');
  for (const id of [...ids, self]) await lib.start(id); // self counts every thread of this process
  await w.go();
  for (const id of [...ids, self]) assert.ok((await lib.read(id)) > 0n);
  assert.ok(client.module.openFdCount >= ids.length + 1);
  assert.equal(fdCount(), fdsBefore + client.module.openFdCount);
  await lib.close();
  assert.equal(client.module.openFdCount, 0);
  assert.equal(fdCount(), fdsBefore);
  await w.finish();
});

test('the module never reports a multiplexed value: every counter ran all the time it was enabled', async () => {
  const lib = await Libpmc.init();
  const w = await CountWorkload.start('spin', '200');
  // Fill every SOFT row on the target: more counters than any PMU would hold at once.
  const rows = (await lib.cpuInfo()).classes.find((c) => c.name === 'SOFT')!.num;
  const ids = [];
  for (let i = 0; i < rows; i++) ids.push(await lib.allocate(i % 2 ? 'cpu-clock' : 'task-clock', 'TC'));
  for (const id of ids) await lib.attach(id, w.pid);
  for (const id of ids) await lib.start(id);
  // The same kind of counter the module opens, read with its times: running equals enabled.
  const witness = PerfEvent.open(
    { type: PerfType.SOFTWARE, config: 1n, readFormat: COUNTING_READ_FORMAT, flags: { pinned: true } },
    { pid: w.pid, cpu: -1 },
  );
  await w.go();
  for (const id of ids) assert.ok((await lib.read(id)) > 100_000_000n);
  const r = witness.read();
  assert.ok(r.enabled > 0n);
  assert.equal(r.running, r.enabled);
  witness.close();
  await w.finish();
  await lib.close();
});

// ---- errors (requirement 8) ---------------------------------------------------------

test('errors: missing and exiting pids are ESRCH', async () => {
  const lib = await Libpmc.init();
  const id = await lib.allocate('task-clock', 'TC');
  const gone = spawn('true');
  await once(gone, 'exit');
  await expectCode('ESRCH', () => lib.attach(id, gone.pid!), 'a process that exited and was reaped');
  const z = await CountWorkload.start('zombie');
  const zombie = Number((await z.nextLine()).split(' ')[1]);
  await waitFor(() => readFileSync(`/proc/${zombie}/stat`, 'utf8').includes(') Z '), 'the child to be a zombie');
  assert.match(readFileSync(`/proc/${zombie}/stat`, 'utf8'), /\) Z /, 'the child is a zombie');
  await expectCode('ESRCH', () => lib.attach(id, zombie), 'a zombie (exiting) process');
  await expectCode('EINVAL', () => lib.attach(id, -4), 'a negative pid');
  z.child.kill('SIGKILL');
  await z.exited;
  await lib.close();
});

test('errors: negative, absent and offline CPUs', async () => {
  const lib = await Libpmc.init();
  await expectCode('EINVAL', () => lib.allocate('cpu-clock', 'SC', { cpu: -2 }), 'a negative CPU');
  const ncpu = await lib.ncpu();
  await expectCode('EINVAL', () => lib.allocate('cpu-clock', 'SC', { cpu: ncpu }), 'a CPU beyond the last');
  await expectCode('EINVAL', () => lib.allocate('cpu-clock', 'SC'), 'a system PMC without a CPU');
  await expectCode('EINVAL', () => lib.allocate('cpu-clock', 'TC', { cpu: 0 }), 'a process PMC with a CPU');
  await lib.close();

  // The real classes, with CPU 1 declared offline (hot-unplugging a CPU of CI is not for a test).
  const online = onlineCpus();
  if (online.length < 2) return;
  const offline = online[1];
  const module = new PmcModule({
    classes: machineClasses(),
    tunables: loadTunables({ env: NO_CONFIG }),
    ncpu: possibleCpuCount(),
    activeCpus: online.filter((c) => c !== offline),
  });
  const partial = await Libpmc.init(new LocalModuleClient(module));
  await expectCode('ENXIO', () => partial.allocate('cpu-clock', 'SC', { cpu: offline }), 'an offline CPU');
  await expectCode('ENXIO', () => partial.pmcInfo(offline), 'PMC info of an offline CPU');
  await partial.close();
});

test('errors: unknown events are ENOENT, malformed specifiers EINVAL', async () => {
  const lib = await Libpmc.init();
  await expectCode('ENOENT', () => lib.allocate('no-such-event-anywhere', 'TC'), 'an unknown event');
  for (const bad of ['', 'task-clock,bogus', ',usr', 'msr/tsc', 'task-clock,,usr']) {
    await expectCode('EINVAL', () => lib.allocate(bad, 'TC'), `specifier "${bad}"`);
  }
  await expectCode('EINVAL', () => lib.allocate('task-clock', 'XX' as 'TC'), 'an unknown mode');
  await lib.close();
});

test('errors: an unprivileged caller gets EPERM for system PMCs and for processes of others', async () => {
  // This process's credentials with the privilege taken away, as the module sees a pmcd peer.
  const creds: Credentials = { ...selfCaller().creds, euid: 1000, ruid: 1000, suid: 1000, capEff: 0n };
  const lib = await Libpmc.init(new LocalModuleClient(loadModule({ env: NO_CONFIG }), { pid: process.pid, creds }));
  await expectCode('EPERM', () => lib.allocate('cpu-clock,usr', 'SC', { cpu: onlineCpus()[0] }), 'a system PMC');
  const id = await lib.allocate('task-clock,usr', 'TC');
  const w = await CountWorkload.start('spin', '10');
  await expectCode('EPERM', () => lib.attach(id, w.pid), 'a root process');
  await w.finish();
  await lib.close();
});

test('with descendants, the owner is told only when the last of several orphaned descendants exits', async () => {
  const m = loadModule();
  const me = selfCaller();
  try {
    // The shell waits for a line, starts three background children, prints their pids and exits at once:
    // the children are orphans no walk of /proc from the target finds.
    const sh = spawn('sh', ['-c', 'read x; for i in 1 2 3; do sleep 300 & echo $!; done; exit 0'], { stdio: ['pipe', 'pipe', 'ignore'] });
    track(sh);
    const signals: OwnerSignal[] = [];
    m.onSignal(me, (s) => signals.push(s));
    const soft = m.getCpuInfo().classes.find((c) => c.name === 'SOFT')!;
    const id = m.pmcAllocate(me, { classId: soft.classId, event: 1, mode: 3, cpu: -1, caps: 0, flags: 0x2 /* DESCENDANTS */ });
    m.pmcAttach(me, id, sh.pid!);
    m.pmcStart(me, id);
    let out = '';
    sh.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    sh.stdin!.write('go\n');
    await once(sh, 'exit');
    await waitFor(() => out.trim().split('\n').length === 3, 'the three pids');
    const descendants = out.trim().split('\n').map(Number);
    assert.ok(descendants.every((p) => Number.isInteger(p) && p > 0), `the shell printed "${out}"`);
    // Each kill but the last: two looks of the exit poll later, nobody was told.
    for (const d of descendants.slice(0, -1)) {
      process.kill(d, 'SIGKILL');
      const looks = m.reaper.looks;
      await waitFor(() => m.reaper.looks >= looks + 2, 'two looks of the exit poll');
      assert.equal(signals.length, 0, `descendants still run, yet the owner was told: ${signals[0]?.reason}`);
    }
    process.kill(descendants.at(-1)!, 'SIGKILL');
    await waitFor(() => signals.length > 0, 'the owner is told once the tree is gone');
    const looks = m.reaper.looks;
    await waitFor(() => m.reaper.looks >= looks + 2, 'two more looks of the exit poll');
    assert.equal(signals.length, 1, 'told once');
    assert.equal(signals[0].pmcId, id);
  } finally {
    await m.shutdown();
  }
});
