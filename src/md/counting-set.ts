// Counting PMCs on perf: one event per thread of a target process (a perf
// pid is a thread id), or one event on a CPU. Events are pinned so that a
// counter either counts all the time it is enabled or reads as failed; the
// kernel never multiplexes it behind our back.
import type { HwCounterSet, Inheritance } from './class-dep.js';
import type { PerfEventAttr } from './perf-attr.js';
import { COUNTING_READ_FORMAT, PerfEvent } from './perf-event.js';
import type { DescendantWatch } from './descendant-watch.js';
import { attachThreads, attachWatch } from './thread-attach.js';
import type { SampleSource } from './sample-sink.js';

export class CountingSet implements HwCounterSet {
  readonly sampleSources: readonly SampleSource[] = [];

  private constructor(
    private readonly events: PerfEvent[],
    private readonly watch?: DescendantWatch,
  ) {}

  /**
   * Every thread of `pid`, with inheritance so threads (and, for
   * descendants, processes) created later count too. A watch on the
   * process's forks, opened first, says which threads born during the
   * attach already inherit a counter (see thread-attach.ts); with
   * descendants it stays to follow the tree.
   */
  static forProcess(base: PerfEventAttr, pid: number, inheritance: Inheritance): CountingSet {
    const attr = withFlags(base, { inherit: true, inheritThread: inheritance === 'threads' });
    const events: PerfEvent[] = [];
    const { forks, tree } = attachWatch(pid, inheritance);
    try {
      const byThread = new Map<number, PerfEvent>();
      attachThreads(pid, forks, {
        open: (tid) => {
          const ev = PerfEvent.open(attr, { pid: tid, cpu: -1 });
          events.push(ev);
          byThread.set(tid, ev);
        },
        // Closing a counter frees the copies threads inherited from it. With
        // descendants it would also take the copies of child processes, which
        // the attach does not follow: there an uncertain thread is opened.
        close: inheritance === 'threads' ? (tid) => {
          const ev = byThread.get(tid)!;
          ev.close();
          events.splice(events.indexOf(ev), 1);
        } : undefined,
      });
      if (!tree) forks.close();
      return new CountingSet(events, tree);
    } catch (e) {
      for (const ev of events) ev.close();
      forks.close();
      throw e;
    }
  }

  static forCpu(base: PerfEventAttr, cpu: number): CountingSet {
    return new CountingSet([PerfEvent.open(withFlags(base, {}), { pid: -1, cpu })]);
  }

  read(): bigint {
    const events = this.events;
    if (events.length === 1) return events[0]!.readValue();
    let sum = 0n;
    for (const ev of events) sum += ev.readValue();
    return sum;
  }

  start(): void {
    for (const ev of this.events) ev.enable();
  }

  stop(): void {
    for (const ev of this.events) ev.disable();
  }

  close(): void {
    for (const ev of this.events) ev.close();
    this.watch?.close();
  }

  liveDescendants(): number | undefined {
    return this.watch?.liveCount();
  }

  get fdCount(): number {
    return this.events.filter((e) => !e.isClosed).length + (this.watch?.fdCount ?? 0);
  }
}

function withFlags(base: PerfEventAttr, extra: NonNullable<PerfEventAttr['flags']>): PerfEventAttr {
  return {
    ...base,
    readFormat: COUNTING_READ_FORMAT,
    flags: { ...base.flags, ...extra, disabled: true, pinned: true },
  };
}
