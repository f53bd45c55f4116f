// A small ELF64 little-endian reader: the header, PT_LOAD segments, section
// headers and the FUNC/IFUNC symbols of .symtab and .dynsym. Only the parts
// needed are read from a file (a large executable is not read whole), and a
// buffer works too (the vdso comes from memory).
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { PmcError } from '../pmc-error.js';
import { SymbolTable, type SymbolCandidate } from './symbol-table.js';

export type ElfType = 'REL' | 'EXEC' | 'DYN' | 'CORE';

export interface LoadSegment {
  vaddr: number;
  offset: number;
  filesz: number;
  memsz: number;
  /** PF_X | PF_W | PF_R bits. */
  flags: number;
}

export interface ElfImage {
  /** The file, or the name given to a buffer. */
  name: string;
  type: ElfType;
  loads: LoadSegment[];
  /** Link-time address of file offset 0: first PT_LOAD p_vaddr - p_offset. */
  linkBase: number;
  /** Link-time extent of the executable segments: [textStart, textEnd). */
  textStart: number;
  textEnd: number;
  symbols: SymbolTable;
  /** False for a stripped file: only .dynsym was there. */
  hasSymtab: boolean;
}

const PF_X = 1;
const PT_LOAD = 1;
const SHT_SYMTAB = 2;
const SHT_DYNSYM = 11;
const STT_FUNC = 2;
const STT_GNU_IFUNC = 10;
const SHN_UNDEF = 0;
const SHN_LORESERVE = 0xff00;
const ELF_TYPES: Record<number, ElfType> = { 1: 'REL', 2: 'EXEC', 3: 'DYN', 4: 'CORE' };

/** Reads `length` bytes at `offset` of the input. */
type ByteSource = (offset: number, length: number) => Buffer;

const u64 = (b: Buffer, off: number): number => b.readUInt32LE(off + 4) * 0x1_0000_0000 + b.readUInt32LE(off);

function parse(name: string, read: ByteSource, fileSize: number): ElfImage {
  const bad = (what: string): never => {
    throw new PmcError('ENOEXEC', `${name}: ${what}`);
  };
  if (fileSize < 64) bad('too short for an ELF header (expected an ELF64 file)');
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
  const inFile = (off: number, len: number): boolean => off >= 0 && len >= 0 && off + len <= fileSize;

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
  const linkBase = loads.length ? loads[0].vaddr - loads[0].offset : 0;

  const candidates: SymbolCandidate[] = [];
  let hasSymtab = false;
  if (shnum > 0 && shoff > 0) {
    if (shentsize < 64 || !inFile(shoff, shnum * shentsize)) bad('section header table outside the file');
    const sh = read(shoff, shnum * shentsize);
    const section = (i: number) => {
      const o = i * shentsize;
      return {
        type: sh.readUInt32LE(o + 4),
        addr: u64(sh, o + 16),
        offset: u64(sh, o + 24),
        size: u64(sh, o + 32),
        link: sh.readUInt32LE(o + 40),
        entsize: u64(sh, o + 56),
      };
    };
    for (let i = 0; i < shnum; i++) {
      const s = section(i);
      if (s.type !== SHT_SYMTAB && s.type !== SHT_DYNSYM) continue;
      if (s.link >= shnum || s.entsize < 24) continue;
      const str = section(s.link);
      if (!inFile(s.offset, s.size) || !inFile(str.offset, str.size)) bad('symbol table outside the file');
      if (s.type === SHT_SYMTAB) hasSymtab = true;
      const syms = read(s.offset, s.size);
      const strings = read(str.offset, str.size);
      // .symtab is the richer table: its names win over .dynsym's at the same address.
      const tableRank = s.type === SHT_SYMTAB ? 0 : 0.5;
      for (let o = 0; o + 24 <= syms.length; o += s.entsize) {
        const info = syms[o + 4];
        const stype = info & 0xf;
        if (stype !== STT_FUNC && stype !== STT_GNU_IFUNC) continue;
        const shndx = syms.readUInt16LE(o + 6);
        if (shndx === SHN_UNDEF) continue;
        const start = u64(syms, o + 8);
        if (start === 0) continue;
        const nameOff = syms.readUInt32LE(o);
        const end = strings.indexOf(0, nameOff);
        const symName = strings.toString('utf8', nameOff, end < 0 ? strings.length : end);
        if (symName === '') continue;
        const bind = info >> 4; // LOCAL 0, GLOBAL 1, WEAK 2
        const bindRank = bind === 1 ? 0 : bind === 2 ? 1 : 2;
        // Prefer the plain name of an alias pair (getpid over __getpid).
        const underscores = /^_*/.exec(symName)![0].length;
        let limit: number | undefined;
        if (shndx < SHN_LORESERVE && shndx < shnum) {
          const home = section(shndx);
          if (home.size > 0) limit = home.addr + home.size;
        }
        candidates.push({ start, size: u64(syms, o + 16), name: symName, rank: underscores * 4 + bindRank + tableRank, limit });
      }
    }
  }
  return {
    name,
    type,
    loads,
    linkBase,
    textStart,
    textEnd,
    symbols: SymbolTable.build(candidates, textEnd || Infinity),
    hasSymtab,
  };
}

/** Parses an ELF image held in memory (the vdso). */
export function parseElfBuffer(buf: Buffer, name: string): ElfImage {
  return parse(name, (off, len) => buf.subarray(off, off + len), buf.length);
}

interface CacheEntry {
  mtimeMs: number;
  size: number;
  ino: number;
  image: ElfImage;
}
const cache = new Map<string, CacheEntry>();

/** Reads an ELF file's headers and symbols; cached by path, mtime, size and inode. Throws PmcError. */
export function readElfFile(path: string): ElfImage {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw new PmcError(code, `${path}: cannot open ELF image`);
  }
  try {
    const st = fstatSync(fd);
    const hit = cache.get(path);
    if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size && hit.ino === st.ino) return hit.image;
    const read: ByteSource = (off, len) => {
      const b = Buffer.allocUnsafe(len);
      let got = 0;
      while (got < len) {
        const n = readSync(fd, b, got, len - got, off + got);
        if (n === 0) break;
        got += n;
      }
      return b.subarray(0, got);
    };
    const image = parse(path, read, st.size);
    cache.set(path, { mtimeMs: st.mtimeMs, size: st.size, ino: st.ino, image });
    return image;
  } finally {
    closeSync(fd);
  }
}
