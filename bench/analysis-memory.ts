// Analysis memory on the logs of issue 6 (defect 6), made by
// bench/crafted-logs.ts at the sizes: peak RSS, time and exit status
// of pmcstat -R with each output kind, under /usr/bin/time. Raw runs go to
// bench/results/analysis-memory-<date>.json, a markdown table to stdout.
//
//   npm run bench:analysis-memory [-- --keep]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeDeepChains, writeLongPaths, writeManyPids } from './crafted-logs.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PMCSTAT = join(REPO, 'dist/bin/pmcstat.cjs');
const TIME = '/usr/bin/time';
// A run that takes longer has failed the requirement anyway.
const TIMEOUT_MS = 300_000;

const LOGS: { name: string; make: (path: string) => void }[] = [
  { name: 'deep-chains 50000 x 512', make: (p) => writeDeepChains(p, 50_000, 512) },
  { name: 'many-pids 32000', make: (p) => writeManyPids(p, 32_000) },
  { name: 'many-pids 500000', make: (p) => writeManyPids(p, 500_000) },
  { name: 'long-paths 2000 x 65000', make: (p) => writeLongPaths(p, 2000, 65_000) },
];
const OUTPUTS: { name: string; args: (out: string) => string[] }[] = [
  { name: '-G', args: (out) => ['-G', out] },
  { name: '--folded', args: (out) => ['--folded', out] },
  { name: '--stats --json', args: () => ['--stats', '--json'] },
];

interface Run {
  log: string;
  logBytes: number;
  output: string;
  command: string[];
  status: number | null;
  signal: string | null;
  wall: number;
  cpu: number;
  maxRssMib: number;
  stdoutBytes: number;
  outputBytes: number;
  stderrFirstLine: string;
}

function main(): void {
  const { values } = parseArgs({ options: { keep: { type: 'boolean', default: false } } });
  const work = mkdtempSync(join(tmpdir(), 'tspmc-bench-analysis-memory-'));
  const runs: Run[] = [];
  const load = loadavg();
  try {
    for (const l of LOGS) {
      const log = join(work, 'crafted.pmclog');
      l.make(log);
      for (const o of OUTPUTS) {
        const out = join(work, 'out.txt');
        rmSync(out, { force: true });
        const timeFile = join(work, 'time.txt');
        const command = [process.execPath, PMCSTAT, '-R', log, ...o.args(out)];
        const r = spawnSync(TIME, ['-f', '%e %U %S %M', '-o', timeFile, ...command], { cwd: work, timeout: TIMEOUT_MS, maxBuffer: 1 << 30, env: { ...process.env, TSPMC_CACHE_DIR: '' } });
        const t = existsSync(timeFile) ? readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number) : [NaN, NaN, NaN, NaN];
        const run: Run = {
          log: l.name,
          logBytes: statSync(log).size,
          output: o.name,
          command: command.map((a) => a.replace(work, '$WORK')),
          status: r.status,
          signal: r.signal,
          wall: t[0],
          cpu: t[1] + t[2],
          maxRssMib: t[3] / 1024,
          stdoutBytes: r.stdout?.length ?? 0,
          outputBytes: existsSync(out) ? statSync(out).size : 0,
          stderrFirstLine: (r.stderr?.toString() ?? '').split('\n')[0].replaceAll(work, '$WORK').slice(0, 400),
        };
        runs.push(run);
        process.stderr.write(`${l.name.padEnd(26)} ${o.name.padEnd(16)} status ${run.status ?? run.signal} ${run.wall} s peak RSS ${run.maxRssMib.toFixed(0)} MiB ${run.stderrFirstLine.slice(0, 100)}\n`);
      }
      rmSync(log);
    }
  } finally {
    if (values.keep) process.stderr.write(`kept ${work}\n`);
    else rmSync(work, { recursive: true, force: true });
  }
  const lines = ['| log | log size (MB) | output | status | wall (s) | CPU (s) | peak RSS (MiB) | output bytes | stderr |', '| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | --- |'];
  for (const r of runs) {
    const status = r.signal ?? String(r.status);
    lines.push(`| ${r.log} | ${(r.logBytes / 1e6).toFixed(1)} | ${r.output} | ${status} | ${r.wall.toFixed(2)} | ${r.cpu.toFixed(2)} | ${r.maxRssMib.toFixed(0)} | ${Math.max(r.outputBytes, r.stdoutBytes)} | ${r.stderrFirstLine.replace(/\|/g, '/').slice(0, 160)} |`);
  }
  const table = lines.join('\n');
  const stamp = new Date().toISOString().slice(0, 16).replace(':', '');
  const dir = join(REPO, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `analysis-memory-${stamp}.json`);
  const machine = { cpus: cpus().length, cpu: cpus()[0]?.model, kernel: release(), node: process.version, loadBefore: load, loadAfter: loadavg() };
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), machine, runs, summary: table }, null, 1) + '\n');
  process.stdout.write(`${table}\nraw runs: ${file}\n`);
}

main();
