// The outputs of an analysis, as one table (pmcstat's plugins[] in
// pmcstat_log.c, pprof's command table): an entry names the option, says
// what it writes, and writes it. The command line's options, its usage
// lines and the dispatch below all come from this table, so a new output is
// one entry and its writer. A writer's module is loaded only when its output
// is asked for (pmcstat's start-up pays for none of them otherwise). Text is
// produced in pieces and written in 64 KiB batches, so a large output never
// sits whole in memory.
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import type { AnalysisResult } from './analyze.js';
import type { AnalysisNeeds } from './callgraph.js';
import type { GmonFile } from './write-gprof.js';

/** What shapes the outputs, whichever are written. */
export interface OutputSettings {
  /** -z: call graph depth, default 16. */
  depth?: number;
  /** Which PMC the folded output shows (event name or index); default the first with samples. */
  foldedPmc?: string | number;
  /** `_[k]` / `_[j]` on folded kernel / JIT frames; default true. */
  foldedAnnotations?: boolean;
  /** --stats as JSON (--json). */
  json?: boolean;
  /** The flame graph opens per process rather than merged. */
  perProcess?: boolean;
  /** Where '-' goes; default process.stdout. */
  stdout?: Writable;
}

export interface OutputContext {
  result: AnalysisResult;
  settings: OutputSettings;
  /** Files written ('-' excluded). */
  written: string[];
  warnings: string[];
  /** The gmon files, built once for -g and -M. */
  gmon?: GmonFile[];
}

export interface OutputFormat<N extends string = string> {
  /** Key of the output in OutputOptions and in pmcstat's parsed arguments. */
  readonly name: N;
  /** The pmcstat option: one letter (-G) or a word (--folded). */
  readonly option: string;
  /** What the option's value names ('file', 'dir'); absent for a switch, whose target is '-' unless set. */
  readonly value?: string;
  readonly description: string;
  /** What it reads of the analysis besides the depth-limited call tree (-z): whole stacks (of functions or PCs), gprof histograms, every sample. */
  readonly needs?: Omit<AnalysisNeeds, 'depth'>;
  /** Writes the output to `target` (a path, or '-' for stdout). */
  write(target: string, ctx: OutputContext): Promise<void>;
}

const BATCH = 64 * 1024;

/** Writes text pieces to a file or (for '-') a stream, in batches. */
export async function writeText(target: string, pieces: Iterable<string>, stdout: Writable = process.stdout): Promise<void> {
  // /dev/stderr cannot be opened when stderr is a socket (ENXIO): write to the stream.
  if (target === '/dev/stderr') return writeText('-', pieces, process.stderr);
  if (target === '-') {
    let batch = '';
    const flush = async (): Promise<void> => {
      if (batch && !stdout.write(batch)) await once(stdout, 'drain');
      batch = '';
    };
    for (const p of pieces) {
      batch += p;
      if (batch.length >= BATCH) await flush();
    }
    await flush();
    return;
  }
  const fd = openSync(target, 'w');
  try {
    let batch = '';
    for (const p of pieces) {
      batch += p;
      if (batch.length >= BATCH) {
        writeSync(fd, batch);
        batch = '';
      }
    }
    if (batch) writeSync(fd, batch);
  } finally {
    closeSync(fd);
  }
}

/** An entry whose output is text made by `format` (which loads its writer). */
function textOutput<N extends string>(
  name: N,
  option: string,
  description: string,
  format: (ctx: OutputContext) => Promise<Iterable<string>>,
  extra: { value?: string; needs?: Omit<AnalysisNeeds, 'depth'> } = { value: 'file' },
): OutputFormat<N> {
  return {
    name,
    option,
    description,
    ...extra,
    async write(target, ctx) {
      await writeText(target, await format(ctx), ctx.settings.stdout);
      if (target !== '-') ctx.written.push(target);
    },
  };
}

const STACKS = { stacks: true };
const HISTOGRAMS = { histograms: true };
const SAMPLES = { samples: true };

/** An entry written by its own code (typed by its literal name). */
const output = <N extends string>(o: OutputFormat<N>): OutputFormat<N> => o;

const gmonFiles = async (ctx: OutputContext): Promise<GmonFile[]> =>
  (ctx.gmon ??= (await import('./write-gprof.js')).buildGmonFiles(ctx.result, { depth: ctx.settings.depth }));

/** Every output, in the order they are written (and listed in the usage). */
export const OUTPUTS = [
  textOutput('callgraph', '-G', 'call graph text', async (c) => (await import('./write-callgraph.js')).formatCallgraph(c.result, { depth: c.settings.depth })),
  textOutput(
    'folded',
    '--folded',
    'folded stacks (flamegraph.pl, inferno)',
    async (c) => (await import('./write-folded.js')).formatFolded(c.result, { pmc: c.settings.foldedPmc, annotate: c.settings.foldedAnnotations }),
    { value: 'file', needs: STACKS },
  ),
  textOutput(
    'flamegraph',
    '--flamegraph',
    'interactive flame graph, one HTML file',
    async (c) => (await import('./write-flamegraph.js')).writeFlamegraph(c.result, { perProcess: c.settings.perProcess }),
    { value: 'file.html', needs: STACKS },
  ),
  textOutput('speedscope', '--speedscope', 'speedscope profile per process and thread', async (c) => (await import('./write-speedscope.js')).formatSpeedscope(c.result), {
    value: 'file.json',
    needs: STACKS,
  }),
  output({
    name: 'pprof',
    option: '--pprof',
    value: 'file.pb.gz',
    description: 'pprof profile (go tool pprof, Pyroscope, Parca)',
    needs: { pcStacks: true },
    async write(target, ctx) {
      const data = (await import('./write-pprof.js')).writePprof(ctx.result);
      if (target === '-') {
        const out = ctx.settings.stdout ?? process.stdout;
        if (!out.write(data)) await once(out, 'drain');
        return;
      }
      writeFileSync(target, data);
      ctx.written.push(target);
    },
  }),
  textOutput('calltree', '-F', 'KCachegrind calltree', async (c) => (await import('./write-calltree.js')).formatCalltree(c.result), { value: 'file', needs: STACKS }),
  textOutput('pcs', '-m', 'sampled PCs with their functions', async (c) => (await import('./write-pcs.js')).formatPcs(c.result), { value: 'file', needs: SAMPLES }),
  textOutput('annotate', '-a', 'call chains with file:line (DWARF)', async (c) => (await import('./write-annotate.js')).formatAnnotate(c.result), {
    value: 'file',
    needs: SAMPLES,
  }),
  output({
    name: 'gprof',
    option: '-g',
    description: 'gprof gmon files per executable (in -D dir)',
    needs: HISTOGRAMS,
    async write(dir, ctx) {
      for (const f of await gmonFiles(ctx)) {
        if (f.overflowed) ctx.warnings.push(`profile "${f.path}" overflowed.`);
        const path = join(dir === '-' ? '.' : dir, f.path);
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, f.data);
        ctx.written.push(path);
      }
    },
  }),
  textOutput('gmonMap', '-M', 'map of executables to gmon files', async (c) => (await import('./write-gprof.js')).formatGmonMap(await gmonFiles(c)), {
    value: 'file',
    needs: HISTOGRAMS,
  }),
  textOutput(
    'stats',
    '--stats',
    'record counts, samples, dropped and lost (--json)',
    async (c) => {
      const stats = await import('./write-stats.js');
      return c.settings.json ? stats.formatStatsJson(c.result) : stats.formatStats(c.result);
    },
    {},
  ),
] as const;

export type OutputName = (typeof OUTPUTS)[number]['name'];

/** Each output to write, by name: a path, '-' for stdout, or for -g the directory. */
export type OutputTargets = Partial<Record<OutputName, string>>;

/** Outputs to write (entry name -> target) and the settings that shape them. */
export type OutputOptions = OutputSettings & OutputTargets;

export interface OutputReport {
  /** Files written ('-' excluded). */
  written: string[];
  /** pmcstat's warnings, e.g. `profile "X" overflowed`. */
  warnings: string[];
}

/** What the analysis must build for `targets`: what their entries need, the call tree to `depth` (-z), sampled PCs as addresses (-I). */
export function analysisNeeds(targets: OutputTargets, depth?: number, leafAddresses = false): AnalysisNeeds {
  const needs: AnalysisNeeds = { stacks: false, histograms: false, samples: false, pcStacks: false, depth, leafAddresses };
  for (const o of OUTPUTS as readonly OutputFormat<OutputName>[]) {
    if (targets[o.name] === undefined || !o.needs) continue;
    needs.stacks ||= o.needs.stacks ?? false;
    needs.histograms ||= o.needs.histograms ?? false;
    needs.samples ||= o.needs.samples ?? false;
    needs.pcStacks ||= o.needs.pcStacks ?? false;
  }
  return needs;
}

/** Writes every output named in `options`; names are demangled first, once per analysis. */
export async function writeOutputs(result: AnalysisResult, options: OutputOptions): Promise<OutputReport> {
  const ctx: OutputContext = { result, settings: options, written: [], warnings: [] };
  const problem = (await import('./demangle.js')).demangleFrames(result.frames);
  if (problem) ctx.warnings.push(problem);
  for (const o of OUTPUTS as readonly OutputFormat<OutputName>[]) {
    const target = options[o.name];
    if (target !== undefined) await o.write(target, ctx);
  }
  return { written: ctx.written, warnings: ctx.warnings };
}
