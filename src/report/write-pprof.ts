// --pprof: profile.proto, gzipped, through pprof-format. Per PMC two sample
// types: `<event>_samples` (count) and `<event>` (the samples times the
// rate: nanoseconds for cpu-clock and task-clock, events otherwise); the
// period is the rate of the first PMC with samples. A location is a
// function of an image (tspmc aggregates by function), at the function's
// link-time address in a mapping per image that carries the ELF build id;
// samples carry the process name as a label.
import { gzipSync } from 'node:zlib';
import { Function as PprofFunction, Label, Line, Location, Mapping, Profile, Sample, StringTable, ValueType } from 'pprof-format';
import type { AnalysisResult } from './analyze.js';
import { buildId } from './build-id.js';
import { stacksOf } from './callgraph.js';
import type { Image } from './image.js';

const CLOCK_EVENTS = new Set(['cpu-clock', 'task-clock']);

const unitOf = (name: string): string => (CLOCK_EVENTS.has(name) ? 'nanoseconds' : 'events');

/** The profile, not yet gzipped. */
export function buildPprof(result: AnalysisResult): Profile {
  const strings = new StringTable();
  const s = (text: string): number => strings.dedup(text);
  const n = result.profiles.length;
  const sampleType: ValueType[] = [];
  for (const p of result.profiles) {
    sampleType.push(new ValueType({ type: s(`${p.name}_samples`), unit: s('count') }));
    sampleType.push(new ValueType({ type: s(p.name), unit: s(unitOf(p.name)) }));
  }

  // The image most samples were taken in is the first mapping: pprof calls it the profile's file.
  const leafSamples = new Map<Image | null, number>();
  const stacks = result.profiles.map((p) => [...stacksOf(p)]);
  for (const list of stacks) {
    for (const st of list) {
      const image = result.frames.image(st.frames[st.frames.length - 1]);
      leafSamples.set(image, (leafSamples.get(image) ?? 0) + st.count);
    }
  }
  const mappings = new Map<Image, Mapping>();
  const mappingOf = (image: Image | null): number => {
    if (!image) return 0;
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
    return Number(m.id);
  };

  const functions = new Map<string, PprofFunction>();
  const locations = new Map<number, Location>();
  const locationOf = (frameId: number): number => {
    let loc = locations.get(frameId);
    if (!loc) {
      const { frames } = result;
      const image = frames.image(frameId);
      const name = frames.name(frameId);
      // Frames of one name in one image are one function, as pprof expects.
      const key = `${image?.path ?? ''}\0${name}`;
      let fn = functions.get(key);
      if (!fn) functions.set(key, (fn = new PprofFunction({ id: functions.size + 1, name: s(name), systemName: s(name) })));
      loc = new Location({ id: locations.size + 1, mappingId: mappingOf(image), address: frames.start(frameId), line: [new Line({ functionId: fn.id })] });
      locations.set(frameId, loc);
    }
    return Number(loc.id);
  };

  for (const [image] of [...leafSamples].sort((a, b) => b[1] - a[1])) mappingOf(image);

  const samples: Sample[] = [];
  const processKey = s('process');
  for (const [i, p] of result.profiles.entries()) {
    const rate = p.rate > 0n ? Number(p.rate) : 1;
    for (const st of stacks[i]) {
      const value = new Array<number>(2 * n).fill(0);
      value[2 * i] = st.count;
      value[2 * i + 1] = st.count * rate;
      const locationId: number[] = [];
      for (let k = st.frames.length - 1; k >= 0; k--) locationId.push(locationOf(st.frames[k]));
      samples.push(new Sample({ locationId, value, label: [new Label({ key: processKey, str: s(result.processNames[st.process]) })] }));
    }
  }

  const first = result.profiles.findIndex((p) => p.samples > 0);
  const main = result.profiles[Math.max(first, 0)];
  const comments = [`tspmc: ${result.stats.samples} samples, ${result.stats.dropped} dropped, ${result.stats.lost} lost`];
  return new Profile({
    sampleType,
    sample: samples,
    mapping: [...mappings.values()],
    location: [...locations.values()],
    function: [...functions.values()],
    stringTable: strings,
    periodType: main ? new ValueType({ type: s(main.name), unit: s(unitOf(main.name)) }) : undefined,
    period: main ? main.rate : 0,
    comment: comments.map(s),
    defaultSampleType: main ? s(main.name) : 0,
  });
}

/** The gzipped profile.proto bytes. */
export function writePprof(result: AnalysisResult): Buffer {
  return gzipSync(buildPprof(result).encode());
}
