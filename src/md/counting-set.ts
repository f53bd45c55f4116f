// Counting PMCs on perf: one event per thread of a target process (a perf
// pid is a thread id), or one event on a CPU. Events are pinned so that a
// counter either counts all the time it is enabled or reads as failed; the
// kernel never multiplexes it behind our back.
import { PMC_CLOCKID } from '../pmc-common.js';
import { onlineCpus } from '../os/cpus.js';
import type { DescendantExit, HwCounterSet, Inheritance } from './class-dep.js';
import { type PerfEventAttr, PerfSoftware, PerfType } from './perf-attr.js';
import { COUNTING_READ_FORMAT, type OpenTarget, PerfEvent } from './perf-event.js';
import { PmcError } from '../pmc-error.js';
import type { DescendantWatch } from './descendant-watch.js';
import { attachThreads, attachWatch } from './thread-attach.js';
import type { SampleSource } from './sample-sink.js';
import { type GroupMember, groupsWith, OwnerGroups } from './counter-group.js';

/**
 * A software dummy event no thread inherits, one on every thread a counter
 * is opened on (see forProcess): it counts nothing and is never enabled.
 */
export const UNCOPIED: PerfEventAttr = { type: PerfType.SOFTWARE, config: PerfSoftware.DUMMY, flags: { disabled: true, excludeKernel: true, excludeHv: true } };

export class CountingSet implements HwCounterSet {
  readonly sampleSources: readonly SampleSource[] = [];
  /** With process counts only (see forProcess). */
  readonly ownCount?: () => bigint;
  readonly descendantExits?: () => DescendantExit[];

  private constructor(
    private readonly events: PerfEvent[],
    private readonly watch?: DescendantWatch,
    /** With process counts: the target's own threads (no child process inherits them). */
    private readonly own: PerfEvent[] = [],
    /** With process counts: per (thread, CPU), their copies report each descendant thread's final count to the watch. */
    private readonly exitCounters: PerfEvent[] = [],
    /** Grouped: `events`' group memberships, in the same order, undefined for an event opened alone (see joinOrAlone). */
    private readonly members?: (GroupMember | undefined)[],
    /** One UNCOPIED event per thread counters were opened on. */
    private readonly uncopied: PerfEvent[] = [],
  ) {
    if (own.length === 0 || !watch) return;
    this.ownCount = () => sum(own);
    this.descendantExits = () => watch.takeExits();
  }

  /**
   * Every thread of `pid`, with inheritance so threads (and, for
   * descendants, processes) created later count too. A watch on the
   * process's forks, opened first, says which threads born during the
   * attach already inherit a counter (see thread-attach.ts); with
   * descendants it stays to follow the tree.
   *
   * `processCounts` (with descendants): each process's own count too. The
   * target's comes from a second counter per thread that threads inherit
   * and child processes do not; each descendant's from exit counters (see
   * descendant-watch.ts). Because no child process inherits every counter
   * of its parent, the kernel never swaps a child's counters with its
   * parent's at a context switch (it does for contexts that are exact
   * copies), which would make the parent's thread report the child's count.
   *
   * Every thread a counter is opened on also gets an event no new thread
   * inherits (UNCOPIED). The kernel marks a new thread's (or child's)
   * counters as an exact copy of its creator's only when every event of
   * the creator is inherited, and swaps exact copies between tasks at a
   * context switch instead of switching them. Inheriting reads the state of
   * the creator's current copy without the lock PERF_EVENT_IOC_ENABLE holds
   * while it walks the original's copies, so a thread created while the PMC
   * started, by a creator holding a swapped copy, got a counter that stayed
   * off for good; swapped on from task to task it left a share of the
   * process uncounted (proc-threads: 0.58 to 0.96 of utime+stime under
   * load). With no exact copies the creator always holds its own counter,
   * whose lock the enable holds too; and a group member opened on a thread
   * finds its leader in the thread's context (after a swap the open failed
   * with EINVAL: a thread creating threads while attached to).
   *
   * With `groupScope` (any object standing for the owner) and without
   * process counts, each thread's counter joins the owner's group on that
   * thread where the event may (counter-group.ts), so that a read of
   * several PMCs (`read(batch)`) reads each group once; where a group
   * cannot be had, the counter is opened alone (see joinOrAlone). A group
   * costs a leader per thread: when the descriptors run out (EMFILE,
   * ENFILE), the whole set is opened again without groups (counters are
   * opened disabled: nothing counted is lost; closing the first attempt's
   * frees the copies threads inherited meanwhile).
   */
  static forProcess(base: PerfEventAttr, pid: number, inheritance: Inheritance, processCounts = false, groupScope?: object): CountingSet {
    try {
      return CountingSet.openForProcess(base, pid, inheritance, processCounts, groupScope);
    } catch (e) {
      if (!groupScope || !(e instanceof PmcError) || (e.code !== 'EMFILE' && e.code !== 'ENFILE')) throw e;
      return CountingSet.openForProcess(base, pid, inheritance, processCounts);
    }
  }

  private static openForProcess(base: PerfEventAttr, pid: number, inheritance: Inheritance, processCounts: boolean, groupScope?: object): CountingSet {
    const attr = withFlags(base, { inherit: true, inheritThread: inheritance === 'threads' });
    const events: PerfEvent[] = [];
    const own: PerfEvent[] = [];
    const exitCounters: PerfEvent[] = [];
    const { forks, tree } = attachWatch(pid, inheritance);
    const counts = processCounts && tree !== undefined;
    const ownAttr = withFlags(base, { inherit: true, inheritThread: true });
    // The watch's rings take the records: same clock as the watch's events (SET_OUTPUT requires it).
    const exitAttr: PerfEventAttr = { ...base, readFormat: 0n, clockid: PMC_CLOCKID, flags: { ...base.flags, inherit: true, inheritStat: true, useClockid: true, disabled: true, pinned: true } };
    const cpus = onlineCpus();
    let groups = groupScope && !counts && groupsWith(base) ? OwnerGroups.of(groupScope) : undefined;
    const grouped = groups !== undefined;
    const members: (GroupMember | undefined)[] = [];
    const uncopied = new Map<number, PerfEvent>();
    try {
      if (counts) tree.countExits(cpus.length);
      const byThread = new Map<number, PerfEvent>();
      attachThreads(pid, forks, {
        open: (tid) => {
          // First: a thread created after it never holds an exact copy, not even of the group leader.
          if (!uncopied.has(tid)) uncopied.set(tid, PerfEvent.open(UNCOPIED, { pid: tid, cpu: -1 }));
          const target = { pid: tid, cpu: -1 };
          const member = groups && joinOrAlone(groups, attr, target, inheritance);
          // Once a group could not be had, the other threads do without: their joins would fail alike.
          if (member === undefined) groups = undefined;
          const ev = member?.event ?? PerfEvent.open(attr, target);
          events.push(ev);
          if (grouped) members.push(member);
          byThread.set(tid, ev);
          if (!counts) return;
          own.push(PerfEvent.open(ownAttr, { pid: tid, cpu: -1 }));
          for (const cpu of cpus) {
            const ec = PerfEvent.open(exitAttr, { pid: tid, cpu });
            exitCounters.push(ec);
            ec.setOutput(tree.ringOf(cpu));
          }
        },
        // Closing a counter frees the copies threads inherited from it. With
        // descendants it would also take the copies of child processes, which
        // the attach does not follow: there an uncertain thread is opened.
        close: inheritance === 'threads' ? (tid) => {
          const i = events.indexOf(byThread.get(tid)!);
          if (grouped) members.splice(i, 1)[0]?.close();
          events[i]!.close();
          events.splice(i, 1);
        } : undefined,
      });
      if (!tree) forks.close();
      return new CountingSet(events, tree, own, exitCounters, grouped ? members : undefined, [...uncopied.values()]);
    } catch (e) {
      for (const m of members) m?.close();
      for (const ev of [...events, ...own, ...exitCounters, ...uncopied.values()]) ev.close();
      forks.close();
      throw e;
    }
  }

  /** With `groupScope`, in the owner's group on that CPU where the event may (as forProcess). */
  static forCpu(base: PerfEventAttr, cpu: number, groupScope?: object): CountingSet {
    const attr = withFlags(base, {});
    if (!groupScope || !groupsWith(base)) return new CountingSet([PerfEvent.open(attr, { pid: -1, cpu })]);
    const member = joinOrAlone(OwnerGroups.of(groupScope), attr, { pid: -1, cpu });
    if (!member) return new CountingSet([PerfEvent.open(attr, { pid: -1, cpu })]);
    return new CountingSet([member.event], undefined, [], [], [member]);
  }

  /**
   * The sum over the set's counters. With `batch` (a number the caller
   * uses for one read of several PMCs), a grouped set takes its values
   * from one read of each of its groups, shared by every set read in the
   * same batch.
   */
  read(batch?: number): bigint {
    const members = this.members;
    if (batch === undefined || members === undefined) return sum(this.events);
    if (members.length === 1 && members[0]) return members[0].valueIn(batch);
    let total = 0n;
    for (let i = 0; i < members.length; i++) total += members[i]?.valueIn(batch) ?? this.events[i]!.readValue();
    return total;
  }

  start(): void {
    for (const ev of this.all()) ev.enable();
  }

  stop(): void {
    for (const ev of this.all()) ev.disable();
  }

  close(): void {
    // A member leaves its group (the last one closes the leader).
    for (const m of this.members ?? []) m?.close();
    for (const ev of this.all()) ev.close();
    for (const ev of this.uncopied) ev.close();
    this.watch?.close();
  }

  liveDescendants(): number | undefined {
    return this.watch?.liveCount();
  }

  get fdCount(): number {
    let n = this.watch?.fdCount ?? 0;
    for (const ev of this.all()) if (!ev.isClosed) n++;
    for (const ev of this.uncopied) if (!ev.isClosed) n++;
    // A group's leader is counted with its first member.
    for (const m of this.members ?? []) if (m && m.group.members[0] === m) n++;
    return n;
  }

  private *all(): Iterable<PerfEvent> {
    yield* this.events;
    yield* this.own;
    yield* this.exitCounters;
  }
}

/**
 * The counter as a member of the owner's group on `target`, or undefined
 * when no group can be had there: its leader cannot be opened (EMFILE or
 * ENFILE: a leader costs a descriptor per thread; ENOSPC, EINVAL: a PMU
 * that refuses it), or the member cannot join it. The caller then opens
 * the counter alone: it counts the same, and a read of several PMCs reads
 * it on its own. A thread that is gone (ESRCH) is the caller's to know.
 */
function joinOrAlone(groups: OwnerGroups, attr: PerfEventAttr, target: OpenTarget, inheritance?: Inheritance): GroupMember | undefined {
  try {
    return groups.join(attr, target, inheritance);
  } catch (e) {
    if (!(e instanceof PmcError) || e.code === 'ESRCH') throw e;
    return undefined;
  }
}

function sum(events: readonly PerfEvent[]): bigint {
  if (events.length === 1) return events[0]!.readValue();
  let total = 0n;
  for (const ev of events) total += ev.readValue();
  return total;
}

function withFlags(base: PerfEventAttr, extra: NonNullable<PerfEventAttr['flags']>): PerfEventAttr {
  return {
    ...base,
    readFormat: COUNTING_READ_FORMAT,
    flags: { ...base.flags, ...extra, disabled: true, pinned: true },
  };
}
