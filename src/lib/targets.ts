// pmcstat -t: a process id, or a regular expression over process names
// (matched against each process's comm, as pmcstat matches ki_comm).
import { listPids, processName, processState } from '../md/procfs.js';
import { PmcError } from '../pmc-error.js';

export function findTargetProcesses(spec: string, exclude: number[] = [process.pid]): number[] {
  if (/^\d+$/.test(spec)) {
    const pid = Number(spec);
    const state = processState(pid);
    if (state === 'dead' || state === 'zombie') throw new PmcError('ESRCH', `-t ${spec}: no such process`);
    return [pid];
  }
  let re: RegExp;
  try {
    re = new RegExp(spec);
  } catch (e) {
    throw new PmcError('EINVAL', `-t "${spec}": not a process id or a valid regular expression (${(e as Error).message})`);
  }
  const pids = listPids().filter((pid) => !exclude.includes(pid) && re.test(processName(pid) ?? ''));
  if (pids.length === 0) throw new PmcError('ESRCH', `-t "${spec}": no process name matches`);
  return pids;
}
