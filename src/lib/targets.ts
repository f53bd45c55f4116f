// pmcstat -t: a process id, or a regular expression over process names
// (matched against each process's comm, as pmcstat matches ki_comm); and
// attaching to them as pmcstat does, skipping targets that vanish.
import { listPids, processExited, processName } from '../os/procfs.js';
import { PmcError } from '../pmc-error.js';
import type { Libpmc } from './libpmc.js';
import type { PmcId } from '../module/pmc-types.js';

/** Live processes named by `spec`; exited ones (zombies included) are not there to attach to. */
export function findTargetProcesses(spec: string, exclude: number[] = [process.pid]): number[] {
  if (/^\d+$/.test(spec)) {
    const pid = Number(spec);
    if (processExited(pid)) throw new PmcError('ESRCH', `-t ${spec}: no such process`);
    return [pid];
  }
  let re: RegExp;
  try {
    re = new RegExp(spec);
  } catch (e) {
    throw new PmcError('EINVAL', `-t "${spec}": not a process id or a valid regular expression (${(e as Error).message})`);
  }
  const named = listPids().filter((pid) => !exclude.includes(pid) && re.test(processName(pid) ?? ''));
  if (named.length === 0) throw new PmcError('ESRCH', `-t "${spec}": no process name matches`);
  const pids = named.filter((pid) => !processExited(pid));
  if (pids.length === 0) throw new PmcError('ESRCH', `-t "${spec}": every process whose name matches has exited`);
  return pids;
}

/**
 * Attaches every PMC to every target (pmcstat_attach_pmcs): a target that
 * is gone by now (ESRCH) is skipped; it is an error only when a PMC is
 * attached to nothing. Returns the pids each PMC was attached to.
 */
export async function attachTargets(lib: Libpmc, ids: readonly PmcId[], pids: readonly number[]): Promise<number[][]> {
  const attached: number[][] = [];
  for (const id of ids) {
    const done: number[] = [];
    for (const pid of pids) {
      try {
        await lib.attach(id, pid);
        done.push(pid);
      } catch (e) {
        if (!(e instanceof PmcError && e.code === 'ESRCH')) throw e;
      }
    }
    if (done.length === 0 && pids.length > 0) throw new PmcError('ESRCH', `no process was attached to: ${pids.join(', ')} ${pids.length === 1 ? 'has' : 'have'} exited`);
    attached.push(done);
  }
  return attached;
}
