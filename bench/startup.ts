// Start-up cost: the CPU time (user + system, from wait4's rusage of the
// command and what it waited for) of a short tspmc run against the same
// perf run, and of Node doing nothing, loading 100 empty modules, loading
// koffi, and loading tspmc's module graph, which together make the floor
// under tspmc's start-up.
// Every command runs once per round, in a rotating order, for several
// rounds; medians and ranges are printed and the raw runs written to
// bench/results/startup-<date>T<hhmm>.json.
// --baseline DIR adds DIR's pmcstat (a built export of main, say): an A/B of
// two trees' sampling start in the same rounds.
// Run: npm run bench:startup [-- --rounds N --out FILE --baseline DIR]
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { pmcstatOf } from './built-tree.js';
import { median } from './median.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DIST = path.join(ROOT, 'dist');
const PMCSTAT = path.join(DIST, 'bin/pmcstat.cjs');
const RUSAGE_SOURCE = path.join(ROOT, 'bench/rusage_of.c');
const RESULTS = path.join(ROOT, 'bench/results');
/** A sampling period no run reaches: the sampler starts, logs its side-band, and takes no sample. */
const NEVER = '1000000000000';

interface Case {
  name: string;
  argv: string[];
  /** Set in this case's environment only. */
  env?: Record<string, string>;
}

/**
 * NODE_EXTRA_CA_CERTS, when the environment sets it, makes every Node
 * process parse that certificate bundle as it starts (about 30 ms of CPU
 * for Debian's), a cost of the machine's set-up that no tool here needs:
 * the commands run without it, and one case shows what it adds.
 */
const extraCaCerts = process.env.NODE_EXTRA_CA_CERTS;
delete process.env.NODE_EXTRA_CA_CERTS;

interface Run {
  userUs: number;
  sysUs: number;
  maxrssKb: number;
  wallUs: number;
}

function cpuModel(): string {
  return /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
}

/** A chain of `n` empty ES modules, each importing the next: what one more module costs to load. */
function writeModuleChain(dir: string, n: number): string {
  for (let i = 1; i <= n; i++) {
    writeFileSync(path.join(dir, `m${i}.mjs`), `${i < n ? `import './m${i + 1}.mjs';\n` : ''}export const x${i} = ${i};\n`);
  }
  return path.join(dir, 'm1.mjs');
}

function cases(dir: string, baseline: string | undefined): Case[] {
  const node = process.execPath;
  const importing = (what: string): string[] => [node, '--input-type=module', '-e', `await import(${JSON.stringify(what)})`];
  return [
    { name: 'node -e 0', argv: [node, '-e', '0'] },
    ...(extraCaCerts === undefined ? [] : [{ name: 'node -e 0, NODE_EXTRA_CA_CERTS set', argv: [node, '-e', '0'], env: { NODE_EXTRA_CA_CERTS: extraCaCerts } }]),
    { name: 'node: import 100 empty ES modules', argv: importing(writeModuleChain(dir, 100)) },
    { name: 'node: load koffi', argv: importing(path.join(ROOT, 'node_modules/koffi/index.js')) },
    { name: 'node: import md/native (koffi, libc bound)', argv: importing(path.join(DIST, 'src/md/native.js')) },
    { name: 'node: import lib (module, md, log)', argv: importing(path.join(DIST, 'src/lib/index.js')) },
    { name: 'node: import cli/run-measurement (all pmcstat -p needs)', argv: importing(path.join(DIST, 'src/cli/run-measurement.js')) },
    { name: 'node: import bin/chunks/libpmc (lib, module, md, log: bundled)', argv: importing(path.join(DIST, 'bin/chunks/libpmc.cjs')) },
    { name: 'pmcstat -p task-clock -- true', argv: [node, PMCSTAT, '-p', 'task-clock', '--', 'true'] },
    { name: 'perf stat -e task-clock true', argv: ['perf', 'stat', '-e', 'task-clock', 'true'] },
    { name: 'pmcstat -n 1e12 -P cpu-clock -O log -- true', argv: [node, PMCSTAT, '-n', NEVER, '-P', 'cpu-clock', '-O', path.join(dir, 'startup.pmclog'), '--', 'true'] },
    // pmcstat's code cache (cli/code-cache.ts) off: what a run costs without the code an earlier run compiled.
    { name: 'pmcstat -n 1e12 -P cpu-clock -O log -- true, no code cache', argv: [node, PMCSTAT, '-n', NEVER, '-P', 'cpu-clock', '-O', path.join(dir, 'startup.nocache.pmclog'), '--', 'true'], env: { TSPMC_CACHE_DIR: '' } },
    { name: 'perf record -c 1e12 -g -e cpu-clock -- true', argv: ['perf', 'record', '-q', '-c', NEVER, '-g', '-e', 'cpu-clock', '-o', path.join(dir, 'startup.perf.data'), '--', 'true'] },
    ...(baseline === undefined ? [] : [{ name: 'baseline pmcstat -n 1e12 -P cpu-clock -O log -- true', argv: [node, baseline, '-n', NEVER, '-P', 'cpu-clock', '-O', path.join(dir, 'startup.base.pmclog'), '--', 'true'] }]),
  ];
}

/** Pairs whose ratio is the result: tspmc's run against perf's. */
const PAIRS: [string, string][] = [
  ['pmcstat -p task-clock -- true', 'perf stat -e task-clock true'],
  ['pmcstat -n 1e12 -P cpu-clock -O log -- true', 'perf record -c 1e12 -g -e cpu-clock -- true'],
  ['baseline pmcstat -n 1e12 -P cpu-clock -O log -- true', 'perf record -c 1e12 -g -e cpu-clock -- true'],
  ['pmcstat -n 1e12 -P cpu-clock -O log -- true', 'baseline pmcstat -n 1e12 -P cpu-clock -O log -- true'],
  ['pmcstat -n 1e12 -P cpu-clock -O log -- true', 'pmcstat -n 1e12 -P cpu-clock -O log -- true, no code cache'],
];

function runOnce(rusageOf: string, out: string, c: Case, env: NodeJS.ProcessEnv): Run {
  execFileSync(rusageOf, [out, ...c.argv], { stdio: 'ignore', env: { ...env, ...c.env } });
  const [userUs, sysUs, maxrssKb, wallUs, status] = readFileSync(out, 'utf8').trim().split(' ').map(Number);
  if (status !== 0) throw new Error(`${c.name}: exit status ${status} (${c.argv.join(' ')})`);
  return { userUs: userUs!, sysUs: sysUs!, maxrssKb: maxrssKb!, wallUs: wallUs! };
}

function main(): void {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '15' }, out: { type: 'string' }, baseline: { type: 'string' } } });
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds takes a positive integer (got ${values.rounds})`);
  const baseline = values.baseline === undefined ? undefined : pmcstatOf(path.resolve(values.baseline));
  if (values.baseline !== undefined && baseline === undefined) throw new Error(`--baseline: ${values.baseline} has no pmcstat built (dist/bin or dist/src/cli)`);
  const dir = mkdtempSync(path.join(tmpdir(), 'tspmc-startup-'));
  try {
    const rusageOf = path.join(dir, 'rusage_of');
    execFileSync('gcc', ['-O2', '-o', rusageOf, RUSAGE_SOURCE]);
    // The module's state stays in this run's directory, and no pmcd is asked.
    // pmcstat's code cache (cli/code-cache.ts) too, filled by the warm-up run below.
    const env = { ...process.env, TSPMC_ADMIN_STATE: path.join(dir, 'admin.json'), TSPMC_LOCAL: '1', TSPMC_CACHE_DIR: path.join(dir, 'cache') };
    const all = cases(dir, baseline);
    const runs = all.map(() => [] as Run[]);
    const startLoad = loadavg();
    console.log(`start-up CPU (user + sys of the command and its children): ${rounds} rounds, rotating order`);
    console.log(`${cpus().length} CPUs (${cpuModel()}), Linux ${release()}, Node ${process.version}, load average ${startLoad[0].toFixed(2)} at the start`);
    for (const c of all) runOnce(rusageOf, path.join(dir, 'ru'), c, env); // warm the page cache and pmcstat's code cache
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < all.length; k++) {
        const i = (k + r) % all.length;
        runs[i]!.push(runOnce(rusageOf, path.join(dir, 'ru'), all[i]!, env));
      }
    }
    const cpuMs = (run: Run) => (run.userUs + run.sysUs) / 1000;
    const range = (xs: number[]) => `${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)}`;
    console.log('\n| command | CPU ms (median) | range | user ms | sys ms | max RSS MiB | wall ms |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const [i, c] of all.entries()) {
      const rs = runs[i]!;
      console.log(
        `| ${c.name} | ${median(rs.map(cpuMs)).toFixed(1)} | ${range(rs.map(cpuMs))} | ${median(rs.map((x) => x.userUs / 1000)).toFixed(1)} | ${median(rs.map((x) => x.sysUs / 1000)).toFixed(1)} | ${(median(rs.map((x) => x.maxrssKb)) / 1024).toFixed(1)} | ${median(rs.map((x) => x.wallUs / 1000)).toFixed(1)} |`,
      );
    }
    console.log('\n| tspmc vs perf | CPU ratio (medians) | CPU ratio per round (median, range) | CPU difference (ms, medians) |');
    console.log('| --- | ---: | ---: | ---: |');
    const byName = new Map(all.map((c, i) => [c.name, runs[i]!]));
    for (const [ours, theirs] of PAIRS.filter((pair) => pair.every((name) => byName.has(name)))) {
      const a = byName.get(ours)!.map(cpuMs);
      const b = byName.get(theirs)!.map(cpuMs);
      const ratios = a.map((v, i) => v / b[i]!);
      console.log(`| ${ours} / ${theirs} | ${(median(a) / median(b)).toFixed(2)} | ${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}) | ${(median(a) - median(b)).toFixed(1)} |`);
    }
    const out = values.out ?? path.join(RESULTS, `startup-${new Date().toISOString().slice(0, 16).replace(':', '')}.json`);
    mkdirSync(path.dirname(out), { recursive: true });
    const machine = { cpus: cpus().length, model: cpuModel(), kernel: release(), node: process.version };
    const raw = all.map((c, i) => ({ name: c.name, argv: c.argv.map((a) => a.replace(dir, '<tmp>').replace(ROOT, '<root>/')), env: c.env, runs: runs[i] }));
    writeFileSync(out, `${JSON.stringify({ command: `npm run bench:startup -- --rounds ${rounds}${values.baseline === undefined ? '' : ` --baseline ${values.baseline}`}`, date: new Date().toISOString(), machine, loadavg: { start: startLoad, end: loadavg() }, rounds, nodeExtraCaCertsUnset: extraCaCerts ?? null, cases: raw }, null, 1)}\n`);
    console.log(`\nraw results: ${path.relative(process.cwd(), out)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main();
