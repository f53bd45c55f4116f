// Event name matching shared by the classes: pmc_match_event_name's
// equivalence, an exact-and-loose index over a list, and the edit distance
// behind spelling suggestions.
import type { EventDef } from './event-class.js';

/** pmc_match_event_name's equivalence: case-insensitive, '-', '_', '.' and ' ' alike. */
export function normalizeEventName(name: string): string {
  return name.toLowerCase().replace(/[-_. ]/g, '-');
}

export function namesOf(def: EventDef): readonly string[] {
  return def.aliases ? [def.name, ...def.aliases] : [def.name];
}

/** Exact and loose indexes over a fixed event list; the first event with a name wins it. */
export class EventIndex {
  private readonly exact = new Map<string, EventDef>();
  private readonly loose = new Map<string, EventDef>();

  constructor(defs: readonly EventDef[]) {
    for (const def of defs) {
      for (const n of namesOf(def)) {
        if (!this.exact.has(n)) this.exact.set(n, def);
        const k = normalizeEventName(n);
        if (!this.loose.has(k)) this.loose.set(k, def);
      }
    }
  }

  find(name: string, loose: boolean): EventDef | undefined {
    return loose ? this.loose.get(normalizeEventName(name)) : this.exact.get(name);
  }
}

/** Levenshtein distance, or Infinity once it must exceed `limit`. */
export function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return Infinity;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      cur.push(v);
      if (v < rowMin) rowMin = v;
    }
    if (rowMin > limit) return Infinity;
    prev = cur;
  }
  return prev[b.length]! <= limit ? prev[b.length]! : Infinity;
}
