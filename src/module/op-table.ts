// The module's system call, described once: for every op, the shape of its
// arguments and of its result, as plain data. hwpmc's syscall handler takes
// (op, argument block) and returns an errno; PmcModule.call() is that entry
// point, the in-process client calls it directly and pmcd calls it for its
// socket peers. The schemas also say how each value crosses a socket
// (docs/protocol.md): JSON, with every bigint as a decimal string and every
// file descriptor as SCM_RIGHTS ancillary data.
import * as z from 'zod';
import { PmcError } from '../pmc-error.js';
import { PmcMode, PmcOp, PmcState, RowDisposition } from './pmc-types.js';

const int = z.number().int();
const u32 = int.min(0).max(0xffffffff);
const pmcId = u32;

/** A bigint in process, a decimal string on the wire. */
const bigint = z.codec(z.string().regex(/^-?\d{1,20}$/, 'a decimal integer'), z.bigint(), {
  decode: (s) => BigInt(s),
  encode: (b) => b.toString(),
});

const none = z.strictObject({});
const idOnly = z.strictObject({ id: pmcId });

const classInfo = z.object({
  classId: int,
  name: z.string(),
  caps: int,
  width: int,
  /** Rows of this class (pm_num) and the first row index. */
  num: int,
  firstRow: int,
  available: z.boolean(),
  unavailableReason: z.string().optional(),
});

const cpuInfo = z.object({
  cputype: int,
  ncpu: int,
  npmc: int,
  nclass: int,
  classes: z.array(classInfo),
});

/** One PMC on a row: whose it is and what it counts (never its id, which only its owner may use). */
const rowHolder = z.object({
  ownerPid: int,
  mode: z.enum(PmcMode),
  event: int,
  eventName: z.string(),
  flags: int,
  reloadCount: bigint.optional(),
});

const pmcInfo = z.object({
  name: z.string(),
  classId: int,
  enabled: z.boolean(),
  rowDisposition: z.enum(RowDisposition),
  /** -1 when no PMC holds the row on this CPU. */
  ownerPid: int,
  mode: z.enum(PmcMode).optional(),
  event: int.optional(),
  eventName: z.string().optional(),
  flags: int.optional(),
  reloadCount: bigint.optional(),
  /** tspmc: every PMC on the row on this CPU, of every owner (the fields above are the first one's). */
  holders: z.array(rowHolder),
});

const mdConfig = z.strictObject({ config: bigint, config1: bigint.optional(), config2: bigint.optional() });

const allocateRequest = z.strictObject({
  classId: int,
  event: int,
  mode: z.enum(PmcMode),
  /** PMC_CPU_ANY for virtual PMCs; a CPU for system PMCs. */
  cpu: int,
  caps: int,
  flags: int,
  /** Initial count (counting) or reload count (sampling). */
  count: bigint.optional(),
  /** Sample by frequency (count = samples per second) rather than reload count. */
  frequency: z.boolean().optional(),
  /** Machine-dependent event configuration (hwpmc's pm_md): PMU term specs carry it. */
  md: mdConfig.optional(),
});

const driverStats = z.object({
  intr_ignored: int,
  intr_processed: int,
  intr_bufferfull: int,
  syscalls: int,
  syscall_errors: int,
  buffer_requests: int,
  buffer_requests_failed: int,
  log_sweeps: int,
  log_records_lost: int,
  samples_lost: int,
});

const ownerStats = z.object({
  pid: int,
  uid: int,
  /** pmcd connection number; absent for an in-process owner. */
  session: int.optional(),
  /** PMCs by mode, and how many of them run. */
  pmcs: z.object({ SS: int, SC: int, TS: int, TC: int }),
  running: int,
  ops: int,
  opErrors: int,
  /** The owner's log: bytes written, and buffer requests that failed (records dropped). */
  log: z.object({ written: int, bufferRequestsFailed: int }).optional(),
});

const resolvedEvent = z.object({
  classId: int,
  className: z.string(),
  event: int,
  eventName: z.string(),
  md: mdConfig.optional(),
  /** The capabilities an unqualified specifier gets for this caller: 0 (user and kernel) or USER alone. */
  caps: int,
  /** Why a pmcd owner gets user mode only (said to the user), when it does. */
  userOnly: z.string().optional(),
});

interface OpSpec {
  args: z.ZodType;
  result: z.ZodType;
  /** The argument that is a file descriptor: sent as SCM_RIGHTS, not as a number. */
  fd?: string;
}

/** Every op: what it takes and what it gives. */
export const OP_TABLE = {
  /** CONFIGURELOG: log to this file descriptor; -1 ends the log (as hwpmc's pm_logfd = -1). */
  [PmcOp.CONFIGURELOG]: { args: z.strictObject({ fd: int.min(-1) }), result: z.void(), fd: 'fd' },
  /** FLUSHLOG; tspmc returns the bytes the log has written to its descriptor so far. */
  [PmcOp.FLUSHLOG]: { args: none, result: z.strictObject({ written: int }) },
  [PmcOp.GETCPUINFO]: { args: none, result: cpuInfo },
  [PmcOp.GETDRIVERSTATS]: { args: none, result: driverStats },
  [PmcOp.GETMODULEVERSION]: { args: z.strictObject({ version: u32 }), result: u32 },
  [PmcOp.GETPMCINFO]: { args: z.strictObject({ cpu: int }), result: z.array(pmcInfo) },
  [PmcOp.PMCADMIN]: { args: z.strictObject({ cpu: int, row: int, state: z.literal([PmcState.DISABLED, PmcState.FREE]) }), result: z.void() },
  [PmcOp.PMCALLOCATE]: { args: allocateRequest, result: pmcId },
  [PmcOp.PMCATTACH]: { args: z.strictObject({ id: pmcId, pid: int }), result: z.void() },
  [PmcOp.PMCDETACH]: { args: z.strictObject({ id: pmcId, pid: int }), result: z.void() },
  [PmcOp.PMCGETMSR]: { args: idOnly, result: int },
  [PmcOp.PMCRELEASE]: { args: idOnly, result: z.void() },
  /** PMCRW: read (PMC_F_OLDVALUE) and/or write (PMC_F_NEWVALUE); the old value when asked. */
  [PmcOp.PMCRW]: { args: z.strictObject({ id: pmcId, flags: int, value: bigint.optional() }), result: bigint.optional() },
  [PmcOp.PMCSETCOUNT]: { args: z.strictObject({ id: pmcId, count: bigint }), result: z.void() },
  [PmcOp.PMCSTART]: { args: idOnly, result: z.void() },
  [PmcOp.PMCSTOP]: { args: idOnly, result: z.void() },
  [PmcOp.WRITELOG]: { args: z.strictObject({ userdata: int }), result: z.void() },
  [PmcOp.CLOSELOG]: { args: none, result: z.void() },
  [PmcOp.GETDYNEVENTINFO]: { args: z.strictObject({ classId: int }), result: z.array(z.object({ name: z.string(), code: int })) },
  /** tspmc: an event specifier's class, event and MD configuration, resolved where the machine is. */
  [PmcOp.RESOLVEEVENT]: { args: z.strictObject({ spec: z.string().max(4096) }), result: resolvedEvent },
  /** tspmc: every owner of the module with its statistics (pmccontrol -s). */
  [PmcOp.GETOWNERSTATS]: { args: none, result: z.array(ownerStats) },
  /** tspmc: the values of several PMCs of the caller, in the order of `ids` (PMCRW reads, one op). */
  [PmcOp.PMCREADMANY]: { args: z.strictObject({ ids: z.array(pmcId).max(4096) }), result: z.array(bigint) },
} as const satisfies Record<PmcOp, OpSpec>;

export type OpArgs<K extends PmcOp> = z.output<(typeof OP_TABLE)[K]['args']>;
export type OpResult<K extends PmcOp> = z.output<(typeof OP_TABLE)[K]['result']>;

export type ClassInfo = z.output<typeof classInfo>;
export type CpuInfo = z.output<typeof cpuInfo>;
export type PmcInfo = z.output<typeof pmcInfo>;
export type AllocateRequest = z.output<typeof allocateRequest>;
export type ResolvedEventInfo = z.output<typeof resolvedEvent>;
export type OwnerStats = z.output<typeof ownerStats>;
export type RowHolder = z.output<typeof rowHolder>;

/** Arguments from a socket, checked against the op's schema; EINVAL naming the bad field otherwise. */
export function decodeArgs<K extends PmcOp>(op: K, wire: unknown): OpArgs<K> {
  const r = z.safeDecode(OP_TABLE[op].args as z.ZodType, wire);
  if (!r.success) throw new PmcError('EINVAL', `${PmcOp[op]} arguments: ${describeIssues(r.error)}`);
  return r.data as OpArgs<K>;
}

export function decodeResult<K extends PmcOp>(op: K, wire: unknown): OpResult<K> {
  const r = z.safeDecode(OP_TABLE[op].result as z.ZodType, wire);
  if (!r.success) throw new PmcError('EPROTO', `${PmcOp[op]} result: ${describeIssues(r.error)}`);
  return r.data as OpResult<K>;
}

/** The argument of `op` that is a file descriptor, if any. */
export function fdArgument(op: PmcOp): string | undefined {
  return (OP_TABLE[op] as OpSpec | undefined)?.fd;
}

function describeIssues(e: z.ZodError): string {
  return e.issues
    .slice(0, 3)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : 'the whole'}: ${i.message}`)
    .join('; ');
}
