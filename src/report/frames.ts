// Resolved frames, interned: a frame is a function of an image (or, without
// a symbol, one address), and the aggregations count small integer ids.
import { addressHex, formatPointer } from './address.js';
import type { Image } from './image.js';

export enum FrameKind {
  /** A symbol of an image. */
  Symbol,
  /** Inside a known image, no symbol: printed image+0xoffset. */
  ImageOffset,
  /** In no known image: printed 0xaddress. */
  Address,
}

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

export class FrameTable {
  private readonly frames: Frame[] = [];
  private readonly byAddress = new Map<number, number>();
  private readonly byRaw = new Map<bigint, number>();

  get length(): number {
    return this.frames.length;
  }

  get(id: number): Frame {
    return this.frames[id];
  }

  /** The frame of symbol `index` of `image` (interned through the image). */
  symbol(image: Image, index: number, kernel: boolean): number {
    let id = image.frameOfSymbol[index];
    if (id < 0) {
      const s = image.symbols;
      id = this.push({ kind: FrameKind.Symbol, image, name: s.name(index), start: s.starts[index], end: s.ends[index], kernel });
      image.frameOfSymbol[index] = id;
    }
    return id;
  }

  /** An address of `image` with no symbol; `offset` is from the image's file offset 0. */
  imageOffset(image: Image, link: number, offset: number, kernel: boolean): number {
    let id = image.frameOfUnknown.get(link);
    if (id === undefined) {
      id = this.push({ kind: FrameKind.ImageOffset, image, name: `${image.basename}+0x${addressHex(offset)}`, start: link, end: link + 1, kernel });
      image.frameOfUnknown.set(link, id);
    }
    return id;
  }

  /** An address in no known image. */
  address(addr: number, kernel: boolean): number {
    let id = this.byAddress.get(addr);
    if (id === undefined) {
      id = this.push({ kind: FrameKind.Address, image: null, name: formatPointer(addr), start: addr, end: addr + 1, kernel });
      this.byAddress.set(addr, id);
    }
    return id;
  }

  /** A non-canonical address (a garbage frame): printed as it is, never resolved. */
  raw(pc: bigint): number {
    let id = this.byRaw.get(pc);
    if (id === undefined) {
      id = this.push({ kind: FrameKind.Address, image: null, name: '0x' + pc.toString(16), start: 0, end: 1, kernel: false });
      this.byRaw.set(pc, id);
    }
    return id;
  }

  private push(f: Frame): number {
    this.frames.push(f);
    return this.frames.length - 1;
  }
}
