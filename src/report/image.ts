// An image is one symbolizable object (an ELF file, the vdso, the kernel, a
// process's JIT map), shared by every process that maps it. The loader finds
// and parses each once, and records what it could not read instead of failing.
import { readdirSync } from 'node:fs';
import { basename } from 'node:path';
import { readElfFile, parseElfBuffer, type ElfImage } from './elf.js';
import { FrameCache } from './frame-cache.js';
import { MemoryBudget } from './memory-budget.js';
import { readKallsyms, type KernelSymbols } from './kallsyms.js';
import { cacheDir } from '../os/cache-dir.js';
import { kallsymsCacheFile, readCachedKallsyms, writeCachedKallsyms } from './kallsyms-cache.js';
import { KallsymsPrefetch } from './kallsyms-thread.js';
import { readPerfMap } from './perf-map.js';
import { ProblemList } from './problems.js';
import { SymbolTable } from './symbol-table.js';
import { readOwnVdso } from './vdso.js';

export type ImageKind = 'elf' | 'kernel' | 'jit' | 'missing';

export const KERNEL_IMAGE_NAME = '[kernel.kallsyms]';
// What an image costs besides its path, charged to the budget.
const IMAGE_BYTES = 400;
const VDSO_IMAGE_NAME = '[vdso]';

export class Image {
  private table?: SymbolTable;
  private symbolFrames?: Int32Array;
  private frameCache?: FrameCache;
  /** Position in the analysis' frame table (-1 until a frame of it is made). */
  frameTableId = -1;

  constructor(
    /** The pathname the log gave (what the outputs print). */
    readonly path: string,
    readonly kind: ImageKind,
    /** Gives the symbols when first needed: most mapped images are never sampled. */
    private readonly loadSymbols: () => SymbolTable,
    /** Parsed ELF headers, for ELF images (file or vdso). */
    readonly elf?: ElfImage,
  ) {}

  get symbols(): SymbolTable {
    return (this.table ??= this.loadSymbols());
  }

  /** Frame id of each symbol, filled in by the symbolizer (-1 = not yet). */
  get frameOfSymbol(): Int32Array {
    return (this.symbolFrames ??= new Int32Array(this.symbols.length).fill(-1));
  }

  /** Frame ids by link-time address (sampled PCs and return addresses), shared by every process mapping the image. */
  get cache(): FrameCache {
    return (this.frameCache ??= new FrameCache());
  }

  get basename(): string {
    return basename(this.path);
  }
}

export interface ImageLoaderOptions {
  /** Prefix for executable paths (pmcstat -r), default '/'. */
  root?: string;
  /** Kernel symbols file, default /proc/kallsyms. */
  kallsyms?: string;
  /** Directory holding perf-PID.map files, default /tmp. */
  perfMapDir?: string;
  /** Where parsed kernel symbols are cached (null: nowhere); default from the environment (see kallsyms-cache.ts). */
  cacheDir?: string | null;
}

export class ImageLoader {
  private readonly images = new Map<string, Image>();
  private readonly jitImages = new Map<number, Image | null>();
  private perfMapPids?: Set<number>;
  private kernel?: KernelSymbols | null;
  private prefetch?: KallsymsPrefetch;
  /** Files that could not be read, with the reason. */
  readonly problems = new ProblemList();

  constructor(
    private readonly options: ImageLoaderOptions = {},
    private readonly budget = new MemoryBudget(),
  ) {
    budget.describe('images', () => `${this.images.size} images`);
  }

  /** The image for a user-space MAP_IN pathname. */
  user(pathname: string): Image {
    let image = this.images.get(pathname);
    if (!image) {
      // A log can name thousands of files with paths of 64 KiB: they count.
      this.budget.take(IMAGE_BYTES + pathname.length);
      image = pathname === VDSO_IMAGE_NAME ? this.loadVdso() : this.loadFile(pathname);
      this.images.set(pathname, image);
    }
    return image;
  }

  /**
   * The image for a kernel mapping (the kernel or a module): symbols come
   * from kallsyms, read when a kernel address is first looked up (many
   * profiles have none), and empty when it cannot be read (see problems).
   */
  kernelImage(pathname = KERNEL_IMAGE_NAME): Image {
    const key = `kernel:${pathname}`;
    let image = this.images.get(key);
    if (!image) {
      image = new Image(pathname, 'kernel', () => this.kernelSymbols()?.symbols ?? SymbolTable.EMPTY);
      this.images.set(key, image);
    }
    return image;
  }

  /**
   * Makes the kernel symbols ready for a kernelSymbols() call to come: read
   * from the cache, else started on another thread.
   */
  prefetchKernelSymbols(): void {
    if (this.kernel !== undefined || this.prefetch) return;
    const cache = this.kallsymsCache();
    const cached = cache && readCachedKallsyms(cache.file);
    if (cached) this.kernel = cached;
    else this.prefetch = new KallsymsPrefetch(this.kallsymsPath, cache);
  }

  /** In this thread: from the cache, else from the file (then cached). */
  private readKernelSymbols(): KernelSymbols {
    const cache = this.kallsymsCache();
    const cached = cache && readCachedKallsyms(cache.file);
    if (cached) return cached;
    const k = readKallsyms(this.kallsymsPath);
    if (cache) writeCachedKallsyms(cache.file, cache.dir, k);
    return k;
  }

  /** Where /proc/kallsyms parsed is cached (a copy given with -k is not). */
  private kallsymsCache(): { file: string; dir: string } | undefined {
    if (this.options.kallsyms !== undefined) return undefined;
    const dir = this.options.cacheDir === undefined ? cacheDir() : (this.options.cacheDir ?? undefined);
    const file = dir && kallsymsCacheFile(dir);
    return dir && file ? { file, dir } : undefined;
  }

  /** Stops a prefetch whose result was not asked for. */
  dispose(): void {
    if (this.kernel === undefined) this.prefetch?.close();
  }

  private get kallsymsPath(): string {
    return this.options.kallsyms ?? '/proc/kallsyms';
  }

  kernelSymbols(): KernelSymbols | undefined {
    if (this.kernel === undefined) {
      const path = this.kallsymsPath;
      try {
        this.kernel = this.prefetch ? this.prefetch.take() : this.readKernelSymbols();
        if (this.kernel.hidden) {
          this.problems.add(path, 'kernel addresses are hidden (kptr_restrict): run as root or use a saved copy');
          this.kernel = null;
        }
      } catch (e) {
        this.problems.add(path, (e as Error).message);
        this.kernel = null;
      }
    }
    return this.kernel ?? undefined;
  }

  /**
   * The JIT map of a process, read once; undefined when it has none. The
   * directory is listed once: a log can name a million processes.
   */
  jit(pid: number): Image | undefined {
    const dir = this.options.perfMapDir ?? '/tmp';
    this.perfMapPids ??= listPerfMaps(dir);
    if (!this.perfMapPids.has(pid)) return undefined;
    let image = this.jitImages.get(pid);
    if (image === undefined) {
      const path = `${dir}/perf-${pid}.map`;
      const map = readPerfMap(path);
      image = map ? new Image(path, 'jit', () => map.symbols) : null;
      if (map && map.badLines > 0) this.problems.add(path, `${map.badLines} lines are not "START SIZE name"`);
      this.jitImages.set(pid, image);
    }
    return image ?? undefined;
  }

  private loadFile(pathname: string): Image {
    const clean = pathname.replace(/ \(deleted\)$/, '');
    const root = this.options.root ?? '/';
    const file = root === '/' || !clean.startsWith('/') ? clean : root.replace(/\/+$/, '') + clean;
    try {
      return this.elfImage(pathname, file, readElfFile(file));
    } catch (e) {
      this.problems.add(file, (e as Error).message);
      return new Image(pathname, 'missing', () => SymbolTable.EMPTY);
    }
  }

  private loadVdso(): Image {
    try {
      return this.elfImage(VDSO_IMAGE_NAME, VDSO_IMAGE_NAME, parseElfBuffer(readOwnVdso(), VDSO_IMAGE_NAME));
    } catch (e) {
      this.problems.add(VDSO_IMAGE_NAME, (e as Error).message);
      return new Image(VDSO_IMAGE_NAME, 'missing', () => SymbolTable.EMPTY);
    }
  }

  private elfImage(pathname: string, source: string, elf: ElfImage): Image {
    const load = (): SymbolTable => {
      try {
        return elf.symbols().table;
      } catch (e) {
        this.problems.add(source, (e as Error).message);
        return SymbolTable.EMPTY;
      }
    };
    return new Image(pathname, 'elf', load, elf);
  }
}

/** The pids of the perf-PID.map files in `dir`. */
function listPerfMaps(dir: string): Set<number> {
  const pids = new Set<number>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return pids;
  }
  for (const name of names) {
    const m = /^perf-(\d+)\.map$/.exec(name);
    if (m) pids.add(Number(m[1]));
  }
  return pids;
}
