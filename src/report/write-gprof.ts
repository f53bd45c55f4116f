// pmcstat -g: one gmon file per (PMC, executable image), named
// <pmcname>/<image basename>.gmon (<basename>~NNN.gmon when two images share
// a basename). Each holds a histogram of the sampled PCs, one 16-bit
// saturating bucket per 16 bytes (amd64 FUNCTION_ALIGNMENT) of the image's
// executable segments, and call arcs taken from the call graph for callers
// and callees in the same image.
//
// Layout: the 4.4BSD header as binutils gprof reads it on a 64-bit target
// (lowpc u64, highpc u64, ncnt u32 = header + histogram bytes, version u32 =
// GMONVERSION, profrate u32, 12 spare bytes: 40 bytes; FreeBSD's own struct
// gmonhdr adds a histcounter_type field and padding, which GNU gprof would
// misread), the u16 buckets, then {frompc u64, selfpc u64, count u64} arcs.
// All addresses are link-time, as gprof finds them in the executable.
import type { AnalysisResult } from './analyze.js';
import { ROOT } from './call-tree.js';
import type { PmcProfile } from './callgraph.js';
import type { Image } from './image.js';
import { DEFAULT_CALLGRAPH_DEPTH } from './write-callgraph.js';

const FUNCTION_ALIGNMENT = 16;
export const GMONVERSION = 0x00051879;
const HEADER_SIZE = 40;
const ARC_SIZE = 24;
const HISTCOUNTER_MAX = 0xffff;

export interface GmonFile {
  /** Relative path: <pmcname>/<samplename>. */
  path: string;
  pmc: string;
  image: Image;
  /** File name for the image, shared by all PMCs. */
  sampleName: string;
  samples: number;
  /** Some bucket reached 0xffff and stopped counting. */
  overflowed: boolean;
  data: Buffer;
}

export interface GprofOptions {
  /** Depth of the call graph the arcs come from (-z); default 16. */
  depth?: number;
}

/** basename.gmon, or basename~NNN.gmon for the second and later images of that basename. */
function sampleNames(images: Image[]): Map<Image, string> {
  const names = new Map<Image, string>();
  const taken = new Set<string>();
  for (const image of images) {
    let name = `${image.basename}.gmon`;
    for (let n = 1; taken.has(name); n++) name = `${image.basename}~${String(n).padStart(3, '0')}.gmon`;
    taken.add(name);
    names.set(image, name);
  }
  return names;
}

/** Arcs caller -> callee (function start addresses) within one image, summed, from the depth-limited graph. */
function arcsOf(profile: PmcProfile, result: AnalysisResult, depth: number): Map<Image, Map<string, [number, number, number]>> {
  const byImage = new Map<Image, Map<string, [number, number, number]>>();
  const frames = result.frames;
  const tree = profile.tree;
  // Depth-first over (node, level), iteratively.
  const todo: number[] = [];
  for (const top of tree.children(ROOT)) todo.push(top, 0);
  while (todo.length > 0) {
    const level = todo.pop()!;
    const n = todo.pop()!;
    if (level + 1 >= depth) continue;
    const callee = tree.frame(n);
    const image = frames.image(callee);
    for (const c of tree.children(n)) {
      const caller = tree.frame(c);
      if (image?.elf && frames.image(caller) === image) {
        let arcs = byImage.get(image);
        if (!arcs) byImage.set(image, (arcs = new Map()));
        const from = frames.start(caller);
        const self = frames.start(callee);
        const key = `${from}:${self}`;
        const a = arcs.get(key);
        if (a) a[2] += tree.count(c);
        else arcs.set(key, [from, self, tree.count(c)]);
      }
      todo.push(c, level + 1);
    }
  }
  return byImage;
}

export function buildGmonFiles(result: AnalysisResult, options: GprofOptions = {}): GmonFile[] {
  const depth = options.depth ?? DEFAULT_CALLGRAPH_DEPTH;
  const images = [...new Set(result.profiles.flatMap((p) => [...p.pcsByImage.keys()]))];
  const names = sampleNames(images);
  const files: GmonFile[] = [];
  for (const profile of result.profiles) {
    const arcs = depth > 1 ? arcsOf(profile, result, depth) : new Map<Image, Map<string, [number, number, number]>>();
    for (const [image, pcs] of profile.pcsByImage) {
      const elf = image.elf!;
      const lowpc = Math.floor(elf.textStart / FUNCTION_ALIGNMENT) * FUNCTION_ALIGNMENT;
      const highpc = Math.ceil(elf.textEnd / FUNCTION_ALIGNMENT) * FUNCTION_ALIGNMENT;
      const nbuckets = (highpc - lowpc) / FUNCTION_ALIGNMENT;
      const imageArcs = [...(arcs.get(image)?.values() ?? [])];
      const data = Buffer.alloc(HEADER_SIZE + nbuckets * 2 + imageArcs.length * ARC_SIZE);
      data.writeBigUInt64LE(BigInt(lowpc), 0);
      data.writeBigUInt64LE(BigInt(highpc), 8);
      data.writeUInt32LE(HEADER_SIZE + nbuckets * 2, 16);
      data.writeUInt32LE(GMONVERSION, 20);
      data.writeUInt32LE(0, 24); // profrate 0: gprof uses its own tick rate, as with pmcstat's files
      let samples = 0;
      let overflowed = false;
      for (const [pc, n] of pcs) {
        if (pc < lowpc || pc >= highpc) continue;
        const at = HEADER_SIZE + Math.floor((pc - lowpc) / FUNCTION_ALIGNMENT) * 2;
        const v = data.readUInt16LE(at) + n;
        if (v > HISTCOUNTER_MAX) overflowed = true;
        data.writeUInt16LE(Math.min(v, HISTCOUNTER_MAX), at);
        samples += n;
      }
      let at = HEADER_SIZE + nbuckets * 2;
      for (const [from, self, count] of imageArcs) {
        data.writeBigUInt64LE(BigInt(from), at);
        data.writeBigUInt64LE(BigInt(self), at + 8);
        data.writeBigUInt64LE(BigInt(count), at + 16);
        at += ARC_SIZE;
      }
      const sampleName = names.get(image)!;
      // An event name may hold a '/' (cpu/event=0x3c/): it must stay one directory.
      files.push({ path: `${profile.name.replaceAll('/', '_')}/${sampleName}`, pmc: profile.name, image, sampleName, samples, overflowed, data });
    }
  }
  return files;
}

/** pmcstat -M: ` "<image path>" => "<samplename>"` and ` <pmc>/<samples>` per PMC, one line per image. */
export function* formatGmonMap(files: GmonFile[]): Generator<string> {
  const byImage = new Map<Image, GmonFile[]>();
  for (const f of files) {
    const list = byImage.get(f.image);
    if (list) list.push(f);
    else byImage.set(f.image, [f]);
  }
  for (const [image, list] of byImage) {
    yield ` "${image.path}" => "${list[0].sampleName}"${list.map((f) => ` ${f.pmc}/${f.samples}`).join('')}\n`;
  }
}
