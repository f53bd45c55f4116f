// --pprof: profile.proto, gzipped, through pprof-format. Per PMC a sample
// type `<event>_samples` (count) and, where the log tells what one sample
// stands for (sample-period.ts), `<event>` in nanoseconds (cpu-clock,
// task-clock) or events, the samples times that period; the profile's period
// is that of the first PMC with samples. A PMC sampled by frequency on an
// event that is not a clock has no known period: its samples are only
// counted, and a comment in the profile says so. A location is one PC (at
// its link-time address, in a mapping per image that carries the ELF build
// id) with its function and, where the image has DWARF line tables, its
// source line (binutils' addr2line, one batch per image), so that
// `go tool pprof -lines` and `-list` see lines. Samples carry the process
// name as a label.
import { gzipSync } from 'node:zlib';
import { Function as PprofFunction, Label, Line, Location, Mapping, Profile, Sample, StringTable, ValueType } from 'pprof-format';
import { PmcError } from '../pmc-error.js';
import { addressHex, isKernelAddress } from './address.js';
import type { AnalysisResult } from './analyze.js';
import { buildId } from './build-id.js';
import { pcStacksOf, type PmcProfile } from './callgraph.js';
import type { Image } from './image.js';
import { samplePeriod } from './sample-period.js';
import { lineSource, sourceLines, splitSourceLine } from './source-lines.js';

/** Why a PMC has no weighted sample type. */
function noPeriod(p: PmcProfile): string {
  if (p.frequency && p.rate > 0n) {
    return `${p.name}: sampled at ${p.rate} Hz; the kernel varies its period to keep that rate and the log does not record it, so its samples are counted only`;
  }
  return `${p.name}: the log gives no sampling rate, so its samples are counted only`;
}

/** The profile, not yet gzipped. */
function buildPprof(result: AnalysisResult): Profile {
  const strings = new StringTable();
  const s = (text: string): number => strings.dedup(text);
  const { frames, pcs } = result;
  if (!pcs) throw new PmcError('EINVAL', 'pprof: the analysis kept no PC stacks: analyze with needs.pcStacks (analysisNeeds({ pprof }) gives it)');

  const sampleType: ValueType[] = [];
  const comments = [`tspmc: ${result.stats.samples} samples, ${result.stats.dropped} dropped, ${result.stats.lost} lost`];
  const columns = result.profiles.map((p) => {
    const period = samplePeriod(p);
    const samples = sampleType.push(new ValueType({ type: s(`${p.name}_samples`), unit: s('count') })) - 1;
    if (!period) {
      comments.push(noPeriod(p));
      return { samples, period: 0, weighted: -1 };
    }
    const weighted = sampleType.push(new ValueType({ type: s(p.name), unit: s(period.unit) })) - 1;
    return { samples, period: Number(period.value), weighted };
  });

  // Source lines of every PC in an ELF image, one addr2line per image.
  const wanted = new Map<string, Set<number>>();
  for (let pc = 0; pc < pcs.length; pc++) {
    const file = lineSource(frames.image(pcs.frame(pc)));
    if (file === undefined) continue;
    let set = wanted.get(file);
    if (!set) wanted.set(file, (set = new Set()));
    set.add(pcs.link(pc));
  }
  const { lines } = sourceLines(wanted);

  // The image most samples were taken in is the first mapping: pprof calls it the profile's file.
  const stacks = result.profiles.map((p) => [...pcStacksOf(p)]);
  const leafSamples = new Map<Image | null, number>();
  for (const list of stacks) {
    for (const st of list) {
      const image = frames.image(pcs.frame(st.frames[st.frames.length - 1]));
      leafSamples.set(image, (leafSamples.get(image) ?? 0) + st.count);
    }
  }
  const mappings = new Map<Image, Mapping>();
  const mappingOf = (image: Image | null): Mapping | undefined => {
    if (!image) return undefined;
    let m = mappings.get(image);
    if (!m) {
      const elf = image.elf;
      const id = elf && image.path.startsWith('/') ? buildId(elf.name) : undefined;
      m = new Mapping({
        id: mappings.size + 1,
        memoryStart: elf?.textStart ?? 0,
        memoryLimit: elf?.textEnd ?? 0,
        fileOffset: elf ? elf.textStart - elf.linkBase : 0,
        filename: s(image.path),
        buildId: s(id ?? ''),
        hasFunctions: true,
      });
      mappings.set(image, m);
    }
    return m;
  };
  for (const [image] of [...leafSamples].sort((a, b) => b[1] - a[1])) mappingOf(image);

  const functions = new Map<string, PprofFunction>();
  const locations = new Map<number, Location>();
  const locationOf = (pc: number): number => {
    let loc = locations.get(pc);
    if (!loc) {
      const frame = pcs.frame(pc);
      const link = pcs.link(pc);
      const image = frames.image(frame);
      const name = frames.name(frame);
      const file = lineSource(image);
      const source = file === undefined ? undefined : lines.get(file)?.get(link);
      const at = source === undefined ? { file: '', line: 0 } : splitSourceLine(source);
      // Frames of one name in one image (and source file) are one function, as pprof expects.
      const key = `${image?.path ?? ''}\0${name}\0${at.file}`;
      let fn = functions.get(key);
      if (!fn) functions.set(key, (fn = new PprofFunction({ id: functions.size + 1, name: s(name), systemName: s(frames.systemName(frame)), filename: s(at.file) })));
      const mapping = mappingOf(image);
      if (mapping && source !== undefined) mapping.hasFilenames = mapping.hasLineNumbers = true;
      loc = new Location({
        id: locations.size + 1,
        mappingId: mapping?.id ?? 0,
        address: isKernelAddress(link) ? BigInt(`0x${addressHex(link)}`) : link,
        line: [new Line({ functionId: fn.id, line: at.line })],
      });
      locations.set(pc, loc);
    }
    return Number(loc.id);
  };

  const samples: Sample[] = [];
  const processKey = s('process');
  for (const [i, list] of stacks.entries()) {
    const col = columns[i];
    for (const st of list) {
      const value = new Array<number>(sampleType.length).fill(0);
      value[col.samples] = st.count;
      if (col.weighted >= 0) value[col.weighted] = st.count * col.period;
      const locationId: number[] = [];
      for (let k = st.frames.length - 1; k >= 0; k--) locationId.push(locationOf(st.frames[k]));
      samples.push(new Sample({ locationId, value, label: [new Label({ key: processKey, str: s(result.processNames[st.process]) })] }));
    }
  }

  const first = Math.max(0, result.profiles.findIndex((p) => p.samples > 0));
  const main = result.profiles[first];
  const mainColumn = columns[first];
  const weighted = main && mainColumn.weighted >= 0;
  return new Profile({
    sampleType,
    sample: samples,
    mapping: [...mappings.values()],
    location: [...locations.values()],
    function: [...functions.values()],
    stringTable: strings,
    periodType: weighted ? sampleType[mainColumn.weighted] : undefined,
    period: weighted ? mainColumn.period : 0,
    comment: comments.map(s),
    defaultSampleType: main ? sampleType[weighted ? mainColumn.weighted : mainColumn.samples].type : 0,
  });
}

/** The gzipped profile.proto bytes. */
export function writePprof(result: AnalysisResult): Buffer {
  return gzipSync(buildPprof(result).encode());
}
