// A PMC descriptor (hwpmc's struct pmc): what was allocated, by whom, on
// which row, in which state, and the hardware counters behind it.
import type { ClassDep, HwCounterSet, HwRequest } from '../md/class-dep.js';
import type { Credentials } from '../os/procfs.js';
import type { Owner } from './owner.js';
import type { PmcError } from '../pmc-error.js';
import { isSamplingMode, isSystemMode, type PmcId, type PmcMode, PmcState } from './pmc-types.js';
import type { TargetProcess } from './target-process.js';

/** One attached target of a virtual PMC. */
export interface PmcTarget {
  process: TargetProcess;
  hw: HwCounterSet;
  /** Raw count at the last write: the target contributes raw - baseline. */
  baseline: bigint;
  /** Seen gone; the counters stay open (they hold the final count, and inherited descendants may still count). */
  exited: boolean;
  /** The target's credentials when attached: an exec that changes them is checked again. */
  creds?: Credentials;
}

export class Pmc {
  state = PmcState.FREE;
  /** Sampling: events between samples (pm_reloadcount). */
  reloadCount: bigint;
  /**
   * The value a read starts from (pm_gv.pm_savedvalue for virtual PMCs,
   * pm_initial for system ones): set by writes, and by folding in the
   * counts of detached targets.
   */
  savedValue = 0n;
  readonly targets = new Map<number, PmcTarget>();
  /** The owner was told (SIGIO) that every target is gone; a new attach clears it. */
  toldTargetsGone = false;
  /** System mode: the counter on this PMC's CPU, opened at allocation. */
  cpuCounter?: HwCounterSet;
  cpuBaseline = 0n;

  constructor(
    readonly id: PmcId,
    readonly owner: Owner,
    readonly cls: ClassDep,
    readonly mode: PmcMode,
    readonly row: number,
    readonly cpu: number,
    readonly caps: number,
    public flags: number,
    readonly request: HwRequest,
    readonly eventName: string,
  ) {
    this.reloadCount = request.reloadCount;
  }

  get isSystem(): boolean {
    return isSystemMode(this.mode);
  }

  get isSampling(): boolean {
    return isSamplingMode(this.mode);
  }

  /**
   * A detached target whose final count could not be read: the saved value
   * misses it, so the PMC reads as this error until a write sets a new value.
   */
  lostCount?: PmcError;

  /** Current value: the saved value plus what every counter gained since it was last folded; `batch`: see HwCounterSet.read. */
  read(batch?: number): bigint {
    if (this.lostCount) throw this.lostCount;
    if (this.cpuCounter) return this.savedValue + (this.cpuCounter.read(batch) - this.cpuBaseline);
    // Every BigInt operation allocates: the common case (one target, never written) has none.
    let v = this.savedValue;
    for (const t of this.targets.values()) {
      const gained = t.baseline === 0n ? t.hw.read(batch) : t.hw.read(batch) - t.baseline;
      v = v === 0n ? gained : v + gained;
    }
    return v;
  }

  /** Make the current value `value` without touching the hardware. */
  write(value: bigint): void {
    this.savedValue = value;
    this.lostCount = undefined;
    if (this.cpuCounter) this.cpuBaseline = this.cpuCounter.read();
    for (const t of this.targets.values()) t.baseline = t.hw.read();
  }

  /** Every open counter set of this PMC. */
  *counterSets(): Iterable<HwCounterSet> {
    if (this.cpuCounter) yield this.cpuCounter;
    for (const t of this.targets.values()) yield t.hw;
  }

  /** Every target has exited and no descendant it counts is alive. */
  allTargetsGone(): boolean {
    for (const t of this.targets.values()) if (!t.exited || (t.hw.liveDescendants?.() ?? 0) > 0) return false;
    return true;
  }

  get fdCount(): number {
    let n = 0;
    for (const hw of this.counterSets()) n += hw.fdCount;
    return n;
  }
}

/** What a target contributed since the last write; a counter that can no longer be read throws (never a 0). */
export function finalCount(t: PmcTarget): bigint {
  return t.hw.read() - t.baseline;
}
