// pmcstat -G: the call graph as text. Per PMC a `@ NAME [N samples]` header
// and a blank line, then each sampled function (most samples first) with its
// callers nested below it. A line is: depth spaces, the percentage of the
// parent's samples (`100.0% ` or `%05.2f% `), ` [count] ` padded to 12
// columns, depth spaces, the function, and ` @ image` when the image differs
// from the previous line's. A blank line follows each sampled function.
import type { AnalysisResult } from './analyze.js';
import { ROOT, type CallTree } from './call-tree.js';
import { percent05 } from './format.js';
import type { FrameTable } from './frames.js';

/** pmcstat's DEFAULT_CALLGRAPH_DEPTH (-z). */
export const DEFAULT_CALLGRAPH_DEPTH = 16;

export interface CallgraphOptions {
  /** Frames shown per chain, the sampled function included (-z); default 16. */
  depth?: number;
}

/** Children by descending count; ties by name, so the output is stable. */
export function sortedChildren(tree: CallTree, node: number, name: (frame: number) => string): number[] {
  return [...tree.children(node)].sort((a, b) => {
    const d = tree.count(b) - tree.count(a);
    if (d !== 0) return d;
    const na = name(tree.frame(a));
    const nb = name(tree.frame(b));
    return na < nb ? -1 : na > nb ? 1 : 0;
  });
}

/** Frame names, made once each: sorting asks for them many times. */
export function nameCache(frames: FrameTable): (frame: number) => string {
  const names = new Map<number, string>();
  return (frame) => {
    let n = names.get(frame);
    if (n === undefined) names.set(frame, (n = frames.name(frame)));
    return n;
  };
}

export function* formatCallgraph(result: AnalysisResult, options: CallgraphOptions = {}): Generator<string> {
  const depthLimit = Math.max(1, options.depth ?? DEFAULT_CALLGRAPH_DEPTH);
  const frames = result.frames;
  const name = nameCache(frames);
  let previousImage: string | undefined;

  function* node(tree: CallTree, n: number, depth: number, total: number): Generator<string> {
    const indent = ' '.repeat(depth);
    const count = tree.count(n);
    const pct = count === total ? '100.0% ' : `${percent05((100 * count) / total)}% `;
    const frame = tree.frame(n);
    const image = frames.image(frame)?.path ?? '[unknown]';
    const at = image !== previousImage ? ` @ ${image}` : '';
    previousImage = image;
    yield `${indent}${pct}${` [${count}] `.padEnd(12)}${indent}${name(frame)}${at}\n`;
    if (depth + 1 >= depthLimit) return;
    for (const c of sortedChildren(tree, n, name)) yield* node(tree, c, depth + 1, count);
  }

  for (const profile of result.profiles) {
    const tree = profile.tree;
    const top = sortedChildren(tree, ROOT, name);
    if (top.length === 0) continue;
    const total = top.reduce((s, n) => s + tree.count(n), 0);
    yield `@ ${profile.name} [${total} samples]\n\n`;
    for (const n of top) {
      previousImage = undefined;
      yield* node(tree, n, 0, total);
      yield '\n';
    }
  }
}
