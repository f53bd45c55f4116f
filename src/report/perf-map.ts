// JIT symbols from /tmp/perf-PID.map (V8's --perf-basic-prof and other JITs):
// one `START SIZE name` line per code object, hex without 0x, the name being
// the rest of the line (any text but a newline: a JIT names code as it likes).
import { readFileSync } from 'node:fs';
import { BAD_ADDRESS, parseHexAddress } from './address.js';
import { SymbolTableBuilder, type SymbolTable } from './symbol-table.js';

export interface PerfMap {
  symbols: SymbolTable;
  /** Lines that were not `START SIZE name`. */
  badLines: number;
}

const LINE = /^(?:0x)?([0-9a-fA-F]+)\s+(?:0x)?([0-9a-fA-F]+)\s+(.*)$/s;

function parsePerfMap(text: string): PerfMap {
  const builder = new SymbolTableBuilder();
  let badLines = 0;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line === '') continue;
    const m = LINE.exec(line);
    const start = m ? parseHexAddress(m[1]) : BAD_ADDRESS;
    if (!m || start === BAD_ADDRESS) {
      badLines++;
      continue;
    }
    // A JIT reuses freed code space: the later line describes the live code.
    builder.add(start, parseInt(m[2], 16), m[3].trimEnd(), -i);
  }
  return { symbols: builder.build(), badLines };
}

/** The map of one process, or undefined when there is none. */
export function readPerfMap(path: string): PerfMap | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  return parsePerfMap(text);
}
