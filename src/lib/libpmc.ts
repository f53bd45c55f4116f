// libpmc (pmc(3)) in TypeScript: event specifiers in, PMC ids out, and the
// operations on them. Names follow pmc(3) without the pmc_ prefix.
import type { DriverStats } from '../module/driver-stats.js';
import type { LogSink } from '../log/log-writer.js';
import type { ClassInfo, CpuInfo, OwnerStats, PmcInfo } from '../module/op-table.js';
import {
  DEFAULT_SAMPLE_COUNT,
  isSamplingMode,
  type ModeName,
  PMC_CPU_ANY,
  PMC_VERSION,
  PMC_VERSION_MAJOR_MASK,
  PmcCaps,
  PmcFlags,
  type PmcId,
  PmcMode,
  PmcOp,
  pmcIdToClass,
  PmcState,
} from '../module/pmc-types.js';
import { PmcError } from '../pmc-error.js';
import { parseEventSpec } from './event-spec.js';
import { LogPump } from './log-pump.js';
import type { ModuleClient } from './module-client.js';
import { openModuleClient } from './open-client.js';

export interface AllocateOptions {
  /** System modes: the CPU to count or sample on. */
  cpu?: number;
  /** Count or sample the target's descendants too (PMC_F_DESCENDANTS). */
  descendants?: boolean;
  /** Sampling: record call chains (default on, as pmcstat). */
  callchain?: boolean;
  /** Sampling: also record user call chains of samples taken in the kernel (pmcstat -U). */
  userCallchain?: boolean;
  logProcExit?: boolean;
  logProcCsw?: boolean;
  /** Initial count (counting) or events per sample (sampling; default 65536). */
  count?: bigint;
  /** Sampling: `count` is a frequency in samples per second instead. */
  frequency?: boolean;
}

/** What libpmc remembers of an allocated PMC. */
export interface AllocatedPmc {
  id: PmcId;
  spec: string;
  eventName: string;
  mode: PmcMode;
  cpu: number;
  /** Why the PMC counts user mode only though no mode was named (pmcd's policy), when it does. */
  userOnly?: string;
}

export class Libpmc {
  private readonly allocated = new Map<PmcId, AllocatedPmc>();
  /** A stream given as the log: the pipe the module writes into it through. */
  private logPump?: LogPump;
  private cpuInfoAsked?: Promise<CpuInfo>;

  private constructor(readonly client: ModuleClient) {}

  /**
   * pmc_init(): check the module's ABI. The classes (GETCPUINFO) are asked
   * for when first needed: their row layout probes every class of the
   * machine, which a program that counts one software event never uses.
   */
  static async init(client?: ModuleClient): Promise<Libpmc> {
    const c = client ?? (await openModuleClient());
    try {
      const version = await c.call(PmcOp.GETMODULEVERSION, { version: PMC_VERSION });
      if ((version & PMC_VERSION_MAJOR_MASK) >>> 0 !== (PMC_VERSION & PMC_VERSION_MAJOR_MASK) >>> 0) {
        throw new PmcError('EPROGMISMATCH', `module ABI 0x${version.toString(16)} does not match libpmc 0x${PMC_VERSION.toString(16)}`);
      }
      return new Libpmc(c);
    } catch (e) {
      // A client opened here is closed here (its pmcd connection would keep the program alive).
      if (!client) await c.close();
      throw e;
    }
  }

  /** GETCPUINFO, asked once: the CPUs, and every class with its rows. */
  cpuInfo(): Promise<CpuInfo> {
    this.cpuInfoAsked ??= this.client.call(PmcOp.GETCPUINFO, {}).catch((e: unknown) => {
      this.cpuInfoAsked = undefined;
      throw e;
    });
    return this.cpuInfoAsked;
  }

  async ncpu(): Promise<number> {
    return (await this.cpuInfo()).ncpu;
  }
  async npmc(): Promise<number> {
    return (await this.cpuInfo()).npmc;
  }

  /**
   * pmc_allocate(): a PMC for `spec` in `mode`. The module resolves the event
   * (where the machine is) and says which modes an unqualified specifier
   * counts for this caller: user and kernel, or user only where the kernel
   * forbids this caller kernel profiling, as perf does.
   */
  async allocate(spec: string, mode: PmcMode | ModeName, options: AllocateOptions = {}): Promise<PmcId> {
    const m = typeof mode === 'string' ? PmcMode[mode] : mode;
    if (m === undefined) throw new PmcError('EINVAL', `mode "${String(mode)}" is not SS, SC, TS or TC`);
    const parsed = parseEventSpec(spec);
    const event = await this.client.call(PmcOp.RESOLVEEVENT, { spec: parsed.event });
    const caps = (parsed.usr ? PmcCaps.USER : 0) | (parsed.os ? PmcCaps.SYSTEM : 0) || event.caps;
    const sampling = isSamplingMode(m);
    let flags = 0;
    if (options.descendants) flags |= PmcFlags.DESCENDANTS;
    if (sampling && (options.callchain ?? true)) flags |= PmcFlags.CALLCHAIN;
    if (sampling && options.userCallchain) flags |= PmcFlags.USERCALLCHAIN;
    if (options.logProcExit) flags |= PmcFlags.LOG_PROCEXIT;
    if (options.logProcCsw) flags |= PmcFlags.LOG_PROCCSW;
    const cpu = options.cpu ?? PMC_CPU_ANY;
    const id = await this.client.call(PmcOp.PMCALLOCATE, {
      classId: event.classId,
      event: event.event,
      mode: m,
      cpu,
      caps,
      flags,
      count: options.count ?? (sampling ? BigInt(DEFAULT_SAMPLE_COUNT) : undefined),
      frequency: options.frequency,
      md: event.md,
    });
    const pmc: AllocatedPmc = { id, spec: parsed.text, eventName: event.eventName, mode: m, cpu };
    if (event.userOnly && !parsed.usr && !parsed.os) pmc.userOnly = event.userOnly;
    this.allocated.set(id, pmc);
    return id;
  }

  /** What this libpmc allocated under `id`. */
  describe(id: PmcId): AllocatedPmc | undefined {
    return this.allocated.get(id);
  }

  attach(id: PmcId, pid: number): Promise<void> {
    return this.client.call(PmcOp.PMCATTACH, { id, pid });
  }
  detach(id: PmcId, pid: number): Promise<void> {
    return this.client.call(PmcOp.PMCDETACH, { id, pid });
  }
  start(id: PmcId): Promise<void> {
    return this.client.call(PmcOp.PMCSTART, { id });
  }
  stop(id: PmcId): Promise<void> {
    return this.client.call(PmcOp.PMCSTOP, { id });
  }
  /** pmc_read(): the current value (PMCRW with OLDVALUE always returns one); the client's promise itself, not one more around it. */
  read(id: PmcId): Promise<bigint> {
    return this.client.call(PmcOp.PMCRW, { id, flags: PmcFlags.OLDVALUE }) as Promise<bigint>;
  }
  /**
   * The values of several PMCs, in the order of `ids`, read in one op
   * (PMCREADMANY, tspmc's): counting PMCs of software events on the same
   * thread or CPU are read with one read(2) for all. Fails as read() would
   * on the first PMC that cannot be read.
   */
  readMany(ids: PmcId[]): Promise<bigint[]> {
    return this.client.call(PmcOp.PMCREADMANY, { ids });
  }
  /** pmc_write(): set the value of a stopped PMC. */
  async write(id: PmcId, value: bigint): Promise<void> {
    await this.client.call(PmcOp.PMCRW, { id, flags: PmcFlags.NEWVALUE, value });
  }
  /** pmc_rw(): write a new value and return the old one. */
  async rw(id: PmcId, value: bigint): Promise<bigint> {
    return (await this.client.call(PmcOp.PMCRW, { id, flags: PmcFlags.NEWVALUE | PmcFlags.OLDVALUE, value }))!;
  }
  /** pmc_set(): reload count (sampling) or initial count (counting). */
  setCount(id: PmcId, count: bigint): Promise<void> {
    return this.client.call(PmcOp.PMCSETCOUNT, { id, count });
  }
  async release(id: PmcId): Promise<void> {
    await this.client.call(PmcOp.PMCRELEASE, { id });
    this.allocated.delete(id);
  }
  getMsr(id: PmcId): Promise<number> {
    return this.client.call(PmcOp.PMCGETMSR, { id });
  }

  /** pmc_capabilities() and pmc_width(): from the class of the id. */
  async capabilities(id: PmcId): Promise<number> {
    return (await this.classOfId(id)).caps;
  }
  async width(id: PmcId): Promise<number> {
    return (await this.classOfId(id)).width;
  }
  private async classOfId(id: PmcId): Promise<CpuInfo['classes'][number]> {
    const c = (await this.cpuInfo()).classes.find((k) => k.classId === pmcIdToClass(id));
    if (!c) throw new PmcError('EINVAL', `PMC id 0x${id.toString(16)} names no class`);
    return c;
  }

  pmcInfo(cpu: number): Promise<PmcInfo[]> {
    return this.client.call(PmcOp.GETPMCINFO, { cpu });
  }
  driverStats(): Promise<DriverStats> {
    return this.client.call(PmcOp.GETDRIVERSTATS, {});
  }
  /** Every owner of the module with its PMCs, ops and log (tspmc; pmccontrol -s). */
  ownerStats(): Promise<OwnerStats[]> {
    return this.client.call(PmcOp.GETOWNERSTATS, {});
  }
  /** pmc_enable() / pmc_disable(): PMCADMIN on one row of one CPU. */
  enable(cpu: number, row: number): Promise<void> {
    return this.client.call(PmcOp.PMCADMIN, { cpu, row, state: PmcState.FREE });
  }
  disable(cpu: number, row: number): Promise<void> {
    return this.client.call(PmcOp.PMCADMIN, { cpu, row, state: PmcState.DISABLED });
  }
  /** pmc_event_names_of_class(). */
  async eventNamesOfClass(classId: number): Promise<string[]> {
    return (await this.client.call(PmcOp.GETDYNEVENTINFO, { classId })).map((e) => e.name);
  }
  /** The module's classes, with availability and reasons. */
  async eventClasses(): Promise<readonly ClassInfo[]> {
    return (await this.cpuInfo()).classes;
  }

  /**
   * pmc_configure_logfile(): log to a file descriptor or a stream; null ends
   * the log. The module writes only file descriptors: a stream is fed from a
   * pipe (LogPump) whose write end the module gets.
   */
  async configureLogfile(sink: LogSink | null): Promise<void> {
    if (sink === null) {
      await this.client.call(PmcOp.CONFIGURELOG, { fd: -1 });
      return this.endPump();
    }
    if (typeof sink === 'number') return this.client.call(PmcOp.CONFIGURELOG, { fd: sink });
    const pump = new LogPump(sink);
    try {
      await this.client.call(PmcOp.CONFIGURELOG, { fd: pump.fd });
    } catch (e) {
      await pump.finish();
      throw e;
    }
    this.logPump = pump;
  }
  /** pmc_flush_logfile(): write out what is buffered; rejects with a pending write error. */
  async flushLogfile(): Promise<void> {
    const { written } = await this.client.call(PmcOp.FLUSHLOG, {});
    await this.logPump?.deliveredUpTo(written);
  }
  async closeLogfile(): Promise<void> {
    await this.client.call(PmcOp.CLOSELOG, {});
    await this.endPump();
  }
  /** pmc_writelog(): a USERDATA record. */
  writeLog(userdata: number): Promise<void> {
    return this.client.call(PmcOp.WRITELOG, { userdata });
  }

  private async endPump(): Promise<void> {
    const pump = this.logPump;
    this.logPump = undefined;
    await pump?.finish();
  }

  /** The owner goes away: everything it allocated is released. */
  async close(): Promise<void> {
    this.allocated.clear();
    // The pump's pipe must outlive the module's last write into it.
    if (this.logPump) await this.closeLogfile().catch(() => this.endPump());
    return this.client.close();
  }
}
