// The machine-dependent layer's view of this machine: one PMC class per perf
// event class found here (pmc_md_initialize's job); each class says its own
// number and rows.
import type { ClassDep } from './class-dep.js';
import type { EventClassInfo } from './event-class.js';
import { discoverEventClasses } from './event-families.js';
import { PerfClass } from './perf-class.js';

export function machineClasses(infos: EventClassInfo[] = discoverEventClasses()): ClassDep[] {
  return infos.map((info) => new PerfClass(info));
}
