// Per-process address spaces rebuilt from the log's MAP_IN / MAP_OUT /
// PROCEXEC / PROCFORK records, as pmcstat keeps its process table.
import { basename } from 'node:path';
import { LogType, type LogRecord, type MapExtent } from '../log/records.js';
import { addressFromBigInt, BAD_ADDRESS } from './address.js';
import { FrameCache } from './frame-cache.js';
import type { ElfImage, LoadSegment } from './elf.js';
import { Image, ImageLoader, KERNEL_IMAGE_NAME } from './image.js';
import type { MemoryBudget } from './memory-budget.js';

/** One image mapped at one place: runtime [low, high), link address = runtime - bias. */
export interface Mapping {
  readonly low: number;
  readonly high: number;
  readonly bias: number;
  /** Runtime address of the image's file offset 0 (the MAP_IN start). */
  readonly start: number;
  readonly image: Image;
}

// A mapping whose file could not be read has no known extent: it is taken to
// run to the next mapping, but no further than this.
const UNKNOWN_EXTENT = 0x1000_0000;

export class AddressSpace {
  private maps: Mapping[] = [];
  private frameCache?: FrameCache;

  /** Resolved addresses of this space; emptied whenever the mappings change. */
  get cache(): FrameCache {
    return (this.frameCache ??= new FrameCache());
  }

  clone(): AddressSpace {
    const copy = new AddressSpace();
    copy.maps = this.maps.slice();
    return copy;
  }

  /** Maps an image, replacing whatever was mapped over the same range (as mmap does). */
  add(image: Image, start: number, extent?: { low: number; high: number; bias: number }): void {
    let m: Mapping;
    if (extent) m = { ...extent, start, image };
    else {
      const next = this.maps[this.firstAbove(start)];
      // Link-time addresses of an unreadable image are its offsets.
      m = { low: start, high: Math.min(start + UNKNOWN_EXTENT, next?.low ?? Infinity), bias: start, start, image };
    }
    this.remove(m.low, m.high);
    this.maps.splice(this.firstAbove(m.low), 0, m);
  }

  /** Unmaps [low, high), trimming or splitting mappings that straddle it. */
  remove(low: number, high: number): void {
    if (high <= low) return;
    this.frameCache?.clear();
    // Mappings are sorted and disjoint: those that overlap [low, high) are one run.
    const maps = this.maps;
    let from = this.firstAbove(low);
    if (from > 0 && maps[from - 1].high > low) from--;
    let to = from;
    while (to < maps.length && maps[to].low < high) to++;
    if (to === from) return;
    const pieces: Mapping[] = [];
    if (maps[from].low < low) pieces.push({ ...maps[from], high: low });
    if (maps[to - 1].high > high) pieces.push({ ...maps[to - 1], low: high });
    maps.splice(from, to - from, ...pieces);
  }

  /** Whether anything is mapped in [low, high). */
  overlaps(low: number, high: number): boolean {
    const i = this.firstAbove(low);
    return (i > 0 && this.maps[i - 1].high > low) || (i < this.maps.length && this.maps[i].low < high);
  }

  /** Index of the first mapping whose low is above `addr` (binary search). */
  private firstAbove(addr: number): number {
    const maps = this.maps;
    let lo = 0;
    let hi = maps.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (maps[mid].low <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The mapping that holds `addr`, if any. */
  find(addr: number): Mapping | undefined {
    const maps = this.maps;
    let lo = 0;
    let hi = maps.length - 1;
    if (hi < 0 || addr < maps[0].low) return undefined;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (maps[mid].low <= addr) lo = mid;
      else hi = mid - 1;
    }
    return addr < maps[lo].high ? maps[lo] : undefined;
  }
}

// Address spaces an exec replaced, kept for samples logged late.
const MAX_PAST_SPACES = 4;

/** The space of every process no MAP_IN or fork has described: shared, never written. */
const NO_MAPPINGS = new AddressSpace();

/** What a process was running between two execs. */
export interface ProcessImage {
  readonly space: AddressSpace;
  readonly name?: string;
}

interface PastImage extends ProcessImage {
  space: AddressSpace;
  /** Whether the space is this process's alone (else copy it before a late mapping). */
  owned: boolean;
  /** The exec that ended it. */
  until: number;
}

/**
 * A process of the log. Its address space is shared with its parent after a
 * fork, and copied only when one of them maps something (copy on write): a
 * fork-heavy workload costs one space per exec, not one per process.
 */
export class ProcessInfo implements ProcessImage {
  /** basename of the latest exec'd path (or the attach / create name). */
  name?: string;
  /** The current address space (read-only: mapped() gives a writable one). */
  space = NO_MAPPINGS;
  /** The process this one was forked from: its JIT map stands in when this one has none. */
  parent?: number;
  /** The JIT map resolving its anonymous code (null: none), once the symbolizer looked. */
  jit?: Image | null;
  /** Whether `space` is this process's own (else shared: copy before writing). */
  private ownsSpace = false;
  /** What ran before each exec, oldest first (spaces replaced by an exec are never written again but by late MAP_INs). */
  private past?: PastImage[];

  constructor(readonly pid: number) {}

  exec(ts: number, path: string): void {
    (this.past ??= []).push({ space: this.space, name: this.name, owned: this.ownsSpace, until: ts });
    if (this.past.length > MAX_PAST_SPACES) this.past.shift();
    this.space = NO_MAPPINGS;
    this.ownsSpace = false;
    this.name = basename(path);
  }

  /** Starts as a copy of `parent` (a fork): the space is shared until either maps something. */
  forkedFrom(parent: ProcessInfo): void {
    this.name = parent.name;
    this.parent = parent.pid;
    this.space = parent.space;
    parent.ownsSpace = false;
  }

  /**
   * The image at time `ts`. Samples wait in per-CPU buffers while exec
   * records are logged at once, so a sample taken before an exec can come
   * after it in the log: its timestamp says what it ran.
   */
  at(ts: number): ProcessImage {
    const past = this.past;
    if (past === undefined || past.length === 0 || ts >= past[past.length - 1].until) return this;
    let i = past.length - 1;
    while (i > 0 && ts < past[i - 1].until) i--;
    return past[i];
  }

  /** The space to change for a mapping at time `ts`, made this process's own first. */
  mapped(ts: number): AddressSpace {
    const image = this.at(ts);
    if (image !== this) {
      // A mapping logged late for an image an exec has since replaced.
      const past = image as PastImage;
      if (!past.owned) {
        past.space = past.space.clone();
        past.owned = true;
      }
      return past.space;
    }
    if (!this.ownsSpace) {
      this.space = this.space.clone();
      this.ownsSpace = true;
    }
    return this.space;
  }
}

/** pid of the kernel's own "process" in MAP_IN / MAP_OUT records. */
const KERNEL_PID = -1;

// What a process costs besides its space, and a mapping, charged to the budget.
const PROCESS_BYTES = 160;
const MAPPING_BYTES = 120;

export class ProcessTable {
  private readonly procs = new Map<number, ProcessInfo>();
  readonly kernel = new AddressSpace();
  /**
   * Called before a record changes what a process's addresses resolve to
   * (an exec, a mapping over or out of mapped addresses, a new name): samples
   * counted but not yet resolved must be resolved first. A mapping of
   * addresses nothing mapped changes nothing for them, even when it is
   * logged after samples that need it.
   */
  onChange?: () => void;

  constructor(
    private readonly loader: ImageLoader,
    private readonly budget: MemoryBudget,
  ) {
    budget.describe('processes', () => `${this.procs.size} processes`);
  }

  get(pid: number): ProcessInfo {
    let p = this.procs.get(pid);
    if (!p) {
      this.budget.take(PROCESS_BYTES);
      p = new ProcessInfo(pid);
      this.procs.set(pid, p);
    }
    return p;
  }

  /** Applies a record that changes a process or a mapping; other records are ignored. */
  apply(r: LogRecord): void {
    switch (r.type) {
      case LogType.MAP_IN:
        this.mapIn(r.pid, r.start, r.pathname, r.ts, r.extent);
        break;
      case LogType.MAP_OUT: {
        const lo = addressFromBigInt(r.start);
        const hi = addressFromBigInt(r.end);
        if (lo === BAD_ADDRESS || hi === BAD_ADDRESS) break;
        if (r.pid === KERNEL_PID) this.kernel.remove(lo, hi);
        else {
          if (this.get(r.pid).at(r.ts).space.overlaps(lo, hi)) this.onChange?.();
          this.get(r.pid).mapped(r.ts).remove(lo, hi);
        }
        break;
      }
      case LogType.PROCEXEC: {
        this.onChange?.();
        this.get(r.pid).exec(r.ts, r.pathname);
        break;
      }
      case LogType.PROCFORK: {
        const parent = this.get(r.oldpid);
        // A reused pid starts afresh: the child replaces any old process of that number.
        if (!this.procs.has(r.newpid)) this.budget.take(PROCESS_BYTES);
        const child = new ProcessInfo(r.newpid);
        child.forkedFrom(parent);
        this.procs.set(r.newpid, child);
        break;
      }
      case LogType.PMCATTACH:
        if (r.pathname) this.rename(this.get(r.pid), basename(r.pathname));
        break;
      case LogType.PROC_CREATE: {
        const p = this.get(r.pid);
        if (p.name === undefined && r.pcomm) this.rename(p, r.pcomm);
        break;
      }
      // PROCEXIT / SYSEXIT: the mappings stay, for samples still to be read.
    }
  }

  private rename(p: ProcessInfo, name: string): void {
    if (p.name === name) return;
    this.onChange?.();
    p.name = name;
  }

  private mapIn(pid: number, startBig: bigint, pathname: string, ts: number, mapped?: MapExtent): void {
    if (pid === KERNEL_PID) {
      const start = addressFromBigInt(startBig);
      if (start === BAD_ADDRESS) return;
      this.budget.take(MAPPING_BYTES);
      this.kernel.add(this.loader.kernelImage(pathname || KERNEL_IMAGE_NAME), start);
      return;
    }
    // Anonymous executable memory is JIT code: perf-PID.map covers it.
    if (pathname === '' || pathname.startsWith('//anon') || pathname.startsWith('[anon') || pathname.startsWith('/memfd:')) return;
    // The mapping's own start: MAP_IN's start may be below 0 (a file offset above the address).
    const low = addressFromBigInt(mapped ? BigInt.asUintN(64, startBig + mapped.offset) : startBig);
    if (low === BAD_ADDRESS) return;
    this.budget.take(MAPPING_BYTES);
    const image = this.loader.user(pathname);
    const proc = this.get(pid);
    const start = mapped ? low - Number(mapped.offset) : low;
    const extent = mapped ? mappedExtent(image.elf, start, Number(mapped.offset), Number(mapped.length)) : textExtent(image.elf, start);
    if (proc.at(ts).space.overlaps(extent?.low ?? low, extent?.high ?? low + 1)) this.onChange?.();
    // A mapping logged late belongs to the image that ran at its time.
    proc.mapped(ts).add(image, start, extent);
  }
}

type Extent = { low: number; high: number; bias: number };

/** p_flags: executable segment. */
const PF_X = 1;

/**
 * A MAP_IN without its extent (hwpmc's, older logs): the image's executable
 * segments where MAP_IN's start puts file offset 0; undefined when the file
 * could not be read.
 */
function textExtent(elf: ElfImage | undefined, start: number): Extent | undefined {
  if (!elf || elf.textEnd <= elf.textStart) return undefined;
  const bias = start - elf.linkBase;
  return { low: bias + elf.textStart, high: bias + elf.textEnd, bias };
}

/**
 * A mapping of file bytes [offset, offset + length) at start + offset: its
 * addresses are the image's there and nowhere else (V8 maps a piece of node's
 * text again inside its JIT code range: the code around it is not node's).
 * The link address of a file offset is the segment's that holds those bytes:
 * a mapping is page-aligned and a segment need not be, so a page may hold the
 * end of a read-only segment and the start of the text (lld); MAP_IN's
 * mappings are executable, so the executable segment it holds most of.
 */
function mappedExtent(elf: ElfImage | undefined, start: number, offset: number, length: number): Extent {
  let best: LoadSegment | undefined;
  let bestHeld = 0;
  for (const l of elf?.loads ?? []) {
    const held = Math.min(offset + length, l.offset + l.filesz) - Math.max(offset, l.offset);
    if (held <= 0) continue;
    const x = l.flags & PF_X;
    const bestX = best ? best.flags & PF_X : -1;
    if (x > bestX || (x === bestX && held > bestHeld)) {
      best = l;
      bestHeld = held;
    }
  }
  const linkBase = best ? best.vaddr - best.offset : (elf?.linkBase ?? 0);
  return { low: start + offset, high: start + offset + length, bias: start - linkBase };
}
