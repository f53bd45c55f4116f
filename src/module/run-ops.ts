// PMCSTART, PMCSTOP, PMCRW, PMCSETCOUNT and PMCGETMSR: running a PMC and
// reading or writing its value. A process PMC's value is its saved value plus
// what each target's counters gained; starting one starts the exit reaper
// (Linux tells the module of no exit), starting a sampler starts the sample
// collector, and a stop first logs the exits and samples that came before it.
import { PmcError } from '../pmc-error.js';
import { type Caller, ownerKey } from './caller.js';
import { countOp } from './driver-stats.js';
import type { ExitReaper } from './exit-reaper.js';
import { logAllProcessMappings, logKernelMappings } from './mappings.js';
import type { AttachOps } from './attach-ops.js';
import type { ModuleTables } from './module-tables.js';
import type { Pmc } from './pmc.js';
import { isVirtualMode, type PmcId, PmcFlags, PmcMode, PmcState } from './pmc-types.js';
import type { SampleProcessor } from './sample-processor.js';

export class RunOps {
  /** Numbers each PMCREADMANY: counters read in one share their groups' reads. */
  private batches = 0;

  constructor(
    private readonly m: ModuleTables,
    private readonly samples: SampleProcessor,
    private readonly reaper: ExitReaper,
    private readonly targets: AttachOps,
  ) {}

  /** PMCSTART: a process PMC never attached counts its owner; one whose targets are all gone is ESRCH. */
  start(caller: Caller, id: PmcId): void {
    countOp(this.m.stats, () => {
      const pmc = this.m.findPmc(caller, id);
      if (pmc.state === PmcState.RUNNING) return;
      if (pmc.state !== PmcState.ALLOCATED && pmc.state !== PmcState.STOPPED) throw new PmcError('EINVAL', `PMC is ${PmcState[pmc.state]}`);
      if (pmc.flags & PmcFlags.NEEDS_LOGFILE && !pmc.owner.log) {
        throw new PmcError('EDOOFUS', 'this PMC needs a log file: configure one before starting it');
      }
      if (pmc.isSystem) {
        if (!this.m.isCpuActive(pmc.cpu)) throw new PmcError('ENXIO', `CPU ${pmc.cpu} is not online`);
        if (pmc.mode === PmcMode.SS) pmc.owner.ssCount++;
      } else if (pmc.targets.size === 0) {
        if (pmc.flags & PmcFlags.ATTACH_DONE) throw new PmcError('ESRCH', 'every target of this PMC is gone');
        this.targets.attachProcess(pmc, pmc.owner.pid);
      } else {
        // Exits since the PMC stopped count now (the exit poll runs only while PMCs run).
        this.reaper.settle(pmc);
        if (pmc.allTargetsGone()) throw new PmcError('ESRCH', 'every target of this PMC has exited');
      }
      if (pmc.isSampling && pmc.owner.log) {
        logKernelMappings(pmc.owner.log);
        if (pmc.mode === PmcMode.SS) logAllProcessMappings(pmc.owner.log);
      }
      for (const hw of pmc.counterSets()) hw.start();
      pmc.state = PmcState.RUNNING;
      if (!pmc.isSystem) this.reaper.ensureRunning();
      if (pmc.isSampling || pmc.request.contextSwitchValues) this.samples.ensureRunning();
    });
  }

  /** PMCSTOP. */
  stop(caller: Caller, id: PmcId): void {
    countOp(this.m.stats, () => {
      const pmc = this.m.findPmc(caller, id);
      if (pmc.state === PmcState.STOPPED) return;
      if (pmc.state !== PmcState.RUNNING) throw new PmcError('EINVAL', `PMC is ${PmcState[pmc.state]}`);
      this.stopPmc(pmc);
    });
  }

  /** Stop a running PMC; what it counted and sampled before goes to the log first. */
  stopPmc(pmc: Pmc): void {
    // Exits before the stop are logged before it, whatever the reaper's timer phase.
    if (!pmc.isSystem) this.reaper.settle(pmc);
    for (const hw of pmc.counterSets()) hw.stop();
    if (pmc.isSampling || pmc.request.contextSwitchValues) {
      this.samples.drainPmc(pmc, true);
      this.samples.flush();
    }
    if (pmc.mode === PmcMode.SS) pmc.owner.ssCount--;
    pmc.state = PmcState.STOPPED;
    if (!pmc.isSystem) this.reaper.pmcStopped();
  }

  /** PMCRW read: the hot path, kept to one lookup and the counter reads. */
  read(caller: Caller, id: PmcId): bigint {
    const pmc = this.m.owners.get(ownerKey(caller))?.pmcs.get(id);
    if (pmc === undefined || pmc.state < PmcState.ALLOCATED || pmc.state > PmcState.RUNNING) {
      return this.rw(caller, id, PmcFlags.OLDVALUE)!;
    }
    return countOp(this.m.stats, () => pmc.read());
  }

  /**
   * PMCREADMANY (tspmc's; hwpmc has none): PMCRW's read of several of the
   * caller's PMCs in one op, values in the order of `ids`. Counters that
   * share a perf group (counter-group.ts) are read with one read(2) of the
   * group for all of them. The op fails as PMCRW would on the first PMC
   * that cannot be read.
   */
  readMany(caller: Caller, ids: readonly PmcId[]): bigint[] {
    return countOp(this.m.stats, () => {
      const batch = ++this.batches;
      return ids.map((id) => this.rwPmc(caller, id).read(batch));
    });
  }

  /** PMCRW: read (PMC_F_OLDVALUE) and/or write (PMC_F_NEWVALUE); returns the old value when asked. */
  rw(caller: Caller, id: PmcId, flags: number, value = 0n): bigint | undefined {
    return countOp(this.m.stats, () => {
      if ((flags & (PmcFlags.OLDVALUE | PmcFlags.NEWVALUE)) === 0) throw new PmcError('EINVAL', 'PMCRW needs PMC_F_OLDVALUE or PMC_F_NEWVALUE');
      const pmc = this.rwPmc(caller, id);
      if (pmc.state === PmcState.RUNNING && flags & PmcFlags.NEWVALUE) throw new PmcError('EBUSY', 'a running PMC cannot be written; stop it first');
      const old = flags & PmcFlags.OLDVALUE ? pmc.read() : undefined;
      if (flags & PmcFlags.NEWVALUE) pmc.write(value);
      return old;
    });
  }

  /** A PMC PMCRW may read or write: the caller's, allocated, stopped or running, on an online CPU. */
  private rwPmc(caller: Caller, id: PmcId): Pmc {
    const pmc = this.m.findPmc(caller, id);
    if (pmc.state !== PmcState.ALLOCATED && pmc.state !== PmcState.STOPPED && pmc.state !== PmcState.RUNNING) {
      throw new PmcError('EINVAL', `PMC is ${PmcState[pmc.state]}`);
    }
    if (pmc.isSystem && !this.m.isCpuActive(pmc.cpu)) throw new PmcError('ENXIO', `CPU ${pmc.cpu} is not online`);
    return pmc;
  }

  /** PMCSETCOUNT: the reload count of a sampling PMC, the initial count of a counting one. */
  setCount(caller: Caller, id: PmcId, count: bigint): void {
    countOp(this.m.stats, () => {
      const pmc = this.m.findPmc(caller, id);
      if (pmc.state === PmcState.RUNNING) throw new PmcError('EBUSY', 'a running PMC cannot change its count; stop it first');
      if (count < 0n) throw new PmcError('EINVAL', `count ${count} is negative`);
      if (pmc.isSampling) {
        if (count === 0n) throw new PmcError('EINVAL', 'a sampling PMC needs a reload count above 0');
        pmc.reloadCount = count;
        pmc.request.reloadCount = count;
      } else {
        pmc.write(count);
      }
    });
  }

  /** PMCGETMSR: perf software events have no directly readable counter index. */
  getMsr(caller: Caller, id: PmcId): number {
    return countOp(this.m.stats, () => {
      const pmc = this.m.findPmc(caller, id);
      const only = [...pmc.targets.keys()];
      if (!isVirtualMode(pmc.mode) || pmc.flags & PmcFlags.DESCENDANTS) throw new PmcError('EINVAL', 'only a process-mode PMC without descendants has an MSR');
      if (only.length !== 1 || only[0] !== pmc.owner.pid) throw new PmcError('EINVAL', 'the PMC must be attached to its owner alone');
      throw new PmcError('ENOSYS', `class ${pmc.cls.name} has no user-readable counter (rdpmc)`);
    });
  }
}
