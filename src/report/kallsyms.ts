// Kernel symbols from /proc/kallsyms (or a copy of it): `ADDR TYPE NAME [MODULE]`.
// Only text symbols are kept; kallsyms gives no sizes, so each runs to the next.
// The file (5 MB, 100k+ lines) is parsed as bytes: names stay in the buffer
// and are decoded only when a profile looks them up.
import { closeSync, openSync, readSync } from 'node:fs';
import { PmcError } from '../pmc-error.js';
import { BAD_ADDRESS, packAddress } from './address.js';
import { SymbolTableBuilder, SymbolTable } from './symbol-table.js';

/** Where a module's symbols lie. */
export interface ModuleRange {
  name: string;
  lo: number;
  hi: number;
}

export class KernelSymbols {
  constructor(
    readonly symbols: SymbolTable,
    /** True when every address read as 0: kptr_restrict hides them from this user. */
    readonly hidden: boolean,
    readonly modules: ModuleRange[],
  ) {}

  /** Module that owns an address, or undefined for the core kernel. */
  moduleOf(addr: number): string | undefined {
    for (const r of this.modules) if (addr >= r.lo && addr < r.hi) return r.name;
    return undefined;
  }
}

// kallsyms lists no size; the last symbol gets this much.
const LAST_SYMBOL_SPAN = 0x1000;
// A procfs file has no size to read up to (st_size 0): read into this much, doubling when full.
const FIRST_READ_SIZE = 8 << 20;

const NL = 0x0a;
const TAB = 0x09;
const SPACE = 0x20;
const UNDERSCORE = 0x5f;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const HEX_DIGIT = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX_DIGIT[0x30 + i] = i;
for (let i = 0; i < 6; i++) HEX_DIGIT[0x41 + i] = HEX_DIGIT[0x61 + i] = 10 + i;

/** Packed address of 1 to 16 hex digits in bytes [from, to), or BAD_ADDRESS. */
function hexAddress(b: Uint8Array, from: number, to: number): number {
  if (to <= from || to - from > 16) return BAD_ADDRESS;
  let hi = 0;
  let lo = 0;
  for (let i = from; i < to; i++) {
    const d = HEX_DIGIT[b[i]];
    if (d < 0) return BAD_ADDRESS;
    hi = ((hi << 4) | (lo >>> 28)) >>> 0;
    lo = ((lo << 4) | d) >>> 0;
  }
  return packAddress(hi, lo);
}

/**
 * Parses kallsyms text. Takes `bytes` over: each kept name's terminator (the
 * tab or newline after it) is overwritten with a NUL, and the symbol table
 * decodes names from the buffer on lookup.
 */
function parseKallsyms(bytes: Buffer, source: string): KernelSymbols {
  const b = bytes;
  const n = b.length;
  // Lines run 30 to 60 bytes: room for every symbol without growing.
  const builder = new SymbolTableBuilder(n / 32);
  let last = 0;
  const moduleRanges = new Map<string, { lo: number; hi: number }>();
  let sawAny = false;
  let lineNo = 0;
  for (let pos = 0; pos < n; ) {
    lineNo++;
    let eol = b.indexOf(NL, pos);
    if (eol < 0) eol = n;
    const line = pos;
    pos = eol + 1;
    if (eol === line) continue;
    let sp = line;
    while (sp < eol && b[sp] !== SPACE) sp++;
    if (sp === line || sp + 2 >= eol || b[sp + 2] !== SPACE) throw new PmcError('EINVAL', `${source}:${lineNo}: expected "ADDRESS TYPE NAME [MODULE]"`);
    sawAny = true;
    const type = b[sp + 1];
    // T and W are global, t and w local; nothing else is text.
    const global = type === 0x54 || type === 0x57;
    if (!global && type !== 0x74 && type !== 0x77) continue;
    const addr = hexAddress(b, line, sp);
    if (addr === BAD_ADDRESS) throw new PmcError('EINVAL', `${source}:${lineNo}: bad address "${b.toString('latin1', line, sp)}"`);
    if (addr === 0) continue;
    const name = sp + 3;
    let nameEnd = name;
    while (nameEnd < eol && b[nameEnd] !== TAB) nameEnd++;
    let u = name;
    while (u < nameEnd && b[u] === UNDERSCORE) u++;
    if (nameEnd < eol) {
      const from = b[nameEnd + 1] === OPEN_BRACKET ? nameEnd + 2 : nameEnd + 1;
      const to = eol > from && b[eol - 1] === CLOSE_BRACKET ? eol - 1 : eol;
      const module = b.toString('latin1', from, to);
      const r = moduleRanges.get(module);
      if (r) {
        r.lo = Math.min(r.lo, addr);
        r.hi = Math.max(r.hi, addr);
      } else moduleRanges.set(module, { lo: addr, hi: addr });
    }
    if (nameEnd < n) b[nameEnd] = 0;
    builder.add(addr, 0, name, (u - name) * 2 + (global ? 0 : 1));
    if (addr > last) last = addr;
  }
  const hidden = sawAny && builder.count === 0;
  const symbols = builder.build(last + LAST_SYMBOL_SPAN, b);
  const ranges = [...moduleRanges].map(([name, r]) => ({ name, lo: r.lo, hi: r.hi + LAST_SYMBOL_SPAN }));
  return new KernelSymbols(symbols, hidden, ranges);
}

/** A whole file, procfs ones (st_size 0) included, with large reads. */
function readWhole(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    let buf = Buffer.allocUnsafe(FIRST_READ_SIZE);
    let used = 0;
    for (;;) {
      if (used === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, used);
        buf = bigger;
      }
      const got = readSync(fd, buf, used, buf.length - used, null);
      if (got === 0) return buf.subarray(0, used);
      used += got;
    }
  } finally {
    closeSync(fd);
  }
}

export function readKallsyms(path = '/proc/kallsyms'): KernelSymbols {
  let bytes: Buffer;
  try {
    bytes = readWhole(path);
  } catch (e) {
    throw new PmcError((e as NodeJS.ErrnoException).code ?? 'EIO', `${path}: cannot read kernel symbols`);
  }
  return parseKallsyms(bytes, path);
}

/** KernelSymbols as plain data and transferable buffers, for sending between threads. */
export interface KernelSymbolsMessage {
  starts: Float64Array;
  ends: Float64Array;
  nameOffsets: Int32Array;
  strings: Uint8Array;
  modules: ModuleRange[];
  hidden: boolean;
}

export function toMessage(k: KernelSymbols): { message: KernelSymbolsMessage; transfer: ArrayBuffer[] } {
  const s = k.symbols;
  const strings = s.stringBytes ?? new Uint8Array(0);
  const nameOffsets = s.nameOffsets();
  if (!nameOffsets) throw new PmcError('EINVAL', 'kernel symbols whose names were decoded cannot be sent');
  const message = { starts: s.starts, ends: s.ends, nameOffsets, strings, modules: k.modules, hidden: k.hidden };
  const transfer = [message.starts.buffer, message.ends.buffer, message.nameOffsets.buffer, strings.buffer].filter((b): b is ArrayBuffer => b instanceof ArrayBuffer);
  return { message, transfer: [...new Set(transfer)] };
}

export function fromMessage(m: KernelSymbolsMessage): KernelSymbols {
  const strings = Buffer.from(m.strings.buffer, m.strings.byteOffset, m.strings.byteLength);
  return new KernelSymbols(SymbolTable.fromOffsets(m.starts, m.ends, m.nameOffsets, strings), m.hidden, m.modules);
}
