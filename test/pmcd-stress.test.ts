// pmcd under load and under attack: 64 clients at once, each running 200
// allocate/attach/start/read/stop/release cycles, with no error and no
// descriptor left behind in pmcd; then 10,000 fuzzed frames (random bytes,
// truncated and oversized frames, wrong types, unknown ops and kinds) while
// another client keeps reading its PMC: pmcd keeps serving it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { encodeFrame, FrameKind, PROTOCOL_VERSION } from '../src/ipc/frame.js';
import { PmcOp } from '../src/lib/index.js';
import { killChildren, TestPmcd, waitFor } from './pmcd-fixture.js';
import { spinner } from './spinner.js';


test('64 concurrent clients x 200 allocate/attach/start/read/stop/release cycles: no error, no descriptor leaked', async (t) => {
  const CLIENTS = 64;
  const CYCLES = 200;
  const pmcd = await TestPmcd.start();
  // One target per client: a process has one PMC per row, so owners of one row need targets of their own.
  const targets = Array.from({ length: CLIENTS }, () => spawn('sleep', ['3600'], { stdio: 'ignore' }));
  try {
    const fdsBefore = pmcd.fds();
    const t0 = Date.now();
    const errors: unknown[] = [];
    await Promise.all(
      targets.map(async (target) => {
        const lib = await pmcd.libpmc();
        try {
          for (let i = 0; i < CYCLES; i++) {
            const id = await lib.allocate('task-clock', 'TC');
            await lib.attach(id, target.pid!);
            await lib.start(id);
            const v = await lib.read(id);
            if (typeof v !== 'bigint' || v < 0n) throw new Error(`read ${v}`);
            await lib.stop(id);
            await lib.release(id);
          }
        } catch (e) {
          errors.push(e);
        } finally {
          await lib.close();
        }
      }),
    );
    t.diagnostic(`${CLIENTS * CYCLES * 6} ops in ${Date.now() - t0} ms`);
    assert.deepEqual(errors, []);
    await waitFor('every session to end', () => pmcd.fds().length === fdsBefore.length);
    assert.deepEqual(pmcd.fds().sort(), fdsBefore.sort());
  } finally {
    await killChildren(targets);
    await pmcd.cleanup();
  }
});

/** A small deterministic generator, so a failure can be replayed from its seed. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}

test('10,000 fuzzed frames leave pmcd serving other clients', async (t) => {
  const FRAMES = 10_000;
  const seed = Number(process.env.PMCD_FUZZ_SEED ?? Date.now() % 100000);
  t.diagnostic(`seed ${seed} (PMCD_FUZZ_SEED replays it)`);
  const rnd = prng(seed);
  const int = (n: number): number => Math.floor(rnd() * n);
  const values = (): unknown => [0, -1, 1.5, 2 ** 53, '1', '', 'x'.repeat(int(300)), null, true, [], {}, { id: 1 }, [1, 2]][int(13)];
  const header = (length: number, version = PROTOCOL_VERSION, kind = FrameKind.REQUEST, reserved = 0): Buffer => {
    const h = Buffer.alloc(8);
    h.writeUInt32LE(length >>> 0, 0);
    h[4] = version;
    h[5] = kind;
    h.writeUInt16LE(reserved, 6);
    return h;
  };
  /** One fuzzed frame, and whether pmcd must drop the connection for it. */
  function frame(): { bytes: Buffer; fatal: boolean } {
    const ops = Object.values(PmcOp).filter((v): v is number => typeof v === 'number');
    switch (int(9)) {
      case 0: // random bytes
        return { bytes: Buffer.from(Array.from({ length: 1 + int(64) }, () => int(256))), fatal: true };
      case 1: // oversized
        return { bytes: header(64 * 1024 + 1 + int(2 ** 31)), fatal: true };
      case 2: // another version, an unknown kind, reserved bits
        return { bytes: Buffer.concat([header(2, [0, 2, 255][int(3)], int(2) ? FrameKind.REQUEST : 6 + int(250), int(2) ? 0 : 1 + int(65535)), Buffer.from('{}')]), fatal: true };
      case 3: // truncated: the rest never comes (the connection ends)
        return { bytes: encodeFrame(FrameKind.REQUEST, { seq: 1, op: PmcOp.GETCPUINFO, args: {} }).subarray(0, 1 + int(20)), fatal: true };
      case 4: // not JSON
        return { bytes: Buffer.concat([header(5), Buffer.from('{"a":')]), fatal: false };
      case 5: // JSON of the wrong shape
        return { bytes: encodeFrame(FrameKind.REQUEST, values()), fatal: false };
      case 6: // a real op with arguments of the wrong types
        return { bytes: encodeFrame(FrameKind.REQUEST, { seq: int(100), op: ops[int(ops.length)], args: { id: values(), pid: values(), cpu: values(), fd: values(), spec: values(), x: values() } }), fatal: false };
      case 7: // unknown ops, descriptors in the wrong place
        return { bytes: encodeFrame(int(2) ? FrameKind.REQUEST : FrameKind.PASSFD, { seq: 1, op: 100 + int(1000), args: {} }), fatal: false };
      default: // replies and notices are not for pmcd
        return { bytes: encodeFrame(int(2) ? FrameKind.REPLY : FrameKind.NOTICE, { seq: 1, result: values() }), fatal: false };
    }
  }

  const pmcd = await TestPmcd.start();
  const target = spinner();
  const good = await pmcd.libpmc();
  try {
    const id = await good.allocate('task-clock', 'TC');
    await good.attach(id, target.pid!);
    await good.start(id);
    const fdsBefore = pmcd.fds().length;
    let reads = 0;
    let last = 0n;
    let fuzzing = true;
    // The good client reads all along; each value is at least the one before.
    const reader = (async () => {
      while (fuzzing) {
        const v = await good.read(id);
        assert.ok(v >= last);
        last = v;
        reads++;
      }
    })();
    reader.catch(() => undefined); // awaited below

    let sent = 0;
    let reconnects = 0;
    const open = async (): Promise<Socket> => {
      const s = connect(pmcd.socket);
      s.on('data', () => undefined).on('error', () => undefined);
      await new Promise((r) => s.once('connect', r).once('close', r));
      return s;
    };
    const closed = (s: Socket): Promise<unknown> => new Promise((r) => (s.closed ? r(null) : s.once('close', r)));
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        let s = await open();
        while (sent < FRAMES) {
          sent++;
          const f = frame();
          // pmcd closes a connection at any frame it cannot read (a PASSFD without a descriptor too).
          if (s.destroyed || s.writableEnded) {
            reconnects++;
            s = await open();
          }
          s.write(f.bytes);
          if (f.fatal) {
            // pmcd answers with an error and closes (a truncated frame waits for more): a new connection.
            s.end();
            await closed(s);
          }
        }
        s.end();
        await closed(s);
      }),
    );
    fuzzing = false;
    await reader.catch((e) => {
      throw new Error(`the good client failed: ${(e as Error).message}\n${pmcd.stderr.split('\n').filter((l) => /session 1:/.test(l)).join('\n')}`);
    });
    t.diagnostic(`${sent} frames, ${reconnects} reconnections, ${reads} good reads meanwhile`);
    assert.ok(pmcd.alive, 'pmcd is alive');
    assert.ok(reads > 0);
    // Still serving: the good client and a new one.
    assert.ok((await good.read(id)) >= last);
    const fresh = await pmcd.libpmc();
    assert.equal((await fresh.driverStats()).syscalls > 0, true);
    await fresh.close();
    await waitFor('the fuzzers\' connections to be gone', () => pmcd.fds().length === fdsBefore).catch((e: Error) => {
      const what = pmcd.fds().map((fd) => { try { return readlinkSync(`/proc/${pmcd.pid}/fd/${fd}`); } catch { return '?'; } });
      throw new Error(`${e.message}: pmcd holds ${pmcd.fds().length} descriptors, ${fdsBefore} expected: ${what.join(' ')}`);
    });
  } finally {
    await good.close();
    await killChildren([target]);
    await pmcd.cleanup();
  }
});
