// The owner log's records, as typed values. Their binary layout (FreeBSD's
// pmclog.h with the 16-byte header carrying a 64-bit timestamp) is declared
// in record-layouts.ts; docs/log-format.md documents it field by field.

export const PMCLOG_HEADER_MAGIC = 0xee;

/** Record type numbers of the explicit (V6 and later) enum. */
export enum LogType {
  CLOSELOG = 1,
  DROPNOTIFY = 2,
  INITIALIZE = 3,
  PMCALLOCATE = 5,
  PMCATTACH = 6,
  PMCDETACH = 7,
  PROCCSW = 8,
  PROCEXEC = 9,
  PROCEXIT = 10,
  PROCFORK = 11,
  SYSEXIT = 12,
  USERDATA = 13,
  MAP_IN = 14,
  MAP_OUT = 15,
  CALLCHAIN = 16,
  PMCALLOCATEDYN = 17,
  THR_CREATE = 18,
  THR_EXIT = 19,
  PROC_CREATE = 20,
}

/** pl_cpuflags bit 0: the sampled PC was in user mode. */
export const PMC_CC_F_USERSPACE = 0x01;

/** Every record carries a timestamp: nanoseconds of CLOCK_MONOTONIC (INITIALIZE declares a 1 GHz clock). */
interface Stamped {
  ts: number;
}

export interface InitializeRecord extends Stamped {
  type: LogType.INITIALIZE;
  version: number;
  cpuType: number;
  /** Clock rate of `ts` in Hz; always 1e9 here. */
  tscFreq: number;
  /** Wall-clock time at configure, for converting `ts` to dates. */
  wallSec: number;
  wallNsec: number;
  cpuid: string;
}
export interface CloseLogRecord extends Stamped {
  type: LogType.CLOSELOG;
}
/**
 * FreeBSD's DROPNOTIFY is a bare header. tspmc appends two u32 counts (a
 * 24-byte record) so that an offline reader can account for every sample,
 * and, when side-band records were lost too, six more (48 bytes); a
 * 16-byte DROPNOTIFY from elsewhere reads as zeros.
 */
export interface DropNotifyRecord extends Stamped {
  type: LogType.DROPNOTIFY;
  /** Samples tspmc dropped (sample buffer or log full) since the previous DROPNOTIFY. */
  dropped: number;
  /** Samples the kernel reported lost (PERF_RECORD_LOST) since the previous DROPNOTIFY. */
  lost: number;
  /** Side-band records the log could not take since the previous DROPNOTIFY; present only in the 48-byte form. */
  sideband?: SidebandDrops;
}
/** Side-band records that could not be logged, by kind. */
export interface SidebandDrops {
  /** PROCEXEC */
  exec: number;
  /** PROCFORK */
  fork: number;
  /** THR_CREATE and THR_EXIT */
  thread: number;
  /** SYSEXIT and PROCEXIT */
  exit: number;
  /** MAP_IN */
  map: number;
  /** PROCCSW */
  csw: number;
}
export interface PmcAllocateRecord extends Stamped {
  type: LogType.PMCALLOCATE;
  pmcid: number;
  event: number;
  flags: number;
  /** Reload count of a sampling PMC (0 for counting). */
  rate: bigint;
}
export interface PmcAllocateDynRecord extends Stamped {
  type: LogType.PMCALLOCATEDYN;
  pmcid: number;
  event: number;
  flags: number;
  rate: bigint;
  eventName: string;
}
export interface PmcAttachRecord extends Stamped {
  type: LogType.PMCATTACH;
  pmcid: number;
  pid: number;
  pathname: string;
}
export interface PmcDetachRecord extends Stamped {
  type: LogType.PMCDETACH;
  pmcid: number;
  pid: number;
}
export interface ProcCswRecord extends Stamped {
  type: LogType.PROCCSW;
  value: bigint;
  pmcid: number;
  pid: number;
  tid: number;
}
export interface ProcExecRecord extends Stamped {
  type: LogType.PROCEXEC;
  pid: number;
  pmcid: number;
  /** AT_BASE (interpreter load address), 0 if unknown. */
  base: bigint;
  /** Load address of a PIE executable, 0 otherwise. */
  dyn: bigint;
  pathname: string;
}
export interface ProcExitRecord extends Stamped {
  type: LogType.PROCEXIT;
  pmcid: number;
  pid: number;
  value: bigint;
}
export interface ProcForkRecord extends Stamped {
  type: LogType.PROCFORK;
  oldpid: number;
  newpid: number;
}
export interface SysExitRecord extends Stamped {
  type: LogType.SYSEXIT;
  pid: number;
}
export interface UserDataRecord extends Stamped {
  type: LogType.USERDATA;
  userdata: number;
}
export interface MapInRecord extends Stamped {
  type: LogType.MAP_IN;
  /** -1 for the kernel. */
  pid: number;
  /** Where the mapping puts file offset 0 (its start minus its file offset). */
  start: bigint;
  pathname: string;
  /**
   * tspmc: the mapping itself (perf's MMAP2 len and pgoff), so that an
   * address belongs to the file only inside it. Absent in hwpmc's MAP_IN,
   * the kernel's, and tspmc logs written before it.
   */
  extent?: MapExtent;
}
/** A mapping of file bytes [offset, offset + length) at MAP_IN's start + offset. */
export interface MapExtent {
  offset: bigint;
  length: bigint;
}
export interface MapOutRecord extends Stamped {
  type: LogType.MAP_OUT;
  pid: number;
  start: bigint;
  end: bigint;
}
export interface CallchainRecord extends Stamped {
  type: LogType.CALLCHAIN;
  pid: number;
  tid: number;
  pmcid: number;
  cpu: number;
  /** PMC_CC_F_* bits (the low 16 bits of pl_cpuflags). */
  flags: number;
  /** pcs[0] is the sampled PC, then return addresses, callee to caller. */
  pcs: BigUint64Array;
}
export interface ThrCreateRecord extends Stamped {
  type: LogType.THR_CREATE;
  tid: number;
  pid: number;
  flags: number;
  tdname: string;
}
export interface ThrExitRecord extends Stamped {
  type: LogType.THR_EXIT;
  tid: number;
}
export interface ProcCreateRecord extends Stamped {
  type: LogType.PROC_CREATE;
  pid: number;
  flags: number;
  pcomm: string;
}

export type LogRecord =
  | InitializeRecord
  | CloseLogRecord
  | DropNotifyRecord
  | PmcAllocateRecord
  | PmcAllocateDynRecord
  | PmcAttachRecord
  | PmcDetachRecord
  | ProcCswRecord
  | ProcExecRecord
  | ProcExitRecord
  | ProcForkRecord
  | SysExitRecord
  | UserDataRecord
  | MapInRecord
  | MapOutRecord
  | CallchainRecord
  | ThrCreateRecord
  | ThrExitRecord
  | ProcCreateRecord;
