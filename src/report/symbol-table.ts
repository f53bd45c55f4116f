// A sorted table of function symbols searched by address: the common shape
// of ELF symbol tables, /proc/kallsyms and perf-PID.map files.

/**
 * Collects symbols, then sorts them into a table. Kept as parallel arrays:
 * a large C++ binary brings a hundred thousand symbols.
 */
export class SymbolTableBuilder {
  private readonly starts: number[] = [];
  private readonly sizes: number[] = [];
  private readonly ranks: number[] = [];
  private readonly limits: number[] = [];
  private readonly names: (string | number)[] = [];

  get count(): number {
    return this.starts.length;
  }

  /**
   * `size` 0 means unknown: the symbol then runs to the next one (or to
   * `limit`, the end of its section). Among symbols at one address the lowest
   * `rank` names the function. `name` is a string or the offset of a
   * NUL-terminated name in the `strings` given to build(), decoded only when
   * looked up (a profile needs a few names of many).
   */
  add(start: number, size: number, name: string | number, rank: number, limit = Infinity): void {
    if (!Number.isFinite(start) || start < 0) return;
    this.starts.push(start);
    this.sizes.push(size);
    this.ranks.push(rank);
    this.limits.push(limit);
    this.names.push(name);
  }

  /** Sorts, merges aliases (same start) and gives zero-size symbols an end. */
  build(defaultLimit = Infinity, strings?: Buffer): SymbolTable {
    const { starts, sizes, ranks, limits, names } = this;
    // A plain array: its TimSort makes short work of tables that are already in order (kallsyms).
    const order = Array.from({ length: starts.length }, (_, i) => i);
    order.sort((a, b) => starts[a] - starts[b] || ranks[a] - ranks[b] || sizes[b] - sizes[a]);
    const outStarts: number[] = [];
    const outSizes: number[] = [];
    const outLimits: number[] = [];
    const outNames: (string | number)[] = [];
    for (const i of order) {
      const last = outStarts.length - 1;
      if (last >= 0 && outStarts[last] === starts[i]) {
        // An alias: keep the best-ranked name, but a sized alias gives the extent.
        if (outSizes[last] === 0 && sizes[i] > 0) outSizes[last] = sizes[i];
        continue;
      }
      outStarts.push(starts[i]);
      outSizes.push(sizes[i]);
      outLimits.push(Math.min(limits[i], defaultLimit));
      outNames.push(names[i]);
    }
    const n = outStarts.length;
    const ends = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      if (outSizes[i] > 0) ends[i] = outStarts[i] + outSizes[i];
      else ends[i] = Math.min(i + 1 < n ? outStarts[i + 1] : Infinity, outLimits[i]);
      if (ends[i] <= outStarts[i]) ends[i] = outStarts[i] + 1;
    }
    return new SymbolTable(Float64Array.from(outStarts), ends, outNames, strings);
  }
}

export class SymbolTable {
  /** Made by SymbolTableBuilder. */
  constructor(
    readonly starts: Float64Array,
    readonly ends: Float64Array,
    private readonly names: (string | number)[],
    private readonly strings?: Buffer,
  ) {}

  static readonly EMPTY = new SymbolTable(new Float64Array(0), new Float64Array(0), []);

  get length(): number {
    return this.names.length;
  }

  name(i: number): string {
    const n = this.names[i];
    if (typeof n === 'string') return n;
    const strings = this.strings!;
    const end = strings.indexOf(0, n);
    const s = strings.toString('utf8', n, end < 0 ? strings.length : end);
    this.names[i] = s;
    return s;
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
