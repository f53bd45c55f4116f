// HW: perf's generic hardware events (PERF_TYPE_HARDWARE), mapped by the
// kernel onto whatever core PMU the machine has.
import { PmcClass } from '../pmc-common.js';
import type { EventClassInfo } from './event-class.js';
import { type GenericEvent, ListedClass } from './listed-class.js';
import { PerfType } from './perf-attr.js';

const HARDWARE_EVENTS: readonly GenericEvent[] = [
  { name: 'cpu-cycles', aliases: ['cycles'], config: 0, description: 'CPU cycles' },
  { name: 'instructions', config: 1, description: 'instructions retired' },
  { name: 'cache-references', config: 2, description: 'cache accesses (usually last level)' },
  { name: 'cache-misses', config: 3, description: 'cache misses (usually last level)' },
  { name: 'branch-instructions', aliases: ['branches'], config: 4, description: 'branch instructions retired' },
  { name: 'branch-misses', config: 5, description: 'mispredicted branches' },
  { name: 'bus-cycles', config: 6, description: 'bus cycles' },
  { name: 'stalled-cycles-frontend', aliases: ['idle-cycles-frontend'], config: 7, description: 'cycles stalled in the front end' },
  { name: 'stalled-cycles-backend', aliases: ['idle-cycles-backend'], config: 8, description: 'cycles stalled in the back end' },
  { name: 'ref-cycles', config: 9, description: 'reference cycles, unaffected by frequency scaling' },
];

/** The kernel does not say how many counters an x86 core PMU has: a typical 4. */
export const HW_ROWS = 4;

export function hwClasses(): EventClassInfo[] {
  return [
    new ListedClass({ family: 'HW', perfType: PerfType.HARDWARE, classId: PmcClass.HW, rows: HW_ROWS, table: HARDWARE_EVENTS, noDevice: 'no hardware PMU' }),
  ];
}
