// Record decoding against records built here in the uapi field order, placed
// at an odd offset inside a larger buffer as they are inside a ring.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PerfFormat, PerfSample } from '../src/md/perf-attr.js';
import { decodeSideRecord, PerfContext, PerfRecordMisc, PerfRecordType, recordIdentifier } from '../src/md/perf-records.js';
import { copyChainWords, decodeSample, SampleFields, SampleLayout } from '../src/md/perf-sample-record.js';
import { isPmcError } from '../src/pmc-error.js';

/** Builds one record: header, then fields appended in the order given. */
class RecordBuilder {
  private readonly bytes = new Uint8Array(4096);
  private readonly view = new DataView(this.bytes.buffer);
  private at = 8;

  constructor(
    private readonly type: number,
    private readonly misc = 0,
  ) {}

  u32(v: number): this {
    this.view.setUint32(this.at, v, true);
    this.at += 4;
    return this;
  }
  u64(v: bigint | number): this {
    this.view.setBigUint64(this.at, BigInt(v), true);
    this.at += 8;
    return this;
  }
  raw(b: Uint8Array): this {
    this.bytes.set(b, this.at);
    this.at += b.length;
    return this;
  }
  /** A NUL-terminated string padded to 8 bytes, as the kernel writes names. */
  cString(s: string): this {
    const b = new TextEncoder().encode(s);
    this.raw(b);
    this.at += 8 - (b.length % 8);
    return this;
  }
  pad8(): this {
    this.at = (this.at + 7) & ~7;
    return this;
  }

  /** The record placed at `offset` in a larger buffer. */
  place(offset: number): { bytes: Uint8Array; view: DataView; offset: number; size: number } {
    this.view.setUint32(0, this.type, true);
    this.view.setUint16(4, this.misc, true);
    this.view.setUint16(6, this.at, true);
    const bytes = new Uint8Array(offset + this.at + 64);
    bytes.set(this.bytes.subarray(0, this.at), offset);
    return { bytes, view: new DataView(bytes.buffer), offset, size: this.at };
  }
}

const KERNEL_IP = 0xffffffff_81234567n;

test('every decoded sample field comes back from a record with all supported sample_type bits', () => {
  const sampleType =
    PerfSample.IDENTIFIER | PerfSample.IP | PerfSample.TID | PerfSample.TIME | PerfSample.ADDR | PerfSample.ID |
    PerfSample.STREAM_ID | PerfSample.CPU | PerfSample.PERIOD | PerfSample.READ | PerfSample.CALLCHAIN | PerfSample.RAW;
  const readFormat = PerfFormat.TOTAL_TIME_ENABLED | PerfFormat.TOTAL_TIME_RUNNING | PerfFormat.ID | PerfFormat.LOST;
  const layout = new SampleLayout(sampleType, readFormat, true);
  const time = 3_000_000_000_123_456n; // 35 days of uptime in ns, past 2^32
  const chain = [PerfContext.KERNEL, KERNEL_IP, 0xffffffff_81000010n, PerfContext.USER, 0x55550000_1234n];
  const rawBytes = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  const builder = new RecordBuilder(PerfRecordType.SAMPLE, PerfRecordMisc.KERNEL)
    .u64(77) // identifier
    .u64(KERNEL_IP)
    .u32(4242).u32(4243)
    .u64(time)
    .u64(0x7fff_dead_beefn) // addr
    .u64(77) // id
    .u64(78) // stream id
    .u32(1).u32(0)
    .u64(100_000)
    .u64(123_456_789).u64(1000).u64(900).u64(77).u64(3) // value, enabled, running, id, lost
    .u64(chain.length);
  for (const c of chain) builder.u64(c);
  builder.u32(rawBytes.length).raw(rawBytes).pad8();
  const { view, offset } = builder.place(40);

  const s = new SampleFields();
  decodeSample(layout, view, offset, s);
  assert.equal(s.id, 77);
  assert.equal((BigInt(s.ipHi) << 32n) | BigInt(s.ipLo), KERNEL_IP);
  assert.equal(s.pid, 4242);
  assert.equal(s.tid, 4243);
  assert.equal(s.time, Number(time));
  assert.equal((BigInt(s.addrHi) << 32n) | BigInt(s.addrLo), 0x7fff_dead_beefn);
  assert.equal(s.streamId, 78);
  assert.equal(s.cpu, 1);
  assert.equal(s.period, 100_000);
  assert.equal(layout.readSize, 40);
  assert.equal(view.getBigUint64(s.readOffset, true), 123_456_789n);
  assert.equal(view.getBigUint64(s.readOffset + 32, true), 3n);
  assert.equal(s.callchainLength, chain.length);
  assert.deepEqual(
    chain.map((_, i) => view.getBigUint64(s.callchainOffset + 8 * i, true)),
    chain,
  );
  assert.equal(s.rawSize, rawBytes.length);
  assert.deepEqual(new Uint8Array(view.buffer, s.rawOffset, s.rawSize), rawBytes);
  assert.equal(recordIdentifier(view, offset, PerfRecordType.SAMPLE, 0), 77);
});

test('without IDENTIFIER the sample id comes from the ID field, and absent fields read as zero', () => {
  const layout = new SampleLayout(PerfSample.TID | PerfSample.ID);
  const { view, offset } = new RecordBuilder(PerfRecordType.SAMPLE).u32(10).u32(11).u64(99).place(8);
  const s = new SampleFields();
  s.period = 5;
  decodeSample(layout, view, offset, s);
  assert.equal(s.id, 99);
  assert.equal(s.pid, 10);
  assert.equal(s.period, 0);
  assert.equal(s.callchainOffset, -1);
  assert.equal(s.callchainLength, 0);
});

test('sample layouts refuse what they cannot decode', () => {
  const regsUser = 1n << 12n;
  assert.throws(() => new SampleLayout(PerfSample.IP | regsUser), (e) => isPmcError(e, 'EINVAL') && /0x1000/.test(e.message));
  assert.throws(() => new SampleLayout(PerfSample.READ, PerfFormat.GROUP), (e) => isPmcError(e, 'EINVAL') && /GROUP/.test(e.message));
  const layout = new SampleLayout(PerfSample.IP | PerfSample.CALLCHAIN);
  // A call chain claiming more entries than the record holds.
  const { view, offset } = new RecordBuilder(PerfRecordType.SAMPLE).u64(1).u64(50).u64(PerfContext.USER).place(0);
  assert.throws(() => decodeSample(layout, view, offset, new SampleFields()), (e) => isPmcError(e, 'EIO'));
  const withRaw = new SampleLayout(PerfSample.IP | PerfSample.CALLCHAIN | PerfSample.RAW);
  assert.throws(() => decodeSample(withRaw, view, offset, new SampleFields()), (e) => isPmcError(e, 'EIO'));
});

test('copyChainWords drops context markers, keeps kernel addresses and can stop at the user context', () => {
  const chain = [PerfContext.KERNEL, KERNEL_IP, 0xffffffff_ff600000n, PerfContext.USER, 0x401000n, 0x7f00_0000_1000n];
  const b = new RecordBuilder(0);
  for (const c of chain) b.u64(c);
  const src = new Int32Array(b.place(0).bytes.buffer);
  const first = 2; // the chain's first entry, after the 8-byte header
  const dst = new Int32Array(4 + 2 * chain.length);
  const framesAt = (n: number): bigint[] => [...new BigUint64Array(dst.buffer, 16, n)];

  assert.equal(copyChainWords(src, first, chain.length, dst, 4, 127, false), 4);
  assert.deepEqual(framesAt(4), chain.filter((c) => c < PerfContext.MAX));

  assert.equal(copyChainWords(src, first, chain.length, dst, 4, 2, false), 2, 'maxDepth bounds the copy');

  // A kernel-mode sample without -U: the copy ends at the user context.
  assert.equal(copyChainWords(src, first, chain.length, dst, 4, 127, true), 2);
  assert.deepEqual(framesAt(2), chain.slice(1, 3));

  // The user part alone.
  assert.equal(copyChainWords(src, first + 3 * 2, 3, dst, 4, 127, false), 2);
  assert.deepEqual(framesAt(2), chain.slice(4));
});

test('side-band records decode with their sample_id trailer', () => {
  const sampleType = PerfSample.IDENTIFIER | PerfSample.TID | PerfSample.TIME | PerfSample.ID | PerfSample.STREAM_ID | PerfSample.CPU;
  const layout = new SampleLayout(sampleType, 0n, true);
  const trailer = (b: RecordBuilder): RecordBuilder => b.u32(500).u32(501).u64(9_000_000_000n).u64(31).u64(32).u32(1).u32(0).u64(31);
  const decode = (b: RecordBuilder) => {
    const r = b.place(16);
    return decodeSideRecord(layout, r.bytes, r.view, r.offset, r.view.getUint32(r.offset, true), r.view.getUint16(r.offset + 4, true), r.size);
  };

  const mmap2 = decode(
    trailer(
      new RecordBuilder(PerfRecordType.MMAP2, PerfRecordMisc.USER)
        .u32(500).u32(501).u64(0x400000).u64(0x2000).u64(0x1000)
        .u32(8).u32(1).u64(123456).u64(7)
        .u32(5).u32(2)
        .cString('/usr/bin/true'),
    ),
  );
  assert.ok(mmap2?.type === PerfRecordType.MMAP2);
  assert.deepEqual(
    { pid: mmap2.pid, tid: mmap2.tid, addr: mmap2.addr, len: mmap2.len, pgoff: mmap2.pgoff, maj: mmap2.maj, min: mmap2.min, ino: mmap2.ino, gen: mmap2.inoGeneration, buildId: mmap2.buildId, prot: mmap2.prot, flags: mmap2.flags, filename: mmap2.filename },
    { pid: 500, tid: 501, addr: 0x400000n, len: 0x2000n, pgoff: 0x1000n, maj: 8, min: 1, ino: 123456n, gen: 7n, buildId: null, prot: 5, flags: 2, filename: '/usr/bin/true' },
  );
  assert.deepEqual(mmap2.sampleId, { pid: 500, tid: 501, time: 9_000_000_000, id: 31, streamId: 32, cpu: 1 });

  const buildId = Uint8Array.from({ length: 20 }, (_, i) => i + 1);
  const withBuildId = decode(
    trailer(
      new RecordBuilder(PerfRecordType.MMAP2, PerfRecordMisc.USER | PerfRecordMisc.MMAP_BUILD_ID)
        .u32(500).u32(501).u64(0x400000).u64(0x2000).u64(0)
        .raw(Uint8Array.from([20, 0, 0, 0])).raw(buildId)
        .u32(5).u32(2)
        .cString('/lib/x.so'),
    ),
  );
  assert.ok(withBuildId?.type === PerfRecordType.MMAP2);
  assert.deepEqual(withBuildId.buildId, buildId);
  assert.equal(withBuildId.filename, '/lib/x.so');

  const comm = decode(trailer(new RecordBuilder(PerfRecordType.COMM, PerfRecordMisc.COMM_EXEC).u32(500).u32(500).cString('sh')));
  assert.ok(comm?.type === PerfRecordType.COMM);
  assert.deepEqual([comm.pid, comm.tid, comm.comm, comm.exec], [500, 500, 'sh', true]);

  const fork = decode(trailer(new RecordBuilder(PerfRecordType.FORK).u32(600).u32(500).u32(601).u32(501).u64(8_000_000_000n)));
  assert.ok(fork?.type === PerfRecordType.FORK);
  assert.deepEqual([fork.pid, fork.ppid, fork.tid, fork.ptid, fork.time], [600, 500, 601, 501, 8_000_000_000]);

  const lost = decode(trailer(new RecordBuilder(PerfRecordType.LOST).u64(31).u64(1234)));
  assert.ok(lost?.type === PerfRecordType.LOST);
  assert.deepEqual([lost.id, lost.lost], [31, 1234]);

  const throttle = decode(trailer(new RecordBuilder(PerfRecordType.UNTHROTTLE).u64(5).u64(31).u64(32)));
  assert.ok(throttle?.type === PerfRecordType.UNTHROTTLE);
  assert.deepEqual([throttle.time, throttle.id, throttle.streamId], [5, 31, 32]);

  const out = decode(trailer(new RecordBuilder(PerfRecordType.SWITCH, PerfRecordMisc.SWITCH_OUT | PerfRecordMisc.SWITCH_OUT_PREEMPT)));
  assert.ok(out?.type === PerfRecordType.SWITCH);
  assert.deepEqual([out.out, out.preempt, out.nextPrevPid], [true, true, -1]);

  const wide = decode(trailer(new RecordBuilder(PerfRecordType.SWITCH_CPU_WIDE).u32(700).u32(701)));
  assert.ok(wide?.type === PerfRecordType.SWITCH_CPU_WIDE);
  assert.deepEqual([wide.out, wide.preempt, wide.nextPrevPid, wide.nextPrevTid], [false, false, 700, 701]);

  const lostSamples = decode(trailer(new RecordBuilder(PerfRecordType.LOST_SAMPLES).u64(17)));
  assert.ok(lostSamples?.type === PerfRecordType.LOST_SAMPLES);
  assert.equal(lostSamples.lost, 17);

  assert.equal(decode(trailer(new RecordBuilder(PerfRecordType.KSYMBOL).u64(0))), null);

  const r = trailer(new RecordBuilder(PerfRecordType.EXIT).u32(1).u32(1).u32(1).u32(1).u64(1)).place(24);
  assert.equal(recordIdentifier(r.view, r.offset, PerfRecordType.EXIT, r.size), 31);
});

test('side-band records without sample_id_all have no trailer, and short records are refused', () => {
  const layout = new SampleLayout(PerfSample.TID | PerfSample.TIME);
  const r = new RecordBuilder(PerfRecordType.EXIT).u32(1).u32(2).u32(3).u32(4).u64(5).place(0);
  const exit = decodeSideRecord(layout, r.bytes, r.view, r.offset, PerfRecordType.EXIT, 0, r.size);
  assert.ok(exit?.type === PerfRecordType.EXIT);
  assert.equal(exit.sampleId, null);
  assert.equal(exit.time, 5);
  const short = new RecordBuilder(PerfRecordType.FORK).u32(1).place(0);
  assert.throws(() => decodeSideRecord(layout, short.bytes, short.view, 0, PerfRecordType.FORK, 0, short.size), (e) => isPmcError(e, 'EIO'));
});
