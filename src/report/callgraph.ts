// Aggregation of call chains, per PMC. Each sample walks a tree from the
// sampled function towards its callers (pmcstat's callgraph: the sampled
// function at the top, callers nested below), counting samples at every
// node it passes; where a chain ends, an end node counts the sample for its
// task, so the folded and calltree outputs can rebuild the full stacks.
// Only what the outputs need is built: a -G or -g run keeps -z frames of
// each chain and no ends, a --stats run no tree at all.
import type { CallchainRecord } from '../log/records.js';
import { PmcError } from '../pmc-error.js';
import { BAD_ADDRESS, KERNEL_SPACE, packAddress } from './address.js';
import type { ProcessImage, ProcessInfo } from './address-space.js';
import { CallTree, ROOT } from './call-tree.js';
import { ChainTable } from './chain-table.js';
import { FrameKind } from './frames.js';
import type { Image } from './image.js';
import type { MemoryBudget } from './memory-budget.js';
import { PcTable } from './pc-table.js';
import { SampleStore } from './sample-store.js';
import type { Symbolizer } from './symbolizer.js';
import { TaskTable } from './tasks.js';


/** What the outputs read of the analysis; the analysis builds nothing more. */
export interface AnalysisNeeds {
  /** Whole stacks, with the task each ended in (folded, calltree, flame graphs). Default true. */
  stacks?: boolean;
  /** Without whole stacks: frames of each chain kept in the call tree, the sampled one included (-G, -g: -z). Default 16. */
  depth?: number;
  /** Sampled PCs per ELF image (the gprof histograms). Default true. */
  histograms?: boolean;
  /** Every sample kept whole (-m, -a). Default false. */
  samples?: boolean;
  /** pmcstat -I: the sampled PC itself, not its function, at the top of each chain. Default false. */
  leafAddresses?: boolean;
  /** Whole stacks of PCs besides those of functions (pprof: a location per address); implies stacks. Default false. */
  pcStacks?: boolean;
}

export interface PmcProfile {
  /** Position among the profiles (the calltree's event index). */
  readonly index: number;
  readonly name: string;
  /** Reload count of the PMC (events per sample) as allocated, or its frequency; 0 when the log did not say. */
  rate: bigint;
  /** The rate is samples per second (see sample-period.ts for what a sample then stands for). */
  frequency: boolean;
  /** Every pmcid that carried this event name (a system-mode PMC has one per CPU). */
  readonly pmcids: number[];
  samples: number;
  /** Leaf-rooted: children(ROOT) are the sampled functions, children(n) the callers of n. */
  readonly tree: CallTree;
  /** With needs.pcStacks: the same with PCs (ids of the PcTable) in place of functions. */
  readonly pcTree?: CallTree;
  /** Whether the tree holds whole chains and their ends (else depth-limited, for -G and -g). */
  readonly wholeStacks: boolean;
  /** The tasks the tree's end nodes name (shared by all profiles). */
  readonly tasks: TaskTable;
  /** Sampled PCs (link-time addresses) per ELF image: the gprof histograms. */
  readonly pcsByImage: Map<Image, Map<number, number>>;
}

export interface SampleCounts {
  samples: number;
  /** Sampled PC inside an image but in no symbol. */
  unknownFunction: number;
  /** Sampled PC in no image and no JIT map. */
  unknownObject: number;
  emptyCallchains: number;
  /** Frames beyond the sampled PC. */
  callerFrames: number;
}

// What a histogram entry (a Map entry) and a profile (its empty tree) cost, charged to the budget.
const HISTOGRAM_ENTRY_BYTES = 48;
const PROFILE_BYTES = 2048;

export class CallGraphBuilder {
  readonly profiles: PmcProfile[] = [];
  readonly tasks: TaskTable;
  readonly samples?: SampleStore;
  /** The PCs of the PC trees (needs.pcStacks). */
  readonly pcs?: PcTable;
  readonly counts: SampleCounts = { samples: 0, unknownFunction: 0, unknownObject: 0, emptyCallchains: 0, callerFrames: 0 };
  private readonly byPmcid = new Map<number, PmcProfile>();
  private readonly byName = new Map<string, PmcProfile>();
  private readonly stacks: boolean;
  private readonly depth: number;
  private readonly histograms: boolean;
  /** Identical samples, counted before they are resolved (absent when every sample is kept). */
  private readonly chains?: ChainTable;
  /** What the chains' context numbers stand for: a process and what it ran then. */
  private readonly contexts: { proc: ProcessInfo; image: ProcessImage }[] = [];
  private readonly contextIds = new Map<ProcessImage, number>();
  private readonly leafAddresses: boolean;
  /** What the previous sample looked up; forget() when records change processes, PMCs or contexts. */
  private readonly last: { pmcid: number; profile?: PmcProfile; pid: number; proc?: ProcessInfo; image?: ProcessImage; context: number } = { pmcid: NaN, pid: NaN, context: -1 };
  /** The task of the previous sample, for the next one of the same thread. */
  private lastTask = { pid: NaN, tid: NaN, name: '', task: -1 };

  constructor(
    private readonly symbolizer: Symbolizer,
    private readonly budget: MemoryBudget,
    needs: AnalysisNeeds = {},
  ) {
    this.tasks = new TaskTable(budget);
    if (needs.pcStacks) this.pcs = new PcTable(budget);
    this.stacks = needs.pcStacks || (needs.stacks ?? true);
    this.depth = this.stacks ? Infinity : Math.max(1, needs.depth ?? 16);
    this.histograms = needs.histograms ?? true;
    this.leafAddresses = needs.leafAddresses ?? false;
    if (needs.samples) this.samples = new SampleStore(budget);
    else this.chains = new ChainTable(budget);
    budget.describe('call graph', () => `${this.profiles.length} PMCs, ${this.profiles.reduce((n, p) => n + p.tree.size, 0)} call graph nodes`);
  }

  /** Names a PMC; PMCs with the same event name share one profile. */
  definePmc(pmcid: number, name: string, rate = 0n, frequency = false): PmcProfile {
    let p = this.byName.get(name);
    if (!p) {
      this.budget.take(PROFILE_BYTES);
      const tree = new CallTree(this.budget);
      const pcTree = this.pcs && new CallTree(this.budget);
      p = { index: this.profiles.length, name, rate, frequency, pmcids: [], samples: 0, tree, pcTree, wholeStacks: this.stacks, tasks: this.tasks, pcsByImage: new Map() };
      this.profiles.push(p);
      this.byName.set(name, p);
    }
    if (this.byPmcid.get(pmcid) !== p) {
      this.budget.take(64);
      p.pmcids.push(pmcid);
    }
    this.byPmcid.set(pmcid, p);
    return p;
  }

  add(r: CallchainRecord): void {
    // Read the 64-bit PCs as 32-bit halves (little-endian host): no BigInt per frame.
    const words = new Uint32Array(r.pcs.buffer, r.pcs.byteOffset, r.pcs.length * 2);
    this.addChain(words, 0, r.pcs.length, r.pid, r.tid, r.pmcid, r.ts);
  }

  /** A sample whose `n` PCs are words[at..at + 2n) as (low, high) u32 pairs, sampled PC first. */
  addChain(words: Uint32Array, at: number, n: number, pid: number, tid: number, pmcid: number, ts: number): void {
    if (n === 0) {
      this.counts.emptyCallchains++;
      return;
    }
    // Most samples come from the thread and PMC of the one before.
    let profile = this.last.profile;
    if (pmcid !== this.last.pmcid || !profile) {
      profile = this.byPmcid.get(pmcid) ?? this.definePmc(pmcid, `pmc-0x${pmcid.toString(16)}`);
      this.last.pmcid = pmcid;
      this.last.profile = profile;
    }
    profile.samples++;
    this.counts.samples++;
    this.counts.callerFrames += n - 1;
    let proc = this.last.proc;
    if (pid !== this.last.pid || !proc) {
      proc = this.symbolizer.processes.get(pid);
      this.last.pid = pid;
      this.last.proc = proc;
    }
    const image = proc.at(ts);
    const chains = this.chains;
    if (!chains) {
      this.aggregate(words, at, n, proc, image, tid, profile, 1);
      return;
    }
    let context = this.last.context;
    if (image !== this.last.image) {
      context = this.contextIds.get(image) ?? -1;
      if (context < 0) {
        context = this.contexts.length;
        this.contexts.push({ proc, image });
        this.contextIds.set(image, context);
      }
      this.last.image = image;
      this.last.context = context;
    }
    // Frames past the tree's depth make no difference to it.
    const kept = Math.min(n, this.depth);
    if (!chains.add(words, at, kept, context, tid, pmcid)) {
      this.drain();
      this.addChain(words, at, n, pid, tid, pmcid, ts);
      // Counted twice otherwise.
      profile.samples--;
      this.counts.samples--;
      this.counts.callerFrames -= n - 1;
    }
  }

  /**
   * Resolves and aggregates the distinct chains counted so far. Called
   * before a record changes the mappings they were counted against.
   */
  drain(): void {
    if (!this.chains || this.chains.size === 0) return;
    this.chains.drain(this.aggregateCounted);
    this.contexts.length = 0;
    this.contextIds.clear();
    this.forget();
  }

  /** Drops what the previous sample looked up: a record may have changed it. */
  forget(): void {
    this.last.pmcid = this.last.pid = NaN;
    this.last.profile = this.last.proc = this.last.image = undefined;
  }

  private readonly aggregateCounted = (words: Uint32Array, at: number, n: number, context: number, tid: number, pmcid: number, count: number): void => {
    const { proc, image } = this.contexts[context];
    this.aggregate(words, at, n, proc, image, tid, this.byPmcid.get(pmcid)!, count);
  };

  /** Symbolizes a chain and adds `count` samples of it to its profile's tree. */
  private aggregate(words: Uint32Array, at: number, n: number, proc: ProcessInfo, image: ProcessImage, tid: number, profile: PmcProfile, count: number): void {
    const sym = this.symbolizer;
    const space = image.space;
    const kept = this.samples;
    kept?.begin(profile.index, proc.pid, tid, n);
    const tree = profile.tree;
    const pcTree = profile.pcTree;
    const inTree = Math.min(n, this.depth);
    // Frames past the tree's depth are resolved only for a kept sample.
    const resolved = kept ? n : inTree;
    let node = ROOT;
    let pcNode = ROOT;
    let leafBias = 0;
    for (let i = 0; i < resolved; i++) {
      let frame = sym.chainFrame(proc, space, words, at, i);
      const link = sym.link;
      if (pcTree) {
        pcNode = pcTree.child(pcNode, this.pcs!.intern(frame, link));
        pcTree.add(pcNode, count);
      }
      if (i === 0) {
        const addr = packAddress(words[at + 1], words[at]);
        leafBias = addr - link;
        this.countLeaf(profile, frame, link, count);
        // -I: the PC itself, in its image (a pending kernel PC becomes one in finish()).
        if (this.leafAddresses && addr !== BAD_ADDRESS && !sym.frames.isPending(frame)) frame = sym.frames.address(addr, addr >= KERNEL_SPACE, sym.frames.image(frame));
      }
      kept?.setFrame(i, words[at + 2 * i], words[at + 2 * i + 1], frame, link);
      if (i < inTree) {
        node = tree.child(node, frame);
        tree.add(node, count);
      }
    }
    if (this.stacks) {
      const task = this.taskOf(proc.pid, tid, image.name);
      tree.addEnd(node, task, count);
      pcTree?.addEnd(pcNode, task, count);
    }
    kept?.end(n, leafBias);
  }

  /** Ends the aggregation: pending frames are resolved and the trees become readable. */
  finish(): void {
    this.drain();
    const frames = this.symbolizer.frames;
    const map = this.symbolizer.resolvePending();
    const shown = map && this.leafAddresses ? this.sampledAddresses(map) : map;
    for (const p of this.profiles) {
      if (map && shown) {
        // Kernel PCs were not counted as unresolved or not: the tree's first level has them.
        const tree = p.tree;
        for (let node = 1; node < tree.size; node++) {
          if (tree.parent(node) === ROOT && frames.isPending(tree.frame(node))) this.countUnknown(map[tree.frame(node)], tree.count(node));
        }
        tree.remapFrames(shown);
      }
      p.tree.freeze();
      p.pcTree?.freeze();
    }
    if (map) this.pcs?.remapFrames(map);
    if (shown) this.samples?.remapFrames(shown);
  }

  /** -I: `map` with each pending sampled kernel PC as itself, in the image it resolved to. */
  private sampledAddresses(map: Int32Array): Int32Array {
    const frames = this.symbolizer.frames;
    const shown = map.slice();
    for (let id = 0; id < map.length; id++) {
      if (!frames.isPending(id)) continue;
      const { addr, returnAddress } = frames.pendingAddress(id);
      if (!returnAddress) shown[id] = frames.address(addr, true, frames.image(map[id]));
    }
    return shown;
  }

  private countUnknown(frame: number, samples: number): void {
    const kind = this.symbolizer.frames.kind(frame);
    if (kind === FrameKind.ImageOffset) this.counts.unknownFunction += samples;
    else if (kind === FrameKind.Address) this.counts.unknownObject += samples;
  }

  private taskOf(pid: number, tid: number, processName: string | undefined): number {
    const name = processName ?? (pid === 0 ? 'swapper' : `pid-${pid}`);
    const last = this.lastTask;
    if (last.pid !== pid || last.tid !== tid || last.name !== name) {
      last.task = this.tasks.intern(pid, tid, name);
      last.pid = pid;
      last.tid = tid;
      last.name = name;
    }
    return last.task;
  }

  private countLeaf(profile: PmcProfile, frame: number, link: number, count: number): void {
    const frames = this.symbolizer.frames;
    // A kernel PC is counted once resolved (see finish); kernel images have no histograms.
    if (frames.isPending(frame)) return;
    this.countUnknown(frame, count);
    if (!this.histograms) return;
    const image = frames.image(frame);
    if (image?.elf) {
      let pcs = profile.pcsByImage.get(image);
      if (!pcs) profile.pcsByImage.set(image, (pcs = new Map()));
      const seen = pcs.get(link);
      if (seen === undefined) this.budget.take(HISTOGRAM_ENTRY_BYTES);
      pcs.set(link, (seen ?? 0) + count);
    }
  }
}

/** One distinct stack of a profile: its frames outermost first, the task it ran in, its samples. */
export interface Stack {
  frames: number[];
  /** Index into the process names. */
  process: number;
  /** Index into the task table (pid, tid, process). */
  task: number;
  count: number;
}

/** The stacks of a profile (analyzed with whole stacks), with their sample counts per task. */
export function stacksOf(profile: PmcProfile): Generator<Stack> {
  if (!profile.wholeStacks) throw new PmcError('EINVAL', `the stacks of "${profile.name}" were not kept: analyze with needs.stacks`);
  return treeStacks(profile.tree, profile.tasks);
}

/** The same stacks as stacksOf, of PCs (ids of the result's PcTable) rather than functions. */
export function pcStacksOf(profile: PmcProfile): Generator<Stack> {
  if (!profile.pcTree) throw new PmcError('EINVAL', `the PC stacks of "${profile.name}" were not kept: analyze with needs.pcStacks`);
  return treeStacks(profile.pcTree, profile.tasks);
}

function* treeStacks(tree: CallTree, tasks: TaskTable): Generator<Stack> {
  // Depth-first, iteratively: chains can be hundreds of frames deep.
  const path: number[] = [];
  const todo: number[] = [ROOT];
  const depthOf: number[] = [0];
  while (todo.length > 0) {
    const node = todo.pop()!;
    const depth = depthOf.pop()!;
    path.length = depth;
    if (node !== ROOT) path.push(tree.frame(node));
    const ends = tree.ends(node);
    if (ends.length > 0) {
      const frames = path.slice().reverse();
      for (const e of ends) {
        const task = tree.task(e);
        yield { frames, process: tasks.process(task), task, count: tree.count(e) };
      }
    }
    const children = tree.children(node);
    for (let i = children.length - 1; i >= 0; i--) {
      todo.push(children[i]);
      depthOf.push(path.length);
    }
  }
}
