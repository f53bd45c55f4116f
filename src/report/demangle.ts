// C++ and Rust symbol names made readable. perf demangles with a library
// when it has one and falls back to binutils' c++filt; Node has no
// maintained C++ demangler, so every mangled name of an analysis goes to
// c++filt in one batch (one process, one line in and one line out per name).
import { spawnSync } from 'node:child_process';
import { FrameKind, type FrameTable } from './frames.js';

/** Itanium C++ (and Rust legacy, which uses it), macOS's extra underscore, Rust v0. */
const MANGLED = /^(?:_Z|__Z|_R)[A-Za-z0-9_]/;
/** Rust legacy names end in a hash segment; readable names leave it out, as rustfilt does. */
const RUST_LEGACY_HASH = /^_ZN.*17h[0-9a-f]{16}E/;
/** Rust v0 crate disambiguators, `crate[1a2b3c]`, left out for the same reason. */
const RUST_V0_DISAMBIGUATOR = /\[[0-9a-f]+\]/g;

function isMangled(name: string): boolean {
  return MANGLED.test(name);
}

/** The readable form of c++filt's answer for `mangled`. */
function tidy(mangled: string, demangled: string): string {
  if (RUST_LEGACY_HASH.test(mangled)) return demangled.replace(/::h[0-9a-f]{16}(?= |$)/, '');
  if (mangled.startsWith('_R')) return demangled.replace(RUST_V0_DISAMBIGUATOR, '');
  return demangled;
}

export interface DemangleResult {
  /** Readable names, in the order given (a name c++filt cannot read comes back as it was). */
  names: string[];
  /** Why nothing was demangled (c++filt missing or failed), when that happened. */
  problem?: string;
}

/** Demangles `names` with one c++filt run; names that are not mangled are returned as they are. */
export function demangle(names: readonly string[]): DemangleResult {
  const out = names.slice();
  const todo: number[] = [];
  names.forEach((n, i) => {
    if (isMangled(n) && !n.includes('\n')) todo.push(i);
  });
  if (todo.length === 0) return { names: out };
  const r = spawnSync('c++filt', [], { input: todo.map((i) => names[i]).join('\n') + '\n', encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.error || r.status !== 0) {
    const why = r.error ? ((r.error as NodeJS.ErrnoException).code ?? r.error.message) : `exit status ${r.status}`;
    return { names: out, problem: `c++filt: ${why}; C++ and Rust names stay mangled (install binutils)` };
  }
  const lines = r.stdout.split('\n');
  todo.forEach((i, k) => {
    const d = lines[k];
    if (d) out[i] = tidy(names[i], d);
  });
  return { names: out };
}

const done = new WeakMap<FrameTable, number>();

/**
 * Renames the symbol frames not yet demangled (frames are interned, so each
 * name is demangled once, whatever the number of samples).
 */
export function demangleFrames(frames: FrameTable): string | undefined {
  const from = done.get(frames) ?? 0;
  const ids: number[] = [];
  const names: string[] = [];
  for (let id = from; id < frames.length; id++) {
    if (frames.kind(id) !== FrameKind.Symbol) continue;
    const name = frames.name(id);
    if (isMangled(name)) {
      ids.push(id);
      names.push(name);
    }
  }
  done.set(frames, frames.length);
  if (ids.length === 0) return undefined;
  const r = demangle(names);
  ids.forEach((id, k) => {
    if (r.names[k] !== names[k]) frames.rename(id, r.names[k]);
  });
  return r.problem;
}
