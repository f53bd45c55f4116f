// An owner's log (PMC_PO_OWNS_LOGFILE): the writer, the drop and loss counts
// not yet reported, and what the log has already been told about processes,
// so that one exec or mapping seen through several rings is logged once.
// A process or mapping record the log cannot take is counted by kind and
// reported in the next DROPNOTIFY: nothing is lost without the log saying so.
import type { LogWriter } from '../log/log-writer.js';
import { LogType, type LogRecord, type MapInRecord, type SidebandDrops } from '../log/records.js';
import type { DriverStats } from './driver-stats.js';

const SEEN_LIMIT = 4096;

/** The DROPNOTIFY count each side-band record type falls under. */
const SIDEBAND_KIND: Partial<Record<LogType, keyof SidebandDrops>> = {
  [LogType.PROCEXEC]: 'exec',
  [LogType.PROCFORK]: 'fork',
  [LogType.THR_CREATE]: 'thread',
  [LogType.THR_EXIT]: 'thread',
  [LogType.SYSEXIT]: 'exit',
  [LogType.PROCEXIT]: 'exit',
  [LogType.MAP_IN]: 'map',
  [LogType.PROCCSW]: 'csw',
};

/** "pid:start:offset+length:path": a mapping, as MAP_IN describes it. */
const mappingKey = (r: MapInRecord): string => `${r.pid}:${r.start}:${r.extent?.offset}+${r.extent?.length}:${r.pathname}`;

const noSidebandDrops = (): SidebandDrops => ({ exec: 0, fork: 0, thread: 0, exit: 0, map: 0, csw: 0 });

export class OwnerLog {
  /** Samples dropped and reported lost by the kernel since the last DROPNOTIFY. */
  pendingDropped = 0;
  pendingLost = 0;
  /** Side-band records not logged since the last DROPNOTIFY. */
  pendingSideband = noSidebandDrops();
  /** Processes that exec'ed and whose new executable's mapping has not come yet. */
  readonly execPending = new Set<number>();
  /** MAP_IN already logged (mappingKey). */
  private readonly mapped = new Set<string>();
  /** Side-band events already logged, in arrival order (bounded). */
  private readonly sightings = new Set<string>();
  kernelMapped = false;
  allProcessesMapped = false;
  /** The writer's buffer request counts already added to the driver statistics. */
  private accountedRequests = 0;
  private accountedFailures = 0;
  private accountedLost = 0;
  /** Settles when the log has ended (CLOSELOG written, or the log given up). */
  ending?: Promise<void>;

  constructor(
    readonly writer: LogWriter,
    private readonly stats: DriverStats,
    /** Closes the log's descriptor when the module owns it (pmcd); called once the log is closed or abandoned. */
    readonly release: () => void = () => undefined,
  ) {}

  /** Writes one record; false when the log is full (a side-band record is then counted as not logged). */
  write(rec: LogRecord): boolean {
    if (this.writer.writeRecord(rec)) return true;
    this.countUnlogged(rec.type);
    return false;
  }

  /** A side-band record of this type will not reach the log. */
  countUnlogged(type: LogType): void {
    const kind = SIDEBAND_KIND[type];
    if (kind) this.pendingSideband[kind]++;
  }

  /** Drops, losses or unlogged side-band records wait for a DROPNOTIFY. */
  get hasPendingDrops(): boolean {
    return this.pendingDropped !== 0 || this.pendingLost !== 0 || Object.values(this.pendingSideband).some((n) => n !== 0);
  }

  /**
   * Adds the writer's buffer requests since the last call to the driver
   * statistics: once per sweep, not per record, so the sample path pays nothing.
   */
  accountBuffers(): void {
    this.stats.buffer_requests += this.writer.bufferRequests - this.accountedRequests;
    this.stats.buffer_requests_failed += this.writer.bufferRequestsFailed - this.accountedFailures;
    this.stats.log_records_lost += this.writer.recordsLost - this.accountedLost;
    this.accountedRequests = this.writer.bufferRequests;
    this.accountedFailures = this.writer.bufferRequestsFailed;
    this.accountedLost = this.writer.recordsLost;
  }

  /** Whether a side-band event (by key) was logged already. */
  seen(key: string): boolean {
    return this.sightings.has(key);
  }

  /** Whether this MAP_IN was logged already. */
  isMapped(rec: MapInRecord): boolean {
    return this.mapped.has(mappingKey(rec));
  }

  /** True the first time a side-band event (by key) is seen. */
  firstSighting(key: string): boolean {
    if (this.sightings.has(key)) return false;
    this.sightings.add(key);
    if (this.sightings.size > SEEN_LIMIT) this.sightings.delete(this.sightings.values().next().value as string);
    return true;
  }

  /** Logs MAP_IN once per mapping (several rings report each). */
  mapIn(rec: MapInRecord): void {
    const key = mappingKey(rec);
    if (this.mapped.has(key)) return;
    if (this.write(rec)) this.mapped.add(key);
  }

  /** A process's address space was replaced (exec) or ended: its mappings may be logged again. */
  forgetMappings(pid: number): void {
    const prefix = `${pid}:`;
    for (const k of this.mapped) if (k.startsWith(prefix)) this.mapped.delete(k);
  }

  /** DROPNOTIFY with what was dropped and lost since the last one, when there is anything and room. */
  reportDrops(ts: number): void {
    if (!this.hasPendingDrops) return;
    if (this.write({ type: LogType.DROPNOTIFY, ts, dropped: this.pendingDropped, lost: this.pendingLost, sideband: this.pendingSideband })) {
      this.pendingDropped = 0;
      this.pendingLost = 0;
      this.pendingSideband = noSidebandDrops();
    }
  }
}
