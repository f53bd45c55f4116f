// The module's op dispatcher over a fake class: row dispositions with two
// owners, the PMC state machine, argument checks, ids, driver statistics,
// owner exit and the SIGIO-like notices. Targets are real processes (the
// module looks them up in /proc); only the counters are pretend.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Credentials } from '../src/os/procfs.js';
import { type Caller, selfCaller } from '../src/module/caller.js';
import type { OwnerSignal } from '../src/module/owner.js';
import type { AllocateRequest } from '../src/module/op-table.js';
import type { PmcModule } from '../src/module/pmc-module.js';
import {
  makePmcId,
  PMC_CPU_ANY,
  PMC_VERSION,
  PmcCaps,
  PmcClass,
  PmcFlags,
  PmcMode,
  pmcIdToClass,
  pmcIdToCpu,
  pmcIdToMode,
  pmcIdToRow,
  PmcState,
  RowDisposition,
} from '../src/module/pmc-types.js';
import { PmcError } from '../src/pmc-error.js';
import { FakeClass, fakeModule, type FakeModuleOptions } from './fake-class.js';

// ---- processes: owners and targets ------------------------------------------

const children: ChildProcess[] = [];
/** Owner A is this process; owner B is a live child with the same (root) credentials. */
let A: Caller;
let B: Caller;
/** Live target processes. */
let T1 = 0;
let T2 = 0;
let T3 = 0;
/** A pid whose process has exited and been reaped. */
let GONE = 0;

function sleeper(): number {
  const c = spawn('sleep', ['300'], { stdio: 'ignore' });
  children.push(c);
  return c.pid!;
}

before(async () => {
  A = selfCaller();
  B = { pid: sleeper(), creds: A.creds };
  [T1, T2, T3] = [sleeper(), sleeper(), sleeper()];
  const done = spawn('true', [], { stdio: 'ignore' });
  await once(done, 'exit');
  GONE = done.pid!;
});

/** Every module made here: shut down at the end, or a running sampler's timers would keep the process alive. */
const modules: PmcModule[] = [];

after(() => {
  for (const m of modules) m.shutdown();
  for (const c of children) c.kill('SIGKILL');
});

function userCreds(uid: number, gid: number, groups: number[] = [gid]): Credentials {
  return { euid: uid, ruid: uid, suid: uid, egid: gid, rgid: gid, sgid: gid, groups, capEff: 0n };
}

// ---- helpers ----------------------------------------------------------------

function tc(extra: Partial<AllocateRequest> = {}): AllocateRequest {
  return { classId: PmcClass.FAKE, event: 1, mode: PmcMode.TC, cpu: PMC_CPU_ANY, caps: 0, flags: 0, ...extra };
}
function sc(cpu: number, extra: Partial<AllocateRequest> = {}): AllocateRequest {
  return tc({ mode: PmcMode.SC, cpu, ...extra });
}

/** Runs fn, which must fail with a PmcError of this errno name; `why` names the case. */
function expectCode(code: string, fn: () => unknown, why = ''): PmcError {
  let result: unknown;
  try {
    result = fn();
  } catch (e) {
    assert.ok(e instanceof PmcError, `${why}: expected a PmcError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, `${why}: expected ${code}: ${e.message}`);
    return e;
  }
  assert.fail(`${why}: expected ${code}, but the call succeeded (${String(result)})`);
}

function dispositions(m: PmcModule, cpu = 0): string[] {
  return m.getPmcInfo(cpu).map((i) => RowDisposition[i.rowDisposition]);
}

/** Waits (on timers, every 10 ms) until `cond` holds; 60 s is a hang. */
async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (const hang = Date.now() + 60_000; !cond(); ) {
    assert.ok(Date.now() < hang, `${what}: still waiting after 60 s`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function track(m: PmcModule): PmcModule {
  modules.push(m);
  return m;
}

function setup(rows: number, extra: Omit<FakeModuleOptions, 'classes'> = {}) {
  const cls = new FakeClass({ rows });
  return { cls, m: track(fakeModule({ classes: [cls], ...extra })) };
}

// ---- PMC ids ----------------------------------------------------------------

test('PMC ids encode cpu, mode, class and row and decode back', () => {
  for (const cpu of [0, 1, 7, 0xffe])
    for (const mode of [PmcMode.SS, PmcMode.SC, PmcMode.TS, PmcMode.TC])
      for (const cls of [PmcClass.SOFT, PmcClass.TRACEPOINT, PmcClass.FAKE])
        for (const row of [0, 1, 15, 255]) {
          const id = makePmcId(cpu, mode, cls, row);
          assert.deepEqual([pmcIdToCpu(id), pmcIdToMode(id), pmcIdToClass(id), pmcIdToRow(id)], [cpu, mode, cls, row]);
        }

  const { m } = setup(3, { ncpu: 4 });
  m.pmcAllocate(A, sc(2)); // row 0 on CPU 2
  const id = m.pmcAllocate(A, sc(2)); // the owner's next row on CPU 2
  assert.deepEqual([pmcIdToCpu(id), pmcIdToMode(id), pmcIdToClass(id), pmcIdToRow(id)], [2, PmcMode.SC, PmcClass.FAKE, 1]);
  const v = m.pmcAllocate(A, tc({ mode: PmcMode.TS, count: 1000n }));
  assert.deepEqual([pmcIdToMode(v), pmcIdToClass(v), pmcIdToRow(v)], [PmcMode.TS, PmcClass.FAKE, 2]);
  assert.equal(pmcIdToCpu(v), PMC_CPU_ANY & 0xfff, 'a process PMC carries PMC_CPU_ANY');
});

// ---- row dispositions -------------------------------------------------------

test('a THREAD row refuses system PMCs until its last process PMC is released', () => {
  const { m } = setup(1);
  assert.deepEqual(dispositions(m), ['FREE']);
  const a = m.pmcAllocate(A, tc());
  assert.deepEqual(dispositions(m), ['THREAD']);
  assert.equal(m.getPmcInfo(0)[0].ownerPid, A.pid);
  expectCode('EINVAL', () => m.pmcAllocate(B, sc(0)));
  // Process PMCs of another owner share the THREAD row.
  const b = m.pmcAllocate(B, tc());
  assert.equal(pmcIdToRow(b), 0);
  m.pmcRelease(A, a);
  assert.deepEqual(dispositions(m), ['THREAD'], "B's PMC still uses the row");
  expectCode('EINVAL', () => m.pmcAllocate(A, sc(1)));
  m.pmcRelease(B, b);
  assert.deepEqual(dispositions(m), ['FREE']);
  m.pmcAllocate(B, sc(0));
  assert.deepEqual(dispositions(m), ['STANDALONE']);
});

test('a STANDALONE row refuses process PMCs; system PMCs of other owners take it on other CPUs', () => {
  const { m } = setup(1);
  const a0 = m.pmcAllocate(A, sc(0));
  assert.deepEqual(dispositions(m, 0), ['STANDALONE']);
  assert.deepEqual(dispositions(m, 1), ['STANDALONE'], 'the disposition is per row, on every CPU');
  expectCode('EINVAL', () => m.pmcAllocate(B, tc()));
  expectCode('EINVAL', () => m.pmcAllocate(B, sc(0)));
  const b1 = m.pmcAllocate(B, sc(1));
  assert.equal(m.getPmcInfo(0)[0].ownerPid, A.pid);
  assert.equal(m.getPmcInfo(1)[0].ownerPid, B.pid);
  expectCode('EINVAL', () => m.pmcAllocate(A, sc(1)));
  m.pmcRelease(A, a0);
  assert.deepEqual(dispositions(m), ['STANDALONE']);
  assert.equal(m.getPmcInfo(0)[0].ownerPid, -1);
  expectCode('EINVAL', () => m.pmcAllocate(A, tc()));
  m.pmcRelease(B, b1);
  assert.deepEqual(dispositions(m), ['FREE']);
  m.pmcAllocate(A, tc());
});

test('a system PMC skips THREAD rows and takes the next row of its class', () => {
  const { m } = setup(2);
  const a = m.pmcAllocate(A, tc());
  const b = m.pmcAllocate(B, sc(0));
  assert.equal(pmcIdToRow(a), 0);
  assert.equal(pmcIdToRow(b), 1);
  assert.deepEqual(dispositions(m), ['THREAD', 'STANDALONE']);
});

test('an owner gets at most one PMC per row (pmc_can_allocate_rowindex)', () => {
  const { m } = setup(2);
  // hwpmc's row scan skips a row the owner already uses (EEXIST inside the
  // scan); the op itself fails with EINVAL when no row is left.
  assert.equal(pmcIdToRow(m.pmcAllocate(A, tc())), 0);
  assert.equal(pmcIdToRow(m.pmcAllocate(A, tc())), 1);
  expectCode('EINVAL', () => m.pmcAllocate(A, tc()));
  // Another owner may still use both rows.
  assert.equal(pmcIdToRow(m.pmcAllocate(B, tc())), 0);
  assert.equal(pmcIdToRow(m.pmcAllocate(B, tc())), 1);

  const sys = setup(2).m;
  assert.equal(pmcIdToRow(sys.pmcAllocate(A, sc(0))), 0);
  assert.equal(pmcIdToRow(sys.pmcAllocate(A, sc(0))), 1);
  expectCode('EINVAL', () => sys.pmcAllocate(A, sc(0)));
  assert.equal(pmcIdToRow(sys.pmcAllocate(A, sc(1))), 0, 'the same row on another CPU is another counter');
});

test('an owner that is the target of a PMC on a row does not get that row', () => {
  const { m } = setup(2);
  const b = m.pmcAllocate(B, tc());
  m.pmcAttach(B, b, A.pid);
  assert.equal(pmcIdToRow(m.pmcAllocate(A, tc())), 1);
});

test('attaching one PMC twice to a target is EEXIST', () => {
  const { m, cls } = setup(1);
  const a = m.pmcAllocate(A, tc());
  m.pmcAttach(A, a, T1);
  expectCode('EEXIST', () => m.pmcAttach(A, a, T1));
  assert.equal(cls.setsOf(T1).length, 1, 'the failed attach opened no counter');
});

test("a target with another owner's PMC on the row is EBUSY", () => {
  const { m, cls } = setup(1);
  const a = m.pmcAllocate(A, tc());
  const b = m.pmcAllocate(B, tc());
  assert.equal(pmcIdToRow(a), pmcIdToRow(b));
  m.pmcAttach(A, a, T1);
  expectCode('EBUSY', () => m.pmcAttach(B, b, T1));
  m.pmcAttach(B, b, T2);
  assert.equal(cls.setsOf(T1).length, 1);
  // Once A lets go of T1, B may have it.
  m.pmcDetach(A, a, T1);
  m.pmcAttach(B, b, T1);
});

test('PMCADMIN cannot disable a THREAD row nor a row a system PMC holds (EBUSY)', () => {
  const { m } = setup(2);
  m.pmcAllocate(A, tc()); // row 0: THREAD
  expectCode('EBUSY', () => m.pmcAdmin(A, 0, 0, PmcState.DISABLED));
  assert.equal(pmcIdToRow(m.pmcAllocate(B, sc(1))), 1);
  expectCode('EBUSY', () => m.pmcAdmin(A, 1, 1, PmcState.DISABLED));
  expectCode('EBUSY', () => m.pmcAdmin(A, 1, 1, PmcState.FREE));
  // Row 1 is STANDALONE but free on CPU 0: that CPU's counter can be disabled.
  m.pmcAdmin(A, 0, 1, PmcState.DISABLED);
  assert.equal(m.getPmcInfo(0)[1].enabled, false);
  assert.equal(m.getPmcInfo(1)[1].enabled, true);
});

test('a disabled CPU row refuses system PMCs there (EPERM) and process PMCs everywhere', () => {
  const { m } = setup(1);
  m.pmcAdmin(A, 0, 0, PmcState.DISABLED);
  assert.deepEqual(dispositions(m), ['STANDALONE']);
  expectCode('EPERM', () => m.pmcAllocate(B, sc(0)));
  expectCode('EINVAL', () => m.pmcAllocate(B, tc()));
  const b = m.pmcAllocate(B, sc(1));
  m.pmcRelease(B, b);
  m.pmcAdmin(A, 0, 0, PmcState.FREE);
  m.pmcAdmin(A, 0, 0, PmcState.FREE); // enabling an enabled row is a no-op
  assert.deepEqual(dispositions(m), ['FREE']);
  m.pmcAllocate(B, tc());
});

test('PMCADMIN checks privilege, CPU, state and row', () => {
  const { m } = setup(1, { ncpu: 3, activeCpus: [0, 2] });
  expectCode('EPERM', () => m.pmcAdmin({ pid: T1, creds: userCreds(1000, 1000) }, 0, 0, PmcState.DISABLED));
  expectCode('EINVAL', () => m.pmcAdmin(A, 3, 0, PmcState.DISABLED));
  expectCode('EINVAL', () => m.pmcAdmin(A, -1, 0, PmcState.DISABLED));
  expectCode('ENXIO', () => m.pmcAdmin(A, 1, 0, PmcState.DISABLED));
  expectCode('EINVAL', () => m.pmcAdmin(A, 0, 0, PmcState.RUNNING as PmcState.FREE));
  expectCode('EINVAL', () => m.pmcAdmin(A, 0, 1, PmcState.DISABLED));
});

test('no free row is EINVAL', () => {
  const { m } = setup(2);
  m.pmcAllocate(A, sc(0));
  m.pmcAllocate(B, sc(0));
  const third: Caller = { pid: T1, creds: A.creds };
  expectCode('EINVAL', () => m.pmcAllocate(third, sc(0)));
  expectCode('EINVAL', () => m.pmcAllocate(third, tc()));
});

// ---- the state machine ------------------------------------------------------

test('state machine: start twice, no attach, write or setcount while running, stop twice', () => {
  const { m, cls } = setup(2);
  const id = m.pmcAllocate(A, tc());
  expectCode('EINVAL', () => m.pmcStop(A, id));
  m.pmcAttach(A, id, T1);
  m.pmcStart(A, id);
  m.pmcStart(A, id);
  cls.advance(100n);
  assert.equal(m.pmcRead(A, id), 100n);
  expectCode('EBUSY', () => m.pmcAttach(A, id, T2));
  expectCode('EBUSY', () => m.pmcRw(A, id, PmcFlags.NEWVALUE, 5n));
  expectCode('EBUSY', () => m.pmcRw(A, id, PmcFlags.NEWVALUE | PmcFlags.OLDVALUE, 5n));
  expectCode('EBUSY', () => m.pmcSetCount(A, id, 5n));
  assert.equal(m.pmcRw(A, id, PmcFlags.OLDVALUE), 100n, 'a running PMC can be read');
  m.pmcStop(A, id);
  m.pmcStop(A, id);
  cls.advance(50n);
  assert.equal(m.pmcRead(A, id), 100n, 'a stopped PMC does not count');

  // Stopped: attach, write, set count are allowed.
  m.pmcAttach(A, id, T2);
  assert.equal(m.pmcRw(A, id, PmcFlags.NEWVALUE | PmcFlags.OLDVALUE, 7n), 100n);
  assert.equal(m.pmcRead(A, id), 7n);
  m.pmcStart(A, id);
  cls.advance(10n);
  assert.equal(m.pmcRead(A, id), 7n + 2n * 10n, 'two targets count from the written value');
  m.pmcStop(A, id);
  m.pmcSetCount(A, id, 1000n);
  assert.equal(m.pmcRead(A, id), 1000n, "a counting PMC's set count is its value");

  m.pmcRelease(A, id);
  expectCode('ESRCH', () => m.pmcRead(A, id)); // A owns nothing now
  expectCode('ESRCH', () => m.pmcStart(A, id));
  const other = m.pmcAllocate(A, tc());
  assert.notEqual(other, undefined);
  const gone = m.pmcAllocate(A, tc());
  m.pmcRelease(A, gone);
  expectCode('EINVAL', () => m.pmcRead(A, gone)); // A owns another PMC, not this one
  expectCode('EINVAL', () => m.pmcRw(A, gone, PmcFlags.OLDVALUE));
  expectCode('EINVAL', () => m.pmcRelease(A, gone));
  assert.equal(cls.openFds, 0, 'released PMCs hold no counters');
});

test('PMCRW needs OLDVALUE or NEWVALUE; PMCSETCOUNT of a sampling PMC needs a positive count', () => {
  const { m } = setup(2);
  const id = m.pmcAllocate(A, tc());
  expectCode('EINVAL', () => m.pmcRw(A, id, 0));
  const s = m.pmcAllocate(A, tc({ mode: PmcMode.TS, count: 1000n }));
  expectCode('EINVAL', () => m.pmcSetCount(A, s, 0n));
  expectCode('EINVAL', () => m.pmcSetCount(A, s, -1n));
  m.pmcSetCount(A, s, 5000n);
  const info = m.getPmcInfo(0).find((i) => i.mode === PmcMode.TS);
  assert.equal(info?.reloadCount, 5000n);
});

test('a PMC started bare attaches to its owner; one that lost its targets cannot start (ESRCH)', () => {
  const { m, cls } = setup(2);
  const id = m.pmcAllocate(A, tc());
  m.pmcStart(A, id);
  assert.equal(cls.setsOf(A.pid).length, 1, 'counting the owner');
  cls.advance(3n);
  assert.equal(m.pmcRead(A, id), 3n);
  const info = m.getPmcInfo(0)[0];
  assert.ok(info.flags! & PmcFlags.ATTACHED_TO_OWNER);

  const detached = m.pmcAllocate(A, tc());
  m.pmcAttach(A, detached, T1);
  m.pmcDetach(A, detached, T1);
  expectCode('ESRCH', () => m.pmcStart(A, detached));
});

test('a sampling PMC needs a log unless it samples its owner (EDOOFUS)', () => {
  const { m } = setup(3);
  const ss = m.pmcAllocate(A, sc(0, { mode: PmcMode.SS, count: 1000n }));
  expectCode('EDOOFUS', () => m.pmcStart(A, ss));
  const other = m.pmcAllocate(A, tc({ mode: PmcMode.TS, count: 1000n }));
  m.pmcAttach(A, other, T1);
  expectCode('EDOOFUS', () => m.pmcStart(A, other));
  const self = m.pmcAllocate(A, tc({ mode: PmcMode.TS, count: 1000n }));
  m.pmcStart(A, self);
});

test('process logging flags need a log on process PMCs and are refused on system PMCs', () => {
  const { m } = setup(2);
  const id = m.pmcAllocate(A, tc({ flags: PmcFlags.LOG_PROCEXIT }));
  expectCode('EDOOFUS', () => m.pmcStart(A, id));
  expectCode('EINVAL', () => m.pmcAllocate(A, sc(0, { flags: PmcFlags.LOG_PROCEXIT })));
  expectCode('EINVAL', () => m.pmcAllocate(A, sc(0, { flags: PmcFlags.LOG_PROCCSW })));
});

// ---- argument checks ----------------------------------------------------------

test('allocation checks mode, CPU, flags, class and capabilities', () => {
  const noInterrupt = new FakeClass({ rows: 2, classId: 0xf1, name: 'NOINT', caps: PmcCaps.READ | PmcCaps.WRITE | PmcCaps.USER });
  const absent = new FakeClass({ rows: 0, classId: 0xf2, name: 'GONE', available: false, unavailableReason: 'no such PMU here' });
  const cls = new FakeClass({ rows: 2 });
  const m = track(fakeModule({ classes: [cls, noInterrupt, absent], ncpu: 4, activeCpus: [0, 1, 3] }));

  expectCode('EINVAL', () => m.pmcAllocate(A, tc({ mode: 7 as PmcMode })));
  expectCode('EINVAL', () => m.pmcAllocate(A, tc({ cpu: 0 })));
  expectCode('EINVAL', () => m.pmcAllocate(A, sc(PMC_CPU_ANY)));
  expectCode('EINVAL', () => m.pmcAllocate(A, sc(4)));
  expectCode('EINVAL', () => m.pmcAllocate(A, sc(-2)));
  expectCode('ENXIO', () => m.pmcAllocate(A, sc(2)));
  expectCode('EINVAL', () => m.pmcAllocate(A, tc({ flags: 0x1 })));
  expectCode('EINVAL', () => m.pmcAllocate(A, tc({ flags: PmcFlags.ATTACHED_TO_OWNER })));
  expectCode('EINVAL', () => m.pmcAllocate(A, tc({ flags: PmcFlags.OLDVALUE })));
  expectCode('EINVAL', () => m.pmcAllocate(A, tc({ classId: 0x99 })));
  expectCode('ENXIO', () => m.pmcAllocate(A, tc({ classId: 0xf2 })));
  expectCode('EOPNOTSUPP', () => m.pmcAllocate(A, tc({ classId: 0xf1, mode: PmcMode.TS, count: 100n })));
  expectCode('EOPNOTSUPP', () => m.pmcAllocate(A, tc({ classId: 0xf1, caps: PmcCaps.SYSTEM })));
  expectCode('EOPNOTSUPP', () => m.pmcAllocate(A, tc({ caps: PmcCaps.EDGE })));
  expectCode('EINVAL', () => m.pmcAllocate(A, tc({ event: 99 })), 'the class validates the event');
  expectCode('EINVAL', () => m.pmcAllocate(A, tc({ mode: PmcMode.TS, count: 0n })));
  // Good requests on the same module still succeed, and no failed one left a counter behind.
  m.pmcAllocate(A, sc(3));
  m.pmcAllocate(A, tc({ classId: 0xf1, caps: PmcCaps.USER }));
  assert.equal(cls.openFds, 1);
  assert.equal(noInterrupt.openFds, 0);
  assert.deepEqual(
    m.getCpuInfo().classes.map((c) => [c.name, c.num, c.firstRow, c.available]),
    [
      ['FAKE', 2, 0, true],
      ['NOINT', 2, 2, true],
      ['GONE', 0, 4, false],
    ],
  );
});

test('the USER and SYSTEM capabilities choose the counted modes', () => {
  const { m, cls } = setup(3);
  // System PMCs open their counter at allocation, so the request shows at once.
  for (const caps of [0, PmcCaps.USER, PmcCaps.SYSTEM]) m.pmcAllocate(A, sc(0, { caps }));
  const modes = cls.sets.map((s) => [s.request.countUser, s.request.countKernel]);
  assert.deepEqual(modes, [
    [true, true],
    [true, false],
    [false, true],
  ]);
});

test('system PMCs need privilege unless unprivileged_syspmcs, and are refused to jailed callers', () => {
  const user: Caller = { pid: T1, creds: userCreds(1000, 1000) };
  const strict = setup(2).m;
  expectCode('EPERM', () => strict.pmcAllocate(user, sc(0)));
  expectCode('EPERM', () => strict.pmcAllocate({ ...A, jailed: true }, sc(0)));
  strict.pmcAllocate(user, tc()); // process PMCs need no privilege
  const lax = setup(2, { tunables: { unprivileged_syspmcs: true } }).m;
  const id = lax.pmcAllocate(user, sc(0));
  assert.equal(pmcIdToMode(id), PmcMode.SC);
  expectCode('EPERM', () => lax.pmcAllocate({ ...A, jailed: true }, sc(1)));
});

test('attach and detach check the pid, the PMC and the target', () => {
  const { m } = setup(3);
  const id = m.pmcAllocate(A, tc());
  expectCode('EINVAL', () => m.pmcAttach(A, id, -1));
  expectCode('ESRCH', () => m.pmcAttach(A, id, GONE));
  expectCode('EINVAL', () => m.pmcAttach(A, id ^ 0x1, T1)); // no such id for A
  expectCode('ESRCH', () => m.pmcAttach(B, id, T1)); // B owns nothing
  const sys = m.pmcAllocate(A, sc(0));
  expectCode('EINVAL', () => m.pmcAttach(A, sys, T1));
  expectCode('EINVAL', () => m.pmcDetach(A, id, -3));
  expectCode('ESRCH', () => m.pmcDetach(A, id, GONE));
  expectCode('ESRCH', () => m.pmcDetach(A, id, T1), 'never attached: T1 is no target at all');
  m.pmcAttach(A, id, 0); // pid 0 is the caller
  m.pmcAttach(A, id, T1);
  const onT2 = m.pmcAllocate(A, tc());
  m.pmcAttach(A, onT2, T2);
  expectCode('EINVAL', () => m.pmcDetach(A, id, T2), 'T2 is a target, but not of this PMC');
  m.pmcDetach(A, id, 0);
  m.pmcDetach(A, id, T1);
});

test('an unprivileged owner may not attach to a process of another user (EPERM)', () => {
  const { m, cls } = setup(1);
  const user: Caller = { pid: T1, creds: userCreds(1000, 1000) };
  const id = m.pmcAllocate(user, tc());
  expectCode('EPERM', () => m.pmcAttach(user, id, T2)); // T2 runs as root
  assert.equal(cls.openFds, 0);
});

test('information ops: module version, CPU info, PMC info, dynamic events, GETMSR', () => {
  const { m } = setup(2, { ncpu: 3, activeCpus: [0, 2] });
  assert.equal(m.getModuleVersion(PMC_VERSION), PMC_VERSION);
  assert.equal(m.getModuleVersion(PMC_VERSION & 0xff000000), PMC_VERSION, 'older clients are served');
  expectCode('EPROGMISMATCH', () => m.getModuleVersion(PMC_VERSION + 0x10000));
  const ci = m.getCpuInfo();
  assert.deepEqual([ci.ncpu, ci.npmc, ci.nclass], [3, 2, 1]);
  expectCode('EINVAL', () => m.getPmcInfo(3));
  expectCode('ENXIO', () => m.getPmcInfo(1));
  assert.deepEqual(
    m.getPmcInfo(2).map((i) => [i.name, i.enabled, i.ownerPid]),
    [
      ['FAKE0', true, -1],
      ['FAKE1', true, -1],
    ],
  );
  assert.deepEqual(m.getDynEventInfo(PmcClass.FAKE), [
    { name: 'fake-ticks', code: 1 },
    { name: 'fake-misses', code: 2 },
  ]);
  expectCode('EINVAL', () => m.getDynEventInfo(0x99));

  const id = m.pmcAllocate(A, tc({ event: 2 }));
  expectCode('EINVAL', () => m.pmcGetMsr(A, id)); // attached to nothing
  m.pmcAttach(A, id, T1);
  expectCode('EINVAL', () => m.pmcGetMsr(A, id)); // not attached to its owner
  m.pmcDetach(A, id, T1);
  m.pmcAttach(A, id, 0);
  expectCode('ENOSYS', () => m.pmcGetMsr(A, id)); // the only case left: no rdpmc on perf
  const info = m.getPmcInfo(0)[0];
  assert.deepEqual([info.ownerPid, info.mode, info.event, info.eventName], [A.pid, PmcMode.TC, 2, 'fake-misses']);
});

// ---- statistics ---------------------------------------------------------------

test('driver statistics count every op and every failed op', () => {
  const { m, cls } = setup(1);
  const before = m.getDriverStats();
  const id = m.pmcAllocate(A, tc()); // 1
  m.pmcStart(A, id); // 2
  cls.advance(1n);
  m.pmcRead(A, id); // 3 (the fast path)
  expectCode('EINVAL', () => m.pmcAllocate(A, tc())); // 4, failed
  expectCode('EBUSY', () => m.pmcSetCount(A, id, 1n)); // 5, failed
  expectCode('EINVAL', () => m.pmcStop(A, id + 1)); // 6, failed
  m.pmcStop(A, id); // 7
  m.pmcRelease(A, id); // 8
  expectCode('ESRCH', () => m.pmcRead(A, id)); // 9, failed
  const after = m.getDriverStats(); // 10
  assert.equal(after.syscalls - before.syscalls, 10);
  assert.equal(after.syscall_errors - before.syscall_errors, 4);
});

test('a PMC read that fails is counted as a failed op', () => {
  // pmcRead()'s fast path runs outside op(): a counter read that throws (a
  // multiplexed or lost counter) must still count as a failed op.
  const { m, cls } = setup(1);
  const id = m.pmcAllocate(A, tc());
  m.pmcAttach(A, id, T1);
  m.pmcStart(A, id);
  cls.setsOf(T1)[0].readError = new PmcError('EBUSY', 'counter lost');
  const before = m.getDriverStats();
  expectCode('EBUSY', () => m.pmcRead(A, id));
  const after = m.getDriverStats();
  assert.equal(after.syscall_errors - before.syscall_errors, 1);
});

// ---- owner exit, leaks, notices -------------------------------------------------

test('owner exit releases every PMC: counters closed, rows free', () => {
  const { m, cls } = setup(4);
  const a1 = m.pmcAllocate(A, tc());
  const a2 = m.pmcAllocate(A, tc({ flags: PmcFlags.DESCENDANTS }));
  const a3 = m.pmcAllocate(A, sc(0));
  const a4 = m.pmcAllocate(A, sc(1));
  m.pmcAttach(A, a1, T1);
  m.pmcAttach(A, a1, T2);
  m.pmcAttach(A, a2, T3);
  for (const id of [a1, a2, a3, a4]) m.pmcStart(A, id);
  const b = m.pmcAllocate(B, tc());
  m.pmcAttach(B, b, T3);
  assert.equal(cls.openFds, 6);
  // The module also holds each target process (T1, T2, T3) by a pidfd, and while process PMCs run the exit reaper's eventfd.
  assert.equal(m.openFdCount, 6 + 3 + 1);

  m.ownerExited(A);
  assert.equal(cls.openFds, 1, "only B's counter is left");
  assert.equal(m.openFdCount, 1 + 1, "B's counter and its target T3");
  assert.ok(cls.sets.filter((s) => s.closed).every((s) => !s.running));
  for (const cpu of [0, 1]) {
    const infos = m.getPmcInfo(cpu);
    assert.deepEqual(
      infos.map((i) => [RowDisposition[i.rowDisposition], i.ownerPid]),
      [
        ['THREAD', B.pid],
        ['FREE', -1],
        ['FREE', -1],
        ['FREE', -1],
      ],
    );
  }
  expectCode('ESRCH', () => m.pmcRead(A, a1));
  // A comes back as a new owner and gets rows again.
  m.pmcAllocate(A, sc(0));
  m.ownerExited(A);
  m.ownerExited(B);
  m.ownerExited(B); // a second exit is a no-op
  assert.equal(cls.openFds, 0);
  assert.equal(m.openFdCount, 0);
  assert.deepEqual(dispositions(m), ['FREE', 'FREE', 'FREE', 'FREE']);
});

test('an attach that fails part-way through a process tree leaves nothing open', async () => {
  // A shell with one child: the descendant walk opens the shell, then fails on the child.
  const tree = spawn('sh', ['-c', 'sleep 300 & wait'], { stdio: 'ignore' });
  children.push(tree);
  const { listDescendants } = await import('../src/os/procfs.js');
  await waitFor(() => listDescendants(tree.pid!).length > 0, 'the shell to start its child');
  const kids = listDescendants(tree.pid!);
  assert.equal(kids.length, 1, 'the shell started its child');
  const { m, cls } = setup(1);
  const id = m.pmcAllocate(A, tc({ flags: PmcFlags.DESCENDANTS }));
  cls.failOpen.set(kids[0], new PmcError('EMFILE', 'out of descriptors'));
  expectCode('EMFILE', () => m.pmcAttach(A, id, tree.pid!));
  assert.equal(cls.openFds, 0);
  cls.failOpen.clear();
  m.pmcAttach(A, id, tree.pid!);
  assert.deepEqual(
    cls.sets.filter((s) => !s.closed).map((s) => s.target),
    [tree.pid!, kids[0]].map((pid) => ({ kind: 'process', pid, inheritance: 'descendants' })),
  );
  m.pmcDetach(A, id, tree.pid!);
  assert.equal(cls.openFds, 0, 'detaching the top detaches the tree');
  tree.kill('SIGKILL');
  process.kill(kids[0], 'SIGKILL');
});

test('an owner is told (SIGIO) when its PMC loses its last target', async () => {
  const { m, cls } = setup(2);
  const signals: OwnerSignal[] = [];
  const unsubscribe = m.onSignal(A, (s) => signals.push(s));
  const id = m.pmcAllocate(A, tc());
  m.pmcAttach(A, id, T1);
  m.pmcAttach(A, id, T2);
  m.pmcStart(A, id);
  cls.advance(4n);
  m.pmcDetach(A, id, T1);
  assert.equal(signals.length, 0);
  cls.advance(1n);
  assert.equal(m.pmcRead(A, id), 4n + 4n + 1n, "a detached target's count stays in the PMC");
  m.pmcDetach(A, id, T2);
  assert.equal(signals.length, 1);
  assert.equal(signals[0].signal, 'SIGIO');
  assert.equal(signals[0].pmcId, id);
  assert.equal(m.pmcRead(A, id), 9n);

  // A target that exits: its PMC keeps its count and the owner is told once.
  const short = spawn('sleep', ['300'], { stdio: 'ignore' });
  const other = m.pmcAllocate(A, tc());
  m.pmcAttach(A, other, short.pid!);
  m.pmcStart(A, other);
  cls.advance(6n);
  short.kill('SIGKILL');
  await once(short, 'exit');
  // The exit poll finds it on its own timer; two more looks tell no one again.
  await waitFor(() => signals.length > 1, 'the owner is told of the exit');
  const looks = m.reaper.looks;
  await waitFor(() => m.reaper.looks >= looks + 2, 'two more looks of the exit poll');
  assert.deepEqual(
    signals.slice(1).map((s) => [s.signal, s.pmcId]),
    [['SIGIO', other]],
  );
  assert.equal(m.pmcRead(A, other), 6n);
  unsubscribe();
  m.ownerExited(A);
  assert.equal(cls.openFds, 0);
});

test(
  'a PMC whose every target has exited cannot be started again (ESRCH)',
  async () => {
    const { m } = setup(1);
    const short = spawn('sleep', ['300'], { stdio: 'ignore' });
    children.push(short);
    const id = m.pmcAllocate(A, tc());
    m.pmcAttach(A, id, short.pid!);
    m.pmcStart(A, id);
    m.pmcStop(A, id);
    short.kill('SIGKILL');
    await once(short, 'exit');
    // Stopped, the PMC is not polled: the start itself finds the exit.
    expectCode('ESRCH', () => m.pmcStart(A, id));
  },
);

