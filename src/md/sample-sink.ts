// What a sampling source hands the machine-independent module: normalized
// samples and process events, through callbacks the module implements. This
// is hwpmc's MD half calling pmc_process_interrupt() and the process hooks
// (perf's struct perf_tool does the same for its readers): the module sees no
// ring, no record format, no CPU mode bits and no address-space layout. A
// new source (a timer sampler where perf is missing, a BPF one) implements
// SampleSource in one file of md/ and produces these.

/** One sample, as pmc_process_interrupt() gets it. Valid only during the sink's call (it is reused). */
export interface Sample {
  readonly cpu: number;
  readonly pid: number;
  readonly tid: number;
  /** Nanoseconds on PMC_CLOCKID (src/pmc-common.ts). */
  readonly time: number;
  /** The sampled PC was in user mode. */
  readonly user: boolean;
  /**
   * Copies the call chain, sampled PC first, then return addresses from
   * callee to caller, into `dst` as 64-bit little-endian addresses (two
   * int32 words each, low word first) from word `at`: at most `maxDepth`
   * of them. A sample taken in the kernel keeps its user-mode frames only
   * with `withUser` (pmcstat -U). Returns how many addresses it copied.
   */
  copyChain(dst: Int32Array, at: number, maxDepth: number, withUser: boolean): number;
}

/** Process and mapping events that come with the samples (the module's exec, fork, exit and mmap hooks). */
export type ProcessEvent =
  /** `pid` replaced its image (execve); `comm` is its new command name. */
  | { kind: 'exec'; time: number; pid: number; comm: string }
  /**
   * An executable mapping of a file (or the vdso) in `pid`, whose image starts
   * (file offset 0) at `start`: it maps file bytes [offset, offset + length)
   * at start + offset.
   */
  | { kind: 'map'; time: number; pid: number; start: bigint; offset: bigint; length: bigint; path: string }
  /** `pid` was forked from `ppid`. */
  | { kind: 'fork'; time: number; pid: number; ppid: number }
  /** Thread `tid` started in `pid`. */
  | { kind: 'thread'; time: number; pid: number; tid: number }
  /** Process `pid` exited (its last thread). */
  | { kind: 'exit'; time: number; pid: number }
  /** Thread `tid` of `pid` exited. */
  | { kind: 'thread-exit'; time: number; pid: number; tid: number };

/** The module's side of a drain (hwpmc's pmc_process_interrupt, its hooks, its PMC_F_LOG_PROCCSW path). */
export interface SampleSink {
  /**
   * One sample; false when there is no room for it now: it stays in the
   * source, which stops, and the next drain begins with it. (When its log
   * cannot take anything the module drops and counts the sample and pauses
   * the source instead.)
   */
  sample(s: Sample): boolean;
  process(e: ProcessEvent): void;
  /**
   * A thread left a CPU (PMC_F_LOG_PROCCSW): `count` is what its counter had
   * counted on that CPU at the switch (cumulative, from the counter's start).
   */
  switchOut(time: number, cpu: number, pid: number, tid: number, count: number): boolean;
  /** The source lost `count` samples it could not hold (the kernel's ring overflowed). */
  lost(count: number): void;
}

/**
 * One CPU's stream of samples for one PMC target (a perf ring, say). A
 * paused source takes no samples (hwpmc's stall: its counts stop too, so
 * samples recorded, dropped and lost still add up to the count) but still
 * delivers its process events.
 */
export interface SampleSource {
  readonly cpu: number;
  readonly stalled: boolean;
  pause(): void;
  resume(): void;
  /** Closed sources have nothing more to give. */
  readonly isClosed: boolean;
  /**
   * A descriptor that becomes readable when the source should be drained
   * soon (a perf ring past its wakeup watermark), for the module to wait on;
   * without one the module drains on a timer.
   */
  readonly pollFd?: number;
  /** Hands what the source holds to `sink`, oldest first, until the sink refuses a sample. */
  drain(sink: SampleSink): void;
}
