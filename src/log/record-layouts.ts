// The binary layout of every owner-log record, declared once, as
// sys/sys/pmclog.h declares each struct once: after FreeBSD's 16-byte header
// (u32 header word, u32 spare, u64 timestamp; little-endian), its fields in
// order, then an optional variable-length tail. codec.ts compiles this table
// into each type's encoder, decoder, sizes and validity rules, and the word
// offsets of the fast paths; docs/log-format.md documents the same layouts.
// A new record type is its typed record in records.ts and one entry here.
import { LogType, type LogRecord } from './records.js';

export const LOG_HEADER_SIZE = 16;
/** The header's length field is 16 bits and lengths are multiples of 4. */
export const MAX_RECORD_LENGTH = 0xfffc;
/** PMC_CPUID_LEN and PMC_NAME_MAX. */
const CPUID_LEN = 64;
const EVENT_NAME_LEN = 64;
/** MAXCOMLEN + 1: thread and process name arrays. */
const COMM_LEN = 20;

type RecordOf<T extends LogType> = Extract<LogRecord, { type: T }>;
/** The typed record's properties a layout may name (the compiler checks every name). */
export type FieldName<T extends LogType> = Exclude<keyof RecordOf<T>, 'type' | 'ts'> & string;

export type Field<N extends string> =
  /** u32 (also pid_t and lwpid_t, read back signed with `i32`). */
  | { kind: 'u32' | 'i32'; name: N }
  /** u64 as a bigint. */
  | { kind: 'u64'; name: N }
  /** u64 and i64 as numbers (clocks and counts that stay below 2^53). */
  | { kind: 'u64n' | 'i64n'; name: N }
  /** A fixed char array, NUL-terminated within `size` bytes; `label` names it in errors. */
  | { kind: 'chars'; name: N; size: number; label: string }
  /** pl_cpuflags: the record's `cpu` in the high 16 bits, its `flags` in the low 16. */
  | { kind: 'cpuflags' }
  /** 4 bytes written as 0 and ignored. */
  | { kind: 'pad' }
  /** A u32 that says whether the optional trailer `name` ends the record: 1 if so, 0 (hwpmc's pad) if not. */
  | { kind: 'present'; name: N };

export type Tail<N extends string> =
  /** A NUL-terminated string up to the record's end, zero-padded to a multiple of 4. */
  | { kind: 'string'; name: N; label: string }
  /** u64 pcs up to the record's end, 1 to PMC_CALLCHAIN_DEPTH_MAX of them. */
  | { kind: 'pcs'; name: N };

export interface Layout<T extends LogType> {
  fields: readonly Field<FieldName<T>>[];
  tail?: Tail<FieldName<T>>;
  /** DROPNOTIFY's optional last group: written only when one of its counts is not 0, read when present. */
  extension?: { name: FieldName<T>; fields: readonly Field<string>[] };
  /**
   * MAP_IN's optional last group: the record's last bytes, after the tail's
   * string and its padding, when the layout's `present` field says so.
   * Readers that do not know it (hwpmc's, older tspmc's) read the string up
   * to its NUL and skip the rest.
   */
  trailer?: { name: FieldName<T>; fields: readonly Field<string>[] };
  /** Shorter forms also accepted when read: their missing fields read as 0. */
  shortForms?: readonly number[];
}

const u32 = <N extends string>(name: N) => ({ kind: 'u32', name }) as const;
const i32 = <N extends string>(name: N) => ({ kind: 'i32', name }) as const;
const u64 = <N extends string>(name: N) => ({ kind: 'u64', name }) as const;
const u64n = <N extends string>(name: N) => ({ kind: 'u64n', name }) as const;
const i64n = <N extends string>(name: N) => ({ kind: 'i64n', name }) as const;
const chars = <N extends string>(name: N, size: number, label: string) => ({ kind: 'chars', name, size, label }) as const;
const str = <N extends string>(name: N, label: string) => ({ kind: 'string', name, label }) as const;
const pad = { kind: 'pad' } as const;
const present = <N extends string>(name: N) => ({ kind: 'present', name }) as const;
const cpuflags = { kind: 'cpuflags' } as const;

/** Every record type: the one declaration of its layout after the header. */
export const LAYOUTS: { [T in LogType]: Layout<T> } = {
  [LogType.CLOSELOG]: { fields: [] },
  [LogType.DROPNOTIFY]: {
    fields: [u32('dropped'), u32('lost')],
    extension: { name: 'sideband', fields: [u32('exec'), u32('fork'), u32('thread'), u32('exit'), u32('map'), u32('csw')] },
    shortForms: [LOG_HEADER_SIZE],
  },
  [LogType.INITIALIZE]: {
    fields: [u32('version'), u32('cpuType'), u64n('tscFreq'), i64n('wallSec'), i64n('wallNsec'), chars('cpuid', CPUID_LEN, 'cpuid')],
  },
  [LogType.PMCALLOCATE]: { fields: [u32('pmcid'), u32('event'), u32('flags'), pad, u64('rate')] },
  [LogType.PMCALLOCATEDYN]: {
    fields: [u32('pmcid'), u32('event'), u32('flags'), pad, u64('rate'), chars('eventName', EVENT_NAME_LEN, 'event name')],
  },
  [LogType.PMCATTACH]: { fields: [u32('pmcid'), i32('pid')], tail: str('pathname', 'pathname') },
  [LogType.PMCDETACH]: { fields: [u32('pmcid'), i32('pid')] },
  [LogType.PROCCSW]: { fields: [u64('value'), u32('pmcid'), i32('pid'), i32('tid'), pad] },
  [LogType.PROCEXEC]: { fields: [i32('pid'), u32('pmcid'), u64('base'), u64('dyn')], tail: str('pathname', 'pathname') },
  [LogType.PROCEXIT]: { fields: [u32('pmcid'), i32('pid'), u64('value')] },
  [LogType.PROCFORK]: { fields: [i32('oldpid'), i32('newpid')] },
  [LogType.SYSEXIT]: { fields: [i32('pid'), pad] },
  [LogType.USERDATA]: { fields: [u32('userdata'), pad] },
  [LogType.MAP_IN]: {
    fields: [i32('pid'), present('extent'), u64('start')],
    tail: str('pathname', 'pathname'),
    trailer: { name: 'extent', fields: [u64('offset'), u64('length')] },
  },
  [LogType.MAP_OUT]: { fields: [i32('pid'), pad, u64('start'), u64('end')] },
  [LogType.CALLCHAIN]: { fields: [i32('pid'), i32('tid'), u32('pmcid'), cpuflags], tail: { kind: 'pcs', name: 'pcs' } },
  [LogType.THR_CREATE]: { fields: [i32('tid'), i32('pid'), u32('flags'), pad, chars('tdname', COMM_LEN, 'thread name')] },
  [LogType.THR_EXIT]: { fields: [i32('tid'), pad] },
  [LogType.PROC_CREATE]: { fields: [i32('pid'), u32('flags'), chars('pcomm', COMM_LEN, 'process name')] },
};
