// (process, address) -> frame. User addresses go through the process's
// mappings, kernel addresses through kallsyms, and addresses in no image
// through the process's perf-PID.map. Each address space keeps a small
// direct-mapped cache of its answers and each image a Map by link-time
// address (shared by all processes mapping it), so a PC seen again costs a
// hash probe.
import { addressFromBigInt, BAD_ADDRESS, isKernelAddress } from './address.js';
import { type AddressSpace, type Mapping, type ProcessInfo, ProcessTable } from './address-space.js';
import { FrameKind, FrameTable } from './frames.js';
import { Image, ImageLoader, type ImageLoaderOptions } from './image.js';

export interface SymbolizedAddress {
  /** Image pathname, or null when the address is in no known image. */
  image: string | null;
  /** Function name, or null when there is no symbol. */
  symbol: string | null;
  /** Address minus the function start (with a symbol) or minus the image's file offset 0 address. */
  offset: number;
  /** What the outputs print: the symbol, image+0xoffset or 0xaddress. */
  name: string;
}

// How far up the fork tree a child borrows its parent's JIT map.
const MAX_JIT_ANCESTORS = 8;

export class Symbolizer {
  readonly frames = new FrameTable();
  readonly loader: ImageLoader;
  readonly processes: ProcessTable;
  /**
   * Link-time address of the last resolve()'s lookup (the address itself in
   * the kernel, a JIT map or no image): lets the hot path get it without an
   * allocated result.
   */
  link = 0;

  constructor(options: ImageLoaderOptions = {}) {
    this.loader = new ImageLoader(options);
    this.processes = new ProcessTable(this.loader);
  }

  /**
   * The frame id of `addr` (a packed address) in process `proc`. A return
   * address is looked up at addr - 1, inside the call instruction, so that a
   * call at the very end of a function is not taken for the next function.
   * `addr` must be a canonical address (see FrameTable.raw for the others).
   */
  resolve(proc: ProcessInfo, addr: number, returnAddress: boolean, space = proc.space): number {
    const look = returnAddress ? addr - 1 : addr;
    const kernel = isKernelAddress(look);
    const cache = (kernel ? this.processes.kernel : space).cache;
    const slot = cache.slot(addr, returnAddress);
    if (cache.addrs[slot] === addr) {
      this.link = cache.links[slot];
      return cache.frames[slot];
    }
    const id = kernel ? this.resolveKernel(look, addr, returnAddress) : this.resolveUser(proc, space, look, addr, returnAddress);
    cache.addrs[slot] = addr;
    cache.frames[slot] = id;
    cache.links[slot] = this.link;
    return id;
  }

  private resolveKernel(look: number, addr: number, returnAddress: boolean): number {
    this.link = look;
    const m = this.processes.kernel.find(look);
    // Without a MAP_IN for it, a module is named as kallsyms names it: [module].
    const module = m ? undefined : this.loader.kernelSymbols()?.moduleOf(look);
    const image = m?.image ?? this.loader.kernelImage(module === undefined ? undefined : `[${module}]`);
    return this.inImage(image, look, addr, m, returnAddress, true);
  }

  private resolveUser(proc: ProcessInfo, space: AddressSpace, look: number, addr: number, returnAddress: boolean): number {
    const m = space.find(look);
    if (m) {
      this.link = look - m.bias;
      return this.inImage(m.image, this.link, addr, m, returnAddress, false);
    }
    this.link = look;
    const jit = this.jitImage(proc);
    if (jit) {
      const idx = jit.symbols.find(look);
      if (idx >= 0) return this.frames.symbol(jit, idx, false);
    }
    return this.frames.address(addr, false);
  }

  /** The API form of resolve(): one address of process `pid`. */
  symbolize(pid: number, pc: bigint, returnAddress = false): SymbolizedAddress {
    const addr = addressFromBigInt(pc);
    if (addr === BAD_ADDRESS) return { image: null, symbol: null, offset: 0, name: this.frames.get(this.frames.raw(pc)).name };
    const proc = this.processes.get(pid);
    const f = this.frames.get(this.resolve(proc, addr, returnAddress));
    if (f.kind === FrameKind.Address) return { image: null, symbol: null, offset: 0, name: f.name };
    if (f.kind === FrameKind.Symbol) return { image: f.image!.path, symbol: f.name, offset: this.link + (returnAddress ? 1 : 0) - f.start, name: f.name };
    const look = returnAddress ? addr - 1 : addr;
    const m = isKernelAddress(look) ? this.processes.kernel.find(look) : proc.space.find(look);
    return { image: f.image!.path, symbol: null, offset: addr - (m?.start ?? 0), name: f.name };
  }

  private inImage(image: Image, link: number, addr: number, m: Mapping | undefined, returnAddress: boolean, kernel: boolean): number {
    const cache = returnAddress ? image.frameOfReturn : image.frameOfPc;
    let id = cache.get(link);
    if (id !== undefined) return id;
    const idx = image.symbols.find(link);
    if (idx >= 0) id = this.frames.symbol(image, idx, kernel);
    else if (m) id = this.frames.imageOffset(image, link + (returnAddress ? 1 : 0), addr - m.start, kernel);
    else id = this.frames.address(addr, kernel);
    cache.set(link, id);
    return id;
  }

  private jitImage(proc: ProcessInfo): Image | undefined {
    let p: ProcessInfo | undefined = proc;
    for (let i = 0; p && i < MAX_JIT_ANCESTORS; i++) {
      const jit = this.loader.jit(p.pid);
      if (jit) return jit;
      p = p.parent !== undefined ? this.processes.get(p.parent) : undefined;
    }
    return undefined;
  }
}
