// pmcstat -G: the call graph as text. Per PMC a `@ NAME [N samples]` header
// and a blank line, then each sampled function (most samples first) with its
// callers nested below it. A line is: depth spaces, the percentage of the
// parent's samples (`100.0% ` or `%05.2f% `), ` [count] ` padded to 12
// columns, depth spaces, the function, and ` @ image` when the image differs
// from the previous line's. A blank line follows each sampled function.
import type { AnalysisResult } from './analyze.js';
import type { CallNode } from './callgraph.js';
import { percent05 } from './format.js';
import type { FrameTable } from './frames.js';

/** pmcstat's DEFAULT_CALLGRAPH_DEPTH (-z). */
export const DEFAULT_CALLGRAPH_DEPTH = 16;

export interface CallgraphOptions {
  /** Frames shown per chain, the sampled function included (-z); default 16. */
  depth?: number;
}

/** Children by descending count; ties by name, so the output is stable. */
function sortedChildren(node: CallNode, frames: FrameTable): CallNode[] {
  if (!node.children) return [];
  return [...node.children.values()].sort(
    (a, b) => b.count - a.count || (frames.get(a.frame).name < frames.get(b.frame).name ? -1 : frames.get(a.frame).name > frames.get(b.frame).name ? 1 : 0),
  );
}

function imageLabel(frames: FrameTable, frame: number): string {
  return frames.get(frame).image?.path ?? '[unknown]';
}

export function* formatCallgraph(result: AnalysisResult, options: CallgraphOptions = {}): Generator<string> {
  const depthLimit = Math.max(1, options.depth ?? DEFAULT_CALLGRAPH_DEPTH);
  const frames = result.frames;
  let previousImage: string | undefined;

  function* node(n: CallNode, depth: number, total: number): Generator<string> {
    const indent = ' '.repeat(depth);
    const pct = n.count === total ? '100.0% ' : `${percent05((100 * n.count) / total)}% `;
    const count = ` [${n.count}] `;
    const image = imageLabel(frames, n.frame);
    const at = image !== previousImage ? ` @ ${image}` : '';
    previousImage = image;
    yield `${indent}${pct}${count.padEnd(12)}${indent}${frames.get(n.frame).name}${at}\n`;
    if (depth + 1 >= depthLimit) return;
    for (const c of sortedChildren(n, frames)) yield* node(c, depth + 1, n.count);
  }

  for (const profile of result.profiles) {
    const top = sortedChildren(profile.root, frames);
    if (top.length === 0) continue;
    const total = top.reduce((s, n) => s + n.count, 0);
    yield `@ ${profile.name} [${total} samples]\n\n`;
    for (const n of top) {
      previousImage = undefined;
      yield* node(n, 0, total);
      yield '\n';
    }
  }
}
