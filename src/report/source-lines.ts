// file:line of link-time addresses, from an image's DWARF line tables, the
// way perf does without libdw: binutils' addr2line, one process per image
// for all of that image's addresses (one address in, one line out).
import { spawnSync } from 'node:child_process';
import type { Image } from './image.js';

export interface SourceLineBatch {
  /** `file:line` by image file and link-time address; absent where the image has no line for it. */
  lines: Map<string, Map<number, string>>;
  /** Images addr2line could not read, with why. */
  problems: { path: string; reason: string }[];
}

/** addr2line's answers for an address it has no file or no line for: `??:0`, `??:?`, `file:?`. */
const UNKNOWN = /^\?\?|:[0?]$/;

/** Looks up every address of every image in `wanted` (image file -> link-time addresses). */
export function sourceLines(wanted: Map<string, Set<number>>): SourceLineBatch {
  const lines = new Map<string, Map<number, string>>();
  const problems: { path: string; reason: string }[] = [];
  for (const [file, set] of wanted) {
    const addrs = [...set];
    const r = spawnSync('addr2line', ['-e', file], {
      input: addrs.map((a) => a.toString(16)).join('\n') + '\n',
      encoding: 'utf8',
      maxBuffer: 1 << 30,
    });
    if (r.error || r.status !== 0) {
      const why = r.error ? ((r.error as NodeJS.ErrnoException).code ?? r.error.message) : r.stderr.trim().split('\n')[0] || `exit status ${r.status}`;
      problems.push({ path: file, reason: `addr2line: ${why}` });
      continue;
    }
    const out = r.stdout.split('\n');
    const found = new Map<number, string>();
    addrs.forEach((a, i) => {
      // "file:line (discriminator N)": the discriminator tells basic blocks apart, not lines.
      const text = (out[i] ?? '').replace(/ \(discriminator \d+\)$/, '');
      if (text && !UNKNOWN.test(text)) found.set(a, text);
    });
    lines.set(file, found);
  }
  return { lines, problems };
}

/** The file addr2line reads for a frame's image, when it is an ELF file (not the vdso, not the kernel). */
export function lineSource(image: Image | null): string | undefined {
  const elf = image?.kind === 'elf' ? image.elf : undefined;
  return elf && elf.name.startsWith('/') ? elf.name : undefined;
}

/** A `file:line` of sourceLines() as its two parts. */
export function splitSourceLine(text: string): { file: string; line: number } {
  const colon = text.lastIndexOf(':');
  return { file: text.slice(0, colon), line: Number(text.slice(colon + 1)) };
}
