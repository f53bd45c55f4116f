// The vocabulary of sys/sys/pmc.h: modes, states, row dispositions,
// capabilities, flags and operations, with the values FreeBSD gives them so
// that ids, logs and tool output line up with pmcstat's.
import { PMC_F_FREQUENCY } from '../pmc-common.js';

/** PMC_VERSION: major 0x0A (the v10 id layout), minor and patch ours. */
export const PMC_VERSION = 0x0a000001;
export const PMC_VERSION_MAJOR_MASK = 0xff000000;

export enum PmcMode {
  SS = 0, // system-wide sampling
  SC = 1, // system-wide counting
  TS = 2, // process-virtual sampling
  TC = 3, // process-virtual counting
}

export const isSystemMode = (m: PmcMode): boolean => m === PmcMode.SS || m === PmcMode.SC;
export const isVirtualMode = (m: PmcMode): boolean => m === PmcMode.TS || m === PmcMode.TC;
export const isSamplingMode = (m: PmcMode): boolean => m === PmcMode.SS || m === PmcMode.TS;
export enum PmcState {
  DISABLED = 0,
  FREE = 1,
  ALLOCATED = 2,
  STOPPED = 3,
  RUNNING = 4,
  DELETED = 5,
}

export enum RowDisposition {
  STANDALONE = 0,
  FREE = 1,
  THREAD = 2,
  UNKNOWN = 3,
}

/** The capability bits are shared with md (classes declare them): see src/pmc-common.ts. */
export { PmcCaps, PmcClass } from '../pmc-common.js';

export const PmcFlags = {
  DESCENDANTS: 0x00000002,
  LOG_PROCCSW: 0x00000004,
  LOG_PROCEXIT: 0x00000008,
  NEWVALUE: 0x00000010,
  OLDVALUE: 0x00000020,
  CALLCHAIN: 0x00000080,
  USERCALLCHAIN: 0x00000100,
  EV_PMU: 0x00000200,
  /** Logged only (see pmc-common.ts): the rate is samples per second. */
  FREQUENCY: PMC_F_FREQUENCY,
  // internal
  ATTACHED_TO_OWNER: 0x00010000,
  NEEDS_LOGFILE: 0x00020000,
  ATTACH_DONE: 0x00040000,
} as const;

/** Flags a caller may pass to PMCALLOCATE. */
export const ALLOCATE_FLAGS_ALLOWED =
  PmcFlags.DESCENDANTS | PmcFlags.LOG_PROCCSW | PmcFlags.LOG_PROCEXIT | PmcFlags.CALLCHAIN | PmcFlags.USERCALLCHAIN;


export enum PmcOp {
  CONFIGURELOG = 0,
  FLUSHLOG = 1,
  GETCPUINFO = 2,
  GETDRIVERSTATS = 3,
  GETMODULEVERSION = 4,
  GETPMCINFO = 5,
  PMCADMIN = 6,
  PMCALLOCATE = 7,
  PMCATTACH = 8,
  PMCDETACH = 9,
  PMCGETMSR = 10,
  PMCRELEASE = 11,
  PMCRW = 12,
  PMCSETCOUNT = 13,
  PMCSTART = 14,
  PMCSTOP = 15,
  WRITELOG = 16,
  CLOSELOG = 17,
  GETDYNEVENTINFO = 18,
  /** tspmc: resolve an event specifier where the machine is (pmcd's, for its peers). */
  RESOLVEEVENT = 19,
  /** tspmc: per-owner statistics (pmccontrol -s). */
  GETOWNERSTATS = 20,
  /** tspmc: PMCRW's read of several PMCs at once, perf groups read once for all (hwpmc has no such op). */
  PMCREADMANY = 21,
}

/** pmc_cputype: every Linux machine is described as GENERIC. */
export const PMC_CPU_GENERIC = 0x400;

export const PMC_CPU_ANY = -1;
export const PMC_ID_INVALID = 0xffffffff;

/** Default sampling reload count (pmcstat -n). */
export const DEFAULT_SAMPLE_COUNT = 65536;

export type PmcId = number;

// PMC_ID_MAKE_ID of the v10 headers: CPU[31:20] MODE[19:16] CLASS[15:8] ROW[7:0].
export function makePmcId(cpu: number, mode: PmcMode, cls: number, row: number): PmcId {
  return (((cpu & 0xfff) << 20) | ((mode & 0xf) << 16) | ((cls & 0xff) << 8) | (row & 0xff)) >>> 0;
}
export const pmcIdToCpu = (id: PmcId): number => (id >>> 20) & 0xfff;
export const pmcIdToMode = (id: PmcId): PmcMode => ((id >>> 16) & 0xf) as PmcMode;
export const pmcIdToClass = (id: PmcId): number => (id >>> 8) & 0xff;
export const pmcIdToRow = (id: PmcId): number => id & 0xff;

export type ModeName = keyof typeof PmcMode;
export const modeName = (m: PmcMode): ModeName => PmcMode[m] as ModeName;
