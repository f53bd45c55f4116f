// The collector's steady-state sample path alone, on this machine, without
// the noise of a live workload: what one sample costs from the kernel's ring
// to the owner's log, and what the floor is.
//
// Each tick puts `--per-tick` PERF_RECORD_SAMPLEs per CPU (the layout
// md/sampling-set.ts asks for: identifier, ip, tid, time, cpu, period and a
// user call chain of `--frames` entries) into ring buffers laid out as the
// kernel's (a control page, then the data pages; the kernel maps a perf
// ring's data pages read-only, so these are plain memory), then runs
// the module's tick: md's PerfSampleSource reads them, the SampleProcessor
// encodes them into its sample buffers and sweeps them in time order into a
// LogWriter writing /dev/null. The CPU time of this process (user + system,
// all threads) per sample is the figure, less that of the stand-in kernel
// writing the records (the `feed` way: the same ticks, nothing read). The
// same records are also handled by the floor: each tick the ring's bytes are
// copied once into a log buffer and written, which is all perf record does
// with them (it writes the ring to its file and decodes nothing).
//
//   npm run bench:sample-path [-- --ticks 1500 --per-tick 250 --frames 8 --cpus 2 --reps 5]
// The collector's V8 settings (pmcstat's second import), so the path is compiled as it is there.
import '../src/cli/v8-tuning.js';
import { closeSync, mkdirSync, openSync, writeFileSync, write as fsWrite } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { callchainLength } from '../src/log/codec.js';
import { LogWriter } from '../src/log/log-writer.js';
import type { ClassDep, HwCounterSet } from '../src/md/class-dep.js';
import { PerfSample } from '../src/md/perf-attr.js';
import { SampleLayout } from '../src/md/perf-sample-record.js';
import { PerfSampleSource } from '../src/md/perf-sample-source.js';
import { RingBuffer } from '../src/md/ring-buffer.js';
import { selfCaller } from '../src/module/caller.js';
import { newDriverStats } from '../src/module/driver-stats.js';
import { Owner } from '../src/module/owner.js';
import { OwnerLog } from '../src/module/owner-log.js';
import { Pmc } from '../src/module/pmc.js';
import { PmcFlags, PmcMode, PmcState } from '../src/module/pmc-types.js';
import { SampleProcessor } from '../src/module/sample-processor.js';
import { now } from '../src/pmc-common.js';
import { median } from './median.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SAMPLE_TYPE = PerfSample.IDENTIFIER | PerfSample.IP | PerfSample.TID | PerfSample.TIME | PerfSample.CPU | PerfSample.PERIOD | PerfSample.CALLCHAIN;
const PERF_CONTEXT_USER = -512;
const RING_PAGES = 128;

/** The kernel's side of a ring: writes records and publishes data_head (the ring's fields, seen from outside). */
interface RingInside {
  data: { bytes: Uint8Array; words: Int32Array };
  control: Uint32Array;
}

/** Writes `n` samples of `frames` chain entries at times t0, t0 + step, ... into the ring, as the kernel would. */
function feed(ring: RingBuffer, cpu: number, n: number, frames: number, t0: number, step: number, at: { head: number }): void {
  const inside = ring as unknown as RingInside;
  const words = inside.data.words;
  const wordMask = (ring.size >>> 2) - 1;
  // Header, identifier, ip, pid/tid, time, cpu, period, nr, then the chain.
  const size = 8 + 6 * 8 + 8 + frames * 8;
  for (let i = 0; i < n; i++) {
    const w = at.head >>> 2;
    const t = t0 + i * step;
    words[w & wordMask] = 9; // PERF_RECORD_SAMPLE
    words[(w + 1) & wordMask] = 2 | (size << 16); // misc PERF_RECORD_MISC_USER, size
    words[(w + 2) & wordMask] = 1000 + cpu; // identifier
    words[(w + 3) & wordMask] = 0;
    words[(w + 4) & wordMask] = 0x401000 + i * 16; // ip
    words[(w + 5) & wordMask] = 0;
    words[(w + 6) & wordMask] = 4242; // pid, tid
    words[(w + 7) & wordMask] = 4243 + cpu;
    words[(w + 8) & wordMask] = t % 0x1_0000_0000; // time
    words[(w + 9) & wordMask] = Math.floor(t / 0x1_0000_0000);
    words[(w + 10) & wordMask] = cpu; // cpu, res
    words[(w + 11) & wordMask] = 0;
    words[(w + 12) & wordMask] = 100000; // period
    words[(w + 13) & wordMask] = 0;
    words[(w + 14) & wordMask] = frames; // nr
    words[(w + 15) & wordMask] = 0;
    words[(w + 16) & wordMask] = PERF_CONTEXT_USER;
    words[(w + 17) & wordMask] = -1;
    for (let f = 1; f < frames; f++) {
      words[(w + 16 + 2 * f) & wordMask] = 0x401000 + f * 0x100 + (i & 15);
      words[(w + 17 + 2 * f) & wordMask] = 0;
    }
    at.head += size;
  }
  Atomics.store(inside.control, 1024 / 4, at.head % 0x1_0000_0000);
  Atomics.store(inside.control, 1024 / 4 + 1, Math.floor(at.head / 0x1_0000_0000));
}

interface Setup {
  rings: RingBuffer[];
  heads: { head: number }[];
}

/** Rings as RingBuffer.map() makes them, over plain memory: page 0 says where the data pages are. */
function openRings(cpus: number): Setup {
  const rings: RingBuffer[] = [];
  for (let c = 0; c < cpus; c++) {
    const buffer = new ArrayBuffer((1 + RING_PAGES) * 4096);
    const control = new Uint32Array(buffer, 0, 1024);
    control[1040 / 4] = 4096; // data_offset
    control[1048 / 4] = RING_PAGES * 4096; // data_size
    const ctor = RingBuffer as unknown as new (event: { fd: number }, m: { address: null; length: number; buffer: ArrayBuffer }) => RingBuffer;
    rings.push(new ctor({ fd: -1 }, { address: null, length: buffer.byteLength, buffer }));
  }
  return { rings, heads: rings.map(() => ({ head: 0 })) };
}

/**
 * Each tick's samples span the 10 ms before this much before now: the
 * module's tick takes only samples some ms old (sample-processor.ts's
 * horizon), and this stand-in kernel, unlike the real one, would write over
 * what waits in a ring.
 */
const TICK_AGE_NS = 20e6;
const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Bytes the log may be behind before a tick waits for it: a quarter of its buffers. */
const BEHIND_BYTES = 4 * 1024 * 1024;

type Way = 'tspmc' | 'floor' | 'feed';

interface Run {
  way: Way;
  rep: number;
  samples: number;
  cpuMs: number;
  nsPerSample: number;
  bytesWritten: number;
}

/** The module's path: PerfSampleSource -> SampleProcessor -> LogWriter(/dev/null). */
async function tspmcPath(o: Options, rep: number): Promise<Run> {
  const setup = openRings(o.cpus);
  const fd = openSync('/dev/null', 'w');
  const stats = newDriverStats();
  const owner = new Owner(selfCaller());
  const writer = new LogWriter({ sink: fd, bufferSize: 256 * 1024, nbuffers: 64 });
  owner.log = new OwnerLog(writer, stats);
  const layout = new SampleLayout(SAMPLE_TYPE, 0n, true);
  const sources = setup.rings.map((r, cpu) => new PerfSampleSource(cpu, r, layout, []));
  const hw = { sampleSources: sources } as unknown as HwCounterSet;
  const request = { event: 0, countUser: true, countKernel: true, sampling: true, reloadCount: 100000n, frequency: false, callchain: true, callchainDepth: 128, contextSwitchValues: false };
  const pmc = new Pmc(0x20f00, owner, {} as ClassDep, PmcMode.TS, 0, -1, 0, PmcFlags.CALLCHAIN, request, 'cpu-clock');
  pmc.state = PmcState.RUNNING;
  pmc.cpuCounter = hw;
  owner.pmcs.set(pmc.id, pmc);
  const processor = new SampleProcessor(stats, o.cpus, 1024, 128, () => [pmc]);
  try {
    // Each record: the chain less its PERF_CONTEXT_USER marker.
    const recordBytes = callchainLength(o.frames - 1);
    const c0 = process.cpuUsage();
    for (let t = 0; t < o.ticks; t++) {
      const t0 = now() - TICK_AGE_NS;
      setup.rings.forEach((r, cpu) => feed(r, cpu, o.perTick, o.frames, t0 + cpu, 10e6 / o.perTick, setup.heads[cpu]));
      processor.tick();
      await yieldToLoop();
      // Paced as the kernel would be: the ticks come faster than every 10 ms,
      // and a loaded machine can leave the writes to /dev/null behind; the
      // log would then drop samples. Waiting costs no CPU.
      while (stats.intr_processed * recordBytes - writer.bytesWritten > BEHIND_BYTES) await sleep(1);
    }
    await writer.flush();
    const c = process.cpuUsage(c0);
    const samples = stats.intr_processed;
    if (samples !== o.ticks * o.perTick * o.cpus) throw new Error(`expected ${o.ticks * o.perTick * o.cpus} samples, processed ${samples} (${JSON.stringify(stats)})`);
    const cpuMs = (c.user + c.system) / 1000;
    return { way: 'tspmc', rep, samples, cpuMs, nsPerSample: (cpuMs * 1e6) / samples, bytesWritten: writer.bytesWritten };
  } finally {
    await writer.close().catch(() => undefined);
    closeSync(fd);
  }
}

/**
 * The floor: each tick, every ring's new bytes copied at once into a log
 * buffer (one typed-array copy, records not even walked), the buffer written
 * when half full: what perf record does, plus that one copy.
 */
async function floorPath(o: Options, rep: number): Promise<Run> {
  const setup = openRings(o.cpus);
  const fd = openSync('/dev/null', 'w');
  const buf = new Uint8Array(256 * 1024);
  let used = 0;
  let written = 0;
  const flush = (): Promise<void> =>
    new Promise((res, rej) => {
      const n = used;
      used = 0;
      fsWrite(fd, buf, 0, n, null, (err) => (err ? rej(err) : ((written += n), res())));
    });
  const tails = setup.rings.map(() => 0);
  try {
    const c0 = process.cpuUsage();
    for (let t = 0; t < o.ticks; t++) {
      const t0 = now() - TICK_AGE_NS;
      setup.rings.forEach((r, cpu) => feed(r, cpu, o.perTick, o.frames, t0 + cpu, 10e6 / o.perTick, setup.heads[cpu]));
      setup.rings.forEach((r, i) => {
        const data = (r as unknown as RingInside).data.bytes;
        const head = setup.heads[i].head;
        const mask = r.size - 1;
        for (let from = tails[i]; from < head; ) {
          const pos = from & mask;
          const n = Math.min(head - from, r.size - pos);
          buf.set(data.subarray(pos, pos + n), used);
          used += n;
          from += n;
        }
        tails[i] = head;
      });
      if (used > buf.length / 2) await flush();
      await yieldToLoop();
    }
    await flush();
    const c = process.cpuUsage(c0);
    const cpuMs = (c.user + c.system) / 1000;
    const samples = o.ticks * o.perTick * o.cpus;
    return { way: 'floor', rep, samples, cpuMs, nsPerSample: (cpuMs * 1e6) / samples, bytesWritten: written };
  } finally {
    closeSync(fd);
  }
}

/** The stand-in kernel alone: the same ticks writing the same records, which nobody reads. */
async function feedOnly(o: Options, rep: number): Promise<Run> {
  const setup = openRings(o.cpus);
  const c0 = process.cpuUsage();
  for (let t = 0; t < o.ticks; t++) {
    const t0 = now() - TICK_AGE_NS;
    setup.rings.forEach((r, cpu) => feed(r, cpu, o.perTick, o.frames, t0 + cpu, 10e6 / o.perTick, setup.heads[cpu]));
    await yieldToLoop();
  }
  const c = process.cpuUsage(c0);
  const cpuMs = (c.user + c.system) / 1000;
  const samples = o.ticks * o.perTick * o.cpus;
  return { way: 'feed', rep, samples, cpuMs, nsPerSample: (cpuMs * 1e6) / samples, bytesWritten: 0 };
}

interface Options {
  ticks: number;
  perTick: number;
  frames: number;
  cpus: number;
  reps: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      ticks: { type: 'string', default: '1500' },
      'per-tick': { type: 'string', default: '250' },
      frames: { type: 'string', default: '8' },
      cpus: { type: 'string', default: '2' },
      reps: { type: 'string', default: '5' },
      out: { type: 'string' },
    },
  });
  const o: Options = { ticks: Number(values.ticks), perTick: Number(values['per-tick']), frames: Number(values.frames), cpus: Number(values.cpus), reps: Number(values.reps) };
  for (const [k, v] of Object.entries(o)) if (!(Number.isInteger(v) && v > 0)) throw new Error(`--${k}: expected a positive integer`);
  const load0 = loadavg();
  const runs: Run[] = [];
  const ways = [tspmcPath, floorPath, feedOnly];
  for (let rep = 0; rep < o.reps; rep++) {
    // Interleaved, in a rotating order: no way always runs warmer.
    for (let i = 0; i < ways.length; i++) {
      const r = await ways[(rep + i) % ways.length](o, rep);
      runs.push(r);
      process.stderr.write(`rep ${rep} ${r.way.padEnd(5)} ${r.samples} samples, ${r.cpuMs.toFixed(1)} ms CPU, ${r.nsPerSample.toFixed(0)} ns/sample\n`);
    }
  }
  // Each way's CPU less the stand-in kernel's of the same repetition.
  const net = (way: Way): number[] => runs.filter((r) => r.way === way).map((r) => r.nsPerSample - runs.find((f) => f.way === 'feed' && f.rep === r.rep)!.nsPerSample);
  const summary = (['tspmc', 'floor'] as const).map((way) => {
    const ns = net(way);
    return { way, medianNs: median(ns), minNs: Math.min(...ns), maxNs: Math.max(...ns) };
  });
  const feedNs = runs.filter((r) => r.way === 'feed').map((r) => r.nsPerSample);
  const [t, f] = summary;
  const table = [
    `Sample path, ${o.cpus} rings x ${o.perTick} samples per 10 ms tick x ${o.ticks} ticks, ${o.frames}-entry call chains, ${o.reps} interleaved repetitions.`,
    `CPU per sample, less the stand-in kernel's (median ${median(feedNs).toFixed(0)} ns/sample):`,
    '',
    '| way | median ns/sample | range |',
    '| --- | ---: | ---: |',
    ...summary.map((s) => `| ${s.way} | ${s.medianNs.toFixed(0)} | ${s.minNs.toFixed(0)}-${s.maxNs.toFixed(0)} |`),
    '',
    `tspmc / floor: ${(t.medianNs / f.medianNs).toFixed(2)}`,
  ].join('\n');
  const out = values.out ?? join(REPO, 'bench/results', `sample-path-${new Date().toISOString().slice(0, 16).replace(':', '')}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ command: `npm run bench:sample-path -- ${process.argv.slice(2).join(' ')}`.trim(), date: new Date().toISOString(), options: o, node: process.version, loadavg: { start: load0, end: loadavg() }, summary, runs, table }, null, 2) + '\n');
  process.stdout.write(table + '\n');
  process.stderr.write(`results in ${out}\n`);
}

await main();
