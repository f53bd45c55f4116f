import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { encodedLength, encodeRecord, headerWord } from '../src/log/codec.js';
import { LOG_HEADER_SIZE } from '../src/log/record-layouts.js';
import { LogFormatError, LogReader, readLog, type RecordVisitor } from '../src/log/log-reader.js';
import { LogType, type CallchainRecord, type LogRecord } from '../src/log/records.js';
import { isPmcError } from '../src/pmc-error.js';

const dir = mkdtempSync(join(tmpdir(), 'tspmc-log-reader-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A small log of mixed record sizes; returns the bytes and each record's offset. */
function sampleLog(): { recs: LogRecord[]; bytes: Uint8Array; offsets: number[] } {
  const recs: LogRecord[] = [
    { type: LogType.INITIALIZE, ts: 10, version: 0x0a000001, cpuType: 1, tscFreq: 1e9, wallSec: 5, wallNsec: 6, cpuid: 'cpu' },
    { type: LogType.MAP_IN, ts: 11, pid: -1, start: 0xffffffff81000000n, pathname: '/boot/kernel' },
    { type: LogType.THR_CREATE, ts: 12, tid: 7, pid: 7, flags: 0, tdname: 'main' },
  ];
  for (let i = 0; i < 40; i++) {
    recs.push({
      type: LogType.CALLCHAIN,
      ts: 100 + i,
      pid: 7,
      tid: 7,
      pmcid: 0x20f00,
      cpu: i & 1,
      flags: 1,
      pcs: BigUint64Array.from({ length: 1 + (i % 9) }, (_, k) => 0xffffffff81000000n + BigInt(i * 16 + k)),
    });
    if (i % 10 === 3) recs.push({ type: LogType.PROC_CREATE, ts: 100 + i, pid: 8 + i, flags: 0, pcomm: `p${i}` });
  }
  recs.push({ type: LogType.CLOSELOG, ts: 1000 });
  const offsets: number[] = [];
  let total = 0;
  for (const r of recs) {
    offsets.push(total);
    total += encodedLength(r);
  }
  const bytes = new Uint8Array(total);
  recs.forEach((r, i) => encodeRecord(r, bytes, offsets[i]));
  return { recs, bytes, offsets };
}

/** Feeds `bytes` in the given chunk sizes (cycled) and collects records and the error, if any. */
function readChunked(bytes: Uint8Array, sizes: number[]): { recs: LogRecord[]; error: unknown } {
  const reader = new LogReader();
  const recs: LogRecord[] = [];
  try {
    for (let o = 0, k = 0; o < bytes.length; k++) {
      const n = Math.min(sizes[k % sizes.length], bytes.length - o);
      reader.feed(bytes.slice(o, o + n));
      o += n;
      for (const r of reader) recs.push(r);
    }
    reader.end();
    for (const r of reader) recs.push(r);
  } catch (e) {
    return { recs, error: e };
  }
  return { recs, error: undefined };
}

function isFormatError(offset: number, what: RegExp) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof LogFormatError, `expected a LogFormatError, got ${String(e)}`);
    assert.equal(e.code, 'EINVAL');
    assert.equal(e.offset, offset);
    assert.match(e.message, new RegExp(`offset ${offset}\\b`));
    assert.match(e.message, what);
    return true;
  };
}

describe('log reader', () => {
  it('gives the same records whatever the chunk boundaries', () => {
    const { recs, bytes } = sampleLog();
    for (const sizes of [[bytes.length], [1], [3], [4], [15, 1], [16], [17, 200, 5], [4096]]) {
      const got = readChunked(bytes, sizes);
      assert.equal(got.error, undefined, `chunks ${sizes}`);
      assert.deepEqual(got.recs, recs, `chunks ${sizes}`);
    }
  });

  it('tracks the offset and record count', () => {
    const { recs, bytes, offsets } = sampleLog();
    const reader = new LogReader();
    reader.feed(bytes.subarray(0, 50));
    reader.feed(bytes.subarray(50));
    for (let i = 0; i < recs.length; i++) {
      assert.equal(reader.offset, offsets[i]);
      assert.ok(reader.next());
    }
    assert.equal(reader.next(), undefined);
    assert.equal(reader.recordCount, recs.length);
    assert.equal(reader.offset, bytes.length);
  });

  it('release() lets the caller reuse its buffers', () => {
    const { recs, bytes } = sampleLog();
    const reader = new LogReader();
    const buf = new Uint8Array(100);
    const got: LogRecord[] = [];
    for (let o = 0; o < bytes.length; o += buf.length) {
      const n = Math.min(buf.length, bytes.length - o);
      buf.set(bytes.subarray(o, o + n));
      reader.feed(buf.subarray(0, n));
      for (const r of reader) got.push(r);
      reader.release();
      buf.fill(0xee); // scribble: the reader must not look at it again
    }
    reader.end();
    for (const r of reader) got.push(r);
    assert.deepEqual(got, recs);
  });

  it('reports a log cut in the middle of a record at that record, after the records before it', () => {
    const { recs, bytes, offsets } = sampleLog();
    const i = 20;
    const cut = offsets[i] + LOG_HEADER_SIZE + 3;
    for (const sizes of [[cut], [7], [1]]) {
      const got = readChunked(bytes.slice(0, cut), sizes);
      assert.deepEqual(got.recs, recs.slice(0, i));
      assert.ok(isFormatError(offsets[i], /truncated (CALLCHAIN|PROC_CREATE) record at end of log: 19 of \d+ bytes/)(got.error));
    }
  });

  it('reports a log cut in the middle of a header', () => {
    const { recs, bytes, offsets } = sampleLog();
    for (const partial of [1, 3, 6, 15]) {
      const cut = offsets[5] + partial;
      const got = readChunked(bytes.slice(0, cut), [64]);
      assert.deepEqual(got.recs, recs.slice(0, 5));
      assert.ok(isFormatError(offsets[5], new RegExp(`truncated header at end of log: ${partial} of 16 bytes`))(got.error));
    }
  });

  it('reports corrupt magic, unknown type and bad length at the damaged record', () => {
    const { recs, bytes, offsets } = sampleLog();
    const damage = (i: number, word: number, what: RegExp) => {
      const b = bytes.slice();
      new DataView(b.buffer).setUint32(offsets[i], word >>> 0, true);
      for (const sizes of [[b.length], [5], [1]]) {
        const got = readChunked(b, sizes);
        assert.deepEqual(got.recs, recs.slice(0, i), `${what} with chunks ${sizes}`);
        assert.ok(isFormatError(offsets[i], what)(got.error));
      }
    };
    damage(9, (0x12 << 24) | (LogType.CALLCHAIN << 16) | 40, /bad magic 0x12/);
    damage(9, (0xee << 24) | (99 << 16) | 40, /unknown record type 99/);
    damage(9, headerWord(LogType.CALLCHAIN, 42), /not a multiple of 4/);
    damage(9, headerWord(LogType.CALLCHAIN, 36), /below its minimum 40/);
    damage(2, headerWord(LogType.THR_CREATE, 56), /THR_CREATE length 56 \(expected 52\)/);
    // A length that runs past the end of the log is truncation at that record.
    damage(recs.length - 1, headerWord(LogType.MAP_IN, 0xfffc), /truncated MAP_IN record at end of log: 16 of 65532 bytes/);
  });

  it('does not hang on a length-0 header, and keeps reporting the same error', () => {
    const b = new Uint8Array(64);
    const dv = new DataView(b.buffer);
    encodeRecord({ type: LogType.CLOSELOG, ts: 1 }, b, 0);
    dv.setUint32(16, headerWord(LogType.CLOSELOG, 0), true);
    const reader = new LogReader();
    reader.feed(b);
    assert.deepEqual(reader.next(), { type: LogType.CLOSELOG, ts: 1 });
    assert.throws(() => reader.next(), isFormatError(16, /CLOSELOG length 0 \(expected 16\)/));
    assert.throws(() => reader.next(), isFormatError(16, /CLOSELOG length 0/));
    // All zeros: magic 0.
    const zeros = new LogReader();
    zeros.feed(new Uint8Array(4096));
    assert.throws(() => zeros.next(), isFormatError(0, /bad magic 0x0/));
  });

  it('reads a file by path and a stream, and throws after the good records of a damaged file', async () => {
    const { recs, bytes, offsets } = sampleLog();
    const path = join(dir, 'ok.log');
    writeFileSync(path, bytes);
    const fromFile: LogRecord[] = [];
    for await (const r of readLog(path, { readSize: 100 })) fromFile.push(r);
    assert.deepEqual(fromFile, recs);

    const fromStream: LogRecord[] = [];
    for await (const r of readLog(Readable.from([bytes.slice(0, 10), bytes.slice(10, 333), bytes.slice(333)]))) fromStream.push(r);
    assert.deepEqual(fromStream, recs);

    const cutPath = join(dir, 'cut.log');
    writeFileSync(cutPath, bytes.subarray(0, offsets[30] + 20));
    const before: LogRecord[] = [];
    await assert.rejects(async () => {
      for await (const r of readLog(cutPath)) before.push(r);
    }, isFormatError(offsets[30], /truncated/));
    assert.deepEqual(before, recs.slice(0, 30));
  });

  it('stops cleanly when the consumer breaks early', async () => {
    const { recs, bytes } = sampleLog();
    const path = join(dir, 'early.log');
    writeFileSync(path, bytes);
    let n = 0;
    for await (const r of readLog(path, { readSize: 64 })) {
      assert.deepEqual(r, recs[n]);
      if (++n === 3) break;
    }
    assert.equal(n, 3);
  });

  it('names a missing file and a text stream', async () => {
    await assert.rejects(async () => {
      for await (const _ of readLog(join(dir, 'missing.log'))) assert.fail('no records');
    }, (e) => isPmcError(e, 'ENOENT') && /missing\.log/.test((e as Error).message));
    await assert.rejects(async () => {
      for await (const _ of readLog(Readable.from(['text'], { objectMode: true }))) assert.fail('no records');
    }, (e) => isPmcError(e, 'EINVAL') && /expected bytes/.test((e as Error).message));
  });

  it('yields nothing for an empty log', async () => {
    const path = join(dir, 'empty.log');
    writeFileSync(path, new Uint8Array(0));
    let n = 0;
    for await (const _ of readLog(path)) n++;
    assert.equal(n, 0);
  });

  it('visit(): call chains read in place from aligned chunks, copied when they span chunks, the same records either way', () => {
    const { recs, bytes } = sampleLog();
    const chains = recs.filter((r): r is CallchainRecord => r.type === LogType.CALLCHAIN);
    for (const size of [bytes.length, 1000, 7]) {
      const reader = new LogReader();
      const seen: { pcs: bigint[]; pid: number; tid: number; pmcid: number; cpu: number; flags: number; ts: number }[] = [];
      let inPlace = 0;
      let others = 0;
      const chunks: Uint8Array[] = [];
      const visitor: RecordVisitor = {
        record: () => others++,
        callchain(words, at, npcs, pid, tid, pmcid, cpuflags, ts) {
          if (chunks.some((c) => c.buffer === words.buffer)) inPlace++;
          const pcs = Array.from({ length: npcs }, (_, i) => (BigInt(words[at + 2 * i + 1]) << 32n) | BigInt(words[at + 2 * i]));
          seen.push({ pcs, pid, tid, pmcid, cpu: cpuflags >>> 16, flags: cpuflags & 0xffff, ts });
        },
      };
      for (let o = 0; o < bytes.length; o += size) {
        // Each chunk in a buffer of its own, 8-byte aligned.
        const chunk = new Uint8Array(Math.min(size, bytes.length - o));
        chunk.set(bytes.subarray(o, o + chunk.length));
        chunks.push(chunk);
        reader.feed(chunk);
        reader.visit(visitor);
      }
      reader.end();
      reader.visit(visitor);
      assert.deepEqual(seen, chains.map((c) => ({ pcs: [...c.pcs], pid: c.pid, tid: c.tid, pmcid: c.pmcid, cpu: c.cpu, flags: c.flags, ts: c.ts })), `chunks of ${size}`);
      assert.equal(others, recs.length - chains.length);
      // Whole in one chunk: every chain in place; in 7-byte chunks every chain spans chunks.
      if (size === bytes.length) assert.equal(inPlace, chains.length);
      if (size === 7) assert.equal(inPlace, 0);
    }
  });
});

