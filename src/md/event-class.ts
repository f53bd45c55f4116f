// What every event class answers, whatever perf family it stands for (libpmc's
// per-class descriptor, perf's struct perf_pmu). One file per family implements
// it (soft-events, hw-events, cache-events, tracepoint-class, pmu-class) and
// event-families.ts lists them; resolution (event-resolve.ts) asks only this.
//
// Classes are cheap to make: whatever needs the kernel, sysfs or tracefs is
// looked up on first use, so a run that counts cpu-clock never lists tracepoints.

export interface PerfConfig {
  type: number;
  config: bigint;
  config1?: bigint;
  config2?: bigint;
}

/** Config words an event carries to the module when its code alone cannot name them (PMU term specs). */
export type MdConfig = Omit<PerfConfig, 'type'>;

export interface EventDef {
  name: string;
  /** Class-local and stable within a run: the perf config (SOFT, HW, CACHE), the tracepoint id, a PMU alias index. */
  code: number;
  perf: PerfConfig;
  description?: string;
  /** Other names perf accepts for the same event (faults for page-faults). */
  aliases?: readonly string[];
}

/** A name resolved: its class, its event, and the config the module must be given for it, if any. */
export interface ResolvedEvent {
  cls: EventClassInfo;
  event: EventDef;
  md?: MdConfig;
}

export interface EventClassInfo {
  /** The perf family: SOFT, HW, CACHE, TRACEPOINT, PMU. */
  readonly family: string;
  /** 'SOFT', 'HW', 'CACHE', 'TRACEPOINT', or the PMU's sysfs name, e.g. 'msr'. */
  readonly name: string;
  readonly perfType: number;
  /** PmcClass number of the module's class for it. */
  readonly classId: number;
  /** Rows (counters) the class gives the module; 0 when unavailable. */
  readonly rows: number;
  readonly available: boolean;
  readonly unavailableReason?: string;
  /** Probed: the kernel accepted a sampling event (sample_period set) of this class. */
  readonly canSample: boolean;
  /**
   * False when the class refuses exclude_user/exclude_kernel (PMUs like msr count
   * every mode at once): open its events with no exclude_* bits.
   */
  readonly modeFilter: boolean;
  /** False for PMUs that only count per CPU (uncore): system mode on `cpumask` CPUs. */
  readonly perProcess: boolean;
  /** The CPUs a per-CPU PMU counts on (its sysfs cpumask), when it has one. */
  readonly cpumask?: readonly number[];
  /** Every event, for listings and spelling suggestions; may be slow for big classes (cached). */
  events(): EventDef[];
  /**
   * One event by exact name, or with `loose` by pmc_match_event_name rules. An
   * unavailable class still finds its events, so that resolution can say why
   * they cannot be used; an available one finds only those the kernel accepts.
   */
  findEvent(name: string, loose: boolean): EventDef | undefined;
  /** The errno the kernel refused this event of the (available) class with, if it did. */
  rejection(name: string): string | undefined;
  /** The name of event `code` (with `md`: of that raw configuration); undefined if unknown. */
  eventName(code: number, md?: Partial<MdConfig>): string | undefined;
  /** The perf type and config of event `code`; undefined if the class has no such event. */
  perfConfig(code: number): PerfConfig | undefined;
  /** Whether `name` is written in this class's own syntax (a tracepoint's subsystem:event). */
  ownsName?(name: string): boolean;
  /** How far a misspelling is from a listed name (normalized), or Infinity beyond `limit`; default: edit distance. */
  distance?(target: string, name: string, limit: number): number;
  /** PMUs: a perf term list (the inside of pmu/term=value,.../); `spec` names the whole in errors. */
  termSpec?(terms: string, spec: string): ResolvedEvent;
}
