// --flamegraph: one self-contained HTML file (no network): d3 and
// d3-flame-graph inlined, the profile's stacks as JSON, and the page's own
// script (flamegraph-page.ts) that builds the tree the chart draws, merged
// or per process, for the PMC chosen in the page.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { AnalysisResult } from './analyze.js';
import { stacksOf } from './callgraph.js';
import { FLAMEGRAPH_PAGE_SCRIPT, FLAMEGRAPH_PAGE_STYLE } from './flamegraph-page.js';
import { FrameKind, type FrameTable } from './frames.js';
import { describeRate } from './sample-period.js';

/** What a frame is, for its colour: the page's KINDS, in this order. */
enum FlameKind {
  User,
  Kernel,
  Jit,
  Unknown,
}

function flameKind(frames: FrameTable, id: number): FlameKind {
  if (frames.isKernel(id)) return FlameKind.Kernel;
  if (frames.image(id)?.kind === 'jit') return FlameKind.Jit;
  if (frames.kind(id) !== FrameKind.Symbol) return FlameKind.Unknown;
  return FlameKind.User;
}

export interface FlamegraphOptions {
  /** Open the page per process rather than merged. */
  perProcess?: boolean;
  /** The page's title; default "tspmc flame graph". */
  title?: string;
}

const require = createRequire(import.meta.url);

/** The minified browser build of a package, found beside its entry point. */
function browserBuild(pkg: string, file: string): string {
  return readFileSync(join(dirname(require.resolve(pkg)), file), 'utf8');
}

let libraries: string | undefined;
/** d3 (the full browser build d3-flame-graph's UMD expects as the global d3), then d3-flame-graph. */
function inlinedLibraries(): string {
  return (libraries ??= [browserBuild('d3', 'd3.min.js'), browserBuild('d3-flame-graph', 'd3-flamegraph.umd.min.js')]
    .map((code) => `<script>\n${code.replaceAll('</script', '<\\/script')}\n</script>\n`)
    .join(''));
}

/** JSON that can sit inside a <script> element. */
const scriptJson = (value: unknown): string => JSON.stringify(value).replace(/</g, '\\u003c');

const escapeHtml = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

export function* writeFlamegraph(result: AnalysisResult, options: FlamegraphOptions = {}): Generator<string> {
  const title = options.title ?? 'tspmc flame graph';
  yield `<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>${escapeHtml(title)}</title>\n`;
  yield `<style>\n${FLAMEGRAPH_PAGE_STYLE}</style>\n</head>\n<body>\n`;
  yield `<header><h1>${escapeHtml(title)}</h1><p id="summary"></p><p id="legend"></p></header>\n`;
  yield `<nav id="controls"></nav>\n<div id="details"></div>\n<div id="chart"></div>\n`;

  // Frames and images are numbered in the order the stacks first use them.
  const frameIndex = new Map<number, number>();
  const frames: [string, number, number][] = [];
  const imageIndex = new Map<string, number>();
  const images: string[] = [];
  const frameOf = (id: number): number => {
    let i = frameIndex.get(id);
    if (i === undefined) {
      const path = result.frames.image(id)?.path ?? '[unknown]';
      let img = imageIndex.get(path);
      if (img === undefined) imageIndex.set(path, (img = images.push(path) - 1));
      frameIndex.set(id, (i = frames.push([result.frames.name(id), flameKind(result.frames, id), img]) - 1));
    }
    return i;
  };

  yield '<script id="profile-stacks" type="application/json">[';
  const profiles: { name: string; rate: string; samples: number }[] = [];
  for (const [n, profile] of result.profiles.entries()) {
    profiles.push({ name: profile.name, rate: describeRate(profile), samples: profile.samples });
    yield `${n > 0 ? ',' : ''}\n[`;
    let first = true;
    // One array per stack: process, samples, then the frames from the outermost caller.
    for (const s of stacksOf(profile)) {
      yield `${first ? '' : ','}[${s.process},${s.count}${s.frames.map((f) => `,${frameOf(f)}`).join('')}]`;
      first = false;
    }
    yield ']';
  }
  yield ']</script>\n';
  const meta = {
    profiles,
    frames,
    images,
    processes: result.processNames,
    samples: result.stats.samples,
    dropped: result.stats.dropped,
    lost: result.stats.lost,
    perProcess: options.perProcess ?? false,
  };
  yield `<script id="profile-meta" type="application/json">${scriptJson(meta)}</script>\n`;
  yield inlinedLibraries();
  yield `<script>\n${FLAMEGRAPH_PAGE_SCRIPT}</script>\n</body>\n</html>\n`;
}
