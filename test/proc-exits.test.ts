// Exits: when a target has exited, what its exit record says, and what a
// failure on the way (an unreadable counter, /proc out of descriptors, a
// log that cannot be written, a corrupt admin state) does. End-to-end
// through pmcstat where a user sees it; the module with a fake class where
// the failure has to be made. Every wait is on an event (a line, a signal,
// an exit) under a hang guard; the exit poll runs on its own timer.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, copyFileSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readLog } from '../src/log/log-reader.js';
import { LogType, type LogRecord } from '../src/log/records.js';
import { type Caller, selfCaller } from '../src/module/caller.js';
import { loadModule } from '../src/module/load.js';
import type { OwnerSignal } from '../src/module/owner.js';
import type { PmcModule } from '../src/module/pmc-module.js';
import { PMC_CPU_ANY, PmcClass, PmcFlags, PmcMode } from '../src/module/pmc-types.js';
import { ProcessHandle } from '../src/os/process-handle.js';
import { PmcError } from '../src/pmc-error.js';
import { logText, pmcstat, pmcstatAsync, tempDir } from './cli-fixture.js';
import { FakeClass, fakeModule } from './fake-class.js';
import { buildWorkload, hangGuard, killAll, Lines, machineStealNs, monotonicNs, track, Workload } from './proc-fixture.js';

let dir = '';
let workload = '';
const modules: PmcModule[] = [];

before(() => {
  dir = tempDir('proc-exits-');
  workload = buildWorkload(dir);
});

after(async () => {
  for (const m of modules) await m.shutdown().catch(() => undefined);
  killAll();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const env = (): NodeJS.ProcessEnv => ({ TSPMC_ADMIN_STATE: join(dir, 'admin.json'), TSPMC_LOCAL: '1' });
const isRoot = process.getuid?.() === 0;
/** proc-exits-nopidfd runs this file again as on a kernel without pidfd_open (TSPMC_NO_PIDFD=1). */
const pidfds = process.env.TSPMC_NO_PIDFD !== '1';

/** The workload under a name of its own (comm is the file name, up to 15 characters), for -t REGEX. */
function namedWorkload(prefix: string): { path: string; name: string } {
  const name = `${prefix}${process.pid % 100000}`.slice(0, 15);
  const path = join(dir, name);
  copyFileSync(workload, path);
  execFileSync('chmod', ['755', path]);
  return { path, name };
}

/** pmcstat's count: the last number-only line of its counting output. */
function countOf(stderr: string): bigint {
  const rows = stderr.trimEnd().split('\n').filter((l) => /^\s*\d+\s*$/.test(l));
  assert.ok(rows.length > 0, `pmcstat printed no count:\n${stderr}`);
  return BigInt(rows.at(-1)!.trim());
}

/** The "exitval PMCID PID VALUE" lines of a log, and where CLOSELOG is. */
function exitsOf(log: string): { exits: Map<number, bigint>; exitLines: number[]; closeLine: number } {
  const lines = logText(log);
  const exits = new Map<number, bigint>();
  const exitLines: number[] = [];
  lines.forEach((l, i) => {
    const f = l.trim().split(/\s+/);
    if (f[0] === 'exitval') {
      exits.set(Number(f[2]), BigInt(f[3]));
      exitLines.push(i);
    }
  });
  return { exits, exitLines, closeLine: lines.findIndex((l) => l.startsWith('closelog')) };
}

/**
 * Starts pmcstat on `args` and waits for its header: its PMCs run. With
 * `command`, its stdin and stdout are the command's, read as a Workload.
 */
async function pmcstatRunning(args: string[], command = false): Promise<{ run: ReturnType<typeof pmcstatAsync>; w?: Workload }> {
  const run = pmcstatAsync(args, { env: env(), stdio: [command ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  const w = command ? new Workload(run.child, run.child.stdout!, run.child.stdin!) : undefined;
  const header = new Lines(run.child.stderr!);
  await hangGuard(header.expect('#'), 60_000, `pmcstat ${args.join(' ')} start`, () => run.child.kill('SIGKILL'));
  return { run, w };
}

function ended(run: ReturnType<typeof pmcstatAsync>, what: string) {
  return hangGuard(run.done, 60_000, what, () => run.child.kill('SIGKILL'));
}

// ---- when a target has exited -------------------------------------------------------

test('-t PID: a main thread that called pthread_exit while another thread runs is no exit: pmcstat counts that thread to its end', async () => {
  const w = Workload.start(workload, ['leader-exit', '500']);
  const pid = await w.ready();
  const { run } = await pmcstatRunning(['-t', String(pid), '-p', 'task-clock']);
  w.go();
  const end = Number((await w.lines.expect('end'))[0]);
  const r = await ended(run, 'pmcstat -t on a zombie leader');
  assert.equal(r.status, 0, r.stderr);
  assert.ok(monotonicNs() > end);
  // The thread burns 500 ms of its own CPU clock: task-clock counts at least that.
  const count = countOf(r.stderr);
  assert.ok(count >= 495_000_000n, `counted ${count} ns of the thread's 500 ms`);
});

test('-t PID: a pid reused at once by another process is not the target: pmcstat ends with the target', { skip: !isRoot && 'reusing a pid needs /proc/sys/kernel/ns_last_pid (root)' }, async (t) => {
  const target = track(spawn('sleep', ['300'], { stdio: 'ignore' }));
  const pid = target.pid!;
  const { run } = await pmcstatRunning(['-t', String(pid), '-p', 'task-clock']);
  target.kill('SIGKILL');
  await once(target, 'exit');
  // The next pid handed out is ns_last_pid + 1: others may fork meanwhile, so try a few times.
  let impostor: ReturnType<typeof spawn> | undefined;
  for (let i = 0; i < 50 && !impostor; i++) {
    writeFileSync('/proc/sys/kernel/ns_last_pid', String(pid - 1));
    const c = track(spawn('sleep', ['300'], { stdio: 'ignore' }));
    if (c.pid === pid) impostor = c;
    else c.kill('SIGKILL');
  }
  if (!impostor) {
    run.child.kill('SIGKILL');
    t.skip(`pid ${pid} was not handed out again (other processes took it)`);
    return;
  }
  const r = await ended(run, `pmcstat -t ${pid} with the pid reused`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(impostor.exitCode, null, 'the impostor still runs');
  impostor.kill('SIGKILL');
});

// ---- PROCEXIT (-E) -------------------------------------------------------------------

test('-E -- command: the PROCEXIT of the command is in the log before CLOSELOG, every time, with the final count', async () => {
  for (let i = 0; i < 5; i++) {
    const log = join(dir, `exit-${i}.log`);
    const { run, w } = await pmcstatRunning(['-E', '-p', 'task-clock', '-O', log, '--', workload, 'exit-cpu', '20'], true);
    const pid = await w!.ready();
    w!.go();
    const r = await ended(run, 'pmcstat -E -- exit-cpu');
    assert.equal(r.status, 0, r.stderr);
    const { exits, exitLines, closeLine } = exitsOf(log);
    assert.ok(exits.has(pid), `run ${i + 1}: no PROCEXIT for the command ${pid} in the log`);
    assert.ok(exitLines.every((l) => l < closeLine), `run ${i + 1}: a PROCEXIT after CLOSELOG`);
    assert.equal(exits.get(pid), countOf(r.stderr), `run ${i + 1}: the exit count is the command's final count`);
  }
});

test('-E -t REGEX: each exit count equals the process\'s own CPU time, and they add up to the final count', async () => {
  const { path, name } = namedWorkload('pxe');
  const burns = [100, 200, 300];
  const ws = burns.map((ms) => Workload.start(path, ['exit-cpu', String(ms)]));
  const pids = await Promise.all(ws.map((w) => w.ready()));
  const log = join(dir, 'exits-regex.log');
  const { run } = await pmcstatRunning(['-E', '-p', 'task-clock', '-O', log, '-t', `^${name}$`]);
  const steal0 = machineStealNs();
  for (const w of ws) w.go();
  // Each process's CPU clock just before it exits, as it prints it.
  const own = await Promise.all(ws.map(async (w) => Number((await w.lines.expect('cpu'))[0])));
  const r = await ended(run, 'pmcstat -E -t REGEX');
  const steal = machineStealNs() - steal0;
  assert.equal(r.status, 0, r.stderr);
  const { exits } = exitsOf(log);
  assert.deepEqual([...exits.keys()].sort(), [...pids].sort());
  pids.forEach((pid, i) => {
    const v = Number(exits.get(pid));
    // The count starts at the attach (after the process's own start-up, about a ms) and ends at its exit;
    // it also counts the time the host stole meanwhile (steal), which the CPU clock leaves out.
    assert.ok(v - own[i] <= 0.01 * own[i] + 3e6 + steal && own[i] - v <= 0.01 * own[i] + 3e6, `process ${pid} (${burns[i]} ms): exit count ${v} ns, its own CPU clock ${own[i]} ns (machine steal ${steal} ns)`);
  });
  assert.equal([...exits.values()].reduce((a, b) => a + b, 0n), countOf(r.stderr), 'the exit counts add up to the final count');
});

test('-E -d -- command: each process of the tree, forked after the attach, has its PROCEXIT with its own count; they add up to the final count', async () => {
  // Five children one after another, each burning 40 ms in two threads, then the command burns 40 ms itself.
  const log = join(dir, 'exits-tree.log');
  const { run, w } = await pmcstatRunning(['-E', '-d', '-p', 'task-clock', '-O', log, '--', workload, 'children', '5', '40'], true);
  const steal0 = machineStealNs();
  const pid = await w!.ready();
  w!.go();
  // Each process's CPU clock just before it exits, as it prints it (the command's own, children not included).
  const own = new Map<number, number>();
  for (let i = 0; i < 5; i++) {
    const [child, cpu] = await w!.lines.expect('child');
    own.set(Number(child), Number(cpu));
  }
  own.set(pid, Number((await w!.lines.expect('own'))[0]));
  const r = await ended(run, 'pmcstat -E -d -- children');
  const steal = machineStealNs() - steal0;
  assert.equal(r.status, 0, r.stderr);
  const { exits, exitLines, closeLine } = exitsOf(log);
  // Before, only the command had a PROCEXIT, with the whole tree's count.
  assert.deepEqual([...exits.keys()].sort(), [...own.keys()].sort(), 'a PROCEXIT for the command and each child');
  assert.ok(exitLines.every((l) => l < closeLine), 'every PROCEXIT before CLOSELOG');
  for (const [p, cpu] of own) {
    const v = Number(exits.get(p));
    // The command's clock also holds its launcher's start-up before the attach (a few ms).
    const slack = 0.01 * cpu + (p === pid ? 10e6 : 3e6);
    // task-clock also counts the host's steal, which the CPU clock leaves out.
    assert.ok(v - cpu <= slack + steal && cpu - v <= slack, `process ${p}: exit count ${v} ns, its own CPU clock ${cpu} ns (machine steal ${steal} ns)`);
  }
  assert.equal([...exits.values()].reduce((a, b) => a + b, 0n), countOf(r.stderr), 'the exit counts add up to the final count');
});

// ---- PROCCSW (-W) ------------------------------------------------------------------

/** The sum of a process's "cswval PMCID PID VALUE" slices in a log, and how many. */
function slicesOf(log: string, pid: number): { sum: bigint; n: number } {
  let sum = 0n;
  let n = 0;
  for (const l of logText(log)) {
    const f = l.trim().split(/\s+/);
    if (f[0] === 'cswval' && Number(f[2]) === pid) {
      sum += BigInt(f[3]);
      n++;
    }
  }
  return { sum, n };
}

test('-W: the context-switch slices of a command that starts a thread every ms add up to its final count', async (t) => {
  const log = join(dir, 'csw-command.log');
  const { run, w } = await pmcstatRunning(['-W', '-p', 'task-clock', '-O', log, '--', workload, 'churn', '1000', '500', '300'], true);
  const pid = await w!.ready();
  await w!.lines.expect('done');
  w!.finish();
  const r = await ended(run, 'pmcstat -W -- churn');
  assert.equal(r.status, 0, r.stderr);
  const { sum, n } = slicesOf(log, pid);
  const final = countOf(r.stderr);
  t.diagnostic(`${n} slices, sum ${sum}, final count ${final}`);
  assert.ok(n > 100, `a few hundred threads switch out: ${n} slices`);
  assert.equal(sum, final, 'the slices add up to the final count');
});

test('-W -t PID: the slices of a target that exits add up to its final count', async () => {
  const w = Workload.start(workload, ['exit-cpu', '200']);
  const pid = await w.ready();
  const log = join(dir, 'csw-target.log');
  const { run } = await pmcstatRunning(['-W', '-p', 'task-clock', '-O', log, '-t', String(pid)]);
  w.go();
  const r = await ended(run, 'pmcstat -W -t');
  assert.equal(r.status, 0, r.stderr);
  const { sum, n } = slicesOf(log, pid);
  assert.ok(n > 0, 'no slice logged');
  assert.equal(sum, countOf(r.stderr), 'the slices add up to the final count');
});

// ---- -t REGEX and vanished targets ----------------------------------------------------

test('-t REGEX matching a live process and a zombie attaches the live one (pmcstat skips what has exited)', async () => {
  const { path, name } = namedWorkload('pzm');
  const w = Workload.start(path, ['zombie']);
  const [pid, child] = (await w.lines.expect('ready')).map(Number);
  for (const hang = Date.now() + 60_000; !readFileSync(`/proc/${child}/stat`, 'utf8').includes(') Z ') && Date.now() < hang; ) await new Promise((r) => setTimeout(r, 2));
  assert.match(readFileSync(`/proc/${child}/stat`, 'utf8'), /\) Z /, 'the child is a zombie');
  const r = pmcstat(['-t', `^${name}$`, '-p', 'task-clock', '-l', '0.2'], { env: env() });
  assert.equal(r.status, 0, `pmcstat failed with a zombie among its targets: ${r.stderr}`);
  assert.ok(countOf(r.stderr) >= 0n);
  // SIGTERM: the workload reaps its zombie before it goes.
  process.kill(pid, 'SIGTERM');
  await w.exited;
});

// ---- failures on the way ---------------------------------------------------------------

/** A module over a fake class (counting PMCs with PROCEXIT need a log: one into a temp file). */
function fakeWithLog(): { m: PmcModule; cls: FakeClass; logPath: string; fd: number } {
  const cls = new FakeClass({ rows: 4 });
  const m = fakeModule({ classes: [cls] });
  modules.push(m);
  const logPath = join(dir, `fake-${modules.length}.log`);
  const fd = openSync(logPath, 'w');
  return { m, cls, logPath, fd };
}

async function records(path: string): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const r of readLog(path)) out.push(r);
  return out;
}

function nextSignal(m: PmcModule, match: (s: OwnerSignal) => boolean, what: string): Promise<OwnerSignal> {
  return hangGuard(
    new Promise<OwnerSignal>((resolve) => {
      const off = m.onSignal(selfCaller(), (s) => {
        if (match(s)) {
          off();
          resolve(s);
        }
      });
    }),
    60_000,
    what,
  );
}

test('a target whose final count cannot be read: no PROCEXIT of 0, a notice instead; a detach that cannot read reads as the error', async () => {
  const { m, cls, logPath, fd } = fakeWithLog();
  const me = selfCaller();
  await m.logs.configureLog(me, fd);
  const target = track(spawn('sleep', ['300'], { stdio: 'ignore' }));
  const id = m.pmcAllocate(me, { classId: PmcClass.FAKE, event: 1, mode: PmcMode.TC, cpu: PMC_CPU_ANY, caps: 0, flags: PmcFlags.LOG_PROCEXIT });
  m.pmcAttach(me, id, target.pid!);
  m.pmcStart(me, id);
  cls.advance(7n);
  cls.setsOf(target.pid!)[0].readError = new PmcError('EBUSY', 'the fake counter was pushed off its PMU');
  // The exit poll finds the exit on its own timer.
  const notice = nextSignal(m, (s) => /final count could not be read/.test(s.reason), 'the notice of an unreadable final count');
  target.kill('SIGKILL');
  assert.match((await notice).reason, /EBUSY|pushed off/);

  // A detach that cannot read the target's count: the PMC's value is that error, not a smaller number.
  const other = track(spawn('sleep', ['300'], { stdio: 'ignore' }));
  const id2 = m.pmcAllocate(me, { classId: PmcClass.FAKE, event: 2, mode: PmcMode.TC, cpu: PMC_CPU_ANY, caps: 0, flags: 0 });
  m.pmcAttach(me, id2, other.pid!);
  m.pmcStart(me, id2);
  cls.advance(3n);
  cls.setsOf(other.pid!)[0].readError = new PmcError('EBUSY', 'the fake counter was pushed off its PMU');
  m.pmcDetach(me, id2, other.pid!);
  assert.throws(() => m.pmcRead(me, id2), (e: unknown) => e instanceof PmcError && e.code === 'EBUSY');
  other.kill('SIGKILL');

  await m.logs.closeLog(me);
  closeSync(fd);
  const exits = (await records(logPath)).filter((r) => r.type === LogType.PROCEXIT);
  assert.deepEqual(exits, [], 'no PROCEXIT with a count that was never read');
});

/**
 * Runs while every descriptor this process may open is taken (EMFILE), until
 * the exit reaper has made two looks of its own; the limit and the
 * descriptors are given back after. Returns what the owner was told
 * meanwhile: targets gone (SIGIO with a PMC), and looks that could not tell.
 */
async function withoutDescriptors(m: PmcModule, owner: Caller): Promise<{ gone: OwnerSignal[]; notices: string[] }> {
  const gone: OwnerSignal[] = [];
  const notices: string[] = [];
  m.onSignal(owner, (s) => (s.pmcId !== undefined ? gone.push(s) : /cannot tell whether/.test(s.reason) && notices.push(s.reason)));
  const limits = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'))!.split(/\s{2,}/);
  const [soft, hard] = [limits[1], limits[2]];
  const fds: number[] = [];
  // A limit a little above what this process holds, so that taking the rest is quick.
  execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${readdirSync('/proc/self/fd').length + 64}:${hard}`]);
  try {
    for (;;) {
      try {
        fds.push(openSync('/dev/null', 'r'));
      } catch (e) {
        assert.equal((e as NodeJS.ErrnoException).code, 'EMFILE');
        break;
      }
    }
    const looks = m.reaper.looks;
    await hangGuard(
      new Promise<void>((resolve) => {
        const poll = setInterval(() => m.reaper.looks >= looks + 2 && (clearInterval(poll), resolve()), 20);
      }),
      60_000,
      'two looks of the exit reaper without descriptors',
    );
  } finally {
    for (const fd of fds) closeSync(fd);
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${soft}:${hard}`]);
  }
  return { gone, notices };
}

test(`out of descriptors (EMFILE), a root owner's live target is not taken for exited: ${pidfds ? 'its pidfd tells, no /proc read, no notice' : 'without a pidfd, the look that must read /proc says it cannot tell, naming EMFILE'}; the exit is seen afterwards`, async () => {
  const { m } = fakeWithLog();
  const me = selfCaller();
  const target = track(spawn('sleep', ['300'], { stdio: 'ignore' }));
  const id = m.pmcAllocate(me, { classId: PmcClass.FAKE, event: 1, mode: PmcMode.TC, cpu: PMC_CPU_ANY, caps: 0, flags: 0 });
  m.pmcAttach(me, id, target.pid!);
  m.pmcStart(me, id);
  const { gone, notices } = await withoutDescriptors(m, me);
  assert.deepEqual(gone, [], 'the live target was taken for exited');
  if (pidfds) assert.deepEqual(notices, [], 'a root owner never loses the right to watch: the reaper needs no /proc read');
  else assert.ok(notices.length === 1 && new RegExp(`cannot tell whether process ${target.pid} is still there: .*EMFILE`).test(notices[0]), `one notice naming EMFILE: ${notices.join(' | ')}`);
  const told = nextSignal(m, (s) => s.pmcId === id, 'the SIGIO for the exited target');
  target.kill('SIGKILL');
  await told;
});

test('out of descriptors (EMFILE), a non-root owner\'s target matched by its saved uid: the look that must read its credentials says it cannot tell, naming EMFILE; not taken for exited; the exit is seen afterwards', { skip: !isRoot && 'needs root (the target changes its uids)' }, async () => {
  const { m } = fakeWithLog();
  // As pmcd sees a peer of uid 60002 (gid 60001). Its target runs as uid 60001 with saved uid 60002:
  // any exec would reset the saved uid, so the reaper reads the target's whole credentials at every look.
  const owner: Caller = { pid: process.pid, creds: { euid: 60002, ruid: 60002, suid: 60002, egid: 60001, rgid: 60001, sgid: 60001, groups: [], capEff: 0n } };
  const w = Workload.start(workload, ['saved-uid', '60001', '60002']);
  const pid = await w.ready();
  const id = m.pmcAllocate(owner, { classId: PmcClass.FAKE, event: 1, mode: PmcMode.TC, cpu: PMC_CPU_ANY, caps: 0, flags: 0 });
  m.pmcAttach(owner, id, pid);
  m.pmcStart(owner, id);
  const { gone, notices } = await withoutDescriptors(m, owner);
  assert.deepEqual(gone, [], 'the live target was taken for exited');
  assert.equal(notices.length, 1, `one notice for the target: ${notices.join(' | ')}`);
  assert.match(notices[0], new RegExp(`cannot tell whether process ${pid} is still there: .*EMFILE`));
  const told = nextSignal(m, (s) => s.pmcId === id, 'the SIGIO for the exited target');
  w.finish();
  await w.exited;
  await told;
});

test('a log whose last buffers cannot be written when its owner exits: the owner\'s close rejects with ENOSPC', async () => {
  const { m } = fakeWithLog();
  const me = selfCaller();
  const full = openSync('/dev/full', 'w');
  try {
    await m.logs.configureLog(me, full);
    m.logs.writeLog(me, 42);
    await assert.rejects(m.ownerExited(me), (e: unknown) => e instanceof PmcError && e.code === 'ENOSPC');
  } finally {
    closeSync(full);
  }
});

test('a corrupt PMC admin state file is an error naming it, not "every row enabled"', () => {
  const path = join(dir, 'corrupt-admin.json');
  const saved = process.env.TSPMC_ADMIN_STATE;
  try {
    process.env.TSPMC_ADMIN_STATE = path;
    for (const text of ['{"disabled": [[0, 1]', '{"disabled": [[0, "one"]]}', '[]', '']) {
      writeFileSync(path, text);
      assert.throws(
        () => loadModule({ env: { TSPMC_CONFIG: '/dev/null' } }),
        (e: unknown) => e instanceof PmcError && e.code === 'EINVAL' && e.message.includes(path),
        `admin state ${JSON.stringify(text)}`,
      );
    }
    writeFileSync(path, '{"disabled": [[0, 1]]}\n');
    const m = loadModule({ env: { TSPMC_CONFIG: '/dev/null' } });
    modules.push(m);
    assert.equal(m.getPmcInfo(0)[1].enabled, false, 'the disabled row stays disabled');
    const r = pmcstat(['-p', 'task-clock', '--', 'true'], { env: { ...env(), TSPMC_ADMIN_STATE: path } });
    assert.equal(r.status, 0, r.stderr);
    writeFileSync(path, 'garbage');
    const bad = pmcstat(['-p', 'task-clock', '--', 'true'], { env: { ...env(), TSPMC_ADMIN_STATE: path } });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, new RegExp(`${path}.*corrupt`));
  } finally {
    if (saved === undefined) delete process.env.TSPMC_ADMIN_STATE;
    else process.env.TSPMC_ADMIN_STATE = saved;
  }
});

test('signals arriving while a target is looked at (a profiler\'s SIGPROF, any handled signal) are no answer: a live target is never taken for an error or an exit', async () => {
  // A handled signal ends poll(2) with EINTR even with a zero timeout: under
  // `node --cpu-prof` pmcstat used to stop with 'poll of the pidfd ... failed (EINTR)'.
  const target = track(spawn('sleep', ['60'], { stdio: 'ignore' }));
  await once(target, 'spawn');
  const handle = ProcessHandle.open(target.pid!);
  const onSignal = (): void => undefined;
  process.on('SIGUSR2', onSignal);
  const storm = track(spawn('sh', ['-c', `while kill -USR2 ${process.pid} 2>/dev/null; do :; done`], { stdio: 'ignore' }));
  await once(storm, 'spawn');
  try {
    let looks = 0;
    // Looks, interleaved with turns of the event loop (where Node takes the signals), for 2 s.
    for (const end = Date.now() + 2000; Date.now() < end; ) {
      for (let i = 0; i < 2000; i++, looks++) assert.equal(handle.hasExited(), false);
      await new Promise((r) => setImmediate(r));
    }
    assert.ok(looks > 0);
  } finally {
    storm.kill('SIGKILL');
    process.off('SIGUSR2', onSignal);
    handle.close();
    target.kill('SIGKILL');
  }
});
