// From an event name as a user writes it to a class and event (perf's
// util/parse-events.c): term specs, exact names, pmc_match_event_name
// matches, class prefixes, and errors that say why or suggest a spelling.
// Every class answers through EventClassInfo; nothing here knows a family.
import { PmcError } from '../pmc-error.js';
import type { EventClassInfo, EventDef, ResolvedEvent } from './event-class.js';
import { editDistance, namesOf, normalizeEventName } from './event-names.js';

const TERM_SPEC_RE = /^([^/\s]+)\/(.*)\/$/;

/**
 * Finds the class and event a name means: a PMU term spec (`msr/tsc/`,
 * `cpu/event=0x3c,umask=0x0/`), else the exact perf name in class order,
 * else the pmc_match_event_name match, else `<CLASS>-<event>`.
 */
export function resolveEvent(classes: readonly EventClassInfo[], name: string): ResolvedEvent {
  const spec = name.trim();
  if (spec === '') throw new PmcError('EINVAL', 'empty event name');
  if (spec.includes('/')) return resolveTermSpec(classes, spec);

  // Classes are in preference order: the first usable match wins; a match in an
  // unusable class is kept only to say why when nothing usable matches.
  let unavailable: ResolvedEvent | undefined;
  const search = (lookup: (cls: EventClassInfo) => EventDef | undefined): ResolvedEvent | undefined => {
    for (const cls of classes) {
      const event = lookup(cls);
      if (!event) continue;
      if (cls.available) return { cls, event };
      unavailable ??= { cls, event };
    }
    return undefined;
  };
  const hit =
    search((cls) => cls.findEvent(spec, false)) ??
    search((cls) => cls.findEvent(spec, true)) ??
    search((cls) => {
      const rest = stripClassPrefix(spec, cls.name);
      return rest === undefined ? undefined : (cls.findEvent(rest, false) ?? cls.findEvent(rest, true));
    });
  if (hit) return hit;

  if (unavailable) throw notAvailable(unavailable.cls, `event "${spec}"`);
  for (const cls of classes) {
    const errno = cls.rejection(spec);
    if (errno) throw new PmcError('ENOENT', `event "${spec}" of class ${cls.name} is not supported here: perf_event_open failed with ${errno}`);
  }
  const owner = classes.find((c) => c.ownsName?.(spec) && !c.available);
  if (owner) throw notAvailable(owner, `${owner.family.toLowerCase()} "${spec}"`);
  throw unknownEvent(classes, spec);
}

/** `SOFT-page-faults` -> `page-faults` for class SOFT (any of - _ . space after the class name). */
function stripClassPrefix(spec: string, className: string): string | undefined {
  if (spec.length <= className.length + 1) return undefined;
  if (spec.slice(0, className.length).toLowerCase() !== className.toLowerCase()) return undefined;
  if (!'-_. '.includes(spec[className.length]!)) return undefined;
  return spec.slice(className.length + 1);
}

function notAvailable(cls: EventClassInfo, what: string): PmcError {
  return new PmcError('ENOENT', `${what} is in class ${cls.name}, which is not available here: ${cls.unavailableReason ?? 'unknown reason'}`);
}

/** `pmu/term=value,.../`: the PMU by name (exact, then any case), which encodes the terms. */
function resolveTermSpec(classes: readonly EventClassInfo[], spec: string): ResolvedEvent {
  const m = TERM_SPEC_RE.exec(spec);
  if (!m) throw new PmcError('EINVAL', `event "${spec}": expected pmu/term=value,.../ (e.g. msr/tsc/)`);
  const pmuName = m[1]!;
  const pmus = classes.filter((c) => c.termSpec !== undefined);
  const cls = pmus.find((c) => c.name === pmuName) ?? pmus.find((c) => c.name.toLowerCase() === pmuName.toLowerCase());
  if (!cls) {
    const here = pmus.map((c) => c.name).join(', ') || 'none';
    throw new PmcError('ENOENT', `event "${spec}": no PMU named "${pmuName}" (PMUs here: ${here})`);
  }
  if (!cls.available) throw notAvailable(cls, `event "${spec}"`);
  return cls.termSpec!(m[2]!, spec);
}

function unknownEvent(classes: readonly EventClassInfo[], spec: string): PmcError {
  const suggestions = closeMatches(spec, classes);
  const hint = suggestions.length > 0 ? `; did you mean ${suggestions.join(', ')}?` : '; pmccontrol -L lists the events of each class';
  return new PmcError('ENOENT', `unknown event "${spec}"${hint}`);
}

/** Up to five listed names nearest to `spec` (the class's distance on normalized names, or containing it). */
function closeMatches(spec: string, classes: readonly EventClassInfo[]): string[] {
  const target = normalizeEventName(spec);
  const limit = Math.max(2, Math.floor(target.length / 4));
  const scored: [number, string][] = [];
  for (const cls of classes) {
    const distance = cls.distance?.bind(cls) ?? editDistance;
    for (const def of cls.events()) {
      // Suggest the spelling that came nearest (cycles for "cycels", not cpu-cycles).
      let best: [number, string] = [Infinity, def.name];
      for (const n of namesOf(def)) {
        const k = normalizeEventName(n);
        const d = Math.min(distance(target, k, limit), target.length >= 4 && k.includes(target) ? 1 : Infinity);
        if (d < best[0]) best = [d, n];
      }
      if (best[0] <= limit) scored.push(best);
    }
  }
  scored.sort((a, b) => a[0] - b[0] || a[1].localeCompare(b[1]));
  return [...new Set(scored.map(([, n]) => n))].slice(0, 5);
}
