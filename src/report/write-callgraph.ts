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
function sortedChildren(tree: CallTree, node: number, name: (frame: number) => string): number[] {
  return [...tree.children(node)].sort((a, b) => {
    const d = tree.count(b) - tree.count(a);
    if (d !== 0) return d;
    const na = name(tree.frame(a));
    const nb = name(tree.frame(b));
    return na < nb ? -1 : na > nb ? 1 : 0;
  });
}

/** Frame names, made once each: sorting asks for them many times. */
function nameCache(frames: FrameTable): (frame: number) => string {
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
  for (const profile of result.profiles) {
    const tree = profile.tree;
    const top = sortedChildren(tree, ROOT, name);
    if (top.length === 0) continue;
    const total = top.reduce((s, n) => s + tree.count(n), 0);
    yield `@ ${profile.name} [${total} samples]\n\n`;
    for (const first of top) {
      // Depth first, callers in order: (node, depth, its parent's count) triples on an explicit stack.
      const todo = [first, 0, total];
      let previousImage: string | undefined;
      let text = '';
      while (todo.length > 0) {
        const of = todo.pop()!;
        const depth = todo.pop()!;
        const n = todo.pop()!;
        const count = tree.count(n);
        const indent = ' '.repeat(depth);
        const pct = count === of ? '100.0% ' : `${percent05((100 * count) / of)}% `;
        const frame = tree.frame(n);
        const image = frames.image(frame)?.path ?? '[unknown]';
        text += `${indent}${pct}${` [${count}] `.padEnd(12)}${indent}${name(frame)}${image !== previousImage ? ` @ ${image}` : ''}\n`;
        previousImage = image;
        if (depth + 1 < depthLimit) {
          const callers = sortedChildren(tree, n, name);
          for (let i = callers.length - 1; i >= 0; i--) todo.push(callers[i], depth + 1, count);
        }
        if (text.length >= 1 << 16) {
          yield text;
          text = '';
        }
      }
      yield text + '\n';
    }
  }
}
