// The machine-dependent layer's view of this machine: one PMC class per perf
// event family found here (pmc_md_initialize's job), with its row count.
import type { ClassDep } from './class-dep.js';
import { discoverEventClasses, type EventClassInfo } from './event-catalog.js';
import { PerfClass } from './perf-class.js';

// Class numbers (sys/pmc.h keeps SOFT at 0x0F; the Linux families are ours).
const CLASS_IDS: Record<string, number> = { SOFT: 0x0f, HW: 0x30, CACHE: 0x31, TRACEPOINT: 0x32 };
const PMU_CLASS_BASE = 0x40;

/**
 * Rows are counters. Software events and tracepoints have no hardware
 * limit; they get hwpmc's SOFT class size. A core PMU has the counters it
 * reports (or a typical 4); other PMUs a few each. An unavailable class has none.
 */
const SOFT_ROWS = 16;
const PMU_ROWS = 4;
const DEFAULT_HW_COUNTERS = 4;

function rowsOf(info: EventClassInfo): number {
  if (!info.available) return 0;
  switch (info.family) {
    case 'SOFT':
    case 'TRACEPOINT':
      return SOFT_ROWS;
    case 'HW':
    case 'CACHE':
      return info.counters ?? DEFAULT_HW_COUNTERS;
    case 'PMU':
      return info.counters ?? PMU_ROWS;
  }
}

export function machineClasses(infos: EventClassInfo[] = discoverEventClasses()): ClassDep[] {
  let pmu = 0;
  return infos.map((info) => new PerfClass(CLASS_IDS[info.family] ?? PMU_CLASS_BASE + pmu++, info, rowsOf(info)));
}
