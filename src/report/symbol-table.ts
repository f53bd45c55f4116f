// A sorted table of function symbols searched by address: the common shape
// of ELF symbol tables, /proc/kallsyms and perf-PID.map files.

export interface SymbolCandidate {
  start: number;
  /** 0 when the source gives no size: the symbol then runs to the next one (or to `limit`). */
  size: number;
  name: string;
  /** Among symbols at the same address the lowest rank names the function. */
  rank: number;
  /** Upper bound for a zero-size symbol (the end of its section). */
  limit?: number;
}

export class SymbolTable {
  private constructor(
    readonly starts: Float64Array,
    readonly ends: Float64Array,
    readonly names: string[],
  ) {}

  static readonly EMPTY = new SymbolTable(new Float64Array(0), new Float64Array(0), []);

  /** Sorts, merges aliases (same start) and gives zero-size symbols an end. */
  static build(candidates: SymbolCandidate[], defaultLimit = Infinity): SymbolTable {
    const sorted = candidates
      .filter((c) => Number.isFinite(c.start) && c.start >= 0)
      .sort((a, b) => a.start - b.start || a.rank - b.rank || b.size - a.size);
    const starts: number[] = [];
    const sizes: number[] = [];
    const limits: number[] = [];
    const names: string[] = [];
    for (const c of sorted) {
      const last = starts.length - 1;
      if (last >= 0 && starts[last] === c.start) {
        // An alias: keep the best-ranked name, but a sized alias gives the extent.
        if (sizes[last] === 0 && c.size > 0) sizes[last] = c.size;
        continue;
      }
      starts.push(c.start);
      sizes.push(c.size);
      limits.push(c.limit ?? defaultLimit);
      names.push(c.name);
    }
    const n = starts.length;
    const ends = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      if (sizes[i] > 0) ends[i] = starts[i] + sizes[i];
      else ends[i] = Math.min(i + 1 < n ? starts[i + 1] : Infinity, limits[i]);
      if (ends[i] <= starts[i]) ends[i] = starts[i] + 1;
    }
    return new SymbolTable(Float64Array.from(starts), ends, names);
  }

  get length(): number {
    return this.names.length;
  }

  /** Index of the symbol containing `addr`, or -1. */
  find(addr: number): number {
    const starts = this.starts;
    let lo = 0;
    let hi = starts.length - 1;
    if (hi < 0 || addr < starts[0]) return -1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (starts[mid] <= addr) lo = mid;
      else hi = mid - 1;
    }
    if (addr < this.ends[lo]) return lo;
    // A small symbol nested in a larger one (assembly labels) hides its parent.
    if (lo > 0 && addr < this.ends[lo - 1]) return lo - 1;
    return -1;
  }
}
