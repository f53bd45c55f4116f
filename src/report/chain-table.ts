// Identical samples counted before they are symbolized. A profile is mostly
// the same few call chains over and over (a hot loop, the same callers): a
// sample costs a hash of its words and a compare here, and each distinct
// chain is resolved and added to the call tree once, with its count, when
// the table is drained (full, or before the mappings it was recorded
// against change). The table is bounded: a log of all-distinct chains
// drains it often and costs what it would without it.
import type { MemoryBudget } from './memory-budget.js';
import { emptySlots } from './open-index.js';

// Per entry: context, tid, pmcid, npcs, then the PCs as (low, high) u32 pairs.
const HEAD = 4;
/** Drained when its chains hold this many words (4 MiB) or this many entries. */
const MAX_WORDS = 1 << 20;
const MAX_ENTRIES = 1 << 16;

export type ChainVisitor = (words: Uint32Array, at: number, npcs: number, context: number, tid: number, pmcid: number, count: number) => void;

export class ChainTable {
  private readonly data = new Uint32Array(MAX_WORDS + HEAD + 2 * 512);
  private readonly starts = new Int32Array(MAX_ENTRIES);
  private readonly counts = new Uint32Array(MAX_ENTRIES);
  private readonly hashes = new Uint32Array(MAX_ENTRIES);
  private readonly slotOf = new Int32Array(MAX_ENTRIES);
  private readonly slots = emptySlots(2 * MAX_ENTRIES);
  private used = 0;
  private n = 0;

  constructor(budget: MemoryBudget) {
    budget.take(this.data.byteLength + MAX_ENTRIES * 16 + this.slots.byteLength);
  }

  get size(): number {
    return this.n;
  }

  /**
   * Counts a sample; returns false when the table is full (drain it, then
   * add again). `words[at..at + 2 * npcs)` are its PCs.
   */
  add(words: Uint32Array, at: number, npcs: number, context: number, tid: number, pmcid: number): boolean {
    const len = 2 * npcs;
    let h = Math.imul(context ^ Math.imul(tid, 0x85ebca6b) ^ Math.imul(pmcid, 0xc2b2ae35) ^ npcs, 0x9e3779b1);
    for (let i = 0; i < len; i++) {
      h = Math.imul(h ^ words[at + i], 0x9e3779b1);
      h ^= h >>> 15;
    }
    h >>>= 0;
    const slots = this.slots;
    const mask = slots.length - 1;
    const data = this.data;
    let s = h & mask;
    for (let e = slots[s]; e >= 0; e = slots[s]) {
      if (this.hashes[e] === h) {
        const o = this.starts[e];
        if (data[o] === context && data[o + 1] === tid && data[o + 2] === pmcid && data[o + 3] === npcs && sameWords(data, o + HEAD, words, at, len)) {
          this.counts[e]++;
          return true;
        }
      }
      s = (s + 1) & mask;
    }
    if (this.n === MAX_ENTRIES || this.used + HEAD + len > data.length) return false;
    const e = this.n++;
    const o = this.used;
    data[o] = context;
    data[o + 1] = tid;
    data[o + 2] = pmcid;
    data[o + 3] = npcs;
    for (let i = 0; i < len; i++) data[o + HEAD + i] = words[at + i];
    this.used = o + HEAD + len;
    this.starts[e] = o;
    this.counts[e] = 1;
    this.hashes[e] = h;
    this.slotOf[e] = s;
    slots[s] = e;
    return true;
  }

  /** Gives every distinct chain with its count to `visit`, in first-seen order, and empties the table. */
  drain(visit: ChainVisitor): void {
    const data = this.data;
    for (let e = 0; e < this.n; e++) {
      const o = this.starts[e];
      visit(data, o + HEAD, data[o + 3], data[o], data[o + 1] | 0, data[o + 2], this.counts[e]);
      this.slots[this.slotOf[e]] = -1;
    }
    this.n = 0;
    this.used = 0;
  }
}

function sameWords(a: Uint32Array, ai: number, b: Uint32Array, bi: number, len: number): boolean {
  for (let i = 0; i < len; i++) if (a[ai + i] !== b[bi + i]) return false;
  return true;
}
