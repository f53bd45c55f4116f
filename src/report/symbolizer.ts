// (process, address) -> frame. User addresses go through the process's
// mappings, kernel addresses through kallsyms, and addresses in no image
// through the process's perf-PID.map. Each address space and each image
// keeps a small direct-mapped cache of its answers (an image's is shared by
// all processes mapping it), so a PC seen again costs a hash probe.
import { addressFromBigInt, BAD_ADDRESS, isKernelAddress, KERNEL_SPACE, packAddress } from './address.js';
import { type AddressSpace, type Mapping, type ProcessInfo, ProcessTable } from './address-space.js';
import { FrameKind, FrameTable } from './frames.js';
import { Image, ImageLoader, type ImageLoaderOptions } from './image.js';
import { MemoryBudget } from './memory-budget.js';

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
  readonly frames: FrameTable;
  readonly loader: ImageLoader;
  readonly processes: ProcessTable;
  /**
   * Link-time address of the last resolve()'s lookup (the address itself in
   * the kernel, a JIT map or no image): lets the hot path get it without an
   * allocated result.
   */
  link = 0;
  /**
   * Kernel addresses become pending frames, resolved by resolvePending() once
   * the log is read: kallsyms is then read on another thread meanwhile.
   */
  deferKernel = false;

  constructor(options: ImageLoaderOptions = {}, budget = new MemoryBudget()) {
    this.frames = new FrameTable(budget);
    this.loader = new ImageLoader(options, budget);
    this.processes = new ProcessTable(this.loader, budget);
  }

  /**
   * The frame id of `addr` (a packed address) in process `proc`. A return
   * address is looked up at addr - 1, inside the call instruction, so that a
   * call at the very end of a function is not taken for the next function.
   * `addr` must be a canonical address (see FrameTable.raw for the others).
   */
  resolve(proc: ProcessInfo, addr: number, returnAddress: boolean, space = proc.space): number {
    const look = returnAddress ? addr - 1 : addr;
    if (isKernelAddress(look)) {
      const cache = this.processes.kernel.cache;
      const slot = cache.slot(addr, returnAddress);
      if (cache.addrs[slot] === addr) {
        this.link = cache.links[slot];
        return cache.frames[slot];
      }
      let id: number;
      if (this.deferKernel) {
        this.loader.prefetchKernelSymbols();
        id = this.frames.pendingKernel(addr, returnAddress);
        this.link = look;
      } else id = this.resolveKernel(look, addr, returnAddress);
      cache.store(slot, addr, id, this.link);
      return id;
    }
    const cache = space.cache;
    const slot = cache.slot(addr, returnAddress);
    if (cache.addrs[slot] === addr) {
      this.link = cache.links[slot];
      return cache.frames[slot];
    }
    const m = space.find(look);
    if (m) {
      this.link = look - m.bias;
      const id = this.inImage(m.image, this.link, addr, m, returnAddress, false);
      cache.store(slot, addr, id, this.link);
      return id;
    }
    // In no mapping: JIT code of this process (the space's cache is shared, the JIT map is not).
    this.link = look;
    const jit = this.jitImage(proc);
    return jit ? this.inImage(jit, look, addr, undefined, returnAddress, false) : this.frames.address(addr, false);
  }

  /**
   * The frame of PC `i` of a logged chain: `words[at..)` holds its PCs as
   * (low, high) u32 pairs, sampled PC first. Callers are return addresses,
   * except the first user frame under kernel frames, which is where user code
   * was interrupted (a fault may hit a function's first byte). Sets `link`
   * (0 for a non-canonical PC, which is printed as logged).
   */
  chainFrame(proc: ProcessInfo, space: AddressSpace, words: Uint32Array, at: number, i: number): number {
    const lo = words[at + 2 * i];
    const hi = words[at + 2 * i + 1];
    const addr = packAddress(hi, lo);
    if (addr === BAD_ADDRESS) {
      this.link = 0;
      return this.frames.raw(hi, lo);
    }
    const returnAddress = i > 0 && (addr >= KERNEL_SPACE || packAddress(words[at + 2 * i - 1], words[at + 2 * i - 2]) < KERNEL_SPACE);
    return this.resolve(proc, addr, returnAddress, space);
  }

  /**
   * Resolves the pending kernel frames (see deferKernel), which stops
   * deferring. Returns the frame each frame id now stands for (identity but
   * for pending ones), or null when there was none.
   */
  resolvePending(): Int32Array | null {
    this.deferKernel = false;
    const frames = this.frames;
    const n = frames.length;
    let map: Int32Array | null = null;
    for (let id = 0; id < n; id++) {
      if (!frames.isPending(id)) continue;
      if (!map) map = Int32Array.from({ length: n }, (_, i) => i);
      const { addr, returnAddress } = frames.pendingAddress(id);
      map[id] = this.resolveKernel(returnAddress ? addr - 1 : addr, addr, returnAddress);
    }
    // The kernel cache holds pending ids.
    this.processes.kernel.cache.clear();
    return map;
  }

  private resolveKernel(look: number, addr: number, returnAddress: boolean): number {
    this.link = look;
    const m = this.processes.kernel.find(look);
    // Without a MAP_IN for it, a module is named as kallsyms names it: [module].
    const module = m ? undefined : this.loader.kernelSymbols()?.moduleOf(look);
    const image = m?.image ?? this.loader.kernelImage(module === undefined ? undefined : `[${module}]`);
    return this.inImage(image, look, addr, m, returnAddress, true);
  }

  /** The API form of resolve(): one address of process `pid`. */
  symbolize(pid: number, pc: bigint, returnAddress = false): SymbolizedAddress {
    const addr = addressFromBigInt(pc);
    if (addr === BAD_ADDRESS) return { image: null, symbol: null, offset: 0, name: this.frames.name(this.frames.raw(Number(pc >> 32n) >>> 0, Number(pc & 0xffffffffn))) };
    const proc = this.processes.get(pid);
    const f = this.frames.get(this.resolve(proc, addr, returnAddress));
    if (f.kind === FrameKind.Address) return { image: null, symbol: null, offset: 0, name: f.name };
    if (f.kind === FrameKind.Symbol) return { image: f.image!.path, symbol: f.name, offset: this.link + (returnAddress ? 1 : 0) - f.start, name: f.name };
    const look = returnAddress ? addr - 1 : addr;
    const m = isKernelAddress(look) ? this.processes.kernel.find(look) : proc.space.find(look);
    return { image: f.image!.path, symbol: null, offset: addr - (m?.start ?? 0), name: f.name };
  }

  /** The frame of link-time address `link` of `image`, through the image's cache (shared by every process mapping it). */
  private inImage(image: Image, link: number, addr: number, m: Mapping | undefined, returnAddress: boolean, kernel: boolean): number {
    const cache = image.cache;
    const slot = cache.slot(link, returnAddress);
    if (cache.addrs[slot] === link) return cache.frames[slot];
    const idx = image.symbols.find(link);
    let id: number;
    if (idx >= 0) id = this.frames.symbol(image, idx, kernel);
    else if (m) id = this.frames.imageOffset(image, link + (returnAddress ? 1 : 0), addr - m.start, kernel);
    else id = this.frames.address(addr, kernel);
    cache.store(slot, link, id, link);
    return id;
  }

  /** The JIT map of a process, or of its nearest forebear that has one; looked up once per process. */
  private jitImage(proc: ProcessInfo): Image | undefined {
    if (proc.jit !== undefined) return proc.jit ?? undefined;
    let found: Image | null = null;
    let p: ProcessInfo | undefined = proc;
    for (let i = 0; p && i < MAX_JIT_ANCESTORS && !found; i++) {
      found = this.loader.jit(p.pid) ?? null;
      p = p.parent !== undefined ? this.processes.get(p.parent) : undefined;
    }
    proc.jit = found;
    return found ?? undefined;
  }
}
