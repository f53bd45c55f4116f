// The mappings a log needs before the first sample: what each target has
// mapped at attach (pmc_log_process_mappings), the kernel and its modules
// (pmc_log_kernel_mappings), and for system samplers every process
// (pmc_log_all_process_mappings). Later mappings come from the kernel's
// mmap side-band.
import { executableMappings, executablePath, kernelModules, kernelTextStart, listPids, processName } from '../os/procfs.js';
import { LogType } from '../log/records.js';
import { now } from '../pmc-common.js';
import type { OwnerLog } from './owner-log.js';
import { PMC_ID_INVALID } from './pmc-types.js';

const KERNEL_PATHNAME = '[kernel.kallsyms]';

export function logProcessMappings(log: OwnerLog, pid: number): void {
  const ts = now();
  for (const { start, offset, length, path } of executableMappings(pid)) {
    log.mapIn({ type: LogType.MAP_IN, ts, pid, start, pathname: path, extent: { offset, length } });
  }
}

export function logKernelMappings(log: OwnerLog): void {
  if (log.kernelMapped) return;
  const ts = now();
  log.mapIn({ type: LogType.MAP_IN, ts, pid: -1, start: kernelTextStart(), pathname: KERNEL_PATHNAME });
  for (const m of kernelModules()) log.mapIn({ type: LogType.MAP_IN, ts, pid: -1, start: m.start, pathname: `[${m.name}]` });
  log.kernelMapped = true;
}

/** Every process: its name (PROC_CREATE) and its images. */
export function logAllProcessMappings(log: OwnerLog): void {
  if (log.allProcessesMapped) return;
  const ts = now();
  for (const pid of listPids()) {
    const name = processName(pid);
    if (name === undefined) continue;
    log.write({ type: LogType.PROC_CREATE, ts, pid, flags: 0, pcomm: name });
    const exe = executablePath(pid);
    if (exe) log.write({ type: LogType.PROCEXEC, ts, pid, pmcid: PMC_ID_INVALID, base: 0n, dyn: 0n, pathname: exe });
    logProcessMappings(log, pid);
  }
  log.allProcessesMapped = true;
}
