// The exit and credential hooks. Linux gives the module no exit hook and no
// exec hook for processes it only counts, so while process PMCs run the
// reaper looks at every target at a fixed interval: a target found gone is
// unlinked from the process table (its pid may be reused) while its counters
// stay open, since they hold its final count and, with descendants, keep
// counting children that live on; a target that exec'ed into credentials its
// owner may not debug is detached (PMC_FN_PROCESS_EXEC). When every target of
// a PMC is gone its owner is told, as hwpmc sends SIGIO.
import { LogType } from '../log/records.js';
import { type Credentials, processState, readCredentials } from '../md/procfs.js';
import { canDebug } from './caller.js';
import { now } from '../pmc-common.js';
import type { Owner } from './owner.js';
import { finalCount, type Pmc, type PmcTarget } from './pmc.js';
import { PmcFlags, PmcState } from './pmc-types.js';

/** What the reaper needs of the module. */
export interface ReaperHost {
  readonly owners: ReadonlyMap<number, Owner>;
  /** Detach one target (pmc_detach_one_process), telling the owner when it was the last. */
  detachOneProcess(pmc: Pmc, pid: number, notify: boolean): void;
  /** Forget a gone target in the process table; its counters stay with the PMC. */
  unlinkTarget(pmc: Pmc, t: PmcTarget): void;
}

export class ExitReaper {
  static readonly INTERVAL_MS = 100;
  private timer?: NodeJS.Timeout;

  constructor(private readonly host: ReaperHost) {}

  /** A process PMC started: look for exits until none runs. */
  ensureRunning(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.reapExitedTargets();
      if (!this.anyRunningVirtualPmc()) this.stop();
    }, ExitReaper.INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private anyRunningVirtualPmc(): boolean {
    for (const o of this.host.owners.values()) for (const p of o.pmcs.values()) if (!p.isSystem && p.state === PmcState.RUNNING) return true;
    return false;
  }

  /** One look at every target of every PMC. */
  reapExitedTargets(): void {
    for (const owner of this.host.owners.values()) {
      for (const pmc of [...owner.pmcs.values()]) {
        for (const t of [...pmc.targets.values()]) {
          if (t.exited) continue;
          const s = processState(t.process.pid);
          if (s === 'dead' || s === 'zombie') {
            t.exited = true;
            if (pmc.flags & PmcFlags.LOG_PROCEXIT && !pmc.isSampling) {
              owner.log?.write({ type: LogType.PROCEXIT, ts: now(), pmcid: pmc.id, pid: t.process.pid, value: finalCount(t) });
            }
            this.host.unlinkTarget(pmc, t);
          } else if (lostRightToWatch(owner, t)) {
            this.host.detachOneProcess(pmc, t.process.pid, true);
          }
        }
        if (!pmc.toldTargetsGone && pmc.targets.size > 0 && pmc.allTargetsGone()) {
          pmc.toldTargetsGone = true;
          owner.signal({ signal: 'SIGIO', reason: 'every target of the PMC has exited', pmcId: pmc.id });
        }
      }
    }
  }
}

/** The target's credentials changed (a set-id exec) to ones the owner may not attach to. */
function lostRightToWatch(owner: Owner, t: PmcTarget): boolean {
  if (t.process.pid === owner.pid || !t.creds) return false;
  const now = readCredentials(t.process.pid);
  if (!now || sameCredentials(now, t.creds)) return false;
  t.creds = now;
  return !canDebug(owner.caller.creds, now);
}

function sameCredentials(a: Credentials, b: Credentials): boolean {
  return (
    a.euid === b.euid && a.ruid === b.ruid && a.suid === b.suid && a.egid === b.egid && a.rgid === b.rgid && a.sgid === b.sgid &&
    a.groups.join() === b.groups.join()
  );
}
