// The machine-independent module: hwpmc_mod.c's job. Owners allocate PMCs
// on rows of classes, attach them to target processes or run them on CPUs,
// start, stop, read and release them. Every operation checks its arguments
// and state as hwpmc does and fails with the same errno.
import type { ClassDep, HwRequest, Inheritance } from '../md/class-dep.js';
import { executablePath, listDescendants, processExited, readCredentials } from '../md/procfs.js';
import { PmcError } from '../pmc-error.js';
import { type Caller, canDebug, isPmcPrivileged, kernelProfilingAllowed, ownerKey } from './caller.js';
import { countOp, type DriverStats, newDriverStats } from './driver-stats.js';
import { ExitReaper } from './exit-reaper.js';
import { LOG_STALL_MS, LogOps, logAllocation } from './log-ops.js';
import { logAllProcessMappings, logKernelMappings, logProcessMappings } from './mappings.js';
import { now } from '../pmc-common.js';
import { LogType } from '../log/records.js';
import type { AllocateRequest, CpuInfo, OpArgs, OpResult, OwnerStats, PmcInfo, ResolvedEventInfo, RowHolder } from './op-table.js';
import { Owner, type OwnerSignal } from './owner.js';
import { finalCount, Pmc, type PmcTarget } from './pmc.js';
import {
  ALLOCATE_FLAGS_ALLOWED,
  isSamplingMode,
  isSystemMode,
  isVirtualMode,
  makePmcId,
  PMC_CPU_ANY,
  PMC_CPU_GENERIC,
  PMC_VERSION,
  PmcCaps,
  PmcFlags,
  type PmcId,
  PmcMode,
  PmcOp,
  PmcState,
  RowDisposition,
} from './pmc-types.js';
import { readAdminState, writeAdminState } from './admin-state.js';
import { RowTable } from './row-table.js';
import { SampleProcessor } from './sample-processor.js';
import { TargetProcess } from './target-process.js';
import { type Tunables } from './tunables.js';

export type { AllocateRequest, ClassInfo, CpuInfo, PmcInfo } from './op-table.js';

/** An event specifier resolved by the machine's catalog (md): its class name, event code, MD configuration. */
export interface SpecResolution {
  className: string;
  event: number;
  eventName: string;
  md?: HwRequest['md'];
}

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
  readonly stats: DriverStats = newDriverStats();
  readonly tunables: Tunables;
  readonly classes: readonly ClassDep[];
  /**
   * The row layout: class i's rows start at firstRows[i]. A class's row
   * count probes the kernel (HW and CACHE open one event after another,
   * tracepoints look for tracefs), so the layout is made only as far as
   * something asks: allocating a SOFT event never probes the classes after
   * it, while GETCPUINFO and GETPMCINFO lay out every class.
   */
  private readonly firstRows: number[] = [0];
  private readonly ncpu: number;
  private readonly active: Set<number>;
  private readonly rows: RowTable;
  private readonly owners = new Map<number, Owner>();
  private readonly processes = new Map<number, TargetProcess>();
  private readonly adminStatePath?: string;
  private readonly resolveSpec?: (spec: string) => SpecResolution;
  private readonly samples: SampleProcessor;
  /** The owner-log ops (CONFIGURELOG, FLUSHLOG, CLOSELOG, WRITELOG). */
  readonly logs: LogOps;
  /** The exit and credential hooks, run at an interval while process PMCs run. */
  readonly reaper: ExitReaper;

  constructor(options: ModuleOptions) {
    this.tunables = options.tunables;
    this.classes = options.classes;
    this.ncpu = options.ncpu;
    this.active = new Set(options.activeCpus);
    this.rows = new RowTable(MAX_ROWS, this.ncpu);
    this.samples = new SampleProcessor(this.stats, this.ncpu, this.tunables.nsamples, this.tunables.callchaindepth, () => this.runningSamplers());
    this.adminStatePath = options.adminStatePath;
    if (this.adminStatePath) {
      for (const [cpu, row] of readAdminState(this.adminStatePath).disabled) {
        if (cpu < this.ncpu && row < MAX_ROWS) this.rows.setEnabled(cpu, row, false);
      }
    }
    this.resolveSpec = options.resolveSpec;
    const owners = this.owners;
    this.logs = new LogOps({
      stats: this.stats,
      tunables: this.tunables,
      samples: this.samples,
      owners,
      ownerOf: (caller) => this.ownerOf(caller),
      runningSamplers: () => this.runningSamplers(),
      stop: (pmc) => this.stop(pmc),
      settleExits: (owner, flush) => this.reaper.settleOwner(owner, flush),
    });
    this.reaper = new ExitReaper({
      owners,
      detachOneProcess: (pmc, pid, notify) => this.detachOneProcess(pmc, pid, notify),
      unlinkTarget: (pmc, t) => this.unlinkTarget(pmc, t),
      exitSlice: (pmc, pid, total, time) => this.samples.exitSlice(pmc, pid, total, time),
    });
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
    const owner = this.owners.get(ownerKey(caller));
    if (!owner) return;
    owner.ops++;
    if (!ok) owner.opErrors++;
  }

  /** PMCs whose rings need draining: running samplers, and counters logging context switches. */
  private *runningSamplers(): Iterable<Pmc> {
    for (const o of this.owners.values()) {
      for (const p of o.pmcs.values()) if (p.state === PmcState.RUNNING && (p.isSampling || p.request.contextSwitchValues)) yield p;
    }
  }

  // ---- bookkeeping --------------------------------------------------------

  /** Run one op, counting it (and its failure) in the driver statistics. */
  private op<T>(fn: () => T): T {
    return countOp(this.stats, fn);
  }

  /** The first row of class `i` (i = the number of classes: the row count), laying out the classes before it. */
  private firstRow(i: number): number {
    const first = this.firstRows;
    for (let k = first.length - 1; k < i; k++) {
      const next = first[k] + this.classes[k].rows;
      // Row indices are 8 bits of a PMC id.
      if (next > MAX_ROWS) throw new PmcError('EINVAL', `classes provide ${next} rows or more; at most ${MAX_ROWS} fit a PMC id`);
      first.push(next);
    }
    return first[i];
  }

  /** Rows in all (pm_npmc): every class laid out. */
  private get npmc(): number {
    return this.firstRow(this.classes.length);
  }

  private classOfRow(row: number): { cls: ClassDep; local: number } {
    for (let i = this.classes.length - 1; i >= 0; i--) {
      if (row >= this.firstRow(i)) return { cls: this.classes[i], local: row - this.firstRow(i) };
    }
    throw new PmcError('EINVAL', `row ${row} does not exist`);
  }

  private isCpuActive(cpu: number): boolean {
    return this.active.has(cpu);
  }

  /** pmc_find_pmc(): the caller's PMC with this id. */
  private findPmc(caller: Caller, id: PmcId): Pmc {
    const owner = this.owners.get(ownerKey(caller));
    if (!owner) throw new PmcError('ESRCH', `process ${caller.pid} owns no PMCs`);
    const pmc = owner.pmcs.get(id);
    if (pmc) return pmc;
    throw new PmcError('EINVAL', `no PMC with id 0x${id.toString(16)} belongs to process ${caller.pid}`);
  }

  /** Owners listen here for SIGIO-like notices. */
  onSignal(caller: Caller, listener: (s: OwnerSignal) => void): () => void {
    const owner = this.ownerOf(caller);
    owner.listeners.add(listener);
    return () => owner.listeners.delete(listener);
  }

  private ownerOf(caller: Caller): Owner {
    let owner = this.owners.get(ownerKey(caller));
    if (!owner) {
      owner = new Owner(caller);
      this.owners.set(owner.key, owner);
    }
    return owner;
  }

  /** pmc_maybe_remove_owner(): an owner with nothing left is forgotten. */
  private maybeRemoveOwner(owner: Owner): void {
    if (owner.pmcs.size === 0 && owner.listeners.size === 0 && !owner.log) this.owners.delete(owner.key);
  }

  // ---- information ops ----------------------------------------------------

  getModuleVersion(clientVersion: number = PMC_VERSION): number {
    return this.op(() => {
      // Clients newer than the module are refused; the major and minor must not exceed ours.
      if ((clientVersion & 0xffff0000) >>> 0 > (PMC_VERSION & 0xffff0000) >>> 0) {
        throw new PmcError('EPROGMISMATCH', `client ABI 0x${clientVersion.toString(16)} is newer than module 0x${PMC_VERSION.toString(16)}`);
      }
      return PMC_VERSION;
    });
  }

  getCpuInfo(): CpuInfo {
    return this.op(() => ({
      cputype: PMC_CPU_GENERIC,
      ncpu: this.ncpu,
      npmc: this.npmc,
      nclass: this.classes.length,
      classes: this.classes.map((c, i) => ({
        classId: c.classId,
        name: c.name,
        caps: c.caps,
        width: c.width,
        num: c.rows,
        firstRow: this.firstRow(i),
        available: c.available,
        unavailableReason: c.unavailableReason,
      })),
    }));
  }

  getDriverStats(): DriverStats {
    return this.op(() => {
      for (const o of this.owners.values()) o.log?.accountBuffers();
      return { ...this.stats };
    });
  }

  getDynEventInfo(classId: number): { name: string; code: number }[] {
    return this.op(() => {
      const cls = this.classes.find((c) => c.classId === classId);
      if (!cls) throw new PmcError('EINVAL', `no PMC class 0x${classId.toString(16)}`);
      return cls.events().map((e) => ({ name: e.name, code: e.code }));
    });
  }

  getPmcInfo(cpu: number): PmcInfo[] {
    return this.op(() => {
      this.checkCpu(cpu);
      const out: PmcInfo[] = [];
      for (let row = 0; row < this.npmc; row++) {
        const { cls, local } = this.classOfRow(row);
        const system = this.rows.holderOf(cpu, row);
        const holders = (system ? [system] : this.virtualPmcsOnRow(row)).map(describeHolder);
        out.push({
          name: `${cls.name}${local}`,
          classId: cls.classId,
          enabled: this.rows.isEnabled(cpu, row),
          rowDisposition: this.rows.disposition(row),
          ...(holders[0] ?? { ownerPid: -1 }),
          holders,
        });
      }
      return out;
    });
  }

  /**
   * RESOLVEEVENT (tspmc): what an event specifier means on this machine. An
   * unqualified PMC counts user and kernel mode; a caller the kernel forbids
   * kernel profiling (perf_event_paranoid >= 2) gets user mode only, as perf does.
   */
  resolveEvent(caller: Caller, spec: string): ResolvedEventInfo {
    return this.op(() => {
      const r = this.resolveSpec ? this.resolveSpec(spec) : this.resolveEventName(spec);
      const cls = this.classes.find((c) => c.name === r.className);
      if (!cls) throw new PmcError('ENOENT', `event "${spec}" is in class ${r.className}, which the module does not have`);
      const userOnly = hasModes(cls) && !this.kernelModeAllowed(caller);
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

  /**
   * Kernel-mode counts, samples and call-chain frames: for privileged callers,
   * for everyone with the unprivileged_kernel_callchains tunable, and where
   * perf_event_paranoid lets every user profile the kernel.
   */
  private kernelModeAllowed(caller: Caller): boolean {
    return this.tunables.unprivileged_kernel_callchains || kernelProfilingAllowed(caller.creds);
  }

  /** Without the machine's catalog: an exact event name of an available class. */
  private resolveEventName(spec: string): SpecResolution {
    for (const cls of this.classes) {
      const e = cls.available ? cls.events().find((ev) => ev.name === spec) : undefined;
      if (e) return { className: cls.name, event: e.code, eventName: e.name };
    }
    throw new PmcError('ENOENT', `no class has an event named "${spec}"`);
  }

  /** Virtual PMCs follow their threads onto every CPU, so they are shown on each. */
  private virtualPmcsOnRow(row: number): Pmc[] {
    const out: Pmc[] = [];
    for (const o of this.owners.values()) for (const p of o.pmcs.values()) if (p.row === row && !p.isSystem) out.push(p);
    return out;
  }

  /** GETOWNERSTATS (tspmc): every owner that holds PMCs or a log, with its PMCs, ops and log. */
  getOwnerStats(): OwnerStats[] {
    return this.op(() =>
      [...this.owners.values()].filter((o) => o.pmcs.size > 0 || o.log).map((o) => {
        const pmcs = { SS: 0, SC: 0, TS: 0, TC: 0 };
        let running = 0;
        for (const p of o.pmcs.values()) {
          pmcs[PmcMode[p.mode] as keyof typeof pmcs]++;
          if (p.state === PmcState.RUNNING) running++;
        }
        const log = o.log && { written: o.log.writer.bytesWritten, bufferRequestsFailed: o.log.writer.bufferRequestsFailed };
        return { pid: o.pid, uid: o.caller.creds.euid, session: o.caller.session, pmcs, running, ops: o.ops, opErrors: o.opErrors, log };
      }),
    );
  }

  private checkCpu(cpu: number): void {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= this.ncpu) throw new PmcError('EINVAL', `CPU ${cpu} is out of range 0-${this.ncpu - 1}`);
    if (!this.isCpuActive(cpu)) throw new PmcError('ENXIO', `CPU ${cpu} is not online`);
  }

  // ---- administration -----------------------------------------------------

  /** PMCADMIN: enable or disable one row on one CPU (privileged). */
  pmcAdmin(caller: Caller, cpu: number, row: number, state: PmcState.DISABLED | PmcState.FREE): void {
    this.op(() => {
      if (!isPmcPrivileged(caller.creds)) throw new PmcError('EPERM', 'enabling or disabling PMCs needs root or CAP_PERFMON');
      this.checkCpu(cpu);
      if (state !== PmcState.DISABLED && state !== PmcState.FREE) throw new PmcError('EINVAL', `state ${state} is neither DISABLED nor FREE`);
      if (!Number.isInteger(row) || row < 0 || row >= this.npmc) throw new PmcError('EINVAL', `PMC row ${row} is out of range 0-${this.npmc - 1}`);
      // A row serving process-virtual PMCs runs on every CPU: it cannot be disabled on one.
      if (state === PmcState.DISABLED && this.rows.disposition(row) === RowDisposition.THREAD) {
        throw new PmcError('EBUSY', `row ${row} is in use by process-mode PMCs`);
      }
      if (this.rows.holderOf(cpu, row)) throw new PmcError('EBUSY', `row ${row} on CPU ${cpu} is in use by a system-mode PMC`);
      this.rows.setEnabled(cpu, row, state === PmcState.FREE);
      if (this.adminStatePath) writeAdminState(this.adminStatePath, { disabled: this.rows.disabledRows() });
    });
  }

  // ---- allocation ---------------------------------------------------------

  pmcAllocate(caller: Caller, req: AllocateRequest): PmcId {
    return this.op(() => this.allocate(caller, req));
  }

  private allocate(caller: Caller, req: AllocateRequest): PmcId {
    const { mode, cpu } = req;
    if (!(mode in PmcMode) || typeof mode !== 'number') throw new PmcError('EINVAL', `mode ${String(mode)} is not SS, SC, TS or TC`);
    if (cpu !== PMC_CPU_ANY && (!Number.isInteger(cpu) || cpu < 0 || cpu >= this.ncpu)) {
      throw new PmcError('EINVAL', `CPU ${cpu} is out of range 0-${this.ncpu - 1}`);
    }
    if (isVirtualMode(mode) && cpu !== PMC_CPU_ANY) throw new PmcError('EINVAL', 'a process-mode PMC cannot name a CPU');
    if (isSystemMode(mode) && cpu === PMC_CPU_ANY) throw new PmcError('EINVAL', 'a system-mode PMC needs a CPU');
    if (isSystemMode(mode) && !this.isCpuActive(cpu)) throw new PmcError('ENXIO', `CPU ${cpu} is not online`);
    if (isSystemMode(mode)) {
      if (caller.jailed) throw new PmcError('EPERM', 'system-mode PMCs are not available inside another PID namespace');
      if (!this.tunables.unprivileged_syspmcs && !isPmcPrivileged(caller.creds)) {
        throw new PmcError('EPERM', 'system-mode PMCs need root or CAP_PERFMON (or the unprivileged_syspmcs tunable)');
      }
    }
    if ((req.flags & ~ALLOCATE_FLAGS_ALLOWED) !== 0) throw new PmcError('EINVAL', `unknown PMC flags 0x${(req.flags & ~ALLOCATE_FLAGS_ALLOWED).toString(16)}`);
    if (isSystemMode(mode) && req.flags & (PmcFlags.LOG_PROCCSW | PmcFlags.LOG_PROCEXIT)) {
      throw new PmcError('EINVAL', 'process logging flags are not allowed on system-mode PMCs');
    }
    let caps = req.caps;
    if (isSamplingMode(mode)) caps |= PmcCaps.INTERRUPT;
    const clsIndex = this.classes.findIndex((c) => c.classId === req.classId);
    if (clsIndex < 0) throw new PmcError('EINVAL', `no PMC class 0x${req.classId.toString(16)}`);
    const cls = this.classes[clsIndex];
    if (!cls.available) throw new PmcError('ENXIO', `class ${cls.name} is not available: ${cls.unavailableReason ?? 'unknown reason'}`);
    if ((cls.caps & caps) !== caps) throw new PmcError('EOPNOTSUPP', `class ${cls.name} lacks capabilities 0x${(caps & ~cls.caps).toString(16)}`);

    const bothOrNeither = (caps & (PmcCaps.USER | PmcCaps.SYSTEM)) === 0;
    let countKernel = bothOrNeither || (caps & PmcCaps.SYSTEM) !== 0;
    if (countKernel && hasModes(cls) && !this.kernelModeAllowed(caller)) {
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
      callchainDepth: this.tunables.callchaindepth,
      contextSwitchValues: !isSamplingMode(mode) && (req.flags & PmcFlags.LOG_PROCCSW) !== 0,
    };
    cls.validate(request);

    // Find a row of the class this owner may use in this mode (hwpmc scans every row; rows of other classes never match).
    const first = this.firstRow(clsIndex);
    const end = first + cls.rows;
    if (end > MAX_ROWS) throw new PmcError('EINVAL', `class ${cls.name}'s rows end at ${end}; at most ${MAX_ROWS} fit a PMC id`);
    let row = -1;
    for (let r = first; r < end; r++) {
      if (!this.rows.canUse(r, mode)) continue;
      if (this.rowTakenByCaller(caller, r, isSystemMode(mode) ? cpu : PMC_CPU_ANY)) continue;
      if (isSystemMode(mode) && this.rows.holderOf(cpu, r)) continue;
      row = r;
      break;
    }
    if (row < 0) throw new PmcError('EINVAL', `no free ${cls.name} row for a ${PmcMode[mode]} PMC`);
    if (isSystemMode(mode) && !this.rows.isEnabled(cpu, row)) {
      throw new PmcError('EPERM', `row ${row} is disabled on CPU ${cpu}`);
    }

    const owner = this.ownerOf(caller);
    const id = makePmcId(cpu, mode, cls.classId, row);
    let flags = req.flags;
    if (flags & (PmcFlags.LOG_PROCEXIT | PmcFlags.LOG_PROCCSW)) flags |= PmcFlags.NEEDS_LOGFILE;
    if (mode === PmcMode.SS) flags |= PmcFlags.NEEDS_LOGFILE;
    const pmc = new Pmc(id, owner, cls, mode, row, cpu, caps, flags, request, cls.eventName(req.event, req.md));
    if (isSystemMode(mode)) {
      // System PMCs are configured at allocation: the counter exists (disabled) from now on.
      pmc.cpuCounter = cls.openCpu(request, cpu);
      this.rows.setHolder(cpu, row, pmc);
    }
    if (!isSamplingMode(mode) && req.count !== undefined) pmc.savedValue = req.count;
    pmc.state = PmcState.ALLOCATED;
    this.rows.mark(row, mode);
    owner.pmcs.set(id, pmc);
    if (owner.log) logAllocation(owner.log, pmc);
    return id;
  }

  /** pmc_can_allocate_rowindex(): the caller must not already use the row itself. */
  private rowTakenByCaller(caller: Caller, row: number, cpu: number): boolean {
    const owner = this.owners.get(ownerKey(caller));
    if (owner) {
      for (const p of owner.pmcs.values()) {
        if (p.row !== row) continue;
        if (!p.isSystem) return true;
        if (p.cpu === cpu) return true;
      }
    }
    // Nor be the target of a PMC at that row, or attaching to itself would fail later.
    return this.processes.get(caller.pid)?.pmcs.has(row) ?? false;
  }

  // ---- attach / detach ----------------------------------------------------

  pmcAttach(caller: Caller, id: PmcId, pid: number): void {
    this.op(() => {
      const target = this.checkPid(caller, pid);
      const pmc = this.findPmc(caller, id);
      if (pmc.isSystem) throw new PmcError('EINVAL', 'a system-mode PMC cannot be attached to a process');
      if (pmc.state === PmcState.RUNNING) throw new PmcError('EBUSY', 'a running PMC cannot be attached; stop it first');
      if (pmc.state !== PmcState.ALLOCATED && pmc.state !== PmcState.STOPPED) throw new PmcError('EINVAL', `PMC is ${PmcState[pmc.state]}`);
      this.checkTargetAlive(target);
      const creds = readCredentials(target);
      if (!creds) throw new PmcError('ESRCH', `process ${target} does not exist`);
      // An owner may always attach to itself.
      if (target !== caller.pid && !canDebug(caller.creds, creds)) {
        throw new PmcError('EPERM', `process ${caller.pid} (uid ${caller.creds.euid}) may not debug process ${target} (uid ${creds.euid})`);
      }
      this.attachProcess(pmc, target);
    });
  }

  private checkPid(caller: Caller, pid: number): number {
    if (!Number.isInteger(pid) || pid < 0) throw new PmcError('EINVAL', `pid ${pid} is not a process id`);
    return pid === 0 ? caller.pid : pid;
  }

  /** pfind() plus the P_WEXIT check: gone and exiting processes are not there (a zombie leader with live threads is). */
  private checkTargetAlive(pid: number): void {
    if (processExited(pid)) throw new PmcError('ESRCH', `process ${pid} does not exist or is exiting`);
  }

  /** pmc_attach_process(): the target, and with PMC_F_DESCENDANTS every descendant alive now. */
  private attachProcess(pmc: Pmc, pid: number): void {
    const descendants = (pmc.flags & PmcFlags.DESCENDANTS) !== 0;
    const tree = descendants ? [pid, ...listDescendants(pid)] : [pid];
    const done: number[] = [];
    try {
      for (const p of tree) {
        try {
          this.attachOneProcess(pmc, p, descendants ? 'descendants' : 'threads');
        } catch (e) {
          // A descendant that exits while we walk the tree is no error; the target itself is.
          if (p !== pid && e instanceof PmcError && e.code === 'ESRCH') continue;
          throw e;
        }
        done.push(p);
      }
    } catch (e) {
      for (const p of done) this.detachOneProcess(pmc, p, false);
      throw e;
    }
  }

  private attachOneProcess(pmc: Pmc, pid: number, inheritance: Inheritance): void {
    let tp = this.processes.get(pid);
    if (tp?.pmcs.get(pmc.row) === pmc) throw new PmcError('EEXIST', `PMC is already attached to process ${pid}`);
    if (tp?.pmcs.has(pmc.row)) throw new PmcError('EBUSY', `process ${pid} already has a PMC on row ${pmc.row}`);
    // The process is held first, so that it is this process whose counters are opened.
    const fresh = tp === undefined;
    tp ??= TargetProcess.open(pid);
    let hw;
    try {
      hw = pmc.cls.openProcess(pmc.request, pid, inheritance);
    } catch (e) {
      if (fresh) tp.close();
      throw e;
    }
    if (fresh) this.processes.set(pid, tp);
    tp.pmcs.set(pmc.row, pmc);
    pmc.targets.set(pid, { process: tp, hw, baseline: 0n, exited: false, creds: readCredentials(pid) });
    if (pid === pmc.owner.pid) pmc.flags |= PmcFlags.ATTACHED_TO_OWNER;
    if (pmc.isSampling && !(pmc.flags & PmcFlags.ATTACHED_TO_OWNER)) pmc.flags |= PmcFlags.NEEDS_LOGFILE;
    pmc.flags |= PmcFlags.ATTACH_DONE;
    pmc.toldTargetsGone = false;
    const log = pmc.owner.log;
    if (log) {
      log.write({ type: LogType.PMCATTACH, ts: now(), pmcid: pmc.id, pid, pathname: executablePath(pid) ?? '' });
      if (pmc.isSampling) logProcessMappings(log, pid);
    }
  }

  pmcDetach(caller: Caller, id: PmcId, pid: number): void {
    this.op(() => {
      const target = this.checkPid(caller, pid);
      const pmc = this.findPmc(caller, id);
      this.checkTargetAlive(target);
      this.detachProcess(pmc, target);
    });
  }

  /** pmc_detach_process(): the target and, with PMC_F_DESCENDANTS, its attached descendants. */
  private detachProcess(pmc: Pmc, pid: number): void {
    if (!pmc.targets.has(pid)) throw new PmcError(this.processes.has(pid) ? 'EINVAL' : 'ESRCH', `PMC is not attached to process ${pid}`);
    const tree = pmc.flags & PmcFlags.DESCENDANTS ? [pid, ...listDescendants(pid)] : [pid];
    for (const p of tree) if (pmc.targets.has(p)) this.detachOneProcess(pmc, p, true);
  }

  /** Fold the target's count into the PMC, close its counters, unlink it. */
  private detachOneProcess(pmc: Pmc, pid: number, notify: boolean): void {
    const t = pmc.targets.get(pid);
    if (!t) return;
    try {
      pmc.savedValue += finalCount(t);
    } catch (e) {
      pmc.lostCount ??= e instanceof PmcError ? e : new PmcError('EIO', String(e));
    }
    if (pmc.state === PmcState.RUNNING && (pmc.isSampling || pmc.request.contextSwitchValues)) this.samples.drainPmc(pmc, true);
    t.hw.close();
    pmc.owner.log?.write({ type: LogType.PMCDETACH, ts: now(), pmcid: pmc.id, pid });
    pmc.targets.delete(pid);
    this.unlinkTarget(pmc, t);
    if (pid === pmc.owner.pid) pmc.flags &= ~PmcFlags.ATTACHED_TO_OWNER;
    if (notify && pmc.targets.size === 0) pmc.owner.signal({ signal: 'SIGIO', reason: 'PMC lost all its targets', pmcId: pmc.id });
  }

  private unlinkTarget(pmc: Pmc, t: PmcTarget): void {
    if (t.process.pmcs.get(pmc.row) === pmc) t.process.pmcs.delete(pmc.row);
    if (t.process.pmcs.size === 0 && this.processes.get(t.process.pid) === t.process) {
      this.processes.delete(t.process.pid);
      t.process.close();
    }
  }

  // ---- start / stop / read / write ---------------------------------------

  pmcStart(caller: Caller, id: PmcId): void {
    this.op(() => {
      const pmc = this.findPmc(caller, id);
      if (pmc.state === PmcState.RUNNING) return;
      if (pmc.state !== PmcState.ALLOCATED && pmc.state !== PmcState.STOPPED) throw new PmcError('EINVAL', `PMC is ${PmcState[pmc.state]}`);
      if (pmc.flags & PmcFlags.NEEDS_LOGFILE && !pmc.owner.log) {
        throw new PmcError('EDOOFUS', 'this PMC needs a log file: configure one before starting it');
      }
      if (pmc.isSystem) {
        if (!this.isCpuActive(pmc.cpu)) throw new PmcError('ENXIO', `CPU ${pmc.cpu} is not online`);
        if (pmc.mode === PmcMode.SS) pmc.owner.ssCount++;
      } else if (pmc.targets.size === 0) {
        // Never attached: a process PMC started bare counts its owner.
        if (pmc.flags & PmcFlags.ATTACH_DONE) throw new PmcError('ESRCH', 'every target of this PMC is gone');
        this.attachProcess(pmc, pmc.owner.pid);
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

  pmcStop(caller: Caller, id: PmcId): void {
    this.op(() => {
      const pmc = this.findPmc(caller, id);
      if (pmc.state === PmcState.STOPPED) return;
      if (pmc.state !== PmcState.RUNNING) throw new PmcError('EINVAL', `PMC is ${PmcState[pmc.state]}`);
      this.stop(pmc);
    });
  }

  private stop(pmc: Pmc): void {
    // Exits before the stop are logged before it, whatever the reaper's timer phase.
    if (!pmc.isSystem) this.reaper.settle(pmc);
    for (const hw of pmc.counterSets()) hw.stop();
    // What the kernel sampled before the stop still goes to the log.
    if (pmc.isSampling || pmc.request.contextSwitchValues) {
      this.samples.drainPmc(pmc, true);
      this.samples.flush();
    }
    if (pmc.mode === PmcMode.SS) pmc.owner.ssCount--;
    pmc.state = PmcState.STOPPED;
  }

  /** PMCRW read: the hot path, kept to one lookup and the counter reads. */
  pmcRead(caller: Caller, id: PmcId): bigint {
    const pmc = this.owners.get(ownerKey(caller))?.pmcs.get(id);
    if (pmc === undefined || pmc.state < PmcState.ALLOCATED || pmc.state > PmcState.RUNNING) {
      return this.pmcRw(caller, id, PmcFlags.OLDVALUE)!;
    }
    return this.op(() => pmc.read());
  }

  /** PMCRW: read (PMC_F_OLDVALUE) and/or write (PMC_F_NEWVALUE); returns the old value when asked. */
  pmcRw(caller: Caller, id: PmcId, flags: number, value = 0n): bigint | undefined {
    return this.op(() => {
      if ((flags & (PmcFlags.OLDVALUE | PmcFlags.NEWVALUE)) === 0) throw new PmcError('EINVAL', 'PMCRW needs PMC_F_OLDVALUE or PMC_F_NEWVALUE');
      const pmc = this.findPmc(caller, id);
      if (pmc.state !== PmcState.ALLOCATED && pmc.state !== PmcState.STOPPED && pmc.state !== PmcState.RUNNING) {
        throw new PmcError('EINVAL', `PMC is ${PmcState[pmc.state]}`);
      }
      if (pmc.state === PmcState.RUNNING && flags & PmcFlags.NEWVALUE) throw new PmcError('EBUSY', 'a running PMC cannot be written; stop it first');
      if (pmc.isSystem && !this.isCpuActive(pmc.cpu)) throw new PmcError('ENXIO', `CPU ${pmc.cpu} is not online`);
      const old = flags & PmcFlags.OLDVALUE ? pmc.read() : undefined;
      if (flags & PmcFlags.NEWVALUE) pmc.write(value);
      return old;
    });
  }

  /** PMCSETCOUNT: the reload count of a sampling PMC, the initial count of a counting one. */
  pmcSetCount(caller: Caller, id: PmcId, count: bigint): void {
    this.op(() => {
      const pmc = this.findPmc(caller, id);
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
  pmcGetMsr(caller: Caller, id: PmcId): number {
    return this.op(() => {
      const pmc = this.findPmc(caller, id);
      const only = [...pmc.targets.keys()];
      if (!isVirtualMode(pmc.mode) || pmc.flags & PmcFlags.DESCENDANTS) throw new PmcError('EINVAL', 'only a process-mode PMC without descendants has an MSR');
      if (only.length !== 1 || only[0] !== pmc.owner.pid) throw new PmcError('EINVAL', 'the PMC must be attached to its owner alone');
      throw new PmcError('ENOSYS', `class ${pmc.cls.name} has no user-readable counter (rdpmc)`);
    });
  }

  // ---- release and owner exit ---------------------------------------------

  pmcRelease(caller: Caller, id: PmcId): void {
    this.op(() => {
      const pmc = this.findPmc(caller, id);
      this.releasePmc(pmc);
      this.maybeRemoveOwner(pmc.owner);
    });
  }

  /** pmc_release_pmc_descriptor(): stop, detach every target, free the row. */
  private releasePmc(pmc: Pmc): void {
    if (pmc.state === PmcState.RUNNING) this.stop(pmc);
    for (const pid of [...pmc.targets.keys()]) this.detachOneProcess(pmc, pid, false);
    if (pmc.cpuCounter) {
      pmc.cpuCounter.close();
      pmc.cpuCounter = undefined;
      this.rows.setHolder(pmc.cpu, pmc.row, undefined);
    }
    this.rows.unmark(pmc.row, pmc.mode);
    pmc.state = PmcState.DELETED;
    pmc.owner.pmcs.delete(pmc.id);
  }

  /**
   * The owner process went away (exited, closed the module, or its pmcd
   * connection dropped). Every PMC is released at once; the promise settles
   * when the owner's log is closed (CLOSELOG written), or given up (a reader
   * that takes nothing for LOG_STALL_MS), and rejects with the error that
   * lost the log's end.
   */
  ownerExited(caller: Caller): Promise<void> {
    const owner = this.owners.get(ownerKey(caller));
    if (!owner) return Promise.resolve();
    // The log's close starts first: it logs the exits of the PMCs' targets before they are released.
    const closing = this.logs.closeOwnerLog(owner);
    for (const pmc of [...owner.pmcs.values()]) this.releasePmc(pmc);
    owner.listeners.clear();
    this.owners.delete(owner.key);
    this.reaper.forget(owner);
    return closing;
  }

  /**
   * Release every owner: the module is unloaded. Settles when every log is
   * closed, or after `boundMs` at most, giving up the logs still ending then;
   * rejects with the first error.
   */
  async shutdown(boundMs = LOG_STALL_MS): Promise<void> {
    const closing = [...this.owners.values()].map((owner) => this.ownerExited(owner.caller));
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

  /** File descriptors held by all PMCs and target process handles, for accounting. */
  get openFdCount(): number {
    let n = 0;
    for (const o of this.owners.values()) for (const p of o.pmcs.values()) n += p.fdCount;
    for (const t of this.processes.values()) n += t.fdCount;
    return n;
  }
}

/** Row indices are 8 bits of a PMC id. */
const MAX_ROWS = 256;

const KERNEL_MODE_REFUSED = 'kernel mode is for root and CAP_PERFMON only, unless the administrator sets the unprivileged_kernel_callchains tunable';

/** A class whose events can be limited to user or kernel mode. */
function hasModes(cls: ClassDep): boolean {
  return (cls.caps & (PmcCaps.USER | PmcCaps.SYSTEM)) === (PmcCaps.USER | PmcCaps.SYSTEM);
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
  [PmcOp.PMCSETCOUNT]: (m, c, a) => m.pmcSetCount(c, a.id, a.count),
  [PmcOp.PMCSTART]: (m, c, a) => m.pmcStart(c, a.id),
  [PmcOp.PMCSTOP]: (m, c, a) => m.pmcStop(c, a.id),
  [PmcOp.RESOLVEEVENT]: (m, c, a) => m.resolveEvent(c, a.spec),
  [PmcOp.GETOWNERSTATS]: (m) => m.getOwnerStats(),
};
