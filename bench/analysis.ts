// Analysis benchmark (issue 10, target 3): pmcstat -R against perf report on
// the same samples. One recording per size with perf record -g of
// bench/busy2.c (two spinning threads through outer -> middle -> inner ->
// leaf_*), converted to a pmclog by bench/perf-to-pmclog.ts, so that both
// tools read exactly the same call chains. Then, in rounds whose order
// alternates, each of:
//   tspmc -G          node pmcstat.js -R LOG -G OUT
//   tspmc --folded    node pmcstat.js -R LOG --folded OUT
//   tspmc --flamegraph  node pmcstat.js -R LOG --flamegraph OUT (the visual issue's HTML page)
//   perf report       perf report --stdio -i DATA > OUT
//   perf --no-children  perf report --stdio --no-children -i DATA > OUT
//   tspmc -G, no kallsyms cache   the same with /proc/kallsyms read and parsed (TSPMC_CACHE_DIR=)
//   tspmc read only   the bare log read (visitLog with an empty visitor): the floor
//   node startup      node -e 0
// tspmc runs with its kallsyms cache in the work directory, made before the
// rounds, as perf report reads the copy perf record left in ~/.debug.
// under /usr/bin/time (wall, user, sys, max RSS). Raw runs go to
// bench/results/analysis-<date and time>.json, a markdown summary to stdout: medians,
// [min-max] ranges, and the ratios of tspmc's medians to perf's.
//
//   npm run bench:analysis [-- --samples 300000,3000000 --reps 5 --keep]
//   node dist/bench/analysis.js --phase read LOG     (the read-only floor, used by the runs)
import { spawnSync } from 'node:child_process';
import { closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from './median.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PERF = '/usr/bin/perf';
const TIME = '/usr/bin/time';
// perf record's rate: the VM gives at most ~16-25k cpu-clock samples per CPU-second whatever is asked.
const RECORD_FREQ = 50_000;

interface Times {
  wall: number;
  user: number;
  sys: number;
  maxRssKb: number;
}

interface Run {
  size: string;
  variant: string;
  rep: number;
  command: string[];
  status: number;
  time: Times;
  outputBytes: number;
}

interface Recording {
  size: string;
  samples: number;
  perfData: string;
  perfDataBytes: number;
  pmclog: string;
  pmclogBytes: number;
  recordSeconds: number;
}

/** A private copy of the compiled tree: other engineers rebuild dist/ while this runs. */
function snapshotBuild(work: string): { pmcstat: string; self: string; convert: string } {
  const root = join(work, 'tspmc');
  for (const d of ['src', 'bin', 'bench']) cpSync(join(REPO, 'dist', d), join(root, 'dist', d), { recursive: true });
  writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
  symlinkSync(join(REPO, 'node_modules'), join(root, 'node_modules'));
  return { pmcstat: join(root, 'dist/bin/pmcstat.cjs'), self: join(root, 'dist/bench/analysis.js'), convert: join(root, 'dist/bench/perf-to-pmclog.js') };
}

/** Runs argv under /usr/bin/time; stdout to `stdoutPath` (or discarded). */
function timed(argv: string[], work: string, stdoutPath?: string, env?: NodeJS.ProcessEnv): { status: number; time: Times; stderr: string } {
  const timeFile = join(work, 'time.txt');
  const out = stdoutPath ? openSync(stdoutPath, 'w') : 'ignore';
  try {
    const r = spawnSync(TIME, ['-f', '%e %U %S %M', '-o', timeFile, ...argv], { cwd: work, stdio: ['ignore', out, 'pipe'], maxBuffer: 64 << 20, env: { ...process.env, TSPMC_CACHE_DIR: join(work, 'cache'), ...env } });
    const f = readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
    return { status: r.status ?? -1, time: { wall: f[0], user: f[1], sys: f[2], maxRssKb: f[3] }, stderr: r.stderr.toString() };
  } finally {
    if (typeof out === 'number') closeSync(out);
  }
}

function perfSamples(data: string, work: string): number {
  const r = spawnSync(PERF, ['report', '--stats', '-i', data], { cwd: work, maxBuffer: 64 << 20 });
  const text = r.stdout.toString();
  return Number(/^\s*SAMPLE events:\s+(\d+)/m.exec(text.slice(text.indexOf('cpu-clock stats:')))?.[1] ?? NaN);
}

/**
 * perf record of busy2 for about `target` samples (niced: the machine is
 * shared), re-recorded with a corrected length when more than 10% off; then
 * converted to a pmclog.
 */
function record(size: string, target: number, work: string, busy2: string, convert: string): Recording {
  const perfData = join(work, `${size}.perf.data`);
  const pmclog = join(work, `${size}.pmclog`);
  let seconds = Math.max(1, target / 30_000);
  let samples = 0;
  for (let attempt = 0; attempt < 4; attempt++) {
    rmSync(perfData, { force: true });
    const r = spawnSync('nice', ['-n', '10', PERF, 'record', '-e', 'cpu-clock', '-F', String(RECORD_FREQ), '-g', '-o', perfData, '--', busy2, String(seconds), join(work, 'rusage.json')], { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) throw new Error(`perf record failed: ${r.stderr}`);
    samples = perfSamples(perfData, work);
    process.stderr.write(`[record] ${size}: ${seconds.toFixed(1)} s gave ${samples} samples\n`);
    if (Math.abs(samples - target) <= target * 0.1) break;
    seconds = Math.max(1, (seconds * target) / samples);
  }
  const c = spawnSync(process.execPath, [convert, perfData, pmclog], { cwd: work, encoding: 'utf8' });
  if (c.status !== 0) throw new Error(`perf-to-pmclog failed: ${c.stderr}`);
  process.stderr.write(`[record] ${size}: converted: ${c.stdout.trim()}\n`);
  return { size, samples, perfData, perfDataBytes: statSync(perfData).size, pmclog, pmclogBytes: statSync(pmclog).size, recordSeconds: seconds };
}

interface Variant {
  name: string;
  argv: string[];
  stdout: boolean;
  env?: NodeJS.ProcessEnv;
}

function variants(build: { pmcstat: string; self: string }, rec: Recording, out: string): Variant[] {
  return [
    { name: 'tspmc -G', argv: [process.execPath, build.pmcstat, '-R', rec.pmclog, '-G', out], stdout: false },
    { name: 'tspmc -G, no kallsyms cache', argv: [process.execPath, build.pmcstat, '-R', rec.pmclog, '-G', out], stdout: false, env: { TSPMC_CACHE_DIR: '' } },
    { name: 'tspmc --folded', argv: [process.execPath, build.pmcstat, '-R', rec.pmclog, '--folded', out], stdout: false },
    { name: 'tspmc --flamegraph', argv: [process.execPath, build.pmcstat, '-R', rec.pmclog, '--flamegraph', out], stdout: false },
    { name: 'perf report', argv: [PERF, 'report', '--stdio', '-i', rec.perfData], stdout: true },
    { name: 'perf report --no-children', argv: [PERF, 'report', '--stdio', '--no-children', '-i', rec.perfData], stdout: true },
    { name: 'tspmc read only', argv: [process.execPath, build.self, '--phase', 'read', rec.pmclog], stdout: false },
    { name: 'node startup', argv: [process.execPath, '-e', '0'], stdout: false },
  ];
}

function bench(build: { pmcstat: string; self: string }, recs: Recording[], reps: number, work: string): Run[] {
  const out = join(work, 'out.txt');
  const runs: Run[] = [];
  for (let rep = 0; rep < reps; rep++) {
    for (const rec of recs) {
      const vs = variants(build, rec, out);
      for (const v of rep % 2 === 0 ? vs : vs.reverse()) {
        rmSync(out, { force: true });
        const { status, time, stderr } = timed(v.argv, work, v.stdout ? out : undefined, v.env);
        runs.push({ size: rec.size, variant: v.name, rep, command: v.argv, status, time, outputBytes: existsSync(out) ? statSync(out).size : 0 });
        process.stderr.write(`[run] ${rec.size} rep ${rep} ${v.name.padEnd(26)} status ${status} wall ${time.wall} cpu ${(time.user + time.sys).toFixed(2)} rss ${Math.round(time.maxRssKb / 1024)} MiB\n`);
        if (status !== 0) process.stderr.write(`    ${stderr.trim().split('\n').slice(-5).join('\n    ')}\n`);
      }
    }
  }
  return runs;
}

const fmt = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

function summary(recs: Recording[], runs: Run[]): string {
  const lines: string[] = [];
  for (const rec of recs) {
    const ok = (v: string): Run[] => runs.filter((r) => r.size === rec.size && r.variant === v && r.status === 0);
    const stat = (v: string, f: (r: Run) => number): { med: number; min: number; max: number } => {
      const xs = ok(v).map(f);
      return { med: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
    };
    const wall = (r: Run): number => r.time.wall;
    const cpu = (r: Run): number => r.time.user + r.time.sys;
    lines.push(`${rec.size}: ${rec.samples} samples (perf.data ${(rec.perfDataBytes / 1048576).toFixed(0)} MiB, pmclog ${(rec.pmclogBytes / 1048576).toFixed(0)} MiB)`, '');
    lines.push('| command | wall (s) median [range] | CPU (s) median [range] | max RSS (MiB) | output bytes |', '| --- | ---: | ---: | ---: | ---: |');
    for (const v of [...new Set(runs.filter((r) => r.size === rec.size).map((r) => r.variant))]) {
      const w = stat(v, wall);
      const c = stat(v, cpu);
      const rss = stat(v, (r) => r.time.maxRssKb / 1024);
      lines.push(`| ${v} | ${fmt(w.med)} [${fmt(w.min)}-${fmt(w.max)}] | ${fmt(c.med)} [${fmt(c.min)}-${fmt(c.max)}] | ${fmt(rss.med, 0)} | ${median(ok(v).map((r) => r.outputBytes))} |`);
    }
    lines.push('');
    for (const t of ['tspmc -G', 'tspmc --folded', 'tspmc --flamegraph', 'tspmc -G, no kallsyms cache', 'tspmc read only']) {
      for (const p of ['perf report', 'perf report --no-children']) {
        lines.push(`- ${t} / ${p}: wall ${fmt(stat(t, wall).med / stat(p, wall).med)}, CPU ${fmt(stat(t, cpu).med / stat(p, cpu).med)}`);
      }
    }
    lines.push('');
  }
  return lines.join('\n');
}

/** --phase read LOG: the bare log read, every record given to an empty visitor. */
async function readPhase(log: string): Promise<void> {
  const { visitLog } = await import('../src/log/log-reader.js');
  let n = 0;
  await visitLog(log, {
    record: () => n++,
    callchain: () => n++,
  });
  process.stdout.write(`${n}\n`);
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      samples: { type: 'string', default: '300000,3000000' },
      reps: { type: 'string', default: '5' },
      keep: { type: 'boolean', default: false },
      phase: { type: 'string' },
    },
  });
  if (values.phase === 'read') return readPhase(positionals[0]);
  if (values.phase !== undefined) throw new Error(`--phase ${values.phase}: expected read`);
  const sizes = values.samples.split(',').map(Number);
  const reps = Number(values.reps);
  if (sizes.some((n) => !Number.isInteger(n) || n < 1000) || !Number.isInteger(reps) || reps < 1) throw new Error('--samples N[,N...] (each >= 1000) and --reps N (>= 1)');
  for (const tool of [PERF, TIME]) if (!existsSync(tool)) throw new Error(`${tool} is needed`);

  const work = mkdtempSync(join(tmpdir(), 'tspmc-bench-analysis-'));
  try {
    const build = snapshotBuild(work);
    const busy2 = join(work, 'busy2');
    const cc = spawnSync('gcc', ['-O2', '-fno-omit-frame-pointer', '-pthread', '-o', busy2, join(REPO, 'bench/busy2.c')], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`gcc: ${cc.stderr}`);
    const load = loadavg();
    const recs = sizes.map((n) => record(n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`, n, work, busy2, build.convert));
    // tspmc's kallsyms cache, as perf record left perf's copy.
    timed([process.execPath, build.pmcstat, '-R', recs[0].pmclog, '--stats'], work);
    const runs = bench(build, recs, reps, work);
    const stamp = new Date().toISOString().slice(0, 16).replace(':', '');
    const dir = join(REPO, 'bench/results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `analysis-${stamp}.json`);
    const table = summary(recs, runs);
    const machine = { cpus: cpus().length, cpu: cpus()[0]?.model, kernel: release(), node: process.version, perf: spawnSync(PERF, ['--version'], { encoding: 'utf8' }).stdout.trim(), loadBefore: load, loadAfter: loadavg() };
    writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), settings: { sizes, reps, recordFreq: RECORD_FREQ }, machine, recordings: recs, runs, summary: table }, null, 1) + '\n');
    process.stdout.write(`${table}\nraw runs: ${file}\n`);
  } finally {
    if (values.keep) process.stderr.write(`kept ${work}\n`);
    else rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
