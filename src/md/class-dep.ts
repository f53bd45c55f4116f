// The contract between the machine-independent module and one PMC class
// (hwpmc's struct pmc_classdep). The module owns rows, owners, targets and
// states; a class only knows how to make its events count or sample.
import type { SampleSource } from './sample-sink.js';

export interface ClassEvent {
  name: string;
  code: number;
  description?: string;
}

/** How counting spreads from the threads that exist at attach time. */
export type Inheritance =
  /** New threads of the target are counted, new child processes are not (inherit_thread). */
  | 'threads'
  /** New threads and every new descendant process are counted (PMC_F_DESCENDANTS). */
  | 'descendants';

/** What the module asks of a class for one PMC: the MD half of PMCALLOCATE's arguments. */
export interface HwRequest {
  event: number;
  /** Machine-dependent event configuration (hwpmc's pm_md): PMU term specs carry it. */
  md?: { config: bigint; config1?: bigint; config2?: bigint };
  countUser: boolean;
  countKernel: boolean;
  sampling: boolean;
  /** Sampling: events between samples (a reload count), or samples per second when `frequency` is set. */
  reloadCount: bigint;
  frequency: boolean;
  callchain: boolean;
  callchainDepth: number;
  /** Counting: also report each thread's count at every context switch (PMC_F_LOG_PROCCSW). */
  contextSwitchValues: boolean;
  /**
   * Counting with 'descendants' (PMC_F_LOG_PROCEXIT): also each process's own
   * count, the target's (ownCount) and each descendant's at its exit
   * (descendantExits).
   */
  processCounts?: boolean;
}

/** A process forked below a target has exited: what it counted itself, or undefined when that was lost. */
export interface DescendantExit {
  pid: number;
  value: bigint | undefined;
}


/**
 * The hardware side of one PMC on one target: every thread of a process, or
 * one CPU. Opened disabled; the module starts and stops it.
 */
export interface HwCounterSet {
  /**
   * Counting: the sum over all the set's events, raw (the module keeps the
   * offsets). `batch` marks one read of several PMCs (a number new for each
   * such read): sets opened with the same group scope then share one read
   * of each perf group they are in.
   */
  read(batch?: number): bigint;
  start(): void;
  stop(): void;
  close(): void;
  /** File descriptors this set holds, for accounting and leak tests. */
  readonly fdCount: number;
  /** Sampling sets: the ring buffers to drain. */
  readonly sampleSources: readonly SampleSource[];
  /**
   * With 'descendants' inheritance: how many processes forked below the
   * target since it was opened are alive now (the kernel counts them but
   * names them to nobody). Undefined when the set does not follow descendants.
   */
  liveDescendants?(): number | undefined;
  /** With processCounts: what the target's own threads counted, its descendants not included. */
  ownCount?(): bigint;
  /** With processCounts: the descendants that exited since the last call, in exit order. */
  descendantExits?(): DescendantExit[];
}

export interface ClassDep {
  /** PmcClass number. */
  readonly classId: number;
  /** Name as pmccontrol prints it: SOFT, HW, CACHE, TRACEPOINT, or a PMU's name. */
  readonly name: string;
  readonly caps: number;
  readonly width: number;
  /** Rows this class contributes to the module's row space. */
  readonly rows: number;
  readonly available: boolean;
  readonly unavailableReason?: string;
  events(): ClassEvent[];
  eventName(code: number, md?: HwRequest['md']): string;
  /** Validate that a PMC with this request can run on the class (EINVAL, EOPNOTSUPP...). */
  validate(request: HwRequest): void;
  /**
   * Open the counters of one target process (every current thread) for a
   * virtual PMC. `groupScope`: any object standing for the owner; counting
   * sets opened with the same one may be grouped so they read together.
   */
  openProcess(request: HwRequest, pid: number, inheritance: Inheritance, groupScope?: object): HwCounterSet;
  /** Open a system-wide counter on one CPU (`groupScope` as for openProcess). */
  openCpu(request: HwRequest, cpu: number, groupScope?: object): HwCounterSet;
}
