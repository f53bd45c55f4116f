// The analysis' memory limit. Everything that grows with the log (call tree
// nodes, frames, tasks, kept samples) lives in typed arrays that ask this
// budget before they grow, so a log whose analysis would not fit stops with
// one clear error instead of exhausting the machine or V8's heap.
import { getHeapStatistics } from 'node:v8';
import { PmcError } from '../pmc-error.js';

/** Default limit of the analysis' tables: with Node's own memory, under 1 GB of RSS. */
export const DEFAULT_MEMORY_LIMIT_MIB = 512;

export class AnalysisLimitError extends PmcError {
  constructor(
    readonly limitBytes: number,
    what: string,
    /** What raises the limit: pmcstat's option, or Node's for its heap. */
    readonly raiseWith = '--memory-limit MIB',
    limitName = 'its memory limit',
  ) {
    super('ENOMEM', `the analysis needs more than ${limitName} of ${Math.round(limitBytes / 1048576)} MiB (${what})`);
    this.name = 'AnalysisLimitError';
  }
}

// The JavaScript heap is checked every this many bytes taken: objects the
// tables keep there (profiles, processes, images) must not reach V8's limit,
// whose end is an abort, not an exception.
const HEAP_CHECK_BYTES = 1 << 20;
const HEAP_SHARE = 0.85;
// heap_size_limit counts the young generation too (48 MiB on 64-bit Node 20); the abort comes when the old one is full.
const YOUNG_GENERATION = 64 << 20;

type Column = Int32Array | Uint32Array | Float64Array | Uint8Array;

export class MemoryBudget {
  private used = 0;
  private sinceHeapCheck = 0;
  /** What is using the memory, for the error: named by the tables, refreshed as they grow. */
  private readonly users = new Map<string, () => string>();

  constructor(readonly limitBytes = DEFAULT_MEMORY_LIMIT_MIB * 1048576) {}

  /** Registers a description of a table (shown when the limit is hit). */
  describe(name: string, text: () => string): void {
    this.users.set(name, text);
  }

  /** Takes `bytes` from the budget or throws AnalysisLimitError. */
  take(bytes: number): void {
    if (this.used + bytes > this.limitBytes) throw new AnalysisLimitError(this.limitBytes, this.what());
    this.used += bytes;
    this.sinceHeapCheck += bytes;
    if (this.sinceHeapCheck >= HEAP_CHECK_BYTES) {
      this.sinceHeapCheck = 0;
      const heap = getHeapStatistics();
      const old = heap.heap_size_limit - YOUNG_GENERATION;
      if (heap.used_heap_size > HEAP_SHARE * old) {
        throw new AnalysisLimitError(old, this.what(), 'NODE_OPTIONS=--max-old-space-size=MIB', "Node's JavaScript heap");
      }
    }
  }

  private what(): string {
    return [...this.users.values()].map((f) => f()).join(', ') || `${this.used} bytes in use`;
  }

  give(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }

  /** A copy of `a` with room for at least `min` elements (doubling), charged to the budget. */
  grow<T extends Column>(a: T, min: number): T {
    let n = Math.max(16, a.length);
    while (n < min) n *= 2;
    if (n === a.length) return a;
    this.take((n - a.length) * a.BYTES_PER_ELEMENT);
    const b = new (a.constructor as new (n: number) => T)(n);
    b.set(a);
    return b;
  }
}
