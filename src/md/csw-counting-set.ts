// Counting with per-context-switch values (PMC_F_LOG_PROCCSW). Each thread's
// counter leads a group with a `context-switches` event that samples every
// switch-out and reads the group: the sample carries the thread's count at
// that moment, from which the module logs what the thread counted in its
// time slice. Groups are per CPU (a group lives on one CPU), and the
// sampler's ring per CPU is shared by the threads' samplers on that CPU.
import { PmcError } from '../pmc-error.js';
import type { HwCounterSet, Inheritance } from './class-dep.js';
import { onlineCpus } from './cpus.js';
import { DescendantWatch } from './descendant-watch.js';
import { PerfFormat, PerfSample, PerfType, type PerfEventAttr } from './perf-attr.js';
import { PerfEvent } from './perf-event.js';
import { SampleLayout } from './perf-records.js';
import { listThreads } from './procfs.js';
import { RingBuffer } from './ring-buffer.js';
import { SampleSource } from './sampling-set.js';

const PERF_COUNT_SW_CONTEXT_SWITCHES = 3n;
const RING_PAGES = 16;
const CLOCK_MONOTONIC = 1;
const GROUP_READ = PerfFormat.GROUP | PerfFormat.TOTAL_TIME_ENABLED | PerfFormat.TOTAL_TIME_RUNNING;
/** Offset of the leader's value in a GROUP_READ block: nr, enabled, running, then values. */
export const CSW_LEADER_VALUE_OFFSET = 24;

export class CswCountingSet implements HwCounterSet {
  private readonly buf = Buffer.alloc(8 * 5);

  private constructor(
    private readonly leaders: PerfEvent[],
    readonly sampleSources: SampleSource[],
    private readonly watch?: DescendantWatch,
  ) {}

  static forProcess(base: PerfEventAttr, pid: number, inheritance: Inheritance): CswCountingSet {
    const inherit = { inherit: true, inheritThread: inheritance === 'threads' };
    // A group shares one clock: the leader takes the sampler's CLOCK_MONOTONIC.
    const leaderAttr: PerfEventAttr = {
      ...base,
      readFormat: GROUP_READ,
      clockid: CLOCK_MONOTONIC,
      flags: { ...base.flags, ...inherit, disabled: true, pinned: true, useClockid: true },
    };
    const samplerAttr: PerfEventAttr = {
      type: PerfType.SOFTWARE,
      config: PERF_COUNT_SW_CONTEXT_SWITCHES,
      samplePeriod: 1n,
      sampleType: PerfSample.IDENTIFIER | PerfSample.TID | PerfSample.TIME | PerfSample.CPU | PerfSample.READ,
      readFormat: GROUP_READ,
      clockid: CLOCK_MONOTONIC,
      flags: { ...inherit, sampleIdAll: true, useClockid: true },
    };
    const layout = SampleLayout.fromAttr(samplerAttr, 2);
    const leaders: PerfEvent[] = [];
    const all: PerfEvent[] = [];
    const sources: SampleSource[] = [];
    try {
      for (const cpu of onlineCpus()) {
        let ring: RingBuffer | undefined;
        const samplers: PerfEvent[] = [];
        for (const tid of listThreads(pid)) {
          let leader: PerfEvent;
          try {
            leader = PerfEvent.open(leaderAttr, { pid: tid, cpu });
          } catch (e) {
            if (e instanceof PmcError && e.code === 'ESRCH' && tid !== pid) continue;
            throw e;
          }
          all.push(leader);
          const sampler = PerfEvent.open(samplerAttr, { pid: tid, cpu, groupFd: leader.fd });
          all.push(sampler);
          if (ring) sampler.setOutput(ring.event);
          else ring = RingBuffer.map(sampler, RING_PAGES);
          leaders.push(leader);
          samplers.push(sampler);
        }
        // The samplers follow their leaders: a source is paused by disabling its leaders' groups.
        if (ring) sources.push(new SampleSource(cpu, ring, layout, samplers));
      }
      if (leaders.length === 0) throw new PmcError('ESRCH', `process ${pid} has no threads`);
      return new CswCountingSet(leaders, sources, inheritance === 'descendants' ? DescendantWatch.open(pid) : undefined);
    } catch (e) {
      for (const s of sources) s.ring.close();
      for (const ev of all) ev.close();
      throw e;
    }
  }

  /**
   * The leaders' sum. A leader bound to one CPU is enabled but not running
   * while its thread runs elsewhere, so running < enabled is no sign of
   * multiplexing here; a pinned group the PMU cannot hold reads as EOF.
   */
  read(): bigint {
    let sum = 0n;
    for (const ev of this.leaders) {
      ev.readRaw(this.buf);
      sum += this.buf.readBigUInt64LE(CSW_LEADER_VALUE_OFFSET);
    }
    return sum;
  }

  start(): void {
    for (const ev of this.leaders) ev.enable();
  }

  stop(): void {
    for (const ev of this.leaders) ev.disable();
  }

  close(): void {
    for (const s of this.sampleSources) {
      s.ring.close();
      for (const e of s.events) e.close();
    }
    for (const ev of this.leaders) ev.close();
    this.watch?.close();
  }

  liveDescendants(): number | undefined {
    return this.watch?.liveCount();
  }

  get fdCount(): number {
    let n = this.leaders.filter((e) => !e.isClosed).length + (this.watch?.fdCount ?? 0);
    for (const s of this.sampleSources) n += s.events.filter((e) => !e.isClosed).length;
    return n;
  }
}
