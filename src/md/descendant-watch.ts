// Which descendants of a target are alive. With PMC_F_DESCENDANTS the
// kernel's inheritance counts every process forked below a target, but
// tells nobody about them; a process that forks a child and exits leaves an
// orphan no /proc walk from the target finds. A dummy event with `task` set,
// inherited like the counters, reports every fork and exit in the tree.
//
// The reports come through one ring per CPU, and the rings are independent:
// a child's EXIT (written on the CPU it died on) can be read before its FORK
// (written on its parent's CPU). So records are applied in timestamp order
// (CLOCK_MONOTONIC, as everything tspmc stamps), and an EXIT whose FORK has
// not been read yet is kept as a tombstone for two drains, long enough for
// its FORK to show up in any ring. A ring that overflows (LOST) leaves holes
// in both directions (and a full ring may never say LOST); the tree is then
// reconciled with /proc: gone processes are dropped and descendants nobody
// reported are added. A process that existed before the watch (and so
// reports nothing) is checked in /proc.
//
// Per-process exit counts (PMC_F_LOG_PROCEXIT with descendants): the kernel
// names nobody's count but the target's, and an inherited counter folds a
// descendant's count into the target's at its exit. A counter opened with
// inherit_stat and writing into these rings (the counting set's exit
// counters) makes each copy report its final count at its thread's exit
// (PERF_RECORD_READ, one per copy: a thread carries one per CPU); a
// process's own count is the sum over its threads, complete once every
// copy of every thread it had has reported.
import { PMC_CLOCKID } from '../pmc-common.js';
import { PmcError } from '../pmc-error.js';
import { onlineCpus } from '../os/cpus.js';
import type { DescendantExit } from './class-dep.js';
import { closeCpuRings, type CpuRings, extendCpuRings, openCpuRings, openEventCount, ringFull } from './cpu-rings.js';
import { PerfSoftware, PerfType } from './perf-attr.js';
import { PerfEvent } from './perf-event.js';
import { PerfRecordType, u64Number } from './perf-records.js';
import { listDescendants, listThreads, processExited, processStartTime } from '../os/procfs.js';

/** A dummy event that reports forks and exits (FORK, EXIT records), stamped on tspmc's clock. */
const TASK_ATTR = {
  type: PerfType.SOFTWARE,
  config: PerfSoftware.DUMMY,
  clockid: PMC_CLOCKID,
  flags: { inherit: true, task: true, excludeKernel: true, excludeHv: true, useClockid: true },
};
/** 32 pages hold 4096 fork or exit records per CPU between drains. */
const RING_PAGES = [32, 8, 2];
/**
 * Drains often enough that a fork storm does not overflow a ring between
 * the module's looks: every 50 ms, every 10 ms while a ring was found an
 * eighth full (a quiet tree costs 20 wake-ups a second).
 */
const DRAIN_QUIET_MS = 50;
const DRAIN_BUSY_MS = 10;
const BUSY_FILL = 1 / 8;
/** Drains a tombstone survives: an EXIT read before its FORK waits this long for it. */
const TOMBSTONE_DRAINS = 2;
/** Drains an exited process waits for the final counts of its threads (written right after their EXIT records). */
const COUNT_DRAINS = 2;

/** A FORK record: a new process (pid !== ppid) or a new thread (pid === ppid) made by thread ptid. */
export interface TaskFork {
  pid: number;
  ppid: number;
  tid: number;
  ptid: number;
  /** When, in ns of CLOCK_MONOTONIC (now()). */
  time: number;
}

interface TaskRecord extends TaskFork {
  type: PerfRecordType.FORK | PerfRecordType.EXIT;
}

/** A process of the tree. */
interface Member {
  /** Its live threads, from FORK and EXIT records. */
  threads: Set<number>;
  /** Threads it has had, from FORK records (0: there before the watch, its count is not followed; -1: unknown, records were lost). */
  threadsEver: number;
  /** Known from /proc rather than from records: checked there (start time names the process). */
  startTime?: number;
}

/** An exited process waiting for its threads' final counts. */
interface Exited {
  pid: number;
  threadsEver: number;
  drainsLeft: number;
}

/** What an attach reads the target's thread creations from (thread-attach.ts). */
export interface ForkSource {
  /** Reads what was reported; `onThread` hears of every thread created in the target. */
  drain(onThread?: (fork: TaskFork) => void): unknown;
  /** Drains that found records lost: a thread created meanwhile may have gone unreported. */
  readonly overflows: number;
  close(): void;
}

export interface DescendantWatchOptions {
  /** Data pages per CPU ring (a power of two); tests shrink it to force overflows. */
  pages?: number;
}

export class DescendantWatch implements ForkSource {
  private readonly members = new Map<number, Member>();
  /** tid -> [time of an EXIT whose FORK was not read yet, drains left]. */
  private readonly tombstones = new Map<number, [number, number]>();
  private records: TaskRecord[] = [];
  private overflowCount = 0;
  private reconcilePending = false;
  private onThread?: (fork: TaskFork) => void;
  /** Exit counts: final-count records each thread writes (0: not counting). */
  private countsPerThread = 0;
  /** pid -> the final counts of its threads so far, and how many. */
  private readonly counts = new Map<number, { value: bigint; records: number }>();
  private exited: Exited[] = [];
  private finished: DescendantExit[] = [];
  private static readonly watching = new Set<DescendantWatch>();
  private static ticker?: NodeJS.Timeout;

  private constructor(
    private readonly pid: number,
    private readonly rings: CpuRings,
  ) {}

  /**
   * Watches `pid`'s future descendants: one inherited dummy event per thread
   * and CPU, listing the threads until no new one appears (a thread created
   * meanwhile by a watched thread inherits the watch). Processes already
   * below the target are taken from /proc.
   */
  static open(pid: number, options: DescendantWatchOptions = {}): DescendantWatch {
    const open = (tid: number, cpu: number, opened: PerfEvent[]): PerfEvent => {
      const ev = PerfEvent.open(TASK_ATTR, { pid: tid, cpu });
      opened.push(ev);
      return ev;
    };
    const cpus = onlineCpus();
    const watched = new Set(listThreads(pid));
    let pages = 0;
    const rings = openWithPages(options.pages ? [options.pages] : RING_PAGES, (p) => openCpuRings(cpus, [...watched], pid, (pages = p), open));
    const watch = new DescendantWatch(pid, rings);
    try {
      for (let fresh = listThreads(pid).filter((t) => !watched.has(t)); fresh.length > 0; fresh = listThreads(pid).filter((t) => !watched.has(t))) {
        extendCpuRings(rings, cpus, fresh, pid, pages, open);
        for (const t of fresh) watched.add(t);
      }
      for (const p of listDescendants(pid)) watch.adopt(p, false);
    } catch (e) {
      watch.close();
      throw e;
    }
    return watch.register();
  }

  private register(): this {
    DescendantWatch.watching.add(this);
    if (!DescendantWatch.ticker) DescendantWatch.tick(DRAIN_QUIET_MS);
    return this;
  }

  private static tick(delay: number): void {
    DescendantWatch.ticker = setTimeout(() => {
      let fill = 0;
      for (const w of DescendantWatch.watching) fill = Math.max(fill, w.drain());
      if (DescendantWatch.watching.size > 0) DescendantWatch.tick(fill >= BUSY_FILL ? DRAIN_BUSY_MS : DRAIN_QUIET_MS);
      else DescendantWatch.ticker = undefined;
    }, delay).unref();
  }

  /**
   * How many processes below the target are alive, after applying every
   * fork and exit reported so far (and /proc, for those it must vouch for).
   */
  liveCount(): number {
    this.drain();
    if (this.reconcilePending) this.reconcile();
    for (const [pid, m] of this.members) {
      if (m.startTime !== undefined && !isSameLiveProcess(pid, m.startTime)) this.gone(pid, m);
    }
    return this.members.size;
  }

  /** Drains that found records lost (a LOST record, or a full ring). */
  get overflows(): number {
    return this.overflowCount;
  }

  /**
   * From now on the watch follows the own count of every descendant that
   * exits: counters opened with inherit_stat and pointed at ringOf(cpu)
   * report their copies' final counts, `perThread` copies per thread.
   */
  countExits(perThread: number): void {
    this.countsPerThread = perThread;
  }

  /** The event whose ring receives the records written on `cpu` (for PERF_EVENT_IOC_SET_OUTPUT). */
  ringOf(cpu: number): PerfEvent {
    const r = this.rings.rings.find((x) => x.cpu === cpu);
    if (!r) throw new PmcError('ENXIO', `the descendant watch has no ring on CPU ${cpu}`);
    return r.ring.event;
  }

  /** The descendants that exited since the last call with their own counts (countExits), in exit order. */
  takeExits(): DescendantExit[] {
    this.drain();
    const out = this.finished;
    this.finished = [];
    return out;
  }

  /** A member is gone: with exit counts, it waits for its threads' final counts. */
  private gone(pid: number, m: Member): void {
    this.members.delete(pid);
    if (this.countsPerThread > 0 && m.threadsEver !== 0) this.exited.push({ pid, threadsEver: m.threadsEver, drainsLeft: COUNT_DRAINS });
  }

  /** Exited processes whose counts are complete, or waited for long enough (then lost), are finished. */
  private settleCounts(): void {
    if (this.exited.length === 0) return;
    const waiting: Exited[] = [];
    for (const e of this.exited) {
      const c = this.counts.get(e.pid);
      const complete = c !== undefined && e.threadsEver > 0 && c.records >= e.threadsEver * this.countsPerThread;
      if (!complete && e.drainsLeft-- > 0) {
        waiting.push(e);
        continue;
      }
      this.counts.delete(e.pid);
      this.finished.push({ pid: e.pid, value: complete ? c.value : undefined });
    }
    this.exited = waiting;
  }

  private overflow(): void {
    this.overflowCount++;
    this.reconcilePending = true;
  }

  /**
   * Reads the rings and applies their records in time order. `onThread`
   * also hears of every thread created in the target itself: attaching
   * counters to a running process needs them. Returns how full the fullest
   * ring was (0 to 1).
   */
  drain(onThread?: (fork: TaskFork) => void): number {
    this.onThread = onThread;
    let fill = 0;
    for (const { ring } of this.rings.rings) {
      const pending = ring.pending();
      fill = Math.max(fill, pending / ring.size);
      // A full ring has lost what did not fit, and the kernel reports that
      // (LOST) only with the next record it manages to write, maybe never.
      if (ringFull(ring)) this.overflow();
      ring.drain((_bytes, view, offset, type) => {
        if (type === PerfRecordType.FORK || type === PerfRecordType.EXIT) {
          // pid, ppid, tid, ptid (u32 each) and time (u64) after the 8-byte header.
          this.records.push({
            type,
            pid: view.getUint32(offset + 8, true),
            ppid: view.getUint32(offset + 12, true),
            tid: view.getUint32(offset + 16, true),
            ptid: view.getUint32(offset + 20, true),
            time: u64Number(view, offset + 24),
          });
        } else if (type === PerfRecordType.READ) {
          // pid, tid (u32 each), then the value (read_format 0): one copy's final count at its thread's exit.
          const pid = view.getUint32(offset + 8, true);
          if (pid === this.pid || this.countsPerThread === 0) return;
          const c = this.counts.get(pid) ?? { value: 0n, records: 0 };
          c.value += view.getBigUint64(offset + 16, true);
          c.records++;
          this.counts.set(pid, c);
        } else if (type === PerfRecordType.LOST) {
          this.overflow();
        }
      });
    }
    const batch = this.records.sort((a, b) => a.time - b.time);
    this.records = [];
    for (const r of batch) {
      if (r.type === PerfRecordType.FORK) this.applyFork(r);
      else this.applyExit(r);
    }
    for (const [tid, entry] of this.tombstones) if (--entry[1] < 0) this.tombstones.delete(tid);
    this.settleCounts();
    this.onThread = undefined;
    return fill;
  }

  private applyFork(r: TaskRecord): void {
    const tomb = this.tombstones.get(r.tid);
    const m = this.members.get(r.pid);
    if (tomb !== undefined && tomb[0] >= r.time) {
      // Its exit was read first: the task came and went.
      this.tombstones.delete(r.tid);
      if (r.pid === r.ppid && r.pid === this.pid) this.onThread?.(r);
      else if (r.pid !== r.ppid) this.gone(r.pid, { threads: new Set(), threadsEver: 1 });
      else if (m) m.threadsEver++;
      return;
    }
    if (r.pid !== r.ppid) {
      this.members.set(r.pid, { threads: new Set([r.tid]), threadsEver: 1 });
    } else if (r.pid === this.pid) {
      this.onThread?.(r);
    } else if (m?.startTime === undefined && m) {
      m.threads.add(r.tid);
      m.threadsEver++;
    }
  }

  private applyExit(r: TaskRecord): void {
    const m = this.members.get(r.pid);
    // A member /proc vouches for is checked there.
    if (m?.startTime !== undefined) return;
    if (m === undefined || !m.threads.delete(r.tid)) {
      if (r.pid !== this.pid) this.tombstones.set(r.tid, [r.time, TOMBSTONE_DRAINS]);
      return;
    }
    if (m.threads.size === 0) this.gone(r.pid, m);
    else if (r.tid === r.pid) {
      // The leader exited before its threads. A thread that execs takes the
      // leader's tid without a record, so from now on /proc says when it is over.
      m.startTime = processStartTime(r.pid);
      if (m.startTime === undefined) this.gone(r.pid, m);
    }
  }

  /**
   * After lost records: every member /proc says is gone goes, every process
   * below the target or below a member that nobody reported comes in.
   */
  private reconcile(): void {
    this.reconcilePending = false;
    for (const [pid, m] of this.members) {
      m.startTime ??= processStartTime(pid);
      if (m.startTime === undefined || !isSameLiveProcess(pid, m.startTime)) this.gone(pid, m);
    }
    for (const p of listDescendants(this.pid, ...this.members.keys())) this.adopt(p, true);
  }

  /**
   * A process known from /proc: one below the target before the watch (the
   * module attaches those as targets of their own), or one whose records
   * were lost (its exit count cannot be known: reported lost).
   */
  private adopt(pid: number, lost: boolean): void {
    if (this.members.has(pid)) return;
    const startTime = processStartTime(pid);
    if (startTime !== undefined) this.members.set(pid, { threads: new Set(), threadsEver: lost ? -1 : 0, startTime });
  }

  close(): void {
    DescendantWatch.watching.delete(this);
    if (DescendantWatch.watching.size === 0 && DescendantWatch.ticker) {
      clearTimeout(DescendantWatch.ticker);
      DescendantWatch.ticker = undefined;
    }
    closeCpuRings(this.rings);
  }

  get fdCount(): number {
    return openEventCount(this.rings.events);
  }
}

function isSameLiveProcess(pid: number, startTime: number): boolean {
  return !processExited(pid) && processStartTime(pid) === startTime;
}

/** Rings as large as the caller's locked-memory allowance permits (an unprivileged user shares perf_event_mlock_kb). */
function openWithPages(choices: readonly number[], open: (pages: number) => CpuRings): CpuRings {
  for (let i = 0; ; i++) {
    try {
      return open(choices[i]);
    } catch (e) {
      const retry = e instanceof PmcError && (e.code === 'EPERM' || e.code === 'ENOMEM') && i + 1 < choices.length;
      if (!retry) throw e;
    }
  }
}
