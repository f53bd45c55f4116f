// PERF_RECORD_SAMPLE (include/uapi/linux/perf_event.h): where its fields
// lie for one sample_type (SampleLayout, computed once per event), the
// sample_id trailer the same sample_type gives side-band records, decoding
// one sample into a reusable SampleFields, and copying its call chain.
//
// Samples are the hot path: 64-bit values are read as numbers (ids, times,
// periods stay far below 2^53) or as two u32 halves (addresses), and the
// call chain is left in place until it is copied as int32 words.
import { PmcError } from '../pmc-error.js';
import { PerfFormat, PerfSample, type PerfEventAttr } from './perf-attr.js';
import { PERF_HEADER_SIZE, u64Number } from './perf-records.js';

/** Offsets of the sample_id fields that sample_id_all appends to side-band records, from the trailer's start. */
export interface SampleIdLayout {
  /** Trailer length in bytes; 0 when sample_id_all is off. */
  readonly size: number;
  readonly tid: number;
  readonly time: number;
  readonly id: number;
  readonly streamId: number;
  readonly cpu: number;
  readonly identifier: number;
}

const DECODED_SAMPLE_BITS =
  PerfSample.IDENTIFIER | PerfSample.IP | PerfSample.TID | PerfSample.TIME | PerfSample.ADDR | PerfSample.ID |
  PerfSample.STREAM_ID | PerfSample.CPU | PerfSample.PERIOD | PerfSample.READ | PerfSample.CALLCHAIN | PerfSample.RAW;

const READ_FORMAT_BITS = PerfFormat.TOTAL_TIME_ENABLED | PerfFormat.TOTAL_TIME_RUNNING | PerfFormat.ID | PerfFormat.LOST;

/**
 * Where each field of a PERF_RECORD_SAMPLE lies for one sample_type, as byte
 * offsets from the record header (-1 when absent). Every field up to the call
 * chain has a fixed size, so only RAW, which follows the chain, moves.
 */
export class SampleLayout {
  readonly identifier: number;
  readonly ip: number;
  readonly tid: number;
  readonly time: number;
  readonly addr: number;
  readonly id: number;
  readonly streamId: number;
  readonly cpu: number;
  readonly period: number;
  /** The read_format block, readSize bytes long (a group's: nr, times, then each member's value and ids). */
  readonly read: number;
  readonly readSize: number;
  /** Offset of the chain's `nr` word. */
  readonly callchain: number;
  readonly raw: boolean;
  /** Bytes from the header to the call chain (or to RAW, or to the end). */
  readonly fixedSize: number;
  readonly sampleId: SampleIdLayout;

  constructor(
    readonly sampleType: bigint,
    readonly readFormat = 0n,
    sampleIdAll = false,
    /** With PERF_FORMAT_GROUP: the number of events in the group. */
    readonly groupSize = 0,
  ) {
    const extra = sampleType & ~DECODED_SAMPLE_BITS;
    if (extra !== 0n) {
      throw new PmcError('EINVAL', `sample_type 0x${sampleType.toString(16)} has bits 0x${extra.toString(16)} that are not decoded; expected only IDENTIFIER, IP, TID, TIME, ADDR, ID, STREAM_ID, CPU, PERIOD, READ, CALLCHAIN, RAW`);
    }
    const has = (bit: bigint): boolean => (sampleType & bit) !== 0n;
    let at = PERF_HEADER_SIZE;
    const take = (bit: bigint, bytes = 8): number => {
      if (!has(bit)) return -1;
      const here = at;
      at += bytes;
      return here;
    };
    this.identifier = take(PerfSample.IDENTIFIER);
    this.ip = take(PerfSample.IP);
    this.tid = take(PerfSample.TID);
    this.time = take(PerfSample.TIME);
    this.addr = take(PerfSample.ADDR);
    this.id = take(PerfSample.ID);
    this.streamId = take(PerfSample.STREAM_ID);
    this.cpu = take(PerfSample.CPU);
    this.period = take(PerfSample.PERIOD);
    this.readSize = 0;
    if (has(PerfSample.READ)) {
      const group = (readFormat & PerfFormat.GROUP) !== 0n;
      const extraFormat = readFormat & ~(READ_FORMAT_BITS | PerfFormat.GROUP);
      if (extraFormat !== 0n) throw new PmcError('EINVAL', `read_format bits 0x${extraFormat.toString(16)} are unknown`);
      if (group && groupSize < 1) throw new PmcError('EINVAL', 'a PERF_FORMAT_GROUP read needs the size of the group');
      const bit = (b: bigint): number => ((readFormat & b) !== 0n ? 1 : 0);
      const times = bit(PerfFormat.TOTAL_TIME_ENABLED) + bit(PerfFormat.TOTAL_TIME_RUNNING);
      const perValue = 1 + bit(PerfFormat.ID) + bit(PerfFormat.LOST);
      // Group: nr, times, then per member its value and ids. Single: value, times, ids.
      this.readSize = group ? (1 + times + groupSize * perValue) * 8 : (times + perValue) * 8;
    }
    this.read = take(PerfSample.READ, this.readSize);
    this.fixedSize = at;
    this.callchain = has(PerfSample.CALLCHAIN) ? at : -1;
    this.raw = has(PerfSample.RAW);
    this.sampleId = sampleIdLayout(sampleType, sampleIdAll);
  }

  static fromAttr(attr: PerfEventAttr, groupSize = 0): SampleLayout {
    return new SampleLayout(attr.sampleType ?? 0n, attr.readFormat ?? 0n, attr.flags?.sampleIdAll ?? false, groupSize);
  }
}

/** The sample_id trailer: TID, TIME, ID, STREAM_ID, CPU, IDENTIFIER, in that order. */
function sampleIdLayout(sampleType: bigint, sampleIdAll: boolean): SampleIdLayout {
  let at = 0;
  const take = (bit: bigint): number => {
    if (!sampleIdAll || (sampleType & bit) === 0n) return -1;
    const here = at;
    at += 8;
    return here;
  };
  const tid = take(PerfSample.TID);
  const time = take(PerfSample.TIME);
  const id = take(PerfSample.ID);
  const streamId = take(PerfSample.STREAM_ID);
  const cpu = take(PerfSample.CPU);
  const identifier = take(PerfSample.IDENTIFIER);
  return { size: at, tid, time, id, streamId, cpu, identifier };
}

/**
 * One decoded sample, reused from sample to sample. Absent fields read 0
 * (offsets -1). Addresses are kept as u32 halves: a kernel address does not
 * fit a double, a BigInt would allocate per sample, and the log writer stores
 * the halves as they are.
 */
export class SampleFields {
  id = 0;
  ipLo = 0;
  ipHi = 0;
  pid = 0;
  tid = 0;
  /** Nanoseconds of the event's clock. */
  time = 0;
  addrLo = 0;
  addrHi = 0;
  streamId = 0;
  cpu = 0;
  period = 0;
  /** Offset of the read_format block in the record's bytes. */
  readOffset = -1;
  /** Offset of the first call-chain entry (after `nr`) in the record's bytes. */
  callchainOffset = -1;
  /** Entries, markers included. */
  callchainLength = 0;
  rawOffset = -1;
  rawSize = 0;
}

/** Fills `out` from the PERF_RECORD_SAMPLE whose header is at `offset`. */
export function decodeSample(layout: SampleLayout, view: DataView, offset: number, out: SampleFields): void {
  const size = view.getUint16(offset + 6, true);
  let o = layout.identifier >= 0 ? layout.identifier : layout.id;
  out.id = o >= 0 ? u64Number(view, offset + o) : 0;
  o = layout.ip;
  if (o >= 0) {
    out.ipLo = view.getUint32(offset + o, true);
    out.ipHi = view.getUint32(offset + o + 4, true);
  } else {
    out.ipLo = out.ipHi = 0;
  }
  o = layout.tid;
  if (o >= 0) {
    out.pid = view.getInt32(offset + o, true);
    out.tid = view.getInt32(offset + o + 4, true);
  } else {
    out.pid = out.tid = 0;
  }
  o = layout.time;
  out.time = o >= 0 ? u64Number(view, offset + o) : 0;
  o = layout.addr;
  if (o >= 0) {
    out.addrLo = view.getUint32(offset + o, true);
    out.addrHi = view.getUint32(offset + o + 4, true);
  } else {
    out.addrLo = out.addrHi = 0;
  }
  o = layout.streamId;
  out.streamId = o >= 0 ? u64Number(view, offset + o) : 0;
  o = layout.cpu;
  out.cpu = o >= 0 ? view.getUint32(offset + o, true) : 0;
  o = layout.period;
  out.period = o >= 0 ? u64Number(view, offset + o) : 0;
  out.readOffset = layout.read >= 0 ? offset + layout.read : -1;

  const end = offset + size;
  let at = offset + layout.fixedSize;
  if (layout.callchain >= 0) {
    // nr never exceeds the kernel's max stack (127 by default), so its low half is the count.
    const nr = view.getUint32(at, true);
    out.callchainOffset = at + 8;
    out.callchainLength = nr;
    at += 8 + nr * 8;
    if (at > end) throw truncatedSample(layout, size, at - offset);
  } else {
    out.callchainOffset = -1;
    out.callchainLength = 0;
  }
  if (layout.raw) {
    out.rawSize = view.getUint32(at, true);
    out.rawOffset = at + 4;
    at += 4 + out.rawSize;
  } else {
    out.rawOffset = -1;
    out.rawSize = 0;
  }
  if (at > end) throw truncatedSample(layout, size, at - offset);
}

function truncatedSample(layout: SampleLayout, size: number, needed: number): PmcError {
  return new PmcError('EIO', `sample record of ${size} bytes is shorter than its fields (${needed} bytes) for sample_type 0x${layout.sampleType.toString(16)}`);
}

const TWO_32 = 0x1_0000_0000;

/**
 * The u64 at int32 words `i` (low) and `i + 1` (high) as a number: exact
 * below 2^53. Floating-point arithmetic from the first operation on, with
 * no `>>> 0`: optimized code that has only seen low words below 2^30 would
 * otherwise be thrown away (and compiled again) at the first one above.
 */
export function u64Words(words: Int32Array, i: number): number {
  const lo = words[i];
  return words[i + 1] * TWO_32 + lo + (lo < 0 ? TWO_32 : 0);
}

// Call-chain context markers (PERF_CONTEXT_*, negative u64s) as int32 word
// pairs: the high word is -1 and the low word lies in [-4095, -1]. Kernel
// text has a high word of -1 too, but never a low word that high.
const CONTEXT_LOW_MIN = -4095;
const CONTEXT_USER = -512;
const CONTEXT_GUEST_USER = -2560;

/**
 * Copies the addresses of a call chain of `entries` u64 entries, at word
 * `first` of `src`, into `dst` from word `at` (two int32 words each, low word
 * first), context markers dropped, at most `maxDepth` of them. With
 * `stopAtUser` the copy ends at the user context (a kernel-mode sample's user
 * frames left out). Returns how many addresses it copied; no BigInt.
 */
export function copyChainWords(src: Int32Array, first: number, entries: number, dst: Int32Array, at: number, maxDepth: number, stopAtUser: boolean): number {
  const end = first + 2 * entries;
  let d = at;
  let frames = 0;
  for (let w = first; w < end && frames < maxDepth; w += 2) {
    const lo = src[w];
    const hi = src[w + 1];
    if (hi === -1 && lo >= CONTEXT_LOW_MIN) {
      if (stopAtUser && (lo === CONTEXT_USER || lo === CONTEXT_GUEST_USER)) break;
      continue;
    }
    dst[d] = lo;
    dst[d + 1] = hi;
    d += 2;
    frames++;
  }
  return frames;
}
