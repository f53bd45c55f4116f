// Writes the requested outputs of an analysis: each to a file, or to
// standard output for '-'. Text is produced in pieces and written in 64 KiB
// batches, so a large -a output never sits whole in memory.
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import type { AnalysisResult } from './analyze.js';
import { formatAnnotate } from './write-annotate.js';
import { formatCallgraph } from './write-callgraph.js';
import { formatCalltree } from './write-calltree.js';
import { formatFolded } from './write-folded.js';
import { buildGmonFiles, formatGmonMap } from './write-gprof.js';
import { formatPcs } from './write-pcs.js';
import { formatStats, formatStatsJson } from './write-stats.js';

export interface OutputOptions {
  /** -G: call graph text. */
  callgraph?: string;
  /** --folded: folded stacks. */
  folded?: string;
  /** -F: KCachegrind calltree. */
  calltree?: string;
  /** -g: directory for the <pmcname>/<image>.gmon files (pmcstat -D; pmcstat's default is '.'). */
  gprofDir?: string;
  /** -M: map of images to gmon file names (with gprofDir). */
  gmonMap?: string;
  /** -m: sampled PCs with their functions (needs keepSamples). */
  pcs?: string;
  /** -a: every sample annotated (needs keepSamples). */
  annotate?: string;
  /** --stats: text summary. */
  stats?: string;
  /** --stats as JSON. */
  statsJson?: string;
  /** -z: call graph depth, default 16. */
  depth?: number;
  /** Which PMC the folded output shows (event name or index); default the first with samples. */
  foldedPmc?: string | number;
  /** `_[k]` / `_[j]` on folded kernel / JIT frames; default true. */
  foldedAnnotations?: boolean;
  /** Where '-' goes; default process.stdout. */
  stdout?: Writable;
}

const BATCH = 64 * 1024;

/** Writes text pieces to a file or (for '-') a stream, in batches. */
export async function writeText(target: string, pieces: Iterable<string>, stdout: Writable = process.stdout): Promise<void> {
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

export interface OutputReport {
  /** Files written ('-' excluded). */
  written: string[];
  /** pmcstat's warnings, e.g. `profile "X" overflowed`. */
  warnings: string[];
}

/** Writes every output named in `options`. */
export async function writeOutputs(result: AnalysisResult, options: OutputOptions): Promise<OutputReport> {
  const written: string[] = [];
  const warnings: string[] = [];
  const out = async (target: string | undefined, pieces: () => Iterable<string>): Promise<void> => {
    if (target === undefined) return;
    await writeText(target, pieces(), options.stdout);
    if (target !== '-') written.push(target);
  };
  await out(options.callgraph, () => formatCallgraph(result, { depth: options.depth }));
  await out(options.folded, () => formatFolded(result, { pmc: options.foldedPmc, annotate: options.foldedAnnotations }));
  await out(options.calltree, () => formatCalltree(result));
  await out(options.pcs, () => formatPcs(result));
  await out(options.annotate, () => formatAnnotate(result));
  if (options.gprofDir !== undefined || options.gmonMap !== undefined) {
    const files = buildGmonFiles(result, { depth: options.depth });
    for (const f of files) {
      if (f.overflowed) warnings.push(`profile "${f.path}" overflowed.`);
      if (options.gprofDir === undefined) continue;
      const path = join(options.gprofDir, f.path);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, f.data);
      written.push(path);
    }
    await out(options.gmonMap, () => formatGmonMap(files));
  }
  await out(options.stats, () => formatStats(result));
  await out(options.statsJson, () => formatStatsJson(result));
  return { written, warnings };
}
