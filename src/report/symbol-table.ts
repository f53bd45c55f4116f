// A sorted table of function symbols searched by address: the common shape
// of ELF symbol tables, /proc/kallsyms and perf-PID.map files.

/**
 * Collects symbols, then sorts them into a table. Kept as parallel arrays:
 * a large C++ binary brings a hundred thousand symbols.
 */
export class SymbolTableBuilder {
  private starts: Float64Array;
  private sizes: Float64Array;
  private ranks: Float64Array;
  private limits: Float64Array;
  private readonly names: (string | number)[] = [];
  private n = 0;

  /** `capacity`: the number of symbols expected (more are taken, at the cost of copying). */
  constructor(capacity = 1024) {
    const c = Math.max(16, Math.ceil(capacity));
    this.starts = new Float64Array(c);
    this.sizes = new Float64Array(c);
    this.ranks = new Float64Array(c);
    this.limits = new Float64Array(c);
  }

  get count(): number {
    return this.n;
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
    if (this.n === this.starts.length) this.grow();
    const i = this.n++;
    this.starts[i] = start;
    this.sizes[i] = size;
    this.ranks[i] = rank;
    this.limits[i] = limit;
    this.names.push(name);
  }

  /** Sorts, merges aliases (same start) and gives zero-size symbols an end. */
  build(defaultLimit = Infinity, strings?: Buffer): SymbolTable {
    const { starts, sizes, names, limits, n } = this;
    const order = this.order();
    const outStarts = new Float64Array(n);
    const outSizes = new Float64Array(n);
    const outLimits = new Float64Array(n);
    const ends = new Float64Array(n);
    const outNames: (string | number)[] = [];
    let m = 0;
    // One step past the last symbol (at address Infinity) gives the last symbol its end.
    for (let k = 0; k <= n; k++) {
      const i = k < n ? order[k] : -1;
      const start = i >= 0 ? starts[i] : Infinity;
      if (m > 0 && outStarts[m - 1] === start) {
        // An alias: keep the best-ranked name, but a sized alias gives the extent.
        if (outSizes[m - 1] === 0 && sizes[i] > 0) outSizes[m - 1] = sizes[i];
        continue;
      }
      // The previous symbol has all its aliases: its end is known.
      if (m > 0) {
        const p = m - 1;
        const end = outSizes[p] > 0 ? outStarts[p] + outSizes[p] : Math.min(start, outLimits[p]);
        ends[p] = end > outStarts[p] ? end : outStarts[p] + 1;
      }
      if (i < 0) break;
      outStarts[m] = start;
      outSizes[m] = sizes[i];
      outLimits[m] = Math.min(limits[i], defaultLimit);
      outNames.push(names[i]);
      m++;
    }
    return new SymbolTable(outStarts.slice(0, m), ends.slice(0, m), outNames, strings);
  }

  /**
   * Symbol indexes by address, then rank, then larger size first. kallsyms
   * comes in address order: then only aliases (runs of one address) are
   * sorted. Anything else (ELF tables, a reordered copy) is sorted whole.
   */
  private order(): Int32Array {
    const { starts, sizes, ranks, n } = this;
    const before = (a: number, b: number): number => starts[a] - starts[b] || ranks[a] - ranks[b] || sizes[b] - sizes[a] || a - b;
    const order = new Int32Array(n);
    let inAddressOrder = true;
    let run = 0;
    for (let i = 0; i < n; i++) {
      order[i] = i;
      if (starts[i] === starts[run]) continue;
      if (starts[i] < starts[run]) inAddressOrder = false;
      else if (inAddressOrder && i - run > 1) order.subarray(run, i).sort(before);
      run = i;
    }
    if (!inAddressOrder) return this.sortedByAddress(order, before);
    if (n - run > 1) order.subarray(run, n).sort(before);
    return order;
  }

  /**
   * `order` sorted by `before`. Link addresses of executables and libraries
   * fit 32 bits: then the addresses are sorted natively, as numbers that
   * carry their index, and only runs of one address go through `before` (a
   * JavaScript comparator over a whole table costs more than the rest of
   * loading it).
   */
  private sortedByAddress(order: Int32Array, before: (a: number, b: number) => number): Int32Array {
    const { starts, n } = this;
    const INDEX = 2 ** 20;
    if (n >= INDEX || !starts.subarray(0, n).every((s) => s < 2 ** 32)) return order.sort(before);
    const keys = new Float64Array(n);
    for (let i = 0; i < n; i++) keys[i] = starts[i] * INDEX + i;
    keys.sort();
    let run = 0;
    for (let k = 0; k <= n; k++) {
      if (k < n) order[k] = keys[k] % INDEX;
      if (k === n || starts[order[k]] !== starts[order[run]]) {
        if (k - run > 1) order.subarray(run, k).sort(before);
        run = k;
      }
    }
    return order;
  }

  private grow(): void {
    const more = (a: Float64Array): Float64Array => {
      const b = new Float64Array(a.length * 2);
      b.set(a);
      return b;
    };
    this.starts = more(this.starts);
    this.sizes = more(this.sizes);
    this.ranks = more(this.ranks);
    this.limits = more(this.limits);
  }
}

export class SymbolTable {
  /** Names decoded from offsets held in an Int32Array. */
  private decoded?: Map<number, string>;

  /**
   * Made by SymbolTableBuilder, or from offsets (a table sent by a worker or
   * read from the cache): each name is a string or the offset of a
   * NUL-terminated name in `strings`, decoded when first looked up.
   */
  constructor(
    readonly starts: Float64Array,
    readonly ends: Float64Array,
    private readonly names: (string | number)[] | Int32Array,
    private readonly strings?: Buffer,
  ) {}

  static readonly EMPTY = new SymbolTable(new Float64Array(0), new Float64Array(0), []);

  /** A table whose names are all NUL-terminated strings at offsets of `strings` (sent by a worker). */
  static fromOffsets(starts: Float64Array, ends: Float64Array, nameOffsets: Int32Array, strings: Buffer): SymbolTable {
    return new SymbolTable(starts, ends, nameOffsets, strings);
  }

  /** The name offsets into the strings buffer, when every name is one (for sending the table to another thread). */
  nameOffsets(): Int32Array | undefined {
    const names = this.names;
    if (!this.strings) return undefined;
    if (names instanceof Int32Array) return names;
    return names.every((n) => typeof n === 'number') ? Int32Array.from(names as number[]) : undefined;
  }

  /** The buffer names are read from, if any. */
  get stringBytes(): Buffer | undefined {
    return this.strings;
  }

  get length(): number {
    return this.names.length;
  }

  name(i: number): string {
    const names = this.names;
    if (names instanceof Int32Array) {
      let s = (this.decoded ??= new Map()).get(i);
      if (s === undefined) this.decoded.set(i, (s = this.decode(names[i])));
      return s;
    }
    const n = names[i];
    if (typeof n === 'string') return n;
    const s = this.decode(n);
    names[i] = s;
    return s;
  }

  private decode(offset: number): string {
    const strings = this.strings!;
    const end = strings.indexOf(0, offset);
    return strings.toString('utf8', offset, end < 0 ? strings.length : end);
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
