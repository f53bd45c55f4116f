// /proc/kallsyms parsed once per boot and module set, and kept on disk. The
// kernel takes about 40 ms to produce the file (100k+ lines, 4 KiB per read)
// and parsing it as much again: the cached table is read in a millisecond.
// perf does the same in ~/.debug ([kernel.kallsyms]/<build-id>/kallsyms,
// copied by perf record). The key is the boot id (KASLR moves the kernel at
// each boot) and a hash of /proc/modules (modules loaded or unloaded since);
// what the key does not see (BPF programs, ftrace trampolines come and go)
// may be stale, as in perf's copy. The directory is os/cache-dir.ts's.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KernelSymbols, type ModuleRange } from './kallsyms.js';
import { SymbolTable } from './symbol-table.js';

const MAGIC = 'TSPMCKS1';
// Magic, then u32 symbols, u32 string bytes, u32 module JSON bytes, u32 0: 24 bytes, padded to 8.
const HEADER = 24;

/** The cache file for this boot and module set, or undefined when they cannot be read. */
export function kallsymsCacheFile(dir: string): string | undefined {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
    // A kernel built without modules has no /proc/modules.
    let modules: Buffer;
    try {
      modules = readFileSync('/proc/modules');
    } catch {
      modules = Buffer.alloc(0);
    }
    // FNV-1a over the module list (names, sizes, load addresses).
    let h = 0x811c9dc5;
    for (const b of modules) h = Math.imul(h ^ b, 0x01000193);
    return join(dir, `kallsyms-${boot}-${(h >>> 0).toString(16)}.bin`);
  } catch {
    return undefined;
  }
}

/** The cached symbols, or undefined when there are none (or they do not read back whole). */
export function readCachedKallsyms(file: string): KernelSymbols | undefined {
  let b: Buffer;
  try {
    b = readFileSync(file);
  } catch {
    return undefined;
  }
  // The tables are read in place: 8-byte alignment (a large file has a buffer of its own).
  if (b.byteOffset % 8 !== 0) b = Buffer.from(Uint8Array.prototype.slice.call(b).buffer);
  if (b.length < HEADER || b.toString('latin1', 0, 8) !== MAGIC) return undefined;
  const n = b.readUInt32LE(8);
  const stringBytes = b.readUInt32LE(12);
  const jsonBytes = b.readUInt32LE(16);
  const size = HEADER + 20 * n + stringBytes + jsonBytes;
  if (b.length !== size) return undefined;
  const aligned = b.buffer;
  const o = b.byteOffset + HEADER;
  const starts = new Float64Array(aligned, o, n);
  const ends = new Float64Array(aligned, o + 8 * n, n);
  const names = new Int32Array(aligned, o + 16 * n, n);
  const strings = b.subarray(HEADER + 20 * n, HEADER + 20 * n + stringBytes);
  let modules: ModuleRange[];
  try {
    modules = JSON.parse(b.toString('utf8', HEADER + 20 * n + stringBytes, size)) as ModuleRange[];
  } catch {
    return undefined;
  }
  return new KernelSymbols(SymbolTable.fromOffsets(starts, ends, names, strings), false, modules);
}

/** Saves `k` (written whole under another name, then renamed: readers never see half a file). Failures are ignored: the cache is an optimization. */
export function writeCachedKallsyms(file: string, dir: string, k: KernelSymbols): void {
  if (k.hidden) return;
  const s = k.symbols;
  const n = s.length;
  // Only the names, each NUL-terminated, not the whole kallsyms text.
  const names: Buffer[] = [];
  const offsets = new Int32Array(n);
  let used = 0;
  for (let i = 0; i < n; i++) {
    const name = Buffer.from(s.name(i) + '\0', 'utf8');
    offsets[i] = used;
    used += name.length;
    names.push(name);
  }
  const json = Buffer.from(JSON.stringify(k.modules), 'utf8');
  const head = Buffer.alloc(HEADER);
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(n, 8);
  head.writeUInt32LE(used, 12);
  head.writeUInt32LE(json.length, 16);
  const body = [head, Buffer.from(s.starts.buffer, s.starts.byteOffset, 8 * n), Buffer.from(s.ends.buffer, s.ends.byteOffset, 8 * n), Buffer.from(offsets.buffer), ...names, json];
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(tmp, Buffer.concat(body));
    renameSync(tmp, file);
  } catch {
    rmSync(tmp, { force: true });
  }
}
