// libpmc (pmc(3)) in TypeScript: event specifiers in, PMC ids out, and the
// operations on them. Names follow pmc(3) without the pmc_ prefix.
import { discoverEventClasses, type EventClassInfo, isRawSpecCode, resolveEvent } from '../md/event-catalog.js';
import { readSysctl } from '../md/procfs.js';
import { isPmcPrivileged, selfCaller } from '../module/caller.js';
import type { DriverStats } from '../module/driver-stats.js';
import type { LogSink } from '../log/log-writer.js';
import type { CpuInfo, PmcInfo } from '../module/pmc-module.js';
import {
  DEFAULT_SAMPLE_COUNT,
  isSamplingMode,
  PMC_CPU_ANY,
  PMC_VERSION,
  PMC_VERSION_MAJOR_MASK,
  PmcCaps,
  PmcFlags,
  type PmcId,
  PmcMode,
  pmcIdToClass,
  PmcState,
} from '../module/pmc-types.js';
import { PmcError } from '../pmc-error.js';
import { parseEventSpec } from './event-spec.js';
import { LocalModuleClient, type ModuleClient } from './module-client.js';

export type ModeName = 'SS' | 'SC' | 'TS' | 'TC';

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
}

export class Libpmc {
  private readonly allocated = new Map<PmcId, AllocatedPmc>();

  private constructor(
    readonly client: ModuleClient,
    readonly cpuInfo: CpuInfo,
    private readonly classes: EventClassInfo[],
  ) {}

  /** pmc_init(): check the module's ABI and learn its classes. */
  static async init(client: ModuleClient = new LocalModuleClient()): Promise<Libpmc> {
    const version = await client.getModuleVersion(PMC_VERSION);
    if ((version & PMC_VERSION_MAJOR_MASK) >>> 0 !== (PMC_VERSION & PMC_VERSION_MAJOR_MASK) >>> 0) {
      throw new PmcError('EPROGMISMATCH', `module ABI 0x${version.toString(16)} does not match libpmc 0x${PMC_VERSION.toString(16)}`);
    }
    return new Libpmc(client, await client.getCpuInfo(), discoverEventClasses());
  }

  ncpu(): number {
    return this.cpuInfo.ncpu;
  }
  npmc(): number {
    return this.cpuInfo.npmc;
  }

  /**
   * pmc_allocate(): a PMC for `spec` in `mode`. Without a qualifier a PMC
   * counts user and kernel mode; an unprivileged caller on a kernel that
   * forbids kernel profiling (perf_event_paranoid >= 2) gets user mode only,
   * as perf does, rather than a permission error.
   */
  async allocate(spec: string, mode: PmcMode | ModeName, options: AllocateOptions = {}): Promise<PmcId> {
    const m = typeof mode === 'string' ? PmcMode[mode] : mode;
    if (m === undefined) throw new PmcError('EINVAL', `mode "${String(mode)}" is not SS, SC, TS or TC`);
    const parsed = parseEventSpec(spec);
    const { cls, event } = resolveEvent(this.classes, parsed.event);
    const moduleClass = this.cpuInfo.classes.find((c) => c.name === cls.name);
    if (!moduleClass) throw new PmcError('ENOENT', `event "${parsed.event}" is in class ${cls.name}, which the module does not have`);

    let caps = (parsed.usr ? PmcCaps.USER : 0) | (parsed.os ? PmcCaps.SYSTEM : 0);
    if (caps === 0 && cls.modeFilter !== false && !kernelProfilingAllowed()) caps = PmcCaps.USER;
    const sampling = isSamplingMode(m);
    let flags = 0;
    if (options.descendants) flags |= PmcFlags.DESCENDANTS;
    if (sampling && (options.callchain ?? true)) flags |= PmcFlags.CALLCHAIN;
    if (sampling && options.userCallchain) flags |= PmcFlags.USERCALLCHAIN;
    if (options.logProcExit) flags |= PmcFlags.LOG_PROCEXIT;
    if (options.logProcCsw) flags |= PmcFlags.LOG_PROCCSW;
    const cpu = options.cpu ?? PMC_CPU_ANY;
    const rawSpec = cls.family === 'PMU' && isRawSpecCode(event.code);
    const id = await this.client.pmcAllocate({
      classId: moduleClass.classId,
      event: event.code,
      mode: m,
      cpu,
      caps,
      flags,
      count: options.count ?? (sampling ? BigInt(DEFAULT_SAMPLE_COUNT) : undefined),
      frequency: options.frequency,
      md: rawSpec ? { config: event.perf.config, config1: event.perf.config1, config2: event.perf.config2 } : undefined,
    });
    this.allocated.set(id, { id, spec: parsed.text, eventName: event.name, mode: m, cpu });
    return id;
  }

  /** What this libpmc allocated under `id`. */
  describe(id: PmcId): AllocatedPmc | undefined {
    return this.allocated.get(id);
  }

  attach(id: PmcId, pid: number): Promise<void> {
    return this.client.pmcAttach(id, pid);
  }
  detach(id: PmcId, pid: number): Promise<void> {
    return this.client.pmcDetach(id, pid);
  }
  start(id: PmcId): Promise<void> {
    return this.client.pmcStart(id);
  }
  stop(id: PmcId): Promise<void> {
    return this.client.pmcStop(id);
  }
  /** pmc_read(): the current value. */
  read(id: PmcId): Promise<bigint> {
    return this.client.pmcRead(id);
  }
  /** pmc_write(): set the value of a stopped PMC. */
  async write(id: PmcId, value: bigint): Promise<void> {
    await this.client.pmcRw(id, PmcFlags.NEWVALUE, value);
  }
  /** pmc_rw(): write a new value and return the old one. */
  async rw(id: PmcId, value: bigint): Promise<bigint> {
    return (await this.client.pmcRw(id, PmcFlags.NEWVALUE | PmcFlags.OLDVALUE, value))!;
  }
  /** pmc_set(): reload count (sampling) or initial count (counting). */
  setCount(id: PmcId, count: bigint): Promise<void> {
    return this.client.pmcSetCount(id, count);
  }
  async release(id: PmcId): Promise<void> {
    await this.client.pmcRelease(id);
    this.allocated.delete(id);
  }
  getMsr(id: PmcId): Promise<number> {
    return this.client.pmcGetMsr(id);
  }

  /** pmc_capabilities() and pmc_width(): from the class of the id. */
  capabilities(id: PmcId): number {
    return this.classOfId(id).caps;
  }
  width(id: PmcId): number {
    return this.classOfId(id).width;
  }
  private classOfId(id: PmcId): CpuInfo['classes'][number] {
    const c = this.cpuInfo.classes.find((k) => k.classId === pmcIdToClass(id));
    if (!c) throw new PmcError('EINVAL', `PMC id 0x${id.toString(16)} names no class`);
    return c;
  }

  pmcInfo(cpu: number): Promise<PmcInfo[]> {
    return this.client.getPmcInfo(cpu);
  }
  driverStats(): Promise<DriverStats> {
    return this.client.getDriverStats();
  }
  /** pmc_enable() / pmc_disable(): PMCADMIN on one row of one CPU. */
  enable(cpu: number, row: number): Promise<void> {
    return this.client.pmcAdmin(cpu, row, PmcState.FREE);
  }
  disable(cpu: number, row: number): Promise<void> {
    return this.client.pmcAdmin(cpu, row, PmcState.DISABLED);
  }
  /** pmc_event_names_of_class(). */
  async eventNamesOfClass(classId: number): Promise<string[]> {
    return (await this.client.getDynEventInfo(classId)).map((e) => e.name);
  }
  /** The discovered classes, with availability and reasons. */
  eventClasses(): readonly EventClassInfo[] {
    return this.classes;
  }

  /** pmc_configure_logfile(): log to a file descriptor or stream; null ends the log. */
  configureLogfile(sink: LogSink | null): Promise<void> {
    return this.client.configureLog(sink);
  }
  /** pmc_flush_logfile(): write out what is buffered; rejects with a pending write error. */
  flushLogfile(): Promise<void> {
    return this.client.flushLog();
  }
  closeLogfile(): Promise<void> {
    return this.client.closeLog();
  }
  /** pmc_writelog(): a USERDATA record. */
  writeLog(userdata: number): Promise<void> {
    return this.client.writeLog(userdata);
  }

  /** The owner goes away: everything it allocated is released. */
  close(): Promise<void> {
    this.allocated.clear();
    return this.client.close();
  }
}

/** perf_event_paranoid >= 2 forbids kernel profiling to callers without CAP_PERFMON. */
function kernelProfilingAllowed(): boolean {
  const paranoid = Number(readSysctl('kernel.perf_event_paranoid') ?? 2);
  return paranoid < 2 || isPmcPrivileged(selfCaller().creds);
}
