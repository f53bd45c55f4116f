// The offline analysis (pmcstat -R): read the records once, keeping the
// process table current and feeding each call chain to the aggregation.
// Memory grows only with what the outputs need (see AnalysisNeeds) and is
// held to a limit (MemoryBudget): a log too rich for it stops the analysis
// with AnalysisLimitError rather than exhausting the machine.
import type { RecordVisitor } from '../log/log-reader.js';
import { LogType, type LogRecord, type SidebandDrops } from '../log/records.js';
import { CallGraphBuilder, type AnalysisNeeds, type PmcProfile } from './callgraph.js';
import type { FrameTable } from './frames.js';
import type { ImageLoaderOptions } from './image.js';
import { DEFAULT_MEMORY_LIMIT_MIB, MemoryBudget } from './memory-budget.js';
import type { PcTable } from './pc-table.js';
import type { Problem } from './problems.js';
import { isFrequency } from './sample-period.js';
import type { SampleStore } from './sample-store.js';
import { Symbolizer } from './symbolizer.js';
import type { TaskTable } from './tasks.js';

export interface AnalyzeOptions extends ImageLoaderOptions {
  /** What to build; default: whole stacks and histograms, no kept samples. */
  needs?: AnalysisNeeds;
  /** Keep every sample (the -m and -a outputs): the same as needs.samples. */
  keepSamples?: boolean;
  /** Memory the analysis' tables may take, in MiB (default DEFAULT_MEMORY_LIMIT_MIB). */
  memoryLimitMib?: number;
  /** Names the event of a PMCALLOCATE record (PMCALLOCATEDYN carries its name). */
  eventName?: (event: number) => string | undefined;
  /** Only samples taken on these CPUs (-c). */
  cpus?: ReadonlySet<number>;
  /** Only samples of this thread (-i). */
  tid?: number;
}

/** Side-band records the collector could not write to the log, by kind (DROPNOTIFY's 48-byte form). */
export type UnloggedCounts = SidebandDrops;

export interface AnalysisStats {
  samples: number;
  /** Sum of DROPNOTIFY.dropped: samples the collector could not log. */
  dropped: number;
  /** Sum of DROPNOTIFY.lost: samples the kernel lost. */
  lost: number;
  /** Count of each record type, by LogType name. */
  records: Record<string, number>;
  /** Side-band records the collector could not log. */
  unlogged: UnloggedCounts;
  /** The log has no CLOSELOG: the collector stopped before closing it (killed, crashed) or it was cut. */
  cutShort: boolean;
  /** Samples whose PC has no symbol (unknownFunction + unknownObject). */
  unresolved: number;
  unknownFunction: number;
  unknownObject: number;
  emptyCallchains: number;
  callerFrames: number;
  /** Samples left out by the CPU (-c) and thread (-i) filters. */
  filteredOut: number;
  /** The PMCs (the first MAX_LISTED; a PMC's pmcids too), their samples. */
  pmcs: { name: string; pmcids: number[]; samples: number }[];
  /** PMCs, and pmcids of listed PMCs, not listed. */
  pmcsOmitted: number;
  /** Files (and other sources) that could not be read, with why: the first few. */
  problems: Problem[];
  /** Problems not listed. */
  problemsOmitted: number;
}

export interface AnalysisResult {
  /** One profile per event name, in the order the PMCs were allocated. */
  profiles: PmcProfile[];
  frames: FrameTable;
  /** Who the samples ran in: pid, tid and process name of each task a call tree's end nodes name. */
  tasks: TaskTable;
  /** Process names (tasks.process(i) indexes this list). */
  processNames: string[];
  /** Every sample, in log order, when kept (needs.samples). */
  samples?: SampleStore;
  /** The PCs of each profile's pcTree (needs.pcStacks). */
  pcs?: PcTable;
  stats: AnalysisStats;
  /** What the reader of the outputs should know: a cut log, lost samples, unlogged records. */
  warnings: string[];
  symbolizer: Symbolizer;
}

/** How many PMCs, and pmcids per PMC, --stats lists (a hostile log can name a million). */
const MAX_LISTED = 256;

const noUnlogged = (): UnloggedCounts => ({ exec: 0, fork: 0, thread: 0, exit: 0, map: 0, csw: 0 });

/**
 * The analysis of one log, fed a record at a time in log order (take, or
 * the RecordVisitor methods for LogReader.visit); finish() gives the result.
 */
export class Analysis implements RecordVisitor {
  private readonly symbolizer: Symbolizer;
  private readonly graph: CallGraphBuilder;
  private readonly byType = new Array<number>(256).fill(0);
  private dropped = 0;
  private lost = 0;
  private readonly unlogged = noUnlogged();
  private closed = false;
  private filteredOut = 0;
  private readonly cpus?: ReadonlySet<number>;
  private readonly tid?: number;

  constructor(private readonly options: AnalyzeOptions = {}) {
    const budget = new MemoryBudget((options.memoryLimitMib ?? DEFAULT_MEMORY_LIMIT_MIB) * 1048576);
    this.symbolizer = new Symbolizer(options, budget);
    this.symbolizer.deferKernel = true;
    const needs = { ...options.needs };
    if (options.keepSamples) needs.samples = true;
    this.graph = new CallGraphBuilder(this.symbolizer, budget, needs);
    // The samples counted so far resolve against what their processes ran before such a record.
    this.symbolizer.processes.onChange = () => this.graph.drain();
    this.cpus = options.cpus;
    this.tid = options.tid;
  }

  /** Records taken so far (samples left out by the filters included). */
  get recordCount(): number {
    return this.byType.reduce((a, b) => a + b, 0) + this.filteredOut;
  }

  /** A decoded record. */
  take(r: LogRecord): void {
    if (r.type === LogType.CALLCHAIN) {
      if (this.wanted(r.cpu, r.tid)) {
        this.byType[LogType.CALLCHAIN]++;
        this.graph.add(r);
      }
      return;
    }
    this.record(r);
  }

  /** RecordVisitor: any record but a call chain. */
  record(r: LogRecord): void {
    this.byType[r.type]++;
    this.graph.forget();
    switch (r.type) {
      case LogType.CALLCHAIN:
        this.take(r);
        break;
      case LogType.PMCALLOCATEDYN:
        this.graph.definePmc(r.pmcid, r.eventName, r.rate, isFrequency(r.flags));
        break;
      case LogType.PMCALLOCATE:
        this.graph.definePmc(r.pmcid, this.options.eventName?.(r.event) ?? `event-0x${r.event.toString(16)}`, r.rate, isFrequency(r.flags));
        break;
      case LogType.DROPNOTIFY: {
        this.dropped += r.dropped;
        this.lost += r.lost;
        const side = r.sideband;
        if (side) for (const k of Object.keys(this.unlogged) as (keyof UnloggedCounts)[]) this.unlogged[k] += side[k];
        break;
      }
      case LogType.CLOSELOG:
        this.closed = true;
        break;
      default:
        this.symbolizer.processes.apply(r);
    }
  }

  /** RecordVisitor: a call chain, its PCs as (low, high) u32 pairs at words[at..]. */
  callchain(words: Uint32Array, at: number, npcs: number, pid: number, tid: number, pmcid: number, cpuflags: number, ts: number): void {
    if (!this.wanted(cpuflags >>> 16, tid)) return;
    this.byType[LogType.CALLCHAIN]++;
    this.graph.addChain(words, at, npcs, pid, tid, pmcid, ts);
  }

  /** Samples of other CPUs (-c) and threads (-i) are left out. */
  private wanted(cpu: number, tid: number): boolean {
    if ((this.cpus && !this.cpus.has(cpu)) || (this.tid !== undefined && tid !== this.tid)) {
      this.filteredOut++;
      return false;
    }
    return true;
  }

  finish(): AnalysisResult {
    const { graph, symbolizer } = this;
    graph.finish();
    symbolizer.loader.dispose();
    const c = graph.counts;
    const recordCounts: Record<string, number> = {};
    this.byType.forEach((n, t) => {
      if (n > 0) recordCounts[LogType[t] ?? `TYPE_${t}`] = n;
    });
    const problems = symbolizer.loader.problems;
    const stats: AnalysisStats = {
      samples: c.samples,
      dropped: this.dropped,
      lost: this.lost,
      records: recordCounts,
      unlogged: { ...this.unlogged },
      cutShort: !this.closed,
      unresolved: c.unknownFunction + c.unknownObject,
      unknownFunction: c.unknownFunction,
      unknownObject: c.unknownObject,
      emptyCallchains: c.emptyCallchains,
      callerFrames: c.callerFrames,
      filteredOut: this.filteredOut,
      pmcs: graph.profiles.slice(0, MAX_LISTED).map((p) => ({ name: p.name, pmcids: p.pmcids.slice(0, MAX_LISTED), samples: p.samples })),
      pmcsOmitted: Math.max(0, graph.profiles.length - MAX_LISTED) + graph.profiles.slice(0, MAX_LISTED).reduce((n, p) => n + Math.max(0, p.pmcids.length - MAX_LISTED), 0),
      problems: problems.entries,
      problemsOmitted: problems.omitted,
    };
    return {
      profiles: graph.profiles,
      frames: symbolizer.frames,
      tasks: graph.tasks,
      processNames: graph.tasks.processNames,
      samples: graph.samples,
      pcs: graph.pcs,
      stats,
      warnings: warningsOf(stats),
      symbolizer,
    };
  }
}

/** What the stats say that the reader of any output must know. */
function warningsOf(s: AnalysisStats): string[] {
  const w: string[] = [];
  const total = Object.values(s.records).reduce((a, b) => a + b, 0);
  if (s.cutShort) {
    w.push(
      total === 0
        ? 'the log is empty: no records'
        : `the log was cut short: no CLOSELOG after its ${total} records (the collector was killed, or the file was cut); the analysis covers what is there`,
    );
  }
  if (s.dropped > 0 || s.lost > 0) w.push(`${s.dropped} samples could not be logged by the collector and ${s.lost} were lost by the kernel`);
  const unlogged = Object.entries(s.unlogged).filter(([, n]) => n > 0);
  if (unlogged.length > 0) {
    w.push(`${unlogged.map(([k, n]) => `${n} ${k}`).join(', ')} records could not be logged: processes and mappings may be missing, samples may resolve wrongly`);
  }
  return w;
}

/** The analysis of a whole sequence of records. */
export async function analyzeLog(
  records: Iterable<LogRecord> | AsyncIterable<LogRecord>,
  options: AnalyzeOptions = {},
): Promise<AnalysisResult> {
  const analysis = new Analysis(options);
  // A plain iterable is read without a microtask per record.
  if (Symbol.asyncIterator in records) for await (const r of records) analysis.take(r);
  else for (const r of records) analysis.take(r);
  return analysis.finish();
}
