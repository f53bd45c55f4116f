// Sampling PMCs on perf. The kernel refuses to mmap an inherited per-thread
// event (every child would write into one ring), so a sampling target gets
// one event per (thread, CPU); the events of a CPU share that CPU's ring via
// SET_OUTPUT. Each ring is a SampleSource the module drains. Beside each
// sampling event a dummy event writes the side-band (mmap, comm/exec, fork,
// exit) that the owner log needs into the same ring: the sampling events are
// disabled while the module has no room for their samples (hwpmc's stall,
// which keeps the counts and the samples in step), the side-band never is.
import { PMC_CLOCKID } from '../pmc-common.js';
import { PmcError } from '../pmc-error.js';
import type { HwCounterSet, HwRequest, Inheritance } from './class-dep.js';
import { onlineCpus } from '../os/cpus.js';
import { PerfSample, PerfSoftware, PerfType, type PerfEventAttr } from './perf-attr.js';
import { COUNTING_READ_FORMAT, PerfEvent } from './perf-event.js';
import { SampleLayout } from './perf-sample-record.js';
import { DescendantWatch } from './descendant-watch.js';
import { listThreads, readSysctl } from '../os/procfs.js';
import { closeCpuRings, type CpuRings, openCpuRings } from './cpu-rings.js';
import { PerfSampleSource } from './perf-sample-source.js';
import { RingedSet } from './ringed-set.js';


/**
 * Data pages per ring. Root: 2 MiB per CPU for a process, 4 MiB per CPU
 * for a whole CPU (every task's samples and side-band go there: it must
 * ride out a slow drain on a saturated machine). Unprivileged users share
 * perf_event_mlock_kb (516 KiB by default) among all their rings.
 */
const PAGE_SIZE = 4096;

export function ringPages(wholeCpu: boolean): number {
  // The global process, not an import of node:process: Node's ES module view of it reads every
  // property, process.allowedNodeEnvironmentFlags among them (a few ms of every start-up).
  if (process.geteuid?.() !== 0) return 16;
  return wholeCpu ? 1024 : 512;
}

export class SamplingSet extends RingedSet implements HwCounterSet {
  private constructor(
    rings: CpuRings,
    readonly sampleSources: PerfSampleSource[],
    watch?: DescendantWatch,
  ) {
    super(rings, watch);
  }

  static forProcess(base: PerfEventAttr, request: HwRequest, pid: number, inheritance: Inheritance): SamplingSet {
    const attr = samplingAttr(base, request, { inherit: true, inheritThread: inheritance === 'threads' });
    const set = SamplingSet.open(attr, listThreads(pid), pid);
    if (inheritance !== 'descendants') return set;
    try {
      return new SamplingSet(set.rings, set.sampleSources, DescendantWatch.open(pid));
    } catch (e) {
      set.close();
      throw e;
    }
  }

  static forCpu(base: PerfEventAttr, request: HwRequest, cpu: number): SamplingSet {
    return SamplingSet.open(samplingAttr(base, request, {}), [-1], undefined, [cpu]);
  }

  private static open(attr: PerfEventAttr, tids: number[], pid: number | undefined, cpus = onlineCpus()): SamplingSet {
    if (tids.length === 0) throw new PmcError('ESRCH', `process ${pid} does not exist`);
    const layout = SampleLayout.fromAttr(attr);
    const pages = ringPages(pid === undefined);
    const watched = withWakeupWatermark(attr, pages);
    const tracker = trackingAttr(attr);
    const trackers = new Map<number, PerfEvent[]>();
    const rings = openCpuRings(cpus, tids, pid, pages, (tid, cpu, opened) => {
      const ev = PerfEvent.open(watched, { pid: tid, cpu });
      opened.push(ev);
      const side = PerfEvent.open(tracker, { pid: tid, cpu });
      opened.push(side);
      trackers.set(cpu, [...(trackers.get(cpu) ?? []), side]);
      return ev;
    });
    try {
      for (const r of rings.rings) for (const side of trackers.get(r.cpu) ?? []) side.setOutput(r.ring.event);
    } catch (e) {
      closeCpuRings(rings);
      throw e;
    }
    return new SamplingSet(rings, rings.rings.map((r) => new PerfSampleSource(r.cpu, r.ring, layout, r.writers)));
  }

  read(): bigint {
    let sum = 0n;
    for (const s of this.sampleSources) for (const e of s.events) sum += e.read().value;
    return sum;
  }

  start(): void {
    for (const s of this.sampleSources) s.stalled = false;
    for (const e of this.rings.events) e.enable();
  }

  stop(): void {
    for (const e of this.rings.events) e.disable();
  }

}

/**
 * The ring's descriptor polls readable once 1 MiB (half a process's ring,
 * as the kernel's default watermark; a quarter of a small unprivileged
 * ring) is filled since the last wakeup: the module sleeps until then (or
 * its timeout) instead of draining on a short timer, as perf record does.
 * Every wakeup of a Node process costs 0.1-0.3 ms of CPU whatever it
 * drains (the poll on a libuv thread, the cold code of a tick): they are as
 * rare as the room left for a slow drain allows, 1 MiB (90 ms of samples
 * at 50 kHz with call chains) or more.
 */
export function withWakeupWatermark(attr: PerfEventAttr, ringPages: number): PerfEventAttr {
  const ring = ringPages * PAGE_SIZE;
  return { ...attr, wakeupEvents: Math.min(1024 * 1024, ring >= 2 * 1024 * 1024 ? ring / 2 : ring / 4), flags: { ...attr.flags, watermark: true } };
}

function samplingAttr(base: PerfEventAttr, request: HwRequest, extra: NonNullable<PerfEventAttr['flags']>): PerfEventAttr {
  const maxStack = Number(readSysctl('kernel.perf_event_max_stack') ?? 127);
  let sampleType = PerfSample.IDENTIFIER | PerfSample.IP | PerfSample.TID | PerfSample.TIME | PerfSample.CPU | PerfSample.PERIOD;
  if (request.callchain) sampleType |= PerfSample.CALLCHAIN;
  return {
    ...base,
    samplePeriod: request.reloadCount,
    sampleType,
    readFormat: COUNTING_READ_FORMAT,
    // The kernel refuses a deeper chain than perf_event_max_stack (EOVERFLOW).
    sampleMaxStack: request.callchain ? Math.min(request.callchainDepth, maxStack) : 0,
    clockid: PMC_CLOCKID,
    flags: {
      ...base.flags,
      ...extra,
      disabled: true,
      freq: request.frequency,
      sampleIdAll: true,
      useClockid: true,
    },
  };
}

/**
 * The side-band of a sampling event's targets, from a dummy event that never
 * samples: the same sample_id trailer (one layout decodes the ring), the
 * same inheritance and mode filter.
 */
function trackingAttr(sampling: PerfEventAttr): PerfEventAttr {
  const { excludeUser, excludeKernel, excludeHv, inherit, inheritThread } = sampling.flags ?? {};
  return {
    type: PerfType.SOFTWARE,
    config: PerfSoftware.DUMMY,
    sampleType: sampling.sampleType,
    clockid: PMC_CLOCKID,
    flags: { excludeUser, excludeKernel, excludeHv, inherit, inheritThread, disabled: true, sampleIdAll: true, useClockid: true, mmap: true, mmap2: true, comm: true, commExec: true, task: true },
  };
}
