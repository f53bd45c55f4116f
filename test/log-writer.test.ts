import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { callchainLength, cpuFlags, decodeRecord, encodedLength, encodeRecord, RecordSize } from '../src/log/codec.js';
import { LogReader, readLog } from '../src/log/log-reader.js';
import { LogWriter } from '../src/log/log-writer.js';
import { LogType, PMC_CC_F_USERSPACE, type CallchainRecord, type LogRecord } from '../src/log/records.js';
import { isPmcError, PmcError } from '../src/pmc-error.js';

const dir = mkdtempSync(join(tmpdir(), 'tspmc-log-writer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const csw = (i: number): LogRecord => ({ type: LogType.PROCCSW, ts: 1000 + i, value: BigInt(i) << 40n, pmcid: 0x20f00, pid: 10, tid: 10 + i });

function decodeAll(bytes: Uint8Array): LogRecord[] {
  const reader = new LogReader();
  reader.feed(bytes);
  reader.end();
  return [...reader];
}

/** A source of pcs as a perf ring buffer would hold them: little-endian u64s. */
function pcsSource(pcs: bigint[], pad: number): Uint8Array {
  const b = new Uint8Array(pad + pcs.length * 8 + 8);
  const dv = new DataView(b.buffer);
  pcs.forEach((pc, i) => dv.setBigUint64(pad + i * 8, pc, true));
  return b;
}

describe('log writer', () => {
  it('writes many buffers through a real fd, in order, read back by readLog', async () => {
    const path = join(dir, 'many.log');
    const fd = openSync(path, 'w');
    const w = new LogWriter({ sink: fd, bufferSize: 1024, nbuffers: 4 });
    const want: LogRecord[] = [];
    const src = pcsSource(Array.from({ length: 64 }, (_, i) => 0xffffffff81000000n + BigInt(i) * 0x1111n), 0);
    for (let i = 0; i < 2000; i++) {
      const n = 1 + (i % 50);
      const rec: CallchainRecord = {
        type: LogType.CALLCHAIN,
        ts: 5_000_000_000 + i,
        pid: 100 + (i % 3),
        tid: 200 + i,
        pmcid: 0x20f01,
        cpu: i % 2,
        flags: i % 2 ? PMC_CC_F_USERSPACE : 0,
        pcs: BigUint64Array.from({ length: n }, (_, k) => 0xffffffff81000000n + BigInt(i % 7 + k) * 0x1111n),
      };
      const off = (i % 7) * 8;
      while (!w.writeCallchain(rec.ts, rec.pid, rec.tid, rec.pmcid, cpuFlags(rec.cpu, rec.flags), src, off, n)) await w.flush();
      want.push(rec);
      if (i % 100 === 0) {
        const m: LogRecord = { type: LogType.MAP_IN, ts: rec.ts, pid: rec.pid, start: BigInt(i) << 12n, pathname: `/lib/lib${i}.so` };
        while (!w.writeRecord(m)) await w.flush();
        want.push(m);
      }
    }
    const close: LogRecord = { type: LogType.CLOSELOG, ts: 9_000_000_000 };
    assert.ok(w.writeRecord(close));
    want.push(close);
    await w.close();
    closeSync(fd);
    const got: LogRecord[] = [];
    for await (const r of readLog(path)) got.push(r);
    assert.deepEqual(got, want);
    assert.equal(w.bytesWritten, statSync(path).size);
    assert.equal(w.bytesWritten, want.reduce((n, r) => n + encodedLength(r), 0));
    assert.ok(w.bufferRequests >= Math.ceil(w.bytesWritten / 1024), `${w.bufferRequests} buffer requests`);
  });

  it('makeRoom that finds no room hands the last buffer off to be written: a caller that then holds its smaller records back does not stall the log', async () => {
    const path = join(dir, 'room.log');
    const fd = openSync(path, 'w');
    const w = new LogWriter({ sink: fd, bufferSize: 128, nbuffers: 1 });
    assert.ok(w.writeRecord(csw(0)) && w.writeRecord(csw(1)));
    // 80 of 128 bytes used: 56 more do not fit, and there is no other buffer.
    assert.equal(w.makeRoom(56), false);
    // Nothing else is written, yet the buffer reaches the file (before, it waited for the next record that did not fit).
    for (const hang = Date.now() + 60_000; w.bytesWritten === 0 && Date.now() < hang; ) await new Promise((r) => setTimeout(r, 5));
    assert.equal(w.bytesWritten, 2 * RecordSize.PROCCSW);
    assert.ok(w.makeRoom(56));
    await w.close();
    closeSync(fd);
    assert.deepEqual(decodeAll(readFileSync(path)), [csw(0), csw(1)]);
  });

  it('returns false when no buffer can be had, counts it, and accepts writes again after flush', async () => {
    const path = join(dir, 'tiny.log');
    const fd = openSync(path, 'w');
    // 128-byte buffers hold three 40-byte records; two buffers in all.
    const w = new LogWriter({ sink: fd, bufferSize: 128, nbuffers: 2 });
    const accepted: LogRecord[] = [];
    let i = 0;
    for (; i < 6; i++) {
      assert.ok(w.makeRoom(RecordSize.PROCCSW));
      assert.equal(w.writeRecord(csw(i)), true, `record ${i}`);
      accepted.push(csw(i));
    }
    // Nothing has been written yet (writes complete asynchronously): both buffers are taken.
    assert.equal(w.makeRoom(RecordSize.PROCCSW), false);
    assert.equal(w.writeRecord(csw(i)), false);
    assert.equal(w.writeCallchain(1, 1, 1, 1, 0, new Uint8Array(8), 0, 1), false);
    assert.equal(w.bufferRequests, 4);
    assert.equal(w.bufferRequestsFailed, 2);
    await w.flush();
    assert.deepEqual(decodeAll(readFileSync(path)), accepted);
    assert.ok(w.makeRoom(RecordSize.PROCCSW));
    assert.equal(w.writeRecord(csw(++i)), true);
    accepted.push(csw(i));
    await w.close();
    closeSync(fd);
    assert.deepEqual(decodeAll(readFileSync(path)), accepted);
    assert.equal(w.bufferRequestsFailed, 2);
  });

  it('copies call chains from any source offset, aligned or not', async () => {
    const pcs = [0xffffffff81a0c2d3n, 0xffffffffc0123456n, 0x7ffff7a3b0c1n, 0x401136n, 0xfedcba9876543210n];
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    const w = new LogWriter({ sink, bufferSize: 4096, nbuffers: 2 });
    for (const pad of [0, 1, 2, 3, 4, 5, 8]) {
      const src = pcsSource(pcs, pad);
      assert.ok(w.writeCallchain(1e15 + pad, -1, 0, 0x10f00, cpuFlags(3, 0), src, pad, pcs.length));
      // A Buffer whose own byteOffset is odd.
      const odd = Buffer.from(src.buffer, 1, src.length - 1);
      if (pad >= 1) assert.ok(w.writeCallchain(2e15 + pad, 5, 6, 7, cpuFlags(1, 1), odd, pad - 1, pcs.length));
    }
    await w.close();
    const recs = decodeAll(Buffer.concat(chunks)) as CallchainRecord[];
    assert.equal(recs.length, 13);
    for (const r of recs) assert.deepEqual([...r.pcs], pcs);
    assert.deepEqual([recs[0].pid, recs[0].cpu, recs[0].flags], [-1, 3, 0]);
    assert.deepEqual([recs[2].pid, recs[2].tid, recs[2].pmcid, recs[2].cpu, recs[2].flags, recs[2].ts], [5, 6, 7, 1, 1, 2e15 + 1]);
  });

  it('rejects call chains it cannot log', () => {
    const w = new LogWriter({ sink: new PassThrough(), bufferSize: 1024, nbuffers: 1 });
    const src = new Uint8Array(8 * 600);
    assert.throws(() => w.writeCallchain(1, 1, 1, 1, 0, src, 0, 0), (e) => isPmcError(e, 'EINVAL'));
    assert.throws(() => w.writeCallchain(1, 1, 1, 1, 0, src, 0, 513), (e) => isPmcError(e, 'EINVAL'));
    assert.throws(() => w.writeCallchain(1, 1, 1, 1, 0, src, 8 * 599, 2), (e) => isPmcError(e, 'EINVAL') && /outside/.test((e as Error).message));
    assert.throws(() => w.writeCallchain(1, 1, 1, 1, 0, src, 0, 200), (e) => isPmcError(e, 'E2BIG') && /logbuffersize/.test((e as Error).message));
    assert.equal(callchainLength(200), 1632);
  });

  it('hands whole buffers to a stream, so a stream that keeps chunks sees intact data', async () => {
    const sink = new PassThrough({ highWaterMark: 1 << 20 });
    const w = new LogWriter({ sink, bufferSize: 256, nbuffers: 2 });
    const want: LogRecord[] = [];
    for (let i = 0; i < 300; i++) {
      while (!w.writeRecord(csw(i))) await w.flush();
      want.push(csw(i));
    }
    await w.close();
    sink.end();
    const chunks: Buffer[] = [];
    for await (const c of sink) chunks.push(c as Buffer);
    assert.deepEqual(decodeAll(Buffer.concat(chunks)), want);
  });

  it('leaves no partial record when encoding fails', async () => {
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    const w = new LogWriter({ sink, bufferSize: 256, nbuffers: 2 });
    assert.ok(w.writeRecord(csw(1)));
    const bad = { type: LogType.PMCALLOCATE, ts: 1, pmcid: 1, event: 1, flags: 0, rate: 5 } as unknown as LogRecord;
    assert.throws(() => w.writeRecord(bad), TypeError);
    assert.ok(w.writeRecord(csw(2)));
    await w.close();
    assert.deepEqual(decodeAll(Buffer.concat(chunks)), [csw(1), csw(2)]);
  });

  it('reports a failing fd write from flush as a PmcError, once to onError, and stops', async () => {
    const fd = openSync('/dev/full', 'w');
    const errors: PmcError[] = [];
    const w = new LogWriter({ sink: fd, bufferSize: 128, nbuffers: 2, onError: (e) => errors.push(e) });
    assert.ok(w.writeRecord(csw(1)));
    await assert.rejects(w.flush(), (e) => isPmcError(e, 'ENOSPC') && /fd \d+/.test((e as Error).message));
    assert.equal(errors.length, 1);
    assert.deepEqual([w.recordsLost, w.bytesLost, w.bytesWritten], [1, RecordSize.PROCCSW, 0], 'the record the sink refused is counted as lost');
    assert.equal(errors[0].code, 'ENOSPC');
    assert.equal(w.pendingError, errors[0]);
    // The log is dead: writes are refused (the caller counts drops), flush and close keep reporting.
    assert.equal(w.writeRecord(csw(2)), false);
    assert.equal(w.makeRoom(16), false);
    await assert.rejects(w.flush(), (e) => e === errors[0]);
    await assert.rejects(w.close(), (e) => e === errors[0]);
    assert.equal(errors.length, 1);
    closeSync(fd);

    const ro = openSync(join(dir, 'ro.log'), 'w+');
    closeSync(ro);
    const rofd = openSync(join(dir, 'ro.log'), 'r');
    const w2 = new LogWriter({ sink: rofd, bufferSize: 128, nbuffers: 2 });
    w2.writeRecord(csw(1));
    await assert.rejects(w2.flush(), (e) => isPmcError(e, 'EBADF'));
    closeSync(rofd);
  });

  it('reports a failing stream from flush as a PmcError', async () => {
    const failing = new Writable({
      write(_chunk, _enc, cb) {
        cb(Object.assign(new Error('disk on fire'), { code: 'EIO' }));
      },
    });
    const errors: PmcError[] = [];
    const w = new LogWriter({ sink: failing, bufferSize: 128, nbuffers: 2, onError: (e) => errors.push(e) });
    w.writeRecord(csw(1));
    await assert.rejects(w.flush(), (e) => isPmcError(e, 'EIO') && /disk on fire/.test((e as Error).message));
    assert.equal(errors.length, 1);

    const destroyed = new PassThrough();
    destroyed.destroy();
    const w2 = new LogWriter({ sink: destroyed, bufferSize: 128, nbuffers: 2 });
    w2.writeRecord(csw(1));
    await assert.rejects(w2.flush(), (e) => isPmcError(e, 'EPIPE'));
  });

  it('gives up a stream that takes nothing: every unwritten record counted, waits rejected, the late callback ignored', async () => {
    const callbacks: ((e?: Error | null) => void)[] = [];
    const stalled = new Writable({
      highWaterMark: 1,
      write(_chunk, _enc, cb) {
        callbacks.push(cb); // never completes on its own: a reader that stopped reading
      },
    });
    const w = new LogWriter({ sink: stalled, bufferSize: 128, nbuffers: 2 });
    let written = 0;
    while (w.writeRecord(csw(written))) written++;
    assert.equal(written, 6, 'two buffers of three records');
    const flushed = w.flush();
    assert.ok(w.hasUnwritten);
    w.abandon('the log was given up');
    const given = (e: unknown): boolean => isPmcError(e, 'ETIMEDOUT') && /^the log was given up; 6 log record\(s\) \(240 bytes\) were not written/.test((e as Error).message);
    await assert.rejects(flushed, given);
    await assert.rejects(w.close(), given);
    assert.deepEqual([w.recordsLost, w.bytesLost, w.bytesWritten], [6, 6 * RecordSize.PROCCSW, 0]);
    // The write the sink held completes after all: nothing changes.
    for (const cb of callbacks) cb();
    assert.deepEqual([w.recordsLost, w.bytesWritten], [6, 0]);
  });

  it('hands a stream big buffers in slices: a slow reader shows progress before a buffer is done', async () => {
    const sizes: number[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        sizes.push(chunk.length);
        cb();
      },
    });
    const w = new LogWriter({ sink, bufferSize: 64 * 1024, nbuffers: 2 });
    for (let i = 0; i < 1500; i++) assert.ok(w.writeRecord(csw(i)));
    await w.close();
    assert.equal(w.bytesWritten, 1500 * RecordSize.PROCCSW);
    assert.ok(sizes.length > 1 && sizes.every((n) => n <= 16 * 1024), `slices of ${sizes.join(', ')} bytes`);
  });

  it('waits out a full non-blocking pipe (EAGAIN) instead of failing', async () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const rfd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const wfd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    const w = new LogWriter({ sink: wfd, bufferSize: 32 * 1024, nbuffers: 4 });
    const want: LogRecord[] = [];
    // More than the pipe holds (64 KiB by default).
    for (let i = 0; want.length < 3000; i++) {
      while (!w.writeRecord(csw(i))) await new Promise((r) => setTimeout(r, 1));
      want.push(csw(i));
    }
    const flushed = w.flush();
    const total = want.length * RecordSize.PROCCSW;
    const got = Buffer.alloc(total);
    for (let n = 0; n < total; ) {
      try {
        n += readSync(rfd, got, n, total - n, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        await new Promise((r) => setTimeout(r, 1));
      }
    }
    await flushed;
    await w.close();
    closeSync(wfd);
    closeSync(rfd);
    assert.deepEqual(decodeAll(got), want);
  });

  it('flush resolves only once the data is in the file', async () => {
    const path = join(dir, 'flush.log');
    const fd = openSync(path, 'w');
    const w = new LogWriter({ sink: fd, bufferSize: 4096, nbuffers: 2 });
    await w.flush(); // nothing buffered
    const recs = [csw(1), csw(2), { type: LogType.USERDATA, ts: 3, userdata: 0xabc } as LogRecord];
    for (const r of recs) w.writeRecord(r);
    assert.equal(statSync(path).size, 0);
    await w.flush();
    assert.deepEqual(decodeAll(readFileSync(path)), recs);
    await w.close();
    closeSync(fd);
  });

  it('refuses writes after close, and bad configurations', async () => {
    const w = new LogWriter({ sink: new PassThrough(), bufferSize: 128, nbuffers: 1 });
    const closing = w.close();
    assert.throws(() => w.writeRecord(csw(1)), (e) => isPmcError(e, 'EINVAL') && /closing/.test((e as Error).message));
    await closing;
    await w.close();
    assert.throws(() => w.writeRecord(csw(1)), (e) => isPmcError(e, 'EINVAL') && /closed/.test((e as Error).message));
    await assert.rejects(w.flush(), (e) => isPmcError(e, 'EINVAL'));
    assert.throws(() => new LogWriter({ sink: 3, bufferSize: 64, nbuffers: 1 }), (e) => isPmcError(e, 'EINVAL') && /buffer size 64/.test((e as Error).message));
    assert.throws(() => new LogWriter({ sink: 3, bufferSize: 1024, nbuffers: 0 }), (e) => isPmcError(e, 'EINVAL'));
    assert.throws(() => new LogWriter({ sink: -1, bufferSize: 1024, nbuffers: 1 }), (e) => isPmcError(e, 'EBADF'));
    assert.throws(() => new LogWriter({ sink: {} as Writable, bufferSize: 1024, nbuffers: 1 }), (e) => isPmcError(e, 'EINVAL'));
    const big: LogRecord = { type: LogType.MAP_IN, ts: 1, pid: 1, start: 0n, pathname: '/x'.repeat(100) };
    const small = new LogWriter({ sink: new PassThrough(), bufferSize: 128, nbuffers: 1 });
    assert.throws(() => small.writeRecord(big), (e) => isPmcError(e, 'E2BIG'));
    // The codec agrees on what it wrote.
    const b = new Uint8Array(encodedLength(big));
    encodeRecord(big, b, 0);
    assert.deepEqual(decodeRecord(b, 0), big);
  });
});
