// Counting with per-context-switch values (PMC_F_LOG_PROCCSW). Each thread's
// counter leads a group with a `context-switches` event that samples every
// switch-out and reads the group: the sample carries the thread's count at
// that moment, from which the module logs what the thread counted in its
// time slice. Groups are per CPU (a group lives on one CPU), and the
// sampler's ring per CPU is shared by the threads' samplers on that CPU.
import { PMC_CLOCKID } from '../pmc-common.js';
import { PmcError } from '../pmc-error.js';
import type { HwCounterSet, Inheritance } from './class-dep.js';
import type { DescendantWatch } from './descendant-watch.js';
import { PerfFormat, PerfSample, PerfSoftware, PerfType, type PerfEventAttr } from './perf-attr.js';
import { PerfEvent } from './perf-event.js';
import { SampleLayout } from './perf-sample-record.js';
import { closeCpuRings, type CpuRings } from './cpu-rings.js';
import { attachThreadRings } from './thread-attach.js';
import { RingedSet } from './ringed-set.js';
import { PerfSampleSource } from './perf-sample-source.js';
import { ringPages, withWakeupWatermark } from './sampling-set.js';

const GROUP_READ = PerfFormat.GROUP | PerfFormat.TOTAL_TIME_ENABLED | PerfFormat.TOTAL_TIME_RUNNING;
/** Offset of the leader's value in a GROUP_READ block: nr, enabled, running, then values. */
const LEADER_VALUE_OFFSET = 24;

export class CswCountingSet extends RingedSet implements HwCounterSet {
  private readonly buf = Buffer.alloc(8 * 5);

  private constructor(
    rings: CpuRings,
    private readonly leaders: PerfEvent[],
    readonly sampleSources: PerfSampleSource[],
    watch?: DescendantWatch,
  ) {
    super(rings, watch);
  }

  static forProcess(base: PerfEventAttr, pid: number, inheritance: Inheritance): CswCountingSet {
    const inherit = { inherit: true, inheritThread: inheritance === 'threads' };
    // A group shares one clock: the leader takes the sampler's (the log's clock).
    const leaderAttr: PerfEventAttr = {
      ...base,
      readFormat: GROUP_READ,
      clockid: PMC_CLOCKID,
      flags: { ...base.flags, ...inherit, disabled: true, pinned: true, useClockid: true },
    };
    // A switch-out sample is 80 bytes and a busy target switches thousands of times a second: a sampler's rings.
    const pages = ringPages(false);
    const samplerAttr: PerfEventAttr = withWakeupWatermark({
      type: PerfType.SOFTWARE,
      config: PerfSoftware.CONTEXT_SWITCHES,
      samplePeriod: 1n,
      sampleType: PerfSample.IDENTIFIER | PerfSample.TID | PerfSample.TIME | PerfSample.CPU | PerfSample.READ,
      readFormat: GROUP_READ,
      clockid: PMC_CLOCKID,
      flags: { ...inherit, sampleIdAll: true, useClockid: true },
    }, pages);
    const layout = SampleLayout.fromAttr(samplerAttr, 2);
    const leaders: PerfEvent[] = [];
    const { rings, watch } = attachThreadRings(pid, inheritance, pages, (tid, cpu, opened) => {
      const leader = PerfEvent.open(leaderAttr, { pid: tid, cpu });
      opened.push(leader);
      const sampler = PerfEvent.open(samplerAttr, { pid: tid, cpu, groupFd: leader.fd });
      opened.push(sampler);
      leaders.push(leader);
      return sampler;
    });
    try {
      if (leaders.length === 0) throw new PmcError('ESRCH', `process ${pid} has no threads`);
      const sources = rings.rings.map((r) => new PerfSampleSource(r.cpu, r.ring, layout, r.writers, LEADER_VALUE_OFFSET));
      return new CswCountingSet(rings, leaders, sources, watch);
    } catch (e) {
      closeCpuRings(rings);
      watch?.close();
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
      sum += this.buf.readBigUInt64LE(LEADER_VALUE_OFFSET);
    }
    return sum;
  }

  start(): void {
    for (const ev of this.leaders) ev.enable();
  }

  stop(): void {
    for (const ev of this.leaders) ev.disable();
  }

}
