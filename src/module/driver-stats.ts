// Module-wide statistics (struct pmc_driverstats), counted where hwpmc counts them.
export interface DriverStats {
  /** Samples seen whose PMC was gone or not running. */
  intr_ignored: number;
  /** Samples taken from the kernel's ring buffers into the sample buffers. */
  intr_processed: number;
  /** Samples refused because a CPU's sample buffer was full (sampling stalls). */
  intr_bufferfull: number;
  syscalls: number;
  syscall_errors: number;
  /** Log buffer requests, and those that failed because all buffers were in use. */
  buffer_requests: number;
  buffer_requests_failed: number;
  /** Passes that moved samples from sample buffers to owner logs. */
  log_sweeps: number;
  /** Log records the log's descriptor never took: discarded after a write error, or when a log whose reader stopped reading was given up (tspmc). */
  log_records_lost: number;
  /** Samples the kernel dropped because a ring buffer was full (PERF_RECORD_LOST; tspmc: hwpmc's own buffers are the rings). */
  samples_lost: number;
}

export function newDriverStats(): DriverStats {
  return {
    intr_ignored: 0,
    intr_processed: 0,
    intr_bufferfull: 0,
    syscalls: 0,
    syscall_errors: 0,
    buffer_requests: 0,
    buffer_requests_failed: 0,
    log_sweeps: 0,
    log_records_lost: 0,
    samples_lost: 0,
  };
}

/**
 * Runs one op, counting it (and its failure) in the statistics. An async op
 * is counted when called and, if its promise rejects, as failed then.
 */
export function countOp<T>(stats: DriverStats, fn: () => T): T {
  stats.syscalls++;
  try {
    const r = fn();
    if (r instanceof Promise) {
      return r.catch((e: unknown) => {
        stats.syscall_errors++;
        throw e;
      }) as T;
    }
    return r;
  } catch (e) {
    stats.syscall_errors++;
    throw e;
  }
}
