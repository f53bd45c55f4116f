// Every sample kept whole, for the per-sample outputs (-m, -a, speedscope):
// one set of growing typed columns for all samples, charged to the memory
// budget, with each sample's view made when an output reads it.
import type { MemoryBudget } from './memory-budget.js';

/** One kept sample. */
export interface SampleRecord {
  profile: number;
  pid: number;
  tid: number;
  /** The chain as logged, sampled PC first. */
  pcs: BigUint64Array;
  frames: Int32Array;
  /** Link-time address each frame was looked up at (a return address minus one). */
  links: Float64Array;
  /** Runtime minus link-time address of the sampled PC. */
  leafBias: number;
}

export class SampleStore implements Iterable<SampleRecord> {
  /** Per sample: profile, pid, tid, leaf bias, and where its frames start. */
  private profiles = new Int32Array(0);
  private pids = new Int32Array(0);
  private tids = new Int32Array(0);
  private biases = new Float64Array(0);
  private firsts = new Float64Array(1);
  /** Per frame: the PC's two u32 halves, its frame, its link-time lookup address. */
  private words = new Uint32Array(0);
  private frameIds = new Int32Array(0);
  private linkAddrs = new Float64Array(0);
  private n = 0;
  private nframes = 0;

  constructor(private readonly budget: MemoryBudget) {
    budget.describe('samples', () => `${this.n} samples kept whole`);
  }

  get length(): number {
    return this.n;
  }

  /** Starts a sample of `npcs` frames: fill them with setFrame(), then call end(). */
  begin(profile: number, pid: number, tid: number, npcs: number): void {
    const b = this.budget;
    const i = this.n;
    if (i === this.pids.length) {
      this.profiles = b.grow(this.profiles, i + 1);
      this.pids = b.grow(this.pids, i + 1);
      this.tids = b.grow(this.tids, i + 1);
      this.biases = b.grow(this.biases, i + 1);
      this.firsts = b.grow(this.firsts, i + 2);
    }
    const need = this.nframes + npcs;
    if (need > this.frameIds.length) {
      this.frameIds = b.grow(this.frameIds, need);
      this.linkAddrs = b.grow(this.linkAddrs, need);
      this.words = b.grow(this.words, 2 * this.frameIds.length);
    }
    this.profiles[i] = profile;
    this.pids[i] = pid;
    this.tids[i] = tid;
    this.firsts[i] = this.nframes;
  }

  setFrame(k: number, lo: number, hi: number, frame: number, link: number): void {
    const at = this.nframes + k;
    this.words[2 * at] = lo;
    this.words[2 * at + 1] = hi;
    this.frameIds[at] = frame;
    this.linkAddrs[at] = link;
  }

  end(npcs: number, leafBias: number): void {
    this.biases[this.n] = leafBias;
    this.nframes += npcs;
    this.n++;
    this.firsts[this.n] = this.nframes;
  }

  /** Replaces each frame f by map[f] (ids past the map stay). */
  remapFrames(map: Int32Array): void {
    const ids = this.frameIds;
    for (let k = 0; k < this.nframes; k++) if (ids[k] < map.length) ids[k] = map[ids[k]];
  }

  get(i: number): SampleRecord {
    const from = this.firsts[i];
    const to = this.firsts[i + 1];
    return {
      profile: this.profiles[i],
      pid: this.pids[i],
      tid: this.tids[i],
      pcs: new BigUint64Array(this.words.buffer, from * 8, to - from),
      frames: this.frameIds.subarray(from, to),
      links: this.linkAddrs.subarray(from, to),
      leafBias: this.biases[i],
    };
  }

  *[Symbol.iterator](): Iterator<SampleRecord> {
    for (let i = 0; i < this.n; i++) yield this.get(i);
  }
}
