// struct perf_event_attr, encoded field by field (include/uapi/linux/perf_event.h).
// We send PERF_ATTR_SIZE_VER7 (128 bytes); every kernel since 6.3 accepts it and
// older ones answer E2BIG, which the caller reports.

const PERF_ATTR_SIZE = 128;

export enum PerfType {
  HARDWARE = 0,
  SOFTWARE = 1,
  TRACEPOINT = 2,
  HW_CACHE = 3,
  RAW = 4,
  BREAKPOINT = 5,
}

/** The software events' configs (enum perf_sw_ids) that md opens itself. */
export const PerfSoftware = {
  CPU_CLOCK: 0n,
  TASK_CLOCK: 1n,
  CONTEXT_SWITCHES: 3n,
  DUMMY: 9n,
} as const;

export const PerfSample = {
  IP: 1n << 0n,
  TID: 1n << 1n,
  TIME: 1n << 2n,
  ADDR: 1n << 3n,
  READ: 1n << 4n,
  CALLCHAIN: 1n << 5n,
  ID: 1n << 6n,
  CPU: 1n << 7n,
  PERIOD: 1n << 8n,
  STREAM_ID: 1n << 9n,
  RAW: 1n << 10n,
  IDENTIFIER: 1n << 16n,
} as const;

export const PerfFormat = {
  TOTAL_TIME_ENABLED: 1n << 0n,
  TOTAL_TIME_RUNNING: 1n << 1n,
  ID: 1n << 2n,
  GROUP: 1n << 3n,
  LOST: 1n << 4n,
} as const;

/** Bit positions of the flag word at offset 40. */
const FLAG_BITS = {
  disabled: 0,
  inherit: 1,
  pinned: 2,
  exclusive: 3,
  excludeUser: 4,
  excludeKernel: 5,
  excludeHv: 6,
  excludeIdle: 7,
  mmap: 8,
  comm: 9,
  freq: 10,
  inheritStat: 11,
  enableOnExec: 12,
  task: 13,
  watermark: 14,
  mmapData: 17,
  sampleIdAll: 18,
  excludeCallchainKernel: 21,
  excludeCallchainUser: 22,
  mmap2: 23,
  commExec: 24,
  useClockid: 25,
  contextSwitch: 26,
  inheritThread: 35,
  removeOnExec: 36,
} as const;

export type PerfAttrFlag = keyof typeof FLAG_BITS;

export interface PerfEventAttr {
  type: number;
  config: bigint;
  config1?: bigint;
  config2?: bigint;
  /** sample_period, or sample_freq when flags.freq is set. */
  samplePeriod?: bigint;
  sampleType?: bigint;
  readFormat?: bigint;
  flags?: Partial<Record<PerfAttrFlag, boolean>>;
  wakeupEvents?: number;
  clockid?: number;
  sampleMaxStack?: number;
}

export function encodeAttr(attr: PerfEventAttr): Buffer {
  const b = Buffer.alloc(PERF_ATTR_SIZE);
  b.writeUInt32LE(attr.type >>> 0, 0);
  b.writeUInt32LE(PERF_ATTR_SIZE, 4);
  b.writeBigUInt64LE(attr.config, 8);
  b.writeBigUInt64LE(attr.samplePeriod ?? 0n, 16);
  b.writeBigUInt64LE(attr.sampleType ?? 0n, 24);
  b.writeBigUInt64LE(attr.readFormat ?? 0n, 32);
  let flags = 0n;
  for (const [name, on] of Object.entries(attr.flags ?? {})) {
    if (on) flags |= 1n << BigInt(FLAG_BITS[name as PerfAttrFlag]);
  }
  b.writeBigUInt64LE(flags, 40);
  b.writeUInt32LE(attr.wakeupEvents ?? 0, 48);
  b.writeBigUInt64LE(attr.config1 ?? 0n, 56);
  b.writeBigUInt64LE(attr.config2 ?? 0n, 64);
  b.writeInt32LE(attr.clockid ?? 0, 92);
  b.writeUInt16LE(attr.sampleMaxStack ?? 0, 108);
  return b;
}
