// A call tree in parallel typed arrays. Node 0 is the root; every other node
// is one frame under its parent, with the number of samples that passed
// through it. Children are found through one open-addressing index keyed by
// (parent, frame), so a node costs about 20 bytes and no object. Where a
// chain ends, an "end" node under the last frame counts the samples of one
// task (thread of a process): the full stacks can be rebuilt from them.
// freeze() replaces the index by per-node child lists for the outputs.
import type { MemoryBudget } from './memory-budget.js';
import { emptySlots, hashPair, reindex } from './open-index.js';

export const ROOT = 0;

export class CallTree {
  private parents = new Int32Array(64);
  /** Frame id, or -1 - task for an end node. */
  private frames = new Int32Array(64);
  private counts = new Uint32Array(64);
  private n = 1;
  /** (parent, frame) -> node while building; -1 = empty; at most half full. */
  private slots: Int32Array | null = emptySlots(128);
  /** After freeze(): the children (frames, then ends) of node i are list[start[i] .. start[i] + nframes[i] + nends[i]). */
  private start: Int32Array | null = null;
  private nframes: Int32Array | null = null;
  private list: Int32Array | null = null;

  constructor(private readonly budget: MemoryBudget) {
    this.frames[ROOT] = -1;
  }

  /** Nodes, the root and end nodes included. */
  get size(): number {
    return this.n;
  }

  frame(node: number): number {
    return this.frames[node];
  }

  count(node: number): number {
    return this.counts[node];
  }

  parent(node: number): number {
    return this.parents[node];
  }

  /** The child of `parent` for `frame`, made if new (only before freeze). */
  child(parent: number, frame: number): number {
    const slots = this.slots!;
    const mask = slots.length - 1;
    let s = hashPair(parent, frame) & mask;
    for (let node = slots[s]; node >= 0; node = slots[s]) {
      if (this.frames[node] === frame && this.parents[node] === parent) return node;
      s = (s + 1) & mask;
    }
    const node = this.n;
    if (node === this.parents.length) this.grow();
    this.parents[node] = parent;
    this.frames[node] = frame;
    this.n = node + 1;
    if (2 * this.n > slots.length) this.slots = reindex(slots, 1, this.n, (x) => hashPair(this.parents[x], this.frames[x]), this.budget);
    else slots[s] = node;
    return node;
  }

  add(node: number, samples: number): void {
    this.counts[node] += samples;
  }

  /** Counts `samples` of `task` ending at `node`. */
  addEnd(node: number, task: number, samples: number): void {
    // child() may grow (replace) this.counts: read the array after it.
    const end = this.child(node, -1 - task);
    this.counts[end] += samples;
  }

  /**
   * Replaces each frame f by map[f] (ids past the map stay), merging the
   * nodes that then have the same parent and frame (only before freeze).
   */
  remapFrames(map: Int32Array): void {
    const { parents, frames, counts, n } = this;
    const budget = this.budget;
    budget.take(n * 16);
    this.parents = new Int32Array(parents.length);
    this.frames = new Int32Array(frames.length);
    this.counts = new Uint32Array(counts.length);
    this.frames[ROOT] = -1;
    this.n = 1;
    this.slots = emptySlots(this.slots!.length);
    const moved = new Int32Array(n);
    // Parents come before their children.
    for (let i = 1; i < n; i++) {
      const f = frames[i];
      const node = this.child(moved[parents[i]], f >= 0 && f < map.length ? map[f] : f);
      this.counts[node] += counts[i];
      moved[i] = node;
    }
    budget.give(n * 16);
  }

  /** Ends the building: from now on the tree is read through children() and ends(). */
  freeze(): void {
    if (!this.slots) return;
    const b = this.budget;
    b.give(this.slots.length * 4);
    this.slots = null;
    const n = this.n;
    b.take(n * 12);
    const start = new Int32Array(n + 1);
    const nframes = new Int32Array(n);
    for (let i = 1; i < n; i++) {
      start[this.parents[i] + 1]++;
      if (this.frames[i] >= 0) nframes[this.parents[i]]++;
    }
    for (let i = 0; i < n; i++) start[i + 1] += start[i];
    // Frame children first, end nodes after them, each in creation order.
    const list = new Int32Array(n);
    const nextFrame = start.slice(0, n);
    const nextEnd = new Int32Array(n);
    for (let i = 0; i < n; i++) nextEnd[i] = start[i] + nframes[i];
    for (let i = 1; i < n; i++) {
      const p = this.parents[i];
      if (this.frames[i] >= 0) list[nextFrame[p]++] = i;
      else list[nextEnd[p]++] = i;
    }
    this.start = start;
    this.nframes = nframes;
    this.list = list;
  }

  /** The frame children of `node` (callers, in a leaf-rooted tree). */
  children(node: number): Int32Array {
    const s = this.frozenStart();
    return this.list!.subarray(s[node], s[node] + this.nframes![node]);
  }

  /** The end nodes under `node`: task(end) and count(end) give whose samples ended there. */
  ends(node: number): Int32Array {
    const s = this.frozenStart();
    return this.list!.subarray(s[node] + this.nframes![node], s[node + 1]);
  }

  /** The task of an end node. */
  task(end: number): number {
    return -1 - this.frames[end];
  }

  private frozenStart(): Int32Array {
    if (!this.start) throw new Error('CallTree read before freeze()');
    return this.start;
  }

  private grow(): void {
    const b = this.budget;
    const min = this.n + 1;
    this.parents = b.grow(this.parents, min);
    this.frames = b.grow(this.frames, min);
    this.counts = b.grow(this.counts, min);
  }
}
