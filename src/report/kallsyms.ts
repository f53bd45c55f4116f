// Kernel symbols from /proc/kallsyms (or a copy of it): `ADDR TYPE NAME [MODULE]`.
// Only text symbols are kept; kallsyms gives no sizes, so each runs to the next.
import { readFileSync } from 'node:fs';
import { PmcError } from '../pmc-error.js';
import { BAD_ADDRESS, parseHexAddress } from './address.js';
import { SymbolTableBuilder, type SymbolTable } from './symbol-table.js';

export interface KernelSymbols {
  symbols: SymbolTable;
  /** True when every address read as 0: kptr_restrict hides them from this user. */
  hidden: boolean;
  /** Module that owns an address, or undefined for the core kernel. */
  moduleOf(addr: number): string | undefined;
}

const TEXT_TYPES = new Set(['T', 't', 'W', 'w']);
// kallsyms lists no size; the last symbol gets this much.
const LAST_SYMBOL_SPAN = 0x1000;

export function parseKallsyms(text: string, source: string): KernelSymbols {
  const builder = new SymbolTableBuilder();
  let last = 0;
  const moduleRanges = new Map<string, { lo: number; hi: number }>();
  let sawAny = false;
  let lineNo = 0;
  for (const line of text.split('\n')) {
    lineNo++;
    if (line === '') continue;
    const sp1 = line.indexOf(' ');
    const sp2 = line.indexOf(' ', sp1 + 1);
    if (sp1 <= 0 || sp2 !== sp1 + 2) throw new PmcError('EINVAL', `${source}:${lineNo}: expected "ADDRESS TYPE NAME [MODULE]"`);
    sawAny = true;
    if (!TEXT_TYPES.has(line[sp1 + 1])) continue;
    const addr = parseHexAddress(line.slice(0, sp1));
    if (addr === BAD_ADDRESS) throw new PmcError('EINVAL', `${source}:${lineNo}: bad address "${line.slice(0, sp1)}"`);
    if (addr === 0) continue;
    let name = line.slice(sp2 + 1);
    let module: string | undefined;
    const tab = name.indexOf('\t');
    if (tab >= 0) {
      module = name.slice(tab + 1).replace(/^\[|\]$/g, '');
      name = name.slice(0, tab);
    }
    const global = line[sp1 + 1] === 'T' || line[sp1 + 1] === 'W' ? 0 : 1;
    builder.add(addr, 0, name, /^_*/.exec(name)![0].length * 2 + global);
    last = Math.max(last, addr);
    if (module !== undefined) {
      const r = moduleRanges.get(module);
      if (r) {
        r.lo = Math.min(r.lo, addr);
        r.hi = Math.max(r.hi, addr);
      } else moduleRanges.set(module, { lo: addr, hi: addr });
    }
  }
  const hidden = sawAny && builder.count === 0;
  const symbols = builder.build(last + LAST_SYMBOL_SPAN);
  const ranges = [...moduleRanges].map(([name, r]) => ({ name, lo: r.lo, hi: r.hi + LAST_SYMBOL_SPAN }));
  return {
    symbols,
    hidden,
    moduleOf(addr) {
      for (const r of ranges) if (addr >= r.lo && addr < r.hi) return r.name;
      return undefined;
    },
  };
}

export function readKallsyms(path = '/proc/kallsyms'): KernelSymbols {
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch (e) {
    throw new PmcError((e as NodeJS.ErrnoException).code ?? 'EIO', `${path}: cannot read kernel symbols`);
  }
  return parseKallsyms(text, path);
}
