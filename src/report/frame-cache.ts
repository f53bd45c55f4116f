// A small direct-mapped cache of resolved addresses for one address space:
// a PC seen again (the common case: hot loops, the same call sites) costs a
// hash and a compare instead of a mapping search and a Map lookup.

const SLOTS = 4096; // a power of two

export class FrameCache {
  readonly addrs = new Float64Array(SLOTS).fill(-1);
  readonly frames = new Int32Array(SLOTS);
  readonly links = new Float64Array(SLOTS);

  /** The slot for (addr, returnAddress): a sampled PC and a return address never share one. */
  slot(addr: number, returnAddress: boolean): number {
    const lo = addr >>> 0; // low 32 bits (ToUint32 is modulo 2^32)
    return (((lo ^ (lo >>> 12)) << 1) | (returnAddress ? 1 : 0)) & (SLOTS - 1);
  }

  clear(): void {
    this.addrs.fill(-1);
  }
}
