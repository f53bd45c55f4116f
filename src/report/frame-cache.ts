// A small direct-mapped cache of resolved addresses: a PC seen again (the
// common case: hot loops, the same call sites) costs a hash and a compare
// instead of a mapping search and a symbol search. Address spaces and images
// each have one; it starts small (a log can hold a million processes that
// are sampled once) and grows while misses show a larger working set.

const FIRST_SLOTS = 64;
const MAX_SLOTS = 4096;

export class FrameCache {
  addrs = new Float64Array(FIRST_SLOTS).fill(-1);
  frames = new Int32Array(FIRST_SLOTS);
  links = new Float64Array(FIRST_SLOTS);
  private misses = 0;

  /** The slot for (addr, returnAddress): a sampled PC and a return address never share one. */
  slot(addr: number, returnAddress: boolean): number {
    const lo = addr >>> 0; // low 32 bits (ToUint32 is modulo 2^32)
    return (((lo ^ (lo >>> 12)) << 1) | (returnAddress ? 1 : 0)) & (this.addrs.length - 1);
  }

  /** Fills `slot` after a miss; many misses make the cache 4 times larger (and empty). */
  store(slot: number, addr: number, frame: number, link: number): void {
    this.addrs[slot] = addr;
    this.frames[slot] = frame;
    this.links[slot] = link;
    const size = this.addrs.length;
    if (++this.misses > 4 * size && size < MAX_SLOTS) {
      this.addrs = new Float64Array(size * 4).fill(-1);
      this.frames = new Int32Array(size * 4);
      this.links = new Float64Array(size * 4);
      this.misses = 0;
    }
  }

  clear(): void {
    this.addrs.fill(-1);
  }
}
