// The offline analysis (pmcstat -R): read the records once, keeping the
// process table current and feeding each call chain to the aggregation.
import { LogType, type LogRecord } from '../log/records.js';
import { CallGraphBuilder, type PmcProfile, type SampleRecord } from './callgraph.js';
import type { FrameTable } from './frames.js';
import type { ImageLoaderOptions } from './image.js';
import { Symbolizer } from './symbolizer.js';

export interface AnalyzeOptions extends ImageLoaderOptions {
  /** Keep every sample (needed by the -m and -a outputs). */
  keepSamples?: boolean;
  /** Names the event of a PMCALLOCATE record (PMCALLOCATEDYN carries its name). */
  eventName?: (event: number) => string | undefined;
}

export interface AnalysisStats {
  samples: number;
  /** Sum of DROPNOTIFY.dropped: samples the collector could not log. */
  dropped: number;
  /** Sum of DROPNOTIFY.lost: samples the kernel lost. */
  lost: number;
  /** Count of each record type, by LogType name. */
  records: Record<string, number>;
  /** Samples whose PC has no symbol (unknownFunction + unknownObject). */
  unresolved: number;
  unknownFunction: number;
  unknownObject: number;
  emptyCallchains: number;
  callerFrames: number;
  pmcs: { name: string; pmcids: number[]; samples: number }[];
  /** Files (and other sources) that could not be read, with why. */
  problems: { path: string; reason: string }[];
}

export interface AnalysisResult {
  /** One profile per event name, in the order the PMCs were allocated. */
  profiles: PmcProfile[];
  frames: FrameTable;
  /** Process names; CallNode.ends is keyed by index into this list. */
  processNames: string[];
  /** Every sample, in log order, when keepSamples was set. */
  samples?: SampleRecord[];
  stats: AnalysisStats;
  symbolizer: Symbolizer;
}

/**
 * The analysis of one log, fed a record at a time (take), in log order;
 * finish() gives the result.
 */
export class Analysis {
  private readonly symbolizer: Symbolizer;
  private readonly graph: CallGraphBuilder;
  private readonly byType = new Array<number>(256).fill(0);
  private dropped = 0;
  private lost = 0;

  constructor(private readonly options: AnalyzeOptions = {}) {
    this.symbolizer = new Symbolizer(options);
    this.graph = new CallGraphBuilder(this.symbolizer, options.keepSamples ?? false);
  }

  take(r: LogRecord): void {
    this.byType[r.type]++;
    switch (r.type) {
      case LogType.CALLCHAIN:
        this.graph.add(r);
        break;
      case LogType.PMCALLOCATEDYN:
        this.graph.definePmc(r.pmcid, r.eventName);
        break;
      case LogType.PMCALLOCATE:
        this.graph.definePmc(r.pmcid, this.options.eventName?.(r.event) ?? `event-0x${r.event.toString(16)}`);
        break;
      case LogType.DROPNOTIFY:
        this.dropped += r.dropped;
        this.lost += r.lost;
        break;
      default:
        this.symbolizer.processes.apply(r);
    }
  }

  finish(): AnalysisResult {
    const { graph, symbolizer } = this;
    const c = graph.counts;
    const recordCounts: Record<string, number> = {};
    this.byType.forEach((n, t) => {
      if (n > 0) recordCounts[LogType[t] ?? `TYPE_${t}`] = n;
    });
    const stats: AnalysisStats = {
      samples: c.samples,
      dropped: this.dropped,
      lost: this.lost,
      records: recordCounts,
      unresolved: c.unknownFunction + c.unknownObject,
      unknownFunction: c.unknownFunction,
      unknownObject: c.unknownObject,
      emptyCallchains: c.emptyCallchains,
      callerFrames: c.callerFrames,
      pmcs: graph.profiles.map((p) => ({ name: p.name, pmcids: p.pmcids.slice(), samples: p.samples })),
      problems: [...symbolizer.loader.problems].map(([path, reason]) => ({ path, reason })),
    };
    return {
      profiles: graph.profiles,
      frames: symbolizer.frames,
      processNames: graph.processNames,
      samples: this.options.keepSamples ? graph.samples : undefined,
      stats,
      symbolizer,
    };
  }
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
