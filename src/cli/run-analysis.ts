// pmcstat -R: analyze a log. With output options, the call graph, folded
// stacks, calltree, gprof files, PC lists and statistics; without, the
// log's records as text. A damaged log is analyzed up to the damage, then
// the error (with its byte offset) is reported and the exit status is 1.
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { PMC_CPU_GENERIC } from '../module/pmc-types.js';
import { forEachRecord, readLog } from '../log/log-reader.js';
import { formatRecord } from '../log/log-text.js';
import { LogType, type LogRecord } from '../log/records.js';
import { Analysis, writeOutputs } from '../report/index.js';
import type { PmcstatArgs } from './pmcstat-args.js';

/**
 * The records of a log, stopping quietly at damage (the error is kept for
 * the caller), with samples filtered by CPU (-c) and thread (-i).
 */
class TolerantLog implements AsyncIterable<LogRecord> {
  error?: Error;
  private readonly cpus?: ReadonlySet<number>;
  constructor(
    private readonly path: string,
    cpus?: readonly number[],
    private readonly tid?: number,
  ) {
    this.cpus = cpus ? new Set(cpus) : undefined;
  }

  /** Samples of other CPUs (-c) and threads (-i) are left out. */
  private wanted(rec: LogRecord): boolean {
    return !(rec.type === LogType.CALLCHAIN && ((this.cpus && !this.cpus.has(rec.cpu)) || (this.tid !== undefined && rec.tid !== this.tid)));
  }

  /** The records pushed to `fn`, synchronously per read chunk (the analysis' fast path). */
  async forEach(fn: (rec: LogRecord) => void): Promise<void> {
    let taking = false;
    try {
      await forEachRecord(this.path, (rec) => {
        if (!this.wanted(rec)) return;
        taking = true;
        fn(rec);
        taking = false;
      });
    } catch (e) {
      // What `fn` throws is no damage in the log.
      if (taking) throw e;
      this.error = e as Error;
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<LogRecord> {
    try {
      for await (const rec of readLog(this.path)) if (this.wanted(rec)) yield rec;
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
    const analysis = new Analysis({ keepSamples: args.pcs !== undefined || args.annotate !== undefined, kallsyms: args.kernelSymbols });
    await log.forEach((rec) => analysis.take(rec));
    const result = analysis.finish();
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
