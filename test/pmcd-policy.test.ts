// hwpmc's policy, enforced by pmcd for users created here (useradd, setpriv):
// a user may attach only to processes it could debug (never another user's
// or root's), gets system PMCs only with unprivileged_syspmcs, never
// PMCADMIN; it counts and samples its own processes, with kernel frames in
// their call chains only when unprivileged_kernel_callchains is on (and is
// told when it gets user mode only). Every refusal is in pmcd's log with the
// peer's identity. A peer in another PID namespace gets no system PMCs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readLog } from '../src/log/log-reader.js';
import { LogType } from '../src/log/records.js';
import { distFor, TestPmcd, TestUser, waitFor } from './pmcd-fixture.js';
import { spinner } from './spinner.js';

const isRoot = process.getuid?.() === 0;
const haveTools = spawnSync('setpriv', ['--version']).status === 0 && spawnSync('useradd', ['--help']).status === 0;

// Run by a test user against pmcd (TSPMC_SOCKET); prints one JSON line of outcomes.
const SCRIPT = `
const [dist, mode, ...rest] = process.argv.slice(2);
const { Libpmc, PmcState } = await import(dist + '/src/lib/index.js');
const { openSync, closeSync } = await import('node:fs');
const { spawn } = await import('node:child_process');
const lib = await Libpmc.init();
const out = { client: lib.client.constructor.name };
async function attempt(name, f) {
  try { out[name] = { ok: true, value: String(await f()) }; }
  catch (e) { out[name] = { ok: false, code: e.code, message: e.message }; }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
if (mode === 'checks') {
  const [otherUserPid, rootPid] = rest.map(Number);
  for (const [name, pid] of [['attachOther', otherUserPid], ['attachRoot', rootPid]]) {
    await attempt(name, async () => { const id = await lib.allocate('task-clock', 'TC'); try { await lib.attach(id, pid); } finally { await lib.release(id); } });
  }
  await attempt('systemPmc', () => lib.allocate('cpu-clock', 'SC', { cpu: 0 }));
  await attempt('admin', () => lib.disable(0, 0));
  await attempt('kernelMode', () => lib.allocate('cpu-clock,os', 'TS'));
  const own = spawn('sh', ['-c', 'i=0; while [ $i -lt 2000000 ]; do i=$((i+1)); done'], { stdio: 'ignore' });
  await attempt('own', async () => {
    const id = await lib.allocate('task-clock', 'TC');
    await lib.attach(id, own.pid);
    await lib.start(id);
    // Until the loop has run while counted (60 s is a hang).
    for (const hang = Date.now() + 60_000; Date.now() < hang; await sleep(10)) {
      const v = await lib.read(id);
      if (v > 0n) return v;
    }
    return lib.read(id);
  });
  own.kill();
} else if (mode === 'nopmcd') {
  // No pmcd (its socket absent): the in-process module, whose refusals say how pmcd would help.
  const { openModuleClient } = await import(dist + '/src/lib/index.js');
  const local = await Libpmc.init(await openModuleClient({}, rest[0]));
  out.localClient = local.client.constructor.name;
  await attempt('systemPmc', () => local.allocate('cpu-clock', 'SC', { cpu: 0 }));
  await local.close();
} else if (mode === 'exec') {
  // Our own child execs a setgid program of a group we are not in: pmcd must drop it (PMC_FN_PROCESS_EXEC).
  const [program] = rest;
  const child = spawn('sh', ['-c', 'read x; exec ' + program], { stdio: ['pipe', 'ignore', 'ignore'] });
  const notices = [];
  lib.client.onSignal((s) => notices.push(s.reason));
  await attempt('before', async () => {
    const id = await lib.allocate('task-clock', 'TC');
    await lib.attach(id, child.pid);
    await lib.start(id);
    return id;
  });
  child.stdin.write('go\\n');
  for (const hang = Date.now() + 60_000; notices.length === 0 && Date.now() < hang; ) await sleep(10);
  out.notices = notices;
  await attempt('reattach', async () => lib.attach(await lib.allocate('task-clock', 'TC'), child.pid));
  child.kill();
} else if (mode === 'sample') {
  // Sample our own process that spends its time in the kernel; the log is ours, pmcd writes it.
  const [logPath, system] = rest;
  const fd = openSync(logPath, 'w');
  await lib.configureLogfile(fd);
  const busy = spawn('dd', ['if=/dev/zero', 'of=/dev/null', 'bs=64k', 'count=100000000'], { stdio: 'ignore' });
  await attempt('sampler', async () => {
    const id = system === 'system'
      ? await lib.allocate('cpu-clock', 'SS', { cpu: 0, count: 1000000n })
      : await lib.allocate('cpu-clock', 'TS', { count: 250000n });
    if (system !== 'system') await lib.attach(id, busy.pid);
    await lib.start(id);
    await sleep(1500);
    await lib.stop(id);
    return lib.describe(id).userOnly ?? '';
  });
  busy.kill();
  await lib.closeLogfile();
  closeSync(fd);
}
await lib.close();
console.log(JSON.stringify(out));
`;

interface Outcome {
  ok: boolean;
  code?: string;
  message?: string;
  value?: string;
}

describe('pmcd policy for unprivileged users', { skip: (!isRoot || !haveTools) && 'needs root, useradd and setpriv' }, () => {
  let alice: TestUser;
  let bob: TestUser;
  let stage: string;
  let dist: string;
  let bobsProcess: ChildProcess;
  let rootsProcess: ChildProcess;

  function run(pmcd: TestPmcd | undefined, user: TestUser, args: string[]): Record<string, Outcome> {
    const r = spawnSync(user.prefix[0], [...user.prefix.slice(1), process.execPath, join(stage, 'script.mjs'), dist, ...args], {
      env: { PATH: process.env.PATH, TSPMC_SOCKET: pmcd?.socket, TSPMC_LOCAL: pmcd ? undefined : '1' },
      cwd: stage,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const o = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, Outcome> & { client: unknown };
    assert.equal(o.client, pmcd ? 'PmcdClient' : 'LocalModuleClient');
    return o;
  }

  /** Call-chain pcs of a log: all of them, and those in the kernel half. */
  async function chainPcs(path: string): Promise<{ samples: number; kernel: number; pids: Set<number> }> {
    let samples = 0;
    let kernel = 0;
    const pids = new Set<number>();
    for await (const r of readLog(path)) {
      if (r.type !== LogType.CALLCHAIN) continue;
      samples++;
      pids.add(r.pid);
      for (const pc of r.pcs) if (pc >= 0xffff800000000000n && pc < 0xffffffffffffff00n) kernel++;
    }
    return { samples, kernel, pids };
  }

  before(() => {
    alice = TestUser.create('alice');
    bob = TestUser.create('bob');
    stage = mkdtempSync(join(tmpdir(), 'pmcd-policy-'));
    chmodSync(stage, 0o777);
    writeFileSync(join(stage, 'script.mjs'), SCRIPT, { mode: 0o644 });
    dist = distFor(alice, stage);
    bobsProcess = spawn(bob.prefix[0], [...bob.prefix.slice(1), 'sleep', '300'], { stdio: 'ignore' });
    rootsProcess = spawn('sleep', ['300'], { stdio: 'ignore' });
  });

  after(async () => {
    for (const c of [bobsProcess, rootsProcess]) {
      if (c.exitCode === null) {
        c.kill('SIGKILL');
        await once(c, 'exit');
      }
    }
    rmSync(stage, { recursive: true, force: true });
    alice?.drop();
    bob?.drop();
  });

  test('default tunables: EPERM for others\' processes, system PMCs, PMCADMIN and kernel mode; own processes counted; refusals logged', async () => {
    const pmcd = await TestPmcd.start();
    try {
      // bob's sleep runs under setpriv's pid until exec: its credentials settle first.
      const bobPid = bobsProcess.pid!;
      const r = run(pmcd, alice, ['checks', String(bobPid), String(rootsProcess.pid)]);
      for (const k of ['attachOther', 'attachRoot', 'systemPmc', 'admin', 'kernelMode']) {
        assert.deepEqual([r[k].ok, r[k].code], [false, 'EPERM'], `${k}: ${r[k].message}`);
      }
      assert.match(r.attachOther.message!, new RegExp(`uid ${alice.uid}\\) may not debug process ${bobPid} \\(uid ${bob.uid}\\)`));
      assert.match(r.systemPmc.message!, /unprivileged_syspmcs/);
      assert.match(r.kernelMode.message!, /unprivileged_kernel_callchains/);
      assert.ok(r.own.ok, r.own.message);
      assert.ok(BigInt(r.own.value!) > 0n, 'its own process was counted');
      // pmcd's log reaches us through a pipe this process reads while it waits.
      for (const op of ['PMCATTACH', 'PMCALLOCATE', 'PMCADMIN']) {
        const line = new RegExp(`refused ${op} to pid \\d+ uid ${alice.uid} gid ${alice.gid} session \\d+: .*\\(EPERM\\)`);
        await waitFor(`pmcd to log the refused ${op}`, () => line.test(pmcd.stderr));
      }
    } finally {
      await pmcd.cleanup();
    }
  });

  test('unprivileged_kernel_callchains off: user mode only, said so, no kernel frames; on: kernel frames in its own call chains', async () => {
    for (const on of [false, true]) {
      const pmcd = await TestPmcd.start({ config: on ? ['kern.hwpmc.unprivileged_kernel_callchains = 1'] : [] });
      try {
        const log = join(stage, `own-${on}.pmclog`);
        const r = run(pmcd, alice, ['sample', log]);
        assert.ok(r.sampler.ok, r.sampler.message);
        const { samples, kernel } = await chainPcs(log);
        assert.ok(samples > 10, `${samples} samples`);
        if (on) {
          assert.equal(r.sampler.value, '', 'no user-mode-only note');
          assert.ok(kernel > 0, `tunable on: ${kernel} kernel frames in ${samples} samples of dd`);
        } else {
          assert.match(r.sampler.value!, /^user mode only: .*unprivileged_kernel_callchains/);
          assert.equal(kernel, 0, `tunable off: ${kernel} kernel frames`);
        }
      } finally {
        await pmcd.cleanup();
      }
    }
  });

  test('pmcstat through pmcd: a refusal names pmcd\'s tunable, not perf_event_paranoid (pmcd does not go by it)', async () => {
    const pmcd = await TestPmcd.start();
    try {
      for (const args of [['-P', 'cpu-clock,os', '-O', join(stage, 'os.pmclog'), '--', 'true'], ['-S', 'cpu-clock', '-l', '1', '-O', join(stage, 'sys.pmclog')]]) {
        const r = spawnSync(alice.prefix[0], [...alice.prefix.slice(1), process.execPath, join(dist, 'bin/pmcstat.cjs'), ...args], {
          env: { PATH: process.env.PATH, TSPMC_SOCKET: pmcd.socket },
          cwd: stage,
          encoding: 'utf8',
          timeout: 60_000,
        });
        assert.equal(r.status, 1, r.stderr);
        assert.match(r.stderr, /pmcstat: ERROR: Cannot allocate .*(unprivileged_kernel_callchains|unprivileged_syspmcs).* \(EPERM\)\n$/);
        assert.doesNotMatch(r.stderr, /perf_event_paranoid/);
      }
    } finally {
      await pmcd.cleanup();
    }
  });

  test('without pmcd, an in-process refusal says that pmcd is not running and how to start it', () => {
    const r = run(undefined, alice, ['nopmcd', join(stage, 'no-pmcd-here.sock')]) as unknown as Record<string, Outcome> & { localClient: string };
    assert.equal(r.localClient, 'LocalWithoutPmcd');
    assert.deepEqual([r.systemPmc.ok, r.systemPmc.code], [false, 'EPERM']);
    assert.match(r.systemPmc.message!, /pmcd is not running \(start it as root with `pmcd` or `systemctl start pmcd`\) \(EPERM\)$/);
  });

  test('a target that execs into credentials its owner may not debug is detached, and the owner told (with pidfds, and as on a kernel without: TSPMC_NO_PIDFD=1)', async () => {
    const program = join(stage, 'setgid-sleeper');
    writeFileSync(join(stage, 'sleeper.c'), '#include <unistd.h>\nint main(void) { sleep(30); return 0; }\n');
    execFileSync('gcc', ['-o', program, join(stage, 'sleeper.c')]);
    execFileSync('chown', ['root:root', program]);
    chmodSync(program, 0o2755);
    for (const env of [{}, { TSPMC_NO_PIDFD: '1' }]) {
      const pmcd = await TestPmcd.start({ env });
      try {
        const r = run(pmcd, alice, ['exec', program]) as unknown as Record<string, Outcome> & { notices: string[] };
        assert.ok(r.before.ok, r.before.message);
        assert.deepEqual(r.notices, ['PMC lost all its targets'], JSON.stringify(env));
        // Attaching again is refused now that the target runs with group root.
        assert.deepEqual([r.reattach.ok, r.reattach.code], [false, 'EPERM'], r.reattach.message);
      } finally {
        await pmcd.cleanup();
      }
    }
  });

  test('unprivileged_syspmcs: the user samples the whole system (other users\' processes too)', async () => {
    const pmcd = await TestPmcd.start({ config: ['security.bsd.unprivileged_syspmcs = 1'] });
    // root's busy loop pinned to CPU 0, the CPU the system PMC samples: two busy processes on two CPUs
    // may otherwise each keep a CPU for the whole 1.5 s, and CPU 0 would show only alice's dd.
    const loop = spinner('taskset', '-c', '0');
    try {
      const log = join(stage, 'system.pmclog');
      const r = run(pmcd, alice, ['sample', log, 'system']);
      assert.ok(r.sampler.ok, r.sampler.message);
      const { samples, pids } = await chainPcs(log);
      assert.ok(samples > 0, 'system-wide samples');
      assert.ok(pids.has(loop.pid!), `root's busy loop (pid ${loop.pid}) among the sampled pids ${[...pids].join(' ')}`);
    } finally {
      loop.kill('SIGKILL');
      await pmcd.cleanup();
    }
  });

  test('a peer in another PID namespace (the seed\'s jail) gets no system PMCs', { skip: spawnSync('unshare', ['--version']).status !== 0 && 'needs unshare' }, async () => {
    const pmcd = await TestPmcd.start();
    try {
      const script = join(stage, 'jailed.mjs');
      writeFileSync(
        script,
        `const { Libpmc } = await import(${JSON.stringify(join(dist, 'src/lib/index.js'))});
         const lib = await Libpmc.init();
         try { await lib.allocate('cpu-clock', 'SC', { cpu: 0 }); console.log('allowed'); }
         catch (e) { console.log(e.code + ' ' + e.message); }
         await lib.close();`,
      );
      const out = execFileSync('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, script], { env: { PATH: process.env.PATH, TSPMC_SOCKET: pmcd.socket }, encoding: 'utf8', timeout: 60_000 });
      assert.match(out, /^EPERM system-mode PMCs are not available inside another PID namespace/);
      await waitFor('pmcd to log the refusal', () => /refused PMCALLOCATE to pid \d+ uid 0 gid 0 \(other PID namespace\)/.test(pmcd.stderr));
    } finally {
      await pmcd.cleanup();
    }
  });
});
