// Binary layout of the owner log: FreeBSD's pmclog records with the 16-byte
// header (u32 header word, u32 spare, u64 timestamp), little-endian. Every
// offset and size here is documented in docs/log-format.md.
import { PmcError } from '../pmc-error.js';
import { LogType, PMCLOG_HEADER_MAGIC, type CallchainRecord, type LogRecord } from './records.js';

export const LOG_HEADER_SIZE = 16;
/** The header's length field is 16 bits and lengths are multiples of 4. */
export const MAX_RECORD_LENGTH = 0xfffc;
/** PMC_CALLCHAIN_DEPTH_MAX of the v9/v10 headers. */
export const CALLCHAIN_DEPTH_MAX = 512;
/** PMC_CPUID_LEN and PMC_NAME_MAX. */
export const CPUID_LEN = 64;
export const EVENT_NAME_LEN = 64;
/** MAXCOMLEN + 1: thread and process name arrays. */
export const COMM_LEN = 20;

/** Sizes of the fixed-size records, header included. */
export const RecordSize = {
  CLOSELOG: 16,
  /** tspmc's form with two counts; a FreeBSD 16-byte DROPNOTIFY is accepted too. */
  DROPNOTIFY: 24,
  DROPNOTIFY_BARE: 16,
  INITIALIZE: 112,
  PMCALLOCATE: 40,
  PMCALLOCATEDYN: 104,
  PMCDETACH: 24,
  PROCCSW: 40,
  PROCEXIT: 32,
  PROCFORK: 24,
  SYSEXIT: 24,
  USERDATA: 24,
  MAP_OUT: 40,
  THR_CREATE: 52,
  THR_EXIT: 24,
  PROC_CREATE: 44,
} as const;

/** Where the variable-length tail (pathname or pcs) of the other records starts. */
export const TailOffset = {
  PMCATTACH: 24,
  PROCEXEC: 40,
  MAP_IN: 32,
  CALLCHAIN: 32,
} as const;

const TWO32 = 4294967296;

/** A log that cannot be read: names the byte offset of the damaged record and what is wrong. */
export class LogFormatError extends PmcError {
  /** Byte offset (from the start of the log) of the record or header that is damaged. */
  readonly offset: number;

  constructor(offset: number, what: string) {
    super('EINVAL', `log byte offset ${offset} (0x${offset.toString(16)}): ${what}`);
    this.name = 'LogFormatError';
    this.offset = offset;
  }
}

// Minimum (and, for fixed records, exact) lengths indexed by type; 0 = unknown type.
const minLength: number[] = [];
const exactLength: number[] = [];
function fixed(type: LogType, size: number): void {
  minLength[type] = size;
  exactLength[type] = size;
}
function variable(type: LogType, tail: number, unit: number): void {
  // At least one unit of tail: a NUL for strings, one pc for call chains.
  minLength[type] = roundUp4(tail + unit);
  exactLength[type] = 0;
}
fixed(LogType.CLOSELOG, RecordSize.CLOSELOG);
fixed(LogType.DROPNOTIFY, RecordSize.DROPNOTIFY_BARE);
fixed(LogType.INITIALIZE, RecordSize.INITIALIZE);
fixed(LogType.PMCALLOCATE, RecordSize.PMCALLOCATE);
fixed(LogType.PMCALLOCATEDYN, RecordSize.PMCALLOCATEDYN);
fixed(LogType.PMCDETACH, RecordSize.PMCDETACH);
fixed(LogType.PROCCSW, RecordSize.PROCCSW);
fixed(LogType.PROCEXIT, RecordSize.PROCEXIT);
fixed(LogType.PROCFORK, RecordSize.PROCFORK);
fixed(LogType.SYSEXIT, RecordSize.SYSEXIT);
fixed(LogType.USERDATA, RecordSize.USERDATA);
fixed(LogType.MAP_OUT, RecordSize.MAP_OUT);
fixed(LogType.THR_CREATE, RecordSize.THR_CREATE);
fixed(LogType.THR_EXIT, RecordSize.THR_EXIT);
fixed(LogType.PROC_CREATE, RecordSize.PROC_CREATE);
variable(LogType.PMCATTACH, TailOffset.PMCATTACH, 1);
variable(LogType.PROCEXEC, TailOffset.PROCEXEC, 1);
variable(LogType.MAP_IN, TailOffset.MAP_IN, 1);
variable(LogType.CALLCHAIN, TailOffset.CALLCHAIN, 8);

function roundUp4(n: number): number {
  return (n + 3) & ~3;
}

export function headerWord(type: LogType, length: number): number {
  return ((PMCLOG_HEADER_MAGIC << 24) | (type << 16) | length) >>> 0;
}

export function typeName(type: number): string {
  return LogType[type] ?? `type ${type}`;
}

/** Length in bytes of a CALLCHAIN record with `npcs` pcs. */
export function callchainLength(npcs: number): number {
  return TailOffset.CALLCHAIN + 8 * npcs;
}

/**
 * Checks a header word (magic, known type, length rules) and returns the
 * record length; `offset` is where the record starts in the log, for the error.
 */
export function checkHeader(word: number, offset: number): number {
  const magic = word >>> 24;
  const type = (word >>> 16) & 0xff;
  const length = word & 0xffff;
  if (magic !== PMCLOG_HEADER_MAGIC) {
    throw new LogFormatError(offset, `bad magic 0x${magic.toString(16)} in header word 0x${word.toString(16)} (expected 0xee)`);
  }
  const min = minLength[type];
  if (min === undefined) throw new LogFormatError(offset, `unknown record type ${type}`);
  const name = typeName(type);
  if (length % 4 !== 0) throw new LogFormatError(offset, `${name} length ${length} is not a multiple of 4`);
  const exact = exactLength[type];
  if (type === LogType.DROPNOTIFY) {
    if (length !== RecordSize.DROPNOTIFY_BARE && length !== RecordSize.DROPNOTIFY) {
      throw new LogFormatError(offset, `DROPNOTIFY length ${length} (expected 16 or 24)`);
    }
  } else if (exact !== 0 && length !== exact) {
    throw new LogFormatError(offset, `${name} length ${length} (expected ${exact})`);
  } else if (length < min) {
    throw new LogFormatError(offset, `${name} length ${length} is below its minimum ${min}`);
  }
  if (type === LogType.CALLCHAIN) {
    const tail = length - TailOffset.CALLCHAIN;
    if (tail % 8 !== 0) throw new LogFormatError(offset, `CALLCHAIN length ${length}: (length - 32) is not a multiple of 8`);
    if (tail / 8 > CALLCHAIN_DEPTH_MAX) {
      throw new LogFormatError(offset, `CALLCHAIN of ${tail / 8} pcs exceeds the maximum depth ${CALLCHAIN_DEPTH_MAX}`);
    }
  }
  return length;
}

// ---------------------------------------------------------------------------
// Views: one DataView and one Buffer per source or target array, cached so
// that decoding a run of records from the same chunk allocates no views.

let viewedArray: Uint8Array | null = null;
let viewDv: DataView = new DataView(new ArrayBuffer(0));
let viewBuf: Buffer = Buffer.alloc(0);
function view(a: Uint8Array): DataView {
  if (a !== viewedArray) {
    viewedArray = a;
    viewDv = new DataView(a.buffer, a.byteOffset, a.byteLength);
    viewBuf = Buffer.isBuffer(a) ? a : Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  }
  return viewDv;
}

function getU64Number(dv: DataView, o: number): number {
  return dv.getUint32(o, true) + dv.getUint32(o + 4, true) * TWO32;
}
function getI64Number(dv: DataView, o: number): number {
  return dv.getUint32(o, true) + dv.getInt32(o + 4, true) * TWO32;
}
function setU64Number(dv: DataView, o: number, v: number): void {
  dv.setUint32(o, v % TWO32, true);
  dv.setUint32(o + 4, Math.floor(v / TWO32), true);
}
function setI64Number(dv: DataView, o: number, v: number): void {
  const hi = Math.floor(v / TWO32);
  dv.setUint32(o, v - hi * TWO32, true);
  dv.setInt32(o + 4, hi, true);
}

// ---------------------------------------------------------------------------
// Encoding

const encoder = new TextEncoder();

function checkString(s: string, what: string): void {
  if (s.includes('\0')) throw new PmcError('EINVAL', `${what} ${JSON.stringify(s)} contains a NUL character`);
}

/** Byte length of a variable-length record whose tail is a NUL-terminated string. */
function stringRecordLength(rec: LogRecord, tail: number, s: string, what: string): number {
  checkString(s, what);
  const len = roundUp4(tail + Buffer.byteLength(s, 'utf8') + 1);
  if (len > MAX_RECORD_LENGTH) {
    throw new PmcError('ENAMETOOLONG', `${typeName(rec.type)} ${what} of ${Buffer.byteLength(s)} bytes does not fit a log record (max ${MAX_RECORD_LENGTH - tail - 1})`);
  }
  return len;
}

/** Encoded length in bytes of `rec`, header included; throws PmcError on a record that cannot be encoded. */
export function encodedLength(rec: LogRecord): number {
  switch (rec.type) {
    case LogType.PMCATTACH:
      return stringRecordLength(rec, TailOffset.PMCATTACH, rec.pathname, 'pathname');
    case LogType.PROCEXEC:
      return stringRecordLength(rec, TailOffset.PROCEXEC, rec.pathname, 'pathname');
    case LogType.MAP_IN:
      return stringRecordLength(rec, TailOffset.MAP_IN, rec.pathname, 'pathname');
    case LogType.CALLCHAIN:
      checkDepth(rec.pcs.length);
      return callchainLength(rec.pcs.length);
    case LogType.DROPNOTIFY:
      return RecordSize.DROPNOTIFY;
    default: {
      const size = exactLength[rec.type];
      if (size === undefined) throw new PmcError('EINVAL', `cannot encode unknown log record type ${(rec as { type: unknown }).type}`);
      return size;
    }
  }
}

export function checkDepth(npcs: number): void {
  if (!Number.isInteger(npcs) || npcs < 1 || npcs > CALLCHAIN_DEPTH_MAX) {
    throw new PmcError('EINVAL', `call chain of ${npcs} pcs (expected 1 to ${CALLCHAIN_DEPTH_MAX})`);
  }
}

/** Writes the NUL-terminated string and zero padding up to `end`. */
function putString(target: Uint8Array, start: number, end: number, s: string): void {
  const { written } = encoder.encodeInto(s, target.subarray(start, end - 1));
  target.fill(0, start + written, end);
}

/**
 * Writes a fixed char array of `size` bytes: like the kernel's strlcpy, a
 * longer string is cut (at a character boundary) to leave room for the NUL.
 */
function putCharArray(target: Uint8Array, start: number, size: number, s: string, what: string): void {
  checkString(s, what);
  putString(target, start, start + size, s);
}

/** Writes the 16-byte header. */
export function putHeader(dv: DataView, o: number, type: LogType, length: number, ts: number): void {
  dv.setUint32(o, headerWord(type, length), true);
  dv.setUint32(o + 4, 0, true);
  setU64Number(dv, o + 8, ts);
}

/**
 * Encodes `rec` into `target` at `offset`; returns the offset just past it.
 * Pads and the bytes after strings are zeroed, so reused buffers leak nothing.
 */
export function encodeRecord(rec: LogRecord, target: Uint8Array, offset: number): number {
  const len = encodedLength(rec);
  if (!Number.isInteger(offset) || offset < 0 || offset + len > target.length) {
    throw new PmcError('EINVAL', `a ${len}-byte ${typeName(rec.type)} record does not fit at offset ${offset} of a ${target.length}-byte buffer`);
  }
  const dv = view(target);
  const o = offset;
  putHeader(dv, o, rec.type, len, rec.ts);
  switch (rec.type) {
    case LogType.CLOSELOG:
      break;
    case LogType.DROPNOTIFY:
      dv.setUint32(o + 16, rec.dropped, true);
      dv.setUint32(o + 20, rec.lost, true);
      break;
    case LogType.INITIALIZE:
      dv.setUint32(o + 16, rec.version, true);
      dv.setUint32(o + 20, rec.cpuType, true);
      setU64Number(dv, o + 24, rec.tscFreq);
      setI64Number(dv, o + 32, rec.wallSec);
      setI64Number(dv, o + 40, rec.wallNsec);
      putCharArray(target, o + 48, CPUID_LEN, rec.cpuid, 'cpuid');
      break;
    case LogType.PMCALLOCATE:
      dv.setUint32(o + 16, rec.pmcid, true);
      dv.setUint32(o + 20, rec.event, true);
      dv.setUint32(o + 24, rec.flags, true);
      dv.setUint32(o + 28, 0, true);
      dv.setBigUint64(o + 32, rec.rate, true);
      break;
    case LogType.PMCALLOCATEDYN:
      dv.setUint32(o + 16, rec.pmcid, true);
      dv.setUint32(o + 20, rec.event, true);
      dv.setUint32(o + 24, rec.flags, true);
      dv.setUint32(o + 28, 0, true);
      dv.setBigUint64(o + 32, rec.rate, true);
      putCharArray(target, o + 40, EVENT_NAME_LEN, rec.eventName, 'event name');
      break;
    case LogType.PMCATTACH:
      dv.setUint32(o + 16, rec.pmcid, true);
      dv.setUint32(o + 20, rec.pid, true);
      putString(target, o + TailOffset.PMCATTACH, o + len, rec.pathname);
      break;
    case LogType.PMCDETACH:
      dv.setUint32(o + 16, rec.pmcid, true);
      dv.setUint32(o + 20, rec.pid, true);
      break;
    case LogType.PROCCSW:
      dv.setBigUint64(o + 16, rec.value, true);
      dv.setUint32(o + 24, rec.pmcid, true);
      dv.setUint32(o + 28, rec.pid, true);
      dv.setUint32(o + 32, rec.tid, true);
      dv.setUint32(o + 36, 0, true);
      break;
    case LogType.PROCEXEC:
      dv.setUint32(o + 16, rec.pid, true);
      dv.setUint32(o + 20, rec.pmcid, true);
      dv.setBigUint64(o + 24, rec.base, true);
      dv.setBigUint64(o + 32, rec.dyn, true);
      putString(target, o + TailOffset.PROCEXEC, o + len, rec.pathname);
      break;
    case LogType.PROCEXIT:
      dv.setUint32(o + 16, rec.pmcid, true);
      dv.setUint32(o + 20, rec.pid, true);
      dv.setBigUint64(o + 24, rec.value, true);
      break;
    case LogType.PROCFORK:
      dv.setUint32(o + 16, rec.oldpid, true);
      dv.setUint32(o + 20, rec.newpid, true);
      break;
    case LogType.SYSEXIT:
      dv.setUint32(o + 16, rec.pid, true);
      dv.setUint32(o + 20, 0, true);
      break;
    case LogType.USERDATA:
      dv.setUint32(o + 16, rec.userdata, true);
      dv.setUint32(o + 20, 0, true);
      break;
    case LogType.MAP_IN:
      dv.setUint32(o + 16, rec.pid, true);
      dv.setUint32(o + 20, 0, true);
      dv.setBigUint64(o + 24, rec.start, true);
      putString(target, o + TailOffset.MAP_IN, o + len, rec.pathname);
      break;
    case LogType.MAP_OUT:
      dv.setUint32(o + 16, rec.pid, true);
      dv.setUint32(o + 20, 0, true);
      dv.setBigUint64(o + 24, rec.start, true);
      dv.setBigUint64(o + 32, rec.end, true);
      break;
    case LogType.CALLCHAIN:
      encodeCallchainFields(dv, o, rec);
      target.set(new Uint8Array(rec.pcs.buffer, rec.pcs.byteOffset, rec.pcs.byteLength), o + TailOffset.CALLCHAIN);
      break;
    case LogType.THR_CREATE:
      dv.setUint32(o + 16, rec.tid, true);
      dv.setUint32(o + 20, rec.pid, true);
      dv.setUint32(o + 24, rec.flags, true);
      dv.setUint32(o + 28, 0, true);
      putCharArray(target, o + 32, COMM_LEN, rec.tdname, 'thread name');
      break;
    case LogType.THR_EXIT:
      dv.setUint32(o + 16, rec.tid, true);
      dv.setUint32(o + 20, 0, true);
      break;
    case LogType.PROC_CREATE:
      dv.setUint32(o + 16, rec.pid, true);
      dv.setUint32(o + 20, rec.flags, true);
      putCharArray(target, o + 24, COMM_LEN, rec.pcomm, 'process name');
      break;
  }
  return o + len;
}

function encodeCallchainFields(dv: DataView, o: number, rec: CallchainRecord): void {
  dv.setUint32(o + 16, rec.pid, true);
  dv.setUint32(o + 20, rec.tid, true);
  dv.setUint32(o + 24, rec.pmcid, true);
  dv.setUint32(o + 28, cpuFlags(rec.cpu, rec.flags), true);
}

/** pl_cpuflags: CPU in the high 16 bits, PMC_CC_F_* in the low 16. */
export function cpuFlags(cpu: number, flags: number): number {
  return (((cpu & 0xffff) << 16) | (flags & 0xffff)) >>> 0;
}

// ---------------------------------------------------------------------------
// Decoding

/** The NUL-terminated string in [start, end) of `src`; `streamOffset` names the record in errors. */
function getString(src: Uint8Array, start: number, end: number, streamOffset: number, what: string): string {
  const nul = src.indexOf(0, start);
  if (nul < 0 || nul >= end) {
    throw new LogFormatError(streamOffset, `${what} is not NUL-terminated within its ${end - start} bytes`);
  }
  view(src);
  return viewBuf.toString('utf8', start, nul);
}

// Decoded pcs are copied, not viewed in place: the source chunk is dropped
// after decoding, and in-place u64 views would need an 8-byte alignment the
// log does not promise. Each copy is a view into a shared slab, because an
// ArrayBuffer per record costs more than the rest of decoding together.
const PCS_SLAB_SIZE = 256 * 1024;
let pcsSlab = new Uint8Array(PCS_SLAB_SIZE);
let pcsSlabUsed = 0;

function copyPcs(src: Uint8Array, start: number, end: number): BigUint64Array {
  const nbytes = end - start;
  if (pcsSlabUsed + nbytes > PCS_SLAB_SIZE) {
    pcsSlab = new Uint8Array(PCS_SLAB_SIZE);
    pcsSlabUsed = 0;
  }
  const at = pcsSlabUsed;
  // A byte loop: set() would need a subarray view of `src` per record.
  const slab = pcsSlab;
  for (let i = 0; i < nbytes; i++) slab[at + i] = src[start + i];
  pcsSlabUsed = at + nbytes;
  return new BigUint64Array(pcsSlab.buffer, at, nbytes / 8);
}

/**
 * Decodes the record at `offset` of `src`, which must hold all of it.
 * `streamOffset` is the record's offset in the whole log, used in errors.
 * A CALLCHAIN's `pcs` is a view into a shared slab: its `buffer` holds other
 * records' pcs too (mind `byteOffset` and `byteLength`).
 */
export function decodeRecord(src: Uint8Array, offset: number, streamOffset: number = offset): LogRecord {
  if (offset + 4 > src.length) throw new LogFormatError(streamOffset, `truncated header: ${Math.max(0, src.length - offset)} of ${LOG_HEADER_SIZE} bytes`);
  const dv = view(src);
  const o = offset;
  const word = dv.getUint32(o, true);
  const len = checkHeader(word, streamOffset);
  if (o + len > src.length) {
    throw new LogFormatError(streamOffset, `truncated ${typeName((word >>> 16) & 0xff)} record: ${src.length - o} of ${len} bytes`);
  }
  const type = (word >>> 16) & 0xff;
  const ts = getU64Number(dv, o + 8);
  switch (type as LogType) {
    case LogType.CLOSELOG:
      return { type: LogType.CLOSELOG, ts };
    case LogType.DROPNOTIFY:
      return len === RecordSize.DROPNOTIFY
        ? { type: LogType.DROPNOTIFY, ts, dropped: dv.getUint32(o + 16, true), lost: dv.getUint32(o + 20, true) }
        : { type: LogType.DROPNOTIFY, ts, dropped: 0, lost: 0 };
    case LogType.INITIALIZE:
      return {
        type: LogType.INITIALIZE,
        ts,
        version: dv.getUint32(o + 16, true),
        cpuType: dv.getUint32(o + 20, true),
        tscFreq: getU64Number(dv, o + 24),
        wallSec: getI64Number(dv, o + 32),
        wallNsec: getI64Number(dv, o + 40),
        cpuid: getString(src, o + 48, o + 48 + CPUID_LEN, streamOffset, 'INITIALIZE cpuid'),
      };
    case LogType.PMCALLOCATE:
      return {
        type: LogType.PMCALLOCATE,
        ts,
        pmcid: dv.getUint32(o + 16, true),
        event: dv.getUint32(o + 20, true),
        flags: dv.getUint32(o + 24, true),
        rate: dv.getBigUint64(o + 32, true),
      };
    case LogType.PMCALLOCATEDYN:
      return {
        type: LogType.PMCALLOCATEDYN,
        ts,
        pmcid: dv.getUint32(o + 16, true),
        event: dv.getUint32(o + 20, true),
        flags: dv.getUint32(o + 24, true),
        rate: dv.getBigUint64(o + 32, true),
        eventName: getString(src, o + 40, o + 40 + EVENT_NAME_LEN, streamOffset, 'PMCALLOCATEDYN event name'),
      };
    case LogType.PMCATTACH:
      return {
        type: LogType.PMCATTACH,
        ts,
        pmcid: dv.getUint32(o + 16, true),
        pid: dv.getInt32(o + 20, true),
        pathname: getString(src, o + TailOffset.PMCATTACH, o + len, streamOffset, 'PMCATTACH pathname'),
      };
    case LogType.PMCDETACH:
      return { type: LogType.PMCDETACH, ts, pmcid: dv.getUint32(o + 16, true), pid: dv.getInt32(o + 20, true) };
    case LogType.PROCCSW:
      return {
        type: LogType.PROCCSW,
        ts,
        value: dv.getBigUint64(o + 16, true),
        pmcid: dv.getUint32(o + 24, true),
        pid: dv.getInt32(o + 28, true),
        tid: dv.getInt32(o + 32, true),
      };
    case LogType.PROCEXEC:
      return {
        type: LogType.PROCEXEC,
        ts,
        pid: dv.getInt32(o + 16, true),
        pmcid: dv.getUint32(o + 20, true),
        base: dv.getBigUint64(o + 24, true),
        dyn: dv.getBigUint64(o + 32, true),
        pathname: getString(src, o + TailOffset.PROCEXEC, o + len, streamOffset, 'PROCEXEC pathname'),
      };
    case LogType.PROCEXIT:
      return {
        type: LogType.PROCEXIT,
        ts,
        pmcid: dv.getUint32(o + 16, true),
        pid: dv.getInt32(o + 20, true),
        value: dv.getBigUint64(o + 24, true),
      };
    case LogType.PROCFORK:
      return { type: LogType.PROCFORK, ts, oldpid: dv.getInt32(o + 16, true), newpid: dv.getInt32(o + 20, true) };
    case LogType.SYSEXIT:
      return { type: LogType.SYSEXIT, ts, pid: dv.getInt32(o + 16, true) };
    case LogType.USERDATA:
      return { type: LogType.USERDATA, ts, userdata: dv.getUint32(o + 16, true) };
    case LogType.MAP_IN:
      return {
        type: LogType.MAP_IN,
        ts,
        pid: dv.getInt32(o + 16, true),
        start: dv.getBigUint64(o + 24, true),
        pathname: getString(src, o + TailOffset.MAP_IN, o + len, streamOffset, 'MAP_IN pathname'),
      };
    case LogType.MAP_OUT:
      return {
        type: LogType.MAP_OUT,
        ts,
        pid: dv.getInt32(o + 16, true),
        start: dv.getBigUint64(o + 24, true),
        end: dv.getBigUint64(o + 32, true),
      };
    case LogType.CALLCHAIN: {
      const cf = dv.getUint32(o + 28, true);
      const pcs = copyPcs(src, o + TailOffset.CALLCHAIN, o + len);
      return {
        type: LogType.CALLCHAIN,
        ts,
        pid: dv.getInt32(o + 16, true),
        tid: dv.getInt32(o + 20, true),
        pmcid: dv.getUint32(o + 24, true),
        cpu: cf >>> 16,
        flags: cf & 0xffff,
        pcs,
      };
    }
    case LogType.THR_CREATE:
      return {
        type: LogType.THR_CREATE,
        ts,
        tid: dv.getInt32(o + 16, true),
        pid: dv.getInt32(o + 20, true),
        flags: dv.getUint32(o + 24, true),
        tdname: getString(src, o + 32, o + 32 + COMM_LEN, streamOffset, 'THR_CREATE thread name'),
      };
    case LogType.THR_EXIT:
      return { type: LogType.THR_EXIT, ts, tid: dv.getInt32(o + 16, true) };
    case LogType.PROC_CREATE:
      return {
        type: LogType.PROC_CREATE,
        ts,
        pid: dv.getInt32(o + 16, true),
        flags: dv.getUint32(o + 20, true),
        pcomm: getString(src, o + 24, o + 24 + COMM_LEN, streamOffset, 'PROC_CREATE process name'),
      };
  }
  // checkHeader admits only the types handled above.
  throw new LogFormatError(streamOffset, `unknown record type ${type}`);
}
