// CACHE: perf's generic cache events (PERF_TYPE_HW_CACHE), counted by the
// same core PMU as HW and so sharing its counters.
import { PmcClass } from '../pmc-common.js';
import type { EventClassInfo } from './event-class.js';
import { HW_ROWS } from './hw-events.js';
import { type GenericEvent, ListedClass } from './listed-class.js';
import { PerfType } from './perf-attr.js';

/** perf's generic cache event names: config = cache | op << 8 | result << 16. */
function cacheEvents(): GenericEvent[] {
  const READ = 1, WRITE = 2, PREFETCH = 4;
  const caches: [string, number, number, string][] = [
    ['L1-dcache', 0, READ | WRITE | PREFETCH, 'level 1 data cache'],
    ['L1-icache', 1, READ | PREFETCH, 'level 1 instruction cache'],
    ['LLC', 2, READ | WRITE | PREFETCH, 'last level cache'],
    ['dTLB', 3, READ | WRITE | PREFETCH, 'data TLB'],
    ['iTLB', 4, READ, 'instruction TLB'],
    ['branch', 5, READ, 'branch prediction unit'],
    ['node', 6, READ | WRITE | PREFETCH, 'local memory (NUMA node)'],
  ];
  const ops: [string, string, number, number][] = [
    ['load', 'loads', 0, READ],
    ['store', 'stores', 1, WRITE],
    ['prefetch', 'prefetches', 2, PREFETCH],
  ];
  const out: GenericEvent[] = [];
  for (const [cache, id, opMask, what] of caches) {
    for (const [op, ops_, opId, bit] of ops) {
      if (!(opMask & bit)) continue;
      out.push({ name: `${cache}-${ops_}`, config: id | (opId << 8), description: `${what}: ${ops_}` });
      out.push({ name: `${cache}-${op}-misses`, config: id | (opId << 8) | (1 << 16), description: `${what}: ${op} misses` });
    }
  }
  return out;
}

export function cacheClasses(): EventClassInfo[] {
  return [
    new ListedClass({ family: 'CACHE', perfType: PerfType.HW_CACHE, classId: PmcClass.CACHE, rows: HW_ROWS, table: cacheEvents(), noDevice: 'no hardware PMU' }),
  ];
}
