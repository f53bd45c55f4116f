// An owner's log (PMC_PO_OWNS_LOGFILE): the writer, the drop and loss counts
// not yet reported, and what the log has already been told about processes,
// so that one exec or mapping seen through several rings is logged once.
import type { LogWriter } from '../log/log-writer.js';
import { LogType, type LogRecord } from '../log/records.js';
import type { DriverStats } from './driver-stats.js';

const SEEN_LIMIT = 4096;

export class OwnerLog {
  /** Samples dropped and reported lost by the kernel since the last DROPNOTIFY. */
  pendingDropped = 0;
  pendingLost = 0;
  /** Processes that exec'ed and whose new executable's mapping has not come yet. */
  readonly execPending = new Set<number>();
  /** MAP_IN already logged: "pid:start:path". */
  private readonly mapped = new Set<string>();
  /** Side-band events already logged, in arrival order (bounded). */
  private readonly seen = new Set<string>();
  kernelMapped = false;
  allProcessesMapped = false;
  /** The writer's buffer request counts already added to the driver statistics. */
  private accountedRequests = 0;
  private accountedFailures = 0;

  constructor(
    readonly writer: LogWriter,
    private readonly stats: DriverStats,
    /** Closes the log's descriptor when the module owns it (pmcd); called once the log is closed or abandoned. */
    readonly release: () => void = () => undefined,
  ) {}

  /** Writes one record; false when the log is full. */
  write(rec: LogRecord): boolean {
    return this.writer.writeRecord(rec);
  }

  /**
   * Adds the writer's buffer requests since the last call to the driver
   * statistics: once per sweep, not per record, so the sample path pays nothing.
   */
  accountBuffers(): void {
    this.stats.buffer_requests += this.writer.bufferRequests - this.accountedRequests;
    this.stats.buffer_requests_failed += this.writer.bufferRequestsFailed - this.accountedFailures;
    this.accountedRequests = this.writer.bufferRequests;
    this.accountedFailures = this.writer.bufferRequestsFailed;
  }

  /** True the first time a side-band event (by key) is seen. */
  firstSighting(key: string): boolean {
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.values().next().value as string);
    return true;
  }

  /** Logs MAP_IN once per (pid, start, path). */
  mapIn(ts: number, pid: number, start: bigint, pathname: string): void {
    const key = `${pid}:${start}:${pathname}`;
    if (this.mapped.has(key)) return;
    if (this.write({ type: LogType.MAP_IN, ts, pid, start, pathname })) this.mapped.add(key);
  }

  /** A process's address space was replaced (exec) or ended: its mappings may be logged again. */
  forgetMappings(pid: number): void {
    const prefix = `${pid}:`;
    for (const k of this.mapped) if (k.startsWith(prefix)) this.mapped.delete(k);
  }

  /** DROPNOTIFY with what was dropped and lost since the last one, when there is anything and room. */
  reportDrops(ts: number): void {
    if (this.pendingDropped === 0 && this.pendingLost === 0) return;
    if (this.write({ type: LogType.DROPNOTIFY, ts, dropped: this.pendingDropped, lost: this.pendingLost })) {
      this.pendingDropped = 0;
      this.pendingLost = 0;
    }
  }
}
