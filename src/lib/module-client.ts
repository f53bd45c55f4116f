// The module as an owner sees it: every op, bound to the calling owner.
// LocalModuleClient runs the module in this process; a pmcd client offers
// the same interface over a socket, hence the Promises.
import type { AllocateRequest, CpuInfo, PmcInfo, PmcModule } from '../module/pmc-module.js';
import type { DriverStats } from '../module/driver-stats.js';
import type { LogSink } from '../log/log-writer.js';
import type { OwnerSignal } from '../module/owner.js';
import type { PmcId, PmcState } from '../module/pmc-types.js';
import { type Caller, selfCaller } from '../module/caller.js';
import { loadModule } from '../module/load.js';

export interface ModuleClient {
  /** The owner's pid (this process for a local module). */
  readonly ownerPid: number;
  getModuleVersion(clientVersion?: number): Promise<number>;
  getCpuInfo(): Promise<CpuInfo>;
  getDriverStats(): Promise<DriverStats>;
  getPmcInfo(cpu: number): Promise<PmcInfo[]>;
  getDynEventInfo(classId: number): Promise<{ name: string; code: number }[]>;
  pmcAdmin(cpu: number, row: number, state: PmcState.DISABLED | PmcState.FREE): Promise<void>;
  pmcAllocate(request: AllocateRequest): Promise<PmcId>;
  pmcAttach(id: PmcId, pid: number): Promise<void>;
  pmcDetach(id: PmcId, pid: number): Promise<void>;
  pmcRelease(id: PmcId): Promise<void>;
  pmcRead(id: PmcId): Promise<bigint>;
  pmcRw(id: PmcId, flags: number, value?: bigint): Promise<bigint | undefined>;
  pmcSetCount(id: PmcId, count: bigint): Promise<void>;
  pmcStart(id: PmcId): Promise<void>;
  pmcStop(id: PmcId): Promise<void>;
  pmcGetMsr(id: PmcId): Promise<number>;
  /** CONFIGURELOG: log to a file descriptor or stream; null closes the log. */
  configureLog(sink: LogSink | null): Promise<void>;
  flushLog(): Promise<void>;
  closeLog(): Promise<void>;
  writeLog(userdata: number): Promise<void>;
  /** Out-of-band notices (hwpmc's SIGIO). Returns the unsubscribe function. */
  onSignal(listener: (s: OwnerSignal) => void): () => void;
  /** The owner goes away: every PMC is stopped and released. */
  close(): Promise<void>;
}

/** The module in this process, owned by this process. */
export class LocalModuleClient implements ModuleClient {
  constructor(
    readonly module: PmcModule = loadModule(),
    readonly caller: Caller = selfCaller(),
  ) {}

  get ownerPid(): number {
    return this.caller.pid;
  }

  async getModuleVersion(clientVersion?: number): Promise<number> {
    return this.module.getModuleVersion(clientVersion);
  }
  async getCpuInfo(): Promise<CpuInfo> {
    return this.module.getCpuInfo();
  }
  async getDriverStats(): Promise<DriverStats> {
    return this.module.getDriverStats();
  }
  async getPmcInfo(cpu: number): Promise<PmcInfo[]> {
    return this.module.getPmcInfo(cpu);
  }
  async getDynEventInfo(classId: number): Promise<{ name: string; code: number }[]> {
    return this.module.getDynEventInfo(classId);
  }
  async pmcAdmin(cpu: number, row: number, state: PmcState.DISABLED | PmcState.FREE): Promise<void> {
    this.module.pmcAdmin(this.caller, cpu, row, state);
  }
  async pmcAllocate(request: AllocateRequest): Promise<PmcId> {
    return this.module.pmcAllocate(this.caller, request);
  }
  async pmcAttach(id: PmcId, pid: number): Promise<void> {
    this.module.pmcAttach(this.caller, id, pid);
  }
  async pmcDetach(id: PmcId, pid: number): Promise<void> {
    this.module.pmcDetach(this.caller, id, pid);
  }
  async pmcRelease(id: PmcId): Promise<void> {
    this.module.pmcRelease(this.caller, id);
  }
  async pmcRead(id: PmcId): Promise<bigint> {
    return this.module.pmcRead(this.caller, id);
  }
  async pmcRw(id: PmcId, flags: number, value?: bigint): Promise<bigint | undefined> {
    return this.module.pmcRw(this.caller, id, flags, value);
  }
  async pmcSetCount(id: PmcId, count: bigint): Promise<void> {
    this.module.pmcSetCount(this.caller, id, count);
  }
  async pmcStart(id: PmcId): Promise<void> {
    this.module.pmcStart(this.caller, id);
  }
  async pmcStop(id: PmcId): Promise<void> {
    this.module.pmcStop(this.caller, id);
  }
  async pmcGetMsr(id: PmcId): Promise<number> {
    return this.module.pmcGetMsr(this.caller, id);
  }
  configureLog(sink: LogSink | null): Promise<void> {
    return this.module.configureLog(this.caller, sink);
  }
  flushLog(): Promise<void> {
    return this.module.flushLog(this.caller);
  }
  closeLog(): Promise<void> {
    return this.module.closeLog(this.caller);
  }
  async writeLog(userdata: number): Promise<void> {
    this.module.writeLog(this.caller, userdata);
  }
  onSignal(listener: (s: OwnerSignal) => void): () => void {
    return this.module.onSignal(this.caller, listener);
  }
  async close(): Promise<void> {
    this.module.ownerExited(this.caller);
  }
}
