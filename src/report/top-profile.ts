// What top mode shows, kept up to date as the log grows: per PMC, per
// process and function, the samples taken in the function (self) and with
// it anywhere on the stack (total), and the caller chains above it. Unlike
// the offline analysis, which builds its call graphs once at the end, this
// takes records for as long as the log is written and can be read at any
// moment; memory grows with the distinct functions and caller chains, not
// with the samples. Fed by LogReader.visit (RecordVisitor).
import type { RecordVisitor } from '../log/log-reader.js';
import { LogType, type LogRecord } from '../log/records.js';
import { FrameKind } from './frames.js';
import type { ImageLoaderOptions } from './image.js';
import { isFrequency } from './sample-period.js';
import { Symbolizer } from './symbolizer.js';

/** Callers kept above each sampled function (the chains top mode prints). */
const CALLER_DEPTH = 4;

interface Tally {
  self: number;
  total: number;
  /** Caller chains (frame ids, nearest caller first, joined by ','), for samples taken in the function. */
  callers: Map<string, number>;
}

function addTally(into: Tally, from: Tally): void {
  into.self += from.self;
  into.total += from.total;
  for (const [c, n] of from.callers) into.callers.set(c, (into.callers.get(c) ?? 0) + n);
}

/** The counts of one PMC over some span of samples. */
class Counts {
  samples = 0;
  /** process name -> frame -> tally. */
  readonly byProcess = new Map<string, Map<number, Tally>>();

  tally(process: string, frame: number): Tally {
    let frames = this.byProcess.get(process);
    if (!frames) this.byProcess.set(process, (frames = new Map()));
    let t = frames.get(frame);
    if (!t) frames.set(frame, (t = { self: 0, total: 0, callers: new Map() }));
    return t;
  }

  /** Adds another span's counts to these. */
  add(other: Counts): void {
    this.samples += other.samples;
    for (const [process, tallies] of other.byProcess) {
      for (const [frame, t] of tallies) addTally(this.tally(process, frame), t);
    }
  }
}

export interface TopPmc {
  pmcid: number;
  name: string;
  /** The CPU of a system PMC; undefined for a process PMC. */
  cpu?: number;
  rate: bigint;
  /** The rate is samples per second. */
  frequency: boolean;
  /**
   * Each sample is counted once, in `recent` (since the last reset());
   * reset() adds `recent` to `earlier`, so since the start is both, and
   * keeps it as `last`, the span the delta view shows.
   */
  earlier: Counts;
  recent: Counts;
  last: Counts;
}

/**
 * What one screen of top mode shows: one PMC, or (merged, pmcstat's
 * default in top mode) every PMC of one event name, as the per-CPU PMCs
 * of -S are.
 */
export interface TopView {
  label: string;
  pmcs: TopPmc[];
}

export interface TopRow {
  frame: number;
  name: string;
  image: string;
  /** The process (per-process view), or the one with most of the function's samples and how many others there are. */
  process: string;
  otherProcesses: number;
  self: number;
  total: number;
  /** The commonest caller chains, names nearest caller first, with their samples. */
  callers: { names: string[]; samples: number }[];
}

export interface TopRowsOptions {
  /** Rows per (process, function) rather than per function. */
  perProcess?: boolean;
  /** In the span that the last reset() ended rather than since the start. */
  recent?: boolean;
  /** Leave out functions with less than this percent of the samples (pmcstat -f threshold=). */
  threshold?: number;
  /** Leave frames without a symbol (PLT stubs, trampolines) out of caller chains (pmcstat -f skiplink=1). */
  skipLinks?: boolean;
  /** Caller chains per row. */
  chains?: number;
}

/** A PMC id's CPU field (PMC_ID_MAKE_ID: CPU[31:20]); all ones for process PMCs (PMC_CPU_ANY). */
const pmcidCpu = (pmcid: number): number | undefined => {
  const cpu = (pmcid >>> 20) & 0xfff;
  return cpu === 0xfff ? undefined : cpu;
};

export class TopProfile implements RecordVisitor {
  readonly symbolizer: Symbolizer;
  /** PMCs in allocation order. */
  readonly pmcs: TopPmc[] = [];
  dropped = 0;
  lost = 0;
  private readonly byPmcid = new Map<number, TopPmc>();
  /** Frames already counted in `total` for the sample being taken. */
  private readonly seen = new Set<number>();

  constructor(options: ImageLoaderOptions = {}) {
    this.symbolizer = new Symbolizer(options);
  }

  private define(pmcid: number, name: string, rate: bigint, flags: number): TopPmc {
    let p = this.byPmcid.get(pmcid);
    if (!p) {
      p = { pmcid, name, cpu: pmcidCpu(pmcid), rate, frequency: isFrequency(flags), earlier: new Counts(), recent: new Counts(), last: new Counts() };
      this.pmcs.push(p);
      this.byPmcid.set(pmcid, p);
    }
    return p;
  }

  /** The views to switch between: per event name when merged, else per PMC. */
  views(merged: boolean): TopView[] {
    if (!merged) return this.pmcs.map((p) => ({ label: p.cpu === undefined ? p.name : `${p.name} on CPU ${p.cpu}`, pmcs: [p] }));
    const byName = new Map<string, TopView>();
    for (const p of this.pmcs) {
      const v = byName.get(p.name);
      if (v) v.pmcs.push(p);
      else byName.set(p.name, { label: p.name, pmcs: [p] });
    }
    return [...byName.values()];
  }

  record(r: LogRecord): void {
    switch (r.type) {
      case LogType.PMCALLOCATEDYN:
        this.define(r.pmcid, r.eventName, r.rate, r.flags);
        break;
      case LogType.PMCALLOCATE:
        this.define(r.pmcid, `event-0x${r.event.toString(16)}`, r.rate, r.flags);
        break;
      case LogType.DROPNOTIFY:
        this.dropped += r.dropped;
        this.lost += r.lost;
        break;
      default:
        this.symbolizer.processes.apply(r);
    }
  }

  callchain(words: Uint32Array, at: number, npcs: number, pid: number, _tid: number, pmcid: number, _cpuflags: number, ts: number): void {
    if (npcs === 0) return;
    const pmc = this.byPmcid.get(pmcid) ?? this.define(pmcid, `pmc-0x${pmcid.toString(16)}`, 0n, 0);
    const sym = this.symbolizer;
    const proc = sym.processes.get(pid);
    const image = proc.at(ts);
    const process = image.name ?? (pid === 0 ? 'swapper' : `pid-${pid}`);
    const frames: number[] = [];
    for (let i = 0; i < npcs; i++) frames.push(sym.chainFrame(proc, image.space, words, at, i));
    const counts = pmc.recent;
    counts.samples++;
    const leaf = counts.tally(process, frames[0]);
    leaf.self++;
    const chain = frames.slice(1, 1 + CALLER_DEPTH).join(',');
    leaf.callers.set(chain, (leaf.callers.get(chain) ?? 0) + 1);
    // A recursive function is on the stack once per sample, however deep.
    this.seen.clear();
    for (const f of frames) {
      if (this.seen.has(f)) continue;
      this.seen.add(f);
      counts.tally(process, f).total++;
    }
  }

  /** Ends the current span: it becomes the one the delta view shows. */
  reset(): void {
    for (const p of this.pmcs) {
      p.earlier.add(p.recent);
      p.last = p.recent;
      p.recent = new Counts();
    }
  }

  /** The rows of a view, most self samples first. */
  rows(view: TopView, options: TopRowsOptions = {}): TopRow[] {
    const spans = view.pmcs.flatMap((p) => (options.recent ? [p.last] : [p.earlier, p.recent]));
    const frames = this.symbolizer.frames;
    const min = ((options.threshold ?? 0) / 100) * this.samples(view, options.recent);
    type Group = Tally & { frame: number; process: string; perProcess: Map<string, number> };
    const groups = new Map<string, Group>();
    for (const [process, tallies] of spans.flatMap((c) => [...c.byProcess])) {
      for (const [frame, t] of tallies) {
        const key = options.perProcess ? `${process}\0${frame}` : String(frame);
        let g = groups.get(key);
        if (!g) groups.set(key, (g = { frame, process, self: 0, total: 0, callers: new Map(), perProcess: new Map() }));
        addTally(g, t);
        g.perProcess.set(process, (g.perProcess.get(process) ?? 0) + t.total);
      }
    }
    const name = (id: number): string => frames.name(id);
    const linked = (id: number): boolean => !options.skipLinks || frames.kind(id) === FrameKind.Symbol;
    return [...groups.values()]
      .filter((g) => g.self > 0 && g.self >= min)
      .sort((a, b) => b.self - a.self || b.total - a.total || (name(a.frame) < name(b.frame) ? -1 : 1))
      .map((g) => {
        const byProcess = [...g.perProcess].sort((a, b) => b[1] - a[1]);
        const callers = [...g.callers]
          .sort((a, b) => b[1] - a[1])
          .slice(0, options.chains ?? 2)
          .map(([chain, samples]) => ({ names: chain ? chain.split(',').map(Number).filter(linked).map(name) : [], samples }));
        return {
          frame: g.frame,
          name: name(g.frame),
          image: frames.image(g.frame)?.basename ?? (frames.isKernel(g.frame) ? '[kernel]' : '[unknown]'),
          process: options.perProcess ? g.process : byProcess[0][0],
          otherProcesses: options.perProcess ? 0 : byProcess.length - 1,
          self: g.self,
          total: g.total,
          callers,
        };
      });
  }

  /** Samples of a view, since the start or in the span before the last reset(). */
  samples(view: TopView, recent = false): number {
    let n = 0;
    for (const p of view.pmcs) n += recent ? p.last.samples : p.earlier.samples + p.recent.samples;
    return n;
  }
}
