import { strict as assert } from 'node:assert';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  callchainLength,
  checkHeader,
  decodeRecord,
  encodedLength,
  encodeRecord,
  headerWord,
  LogFormatError,
  RecordSize,
  TailOffset,
} from '../src/log/codec.js';
import { readLog } from '../src/log/log-reader.js';
import { LogWriter } from '../src/log/log-writer.js';
import { LogType, PMC_CC_F_USERSPACE, type LogRecord } from '../src/log/records.js';
import { PMC_VERSION } from '../src/module/pmc-types.js';
import { PMC_CALLCHAIN_DEPTH_MAX } from '../src/pmc-common.js';
import { isPmcError } from '../src/pmc-error.js';

const dir = mkdtempSync(join(tmpdir(), 'tspmc-log-codec-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// Values chosen to catch truncation, sign and byte-order mistakes: timestamps
// above 2^32, u64 fields above 2^53, kernel addresses, negative pids.
const BIG = 0xfedcba9876543210n;
const KERNEL_PC = 0xffffffff81a0c2d3n;
const base = 123_456_789_012_345;

function everyRecord(): LogRecord[] {
  return [
    {
      type: LogType.INITIALIZE,
      ts: base,
      version: PMC_VERSION,
      cpuType: 0x1234,
      tscFreq: 1e9,
      wallSec: 1_732_000_000,
      wallNsec: 987_654_321,
      cpuid: 'GenuineIntel-6-55-7',
    },
    { type: LogType.PMCALLOCATE, ts: base + 1, pmcid: 0xf0020f01, event: 0x20003, flags: 0x84, rate: BIG },
    {
      type: LogType.PMCALLOCATEDYN,
      ts: base + 2,
      pmcid: 0x00020f02,
      event: 0x20001,
      flags: 0x80,
      rate: 65536n,
      eventName: 'sched:sched_switch',
    },
    { type: LogType.PMCATTACH, ts: base + 3, pmcid: 0x00020f01, pid: 4242, pathname: '/usr/bin/élan' },
    { type: LogType.PMCDETACH, ts: base + 4, pmcid: 0x00020f01, pid: 4242 },
    { type: LogType.PROCCSW, ts: base + 5, value: BIG, pmcid: 0x00030f01, pid: 4242, tid: 4243 },
    { type: LogType.PROCEXEC, ts: base + 6, pid: 4242, pmcid: 0xffffffff, base: 0x7f12_3456_7000n, dyn: 0x5555_5555_4000n, pathname: '/bin/true' },
    { type: LogType.PROCEXIT, ts: base + 7, pmcid: 0x00030f01, pid: 4242, value: 0xffffffffffffffffn },
    { type: LogType.PROCFORK, ts: base + 8, oldpid: 4242, newpid: 4250 },
    { type: LogType.SYSEXIT, ts: base + 9, pid: 4250 },
    { type: LogType.USERDATA, ts: base + 10, userdata: 0xdeadbeef },
    { type: LogType.MAP_IN, ts: base + 11, pid: -1, start: 0xffffffff81000000n, pathname: '/boot/vmlinuz' },
    { type: LogType.MAP_IN, ts: base + 12, pid: 4242, start: 0x7f0000001000n, pathname: '' },
    { type: LogType.MAP_IN, ts: base + 12, pid: 4242, start: 0x400000n, pathname: '/usr/bin/node', extent: { offset: 0x14c4000n, length: 0x192000n } },
    { type: LogType.MAP_OUT, ts: base + 13, pid: 4242, start: 0x7f0000001000n, end: 0x7f0000009000n },
    {
      type: LogType.CALLCHAIN,
      ts: base + 14,
      pid: 4242,
      tid: 4243,
      pmcid: 0x00020f01,
      cpu: 1,
      flags: 0,
      pcs: BigUint64Array.from([KERNEL_PC, 0xffffffff81000010n, 0x401136n, 0x7fffffffe000n]),
    },
    {
      type: LogType.CALLCHAIN,
      ts: base + 15,
      pid: 4242,
      tid: 4242,
      pmcid: 0x00020f01,
      cpu: 0xfff,
      flags: PMC_CC_F_USERSPACE,
      pcs: BigUint64Array.from({ length: PMC_CALLCHAIN_DEPTH_MAX }, (_, i) => BIG - BigInt(i)),
    },
    { type: LogType.THR_CREATE, ts: base + 16, tid: 4243, pid: 4242, flags: 0x10, tdname: 'worker-1' },
    { type: LogType.THR_EXIT, ts: base + 17, tid: 4243 },
    { type: LogType.PROC_CREATE, ts: base + 18, pid: 4250, flags: 0x4000, pcomm: 'true' },
    { type: LogType.DROPNOTIFY, ts: base + 19, dropped: 17, lost: 0xffffffff },
    { type: LogType.CLOSELOG, ts: Number.MAX_SAFE_INTEGER },
  ];
}

function encodeAll(recs: LogRecord[]): Uint8Array {
  const out = new Uint8Array(recs.reduce((n, r) => n + encodedLength(r), 0));
  let o = 0;
  for (const r of recs) o = encodeRecord(r, out, o);
  assert.equal(o, out.length);
  return out;
}

describe('log codec', () => {
  it('round-trips every record type through encodeRecord / decodeRecord', () => {
    const recs = everyRecord();
    const types = new Set(recs.map((r) => r.type));
    for (const t of Object.values(LogType).filter((v) => typeof v === 'number')) assert.ok(types.has(t as LogType), `fixture covers ${LogType[t as number]}`);
    const bytes = encodeAll(recs);
    let o = 0;
    for (const want of recs) {
      const got = decodeRecord(bytes, o);
      assert.deepEqual(got, want);
      o += encodedLength(want);
    }
  });

  it('lays out the 16-byte header and fixed sizes as documented', () => {
    const rec: LogRecord = { type: LogType.PROCCSW, ts: 0x1020304050607, value: BIG, pmcid: 7, pid: 8, tid: 9 };
    const b = new Uint8Array(RecordSize.PROCCSW);
    encodeRecord(rec, b, 0);
    const dv = new DataView(b.buffer);
    assert.equal(dv.getUint32(0, true), ((0xee << 24) | (LogType.PROCCSW << 16) | 40) >>> 0);
    assert.equal(dv.getUint32(4, true), 0, 'pl_spare is 0');
    assert.equal(dv.getBigUint64(8, true), BigInt(rec.ts));
    assert.equal(dv.getBigUint64(16, true), BIG);
    assert.deepEqual([dv.getUint32(24, true), dv.getUint32(28, true), dv.getUint32(32, true), dv.getUint32(36, true)], [7, 8, 9, 0]);
    for (const r of everyRecord()) {
      const len = encodedLength(r);
      assert.equal(len % 4, 0, `${LogType[r.type]} length ${len} is a multiple of 4`);
      const fixed = (RecordSize as Record<string, number>)[LogType[r.type]];
      if (fixed !== undefined) assert.equal(len, fixed, LogType[r.type]);
    }
    assert.equal(RecordSize.THR_CREATE, 16 + 16 + 20);
    assert.equal(RecordSize.PROC_CREATE, 16 + 8 + 20);
    assert.equal(RecordSize.INITIALIZE, 112);
    assert.equal(RecordSize.PMCALLOCATEDYN, 104);
  });

  it('encodes a CALLCHAIN as pid, tid, pmcid, cpuflags, then u64 pcs', () => {
    const rec = everyRecord().find((r) => r.type === LogType.CALLCHAIN)!;
    const b = new Uint8Array(encodedLength(rec));
    encodeRecord(rec, b, 0);
    const dv = new DataView(b.buffer);
    assert.equal(b.length, callchainLength(4));
    assert.equal(dv.getInt32(16, true), 4242);
    assert.equal(dv.getUint32(28, true), (1 << 16) | 0);
    assert.equal(dv.getBigUint64(TailOffset.CALLCHAIN, true), KERNEL_PC);
  });

  it('zeroes string tails and pads, so a reused buffer leaks nothing', () => {
    const b = new Uint8Array(256).fill(0xaa);
    const end = encodeRecord({ type: LogType.MAP_IN, ts: 1, pid: 2, start: 3n, pathname: 'ab' }, b, 0);
    assert.equal(end, 36);
    assert.deepEqual([...b.subarray(20, 24)], [0, 0, 0, 0]);
    assert.deepEqual([...b.subarray(32, 36)], [0x61, 0x62, 0, 0]);
    b.fill(0xaa);
    encodeRecord({ type: LogType.THR_CREATE, ts: 1, tid: 2, pid: 3, flags: 4, tdname: 'x' }, b, 0);
    assert.deepEqual([...b.subarray(33, 52)], new Array(19).fill(0));
  });

  it('cuts over-long fixed-array names like strlcpy, at a character boundary', () => {
    const rec: LogRecord = { type: LogType.PROC_CREATE, ts: 1, pid: 2, flags: 0, pcomm: 'a-very-long-process-name' };
    const b = new Uint8Array(RecordSize.PROC_CREATE);
    encodeRecord(rec, b, 0);
    assert.equal((decodeRecord(b, 0) as { pcomm: string }).pcomm, 'a-very-long-process');
    encodeRecord({ ...rec, pcomm: 'ééééééééééé' }, b, 0); // 22 bytes of UTF-8
    assert.equal((decodeRecord(b, 0) as { pcomm: string }).pcomm, 'ééééééééé');
  });

  it('refuses to encode what it could not decode', () => {
    assert.throws(() => encodedLength({ type: LogType.MAP_IN, ts: 1, pid: 1, start: 0n, pathname: 'a\0b' }), (e) => isPmcError(e, 'EINVAL'));
    assert.throws(() => encodedLength({ type: LogType.MAP_IN, ts: 1, pid: 1, start: 0n, pathname: 'x'.repeat(70000) }), (e) => isPmcError(e, 'ENAMETOOLONG'));
    const noPcs: LogRecord = { type: LogType.CALLCHAIN, ts: 1, pid: 1, tid: 1, pmcid: 1, cpu: 0, flags: 0, pcs: new BigUint64Array(0) };
    assert.throws(() => encodedLength(noPcs), (e) => isPmcError(e, 'EINVAL'));
    assert.throws(() => encodedLength({ ...noPcs, pcs: new BigUint64Array(PMC_CALLCHAIN_DEPTH_MAX + 1) }), (e) => isPmcError(e, 'EINVAL'));
    assert.throws(() => encodeRecord({ type: LogType.CLOSELOG, ts: 1 }, new Uint8Array(8), 0), (e) => isPmcError(e, 'EINVAL'));
  });

  it("MAP_IN's extent: flagged in hwpmc's pad word, the record's last 16 bytes, after the pathname", () => {
    const rec: LogRecord = { type: LogType.MAP_IN, ts: 9, pid: 7, start: 0x7f00_0000_0000n, pathname: '/usr/bin/node', extent: { offset: 0x14c4000n, length: 0x192000n } };
    const len = encodedLength(rec);
    // 32 + "/usr/bin/node\0" (14) rounded up to 48, then offset and length.
    assert.equal(len, 64);
    const b = new Uint8Array(len + 8).fill(0xaa);
    assert.equal(encodeRecord(rec, b, 4), 4 + len);
    const dv = new DataView(b.buffer);
    assert.equal(dv.getUint32(4 + 20, true), 1, 'the extent flag');
    assert.equal(dv.getBigUint64(4 + 24, true), 0x7f00_0000_0000n);
    assert.equal(Buffer.from(b.subarray(4 + 32, 4 + 48)).toString('latin1'), '/usr/bin/node\0\0\0');
    assert.equal(dv.getBigUint64(4 + len - 16, true), 0x14c4000n);
    assert.equal(dv.getBigUint64(4 + len - 8, true), 0x192000n);
    assert.deepEqual(decodeRecord(b, 4), rec);
    // What a reader that knows no extent does (hwpmc's libpmc, older tspmc): the pad ignored, the pathname up to its NUL.
    dv.setUint32(4 + 20, 0, true);
    assert.deepEqual(decodeRecord(b, 4), { type: LogType.MAP_IN, ts: 9, pid: 7, start: 0x7f00_0000_0000n, pathname: '/usr/bin/node' });
    // The flag on a record too short for the extent, or whose pathname runs into it, is damage.
    const short = new Uint8Array(36);
    encodeRecord({ type: LogType.MAP_IN, ts: 1, pid: 2, start: 3n, pathname: 'ab' }, short, 0);
    new DataView(short.buffer).setUint32(20, 1, true);
    assert.throws(() => decodeRecord(short, 0, 96), (e) => e instanceof LogFormatError && e.offset === 96 && /MAP_IN length 36 is below its minimum 52 with its extent/.test(e.message));
    dv.setUint32(4 + 20, 1, true);
    b.fill(0x41, 4 + 32, 4 + 48);
    assert.throws(() => decodeRecord(b, 4), (e) => e instanceof LogFormatError && /MAP_IN pathname is not NUL-terminated within its 16 bytes/.test(e.message));
  });

  it('reads a FreeBSD 16-byte DROPNOTIFY as zero counts', () => {
    const b = new Uint8Array(16);
    new DataView(b.buffer).setUint32(0, headerWord(LogType.DROPNOTIFY, 16), true);
    assert.deepEqual(decodeRecord(b, 0), { type: LogType.DROPNOTIFY, ts: 0, dropped: 0, lost: 0 });
  });

  it('validates the header: magic, type, length rules', () => {
    const bad = (word: number, what: RegExp) =>
      assert.throws(
        () => checkHeader(word >>> 0, 4096),
        (e) => e instanceof LogFormatError && e.code === 'EINVAL' && e.offset === 4096 && what.test(e.message) && /4096/.test(e.message),
      );
    bad((0xed << 24) | (LogType.CLOSELOG << 16) | 16, /bad magic 0xed/);
    bad((0xee << 24) | (0 << 16) | 16, /unknown record type 0/);
    bad((0xee << 24) | (4 << 16) | 16, /unknown record type 4/);
    bad((0xee << 24) | (21 << 16) | 16, /unknown record type 21/);
    bad(headerWord(LogType.MAP_IN, 38), /not a multiple of 4/);
    bad(headerWord(LogType.PROCCSW, 44), /PROCCSW length 44 \(expected 40\)/);
    bad(headerWord(LogType.DROPNOTIFY, 20), /expected 16 or 24/);
    bad(headerWord(LogType.MAP_IN, 32), /below its minimum 36/);
    bad(headerWord(LogType.CLOSELOG, 0), /CLOSELOG length 0/);
    bad(headerWord(LogType.CALLCHAIN, 32), /below its minimum 40/);
    bad(headerWord(LogType.CALLCHAIN, 44), /not a multiple of 8/);
    bad(headerWord(LogType.CALLCHAIN, callchainLength(PMC_CALLCHAIN_DEPTH_MAX + 1)), /exceeds the maximum depth 512/);
    assert.equal(checkHeader(headerWord(LogType.CALLCHAIN, callchainLength(PMC_CALLCHAIN_DEPTH_MAX)), 0), callchainLength(PMC_CALLCHAIN_DEPTH_MAX));
  });

  it('rejects strings that are not NUL-terminated within the record', () => {
    const b = new Uint8Array(64);
    encodeRecord({ type: LogType.PMCATTACH, ts: 1, pmcid: 1, pid: 1, pathname: 'abc' }, b, 0);
    b[27] = 0x64; // overwrite the NUL: "abcd" fills the 4 tail bytes
    b.fill(0, 28); // a NUL right after the record must not count
    assert.throws(() => decodeRecord(b, 0, 800), (e) => e instanceof LogFormatError && e.offset === 800 && /PMCATTACH pathname is not NUL-terminated/.test(e.message));
    const init = new Uint8Array(RecordSize.INITIALIZE + 4);
    encodeRecord(everyRecord()[0], init, 0);
    init.fill(0x41, 48, 112);
    assert.throws(() => decodeRecord(init, 0), (e) => e instanceof LogFormatError && /cpuid is not NUL-terminated/.test(e.message));
  });

  it('round-trips every record type through LogWriter, a real file and readLog', async () => {
    const path = join(dir, 'every.log');
    const fd = openSync(path, 'w');
    const w = new LogWriter({ sink: fd, bufferSize: 4096 + 64, nbuffers: 4 });
    const recs = everyRecord();
    for (const r of recs) {
      while (!w.writeRecord(r)) await w.flush();
    }
    await w.close();
    closeSync(fd);
    const got: LogRecord[] = [];
    for await (const r of readLog(path)) got.push(r);
    assert.deepEqual(got, recs);
    assert.equal(readFileSync(path).length, recs.reduce((n, r) => n + encodedLength(r), 0));
  });
});
