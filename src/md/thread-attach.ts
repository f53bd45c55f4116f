// Attaching inherited counters to the threads of a running process without
// counting a thread twice or not at all. A thread created after its
// creator's counter was opened inherits that counter; opening another one
// on it would count it twice, while a thread created before that moment
// needs its own. /proc cannot tell them apart, so a DescendantWatch (opened
// first, complete over every thread) reports each new thread with its
// creator and its creation time, and a thread is opened only when its
// creator had no counter yet when it was created (see attachThreads for a
// thread created while its creator's counter was being opened).
import { PmcError } from '../pmc-error.js';
import type { Inheritance } from './class-dep.js';
import { onlineCpus } from '../os/cpus.js';
import { closeCpuRings, type CpuRings, extendCpuRings, type RingOpener, threadVanished } from './cpu-rings.js';
import { DescendantWatch, type ForkSource, type TaskFork } from './descendant-watch.js';
import { MachineForkWatch } from './machine-fork-watch.js';
import { listThreads } from '../os/procfs.js';
import { now } from '../pmc-common.js';

/** How long a thread may wait for its FORK record (or its creator's) before it is opened anyway (a ring overflowed). */
const RECORD_WAIT_MS = 200;

/** How often the watch is read while counters are being opened. */
const DRAIN_EVERY_MS = 5;

/** Times a creator's counter is opened again because it made a thread while being opened. */
const REOPENS = 3;

/** Times an attach starts over because its watch lost records. */
const RESTARTS = 2;

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * How `attachThreads` opens and, when it must, closes again the counters of
 * one thread. `close` frees the thread's counters and the copies threads
 * created meanwhile inherited; without it an uncertain thread is opened.
 */
export interface ThreadOpener {
  open(tid: number): void;
  close?(tid: number): void;
}

/**
 * Calls `open(tid)` for every thread of `pid` that does not inherit a
 * counter opened here. Returns how many threads have counters of their own;
 * a thread that exits first is skipped (ESRCH), the process exiting is ESRCH.
 *
 * A thread is known to inherit when its creator's counter was open before
 * it was created: its FORK record is stamped after the kernel copied the
 * creator's counters, so a record older than the moment the creator's
 * open began says "not inherited", one newer than the moment the open
 * returned says "inherited" (short of a creation that spans the whole
 * open). A record in between (the creator made a thread
 * while its counter was being opened, or while this process was preempted
 * right after) is uncertain: the creator's counter, and with it every copy
 * inherited from it, is closed and opened again (counters are opened
 * disabled, so nothing counted is lost), and the thread is decided against
 * the new open. Only a creator that keeps making threads through REOPENS
 * opens, or an opener that cannot close, leaves an uncertain thread opened.
 */
export function attachThreads(pid: number, watch: ForkSource, opener: ThreadOpener | ((tid: number) => void)): number {
  const { open, close } = typeof opener === 'function' ? { open: opener, close: undefined } : opener;
  /** tid -> since when it has a counter (its open returned, or inherited at creation), in now() ns; Infinity: it exited unopened. */
  const since = new Map<number, number>();
  /** Opened threads: when their last open began, and how often they were opened. */
  const opening = new Map<number, { began: number; opens: number }>();
  /** Inheriting threads: the opened thread whose counter they copied. */
  const copiedFrom = new Map<number, number>();
  const forks = new Map<number, TaskFork>();
  /** Threads waiting for their own FORK record or their creator's decision, since when. */
  const waiting = new Map<number, number>();
  const wait = (tid: number): void => void (waiting.has(tid) || waiting.set(tid, now()));
  const collect = (f: TaskFork): void => void forks.set(f.tid, f);
  let pending = listThreads(pid);
  /** Creators whose counters are opened again in this pass. */
  const reopening = new Set<number>();
  /** The counter of `tid` goes, with its inherited copies: they are all undecided again, and `tid` is opened again. */
  const reopen = (tid: number): void => {
    close!(tid);
    since.delete(tid);
    for (const [t, from] of copiedFrom) {
      if (from !== tid) continue;
      copiedFrom.delete(t);
      since.delete(t);
    }
    pending.push(tid);
    reopening.add(tid);
  };
  /**
   * The watch lost records: a thread whose creation went unreported cannot
   * be told from one made before its creator's counter. Every counter goes
   * with its copies, and the attach starts over from the threads /proc lists
   * now (they are all older than any counter), with the watch's records from
   * here on (the machine's watch moves to a watch of the target alone).
   */
  let losses = watch.overflows;
  let restarts = 0;
  const restart = (): void => {
    for (const tid of opening.keys()) if (Number.isFinite(since.get(tid))) close!(tid);
    for (const m of [since, opening, copiedFrom, forks, waiting]) m.clear();
    losses = watch.overflows;
    restarts++;
    pending = listThreads(pid);
  };
  for (;;) {
    let drained = now();
    for (const tid of pending) {
      waiting.delete(tid);
      const began = now();
      try {
        open(tid);
        since.set(tid, now());
        opening.set(tid, { began, opens: (opening.get(tid)?.opens ?? 0) + 1 });
      } catch (e) {
        if (!threadVanished(e, tid, pid)) throw e;
        since.set(tid, Infinity);
        opening.delete(tid);
      }
      // Opening thousands of threads takes seconds on a busy machine: read the watch as we go, before it overflows.
      if (now() - drained > DRAIN_EVERY_MS * 1e6) {
        watch.drain(collect);
        drained = now();
      }
    }
    pending = [];
    reopening.clear();
    watch.drain(collect);
    if (watch.overflows !== losses && close && restarts < RESTARTS) {
      restart();
      continue;
    }
    // Records come in time order, so a creator is decided before the threads it made.
    for (const f of forks.values()) {
      if (since.has(f.tid)) continue;
      const creator = since.get(f.ptid);
      const opened = opening.get(f.ptid);
      if (creator === undefined || reopening.has(f.ptid)) wait(f.tid);
      else if (creator < f.time) {
        // Made after its creator's counter was there: it carries a copy.
        since.set(f.tid, f.time);
        copiedFrom.set(f.tid, copiedFrom.get(f.ptid) ?? f.ptid);
        waiting.delete(f.tid);
      } else if (opened && f.time > opened.began && close && opened.opens < REOPENS) {
        reopen(f.ptid);
        wait(f.tid);
      } else pending.push(f.tid);
    }
    for (const t of listThreads(pid)) if (!since.has(t) && !forks.has(t)) wait(t);
    if (pending.length > 0) continue;
    const t = now();
    pending = [...waiting].filter(([, t0]) => t - t0 > RECORD_WAIT_MS * 1e6).map(([tid]) => tid);
    if (waiting.size === 0) break;
    if (pending.length === 0) Atomics.wait(sleeper, 0, 0, 1);
  }
  let opened = 0;
  for (const tid of opening.keys()) if (since.get(tid) !== Infinity) opened++;
  if (opened === 0) throw new PmcError('ESRCH', `process ${pid} has no threads`);
  return opened;
}

/**
 * What an attach reads thread creations from: with descendants the watch
 * that follows the tree (kept by the set), else the machine's fork watch
 * while the caller may use it, else a watch on the target alone.
 */
export function attachWatch(pid: number, inheritance: Inheritance): { forks: ForkSource; tree?: DescendantWatch } {
  if (inheritance === 'descendants') {
    const tree = DescendantWatch.open(pid);
    return { forks: tree, tree };
  }
  return { forks: MachineForkWatch.hold(pid) ?? DescendantWatch.open(pid) };
}

/**
 * Per-(thread, CPU) events of a running process, one ring per CPU
 * (sampling, context-switch values), on the threads attachThreads picks.
 * The watch stays with descendants.
 */
export function attachThreadRings(pid: number, inheritance: Inheritance, pages: number, open: RingOpener): { rings: CpuRings; watch?: DescendantWatch } {
  const { forks, tree } = attachWatch(pid, inheritance);
  const cpus = onlineCpus();
  const rings: CpuRings = { rings: [], events: [] };
  try {
    attachThreads(pid, forks, (tid) => extendCpuRings(rings, cpus, [tid], pid, pages, open));
    if (!tree) forks.close();
    return { rings, watch: tree };
  } catch (e) {
    closeCpuRings(rings);
    forks.close();
    throw e;
  }
}
