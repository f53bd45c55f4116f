// SOFT: the kernel's software events (PERF_TYPE_SOFTWARE), perf's names.
import { PmcClass } from '../pmc-common.js';
import type { EventClassInfo } from './event-class.js';
import { type GenericEvent, ListedClass } from './listed-class.js';
import { PerfType } from './perf-attr.js';

const SOFTWARE_EVENTS: readonly GenericEvent[] = [
  { name: 'cpu-clock', config: 0, description: 'per-CPU high-resolution timer, nanoseconds' },
  { name: 'task-clock', config: 1, description: 'time the task ran, nanoseconds' },
  { name: 'page-faults', aliases: ['faults'], config: 2, description: 'page faults' },
  { name: 'context-switches', aliases: ['cs'], config: 3, description: 'context switches' },
  { name: 'cpu-migrations', aliases: ['migrations'], config: 4, description: 'migrations to another CPU' },
  { name: 'minor-faults', config: 5, description: 'page faults served without I/O' },
  { name: 'major-faults', config: 6, description: 'page faults that needed I/O' },
  { name: 'alignment-faults', config: 7, description: 'unaligned accesses fixed up by the kernel' },
  { name: 'emulation-faults', config: 8, description: 'instructions emulated by the kernel' },
  { name: 'dummy', config: 9, description: 'counts nothing; carries side-band records' },
  { name: 'bpf-output', config: 10, description: 'output from BPF programs' },
  { name: 'cgroup-switches', config: 11, description: 'context switches to a task in another cgroup' },
];

/** Software events have no hardware limit: hwpmc's SOFT class size. */
export const SOFT_ROWS = 16;

export function softClasses(): EventClassInfo[] {
  return [new ListedClass({ family: 'SOFT', perfType: PerfType.SOFTWARE, classId: PmcClass.SOFT, rows: SOFT_ROWS, table: SOFTWARE_EVENTS })];
}
