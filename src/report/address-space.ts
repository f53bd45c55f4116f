// Per-process address spaces rebuilt from the log's MAP_IN / MAP_OUT /
// PROCEXEC / PROCFORK records, as pmcstat keeps its process table.
import { basename } from 'node:path';
import { LogType, type LogRecord } from '../log/records.js';
import { addressFromBigInt, BAD_ADDRESS } from './address.js';
import { FrameCache } from './frame-cache.js';
import { Image, ImageLoader, KERNEL_IMAGE_NAME } from './image.js';

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
      const next = this.maps.find((x) => x.low > start);
      // Link-time addresses of an unreadable image are its offsets.
      m = { low: start, high: Math.min(start + UNKNOWN_EXTENT, next?.low ?? Infinity), bias: start, start, image };
    }
    this.remove(m.low, m.high);
    this.frameCache?.clear();
    const i = this.upperBound(m.low);
    this.maps.splice(i, 0, m);
  }

  /** Unmaps [low, high), trimming or splitting mappings that straddle it. */
  remove(low: number, high: number): void {
    if (high <= low) return;
    this.frameCache?.clear();
    const kept: Mapping[] = [];
    for (const m of this.maps) {
      if (m.high <= low || m.low >= high) {
        kept.push(m);
        continue;
      }
      if (m.low < low) kept.push({ ...m, high: low });
      if (m.high > high) kept.push({ ...m, low: high });
    }
    this.maps = kept;
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

  private upperBound(low: number): number {
    let i = 0;
    while (i < this.maps.length && this.maps[i].low <= low) i++;
    return i;
  }
}

// Address spaces an exec replaced, kept for samples logged late.
const MAX_PAST_SPACES = 4;

/** What a process was running between two execs. */
export interface ProcessImage {
  readonly space: AddressSpace;
  readonly name?: string;
}

export class ProcessInfo implements ProcessImage {
  /** basename of the latest exec'd path (or the attach / create name). */
  name?: string;
  /** The current address space. */
  space = new AddressSpace();
  /** The process this one was forked from: its JIT map stands in when this one has none. */
  parent?: number;
  /** What ran before each exec, oldest first, with the time of the exec that ended it. */
  private past: { space: AddressSpace; name?: string; until: number }[] = [];

  constructor(readonly pid: number) {}

  exec(ts: number, path: string): void {
    this.past.push({ space: this.space, name: this.name, until: ts });
    if (this.past.length > MAX_PAST_SPACES) this.past.shift();
    this.space = new AddressSpace();
    this.name = basename(path);
  }

  /**
   * The image at time `ts`. Samples wait in per-CPU buffers while exec
   * records are logged at once, so a sample taken before an exec can come
   * after it in the log: its timestamp says what it ran.
   */
  at(ts: number): ProcessImage {
    const past = this.past;
    if (past.length === 0 || ts >= past[past.length - 1].until) return this;
    let i = past.length - 1;
    while (i > 0 && ts < past[i - 1].until) i--;
    return past[i];
  }
}

/** pid of the kernel's own "process" in MAP_IN / MAP_OUT records. */
export const KERNEL_PID = -1;

export class ProcessTable {
  private readonly procs = new Map<number, ProcessInfo>();
  readonly kernel = new AddressSpace();

  constructor(private readonly loader: ImageLoader) {}

  get(pid: number): ProcessInfo {
    let p = this.procs.get(pid);
    if (!p) {
      p = new ProcessInfo(pid);
      this.procs.set(pid, p);
    }
    return p;
  }

  /** Applies a record that changes a process or a mapping; other records are ignored. */
  apply(r: LogRecord): void {
    switch (r.type) {
      case LogType.MAP_IN:
        this.mapIn(r.pid, r.start, r.pathname, r.ts);
        break;
      case LogType.MAP_OUT: {
        const lo = addressFromBigInt(r.start);
        const hi = addressFromBigInt(r.end);
        if (lo !== BAD_ADDRESS && hi !== BAD_ADDRESS) (r.pid === KERNEL_PID ? this.kernel : this.get(r.pid).at(r.ts).space).remove(lo, hi);
        break;
      }
      case LogType.PROCEXEC: {
        this.get(r.pid).exec(r.ts, r.pathname);
        break;
      }
      case LogType.PROCFORK: {
        const parent = this.get(r.oldpid);
        // A reused pid starts afresh: the child replaces any old process of that number.
        const child = new ProcessInfo(r.newpid);
        child.name = parent.name;
        child.space = parent.space.clone();
        child.parent = r.oldpid;
        this.procs.set(r.newpid, child);
        break;
      }
      case LogType.PMCATTACH:
        if (r.pathname) this.get(r.pid).name = basename(r.pathname);
        break;
      case LogType.PROC_CREATE: {
        const p = this.get(r.pid);
        if (p.name === undefined && r.pcomm) p.name = r.pcomm;
        break;
      }
      // PROCEXIT / SYSEXIT: the mappings stay, for samples still to be read.
    }
  }

  private mapIn(pid: number, startBig: bigint, pathname: string, ts: number): void {
    const start = addressFromBigInt(startBig);
    if (start === BAD_ADDRESS) return;
    if (pid === KERNEL_PID) {
      const image = this.loader.kernelImage(pathname || KERNEL_IMAGE_NAME);
      this.kernel.add(image, start);
      return;
    }
    // Anonymous executable memory is JIT code: perf-PID.map covers it.
    if (pathname === '' || pathname.startsWith('//anon') || pathname.startsWith('[anon') || pathname.startsWith('/memfd:')) return;
    const image = this.loader.user(pathname);
    // A mapping logged late belongs to the image that ran at its time.
    const space = this.get(pid).at(ts).space;
    const elf = image.elf;
    if (!elf || elf.textEnd <= elf.textStart) {
      space.add(image, start);
      return;
    }
    const bias = start - elf.linkBase;
    space.add(image, start, { low: bias + elf.textStart, high: bias + elf.textEnd, bias });
  }
}
