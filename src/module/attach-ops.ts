// PMCATTACH and PMCDETACH (pmc_attach_process, pmc_detach_process): a
// process-mode PMC onto a target process, and with PMC_F_DESCENDANTS onto
// every descendant alive now; the process table keeps one PMC per row per
// target. A target is held (a pidfd) before its counters open, so that it
// is this process whose threads are counted, not one that reused its pid.
import type { Inheritance } from '../md/class-dep.js';
import { executablePath, listDescendants, processExited, readCredentials } from '../os/procfs.js';
import { LogType } from '../log/records.js';
import { now } from '../pmc-common.js';
import { PmcError } from '../pmc-error.js';
import { type Caller, canDebug } from './caller.js';
import { countOp } from './driver-stats.js';
import { logProcessMappings } from './mappings.js';
import type { ModuleTables } from './module-tables.js';
import { finalCount, type Pmc, type PmcTarget } from './pmc.js';
import { type PmcId, PmcFlags, PmcState } from './pmc-types.js';
import type { SampleProcessor } from './sample-processor.js';
import { TargetProcess } from './target-process.js';

export class AttachOps {
  constructor(
    private readonly m: ModuleTables,
    private readonly samples: SampleProcessor,
  ) {}

  /** PMCATTACH: the caller must be allowed to debug the target (an owner may always attach to itself). */
  attach(caller: Caller, id: PmcId, pid: number): void {
    countOp(this.m.stats, () => {
      const target = checkPid(caller, pid);
      const pmc = this.m.findPmc(caller, id);
      if (pmc.isSystem) throw new PmcError('EINVAL', 'a system-mode PMC cannot be attached to a process');
      if (pmc.state === PmcState.RUNNING) throw new PmcError('EBUSY', 'a running PMC cannot be attached; stop it first');
      if (pmc.state !== PmcState.ALLOCATED && pmc.state !== PmcState.STOPPED) throw new PmcError('EINVAL', `PMC is ${PmcState[pmc.state]}`);
      checkTargetAlive(target);
      const creds = readCredentials(target);
      if (!creds) throw new PmcError('ESRCH', `process ${target} does not exist`);
      if (target !== caller.pid && !canDebug(caller.creds, creds)) {
        throw new PmcError('EPERM', `process ${caller.pid} (uid ${caller.creds.euid}) may not debug process ${target} (uid ${creds.euid})`);
      }
      this.attachProcess(pmc, target);
    });
  }

  /** PMCDETACH. */
  detach(caller: Caller, id: PmcId, pid: number): void {
    countOp(this.m.stats, () => {
      const target = checkPid(caller, pid);
      const pmc = this.m.findPmc(caller, id);
      checkTargetAlive(target);
      this.detachProcess(pmc, target);
    });
  }

  /** pmc_attach_process(): the target, and with PMC_F_DESCENDANTS every descendant alive now. */
  attachProcess(pmc: Pmc, pid: number): void {
    const descendants = (pmc.flags & PmcFlags.DESCENDANTS) !== 0;
    const tree = descendants ? [pid, ...listDescendants(pid)] : [pid];
    const done: number[] = [];
    try {
      for (const p of tree) {
        try {
          this.attachOneProcess(pmc, p, descendants ? 'descendants' : 'threads');
        } catch (e) {
          // A descendant that exits while we walk the tree is no error; the target itself is.
          if (p !== pid && e instanceof PmcError && e.code === 'ESRCH') continue;
          throw e;
        }
        done.push(p);
      }
    } catch (e) {
      for (const p of done) this.detachOneProcess(pmc, p, false);
      throw e;
    }
  }

  private attachOneProcess(pmc: Pmc, pid: number, inheritance: Inheritance): void {
    const processes = this.m.processes;
    let tp = processes.get(pid);
    if (tp?.pmcs.get(pmc.row) === pmc) throw new PmcError('EEXIST', `PMC is already attached to process ${pid}`);
    if (tp?.pmcs.has(pmc.row)) throw new PmcError('EBUSY', `process ${pid} already has a PMC on row ${pmc.row}`);
    const fresh = tp === undefined;
    tp ??= TargetProcess.open(pid);
    let hw;
    try {
      // The owner is the group scope: its counting PMCs on a thread may be read together (PMCREADMANY).
      // A group costs a leader per thread: only worth it when another of its PMCs may join.
      hw = pmc.cls.openProcess(pmc.request, pid, inheritance, mayGroup(pmc) ? pmc.owner : undefined);
    } catch (e) {
      if (fresh) tp.close();
      throw e;
    }
    if (fresh) processes.set(pid, tp);
    tp.pmcs.set(pmc.row, pmc);
    pmc.targets.set(pid, { process: tp, hw, baseline: 0n, exited: false, creds: readCredentials(pid) });
    if (pid === pmc.owner.pid) pmc.flags |= PmcFlags.ATTACHED_TO_OWNER;
    if (pmc.isSampling && !(pmc.flags & PmcFlags.ATTACHED_TO_OWNER)) pmc.flags |= PmcFlags.NEEDS_LOGFILE;
    pmc.flags |= PmcFlags.ATTACH_DONE;
    pmc.toldTargetsGone = false;
    const log = pmc.owner.log;
    if (log) {
      log.write({ type: LogType.PMCATTACH, ts: now(), pmcid: pmc.id, pid, pathname: executablePath(pid) ?? '' });
      if (pmc.isSampling) logProcessMappings(log, pid);
    }
  }

  /** pmc_detach_process(): the target and, with PMC_F_DESCENDANTS, its attached descendants. */
  private detachProcess(pmc: Pmc, pid: number): void {
    if (!pmc.targets.has(pid)) throw new PmcError(this.m.processes.has(pid) ? 'EINVAL' : 'ESRCH', `PMC is not attached to process ${pid}`);
    const tree = pmc.flags & PmcFlags.DESCENDANTS ? [pid, ...listDescendants(pid)] : [pid];
    for (const p of tree) if (pmc.targets.has(p)) this.detachOneProcess(pmc, p, true);
  }

  /** pmc_detach_one_process(): fold the target's count into the PMC, close its counters, unlink it; `notify` tells the owner when it was the last. */
  detachOneProcess(pmc: Pmc, pid: number, notify: boolean): void {
    const t = pmc.targets.get(pid);
    if (!t) return;
    try {
      pmc.savedValue += finalCount(t);
    } catch (e) {
      pmc.lostCount ??= e instanceof PmcError ? e : new PmcError('EIO', String(e));
    }
    if (pmc.state === PmcState.RUNNING && (pmc.isSampling || pmc.request.contextSwitchValues)) this.samples.drainPmc(pmc, true);
    t.hw.close();
    pmc.owner.log?.write({ type: LogType.PMCDETACH, ts: now(), pmcid: pmc.id, pid });
    pmc.targets.delete(pid);
    this.unlinkTarget(pmc, t);
    if (pid === pmc.owner.pid) pmc.flags &= ~PmcFlags.ATTACHED_TO_OWNER;
    if (notify && pmc.targets.size === 0) pmc.owner.signal({ signal: 'SIGIO', reason: 'PMC lost all its targets', pmcId: pmc.id });
  }

  /** Forget a target in the process table (its counters stay with the PMC); the last PMC gone releases the process. */
  unlinkTarget(pmc: Pmc, t: PmcTarget): void {
    if (t.process.pmcs.get(pmc.row) === pmc) t.process.pmcs.delete(pmc.row);
    if (t.process.pmcs.size === 0 && this.m.processes.get(t.process.pid) === t.process) {
      this.m.processes.delete(t.process.pid);
      t.process.close();
    }
  }
}

/** pid 0 is the caller itself. */
function checkPid(caller: Caller, pid: number): number {
  if (!Number.isInteger(pid) || pid < 0) throw new PmcError('EINVAL', `pid ${pid} is not a process id`);
  return pid === 0 ? caller.pid : pid;
}

/** pfind() plus the P_WEXIT check: gone and exiting processes are not there (a zombie leader with live threads is). */
function checkTargetAlive(pid: number): void {
  if (processExited(pid)) throw new PmcError('ESRCH', `process ${pid} does not exist or is exiting`);
}

/** Whether the owner of `pmc`, a process PMC, has another counting process PMC whose counters could share its groups. */
function mayGroup(pmc: Pmc): boolean {
  for (const other of pmc.owner.pmcs.values()) {
    if (other !== pmc && !other.isSystem && !other.isSampling && !other.request.contextSwitchValues) return true;
  }
  return false;
}
