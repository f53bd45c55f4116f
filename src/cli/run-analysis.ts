// pmcstat -R: analyze a log. With output options, the call graph, folded
// stacks, calltree, gprof files, PC lists and statistics; without, the
// log's records as text. A damaged log is analyzed up to the damage, then
// the error (with its byte offset) is reported and the exit status is 1.
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { PMC_CPU_GENERIC } from '../module/pmc-types.js';
import { LogFormatError, readLog, visitLog } from '../log/log-reader.js';
import { formatRecord } from '../log/log-text.js';
import { LogType, type LogRecord } from '../log/records.js';
import { Analysis, AnalysisLimitError, analysisNeeds, writeOutputs } from '../report/index.js';
import { hasOutputs, type PmcstatArgs } from './pmcstat-args.js';
import { tuneForAnalysis } from './v8-tuning.js';

/**
 * The records of a log, stopping quietly at damage (the error is kept for
 * the caller), with samples filtered by CPU (-c) and thread (-i).
 */
class TolerantLog implements AsyncIterable<LogRecord> {
  error?: Error;
  /** Records read, and whether one was the CLOSELOG. */
  records = 0;
  closed = false;
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

  async *[Symbol.asyncIterator](): AsyncIterator<LogRecord> {
    try {
      for await (const rec of readLog(this.path)) {
        this.records++;
        if (rec.type === LogType.CLOSELOG) this.closed = true;
        if (this.wanted(rec)) yield rec;
      }
    } catch (e) {
      this.error = e as Error;
    }
  }
}

export async function runAnalysis(args: PmcstatArgs, path: string): Promise<number> {
  tuneForAnalysis();
  const log = new TolerantLog(path, args.cpuFilter, args.threadFilter);
  if (!hasOutputs(args)) {
    const out: NodeJS.WritableStream = args.output ? createWriteStream(args.output) : process.stdout;
    const names = { cpuType: (t: number) => (t === PMC_CPU_GENERIC ? 'GENERIC' : undefined) };
    for await (const rec of log) {
      // Respect the reader's pace: a log can be far larger than memory.
      if (!out.write(formatRecord(rec, names) + '\n')) await once(out, 'drain');
    }
    if (out !== process.stdout) await new Promise<void>((r) => out.end(() => r()));
    if (log.records === 0 && !log.error) {
      process.stderr.write(`pmcstat: ERROR: ${path}: the log is empty: no records\n`);
      return 1;
    }
    if (!log.closed && !log.error) process.stderr.write(`pmcstat: WARNING: ${path}: the log was cut short: no CLOSELOG after its ${log.records} records\n`);
  } else {
    const analysis = new Analysis({
      needs: analysisNeeds(args.outputs, args.depth, args.leafAddresses),
      root: args.root,
      memoryLimitMib: args.memoryLimit,
      kallsyms: args.kernelSymbols,
      cpus: args.cpuFilter ? new Set(args.cpuFilter) : undefined,
      tid: args.threadFilter,
    });
    try {
      await visitLog(path, analysis);
    } catch (e) {
      if (e instanceof AnalysisLimitError) {
        process.stderr.write(`pmcstat: ERROR: ${path}: ${e.detail}; stopped after ${analysis.recordCount} records; raise the limit with ${e.raiseWith}\n`);
        return 1;
      }
      // Damage: the records before it are analyzed and written, then reported.
      if (!(e instanceof LogFormatError)) throw e;
      log.error = e;
    }
    const result = analysis.finish();
    if (analysis.recordCount === 0 && !log.error) {
      process.stderr.write(`pmcstat: ERROR: ${path}: the log is empty: no records\n`);
      return 1;
    }
    const report = await writeOutputs(result, {
      ...args.outputs,
      // -v prints pmcstat's conversion statistics (on stderr when they are not asked for with --stats).
      stats: args.outputs.stats ?? (args.verbose > 0 ? '/dev/stderr' : undefined),
      json: args.json && args.outputs.stats !== undefined,
      depth: args.depth,
    });
    // A damaged log is reported below instead of as cut short (or, damaged at its first record, as empty).
    // -q: the analysis says nothing it was not asked for.
    if (!args.quiet) {
      for (const w of result.warnings.filter((x) => !(log.error && /cut short|log is empty/.test(x)))) process.stderr.write(`pmcstat: WARNING: ${path}: ${w}\n`);
      for (const w of report.warnings) process.stderr.write(`pmcstat: WARNING: ${w}\n`);
    }
  }
  if (log.error) {
    process.stderr.write(`pmcstat: ERROR: ${path}: ${log.error.message}\n`);
    return 1;
  }
  return 0;
}
