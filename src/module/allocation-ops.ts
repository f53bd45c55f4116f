// PMCALLOCATE and PMCRELEASE: a PMC descriptor on a row of its class. The
// request is checked as hwpmc checks it (mode, CPU, flags, the class's
// capabilities, privilege), then a row is found that the mode may use (row
// dispositions, row-table.ts) and the caller does not use already. A system
// PMC holds its row on its CPU and opens its counter at allocation; a release
// stops the PMC, detaches every target and frees the row.
import type { HwRequest } from '../md/class-dep.js';
import { PmcError } from '../pmc-error.js';
import { type Caller, isPmcPrivileged, KERNEL_MODE_REFUSED, kernelModeDenied, ownerKey } from './caller.js';
import { countOp } from './driver-stats.js';
import { logAllocation } from './log-ops.js';
import type { AttachOps } from './attach-ops.js';
import type { ModuleTables } from './module-tables.js';
import type { AllocateRequest } from './op-table.js';
import { Pmc } from './pmc.js';
import {
  ALLOCATE_FLAGS_ALLOWED,
  isSamplingMode,
  isSystemMode,
  isVirtualMode,
  makePmcId,
  PMC_CPU_ANY,
  PmcCaps,
  PmcFlags,
  type PmcId,
  PmcMode,
  PmcState,
} from './pmc-types.js';
import { MAX_ROWS } from './row-layout.js';
import type { RunOps } from './run-ops.js';

export class AllocationOps {
  constructor(
    private readonly m: ModuleTables,
    private readonly run: RunOps,
    private readonly targets: AttachOps,
  ) {}

  /** PMCALLOCATE. */
  allocate(caller: Caller, req: AllocateRequest): PmcId {
    return countOp(this.m.stats, () => this.allocatePmc(caller, req));
  }

  private allocatePmc(caller: Caller, req: AllocateRequest): PmcId {
    const m = this.m;
    const { mode, cpu } = req;
    if (!(mode in PmcMode) || typeof mode !== 'number') throw new PmcError('EINVAL', `mode ${String(mode)} is not SS, SC, TS or TC`);
    if (cpu !== PMC_CPU_ANY && (!Number.isInteger(cpu) || cpu < 0 || cpu >= m.ncpu)) {
      throw new PmcError('EINVAL', `CPU ${cpu} is out of range 0-${m.ncpu - 1}`);
    }
    if (isVirtualMode(mode) && cpu !== PMC_CPU_ANY) throw new PmcError('EINVAL', 'a process-mode PMC cannot name a CPU');
    if (isSystemMode(mode) && cpu === PMC_CPU_ANY) throw new PmcError('EINVAL', 'a system-mode PMC needs a CPU');
    if (isSystemMode(mode) && !m.isCpuActive(cpu)) throw new PmcError('ENXIO', `CPU ${cpu} is not online`);
    if (isSystemMode(mode)) {
      if (caller.jailed) throw new PmcError('EPERM', 'system-mode PMCs are not available inside another PID namespace');
      if (!m.tunables.unprivileged_syspmcs && !isPmcPrivileged(caller.creds)) {
        throw new PmcError('EPERM', 'system-mode PMCs need root or CAP_PERFMON (or the unprivileged_syspmcs tunable)');
      }
    }
    if ((req.flags & ~ALLOCATE_FLAGS_ALLOWED) !== 0) throw new PmcError('EINVAL', `unknown PMC flags 0x${(req.flags & ~ALLOCATE_FLAGS_ALLOWED).toString(16)}`);
    if (isSystemMode(mode) && req.flags & (PmcFlags.LOG_PROCCSW | PmcFlags.LOG_PROCEXIT)) {
      throw new PmcError('EINVAL', 'process logging flags are not allowed on system-mode PMCs');
    }
    let caps = req.caps;
    if (isSamplingMode(mode)) caps |= PmcCaps.INTERRUPT;
    const clsIndex = m.classes.findIndex((c) => c.classId === req.classId);
    if (clsIndex < 0) throw new PmcError('EINVAL', `no PMC class 0x${req.classId.toString(16)}`);
    const cls = m.classes[clsIndex];
    if (!cls.available) throw new PmcError('ENXIO', `class ${cls.name} is not available: ${cls.unavailableReason ?? 'unknown reason'}`);
    if ((cls.caps & caps) !== caps) throw new PmcError('EOPNOTSUPP', `class ${cls.name} lacks capabilities 0x${(caps & ~cls.caps).toString(16)}`);

    const bothOrNeither = (caps & (PmcCaps.USER | PmcCaps.SYSTEM)) === 0;
    let countKernel = bothOrNeither || (caps & PmcCaps.SYSTEM) !== 0;
    if (countKernel && kernelModeDenied(caller, m.tunables, cls.caps)) {
      // A PMC that asked for kernel mode is refused; one that named no mode counts user mode only.
      if (caps & PmcCaps.SYSTEM) throw new PmcError('EPERM', KERNEL_MODE_REFUSED);
      countKernel = false;
      caps |= PmcCaps.USER;
    }
    const request: HwRequest = {
      event: req.event,
      md: req.md,
      countUser: bothOrNeither || (caps & PmcCaps.USER) !== 0,
      countKernel,
      sampling: isSamplingMode(mode),
      reloadCount: req.count ?? 0n,
      frequency: req.frequency ?? false,
      callchain: (req.flags & PmcFlags.CALLCHAIN) !== 0,
      callchainDepth: m.tunables.callchaindepth,
      contextSwitchValues: !isSamplingMode(mode) && (req.flags & PmcFlags.LOG_PROCCSW) !== 0,
      processCounts: !isSamplingMode(mode) && (req.flags & (PmcFlags.LOG_PROCEXIT | PmcFlags.DESCENDANTS)) === (PmcFlags.LOG_PROCEXIT | PmcFlags.DESCENDANTS),
    };
    cls.validate(request);

    // Find a row of the class this owner may use in this mode (hwpmc scans every row; rows of other classes never match).
    const first = m.layout.firstRow(clsIndex);
    const end = first + cls.rows;
    if (end > MAX_ROWS) throw new PmcError('EINVAL', `class ${cls.name}'s rows end at ${end}; at most ${MAX_ROWS} fit a PMC id`);
    let row = -1;
    for (let r = first; r < end; r++) {
      if (!m.rows.canUse(r, mode)) continue;
      if (this.rowTakenByCaller(caller, r, isSystemMode(mode) ? cpu : PMC_CPU_ANY)) continue;
      if (isSystemMode(mode) && m.rows.holderOf(cpu, r)) continue;
      row = r;
      break;
    }
    if (row < 0) throw new PmcError('EINVAL', `no free ${cls.name} row for a ${PmcMode[mode]} PMC`);
    if (isSystemMode(mode) && !m.rows.isEnabled(cpu, row)) {
      throw new PmcError('EPERM', `row ${row} is disabled on CPU ${cpu}`);
    }

    const owner = m.ownerOf(caller);
    const id = makePmcId(cpu, mode, cls.classId, row);
    let flags = req.flags;
    if (flags & (PmcFlags.LOG_PROCEXIT | PmcFlags.LOG_PROCCSW)) flags |= PmcFlags.NEEDS_LOGFILE;
    if (mode === PmcMode.SS) flags |= PmcFlags.NEEDS_LOGFILE;
    const pmc = new Pmc(id, owner, cls, mode, row, cpu, caps, flags, request, cls.eventName(req.event, req.md));
    if (isSystemMode(mode)) {
      // System PMCs are configured at allocation: the counter exists (disabled) from now on.
      // The owner is the group scope, as for process PMCs (attach-ops.ts).
      pmc.cpuCounter = cls.openCpu(request, cpu, owner);
      m.rows.setHolder(cpu, row, pmc);
    }
    if (!isSamplingMode(mode) && req.count !== undefined) pmc.savedValue = req.count;
    pmc.state = PmcState.ALLOCATED;
    m.rows.mark(row, mode);
    owner.pmcs.set(id, pmc);
    if (owner.log) logAllocation(owner.log, pmc);
    return id;
  }

  /** pmc_can_allocate_rowindex(): the caller must not already use the row itself. */
  private rowTakenByCaller(caller: Caller, row: number, cpu: number): boolean {
    const owner = this.m.owners.get(ownerKey(caller));
    if (owner) {
      for (const p of owner.pmcs.values()) {
        if (p.row !== row) continue;
        if (!p.isSystem) return true;
        if (p.cpu === cpu) return true;
      }
    }
    // Nor be the target of a PMC at that row, or attaching to itself would fail later.
    return this.m.processes.get(caller.pid)?.pmcs.has(row) ?? false;
  }

  /** PMCRELEASE. */
  release(caller: Caller, id: PmcId): void {
    countOp(this.m.stats, () => {
      const pmc = this.m.findPmc(caller, id);
      this.releasePmc(pmc);
      this.m.maybeRemoveOwner(pmc.owner);
    });
  }

  /** pmc_release_pmc_descriptor(): stop, detach every target, free the row. */
  releasePmc(pmc: Pmc): void {
    if (pmc.state === PmcState.RUNNING) this.run.stopPmc(pmc);
    for (const pid of [...pmc.targets.keys()]) this.targets.detachOneProcess(pmc, pid, false);
    if (pmc.cpuCounter) {
      pmc.cpuCounter.close();
      pmc.cpuCounter = undefined;
      this.m.rows.setHolder(pmc.cpu, pmc.row, undefined);
    }
    this.m.rows.unmark(pmc.row, pmc.mode);
    pmc.state = PmcState.DELETED;
    pmc.owner.pmcs.delete(pmc.id);
  }
}
