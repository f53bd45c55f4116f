// The event families of this machine, in lookup order: a name is looked for
// in SOFT, then HW, CACHE, TRACEPOINT, then each dynamic PMU. A new family is
// a file that implements EventClassInfo and one line here.
import { cacheClasses } from './cache-events.js';
import type { EventClassInfo } from './event-class.js';
import { hwClasses } from './hw-events.js';
import { pmuClasses } from './pmu-class.js';
import { softClasses } from './soft-events.js';
import { tracepointClasses } from './tracepoint-class.js';

const FAMILIES: readonly (() => EventClassInfo[])[] = [softClasses, hwClasses, cacheClasses, tracepointClasses, pmuClasses];

let discovered: EventClassInfo[] | undefined;

/** Every event class of this machine, made once per process; each probes the kernel when first asked. */
export function discoverEventClasses(): EventClassInfo[] {
  discovered ??= FAMILIES.flatMap((family) => family());
  return discovered;
}
