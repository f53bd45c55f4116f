// libpmc event specifiers: `<event>[,<qualifier>...]`, where the event is a
// perf name (`task-clock`), a tracepoint (`sched:sched_switch`), a PMU term
// spec (`msr/tsc/`, `cpu/event=0x3c,umask=0x0/`) or a class-prefixed name
// (`SOFT-page-faults`), and the qualifiers are hwpmc's `usr` and `os`.
import { PmcError } from '../pmc-error.js';

export interface EventSpec {
  /** The event part, as written. */
  event: string;
  /** `usr`: count user mode; `os`: count kernel mode; neither means both. */
  usr: boolean;
  os: boolean;
  /** The whole specifier, for messages and headers. */
  text: string;
}

const QUALIFIERS = new Set(['usr', 'os']);

export function parseEventSpec(text: string): EventSpec {
  const spec = text.trim();
  if (spec === '') throw new PmcError('EINVAL', 'empty event specifier: expected <event>[,usr|,os]');
  // The commas of a PMU term spec sit between its slashes and are not qualifiers.
  const lastSlash = spec.lastIndexOf('/');
  const splitFrom = lastSlash >= 0 ? lastSlash : 0;
  const comma = spec.indexOf(',', splitFrom);
  const event = comma < 0 ? spec : spec.slice(0, comma);
  const quals = comma < 0 ? [] : spec.slice(comma + 1).split(',');
  if (event === '') throw new PmcError('EINVAL', `event specifier "${spec}" has no event before its qualifiers`);
  if (lastSlash >= 0 && !/^[^/]+\/.*\/$/.test(event)) {
    throw new PmcError('EINVAL', `event specifier "${spec}": a PMU event is written pmu/term=value,.../`);
  }
  let usr = false;
  let os = false;
  for (const q of quals) {
    const name = q.trim().toLowerCase();
    if (!QUALIFIERS.has(name)) {
      throw new PmcError('EINVAL', `event specifier "${spec}": unknown qualifier "${q}" (expected usr or os)`);
    }
    if (name === 'usr') usr = true;
    else os = true;
  }
  return { event, usr, os, text: spec };
}
