// The ops about the module rather than one PMC: its version, CPUs, classes
// and rows (GETCPUINFO, GETPMCINFO, GETDYNEVENTINFO), statistics
// (GETDRIVERSTATS, GETOWNERSTATS), what an event specifier means here
// (RESOLVEEVENT), and PMCADMIN, which enables or disables a row on a CPU and
// keeps that across module loads (admin-state.ts).
import type { HwRequest } from '../md/class-dep.js';
import { PmcError } from '../pmc-error.js';
import { type Caller, isPmcPrivileged, KERNEL_MODE_REFUSED, kernelModeDenied } from './caller.js';
import { readAdminState, writeAdminState } from './admin-state.js';
import { countOp, type DriverStats } from './driver-stats.js';
import type { ModuleTables } from './module-tables.js';
import type { CpuInfo, OwnerStats, PmcInfo, ResolvedEventInfo, RowHolder } from './op-table.js';
import type { Pmc } from './pmc.js';
import { modeName, PMC_CPU_GENERIC, PMC_VERSION, PmcCaps, PmcState, RowDisposition } from './pmc-types.js';
import { MAX_ROWS } from './row-layout.js';

/** An event specifier resolved by the machine's catalog (md): its class name, event code, MD configuration. */
export interface SpecResolution {
  className: string;
  event: number;
  eventName: string;
  md?: HwRequest['md'];
}

export class AdminOps {
  constructor(
    private readonly m: ModuleTables,
    /** Where PMCADMIN row states persist (none: they live as long as the module). */
    private readonly adminStatePath: string | undefined,
    /** Event specifier resolution (RESOLVEEVENT); without it the module resolves exact event names of its classes. */
    private readonly resolveSpec: ((spec: string) => SpecResolution) | undefined,
  ) {
    if (adminStatePath) {
      for (const [cpu, row] of readAdminState(adminStatePath).disabled) {
        if (cpu < m.ncpu && row < MAX_ROWS) m.rows.setEnabled(cpu, row, false);
      }
    }
  }

  /** GETMODULEVERSION: clients newer than the module are refused; their major and minor must not exceed ours. */
  getModuleVersion(clientVersion: number = PMC_VERSION): number {
    return countOp(this.m.stats, () => {
      if ((clientVersion & 0xffff0000) >>> 0 > (PMC_VERSION & 0xffff0000) >>> 0) {
        throw new PmcError('EPROGMISMATCH', `client ABI 0x${clientVersion.toString(16)} is newer than module 0x${PMC_VERSION.toString(16)}`);
      }
      return PMC_VERSION;
    });
  }

  getCpuInfo(): CpuInfo {
    const { m } = this;
    return countOp(m.stats, () => ({
      cputype: PMC_CPU_GENERIC,
      ncpu: m.ncpu,
      npmc: m.layout.npmc,
      nclass: m.classes.length,
      classes: m.classes.map((c, i) => ({
        classId: c.classId,
        name: c.name,
        caps: c.caps,
        width: c.width,
        num: c.rows,
        firstRow: m.layout.firstRow(i),
        available: c.available,
        unavailableReason: c.unavailableReason,
      })),
    }));
  }

  getDriverStats(): DriverStats {
    return countOp(this.m.stats, () => {
      for (const o of this.m.owners.values()) o.log?.accountBuffers();
      return { ...this.m.stats };
    });
  }

  getDynEventInfo(classId: number): { name: string; code: number }[] {
    return countOp(this.m.stats, () => {
      const cls = this.m.classes.find((c) => c.classId === classId);
      if (!cls) throw new PmcError('EINVAL', `no PMC class 0x${classId.toString(16)}`);
      return cls.events().map((e) => ({ name: e.name, code: e.code }));
    });
  }

  /** GETPMCINFO: every row on one CPU, with the PMCs that hold it. */
  getPmcInfo(cpu: number): PmcInfo[] {
    const { m } = this;
    return countOp(m.stats, () => {
      m.checkCpu(cpu);
      const out: PmcInfo[] = [];
      for (let row = 0; row < m.layout.npmc; row++) {
        const { cls, local } = m.layout.classOfRow(row);
        const system = m.rows.holderOf(cpu, row);
        const holders = (system ? [system] : this.virtualPmcsOnRow(row)).map(describeHolder);
        out.push({
          name: `${cls.name}${local}`,
          classId: cls.classId,
          enabled: m.rows.isEnabled(cpu, row),
          rowDisposition: m.rows.disposition(row),
          ...(holders[0] ?? { ownerPid: -1 }),
          holders,
        });
      }
      return out;
    });
  }

  /** Virtual PMCs follow their threads onto every CPU, so they are shown on each. */
  private virtualPmcsOnRow(row: number): Pmc[] {
    const out: Pmc[] = [];
    for (const o of this.m.owners.values()) for (const p of o.pmcs.values()) if (p.row === row && !p.isSystem) out.push(p);
    return out;
  }

  /**
   * RESOLVEEVENT (tspmc): what an event specifier means on this machine. An
   * unqualified PMC counts user and kernel mode; a caller the kernel forbids
   * kernel profiling (perf_event_paranoid >= 2) gets user mode only, as perf does.
   */
  resolveEvent(caller: Caller, spec: string): ResolvedEventInfo {
    return countOp(this.m.stats, () => {
      const r = this.resolveSpec ? this.resolveSpec(spec) : this.resolveEventName(spec);
      const cls = this.m.classes.find((c) => c.name === r.className);
      if (!cls) throw new PmcError('ENOENT', `event "${spec}" is in class ${r.className}, which the module does not have`);
      const userOnly = kernelModeDenied(caller, this.m.tunables, cls.caps);
      return {
        classId: cls.classId,
        className: cls.name,
        event: r.event,
        eventName: r.eventName,
        md: r.md,
        caps: userOnly ? PmcCaps.USER : 0,
        userOnly: userOnly && caller.session !== undefined ? `user mode only: ${KERNEL_MODE_REFUSED}` : undefined,
      };
    });
  }

  /** Without the machine's catalog: an exact event name of an available class. */
  private resolveEventName(spec: string): SpecResolution {
    for (const cls of this.m.classes) {
      const e = cls.available ? cls.events().find((ev) => ev.name === spec) : undefined;
      if (e) return { className: cls.name, event: e.code, eventName: e.name };
    }
    throw new PmcError('ENOENT', `no class has an event named "${spec}"`);
  }

  /** GETOWNERSTATS (tspmc): every owner that holds PMCs or a log, with its PMCs, ops and log. */
  getOwnerStats(): OwnerStats[] {
    return countOp(this.m.stats, () =>
      [...this.m.owners.values()].filter((o) => o.pmcs.size > 0 || o.log).map((o) => {
        const pmcs = { SS: 0, SC: 0, TS: 0, TC: 0 };
        let running = 0;
        for (const p of o.pmcs.values()) {
          pmcs[modeName(p.mode)]++;
          if (p.state === PmcState.RUNNING) running++;
        }
        const log = o.log && { written: o.log.writer.bytesWritten, bufferRequestsFailed: o.log.writer.bufferRequestsFailed };
        return { pid: o.pid, uid: o.caller.creds.euid, session: o.caller.session, pmcs, running, ops: o.ops, opErrors: o.opErrors, log };
      }),
    );
  }

  /** PMCADMIN: enable or disable one row on one CPU (privileged). */
  pmcAdmin(caller: Caller, cpu: number, row: number, state: PmcState.DISABLED | PmcState.FREE): void {
    const { m } = this;
    countOp(m.stats, () => {
      if (!isPmcPrivileged(caller.creds)) throw new PmcError('EPERM', 'enabling or disabling PMCs needs root or CAP_PERFMON');
      m.checkCpu(cpu);
      if (state !== PmcState.DISABLED && state !== PmcState.FREE) throw new PmcError('EINVAL', `state ${state} is neither DISABLED nor FREE`);
      const npmc = m.layout.npmc;
      if (!Number.isInteger(row) || row < 0 || row >= npmc) throw new PmcError('EINVAL', `PMC row ${row} is out of range 0-${npmc - 1}`);
      // A row serving process-virtual PMCs runs on every CPU: it cannot be disabled on one.
      if (state === PmcState.DISABLED && m.rows.disposition(row) === RowDisposition.THREAD) {
        throw new PmcError('EBUSY', `row ${row} is in use by process-mode PMCs`);
      }
      if (m.rows.holderOf(cpu, row)) throw new PmcError('EBUSY', `row ${row} on CPU ${cpu} is in use by a system-mode PMC`);
      m.rows.setEnabled(cpu, row, state === PmcState.FREE);
      if (this.adminStatePath) writeAdminState(this.adminStatePath, { disabled: m.rows.disabledRows() });
    });
  }
}

function describeHolder(p: Pmc): RowHolder {
  return {
    ownerPid: p.owner.pid,
    mode: p.mode,
    event: p.request.event,
    eventName: p.eventName,
    flags: p.flags,
    reloadCount: p.isSampling ? p.reloadCount : undefined,
  };
}

