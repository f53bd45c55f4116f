// One ring buffer per CPU for the events of a set of threads. The kernel
// lets events share a ring only on the same CPU (SET_OUTPUT across CPUs is
// EINVAL) and refuses to map an inherited event with cpu -1, so anything
// that reads records from a process's threads opens an event per (thread,
// CPU) and points the events of each CPU at that CPU's first ring.
import { PmcError } from '../pmc-error.js';
import type { PerfEvent } from './perf-event.js';
import { processExited } from '../os/procfs.js';
import { RingBuffer } from './ring-buffer.js';

export interface CpuRing {
  cpu: number;
  ring: RingBuffer;
  /** The events writing into the ring. */
  writers: PerfEvent[];
}

export interface CpuRings {
  rings: CpuRing[];
  /** Every event opened, writers or not, in opening order. */
  events: PerfEvent[];
}

/**
 * `open(tid, cpu)` opens a thread's events on a CPU and returns them, the
 * last one being the ring's writer. A thread that exits meanwhile (ESRCH)
 * is skipped, unless it is `mainTid` and the process has exited (a leader
 * that called pthread_exit is gone while its other threads run). On failure
 * everything opened is closed.
 */
export function openCpuRings(cpus: readonly number[], tids: readonly number[], mainTid: number | undefined, pages: number, open: RingOpener): CpuRings {
  const rings: CpuRings = { rings: [], events: [] };
  try {
    extendCpuRings(rings, cpus, tids, mainTid, pages, open);
  } catch (e) {
    closeCpuRings(rings);
    throw e;
  }
  return rings;
}

/** Opens one thread's events on a CPU (the last one returned is the ring's writer). */
export type RingOpener = (tid: number, cpu: number, opened: PerfEvent[]) => PerfEvent;

/**
 * Adds threads to rings already open: each new (thread, CPU) event writes
 * into that CPU's ring, and the first writer on a CPU without one maps it.
 * On failure, what was opened stays in `rings` for the caller to close.
 */
export function extendCpuRings(rings: CpuRings, cpus: readonly number[], tids: readonly number[], mainTid: number | undefined, pages: number, open: RingOpener): void {
  for (const cpu of cpus) {
    let current = rings.rings.find((r) => r.cpu === cpu);
    for (const tid of tids) {
      let writer: PerfEvent;
      try {
        writer = open(tid, cpu, rings.events);
      } catch (e) {
        if (threadVanished(e, tid, mainTid)) continue;
        throw e;
      }
      if (current) {
        writer.setOutput(current.ring.event);
        current.writers.push(writer);
      } else {
        rings.rings.push((current = { cpu, ring: RingBuffer.map(writer, pages), writers: [writer] }));
      }
    }
  }
}

/** ESRCH from a thread that exited: nothing to open there, unless the whole process is gone. */
export function threadVanished(e: unknown, tid: number, mainTid: number | undefined): boolean {
  if (!(e instanceof PmcError)) return false;
  // A thread that exits between its group leader's open and its member's: the kernel refuses the member with ENODEV.
  if (e.code === 'ENODEV') return tid !== mainTid && processExited(tid);
  if (e.code !== 'ESRCH') return false;
  return tid !== mainTid || !processExited(tid);
}

export function closeCpuRings({ rings, events }: CpuRings): void {
  for (const r of rings) r.ring.close();
  for (const ev of events) ev.close();
}

/** A ring with less free space than two task records is taken as full: records were lost, maybe without a LOST record yet. */
export function ringFull(ring: RingBuffer): boolean {
  return ring.pending() > ring.size - 64;
}

export function openEventCount(events: readonly PerfEvent[]): number {
  let n = 0;
  for (const e of events) if (!e.isClosed) n++;
  return n;
}
