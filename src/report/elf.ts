// A small ELF64 little-endian reader: the header, PT_LOAD segments, section
// headers and the FUNC/IFUNC symbols of .symtab and .dynsym. Only the parts
// needed are read from a file (a large executable is not read whole), and a
// buffer works too (the vdso comes from memory).
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { PmcError } from '../pmc-error.js';
import { SymbolTable, SymbolTableBuilder } from './symbol-table.js';

export type ElfType = 'REL' | 'EXEC' | 'DYN' | 'CORE';

export interface LoadSegment {
  vaddr: number;
  offset: number;
  filesz: number;
  memsz: number;
  /** PF_X | PF_W | PF_R bits. */
  flags: number;
}

export interface ElfSymbols {
  table: SymbolTable;
  /** False for a stripped file: only .dynsym was there. */
  hasSymtab: boolean;
}

export interface ElfImage {
  /** The file, or the name given to a buffer. */
  name: string;
  type: ElfType;
  loads: LoadSegment[];
  /**
   * Link-time address of file offset 0 as the executable segment maps it (its
   * p_vaddr - p_offset), as MAP_IN's start is the runtime address of file
   * offset 0 computed from the executable mapping. GNU ld gives every segment
   * the same difference; lld does not (a Rust or clang binary's text is often
   * a page further in memory than in the file).
   */
  linkBase: number;
  /** Link-time extent of the executable segments: [textStart, textEnd). */
  textStart: number;
  textEnd: number;
  /**
   * The FUNC and IFUNC symbols of .symtab and .dynsym, read on first call
   * (most images a log maps are never sampled). Throws PmcError.
   */
  symbols(): ElfSymbols;
}

const PF_X = 1;
const PT_LOAD = 1;
const SHT_SYMTAB = 2;
const SHT_DYNSYM = 11;
const STT_FUNC = 2;
const STT_GNU_IFUNC = 10;
const SHN_UNDEF = 0;
const SHN_LORESERVE = 0xff00;
const UNDERSCORE = 0x5f;
const ELF_TYPES: Record<number, ElfType> = { 1: 'REL', 2: 'EXEC', 3: 'DYN', 4: 'CORE' };

/** Reads `length` bytes at `offset` of the input. */
type ByteSource = (offset: number, length: number) => Buffer;
/** Gives access to the input for the duration of `use`. */
type Opener = <T>(use: (read: ByteSource) => T) => T;

interface SymbolSection {
  dynamic: boolean;
  offset: number;
  size: number;
  entsize: number;
  strOffset: number;
  strSize: number;
}

const u64 = (b: Buffer, off: number): number => b.readUInt32LE(off + 4) * 0x1_0000_0000 + b.readUInt32LE(off);

function parse(name: string, open: Opener, fileSize: number): ElfImage {
  const bad = (what: string): never => {
    throw new PmcError('ENOEXEC', `${name}: ${what}`);
  };
  const inFile = (off: number, len: number): boolean => off >= 0 && len >= 0 && off + len <= fileSize;
  if (fileSize < 64) bad('too short for an ELF header (expected an ELF64 file)');
  return open((read) => {
    const eh = read(0, 64);
    if (eh.readUInt32BE(0) !== 0x7f454c46) bad('not an ELF file (bad magic)');
    if (eh[4] !== 2 || eh[5] !== 1) bad('not ELF64 little-endian (only x86_64-style ELF64 LE is supported)');
    const type = ELF_TYPES[eh.readUInt16LE(16)] ?? bad(`unknown e_type ${eh.readUInt16LE(16)}`);
    const phoff = u64(eh, 32);
    const shoff = u64(eh, 40);
    const phentsize = eh.readUInt16LE(54);
    const phnum = eh.readUInt16LE(56);
    const shentsize = eh.readUInt16LE(58);
    const shnum = eh.readUInt16LE(60);

    const loads: LoadSegment[] = [];
    if (phnum > 0) {
      if (phentsize < 56 || !inFile(phoff, phnum * phentsize)) bad('program header table outside the file');
      const ph = read(phoff, phnum * phentsize);
      for (let i = 0; i < phnum; i++) {
        const o = i * phentsize;
        if (ph.readUInt32LE(o) !== PT_LOAD) continue;
        loads.push({
          flags: ph.readUInt32LE(o + 4),
          offset: u64(ph, o + 8),
          vaddr: u64(ph, o + 16),
          filesz: u64(ph, o + 32),
          memsz: u64(ph, o + 40),
        });
      }
    }
    const text = loads.filter((l) => l.flags & PF_X);
    const textStart = text.length ? Math.min(...text.map((l) => l.vaddr)) : 0;
    const textEnd = text.length ? Math.max(...text.map((l) => l.vaddr + l.memsz)) : 0;
    const base = text[0] ?? loads[0];
    const linkBase = base ? base.vaddr - base.offset : 0;

    // Section headers now (they are small); the symbol tables when asked for.
    const tables: SymbolSection[] = [];
    const sectionEnd: (number | undefined)[] = [];
    if (shnum > 0 && shoff > 0) {
      if (shentsize < 64 || !inFile(shoff, shnum * shentsize)) bad('section header table outside the file');
      const sh = read(shoff, shnum * shentsize);
      const field = (i: number, at: number): number => u64(sh, i * shentsize + at);
      const word = (i: number, at: number): number => sh.readUInt32LE(i * shentsize + at);
      for (let i = 0; i < shnum; i++) {
        // The end address of each section bounds a zero-size symbol in it.
        sectionEnd.push(field(i, 32) > 0 ? field(i, 16) + field(i, 32) : undefined);
        const stype = word(i, 4);
        const link = word(i, 40);
        if ((stype !== SHT_SYMTAB && stype !== SHT_DYNSYM) || link >= shnum || field(i, 56) < 24) continue;
        const t = { dynamic: stype === SHT_DYNSYM, offset: field(i, 24), size: field(i, 32), entsize: field(i, 56), strOffset: field(link, 24), strSize: field(link, 32) };
        if (!inFile(t.offset, t.size) || !inFile(t.strOffset, t.strSize)) bad('symbol table outside the file');
        tables.push(t);
      }
    }
    let symbols: ElfSymbols | undefined;
    const textLimit = textEnd || Infinity;
    return {
      name,
      type,
      loads,
      linkBase,
      textStart,
      textEnd,
      symbols: () => (symbols ??= open((r) => readSymbols(r, tables, sectionEnd, textLimit))),
    };
  });
}

function readSymbols(read: ByteSource, tables: SymbolSection[], sectionEnd: (number | undefined)[], textLimit: number): ElfSymbols {
  const builder = new SymbolTableBuilder();
  // Names stay undecoded in one buffer holding every table's strings.
  const stringSections: Buffer[] = [];
  let base = 0;
  for (const t of tables) {
    const syms = read(t.offset, t.size);
    const strings = read(t.strOffset, t.strSize);
    stringSections.push(strings);
    // .symtab is the richer table: its names win over .dynsym's at the same address.
    const tableRank = t.dynamic ? 0.5 : 0;
    for (let o = 0; o + 24 <= syms.length; o += t.entsize) {
      const info = syms[o + 4];
      const stype = info & 0xf;
      if (stype !== STT_FUNC && stype !== STT_GNU_IFUNC) continue;
      const shndx = syms.readUInt16LE(o + 6);
      if (shndx === SHN_UNDEF) continue;
      const start = u64(syms, o + 8);
      const nameOff = syms.readUInt32LE(o);
      if (start === 0 || nameOff >= strings.length || strings[nameOff] === 0) continue;
      const bind = info >> 4; // LOCAL 0, GLOBAL 1, WEAK 2
      const bindRank = bind === 1 ? 0 : bind === 2 ? 1 : 2;
      // Prefer the plain name of an alias pair (getpid over __getpid).
      let underscores = 0;
      while (strings[nameOff + underscores] === UNDERSCORE) underscores++;
      const limit = shndx < SHN_LORESERVE ? sectionEnd[shndx] : undefined;
      builder.add(start, u64(syms, o + 16), base + nameOff, underscores * 4 + bindRank + tableRank, limit);
    }
    base += strings.length;
  }
  const strings = stringSections.length === 1 ? stringSections[0] : Buffer.concat(stringSections);
  return { table: builder.build(textLimit, strings), hasSymtab: tables.some((t) => !t.dynamic) };
}

/** Parses an ELF image held in memory (the vdso). */
export function parseElfBuffer(buf: Buffer, name: string): ElfImage {
  const read: ByteSource = (off, len) => buf.subarray(off, off + len);
  return parse(name, (use) => use(read), buf.length);
}

interface CacheEntry {
  mtimeMs: number;
  size: number;
  ino: number;
  image: ElfImage;
}
const cache = new Map<string, CacheEntry>();

function openFile<T>(path: string, use: (fd: number) => T): T {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new PmcError((e as NodeJS.ErrnoException).code ?? 'EIO', `${path}: cannot open ELF image`);
  }
  try {
    return use(fd);
  } finally {
    closeSync(fd);
  }
}

const fdSource =
  (fd: number): ByteSource =>
  (off, len) => {
    const b = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const n = readSync(fd, b, got, len - got, off + got);
      if (n === 0) break;
      got += n;
    }
    return b.subarray(0, got);
  };

/**
 * Reads an ELF file's headers (its symbols on first use); cached by path,
 * mtime, size and inode. Throws PmcError.
 */
export function readElfFile(path: string): ElfImage {
  return openFile(path, (fd) => {
    const st = fstatSync(fd);
    const hit = cache.get(path);
    if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size && hit.ino === st.ino) return hit.image;
    let first = true;
    // The headers are read through this descriptor; the symbols, later, through a new one.
    const image = parse(path, (use) => (first ? ((first = false), use(fdSource(fd))) : openFile(path, (f) => use(fdSource(f)))), st.size);
    cache.set(path, { mtimeMs: st.mtimeMs, size: st.size, ino: st.ino, image });
    return image;
  });
}
