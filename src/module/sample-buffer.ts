// A CPU's sample buffer (hwpmc's pmc_samplebuffer): `nsamples` slots, each
// big enough for the longest record a sample makes (a CALLCHAIN of
// `callchaindepth` pcs). Samples wait here between the kernel's ring and the
// owner's log, already encoded as log records, so the sweep only copies
// words. When it is full the PMCs of that CPU stall: nothing grows without
// bound.
//
// Slots are handed out from a free list and kept in time order (`order`):
// the drains of two PMCs on one CPU interleave in time, and the sweep merges
// the CPUs' buffers by time, so each buffer must give its oldest record first.
//
// The sample path (sample-processor.ts) runs once per sample and V8 compiles
// it without inlining (cli/v8-tuning.ts), so it reads the fields below
// directly instead of through methods: `room`, `first` and `end` are changed
// only by this class.
import type { Pmc } from './pmc.js';

export class SampleBuffer {
  readonly capacity: number;
  /** 32-bit words per slot. */
  readonly slotWords: number;
  /** The slots' records: slot i starts at word i * slotWords. */
  readonly words: Int32Array;
  /** The same memory as bytes. */
  readonly bytes: Uint8Array;
  /** Each slot's record time. */
  readonly ts: Float64Array;
  /** Each slot's PMC (its owner's log is where the record goes). */
  readonly pmc: (Pmc | undefined)[];
  /** Free slots: free[0..room); the next one to fill is free[room - 1]. */
  readonly free: Int32Array;
  room: number;
  /** Filled slots, oldest first, in order[first..end). */
  readonly order: Int32Array;
  first = 0;
  end = 0;

  constructor(capacity: number, slotBytes: number) {
    this.capacity = capacity;
    this.slotWords = Math.ceil(slotBytes / 4);
    this.words = new Int32Array(capacity * this.slotWords);
    this.bytes = new Uint8Array(this.words.buffer);
    this.ts = new Float64Array(capacity);
    // Filled (not holey): storing the first PMC changes no element kind, so the optimized sample path is not thrown away.
    this.pmc = new Array<Pmc | undefined>(capacity).fill(undefined);
    this.free = Int32Array.from({ length: capacity }, (_, i) => capacity - 1 - i);
    this.room = capacity;
    this.order = new Int32Array(capacity);
  }

  get size(): number {
    return this.end - this.first;
  }
  get full(): boolean {
    return this.room === 0;
  }

  /** A free slot to fill (call commit() once it is filled); the buffer must not be full. */
  reserve(): number {
    return this.free[this.room - 1];
  }

  /** The reserved slot holds a record for `pmc` of time `ts` (the one in its header). */
  commit(slot: number, pmc: Pmc, ts: number): void {
    this.room--;
    this.ts[slot] = ts;
    this.pmc[slot] = pmc;
    const order = this.order;
    if (this.end === this.capacity) {
      order.copyWithin(0, this.first, this.end);
      this.end -= this.first;
      this.first = 0;
    }
    // Records nearly always come in time order: append. Otherwise insert.
    let at = this.end;
    if (at > this.first && this.ts[order[at - 1]] > ts) {
      let lo = this.first;
      let hi = at - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.ts[order[mid]] > ts) hi = mid;
        else lo = mid + 1;
      }
      at = lo;
      order.copyWithin(at + 1, at, this.end);
    }
    order[at] = slot;
    this.end++;
  }

  /** The oldest record's slot, or -1. */
  oldest(): number {
    return this.first === this.end ? -1 : this.order[this.first];
  }

  /** Time of the oldest record, Infinity when empty. */
  oldestTime(): number {
    return this.first === this.end ? Infinity : this.ts[this.order[this.first]];
  }

  dropOldest(): void {
    const slot = this.order[this.first++];
    this.pmc[slot] = undefined;
    this.free[this.room++] = slot;
    if (this.first === this.end) this.first = this.end = 0;
  }

  /** First word of a slot. */
  slotWord(slot: number): number {
    return slot * this.slotWords;
  }
}
