// Counters of one owner read together: hwpmc reads each PMC on its own
// (PMCRW), perf can read a whole group of events in one read(2)
// (PERF_FORMAT_GROUP). A group here is a leader nobody reads as a PMC,
// opened enabled, per (owner, thread or CPU, inheritance, kernel PMU); the
// PMCs' counters on that thread (process PMCs) or CPU (system PMCs) join it
// as members. Each member is still
// enabled, disabled, read and closed on its own, so a PMC keeps hwpmc's life
// cycle: a stopped member reads its frozen value, a closed one leaves the
// others counting. The kernel copies a group as one unit into a new thread
// or process, with the members it has at that moment; reading the leader
// adds each copy's values to the original's by position, which stays right
// because a copy's members are always a prefix of the original's (new
// members are appended, and closing a member frees its copies too).
//
// The leader is on its members' kernel PMU: enabling a member while its
// thread runs reschedules only that PMU's groups, so a member under another
// PMU's leader would not count until the thread's next switch-in (measured:
// tens of ms lost on a spinning thread; on a CPU, a tracepoint member that
// never counted). One dummy leader for all, with a dummy member enabled
// after each such member to reschedule the group, was tried: the member then
// runs a few µs less than it is enabled when its thread runs meanwhile (the
// owner's own thread always does), which the module reads as EBUSY.
// Software events have three PMUs (cpu-clock, task-clock, the other
// software events), tracepoints one; a leader is a dummy event for the
// third, and for the others an event of the PMU that counts nothing we use
// (a clock, no timer while not sampling; a tracepoint excluding kernel mode,
// where tracepoints fire). Only software-context events join: they are
// scheduled whenever their task runs, so a group never fails to fit a PMU
// where its members alone would have fitted.
import type { Inheritance } from './class-dep.js';
import { PerfFormat, PerfSoftware, PerfType, type PerfEventAttr } from './perf-attr.js';
import { COUNTING_READ_FORMAT, type OpenTarget, PerfEvent } from './perf-event.js';

const GROUP_READ_FORMAT = PerfFormat.GROUP | PerfFormat.ID | COUNTING_READ_FORMAT;
/** Members per group: the leader and 31 members fill md's largest read (3 + 2 x 32 words). */
const MAX_MEMBERS = 31;

/** The leader of the group a counter with `attr` joins (its PMU and event), or undefined when it joins none. */
function leaderFor(attr: PerfEventAttr): { pmu: string; type: number; config: bigint } | undefined {
  if (attr.type === PerfType.TRACEPOINT) return { pmu: 'tracepoint', type: attr.type, config: attr.config };
  if (attr.type !== PerfType.SOFTWARE) return undefined;
  if (attr.config === PerfSoftware.CPU_CLOCK || attr.config === PerfSoftware.TASK_CLOCK) return { pmu: `clock${attr.config}`, type: attr.type, config: attr.config };
  return { pmu: 'software', type: attr.type, config: PerfSoftware.DUMMY };
}

/** Whether a counter with these attributes may be grouped. */
export function groupsWith(attr: PerfEventAttr): boolean {
  return leaderFor(attr) !== undefined;
}

/** One PMC's counter on one thread or CPU, in a group. */
export class GroupMember {
  /** Its value at the group's last read (`CounterGroup.refresh`). */
  value = 0n;

  constructor(
    readonly event: PerfEvent,
    readonly group: CounterGroup,
    /** The kernel's id of the event (PERF_FORMAT_ID), below 2^53. */
    readonly id: number,
  ) {}

  /** Its value as of read batch `batch`: the group is read once per batch. */
  valueIn(batch: number): bigint {
    if (this.group.batch !== batch) this.group.refresh(batch);
    return this.value;
  }

  /** Leaves the group and closes the counter; the last member closes the leader. */
  close(): void {
    if (this.event.isClosed) return;
    this.event.close();
    this.group.remove(this);
  }
}

class CounterGroup {
  /** In the order they joined: the kernel's sibling order. */
  readonly members: GroupMember[] = [];
  /** The read batch the members' values are from. */
  batch = -1;

  constructor(
    readonly leader: PerfEvent,
    private readonly forget: (g: CounterGroup) => void,
  ) {}

  /** One read(2) of the leader: every member's value, matched by position and checked by id (one BigInt per member). */
  refresh(batch: number): void {
    const { u64, u32 } = this.leader.readGroup();
    const nr = u32[0]!;
    for (let i = 1; i < nr; i++) {
      const idWord = 2 * (4 + 2 * i);
      const id = u32[idWord]! + u32[idWord + 1]! * 2 ** 32;
      let m: GroupMember | undefined = this.members[i - 1];
      if (m?.id !== id) m = this.members.find((x) => x.id === id);
      if (m) m.value = u64[3 + 2 * i]!;
    }
    this.batch = batch;
  }

  remove(m: GroupMember): void {
    this.members.splice(this.members.indexOf(m), 1);
    if (this.members.length > 0) return;
    this.leader.close();
    this.forget(this);
  }
}

/** The groups of one owner (its read scope), by thread or CPU, inheritance and PMU. */
export class OwnerGroups {
  private static readonly scopes = new WeakMap<object, OwnerGroups>();
  private readonly groups = new Map<string, CounterGroup[]>();

  /** The groups of `scope`, any object standing for one owner. */
  static of(scope: object): OwnerGroups {
    let g = OwnerGroups.scopes.get(scope);
    if (!g) OwnerGroups.scopes.set(scope, (g = new OwnerGroups()));
    return g;
  }

  /**
   * Opens a counter (attributes `attr`, which groupsWith allows) on
   * `target` (a thread, or a CPU with pid -1) as a member of a group whose
   * leader has the same `inheritance` (none on a CPU). Opened disabled.
   */
  join(attr: PerfEventAttr, target: OpenTarget, inheritance?: Inheritance): GroupMember {
    const lead = leaderFor(attr);
    if (!lead) throw new Error(`events of perf type ${attr.type} are not grouped`);
    const key = `${target.pid}/${target.cpu}/${inheritance ?? ''}/${lead.pmu}`;
    const list = this.groups.get(key) ?? [];
    let group = list.find((g) => g.members.length < MAX_MEMBERS);
    const fresh = group === undefined;
    if (!group) {
      const leader = PerfEvent.open(
        {
          type: lead.type,
          config: lead.config,
          readFormat: GROUP_READ_FORMAT,
          // Kernel mode excluded: a tracepoint leader never counts, and no leader needs kernel profiling rights.
          flags: { inherit: inheritance !== undefined, inheritThread: inheritance === 'threads', pinned: true, excludeKernel: true, excludeHv: true },
        },
        target,
      );
      group = new CounterGroup(leader, (g) => {
        const rest = (this.groups.get(key) ?? []).filter((x) => x !== g);
        if (rest.length > 0) this.groups.set(key, rest);
        else this.groups.delete(key);
      });
    }
    let event: PerfEvent | undefined;
    try {
      // Only a leader may be pinned: the leader pins the group.
      event = PerfEvent.open({ ...attr, flags: { ...attr.flags, pinned: false, disabled: true } }, { ...target, groupFd: group.leader.fd });
      const m = new GroupMember(event, group, Number(event.id()));
      group.members.push(m);
      if (fresh) this.groups.set(key, [...list, group]);
      return m;
    } catch (e) {
      event?.close();
      if (fresh) group.leader.close();
      throw e;
    }
  }
}
