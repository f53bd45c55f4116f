// Aggregation of call chains, per PMC. Each sample walks a tree from the
// sampled function towards its callers (pmcstat's callgraph: the sampled
// function at the top, callers nested below), counting samples at every
// node it passes; where a chain ends, the node also counts the sample per
// process, so the folded and calltree outputs can rebuild the full stacks.
import type { CallchainRecord } from '../log/records.js';
import { BAD_ADDRESS, KERNEL_SPACE, packAddress } from './address.js';
import { FrameKind } from './frames.js';
import type { Image } from './image.js';
import type { Symbolizer } from './symbolizer.js';

export interface CallNode {
  /** Frame id (-1 for a profile's root). */
  readonly frame: number;
  /** Samples whose chain passes through this node. */
  count: number;
  /** The callers seen below this node, by frame id. */
  children: Map<number, CallNode> | null;
  /** Samples whose chain ends here (this is the outermost frame), by process-name index. */
  ends: Map<number, number> | null;
}

export interface PmcProfile {
  /** Position among the profiles (the calltree's event index). */
  readonly index: number;
  readonly name: string;
  /** Every pmcid that carried this event name (a system-mode PMC has one per CPU). */
  readonly pmcids: number[];
  samples: number;
  /** Children of the root are the sampled functions. */
  readonly root: CallNode;
  /** Sampled PCs (link-time addresses) per ELF image: the gprof histograms. */
  readonly pcsByImage: Map<Image, Map<number, number>>;
}

/** One sample kept whole, for the per-sample outputs (-m, -a). */
export interface SampleRecord {
  profile: number;
  pid: number;
  tid: number;
  /** The chain as logged, sampled PC first. */
  pcs: BigUint64Array;
  frames: Int32Array;
  /** Runtime minus link-time address of the sampled PC. */
  leafBias: number;
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

const newNode = (frame: number): CallNode => ({ frame, count: 0, children: null, ends: null });

export class CallGraphBuilder {
  readonly profiles: PmcProfile[] = [];
  readonly processNames: string[] = [];
  readonly samples: SampleRecord[] = [];
  readonly counts: SampleCounts = { samples: 0, unknownFunction: 0, unknownObject: 0, emptyCallchains: 0, callerFrames: 0 };
  private readonly byPmcid = new Map<number, PmcProfile>();
  private readonly byName = new Map<string, PmcProfile>();
  private readonly nameIndex = new Map<string, number>();

  constructor(
    private readonly symbolizer: Symbolizer,
    private readonly keepSamples = false,
  ) {}

  /** Names a PMC; PMCs with the same event name share one profile. */
  definePmc(pmcid: number, name: string): PmcProfile {
    let p = this.byName.get(name);
    if (!p) {
      p = { index: this.profiles.length, name, pmcids: [], samples: 0, root: newNode(-1), pcsByImage: new Map() };
      this.profiles.push(p);
      this.byName.set(name, p);
    }
    if (!p.pmcids.includes(pmcid)) p.pmcids.push(pmcid);
    this.byPmcid.set(pmcid, p);
    return p;
  }

  add(r: CallchainRecord): void {
    const n = r.pcs.length;
    if (n === 0) {
      this.counts.emptyCallchains++;
      return;
    }
    const profile = this.byPmcid.get(r.pmcid) ?? this.definePmc(r.pmcid, `pmc-0x${r.pmcid.toString(16)}`);
    const sym = this.symbolizer;
    const proc = sym.processes.get(r.pid);
    const image = proc.at(r.ts);
    const space = image.space;
    // Read the 64-bit PCs as 32-bit halves (little-endian host): no BigInt per frame.
    const words = new Uint32Array(r.pcs.buffer, r.pcs.byteOffset, n * 2);
    // A copy: a reader may reuse the buffer behind r.pcs.
    const kept = this.keepSamples ? { pcs: r.pcs.slice(), frames: new Int32Array(n) } : undefined;
    let node = profile.root;
    let leafBias = 0;
    let prevKernel = false;
    for (let i = 0; i < n; i++) {
      const addr = packAddress(words[2 * i + 1], words[2 * i]);
      const kernel = addr >= KERNEL_SPACE;
      // The first user frame under kernel frames is where user code was
      // interrupted (a fault may hit a function's first byte), not a return address.
      const frame = addr === BAD_ADDRESS ? sym.frames.raw(r.pcs[i]) : sym.resolve(proc, addr, i > 0 && (kernel || !prevKernel), space);
      prevKernel = kernel;
      if (i === 0) {
        const link = addr === BAD_ADDRESS ? 0 : sym.link;
        leafBias = addr - link;
        this.countLeaf(profile, frame, link);
      }
      if (kept) kept.frames[i] = frame;
      let child = node.children?.get(frame);
      if (!child) {
        child = newNode(frame);
        (node.children ??= new Map()).set(frame, child);
      }
      child.count++;
      node = child;
    }
    const who = this.processIndex(image.name ?? (r.pid === 0 ? 'swapper' : `pid-${r.pid}`));
    node.ends ??= new Map();
    node.ends.set(who, (node.ends.get(who) ?? 0) + 1);
    profile.samples++;
    this.counts.samples++;
    this.counts.callerFrames += n - 1;
    if (kept) this.samples.push({ profile: profile.index, pid: r.pid, tid: r.tid, pcs: kept.pcs, frames: kept.frames, leafBias });
  }

  private countLeaf(profile: PmcProfile, frame: number, link: number): void {
    const f = this.symbolizer.frames.get(frame);
    if (f.kind === FrameKind.ImageOffset) this.counts.unknownFunction++;
    else if (f.kind === FrameKind.Address) this.counts.unknownObject++;
    if (f.image?.elf) {
      let pcs = profile.pcsByImage.get(f.image);
      if (!pcs) profile.pcsByImage.set(f.image, (pcs = new Map()));
      pcs.set(link, (pcs.get(link) ?? 0) + 1);
    }
  }

  private processIndex(name: string): number {
    let i = this.nameIndex.get(name);
    if (i === undefined) {
      i = this.processNames.length;
      this.processNames.push(name);
      this.nameIndex.set(name, i);
    }
    return i;
  }
}

/** The stacks of a profile, outermost frame first, with their sample counts per process. */
export function* stacksOf(profile: PmcProfile): Generator<{ frames: number[]; process: number; count: number }> {
  const walk = function* (node: CallNode, path: number[]): Generator<{ frames: number[]; process: number; count: number }> {
    if (node.ends) {
      const frames = path.slice().reverse();
      for (const [process, count] of node.ends) yield { frames, process, count };
    }
    if (node.children) {
      for (const child of node.children.values()) {
        path.push(child.frame);
        yield* walk(child, path);
        path.pop();
      }
    }
  };
  yield* walk(profile.root, []);
}
