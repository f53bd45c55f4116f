// The records a perf ring buffer carries (include/uapi/linux/perf_event.h):
// the header's types and misc bits, the call-chain context markers, and the
// side-band records (mmap, comm, fork, exit, lost...), which are rare and
// decode into small objects. Samples, the hot path, are perf-sample-record.ts.
import { PmcError } from '../pmc-error.js';
import type { SampleIdLayout, SampleLayout } from './perf-sample-record.js';

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

const TWO_32 = 0x1_0000_0000;
/** Bytes of perf_event_header. */
export const PERF_HEADER_SIZE = 8;

/** A u64 as a JS number: exact below 2^53, which ids, counts, periods and nanosecond clocks stay under. */
export function u64Number(view: DataView, offset: number): number {
  return view.getUint32(offset, true) + view.getUint32(offset + 4, true) * TWO_32;
}

function u64BigInt(view: DataView, offset: number): bigint {
  return view.getBigUint64(offset, true);
}

/**
 * The PERF_SAMPLE_IDENTIFIER of any record, for rings that several events
 * share: first after the header in samples, last in every other record. Only
 * meaningful when every event writing to the ring has IDENTIFIER (and, for
 * side-band records, sample_id_all).
 */
export function recordIdentifier(view: DataView, offset: number, type: number, size: number): number {
  return u64Number(view, type === PerfRecordType.SAMPLE ? offset + PERF_HEADER_SIZE : offset + size - 8);
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

/** The fields PERF_RECORD_MMAP and MMAP2 begin with (pid, tid, addr, len, pgoff). */
function mmapHead(view: DataView, b: number): { pid: number; tid: number; addr: bigint; len: bigint; pgoff: bigint } {
  return { pid: view.getInt32(b, true), tid: view.getInt32(b + 4, true), addr: u64BigInt(view, b + 8), len: u64BigInt(view, b + 16), pgoff: u64BigInt(view, b + 24) };
}

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
  if (bodyEnd < offset + PERF_HEADER_SIZE) {
    throw new PmcError('EIO', `record type ${type} of ${size} bytes is shorter than its ${layout.sampleId.size}-byte sample_id trailer`);
  }
  const need = (bytesNeeded: number): void => {
    if (offset + PERF_HEADER_SIZE + bytesNeeded > bodyEnd) {
      throw new PmcError('EIO', `record type ${type} of ${size} bytes is too short for its ${bytesNeeded}-byte body`);
    }
  };
  const b = offset + PERF_HEADER_SIZE;
  const sampleId = readSampleId(layout.sampleId, view, end);
  switch (type) {
    case PerfRecordType.MMAP:
      need(32);
      return { type, misc, sampleId, ...mmapHead(view, b), filename: cString(bytes, b + 32, bodyEnd) };
    case PerfRecordType.MMAP2: {
      need(64);
      const hasBuildId = (misc & PerfRecordMisc.MMAP_BUILD_ID) !== 0;
      const buildIdSize = Math.min(view.getUint8(b + 32), 20);
      return {
        type, misc, sampleId, ...mmapHead(view, b),
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
