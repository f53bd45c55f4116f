// Resolved frames, interned: a frame is a function of an image (or, without
// a symbol, one address), and the aggregations count small integer ids.
// A log can name millions of distinct addresses, so the table is a few typed
// columns (about 30 bytes a frame, charged to the analysis' memory budget)
// with its own open-addressing index; Frame objects and names are made when
// an output asks for them.
import { addressHex, formatPointer } from './address.js';
import type { Image } from './image.js';
import type { MemoryBudget } from './memory-budget.js';
import { emptySlots, hashPair, reindex } from './open-index.js';

export enum FrameKind {
  /** A symbol of an image. */
  Symbol,
  /** Inside a known image, no symbol: printed image+0xoffset. */
  ImageOffset,
  /** In no known image: printed 0xaddress (a non-canonical one as logged). */
  Address,
}

/** A frame as the outputs see it (made on demand by FrameTable.get). */
export interface Frame {
  kind: FrameKind;
  image: Image | null;
  /** What outputs print for the function. */
  name: string;
  /** Link-time start of the function (the address itself for unresolved frames). */
  start: number;
  /** Link-time end (start + 1 for unresolved frames). */
  end: number;
  kernel: boolean;
}

// Stored kinds: FrameKind, a non-canonical address (kept apart because its
// key is the raw 64-bit value, not a packed address), and kernel addresses
// whose symbol is looked up at the end of the analysis (see
// Symbolizer.resolvePending), as a sampled PC or as a return address.
const RAW = 3;
const PENDING = 4;
const PENDING_RETURN = 5;
const KIND_MASK = 7;
const KERNEL_BIT = 8;
const TWO_32 = 0x1_0000_0000;

export class FrameTable {
  /** Kind (low 2 bits) | KERNEL_BIT. */
  private bits = new Uint8Array(0);
  /** Index into `images`, or -1. */
  private imageIds = new Int32Array(0);
  /** The interning key: symbol index, link or packed address, or raw 64-bit value, as two u32 halves. */
  private keyHi = new Uint32Array(0);
  private keyLo = new Uint32Array(0);
  /** ImageOffset frames: the offset from the image's file offset 0 that names them. */
  private offsets = new Float64Array(0);
  private n = 0;
  /** Open addressing over frame ids (-1 = empty), at most half full. */
  private slots = emptySlots(64);
  private readonly images: Image[] = [];
  /** Names set from outside (demangling). */
  private readonly renamed = new Map<number, string>();

  constructor(private readonly budget: MemoryBudget) {
    budget.describe('frames', () => `${this.n} distinct frames`);
  }

  get length(): number {
    return this.n;
  }

  get(id: number): Frame {
    return { kind: this.kind(id), image: this.image(id), name: this.name(id), start: this.start(id), end: this.end(id), kernel: this.isKernel(id) };
  }

  kind(id: number): FrameKind {
    const k = this.bits[id] & KIND_MASK;
    return k >= RAW ? FrameKind.Address : k;
  }

  /** Whether the frame is a kernel address still to be resolved. */
  isPending(id: number): boolean {
    return (this.bits[id] & KIND_MASK) >= PENDING;
  }

  /** A pending frame's address and whether it is a return address. */
  pendingAddress(id: number): { addr: number; returnAddress: boolean } {
    return { addr: this.key(id), returnAddress: (this.bits[id] & KIND_MASK) === PENDING_RETURN };
  }

  isKernel(id: number): boolean {
    return (this.bits[id] & KERNEL_BIT) !== 0;
  }

  image(id: number): Image | null {
    const i = this.imageIds[id];
    return i < 0 ? null : this.images[i];
  }

  name(id: number): string {
    const renamed = this.renamed.size > 0 ? this.renamed.get(id) : undefined;
    return renamed ?? this.systemName(id);
  }

  /** The name as the image gives it (a C++ or Rust name still mangled), as pprof's Function.system_name wants. */
  systemName(id: number): string {
    switch (this.bits[id] & KIND_MASK) {
      case FrameKind.Symbol:
        return this.images[this.imageIds[id]].symbols.name(this.keyLo[id]);
      case FrameKind.ImageOffset:
        return `${this.images[this.imageIds[id]].basename}+0x${addressHex(this.offsets[id])}`;
      case RAW:
        return '0x' + ((BigInt(this.keyHi[id]) << 32n) | BigInt(this.keyLo[id])).toString(16);
      default:
        return formatPointer(this.key(id));
    }
  }

  /** Replaces the printed name (demangling); the frame keeps its identity. */
  rename(id: number, name: string): void {
    this.renamed.set(id, name);
  }

  start(id: number): number {
    const k = this.bits[id] & KIND_MASK;
    if (k === FrameKind.Symbol) return this.images[this.imageIds[id]].symbols.starts[this.keyLo[id]];
    return k === RAW ? 0 : this.key(id);
  }

  end(id: number): number {
    const k = this.bits[id] & KIND_MASK;
    if (k === FrameKind.Symbol) return this.images[this.imageIds[id]].symbols.ends[this.keyLo[id]];
    return this.start(id) + 1;
  }

  /** The frame of symbol `index` of `image` (interned through the image). */
  symbol(image: Image, index: number, kernel: boolean): number {
    const byIndex = image.frameOfSymbol;
    let id = byIndex[index];
    if (id < 0) {
      id = this.push(FrameKind.Symbol, kernel, this.imageId(image), 0, index);
      byIndex[index] = id;
    }
    return id;
  }

  /** An address of `image` with no symbol, interned by link-time address; `offset` is from the image's file offset 0. */
  imageOffset(image: Image, link: number, offset: number, kernel: boolean): number {
    const id = this.intern(FrameKind.ImageOffset, kernel, this.imageId(image), Math.floor(link / TWO_32), link >>> 0);
    this.offsets[id] = offset;
    return id;
  }

  /** An address (packed) with no symbol: in no known image, or (pmcstat -I) a sampled PC shown as itself, in `image`. */
  address(addr: number, kernel: boolean, image: Image | null = null): number {
    return this.intern(FrameKind.Address, kernel, image ? this.imageId(image) : -1, Math.floor(addr / TWO_32), addr >>> 0);
  }

  /** A kernel address (packed) to be resolved later, as a sampled PC or a return address. */
  pendingKernel(addr: number, returnAddress: boolean): number {
    return this.intern(returnAddress ? PENDING_RETURN : PENDING, true, -1, Math.floor(addr / TWO_32), addr >>> 0);
  }

  /** A non-canonical address (a garbage frame), given as its two 32-bit halves: printed as it is, never resolved. */
  raw(hi: number, lo: number): number {
    return this.intern(RAW, false, -1, hi, lo);
  }

  private key(id: number): number {
    return this.keyHi[id] * TWO_32 + this.keyLo[id];
  }

  private imageId(image: Image): number {
    if (image.frameTableId < 0) {
      image.frameTableId = this.images.length;
      this.images.push(image);
    }
    return image.frameTableId;
  }

  private intern(kind: number, kernel: boolean, image: number, hi: number, lo: number): number {
    const mask = this.slots.length - 1;
    const bits = kind | (kernel ? KERNEL_BIT : 0);
    let s = frameHash(kind, image, hi, lo) & mask;
    for (let id = this.slots[s]; id >= 0; id = this.slots[s]) {
      if (this.keyLo[id] === lo && this.keyHi[id] === hi && this.bits[id] === bits && this.imageIds[id] === image) return id;
      s = (s + 1) & mask;
    }
    const id = this.push(kind, kernel, image, hi, lo);
    this.index(id, s);
    return id;
  }

  private push(kind: number, kernel: boolean, image: number, hi: number, lo: number): number {
    const id = this.n;
    if (id === this.bits.length) {
      const b = this.budget;
      const min = id + 1;
      this.bits = b.grow(this.bits, min);
      this.imageIds = b.grow(this.imageIds, min);
      this.keyHi = b.grow(this.keyHi, min);
      this.keyLo = b.grow(this.keyLo, min);
      this.offsets = b.grow(this.offsets, min);
    }
    this.bits[id] = kind | (kernel ? KERNEL_BIT : 0);
    this.imageIds[id] = image;
    this.keyHi[id] = hi;
    this.keyLo[id] = lo;
    this.n = id + 1;
    return id;
  }

  /** Adds `id` to the index (symbols are indexed by their image instead). */
  private index(id: number, slot: number): void {
    if (2 * (id + 1) > this.slots.length) {
      this.slots = reindex(this.slots, 0, id + 1, (f) => ((this.bits[f] & KIND_MASK) === FrameKind.Symbol ? -1 : frameHash(this.bits[f] & KIND_MASK, this.imageIds[f], this.keyHi[f], this.keyLo[f])), this.budget);
    } else this.slots[slot] = id;
  }
}

function frameHash(kind: number, image: number, hi: number, lo: number): number {
  return hashPair(hashPair(lo, hi), image * 4 + kind);
}
