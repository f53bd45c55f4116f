// A CPU's sample buffer (hwpmc's pmc_samplebuffer): a fixed ring of
// `nsamples` samples, each with room for `callchaindepth` PCs. Samples wait
// here between the kernel's ring buffer and the owner's log; when it is full
// the PMCs of that CPU stall, so nothing grows without bound.
import type { Pmc } from './pmc.js';

export class SampleBuffer {
  readonly capacity: number;
  readonly depth: number;
  /** PCs of every slot, little-endian u64s: slot i starts at i * depth * 8. */
  readonly pcs: Uint8Array;
  readonly pcsView: DataView;
  readonly ts: Float64Array;
  readonly pid: Int32Array;
  readonly tid: Int32Array;
  readonly cpuflags: Uint32Array;
  readonly npcs: Uint16Array;
  readonly pmc: (Pmc | undefined)[];
  private head = 0;
  private count = 0;

  constructor(capacity: number, depth: number) {
    this.capacity = capacity;
    this.depth = depth;
    this.pcs = new Uint8Array(capacity * depth * 8);
    this.pcsView = new DataView(this.pcs.buffer);
    this.ts = new Float64Array(capacity);
    this.pid = new Int32Array(capacity);
    this.tid = new Int32Array(capacity);
    this.cpuflags = new Uint32Array(capacity);
    this.npcs = new Uint16Array(capacity);
    this.pmc = new Array<Pmc | undefined>(capacity);
  }

  get size(): number {
    return this.count;
  }
  get full(): boolean {
    return this.count === this.capacity;
  }

  /** The slot the next sample goes into; call commit() once it is filled. */
  nextSlot(): number {
    return (this.head + this.count) % this.capacity;
  }
  commit(): void {
    this.count++;
  }

  /** The oldest sample's slot, or -1. */
  oldest(): number {
    return this.count === 0 ? -1 : this.head;
  }
  dropOldest(): void {
    this.pmc[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.count--;
  }

  slotOffset(slot: number): number {
    return slot * this.depth * 8;
  }
}
