// pmcstat -R's text form of log records: a tag padded to 9 columns, a space,
// then the fields, formatted as pmcstat's printf formats would print them
// (%p as 0x<hex>, %jd as a signed 64-bit number).
import { PMC_CC_F_USERSPACE, LogType, type LogRecord } from './records.js';

/** Names the log does not carry; pmcstat gets them from libpmc. */
export interface RecordNames {
  /** pmc_name_of_cputype(); the number in decimal when absent or unknown. */
  cpuType?(cputype: number): string | undefined;
  /** The event name of a PMCALLOCATE event code; 0x<hex> when absent or unknown. */
  event?(event: number): string | undefined;
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;
const ptr = (v: bigint): string => `0x${v.toString(16)}`;
const signed64 = (v: bigint): string => BigInt.asIntN(64, v).toString();
const quoted = (s: string): string => `"${s}"`;

/** PMCSTAT_PRINT_ENTRY: "%-9s" tag, " ", fields (a record without fields keeps the trailing space). */
function entry(tag: string, fields: string): string {
  return `${tag.padEnd(9)} ${fields}`;
}

/**
 * One record as pmcstat -R prints it, without the final newline. A
 * CALLCHAIN is several lines: the record, then one `...` line per pc.
 */
export function formatRecord(rec: LogRecord, names: RecordNames = {}): string {
  switch (rec.type) {
    case LogType.CALLCHAIN: {
      const mode = rec.flags & PMC_CC_F_USERSPACE ? 'u' : 's';
      const lines = [entry('callchain', `${rec.pid} ${hex(rec.pmcid)} ${rec.cpu} ${rec.pcs.length} ${mode}`)];
      for (const pc of rec.pcs) lines.push(entry('...', ptr(pc)));
      return lines.join('\n');
    }
    case LogType.CLOSELOG:
      return entry('closelog', '');
    case LogType.DROPNOTIFY:
      return entry('drop', `${rec.dropped} ${rec.lost}${rec.sideband ? ` ${Object.entries(rec.sideband).map(([k, n]) => `${k} ${n}`).join(' ')}` : ''}`);
    case LogType.INITIALIZE:
      return entry('initlog', `${hex(rec.version)} ${quoted(names.cpuType?.(rec.cpuType) ?? String(rec.cpuType))}`);
    case LogType.MAP_IN:
      return entry('map-in', `${rec.pid} ${ptr(rec.start)} ${quoted(rec.pathname)}${rec.extent ? ` offset ${ptr(rec.extent.offset)} length ${ptr(rec.extent.length)}` : ''}`);
    case LogType.MAP_OUT:
      return entry('map-out', `${rec.pid} ${ptr(rec.start)} ${ptr(rec.end)}`);
    case LogType.PMCALLOCATE:
      return entry('allocate', `${hex(rec.pmcid)} ${quoted(names.event?.(rec.event) ?? hex(rec.event))} ${hex(rec.flags)}`);
    case LogType.PMCALLOCATEDYN:
      return entry('allocatedyn', `${hex(rec.pmcid)} ${quoted(rec.eventName)} ${hex(rec.flags)}`);
    case LogType.PMCATTACH:
      return entry('attach', `${hex(rec.pmcid)} ${rec.pid} ${quoted(rec.pathname)}`);
    case LogType.PMCDETACH:
      return entry('detach', `${hex(rec.pmcid)} ${rec.pid}`);
    case LogType.PROCCSW:
      return entry('cswval', `${hex(rec.pmcid)} ${rec.pid} ${signed64(rec.value)}`);
    case LogType.PROCEXEC:
      return entry('exec', `${hex(rec.pmcid)} ${rec.pid} ${ptr(rec.base)} ${ptr(rec.dyn)} ${quoted(rec.pathname)}`);
    case LogType.PROCEXIT:
      return entry('exitval', `${hex(rec.pmcid)} ${rec.pid} ${signed64(rec.value)}`);
    case LogType.PROCFORK:
      return entry('fork', `${rec.oldpid} ${rec.newpid}`);
    case LogType.USERDATA:
      return entry('userdata', hex(rec.userdata));
    case LogType.SYSEXIT:
      return entry('exit', `${rec.pid}`);
    // pmcstat prints "unknown event" for the V6 thread and process records; tspmc names them.
    case LogType.THR_CREATE:
      return entry('thr-create', `${rec.tid} ${rec.pid} ${hex(rec.flags)} ${quoted(rec.tdname)}`);
    case LogType.THR_EXIT:
      return entry('thr-exit', `${rec.tid}`);
    case LogType.PROC_CREATE:
      return entry('proc-create', `${rec.pid} ${hex(rec.flags)} ${quoted(rec.pcomm)}`);
  }
  return `unknown event (type ${(rec as { type: number }).type}).`;
}
