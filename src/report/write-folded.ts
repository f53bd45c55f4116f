// Folded stacks for flamegraph.pl, speedscope and friends: one line per
// distinct stack, the process name first, then the frames from the
// outermost caller to the sampled function, joined by `;`, a space and the
// sample count. Kernel frames carry perf's `_[k]` and JIT frames `_[j]`.
import { PmcError } from '../pmc-error.js';
import type { AnalysisResult } from './analyze.js';
import { stacksOf, type PmcProfile } from './callgraph.js';
import type { FrameTable } from './frames.js';

export interface FoldedOptions {
  /** The PMC (event name or profile index); default the first one with samples. */
  pmc?: string | number;
  /** Add `_[k]` / `_[j]` to kernel / JIT frames; default true. */
  annotate?: boolean;
}

function selectProfile(result: AnalysisResult, pmc: string | number | undefined): PmcProfile | undefined {
  if (pmc === undefined) return result.profiles.find((p) => p.samples > 0);
  const p = typeof pmc === 'number' ? result.profiles[pmc] : result.profiles.find((x) => x.name === pmc);
  if (!p) {
    const known = result.profiles.map((x) => x.name).join(', ') || 'none';
    throw new PmcError('EINVAL', `no PMC "${pmc}" in the log (PMCs: ${known})`);
  }
  return p;
}

// `;` separates frames: a name must not contain one.
const frameText = (frames: FrameTable, id: number, annotate: boolean): string => {
  const name = frames.name(id).replaceAll(';', ':');
  if (!annotate) return name;
  if (frames.isKernel(id)) return `${name}_[k]`;
  if (frames.image(id)?.kind === 'jit') return `${name}_[j]`;
  return name;
};

export function* formatFolded(result: AnalysisResult, options: FoldedOptions = {}): Generator<string> {
  const profile = selectProfile(result, options.pmc);
  if (!profile) return;
  const annotate = options.annotate ?? true;
  const texts = new Map<number, string>();
  const text = (id: number): string => {
    let t = texts.get(id);
    if (t === undefined) texts.set(id, (t = frameText(result.frames, id, annotate)));
    return t;
  };
  // Different frames can print alike (same name in two images): merge their lines.
  const lines = new Map<string, number>();
  for (const s of stacksOf(profile)) {
    const key = [result.processNames[s.process].replaceAll(';', ':'), ...s.frames.map(text)].join(';');
    lines.set(key, (lines.get(key) ?? 0) + s.count);
  }
  for (const key of [...lines.keys()].sort()) yield `${key} ${lines.get(key)}\n`;
}
