// pmcstat -R: analyze a log. With output options, the call graph, folded
// stacks, calltree, gprof files, PC lists and statistics; without, the
// log's records as text. A damaged log is analyzed up to the damage, then
// the error (with its byte offset) is reported and the exit status is 1.
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { PMC_CPU_GENERIC } from '../module/pmc-types.js';
import { readLog } from '../log/log-reader.js';
import { formatRecord } from '../log/log-text.js';
import { LogType, type LogRecord } from '../log/records.js';
import { analyzeLog, writeOutputs } from '../report/index.js';
import type { PmcstatArgs } from './pmcstat-args.js';

/**
 * The records of a log, stopping quietly at damage (the error is kept for
 * the caller), with samples filtered by CPU (-c) and thread (-i).
 */
class TolerantLog implements AsyncIterable<LogRecord> {
  error?: Error;
  constructor(
    private readonly path: string,
    private readonly cpus?: readonly number[],
    private readonly tid?: number,
  ) {}
  async *[Symbol.asyncIterator](): AsyncIterator<LogRecord> {
    const cpus = this.cpus ? new Set(this.cpus) : undefined;
    try {
      for await (const rec of readLog(this.path)) {
        if (rec.type === LogType.CALLCHAIN && ((cpus && !cpus.has(rec.cpu)) || (this.tid !== undefined && rec.tid !== this.tid))) continue;
        yield rec;
      }
    } catch (e) {
      this.error = e as Error;
    }
  }
}

export function hasOutputs(a: PmcstatArgs): boolean {
  return [a.callgraph, a.folded, a.calltree, a.pcs, a.annotate].some((o) => o !== undefined) || a.gprof || a.stats;
}

export async function runAnalysis(args: PmcstatArgs, path: string): Promise<number> {
  const log = new TolerantLog(path, args.cpuFilter, args.threadFilter);
  if (!hasOutputs(args)) {
    const out: NodeJS.WritableStream = args.output ? createWriteStream(args.output) : process.stdout;
    const names = { cpuType: (t: number) => (t === PMC_CPU_GENERIC ? 'GENERIC' : undefined) };
    for await (const rec of log) {
      // Respect the reader's pace: a log can be far larger than memory.
      if (!out.write(formatRecord(rec, names) + '\n')) await once(out, 'drain');
    }
    if (out !== process.stdout) await new Promise<void>((r) => out.end(() => r()));
  } else {
    const result = await analyzeLog(log, { keepSamples: args.pcs !== undefined || args.annotate !== undefined, kallsyms: args.kernelSymbols });
    const report = await writeOutputs(result, {
      callgraph: args.callgraph,
      folded: args.folded,
      calltree: args.calltree,
      gprofDir: args.gprof ? args.gprofDir : undefined,
      gmonMap: args.mapFile,
      pcs: args.pcs,
      annotate: args.annotate,
      // -v prints pmcstat's conversion statistics (on stderr when they are not asked for with --stats).
      stats: args.stats && !args.json ? '-' : args.verbose > 0 ? '/dev/stderr' : undefined,
      statsJson: args.stats && args.json ? '-' : undefined,
      depth: args.depth,
    });
    for (const w of report.warnings) process.stderr.write(`pmcstat: WARNING: ${w}\n`);
  }
  if (log.error) {
    process.stderr.write(`pmcstat: ERROR: ${path}: ${log.error.message}\n`);
    return 1;
  }
  return 0;
}
