// The exit and credential hooks. Linux gives the module no exit hook and no
// exec hook for processes it only counts. Each target is held by a pidfd
// (TargetProcess): an exit is the whole thread group's (a leader that
// called pthread_exit is not one) and a reused pid is not mistaken for the
// target. While process PMCs run, the reaper waits in poll(2) on the
// targets' pidfds (on a libuv thread), so an exit wakes it and nothing else
// does but a 2 s timeout; it looks every 100 ms instead where a pidfd
// cannot tell: kernels without pidfds, descendants that are not targets
// (PMC_F_DESCENDANTS), and owners that may lose the right to watch a target
// (a set-id exec: PMC_FN_PROCESS_EXEC; root and CAP_SYS_PTRACE never do).
// A target found gone is unlinked from the process table while its counters
// stay open, since they hold its final count and, with descendants, keep
// counting children that live on; its PROCEXIT (with PMC_F_LOG_PROCEXIT)
// carries that count. A target that exec'ed into credentials its owner may
// not debug is detached. When every target of a PMC is gone its owner is
// told, as hwpmc sends SIGIO. Stopping a PMC and closing a log settle exits
// first, so an exit that happened before either is in the log whatever the
// reaper's phase.
import { LogType, type LogRecord } from '../log/records.js';
import { closeFd, drainEventFd, eventFd, signalEventFd, whenReadable } from '../os/libc.js';
import { type Credentials, effectiveIds, readCredentials } from '../os/procfs.js';
import { now } from '../pmc-common.js';
import { PmcError } from '../pmc-error.js';
import { canDebug, debugsAnything } from './caller.js';
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
  /** PMC_F_LOG_PROCCSW: the slice a target counted after its threads' last switch-outs (the sample processor). */
  exitSlice(pmc: Pmc, pid: number, total: bigint, time: number): void;
}

type ProcExit = Extract<LogRecord, { type: LogType.PROCEXIT }>;

export class ExitReaper {
  static readonly INTERVAL_MS = 100;
  /**
   * The longest wait in poll(2) on pidfds: a look at least this often while
   * PMCs run. Each wakeup costs a sampling collector 0.1-0.3 ms of CPU, and
   * nothing a pidfd cannot tell waits for it (those cases look by timer).
   */
  static readonly POLL_MAX_MS = 2000;
  private timer?: NodeJS.Timeout;
  /** A poll(2) on the targets' pidfds is under way: its number (a poll given up on is ignored when it ends). */
  private poll = 0;
  private polls = 0;
  /** Wakes the poll when the targets to watch change (a PMC starts); open exactly while process PMCs run. */
  private wakeFd = -1;
  /** Looks the reaper has made on its own (tests wait on it rather than look by hand). */
  looks = 0;
  /** PROCEXIT records the log had no room for yet, per owner, in exit order. */
  private readonly unwritten = new Map<Owner, ProcExit[]>();
  /** Targets whose state could not be read, already reported to their owner. */
  private readonly reported = new WeakSet<PmcTarget>();

  constructor(private readonly host: ReaperHost) {}

  /** A process PMC started: look for exits until none runs. */
  ensureRunning(): void {
    if (this.wakeFd < 0) this.wakeFd = eventFd();
    // Under way already: the new PMC's targets join the poll when it wakes.
    if (this.poll !== 0) signalEventFd(this.wakeFd);
    else if (!this.timer) this.next();
  }

  /** A process PMC stopped: when none runs any more, the reaper rests (its eventfd closed now, not at its next wakeup). */
  pmcStopped(): void {
    if (!this.anyRunningVirtualPmc()) this.stop();
  }

  /** Nothing to watch, or the module is unloaded. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.poll = 0;
    if (this.wakeFd >= 0) {
      // The poll under way ends (the kernel's poll holds its own reference to the eventfd) and is ignored.
      signalEventFd(this.wakeFd);
      closeFd(this.wakeFd);
      this.wakeFd = -1;
    }
  }

  /** Descriptors the reaper holds of its own (module.openFdCount). */
  get fdCount(): number {
    return this.wakeFd >= 0 ? 1 : 0;
  }

  /** One look, then the wait for the next: in poll(2) on the pidfds when they tell all, else on the timer. */
  private look(): void {
    this.timer = undefined;
    this.reapExitedTargets();
    this.looks++;
    if (this.anyRunningVirtualPmc()) this.next();
    else this.stop();
  }

  private next(): void {
    const fds = this.pollFds();
    if (fds === undefined || this.wakeFd < 0) {
      this.timer = setTimeout(() => this.look(), ExitReaper.INTERVAL_MS);
      this.timer.unref();
      return;
    }
    const poll = (this.poll = ++this.polls);
    void whenReadable([...fds, this.wakeFd], ExitReaper.POLL_MAX_MS).then(() => {
      if (poll !== this.poll) return;
      this.poll = 0;
      drainEventFd(this.wakeFd);
      this.look();
    });
  }

  /**
   * The pidfds of every live target of the running process PMCs, or
   * undefined when some exit or credential change needs looking at by timer.
   */
  private pollFds(): number[] | undefined {
    const fds: number[] = [];
    for (const owner of this.host.owners.values()) {
      const mayLoseTargets = !debugsAnything(owner.caller.creds);
      for (const pmc of owner.pmcs.values()) {
        if (pmc.isSystem || pmc.state !== PmcState.RUNNING) continue;
        if (pmc.flags & PmcFlags.DESCENDANTS) return undefined;
        for (const t of pmc.targets.values()) {
          if (t.exited) continue;
          const fd = t.process.pollFd;
          if (fd === undefined || this.reported.has(t) || (mayLoseTargets && t.process.pid !== owner.pid)) return undefined;
          fds.push(fd);
        }
      }
    }
    return fds;
  }

  private anyRunningVirtualPmc(): boolean {
    for (const o of this.host.owners.values()) for (const p of o.pmcs.values()) if (!p.isSystem && p.state === PmcState.RUNNING) return true;
    return false;
  }

  /** One look at every target of every PMC. */
  reapExitedTargets(): void {
    for (const owner of this.host.owners.values()) {
      for (const pmc of [...owner.pmcs.values()]) this.reapPmc(owner, pmc);
      this.writeExits(owner);
    }
  }

  /** The exits of `pmc`'s targets so far, logged now (before a stop). */
  settle(pmc: Pmc): void {
    this.reapPmc(pmc.owner, pmc);
    this.writeExits(pmc.owner);
  }

  /**
   * Before CLOSELOG: every exit of the owner's targets so far is in the log,
   * waiting for log buffers when they are full. False when some PROCEXIT
   * still found no room (the log cannot be written).
   */
  async settleOwner(owner: Owner, flush: () => Promise<void>): Promise<boolean> {
    for (const pmc of [...owner.pmcs.values()]) this.reapPmc(owner, pmc);
    for (let round = 0; !this.writeExits(owner) && round < 100; round++) await flush();
    const left = this.unwritten.get(owner)?.length ?? 0;
    this.unwritten.delete(owner);
    if (left > 0) owner.signal({ signal: 'SIGIO', reason: `${left} process exit record(s) could not be written to the log` });
    return left === 0;
  }

  /** The owner is gone: nothing of it is kept. */
  forget(owner: Owner): void {
    this.unwritten.delete(owner);
  }

  private reapPmc(owner: Owner, pmc: Pmc): void {
    for (const t of [...pmc.targets.values()]) {
      this.logDescendantExits(owner, pmc, t);
      if (t.exited) continue;
      try {
        if (t.process.hasExited()) {
          t.exited = true;
          this.logExit(owner, pmc, t);
          this.host.unlinkTarget(pmc, t);
        } else if (lostRightToWatch(owner, t)) {
          this.host.detachOneProcess(pmc, t.process.pid, true);
        }
      } catch (e) {
        // A target we cannot look at (EMFILE, EACCES) is not thereby gone: say so once, look again next time.
        if (!this.reported.has(t)) {
          this.reported.add(t);
          owner.signal({ signal: 'SIGIO', reason: `cannot tell whether process ${t.process.pid} is still there: ${(e as Error).message}` });
        }
      }
    }
    if (pmc.toldTargetsGone || pmc.targets.size === 0) return;
    let gone: boolean;
    try {
      gone = pmc.allTargetsGone();
    } catch (e) {
      owner.signal({ signal: 'SIGIO', reason: `cannot tell whether the descendants of the PMC's targets are still there: ${(e as Error).message}` });
      return;
    }
    if (gone) {
      pmc.toldTargetsGone = true;
      owner.signal({ signal: 'SIGIO', reason: 'every target of the PMC has exited', pmcId: pmc.id });
    }
  }

  /**
   * What the log hears of an exit: the last PROCCSW slice (PMC_F_LOG_PROCCSW)
   * and PROCEXIT (PMC_F_LOG_PROCEXIT), with the target's final count; a
   * count that cannot be read is reported, never logged as 0.
   */
  private logExit(owner: Owner, pmc: Pmc, t: PmcTarget): void {
    const csw = pmc.request.contextSwitchValues;
    const exit = (pmc.flags & PmcFlags.LOG_PROCEXIT) !== 0 && !pmc.isSampling;
    if (!owner.log || !(csw || exit)) return;
    let value: bigint;
    try {
      // With descendants, what the target counted itself (hwpmc's per-process value), where the class can tell.
      value = exit && t.hw.ownCount ? t.hw.ownCount() : finalCount(t);
    } catch (e) {
      const why = e instanceof PmcError ? e.message : String(e);
      owner.signal({ signal: 'SIGIO', reason: `process ${t.process.pid} exited but its final count could not be read (${why}): its exit is not logged` });
      return;
    }
    if (csw) this.host.exitSlice(pmc, t.process.pid, value, now());
    if (exit) this.queueExit(owner, pmc, t.process.pid, value);
  }

  /**
   * PMC_F_LOG_PROCEXIT with descendants: a PROCEXIT for every process forked
   * below the target that exited, with its own count, as hwpmc logs each
   * descendant it linked at fork. A count the kernel's records lost is
   * reported, never logged as 0.
   */
  private logDescendantExits(owner: Owner, pmc: Pmc, t: PmcTarget): void {
    const exits = t.hw.descendantExits?.();
    if (!exits || exits.length === 0 || !owner.log || !(pmc.flags & PmcFlags.LOG_PROCEXIT)) return;
    const lost: number[] = [];
    for (const e of exits) {
      if (e.value === undefined) lost.push(e.pid);
      else this.queueExit(owner, pmc, e.pid, e.value);
    }
    if (lost.length > 0) {
      owner.signal({ signal: 'SIGIO', reason: `the counts of ${lost.length} process(es) that exited below process ${t.process.pid} were lost (${lost.slice(0, 10).join(', ')}${lost.length > 10 ? ', ...' : ''}): their exits are not logged` });
    }
  }

  private queueExit(owner: Owner, pmc: Pmc, pid: number, value: bigint): void {
    let queue = this.unwritten.get(owner);
    if (!queue) this.unwritten.set(owner, (queue = []));
    queue.push({ type: LogType.PROCEXIT, ts: now(), pmcid: pmc.id, pid, value });
  }

  /** Writes what is queued, in order, while the log has room; true when nothing is left. */
  private writeExits(owner: Owner): boolean {
    const queue = this.unwritten.get(owner);
    if (!queue) return true;
    const log = owner.log;
    let written = 0;
    while (log && written < queue.length && log.write(queue[written])) written++;
    queue.splice(0, written);
    if (queue.length > 0) return false;
    this.unwritten.delete(owner);
    return true;
  }
}

/**
 * The target's credentials changed (a set-id exec) to ones the owner may not
 * attach to. A privileged owner never loses the right. Otherwise the loss
 * needs a new effective uid or gid, which one stat of /proc/PID shows, so
 * the whole credentials are read only then; except when the owner matched
 * the target through its saved uid alone: any exec resets that one to the
 * effective uid, so such targets are read whole at every look.
 */
function lostRightToWatch(owner: Owner, t: PmcTarget): boolean {
  const mine = owner.caller.creds;
  if (t.process.pid === owner.pid || !t.creds || debugsAnything(mine)) return false;
  if (t.creds.euid === mine.euid || t.creds.ruid === mine.euid) {
    const ids = effectiveIds(t.process.pid);
    if (!ids || (ids.euid === t.creds.euid && ids.egid === t.creds.egid)) return false;
  }
  const now = readCredentials(t.process.pid);
  if (!now || sameCredentials(now, t.creds)) return false;
  t.creds = now;
  return !canDebug(mine, now);
}

function sameCredentials(a: Credentials, b: Credentials): boolean {
  return (
    a.euid === b.euid && a.ruid === b.ruid && a.suid === b.suid && a.egid === b.egid && a.rgid === b.rgid && a.sgid === b.sgid &&
    a.groups.join() === b.groups.join()
  );
}
