// Decoding of the records a perf ring buffer carries (include/uapi/linux/perf_event.h).
//
// Samples are the hot path: decodeSample() fills a reusable SampleFields from
// offsets precomputed once per sample_type, reads 64-bit values as numbers
// (ids, times, periods stay far below 2^53) or as two u32 halves (addresses),
// and leaves the call chain in place. Side-band records (mmap, comm, fork...)
// are rare and decode into small objects.
import { PmcError } from '../pmc-error.js';
import { PerfFormat, PerfSample, type PerfEventAttr } from './perf-attr.js';

export enum PerfRecordType {
  MMAP = 1,
  LOST = 2,
  COMM = 3,
  EXIT = 4,
  THROTTLE = 5,
  UNTHROTTLE = 6,
  FORK = 7,
  READ = 8,
  SAMPLE = 9,
  MMAP2 = 10,
  AUX = 11,
  ITRACE_START = 12,
  LOST_SAMPLES = 13,
  SWITCH = 14,
  SWITCH_CPU_WIDE = 15,
  NAMESPACES = 16,
  KSYMBOL = 17,
  BPF_EVENT = 18,
  CGROUP = 19,
  TEXT_POKE = 20,
  AUX_OUTPUT_HW_ID = 21,
}

/** perf_event_header.misc bits; bits 13 and 14 mean different things per record type. */
export const PerfRecordMisc = {
  CPUMODE_MASK: 7,
  CPUMODE_UNKNOWN: 0,
  KERNEL: 1,
  USER: 2,
  HYPERVISOR: 3,
  GUEST_KERNEL: 4,
  GUEST_USER: 5,
  MMAP_DATA: 1 << 13,
  COMM_EXEC: 1 << 13,
  SWITCH_OUT: 1 << 13,
  EXACT_IP: 1 << 14,
  SWITCH_OUT_PREEMPT: 1 << 14,
  MMAP_BUILD_ID: 1 << 14,
} as const;

/** Call-chain context markers (negative numbers stored as u64). */
export const PerfContext = {
  HV: BigInt.asUintN(64, -32n),
  KERNEL: BigInt.asUintN(64, -128n),
  USER: BigInt.asUintN(64, -512n),
  GUEST: BigInt.asUintN(64, -2048n),
  GUEST_KERNEL: BigInt.asUintN(64, -2176n),
  GUEST_USER: BigInt.asUintN(64, -2560n),
  MAX: BigInt.asUintN(64, -4095n),
} as const;

// The same markers as low u32 halves (their high half is 0xFFFFFFFF), so the
// frame walk compares plain numbers. Kernel text also has a high half of
// 0xFFFFFFFF, so a marker is told apart by its low half alone.
const CONTEXT_LOW_MIN = 0x1_0000_0000 - 4095;
const CONTEXT_USER_LOW = 0x1_0000_0000 - 512;
const CONTEXT_GUEST_USER_LOW = 0x1_0000_0000 - 2560;
const HIGH_ALL_ONES = 0xffff_ffff;

const TWO_32 = 0x1_0000_0000;
const HEADER_SIZE = 8;

/** A u64 as a JS number: exact below 2^53, which ids, counts, periods and nanosecond clocks stay under. */
export function u64Number(view: DataView, offset: number): number {
  return view.getUint32(offset, true) + view.getUint32(offset + 4, true) * TWO_32;
}

export function u64BigInt(view: DataView, offset: number): bigint {
  return view.getBigUint64(offset, true);
}

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
    let at = HEADER_SIZE;
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

/** The sampled IP as one value, for the paths where a BigInt is fine. */
export function sampleIp(s: SampleFields): bigint {
  return (BigInt(s.ipHi) << 32n) | BigInt(s.ipLo);
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

/** Result of copyCallchainFrames, reused by the caller. */
export class CallchainCopy {
  /** Addresses copied. */
  frames = 0;
  /** The first address lies in a user (or guest user) context. */
  userMode = false;
}

/**
 * Copies the real addresses of a call chain (context markers dropped) as u64
 * little-endian words into `dst`, at most `maxDepth` of them, without a
 * BigInt. A chain without a marker before its first address reports kernel
 * mode; the kernel always writes one.
 */
export function copyCallchainFrames(
  src: DataView,
  offset: number,
  n: number,
  dst: DataView,
  dstOffset: number,
  maxDepth: number,
  out: CallchainCopy,
): void {
  let frames = 0;
  let userContext = false;
  let userMode = false;
  const end = offset + n * 8;
  for (let at = offset; at < end && frames < maxDepth; at += 8) {
    const lo = src.getUint32(at, true);
    const hi = src.getUint32(at + 4, true);
    if (hi === HIGH_ALL_ONES && lo >= CONTEXT_LOW_MIN) {
      userContext = lo === CONTEXT_USER_LOW || lo === CONTEXT_GUEST_USER_LOW;
      continue;
    }
    if (frames === 0) userMode = userContext;
    const d = dstOffset + frames * 8;
    dst.setUint32(d, lo, true);
    dst.setUint32(d + 4, hi, true);
    frames++;
  }
  out.frames = frames;
  out.userMode = userMode;
}

/**
 * The PERF_SAMPLE_IDENTIFIER of any record, for rings that several events
 * share: first after the header in samples, last in every other record. Only
 * meaningful when every event writing to the ring has IDENTIFIER (and, for
 * side-band records, sample_id_all).
 */
export function recordIdentifier(view: DataView, offset: number, type: number, size: number): number {
  return u64Number(view, type === PerfRecordType.SAMPLE ? offset + HEADER_SIZE : offset + size - 8);
}

// ---- side-band records ----

/** The sample_id trailer of a side-band record; -1 for fields the event does not carry. */
export interface SampleId {
  pid: number;
  tid: number;
  time: number;
  id: number;
  streamId: number;
  cpu: number;
}

interface SideBase {
  misc: number;
  sampleId: SampleId | null;
}
export interface MmapRecord extends SideBase {
  type: PerfRecordType.MMAP;
  pid: number;
  tid: number;
  addr: bigint;
  len: bigint;
  pgoff: bigint;
  filename: string;
}
export interface Mmap2Record extends SideBase {
  type: PerfRecordType.MMAP2;
  pid: number;
  tid: number;
  addr: bigint;
  len: bigint;
  pgoff: bigint;
  /** Device and inode; absent when the kernel sent a build id instead (misc MMAP_BUILD_ID). */
  maj: number;
  min: number;
  ino: bigint;
  inoGeneration: bigint;
  buildId: Uint8Array | null;
  /** PROT_* and MAP_* bits of the mapping. */
  prot: number;
  flags: number;
  filename: string;
}
export interface CommRecord extends SideBase {
  type: PerfRecordType.COMM;
  pid: number;
  tid: number;
  comm: string;
  /** The rename came from execve. */
  exec: boolean;
}
export interface TaskRecord extends SideBase {
  type: PerfRecordType.FORK | PerfRecordType.EXIT;
  pid: number;
  ppid: number;
  tid: number;
  ptid: number;
  time: number;
}
export interface LostRecord extends SideBase {
  type: PerfRecordType.LOST;
  id: number;
  lost: number;
}
export interface ThrottleRecord extends SideBase {
  type: PerfRecordType.THROTTLE | PerfRecordType.UNTHROTTLE;
  time: number;
  id: number;
  streamId: number;
}
export interface SwitchRecord extends SideBase {
  type: PerfRecordType.SWITCH | PerfRecordType.SWITCH_CPU_WIDE;
  out: boolean;
  preempt: boolean;
  /** The task switched to (out) or from (in); -1 in per-task SWITCH records. */
  nextPrevPid: number;
  nextPrevTid: number;
}
export interface LostSamplesRecord extends SideBase {
  type: PerfRecordType.LOST_SAMPLES;
  lost: number;
}
export type SideRecord =
  | MmapRecord
  | Mmap2Record
  | CommRecord
  | TaskRecord
  | LostRecord
  | ThrottleRecord
  | SwitchRecord
  | LostSamplesRecord;

const utf8 = new TextDecoder('utf-8');

/** A NUL-terminated string inside [start, end). */
function cString(bytes: Uint8Array, start: number, end: number): string {
  let nul = bytes.indexOf(0, start);
  if (nul < 0 || nul > end) nul = end;
  return utf8.decode(bytes.subarray(start, nul));
}

function readSampleId(layout: SampleIdLayout, view: DataView, recordEnd: number): SampleId | null {
  if (layout.size === 0) return null;
  const t = recordEnd - layout.size;
  const id = layout.identifier >= 0 ? layout.identifier : layout.id;
  return {
    pid: layout.tid >= 0 ? view.getInt32(t + layout.tid, true) : -1,
    tid: layout.tid >= 0 ? view.getInt32(t + layout.tid + 4, true) : -1,
    time: layout.time >= 0 ? u64Number(view, t + layout.time) : -1,
    id: id >= 0 ? u64Number(view, t + id) : -1,
    streamId: layout.streamId >= 0 ? u64Number(view, t + layout.streamId) : -1,
    cpu: layout.cpu >= 0 ? view.getUint32(t + layout.cpu, true) : -1,
  };
}

/**
 * Decodes a side-band record. `layout` is that of the event that wrote it
 * (its sample_id trailer). Returns null for SAMPLE (see decodeSample) and for
 * record types not decoded here (READ, AUX, KSYMBOL, ...).
 */
export function decodeSideRecord(
  layout: SampleLayout,
  bytes: Uint8Array,
  view: DataView,
  offset: number,
  type: number,
  misc: number,
  size: number,
): SideRecord | null {
  const end = offset + size;
  const bodyEnd = end - layout.sampleId.size;
  if (bodyEnd < offset + HEADER_SIZE) {
    throw new PmcError('EIO', `record type ${type} of ${size} bytes is shorter than its ${layout.sampleId.size}-byte sample_id trailer`);
  }
  const need = (bytesNeeded: number): void => {
    if (offset + HEADER_SIZE + bytesNeeded > bodyEnd) {
      throw new PmcError('EIO', `record type ${type} of ${size} bytes is too short for its ${bytesNeeded}-byte body`);
    }
  };
  const b = offset + HEADER_SIZE;
  const sampleId = readSampleId(layout.sampleId, view, end);
  switch (type) {
    case PerfRecordType.MMAP:
      need(32);
      return {
        type, misc, sampleId,
        pid: view.getInt32(b, true),
        tid: view.getInt32(b + 4, true),
        addr: u64BigInt(view, b + 8),
        len: u64BigInt(view, b + 16),
        pgoff: u64BigInt(view, b + 24),
        filename: cString(bytes, b + 32, bodyEnd),
      };
    case PerfRecordType.MMAP2: {
      need(64);
      const hasBuildId = (misc & PerfRecordMisc.MMAP_BUILD_ID) !== 0;
      const buildIdSize = Math.min(view.getUint8(b + 32), 20);
      return {
        type, misc, sampleId,
        pid: view.getInt32(b, true),
        tid: view.getInt32(b + 4, true),
        addr: u64BigInt(view, b + 8),
        len: u64BigInt(view, b + 16),
        pgoff: u64BigInt(view, b + 24),
        maj: hasBuildId ? -1 : view.getUint32(b + 32, true),
        min: hasBuildId ? -1 : view.getUint32(b + 36, true),
        ino: hasBuildId ? 0n : u64BigInt(view, b + 40),
        inoGeneration: hasBuildId ? 0n : u64BigInt(view, b + 48),
        buildId: hasBuildId ? bytes.slice(b + 36, b + 36 + buildIdSize) : null,
        prot: view.getUint32(b + 56, true),
        flags: view.getUint32(b + 60, true),
        filename: cString(bytes, b + 64, bodyEnd),
      };
    }
    case PerfRecordType.COMM:
      need(8);
      return {
        type, misc, sampleId,
        pid: view.getInt32(b, true),
        tid: view.getInt32(b + 4, true),
        comm: cString(bytes, b + 8, bodyEnd),
        exec: (misc & PerfRecordMisc.COMM_EXEC) !== 0,
      };
    case PerfRecordType.FORK:
    case PerfRecordType.EXIT:
      need(24);
      return {
        type, misc, sampleId,
        pid: view.getInt32(b, true),
        ppid: view.getInt32(b + 4, true),
        tid: view.getInt32(b + 8, true),
        ptid: view.getInt32(b + 12, true),
        time: u64Number(view, b + 16),
      };
    case PerfRecordType.LOST:
      need(16);
      return { type, misc, sampleId, id: u64Number(view, b), lost: u64Number(view, b + 8) };
    case PerfRecordType.THROTTLE:
    case PerfRecordType.UNTHROTTLE:
      need(24);
      return { type, misc, sampleId, time: u64Number(view, b), id: u64Number(view, b + 8), streamId: u64Number(view, b + 16) };
    case PerfRecordType.SWITCH:
    case PerfRecordType.SWITCH_CPU_WIDE: {
      const wide = type === PerfRecordType.SWITCH_CPU_WIDE;
      if (wide) need(8);
      const out = (misc & PerfRecordMisc.SWITCH_OUT) !== 0;
      return {
        type, misc, sampleId, out,
        preempt: out && (misc & PerfRecordMisc.SWITCH_OUT_PREEMPT) !== 0,
        nextPrevPid: wide ? view.getInt32(b, true) : -1,
        nextPrevTid: wide ? view.getInt32(b + 4, true) : -1,
      };
    }
    case PerfRecordType.LOST_SAMPLES:
      need(8);
      return { type, misc, sampleId, lost: u64Number(view, b) };
    default:
      return null;
  }
}
