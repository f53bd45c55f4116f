// The machine-independent module: hwpmc_mod.c's job. Owners allocate PMCs
// on rows of classes, attach them to target processes or run them on CPUs,
// start, stop, read and release them. Every operation checks its arguments
// and state as hwpmc does and fails with the same errno.
//
// This file is the module's shape: its tables (module-tables.ts), one object
// per mechanism (allocation-ops, attach-ops, run-ops, admin-ops, log-ops,
// the exit reaper, the sample processor) wired together, and the one entry
// point, call(caller, op, args), with its OPS switch.
import type { ClassDep } from '../md/class-dep.js';
import { PmcError } from '../pmc-error.js';
import { AdminOps, type SpecResolution } from './admin-ops.js';
import { AllocationOps } from './allocation-ops.js';
import { AttachOps } from './attach-ops.js';
import { type Caller, ownerKey } from './caller.js';
import { countOp, type DriverStats } from './driver-stats.js';
import { ExitReaper } from './exit-reaper.js';
import { LOG_STALL_MS, LogOps } from './log-ops.js';
import { ModuleTables } from './module-tables.js';
import type { AllocateRequest, CpuInfo, OpArgs, OpResult, OwnerStats, PmcInfo, ResolvedEventInfo } from './op-table.js';
import type { OwnerSignal } from './owner.js';
import { PMC_VERSION, PmcFlags, type PmcId, PmcOp, type PmcState } from './pmc-types.js';
import { RunOps } from './run-ops.js';
import { SampleProcessor } from './sample-processor.js';
import type { Tunables } from './tunables.js';

export interface ModuleOptions {
  classes: ClassDep[];
  tunables: Tunables;
  /** CPUs that exist (pmc_cpu_max) and those that are online (pmc_cpu_is_active). */
  ncpu: number;
  activeCpus: number[];
  /** Where PMCADMIN row states persist (none: they live as long as the module). */
  adminStatePath?: string;
  /** Event specifier resolution (RESOLVEEVENT); without it the module resolves exact event names of its classes. */
  resolveSpec?: (spec: string) => SpecResolution;
}

export class PmcModule {
  private readonly tables: ModuleTables;
  private readonly samples: SampleProcessor;
  private readonly admin: AdminOps;
  private readonly allocation: AllocationOps;
  private readonly attachments: AttachOps;
  private readonly run: RunOps;
  /** The owner-log ops (CONFIGURELOG, FLUSHLOG, CLOSELOG, WRITELOG). */
  readonly logs: LogOps;
  /** The exit and credential hooks, run at an interval while process PMCs run. */
  readonly reaper: ExitReaper;

  constructor(options: ModuleOptions) {
    const t = new ModuleTables(options.classes, options.tunables, options.ncpu, options.activeCpus);
    this.tables = t;
    this.samples = new SampleProcessor(t.stats, t.ncpu, t.tunables.nsamples, t.tunables.callchaindepth, () => t.runningSamplers());
    this.admin = new AdminOps(t, options.adminStatePath, options.resolveSpec);
    this.attachments = new AttachOps(t, this.samples);
    this.reaper = new ExitReaper({
      owners: t.owners,
      detachOneProcess: (pmc, pid, notify) => this.attachments.detachOneProcess(pmc, pid, notify),
      unlinkTarget: (pmc, target) => this.attachments.unlinkTarget(pmc, target),
      exitSlice: (pmc, pid, total, time) => this.samples.exitSlice(pmc, pid, total, time),
    });
    this.run = new RunOps(t, this.samples, this.reaper, this.attachments);
    this.allocation = new AllocationOps(t, this.run, this.attachments);
    this.logs = new LogOps({
      stats: t.stats,
      tunables: t.tunables,
      samples: this.samples,
      owners: t.owners,
      ownerOf: (caller) => t.ownerOf(caller),
      runningSamplers: () => t.runningSamplers(),
      stop: (pmc) => this.run.stopPmc(pmc),
      settleExits: (owner, flush) => this.reaper.settleOwner(owner, flush),
    });
  }

  get stats(): DriverStats {
    return this.tables.stats;
  }

  get tunables(): Tunables {
    return this.tables.tunables;
  }

  /**
   * The module's one entry point, hwpmc's syscall handler: (caller, op,
   * arguments) to a result, or a PmcError with hwpmc's errno. Every client
   * (in-process, pmcd) calls it; OP_TABLE says what each op takes and gives.
   */
  call<K extends PmcOp>(caller: Caller, op: K, args: OpArgs<K>): OpResult<K> | Promise<OpResult<K>> {
    const handler = OPS[op] as OpHandler<K> | undefined;
    if (handler === undefined) return countOp(this.stats, () => { throw new PmcError('EINVAL', `no module op ${String(op)}`); });
    let r: OpResult<K> | Promise<OpResult<K>>;
    try {
      r = handler(this, caller, args);
    } catch (e) {
      this.countForOwner(caller, false);
      throw e;
    }
    if (r instanceof Promise) return r.then((v) => (this.countForOwner(caller, true), v), (e: unknown) => (this.countForOwner(caller, false), Promise.reject(e)));
    this.countForOwner(caller, true);
    return r;
  }

  /** Per-owner op counts, for owners that exist once the op is done. */
  private countForOwner(caller: Caller, ok: boolean): void {
    const owner = this.tables.owners.get(ownerKey(caller));
    if (!owner) return;
    owner.ops++;
    if (!ok) owner.opErrors++;
  }

  // The ops, one typed method each (OPS calls them; so do the module's tests).

  getModuleVersion(clientVersion: number = PMC_VERSION): number {
    return this.admin.getModuleVersion(clientVersion);
  }

  getCpuInfo(): CpuInfo {
    return this.admin.getCpuInfo();
  }

  getDriverStats(): DriverStats {
    return this.admin.getDriverStats();
  }

  getDynEventInfo(classId: number): { name: string; code: number }[] {
    return this.admin.getDynEventInfo(classId);
  }

  getPmcInfo(cpu: number): PmcInfo[] {
    return this.admin.getPmcInfo(cpu);
  }

  resolveEvent(caller: Caller, spec: string): ResolvedEventInfo {
    return this.admin.resolveEvent(caller, spec);
  }

  getOwnerStats(): OwnerStats[] {
    return this.admin.getOwnerStats();
  }

  pmcAdmin(caller: Caller, cpu: number, row: number, state: PmcState.DISABLED | PmcState.FREE): void {
    this.admin.pmcAdmin(caller, cpu, row, state);
  }

  pmcAllocate(caller: Caller, req: AllocateRequest): PmcId {
    return this.allocation.allocate(caller, req);
  }

  pmcRelease(caller: Caller, id: PmcId): void {
    this.allocation.release(caller, id);
  }

  pmcAttach(caller: Caller, id: PmcId, pid: number): void {
    this.attachments.attach(caller, id, pid);
  }

  pmcDetach(caller: Caller, id: PmcId, pid: number): void {
    this.attachments.detach(caller, id, pid);
  }

  pmcStart(caller: Caller, id: PmcId): void {
    this.run.start(caller, id);
  }

  pmcStop(caller: Caller, id: PmcId): void {
    this.run.stop(caller, id);
  }

  pmcRead(caller: Caller, id: PmcId): bigint {
    return this.run.read(caller, id);
  }

  pmcReadMany(caller: Caller, ids: readonly PmcId[]): bigint[] {
    return this.run.readMany(caller, ids);
  }

  pmcRw(caller: Caller, id: PmcId, flags: number, value = 0n): bigint | undefined {
    return this.run.rw(caller, id, flags, value);
  }

  pmcSetCount(caller: Caller, id: PmcId, count: bigint): void {
    this.run.setCount(caller, id, count);
  }

  pmcGetMsr(caller: Caller, id: PmcId): number {
    return this.run.getMsr(caller, id);
  }

  // ---- owners -------------------------------------------------------------

  /** Owners listen here for SIGIO-like notices. */
  onSignal(caller: Caller, listener: (s: OwnerSignal) => void): () => void {
    const owner = this.tables.ownerOf(caller);
    owner.listeners.add(listener);
    return () => owner.listeners.delete(listener);
  }

  /**
   * The owner process went away (exited, closed the module, or its pmcd
   * connection dropped). Every PMC is released at once; the promise settles
   * when the owner's log is closed (CLOSELOG written), or given up (a reader
   * that takes nothing for LOG_STALL_MS), and rejects with the error that
   * lost the log's end.
   */
  ownerExited(caller: Caller): Promise<void> {
    const owner = this.tables.owners.get(ownerKey(caller));
    if (!owner) return Promise.resolve();
    // The log's close starts first: it logs the exits of the PMCs' targets before they are released.
    const closing = this.logs.closeOwnerLog(owner);
    for (const pmc of [...owner.pmcs.values()]) this.allocation.releasePmc(pmc);
    owner.listeners.clear();
    this.tables.owners.delete(owner.key);
    this.reaper.forget(owner);
    return closing;
  }

  /**
   * Release every owner: the module is unloaded. Settles when every log is
   * closed, or after `boundMs` at most, giving up the logs still ending then;
   * rejects with the first error.
   */
  async shutdown(boundMs = LOG_STALL_MS): Promise<void> {
    const closing = [...this.tables.owners.values()].map((owner) => this.ownerExited(owner.caller));
    // Logs of owners already gone end too before the module is gone.
    closing.push(...this.logs.endings());
    this.reaper.stop();
    const bound = setTimeout(() => this.logs.giveUpEndingLogs(`the module was unloaded and waited ${boundMs / 1000} s for it`), boundMs);
    try {
      const failed = (await Promise.allSettled(closing)).find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    } finally {
      clearTimeout(bound);
    }
  }

  /** File descriptors held by all PMCs, target process handles and the exit reaper, for accounting. */
  get openFdCount(): number {
    let n = 0;
    for (const o of this.tables.owners.values()) for (const p of o.pmcs.values()) n += p.fdCount;
    for (const t of this.tables.processes.values()) n += t.fdCount;
    return n + this.reaper.fdCount;
  }
}

type OpHandler<K extends PmcOp> = (m: PmcModule, caller: Caller, args: OpArgs<K>) => OpResult<K> | Promise<OpResult<K>>;

/** The syscall switch: each op to the method that implements it. */
const OPS: { [K in PmcOp]: OpHandler<K> } = {
  [PmcOp.CONFIGURELOG]: (m, c, a) => m.logs.configureLog(c, a.fd),
  [PmcOp.FLUSHLOG]: (m, c) => m.logs.flushLog(c),
  [PmcOp.CLOSELOG]: (m, c) => m.logs.closeLog(c),
  [PmcOp.WRITELOG]: (m, c, a) => m.logs.writeLog(c, a.userdata),
  [PmcOp.GETCPUINFO]: (m) => m.getCpuInfo(),
  [PmcOp.GETDRIVERSTATS]: (m) => m.getDriverStats(),
  [PmcOp.GETMODULEVERSION]: (m, _c, a) => m.getModuleVersion(a.version),
  [PmcOp.GETPMCINFO]: (m, _c, a) => m.getPmcInfo(a.cpu),
  [PmcOp.GETDYNEVENTINFO]: (m, _c, a) => m.getDynEventInfo(a.classId),
  [PmcOp.PMCADMIN]: (m, c, a) => m.pmcAdmin(c, a.cpu, a.row, a.state),
  [PmcOp.PMCALLOCATE]: (m, c, a) => m.pmcAllocate(c, a),
  [PmcOp.PMCATTACH]: (m, c, a) => m.pmcAttach(c, a.id, a.pid),
  [PmcOp.PMCDETACH]: (m, c, a) => m.pmcDetach(c, a.id, a.pid),
  [PmcOp.PMCGETMSR]: (m, c, a) => m.pmcGetMsr(c, a.id),
  [PmcOp.PMCRELEASE]: (m, c, a) => m.pmcRelease(c, a.id),
  // A plain read takes the fast path.
  [PmcOp.PMCRW]: (m, c, a) => (a.flags === PmcFlags.OLDVALUE ? m.pmcRead(c, a.id) : m.pmcRw(c, a.id, a.flags, a.value)),
  [PmcOp.PMCREADMANY]: (m, c, a) => m.pmcReadMany(c, a.ids),
  [PmcOp.PMCSETCOUNT]: (m, c, a) => m.pmcSetCount(c, a.id, a.count),
  [PmcOp.PMCSTART]: (m, c, a) => m.pmcStart(c, a.id),
  [PmcOp.PMCSTOP]: (m, c, a) => m.pmcStop(c, a.id),
  [PmcOp.RESOLVEEVENT]: (m, c, a) => m.resolveEvent(c, a.spec),
  [PmcOp.GETOWNERSTATS]: (m) => m.getOwnerStats(),
};
