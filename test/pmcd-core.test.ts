// pmcd as the machine's one module: every process's PMCs in one row table
// (pmccontrol -l and -s see them all, two pmcstat processes contend for a
// target's row), values and errors crossing the socket as the module gives
// them, owners released when their connection closes or their process dies,
// SIGIO on the connection, and SIGTERM closing every log with CLOSELOG.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeFrame, FrameDecoder, FrameKind } from '../src/ipc/frame.js';
import { isPmcError, PmcOp } from '../src/lib/index.js';
import { connectPmcd } from '../src/lib/open-client.js';
import { PMC_VERSION } from '../src/module/pmc-types.js';
import { readLog } from '../src/log/log-reader.js';
import { LogType } from '../src/log/records.js';
import { pmccontrol, pmcstat, pmcstatAsync } from './cli-fixture.js';
import { DIST, killChildren, TestPmcd, waitFor } from './pmcd-fixture.js';
import { hangGuard } from './proc-fixture.js';
import { spinner } from './spinner.js';

const sleeper = (): ChildProcess => spawn('sleep', ['300'], { stdio: 'ignore' });

/**
 * An owner process that dies while a child it started keeps its connection
 * open: `pmcd` releases the owner and says so in its log.
 */
async function ownerDiesWithHeir(pmcd: TestPmcd, child: (c: ChildProcess) => ChildProcess): Promise<void> {
  const script = join(pmcd.dir, 'forker.mjs');
  writeFileSync(
    script,
    `import { Libpmc } from ${JSON.stringify(join(DIST, 'src/lib/index.js'))};
     import { spawn } from 'node:child_process';
     const lib = await Libpmc.init();
     const id = await lib.allocate('page-faults', 'TC');
     await lib.attach(id, Number(process.argv[2]));
     await lib.start(id);
     // The connection's descriptor, inherited by a child that outlives this process (as after a fork).
     const heir = spawn('sleep', ['300'], { stdio: ['ignore', 'ignore', 'ignore', lib.client.socket] });
     process.stdout.write(heir.pid + '\\n');
     setInterval(() => {}, 1000);`,
  );
  const target = child(spinner());
  const lib = await pmcd.libpmc();
  const client = child(spawn(process.execPath, [script, String(target.pid)], { env: pmcd.clientEnv(), stdio: ['ignore', 'pipe', 'inherit'] }));
  let heir = 0;
  try {
    let out = '';
    client.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    await waitFor('the client to start counting', async () => out.includes('\n') && (await lib.ownerStats()).some((o) => o.pid === client.pid && o.running === 1));
    heir = Number(out.trim());
    client.kill('SIGKILL');
    await waitFor('the dead owner to be released', async () => {
      const rows = await lib.pmcInfo(0);
      return !(await lib.ownerStats()).some((o) => o.pid === client.pid) && !rows.some((r) => r.holders.some((h) => h.ownerPid === client.pid));
    }, 60_000);
    assert.ok(process.kill(heir, 0), 'the connection still lives in the heir');
    await waitFor('pmcd to log it', () => pmcd.stderr.includes(`pid ${client.pid} uid 0 gid 0 session`) && pmcd.stderr.includes('exited; its connection, open in another process, is closed'));
  } finally {
    if (heir > 0) process.kill(heir, 'SIGKILL');
    await lib.close();
  }
}

describe('pmcd', () => {
  let pmcd: TestPmcd;
  const children: ChildProcess[] = [];
  const child = (c: ChildProcess): ChildProcess => (children.push(c), c);

  before(async () => {
    pmcd = await TestPmcd.start();
  });
  after(async () => {
    for (const c of children) await killChildren([c]);
    await pmcd.cleanup();
  });

  test('values and errors cross the socket as the module gives them', async () => {
    const lib = await pmcd.libpmc();
    const target = child(spinner());
    try {
      assert.equal(lib.client.constructor.name, 'PmcdClient');
      const id = await lib.allocate('task-clock', 'TC');
      await lib.attach(id, target.pid!);
      await assert.rejects(lib.attach(id, target.pid!), (e) => isPmcError(e, 'EEXIST'));
      await lib.start(id);
      await waitFor('task-clock to count', async () => (await lib.read(id)) > 1_000_000n);
      await assert.rejects(lib.write(id, 5n), (e) => isPmcError(e, 'EBUSY'));
      await lib.stop(id);
      const old = await lib.rw(id, 1n << 40n);
      assert.ok(old > 1_000_000n);
      assert.equal(await lib.read(id), 1n << 40n, 'a 41-bit value survives the trip both ways');
      assert.deepEqual(await lib.readMany([id, id]), [1n << 40n, 1n << 40n], 'PMCREADMANY: an array of bigints');
      await assert.rejects(lib.readMany([id, id ^ 0xff]), (e) => isPmcError(e, 'EINVAL'));
      await assert.rejects(lib.attach(id, 0x7ffffff0), (e) => isPmcError(e, 'ESRCH'));
      // A request the schema refuses is EINVAL naming the field, and the module never sees it.
      await assert.rejects(lib.client.call(PmcOp.PMCATTACH, { id, pid: 'x' as unknown as number }), (e) => isPmcError(e, 'EINVAL') && /pid/.test((e as Error).message));
      await assert.rejects(lib.client.call(999 as PmcOp, {} as never), (e) => isPmcError(e, 'EINVAL'));
      await lib.release(id);
    } finally {
      await lib.close();
    }
  });

  test('one row table: two owners share it, pmccontrol -l shows both pids and -s both owners', async () => {
    const lib = await pmcd.libpmc();
    const t1 = child(sleeper());
    const t2 = child(sleeper());
    const other = pmcstatAsync(['-p', 'task-clock', '-t', String(t2.pid)], { env: pmcd.clientEnv() });
    try {
      const id = await lib.allocate('task-clock', 'TC');
      await lib.attach(id, t1.pid!);
      await lib.start(id);
      await waitFor('the pmcstat process to own a running PMC', async () => (await lib.ownerStats()).some((o) => o.pid === other.child.pid && o.running === 1));
      const list = pmccontrol(['-l'], { env: pmcd.clientEnv() });
      assert.equal(list.status, 0, list.stderr);
      const soft0 = list.stdout.split('\n').find((l) => /^ 0\s+SOFT0\b/.test(l))!;
      assert.match(soft0, new RegExp(`\\(pid ${process.pid}\\) task-clock`));
      assert.match(soft0, new RegExp(`\\(pid ${other.child.pid}\\) task-clock`));
      const stats = pmccontrol(['-s'], { env: pmcd.clientEnv() });
      assert.equal(stats.status, 0, stats.stderr);
      const owners = stats.stdout.split('#OWNER')[1].trim().split('\n').slice(1);
      const byPid = new Map(owners.map((l) => [Number(l.trim().split(/\s+/)[0]), l.trim().split(/\s+/)]));
      assert.deepEqual(byPid.get(process.pid)!.slice(1, 7), ['0', '0', '0', '0', '1', '1']);
      assert.deepEqual(byPid.get(other.child.pid!)!.slice(1, 7), ['0', '0', '0', '0', '1', '1']);
    } finally {
      other.child.kill('SIGINT');
      await other.done;
      await lib.close();
    }
  });

  test('one owner\'s PMC ids mean nothing to another owner', async () => {
    const a = await pmcd.libpmc();
    const b = await pmcd.libpmc();
    const aTarget = child(spinner());
    const bTarget = child(sleeper());
    try {
      const id = await a.allocate('task-clock', 'TC');
      await a.attach(id, aTarget.pid!);
      await a.start(id);
      // b's own PMCs have other ids: a's is none of them.
      const system = await b.allocate('page-faults', 'SC', { cpu: 0 });
      assert.notEqual(system, id);
      for (const op of [() => b.read(id), () => b.stop(id), () => b.release(id), () => b.attach(id, aTarget.pid!)]) {
        await assert.rejects(op(), (e) => isPmcError(e, 'EINVAL') && /no PMC with id/.test((e as Error).message));
      }
      // The same number in b's hands (b's TC PMC on the same row) is b's PMC: a's keeps running.
      const same = await b.allocate('task-clock', 'TC');
      assert.equal(same, id);
      await b.attach(same, bTarget.pid!);
      const before = await a.read(id);
      await b.release(same);
      await waitFor("a's PMC to go on counting", async () => (await a.read(id)) > before);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('two pmcstat processes contend for a target: the second gets EBUSY, as a second hwpmc owner does', async () => {
    const target = child(sleeper());
    const first = pmcstatAsync(['-p', 'task-clock', '-t', String(target.pid)], { env: pmcd.clientEnv() });
    const lib = await pmcd.libpmc();
    try {
      await waitFor('the first pmcstat to run', async () => (await lib.ownerStats()).some((o) => o.pid === first.child.pid && o.running === 1));
      const second = pmcstat(['-p', 'task-clock', '-t', String(target.pid), '-l', '0.1'], { env: pmcd.clientEnv() });
      assert.equal(second.status, 1, second.stderr);
      assert.match(second.stderr, new RegExp(`process ${target.pid} already has a PMC on row \\d+ \\(EBUSY\\)`));
    } finally {
      first.child.kill('SIGINT');
      const r = await first.done;
      assert.equal(r.status, 0, r.stderr);
      await lib.close();
    }
  });

  test('a PMC whose last target exits: the owner is told on its connection (SIGIO)', async () => {
    const lib = await pmcd.libpmc();
    const target = child(sleeper());
    try {
      const notices: { reason: string; pmcId?: number }[] = [];
      lib.client.onSignal((s) => notices.push(s));
      const id = await lib.allocate('task-clock', 'TC');
      await lib.attach(id, target.pid!);
      await lib.start(id);
      await killChildren([target]);
      await waitFor('SIGIO', () => notices.length > 0);
      assert.deepEqual(notices, [{ signal: 'SIGIO', reason: 'every target of the PMC has exited', pmcId: id }]);
    } finally {
      await lib.close();
    }
  });

  test('kill -9 of a client with running samplers and a log releases everything: owner, rows, descriptors, a closed log', async (t) => {
    const script = join(pmcd.dir, 'sampler.mjs');
    writeFileSync(
      script,
      `import { Libpmc } from ${JSON.stringify(join(DIST, 'src/lib/index.js'))};
       import { openSync } from 'node:fs';
       const lib = await Libpmc.init();
       await lib.configureLogfile(openSync(process.argv[2], 'w'));
       const ts = await lib.allocate('cpu-clock', 'TS', { count: 100000n });
       await lib.attach(ts, Number(process.argv[3]));
       await lib.start(ts);
       const ss = await lib.allocate('cpu-clock', 'SS', { cpu: 0, count: 1000000n });
       await lib.start(ss);
       process.stdout.write('running\\n');
       setInterval(() => {}, 1000);`,
    );
    const target = child(spinner());
    const lib = await pmcd.libpmc();
    const fdsBefore = pmcd.fds().length;
    const client = child(spawn(process.execPath, [script, join(pmcd.dir, 'killed.pmclog'), String(target.pid)], { env: pmcd.clientEnv(), stdio: ['ignore', 'pipe', 'inherit'] }));
    try {
      await waitFor('the client to start sampling', async () => (await lib.ownerStats()).some((o) => o.pid === client.pid && o.running === 2));
      assert.ok(pmcd.fds().length > fdsBefore, 'the client holds descriptors in pmcd');
      const released = async (): Promise<boolean> => {
        const owners = await lib.ownerStats();
        const rows = await lib.pmcInfo(0);
        return !owners.some((o) => o.pid === client.pid) && !rows.some((r) => r.holders.some((h) => h.ownerPid === client.pid));
      };
      assert.equal(await released(), false, 'the running client holds its owner and rows');
      client.kill('SIGKILL');
      // Nothing but the kill ends this owner: it is released, however long a loaded machine takes (60 s is a hang).
      const ms = await waitFor('the killed client to be released', released, 60_000);
      await waitFor('its descriptors to be closed', () => pmcd.fds().length === fdsBefore, 60_000);
      t.diagnostic(`released ${ms} ms after kill -9`);
      // What it had logged before it died was closed properly.
      const types: LogType[] = [];
      for await (const r of readLog(join(pmcd.dir, 'killed.pmclog'))) types.push(r.type);
      assert.equal(types[0], LogType.INITIALIZE);
      assert.equal(types.at(-1), LogType.CLOSELOG);
      assert.ok(types.includes(LogType.CALLCHAIN), 'samples were logged');
    } finally {
      await lib.close();
    }
  });

  test('an owner process that dies while a child it started keeps the connection open is released: hwpmc\'s owner is the process', () => ownerDiesWithHeir(pmcd, child));

  test('the same on a kernel without pidfd_open (TSPMC_NO_PIDFD=1): the dead owner, named by its start time, is released too', async () => {
    const nopidfd = await TestPmcd.start({ env: { TSPMC_NO_PIDFD: '1' } });
    try {
      await ownerDiesWithHeir(nopidfd, child);
    } finally {
      await nopidfd.cleanup();
    }
  });

  test('frames that break the protocol close only their own connection, with an error reply', async () => {
    const raw = connect(pmcd.socket);
    await once(raw, 'connect');
    const replies: unknown[] = [];
    const decoder = new FrameDecoder(1 << 20);
    raw.on('data', (b: Buffer) => replies.push(...decoder.push(b).map((f) => f.payload)));
    // Requests that are not requests get error replies, and the connection stays: a payload without seq,
    const bad = encodeFrame(FrameKind.REQUEST, {});
    raw.write(Buffer.concat([bad.subarray(0, 4), Buffer.from([1, FrameKind.REQUEST, 0, 0]), Buffer.from('{}')]));
    // A payload that is not JSON.
    raw.write(Buffer.concat([Buffer.from([3, 0, 0, 0, 1, FrameKind.REQUEST, 0, 0]), Buffer.from('{x}')]));
    // Arguments the op's schema refuses: EINVAL naming the field; the module never sees them.
    raw.write(encodeFrame(FrameKind.REQUEST, { seq: 5, op: PmcOp.PMCATTACH, args: { id: 1, pid: 'x' } }));
    raw.write(encodeFrame(FrameKind.PING, { seq: 7 }));
    await waitFor('four replies', () => replies.length >= 4);
    const codes = replies.map((r) => (r as { error?: { code: string } }).error?.code);
    assert.deepEqual(codes, ['EINVAL', 'EINVAL', 'EINVAL', undefined]);
    assert.match((replies[0] as { error: { message: string } }).error.message, /a request is \{ seq: u32, op, args \}/);
    assert.match((replies[1] as { error: { message: string } }).error.message, /not JSON/);
    assert.deepEqual(replies[2], { seq: 5, error: { code: 'EINVAL', message: 'PMCATTACH arguments: pid: Invalid input: expected number, received string' } });
    assert.deepEqual(replies[3], { seq: 7 });
    // Another protocol version: an error reply, then the connection is closed.
    const closed = once(raw, 'close');
    raw.write(Buffer.from([2, 0, 0, 0, 9, FrameKind.REQUEST, 0, 0, 0x7b, 0x7d]));
    await closed;
    assert.equal((replies.at(-1) as { error: { code: string } }).error.code, 'EPROTO');
    assert.ok(pmcd.alive);
    await waitFor('pmcd to log why it closed the connection', () => /closing the connection of pid \d+ uid 0 gid 0 session \d+: frame of protocol version 9/.test(pmcd.stderr));
  });

  test('TSPMC_SOCKET naming no pmcd is an error that says how to start it; TSPMC_LOCAL=1 measures in this process', () => {
    const nowhere = join(pmcd.dir, 'nobody-listens.sock');
    const r = pmcstat(['-p', 'task-clock', '--', 'true'], { env: pmcd.clientEnv({ TSPMC_SOCKET: nowhere }) });
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`no pmcd answers: start it with \`pmcd --socket ${nowhere}\`, or set TSPMC_LOCAL=1`));
    const local = pmcstat(['-p', 'task-clock', '--', 'true'], { env: pmcd.clientEnv({ TSPMC_SOCKET: nowhere, TSPMC_LOCAL: '1' }) });
    assert.equal(local.status, 0, local.stderr);
    const flag = pmcstat(['--local', '-p', 'task-clock', '--', 'true'], { env: pmcd.clientEnv({ TSPMC_SOCKET: nowhere }) });
    assert.equal(flag.status, 0, flag.stderr);
  });
});

test('a notice from the socket that is not a SIGIO notice fails the connection, naming it; no listener sees it', async () => {
  // A fake pmcd: it answers a request with a malformed notice (and no reply).
  const dir = mkdtempSync(join(tmpdir(), 'pmcd-notice-'));
  const path = join(dir, 'pmcd.sock');
  const server = createServer((c) => {
    const decoder = new FrameDecoder(1 << 16);
    c.on('data', (b: Buffer) => {
      for (const _ of decoder.push(b)) c.write(encodeFrame(FrameKind.NOTICE, { signal: 'SIGIO', reason: 42 }));
    });
  });
  server.listen(path);
  await once(server, 'listening');
  try {
    const client = await connectPmcd(path);
    const seen: unknown[] = [];
    client.onSignal((s) => seen.push(s));
    const call = hangGuard(client.call(PmcOp.GETMODULEVERSION, { version: PMC_VERSION }), 30_000, 'the call the bad notice answers');
    await assert.rejects(call, (e) => isPmcError(e, 'EPROTO') && /notice that is not one: .*"reason":42/.test((e as Error).message));
    await assert.rejects(client.call(PmcOp.GETMODULEVERSION, { version: PMC_VERSION }), (e) => isPmcError(e, 'EPROTO'), 'the connection stays failed');
    assert.deepEqual(seen, []);
    await client.close();
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pmcd stopping under a sampling pmcstat (hwpmc unloaded: SIGBUS): pmcstat ends saying so, its log closed with CLOSELOG', async () => {
  const pmcd = await TestPmcd.start();
  const target = spinner();
  const logPath = join(pmcd.dir, 'unloaded.pmclog');
  const run = pmcstatAsync(['-t', String(target.pid), '-P', 'cpu-clock', '-O', logPath], { env: pmcd.clientEnv() });
  const lib = await pmcd.libpmc();
  try {
    await waitFor('pmcstat sampling', async () => (await lib.ownerStats()).some((o) => o.pid === run.child.pid && o.running === 1));
    assert.equal(await pmcd.stop(), 0, pmcd.stderr);
    const r = await hangGuard(run.done, 30_000, 'pmcstat after pmcd stopped', () => run.child.kill('SIGKILL'));
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^pmcstat: ERROR: pmcd closed the connection \(.*\): every PMC of this owner is released \(EPIPE\)\n$/);
    const types: LogType[] = [];
    for await (const rec of readLog(logPath)) types.push(rec.type);
    assert.equal(types.at(-1), LogType.CLOSELOG);
  } finally {
    await killChildren([target, run.child]);
    await lib.close().catch(() => undefined);
    await pmcd.cleanup();
  }
});

test('SIGTERM: every PMC released, every log closed with CLOSELOG, the socket removed', async () => {
  const pmcd = await TestPmcd.start();
  const target = spinner();
  const logPath = join(pmcd.dir, 'term.pmclog');
  const fd = openSync(logPath, 'w');
  const lib = await pmcd.libpmc();
  try {
    await lib.configureLogfile(fd);
    const id = await lib.allocate('cpu-clock', 'TS', { count: 100000n });
    await lib.attach(id, target.pid!);
    await lib.start(id);
    const counting = await lib.allocate('task-clock', 'TC', { logProcExit: true });
    await lib.attach(counting, target.pid!);
    await lib.start(counting);
    await waitFor('samples', async () => (await lib.driverStats()).intr_processed > 0);
    assert.equal(await pmcd.stop(), 0, pmcd.stderr);
    assert.match(pmcd.stderr, /SIGTERM: releasing every owner/);
    const types: LogType[] = [];
    for await (const r of readLog(logPath)) types.push(r.type);
    assert.equal(types.at(-1), LogType.CLOSELOG);
    assert.ok(types.includes(LogType.CALLCHAIN));
    await assert.rejects(lib.read(counting), (e) => isPmcError(e, 'EPIPE'));
    assert.equal(existsSync(pmcd.socket), false, 'the socket is removed');
  } finally {
    closeSync(fd);
    await killChildren([target]);
    await lib.close().catch(() => undefined);
    await pmcd.cleanup();
  }
});
