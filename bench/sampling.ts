// Sampling benchmark: tspmc's pmcstat against Linux perf on the same
// machine in the same run.
//
// (a) Collector: cpu-clock samples with call chains of bench/busy2.c (two
//     spinning threads built with frame pointers) at each `--collector`
//     rate and length (default 10 kHz for 15 s and 50 kHz for 3 s, issue
//     10's targets). For each run: samples recorded, samples dropped or
//     lost, the collector's own CPU time (user + system of the collector
//     and what it waited for, from wait4 through bench/rusage_of.c, minus
//     the workload's, which busy2 reports from getrusage(RUSAGE_SELF)), and
//     the collector's peak RSS. The figure compared is the collector's CPU
//     per sample recorded, start-up and end included. Baselines in the same
//     rounds: the tools' start-up (a 1 ms workload, no samples) and Node
//     itself (`node -e 0`, whose RSS is the allowance over perf's).
//     --steady adds the collector's task-clock (perf stat -p) over a 2 s
//     window in the middle of a 6 s run: what a sample costs once start-up
//     and end-of-run work are out of the picture. --floor adds a third
//     collector, bench/floor-collector.ts: pmcstat's rings polled the same
//     way from Node, their bytes written to a file as perf record writes
//     them, nothing decoded (the floor of a collector written for Node).
//     --baseline DIR adds DIR's pmcstat (a built export of main, say): an
//     A/B of two trees in the same run.
// The analysis of the logs is bench/analysis.ts's (npm run bench:analysis).
//
// Runs alternate between the tools (the order flips every repetition);
// medians and ranges (min-max) are reported. Raw runs go to
// bench/results/sampling-<date>.json, a markdown summary to stdout, and the
// load average before and after to both.
//
//   npm run bench:sampling [-- --reps N --collector 10000:15,50000:3 --steady --floor --baseline DIR --keep]
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pmcstatOf } from './built-tree.js';
import { median } from './median.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PERF = '/usr/bin/perf';
/** A sampling period (ns of cpu-clock) no run reaches: the same command, no samples. */
const NO_SAMPLES_PERIOD = '1000000000000';
/** Steady-state runs: workload length, and the window measured inside it. */
const STEADY_SECONDS = 6;
const STEADY_WINDOW = { from: 2.5, length: 2 };

type Tool = 'tspmc' | 'perf' | 'floor' | 'baseline';
type Rate = { freq?: number; period?: string };

/** The compiled tree the runs use (see snapshotBuild). */
interface Build {
  pmcstat: string;
  floor: string;
  /** --baseline: another tree's pmcstat (an export of main, say), for an A/B in the same run. */
  baseline?: string;
  /** bench/rusage_of.c, compiled. */
  rusageOf: string;
}

interface CpuTimes {
  wall: number;
  user: number;
  sys: number;
  /** Peak RSS in KiB of the command or of what it waited for, whichever was larger (wait4). */
  maxRssKb: number;
}

interface RecordingStats {
  samples: number;
  /** tspmc: samples the collector could not log (DROPNOTIFY.dropped). */
  dropped: number;
  /** Samples the kernel lost (tspmc: DROPNOTIFY.lost; perf: LOST_SAMPLES). */
  lost: number;
  /** perf: PERF_RECORD_LOST records. */
  lostRecords?: number;
}

interface CollectorRun extends RecordingStats {
  tool: Tool;
  config: string;
  rep: number;
  command: string[];
  status: number;
  /** Of the collector and everything it waited for (the workload included). */
  time: CpuTimes;
  /** The workload's own getrusage(RUSAGE_SELF), user + sys. */
  workloadCpu: number;
  workloadWall: number;
  /** time.user + time.sys - workloadCpu. */
  collectorCpu: number;
  outputBytes: number;
  maxSampleRateAfter: number;
  stderrTail: string;
}

interface SteadyRun extends RecordingStats {
  tool: Tool;
  config: string;
  rep: number;
  command: string[];
  status: number;
  /** The collector's task-clock over the window, in ms. */
  windowCpuMs: number;
  workloadWall: number;
  /** samples * window / workload wall: the samples taken during the window. */
  windowSamples: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const sysctlNumber = (name: string): number => Number(readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8').trim());
const tail = (text: string, lines = 30): string => text.trim().split('\n').slice(-lines).join('\n');

/**
 * A private copy of the compiled tree: other engineers rebuild dist/ while
 * this runs, and a run must not load half-written files.
 */
function snapshotBuild(work: string): Build {
  const root = join(work, 'tspmc');
  for (const d of ['src', 'bin', 'bench']) cpSync(join(REPO, 'dist', d), join(root, 'dist', d), { recursive: true });
  writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
  symlinkSync(join(REPO, 'node_modules'), join(root, 'node_modules'));
  const rusageOf = join(work, 'rusage_of');
  const cc = spawnSync('gcc', ['-O2', '-o', rusageOf, join(REPO, 'bench/rusage_of.c')], { stdio: 'inherit' });
  if (cc.status !== 0) throw new Error('gcc failed to build bench/rusage_of.c');
  return { pmcstat: pmcstatOf(root)!, floor: join(root, 'dist/bench/floor-collector.js'), rusageOf };
}

/** Runs argv under rusage_of (wait4's rusage, in microseconds); stdout to `stdoutPath` (or discarded). */
function timed(build: Build, argv: string[], work: string, stdoutPath?: string, env: NodeJS.ProcessEnv = process.env): { status: number; time: CpuTimes; stderr: string } {
  const usageFile = join(work, 'rusage.txt');
  rmSync(usageFile, { force: true });
  const out = stdoutPath ? openSync(stdoutPath, 'w') : 'ignore';
  try {
    const r = spawnSync(build.rusageOf, [usageFile, ...argv], { cwd: work, stdio: ['ignore', out, 'pipe'], maxBuffer: 64 << 20, env });
    const [userUs, sysUs, maxRssKb, wallUs, status] = readFileSync(usageFile, 'utf8').trim().split(' ').map(Number);
    return { status: r.status === 0 ? status : (r.status ?? -1), time: { wall: wallUs / 1e6, user: userUs / 1e6, sys: sysUs / 1e6, maxRssKb }, stderr: r.stderr.toString() };
  } finally {
    if (typeof out === 'number') closeSync(out);
  }
}

function collectorCommand(build: Build, tool: Tool, rate: Rate, output: string, workload: string[]): string[] {
  if (tool === 'tspmc' || tool === 'baseline') {
    // pmcstat reads its options in order: the rate applies to the -P after it.
    const r = rate.freq !== undefined ? ['--freq', String(rate.freq)] : ['-n', rate.period!];
    return [process.execPath, tool === 'tspmc' ? build.pmcstat : build.baseline!, ...r, '-P', 'cpu-clock', '-O', output, '--', ...workload];
  }
  const r = rate.freq !== undefined ? ['-F', String(rate.freq)] : ['-c', rate.period!];
  if (tool === 'floor') return [process.execPath, build.floor, ...r, output, '--', ...workload];
  return [PERF, 'record', '-e', 'cpu-clock', ...r, '-g', '-o', output, '--', ...workload];
}

function recordingStats(build: Build, tool: Tool, output: string, work: string): RecordingStats {
  if (tool === 'tspmc' || tool === 'baseline') {
    const r = spawnSync(process.execPath, [build.pmcstat, '-R', output, '--stats', '--json'], { cwd: work, maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`pmcstat -R ${output} --stats --json failed: ${r.stderr}`);
    const s = JSON.parse(r.stdout.toString()) as { samples: number; dropped: number; lost: number };
    return { samples: s.samples, dropped: s.dropped, lost: s.lost };
  }
  if (tool === 'floor') return rawRecordStats(output);
  const r = spawnSync(PERF, ['report', '--stats', '-i', output], { cwd: work, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`perf report --stats -i ${output} failed: ${r.stderr}`);
  const text = r.stdout.toString();
  // The aggregated section counts records; the per-event section after "cpu-clock stats:" has LOST_SAMPLES' total.
  const field = (section: string, name: string): number => Number(new RegExp(`^\\s*${name} events:\\s+(\\d+)`, 'm').exec(section)?.[1] ?? 0);
  const perEvent = text.slice(text.indexOf('cpu-clock stats:'));
  return { samples: field(perEvent, 'SAMPLE'), dropped: 0, lost: field(perEvent, 'LOST_SAMPLES'), lostRecords: field(text, 'LOST') };
}

/** The floor collector's file, the rings' records as they were: samples, and what PERF_RECORD_LOST records count. */
function rawRecordStats(path: string): RecordingStats {
  const b = readFileSync(path);
  let samples = 0;
  let lost = 0;
  let lostRecords = 0;
  for (let o = 0; o + 8 <= b.length; ) {
    const type = b.readUInt32LE(o);
    const size = b.readUInt16LE(o + 6);
    if (size < 8) throw new Error(`${path}: a record of size ${size} at byte ${o}`);
    if (type === 9) samples++;
    if (type === 2) {
      lostRecords++;
      lost += Number(b.readBigUInt64LE(o + 16));
    }
    o += size;
  }
  return { samples, dropped: 0, lost, lostRecords };
}

const NO_STATS: RecordingStats = { samples: NaN, dropped: NaN, lost: NaN };

function readRusage(path: string): { utime: number; stime: number; wall: number } | undefined {
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as { utime: number; stime: number; wall: number }) : undefined;
}

function collectorRun(build: Build, tool: Tool, config: string, rep: number, rate: Rate, seconds: number, work: string, busy2: string): CollectorRun {
  const output = join(work, `${config}.${OUTPUT_SUFFIX[tool]}`);
  const rusage = join(work, 'rusage.json');
  rmSync(rusage, { force: true });
  rmSync(output, { force: true });
  const command = collectorCommand(build, tool, rate, output, [busy2, String(seconds), rusage]);
  const { status, time, stderr } = timed(build, command, work);
  const ru = readRusage(rusage);
  const workloadCpu = ru ? ru.utime + ru.stime : NaN;
  return {
    tool,
    config,
    rep,
    command,
    status,
    time,
    workloadCpu,
    workloadWall: ru?.wall ?? NaN,
    collectorCpu: time.user + time.sys - workloadCpu,
    ...(status === 0 ? recordingStats(build, tool, output, work) : NO_STATS),
    outputBytes: existsSync(output) ? statSync(output).size : 0,
    maxSampleRateAfter: sysctlNumber('kernel.perf_event_max_sample_rate'),
    stderrTail: tail(stderr, status === 0 ? 3 : 30),
  };
}

/** The collector's task-clock (all its threads) over STEADY_WINDOW of a STEADY_SECONDS run. */
async function steadyRun(build: Build, tool: Tool, config: string, rep: number, rate: Rate, work: string, busy2: string): Promise<SteadyRun> {
  const output = join(work, `steady-${config}.${OUTPUT_SUFFIX[tool]}`);
  const rusage = join(work, 'rusage.json');
  rmSync(rusage, { force: true });
  rmSync(output, { force: true });
  const command = collectorCommand(build, tool, rate, output, [busy2, String(STEADY_SECONDS), rusage]);
  const child = spawn(command[0], command.slice(1), { cwd: work, stdio: 'ignore' });
  const exited = new Promise<number>((r) => child.on('exit', (code) => r(code ?? -1)));
  await sleep(STEADY_WINDOW.from * 1000);
  const stat = spawnSync(PERF, ['stat', '-x,', '-e', 'task-clock', '-p', String(child.pid), '--', 'sleep', String(STEADY_WINDOW.length)], { cwd: work });
  const line = stat.stderr.toString().split('\n').find((l) => l.includes('task-clock'));
  const windowCpuMs = line ? Number(line.split(',')[0]) : NaN;
  const status = await exited;
  const ru = readRusage(rusage);
  const stats = status === 0 ? recordingStats(build, tool, output, work) : NO_STATS;
  const workloadWall = ru?.wall ?? NaN;
  return { tool, config, rep, command, status, windowCpuMs, ...stats, workloadWall, windowSamples: (stats.samples * STEADY_WINDOW.length) / workloadWall };
}

interface CollectorConfig {
  name: string;
  rate: Rate;
  seconds: number;
}

const OUTPUT_SUFFIX: Record<Tool, string> = { tspmc: 'pmclog', perf: 'perf.data', floor: 'raw', baseline: 'base.pmclog' };

/** The tools measured: tspmc and perf; with --floor the floor collector, with --baseline another tree's pmcstat. */
let tools: Tool[] = ['tspmc', 'perf'];

/** Every tool once per repetition, in an order that rotates so that none always runs in another's wake. */
function toolOrder(rep: number): Tool[] {
  const k = rep % tools.length;
  return [...tools.slice(k), ...tools.slice(0, k)];
}

interface BaselineRun {
  name: string;
  rep: number;
  time: CpuTimes;
}

/** Node doing nothing: the RSS the target allows over perf's, and Node's share of start-up. */
function nodeBaseline(build: Build, rep: number, work: string): BaselineRun {
  return { name: 'node -e 0', rep, time: timed(build, [process.execPath, '-e', '0'], work).time };
}

/**
 * NODE_EXTRA_CA_CERTS, when the environment sets it, makes every Node
 * process parse that certificate bundle as it starts (about 30 ms of CPU
 * for Debian's), a cost of the machine's set-up that no tool here needs:
 * the runs go without it, and this baseline shows what it would add.
 */
const extraCaCerts = process.env.NODE_EXTRA_CA_CERTS;
delete process.env.NODE_EXTRA_CA_CERTS;

function nodeBaselineWithCaCerts(build: Build, rep: number, work: string): BaselineRun[] {
  if (extraCaCerts === undefined) return [];
  const env = { ...process.env, NODE_EXTRA_CA_CERTS: extraCaCerts };
  return [{ name: 'node -e 0, NODE_EXTRA_CA_CERTS set', rep, time: timed(build, [process.execPath, '-e', '0'], work, undefined, env).time }];
}

function benchCollector(build: Build, configs: CollectorConfig[], reps: number, work: string, busy2: string): { runs: CollectorRun[]; baselines: BaselineRun[] } {
  const runs: CollectorRun[] = [];
  const baselines: BaselineRun[] = [];
  // One unmeasured start of each tool first: the page cache, and pmcstat's code cache (cli/code-cache.ts), hold what a tool in use finds there.
  for (const tool of toolOrder(0)) collectorRun(build, tool, 'warm-up', -1, { period: NO_SAMPLES_PERIOD }, 0.001, work, busy2);
  for (let rep = 0; rep < reps; rep++) {
    baselines.push(nodeBaseline(build, rep, work), ...nodeBaselineWithCaCerts(build, rep, work));
    for (const c of configs) {
      for (const tool of toolOrder(rep)) {
        const r = collectorRun(build, tool, c.name, rep, c.rate, c.seconds, work, busy2);
        runs.push(r);
        process.stderr.write(
          `[a] rep ${rep} ${c.name.padEnd(10)} ${tool.padEnd(5)} status ${r.status} samples ${r.samples} dropped ${r.dropped} lost ${r.lost} ` +
            `collector CPU ${r.collectorCpu.toFixed(3)} s (${r.time.user.toFixed(3)}+${r.time.sys.toFixed(3)} - workload ${r.workloadCpu.toFixed(3)}), RSS ${(r.time.maxRssKb / 1024).toFixed(1)} MiB, load ${loadavg()[0].toFixed(2)}\n`,
        );
        if (r.status !== 0) process.stderr.write(`    ${r.stderrTail.replace(/\n/g, '\n    ')}\n`);
      }
    }
  }
  return { runs, baselines };
}

async function benchSteady(build: Build, configs: CollectorConfig[], reps: number, work: string, busy2: string): Promise<SteadyRun[]> {
  const runs: SteadyRun[] = [];
  for (let rep = 0; rep < reps; rep++) {
    for (const c of configs) {
      for (const tool of toolOrder(rep)) {
        const r = await steadyRun(build, tool, c.name, rep, c.rate, work, busy2);
        runs.push(r);
        process.stderr.write(`[a] steady rep ${rep} ${c.name.padEnd(8)} ${tool.padEnd(5)} status ${r.status} window CPU ${r.windowCpuMs.toFixed(1)} ms, ~${r.windowSamples.toFixed(0)} samples in the window\n`);
      }
    }
  }
  return runs;
}

/** Median and range of a list of numbers. */
interface Spread {
  median: number;
  min: number;
  max: number;
}

function spread(xs: number[]): Spread {
  const ok = xs.filter((x) => Number.isFinite(x));
  return { median: median(ok), min: ok.length ? Math.min(...ok) : NaN, max: ok.length ? Math.max(...ok) : NaN };
}

interface CollectorSummary {
  config: string;
  tool: Tool;
  runs: number;
  samples: Spread;
  dropped: Spread;
  lost: Spread;
  /** Seconds. */
  collectorCpu: Spread;
  /** collectorCpu / samples, in microseconds: start-up and end included. */
  cpuPerSampleUs: Spread;
  maxRssMiB: Spread;
}

function summarizeCollector(runs: CollectorRun[], configs: CollectorConfig[]): CollectorSummary[] {
  const out: CollectorSummary[] = [];
  for (const c of configs) {
    for (const tool of tools) {
      const rs = runs.filter((r) => r.tool === tool && r.config === c.name && r.status === 0);
      out.push({
        config: c.name,
        tool,
        runs: rs.length,
        samples: spread(rs.map((r) => r.samples)),
        dropped: spread(rs.map((r) => r.dropped)),
        lost: spread(rs.map((r) => r.lost)),
        collectorCpu: spread(rs.map((r) => r.collectorCpu)),
        cpuPerSampleUs: spread(rs.map((r) => (r.samples > 0 ? (r.collectorCpu / r.samples) * 1e6 : NaN))),
        maxRssMiB: spread(rs.map((r) => r.time.maxRssKb / 1024)),
      });
    }
  }
  return out;
}

interface SteadySummary {
  tool: Tool;
  idleMsPerS: number;
  busyMsPerS: number;
  samplesPerS: number;
  perSampleUs: number;
}

function summarizeSteady(runs: SteadyRun[], busy: string): SteadySummary[] {
  return tools.map((tool) => {
    const ok = (config: string): SteadyRun[] => runs.filter((r) => r.tool === tool && r.config === config && r.status === 0);
    const idle = median(ok('idle').map((r) => r.windowCpuMs));
    return {
      tool,
      idleMsPerS: idle / STEADY_WINDOW.length,
      busyMsPerS: median(ok(busy).map((r) => r.windowCpuMs)) / STEADY_WINDOW.length,
      samplesPerS: median(ok(busy).map((r) => r.windowSamples)) / STEADY_WINDOW.length,
      perSampleUs: median(ok(busy).map((r) => ((r.windowCpuMs - idle) / r.windowSamples) * 1000)),
    };
  });
}

const fmt = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

const range = (x: Spread, d = 2): string => `${fmt(x.median, d)} (${fmt(x.min, d)}-${fmt(x.max, d)})`;

/** CPU per sample, tspmc's over perf's, of the two runs of each repetition (they ran minutes apart at most, under the same load). */
function pairedRatios(runs: CollectorRun[], config: string, tool: Tool): number[] {
  const perSample = (r: CollectorRun | undefined) => (r && r.status === 0 && r.samples > 0 ? r.collectorCpu / r.samples : NaN);
  const reps = [...new Set(runs.filter((r) => r.config === config).map((r) => r.rep))];
  return reps
    .map((rep) => perSample(runs.find((r) => r.rep === rep && r.config === config && r.tool === tool)) / perSample(runs.find((r) => r.rep === rep && r.config === config && r.tool === 'perf')))
    .filter((x) => Number.isFinite(x));
}

function markdown(collector: CollectorSummary[], runs: CollectorRun[], baselines: BaselineRun[], steady: SteadySummary[], busy: string): string {
  const lines: string[] = [];
  if (collector.length > 0) {
    lines.push('Collector, median (min-max) of the repetitions; CPU per sample = collector CPU (start-up and end included) / samples recorded:');
    lines.push('');
    lines.push('| config | tool | samples | dropped + lost | collector CPU (s) | CPU/sample (µs) | peak RSS (MiB) |');
    lines.push('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
    for (const c of collector) {
      const dl = fmt(c.dropped.median + c.lost.median, 0);
      lines.push(`| ${c.config} | ${c.tool} | ${range(c.samples, 0)} | ${dl} | ${range(c.collectorCpu, 3)} | ${range(c.cpuPerSampleUs)} | ${range(c.maxRssMiB, 1)} |`);
    }
    const plain = baselines.filter((b) => b.name === 'node -e 0');
    const node = spread(plain.map((b) => b.time.maxRssKb / 1024));
    const nodeCpu = spread(plain.map((b) => b.time.user + b.time.sys));
    lines.push('');
    lines.push(`Node itself (\`node -e 0\`): peak RSS ${range(node, 1)} MiB, CPU ${range(nodeCpu, 3)} s.`);
    const withCa = baselines.filter((b) => b.name !== 'node -e 0');
    if (withCa.length > 0) {
      lines.push(`With NODE_EXTRA_CA_CERTS as this environment sets it (every run above goes without): CPU ${range(spread(withCa.map((b) => b.time.user + b.time.sys)), 3)} s.`);
    }
    lines.push('');
    lines.push('| config | tool | CPU/sample tool / perf (medians) | same, per repetition: median (min-max) | RSS: tool - (perf + node) (MiB) |');
    lines.push('| --- | --- | ---: | ---: | ---: |');
    for (const name of [...new Set(collector.map((c) => c.config))]) {
      const p = collector.find((c) => c.config === name && c.tool === 'perf')!;
      for (const tool of tools.filter((x) => x !== 'perf')) {
        const t = collector.find((c) => c.config === name && c.tool === tool)!;
        const paired = pairedRatios(runs, name, tool);
        const perRep = paired.length > 0 ? range(spread(paired)) : 'n/a';
        lines.push(`| ${name} | ${tool} | ${fmt(t.cpuPerSampleUs.median / p.cpuPerSampleUs.median)} | ${perRep} | ${fmt(t.maxRssMiB.median - (p.maxRssMiB.median + node.median), 1)} |`);
      }
    }
  }
  if (steady.length > 0) {
    lines.push('');
    lines.push(`Steady state (${STEADY_WINDOW.length} s window from ${STEADY_WINDOW.from} s of a ${STEADY_SECONDS} s run, ${busy}):`);
    lines.push('');
    lines.push('| tool | idle CPU (ms/s) | sampling CPU (ms/s) | samples/s | CPU/sample (µs) |');
    lines.push('| --- | ---: | ---: | ---: | ---: |');
    for (const s of steady) lines.push(`| ${s.tool} | ${fmt(s.idleMsPerS, 1)} | ${fmt(s.busyMsPerS, 1)} | ${fmt(s.samplesPerS, 0)} | ${fmt(s.perSampleUs)} |`);
  }
  return lines.join('\n');
}

function capture(argv: string[], cwd = REPO): string {
  const r = spawnSync(argv[0], argv.slice(1), { cwd });
  return (r.stdout?.toString() ?? '').trim();
}

/** "10000:15,50000:3": sampling rates (Hz) and run lengths (s). */
function parseCollectorConfigs(text: string): CollectorConfig[] {
  return text.split(',').map((part) => {
    const m = /^(\d+):(\d+(?:\.\d+)?)$/.exec(part.trim());
    if (!m || Number(m[1]) <= 0 || Number(m[2]) <= 0) throw new Error(`--collector: "${part}" is not RATE:SECONDS (like 10000:15)`);
    const freq = Number(m[1]);
    return { name: `${freq / 1000}kHz ${m[2]}s`, rate: { freq }, seconds: Number(m[2]) };
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      reps: { type: 'string', default: '3' },
      collector: { type: 'string', default: '10000:15,50000:3' },
      'skip-collector': { type: 'boolean', default: false },
      steady: { type: 'boolean', default: false },
      floor: { type: 'boolean', default: false },
      baseline: { type: 'string' },
      keep: { type: 'boolean', default: false },
      out: { type: 'string' },
    },
    allowPositionals: false,
  });
  const reps = Number(values.reps);
  if (values.floor) tools.push('floor');
  if (values.baseline) tools.push('baseline');
  const rated = parseCollectorConfigs(values.collector);
  if (!(Number.isInteger(reps) && reps > 0)) throw new Error('--reps: expected a positive integer');
  if (!existsSync(join(REPO, 'dist/bin/pmcstat.cjs'))) throw new Error('dist/bin/pmcstat.cjs is missing: build first (npm run build)');

  const work = mkdtempSync(join(tmpdir(), 'tspmc-bench-sampling-'));
  const build = snapshotBuild(work);
  if (values.baseline) {
    const baseline = pmcstatOf(resolve(values.baseline));
    if (baseline === undefined) throw new Error(`--baseline: ${resolve(values.baseline)} has no pmcstat built (dist/bin or dist/src/cli)`);
    build.baseline = baseline;
  }
  const busy2 = join(work, 'busy2');
  const cc = spawnSync('gcc', ['-O2', '-fno-omit-frame-pointer', '-pthread', '-o', busy2, join(REPO, 'bench/busy2.c')], { stdio: 'inherit' });
  if (cc.status !== 0) throw new Error('gcc failed to build bench/busy2.c');

  const started = new Date();
  const machine = {
    kernel: release(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    node: process.version,
    perf: capture([PERF, '--version']),
    perfEventMaxSampleRate: sysctlNumber('kernel.perf_event_max_sample_rate'),
    perfCpuTimeMaxPercent: sysctlNumber('kernel.perf_cpu_time_max_percent'),
    perfEventMlockKb: sysctlNumber('kernel.perf_event_mlock_kb'),
    loadavgBefore: loadavg(),
  };
  // dist/ is built from the working tree, which may hold uncommitted changes.
  const source = { commit: capture(['git', 'rev-parse', 'HEAD']), uncommitted: capture(['git', 'status', '--short', '--', 'src']).split('\n').filter(Boolean) };
  process.stderr.write(`work dir ${work}; perf_event_max_sample_rate ${machine.perfEventMaxSampleRate}; load ${machine.loadavgBefore.map((x) => x.toFixed(2)).join(' ')}\n`);

  const configs: CollectorConfig[] = [{ name: 'startup', rate: { period: NO_SAMPLES_PERIOD }, seconds: 0.001 }, ...rated];
  const { runs: collectorRuns, baselines } = values['skip-collector'] ? { runs: [], baselines: [] } : benchCollector(build, configs, reps, work, busy2);
  const collector = collectorRuns.length ? summarizeCollector(collectorRuns, configs) : [];

  const top = rated.reduce((a, b) => ((b.rate.freq ?? 0) > (a.rate.freq ?? 0) ? b : a));
  const idle: CollectorConfig = { name: 'idle', rate: { period: NO_SAMPLES_PERIOD }, seconds: STEADY_SECONDS };
  const steadyRuns = values.steady ? await benchSteady(build, [idle, top], reps, work, busy2) : [];
  const steady = steadyRuns.length ? summarizeSteady(steadyRuns, top.name) : [];

  const table = markdown(collector, collectorRuns, baselines, steady, top.name);
  const result = {
    date: started.toISOString(),
    machine: { ...machine, loadavgAfter: loadavg(), perfEventMaxSampleRateAfter: sysctlNumber('kernel.perf_event_max_sample_rate') },
    source,
    settings: { reps, tools, baseline: values.baseline ?? null, collector: values.collector, noSamplesPeriod: NO_SAMPLES_PERIOD, steadySeconds: STEADY_SECONDS, steadyWindow: STEADY_WINDOW, nodeExtraCaCertsUnset: extraCaCerts ?? null },
    command: `npm run bench:sampling -- ${process.argv.slice(2).join(' ')}`.trim(),
    collector: { summary: collector, runs: collectorRuns, baselines },
    steady: { summary: steady, runs: steadyRuns },
    table,
  };
  const outPath = values.out ?? join(REPO, 'bench/results', `sampling-${started.toISOString().slice(0, 16).replace(':', '')}.json`);
  mkdirSync(dirname(outPath), { recursive: true });
  writeFileSync(outPath, JSON.stringify(result, null, 2) + '\n');
  process.stdout.write(table + '\n');
  process.stderr.write(`results in ${outPath}\n`);
  if (!values.keep) rmSync(work, { recursive: true, force: true });
  else process.stderr.write(`kept ${work}\n`);
}

await main();
