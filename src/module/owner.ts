// An owner (hwpmc's pmc_owner): the process that allocated PMCs, with its
// PMCs, its log, and the channel on which the module signals it.
import { type Caller, ownerKey } from './caller.js';
import type { OwnerLog } from './owner-log.js';
import type { Pmc } from './pmc.js';
import type { PmcId } from './pmc-types.js';

/** What the module tells an owner out of band (hwpmc sends signals). */
export interface OwnerSignal {
  /**
   * SIGIO: a PMC lost all its targets, or the log could not be written. SIGBUS: the module is
   * gone (hwpmc's unload signals its owners so; pmcd's client says it when pmcd's connection closes).
   */
  signal: 'SIGIO' | 'SIGBUS';
  reason: string;
  pmcId?: number;
}

export class Owner {
  readonly pmcs = new Map<PmcId, Pmc>();
  /** System sampling PMCs running (po_sscount). */
  ssCount = 0;
  readonly listeners = new Set<(s: OwnerSignal) => void>();
  /** The owner's log, when configured (PMC_PO_OWNS_LOGFILE). */
  log?: OwnerLog;
  /** Ops this owner made, and those that failed (pmccontrol -s, per owner). */
  ops = 0;
  opErrors = 0;
  /** The module's key for this owner (its pmcd connection, or its pid). */
  readonly key: number;

  constructor(readonly caller: Caller) {
    this.key = ownerKey(caller);
  }

  get pid(): number {
    return this.caller.pid;
  }

  signal(s: OwnerSignal): void {
    for (const l of this.listeners) l(s);
  }
}
