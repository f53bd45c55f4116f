// The module's tables, what hwpmc keeps in globals: its owners (the owner
// hash), the processes its PMCs are attached to (the process hash), the row
// layout and row dispositions, the CPUs, tunables and statistics. Every op
// works on these; the lookups here fail with hwpmc's errors.
import type { ClassDep } from '../md/class-dep.js';
import { PmcError } from '../pmc-error.js';
import { type Caller, ownerKey } from './caller.js';
import { type DriverStats, newDriverStats } from './driver-stats.js';
import { Owner } from './owner.js';
import type { Pmc } from './pmc.js';
import { type PmcId, PmcState } from './pmc-types.js';
import { MAX_ROWS, RowLayout } from './row-layout.js';
import { RowTable } from './row-table.js';
import type { TargetProcess } from './target-process.js';
import type { Tunables } from './tunables.js';

export class ModuleTables {
  readonly stats: DriverStats = newDriverStats();
  readonly layout: RowLayout;
  readonly rows: RowTable;
  readonly owners = new Map<number, Owner>();
  /** Target processes by pid: each holds one PMC per row. */
  readonly processes = new Map<number, TargetProcess>();
  private readonly active: Set<number>;

  constructor(
    readonly classes: readonly ClassDep[],
    readonly tunables: Tunables,
    /** CPUs that exist (pmc_cpu_max) and those that are online (pmc_cpu_is_active). */
    readonly ncpu: number,
    activeCpus: number[],
  ) {
    this.layout = new RowLayout(classes);
    this.rows = new RowTable(MAX_ROWS, ncpu);
    this.active = new Set(activeCpus);
  }

  isCpuActive(cpu: number): boolean {
    return this.active.has(cpu);
  }

  checkCpu(cpu: number): void {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= this.ncpu) throw new PmcError('EINVAL', `CPU ${cpu} is out of range 0-${this.ncpu - 1}`);
    if (!this.isCpuActive(cpu)) throw new PmcError('ENXIO', `CPU ${cpu} is not online`);
  }

  /** pmc_find_pmc(): the caller's PMC with this id. */
  findPmc(caller: Caller, id: PmcId): Pmc {
    const owner = this.owners.get(ownerKey(caller));
    if (!owner) throw new PmcError('ESRCH', `process ${caller.pid} owns no PMCs`);
    const pmc = owner.pmcs.get(id);
    if (pmc) return pmc;
    throw new PmcError('EINVAL', `no PMC with id 0x${id.toString(16)} belongs to process ${caller.pid}`);
  }

  /** The caller's owner, made when it has none. */
  ownerOf(caller: Caller): Owner {
    let owner = this.owners.get(ownerKey(caller));
    if (!owner) {
      owner = new Owner(caller);
      this.owners.set(owner.key, owner);
    }
    return owner;
  }

  /** pmc_maybe_remove_owner(): an owner with nothing left is forgotten. */
  maybeRemoveOwner(owner: Owner): void {
    if (owner.pmcs.size === 0 && owner.listeners.size === 0 && !owner.log) this.owners.delete(owner.key);
  }

  /** PMCs whose rings need draining: running samplers, and counters logging context switches. */
  *runningSamplers(): Iterable<Pmc> {
    for (const o of this.owners.values()) {
      for (const p of o.pmcs.values()) if (p.state === PmcState.RUNNING && (p.isSampling || p.request.contextSwitchValues)) yield p;
    }
  }
}
