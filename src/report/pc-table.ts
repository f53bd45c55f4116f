// The distinct PCs of the call chains, for outputs that place samples at
// addresses rather than functions (pprof's locations, whose source lines
// come from the image's DWARF): a PC is a frame (its function) and the
// link-time address it was looked up at, interned to a small id that a call
// tree can count like a frame.
import type { MemoryBudget } from './memory-budget.js';

// What an entry costs in the index (a Map entry, and a Map per frame), charged to the budget.
const ENTRY_BYTES = 64;

export class PcTable {
  private frames = new Int32Array(0);
  private links = new Float64Array(0);
  private n = 0;
  /** frame -> link -> id */
  private readonly index = new Map<number, Map<number, number>>();

  constructor(private readonly budget: MemoryBudget) {
    budget.describe('pcs', () => `${this.n} distinct PCs`);
  }

  get length(): number {
    return this.n;
  }

  /** The id of the PC looked up at `link` that resolved to `frame`. */
  intern(frame: number, link: number): number {
    let byLink = this.index.get(frame);
    if (!byLink) this.index.set(frame, (byLink = new Map()));
    let id = byLink.get(link);
    if (id === undefined) {
      id = this.n++;
      if (id === this.frames.length) {
        this.frames = this.budget.grow(this.frames, id + 1);
        this.links = this.budget.grow(this.links, id + 1);
      }
      this.budget.take(ENTRY_BYTES);
      this.frames[id] = frame;
      this.links[id] = link;
      byLink.set(link, id);
    }
    return id;
  }

  frame(id: number): number {
    return this.frames[id];
  }

  /** The link-time address (a return address less one, as looked up). */
  link(id: number): number {
    return this.links[id];
  }

  /** Replaces each frame f by map[f] (kernel frames resolved at the end); no more interning after it. */
  remapFrames(map: Int32Array): void {
    for (let i = 0; i < this.n; i++) if (this.frames[i] < map.length) this.frames[i] = map[this.frames[i]];
    this.index.clear();
  }
}
