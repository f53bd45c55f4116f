// A class over a fixed list of perf's generic events (SOFT, HW, CACHE): the
// list is the family's table, and the kernel is asked about each event the
// first time something needs to know, never all of them at start-up.
import type { EventClassInfo, EventDef, PerfConfig } from './event-class.js';
import { EventIndex } from './event-names.js';
import { openFailure, type Opener, PROBE_PERIOD, tryOpen } from './event-probe.js';

/** One row of a generic event table (include/uapi/linux/perf_event.h ids, perf's names). */
export interface GenericEvent {
  name: string;
  config: number;
  description: string;
  aliases?: string[];
}

export interface ListedFamily {
  family: string;
  perfType: number;
  classId: number;
  /** Rows when available. */
  rows: number;
  table: readonly GenericEvent[];
  /** What ENOENT means for the whole class (e.g. "no hardware PMU"). */
  noDevice?: string;
}

/**
 * The class is available when the kernel accepts at least one of its events;
 * an unavailable class still lists and finds its events (so that a lookup can
 * say why it cannot be used), an available one only those the kernel accepts.
 */
export class ListedClass implements EventClassInfo {
  readonly family: string;
  readonly name: string;
  readonly perfType: number;
  readonly classId: number;
  readonly modeFilter = true;
  readonly perProcess = true;
  private readonly table: EventDef[];
  /** The kernel's answer per event: undefined = accepted, else the errno name. */
  private readonly verdicts = new Map<EventDef, string | undefined>();
  private index?: EventIndex;
  private sampleVerdict?: boolean;
  private accepted?: EventDef[];

  constructor(
    private readonly spec: ListedFamily,
    private readonly open: Opener = tryOpen,
  ) {
    this.family = spec.family;
    this.name = spec.family;
    this.perfType = spec.perfType;
    this.classId = spec.classId;
    this.table = spec.table.map((g) => {
      const def: EventDef = { name: g.name, code: g.config, perf: { type: spec.perfType, config: BigInt(g.config) }, description: g.description };
      if (g.aliases) def.aliases = g.aliases;
      return def;
    });
  }

  private verdict(def: EventDef): string | undefined {
    if (!this.verdicts.has(def)) this.verdicts.set(def, this.open({ perf: def.perf, userOnly: true }));
    return this.verdicts.get(def);
  }

  /** The first event the kernel accepts, in table order (cpu-clock for SOFT). */
  private get firstAccepted(): EventDef | undefined {
    return this.table.find((d) => this.verdict(d) === undefined);
  }

  get available(): boolean {
    return this.firstAccepted !== undefined;
  }

  get unavailableReason(): string | undefined {
    if (this.available) return undefined;
    const first = this.table[0];
    return first ? openFailure(first.name, this.verdict(first)!, this.spec.noDevice) : 'no events';
  }

  get rows(): number {
    return this.available ? this.spec.rows : 0;
  }

  /** The first accepted event stands for the class: a family's events sample through the same interrupt or timer. */
  get canSample(): boolean {
    const first = this.firstAccepted;
    this.sampleVerdict ??= first !== undefined && this.open({ perf: first.perf, userOnly: true, sample: PROBE_PERIOD }) === undefined;
    return this.sampleVerdict;
  }

  events(): EventDef[] {
    if (!this.available) return this.table;
    this.accepted ??= this.table.filter((d) => this.verdict(d) === undefined);
    return this.accepted;
  }

  /** `def` if events() lists it; asks the kernel about this one event only. */
  private listed(def: EventDef | undefined): EventDef | undefined {
    return def !== undefined && (!this.available || this.verdict(def) === undefined) ? def : undefined;
  }

  findEvent(name: string, loose: boolean): EventDef | undefined {
    this.index ??= new EventIndex(this.table);
    return this.listed(this.index.find(name, loose));
  }

  rejection(name: string): string | undefined {
    const def = this.table.find((d) => d.name === name);
    return def && this.available ? this.verdict(def) : undefined;
  }

  eventName(code: number): string | undefined {
    return this.listed(this.table.find((d) => d.code === code))?.name;
  }

  perfConfig(code: number): PerfConfig | undefined {
    return this.listed(this.table.find((d) => d.code === code))?.perf;
  }
}
