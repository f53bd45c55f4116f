// pmcstat counting, end to end: pmcstat's header and rows on stderr, the
// --json object, the command's exit status, system counting, -t and -w.
// Expected CPU times come from the workload's own getrusage().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildC, pmcstat, pmcstatAsync, stackTraceLines, tempDir } from './cli-fixture.js';
import { onlineCpus } from '../src/os/cpus.js';
import { processesWith } from './cli-signal-fixture.js';
import { hangGuard, machineStealNs } from './proc-fixture.js';

const dir = tempDir('cli-count-');
const burn = buildC(dir, 'sampling-burn.c', 'burn');
/** About half a second of CPU. */
const ITERS = '1000000000';
let runs = 0;

interface Rusage {
  cpuNs: number;
  faults: number;
}

/** A file for the workload's getrusage() line. */
function rusageFile(): string {
  return join(dir, `rusage-${runs++}`);
}

function readRusage(path: string): Rusage {
  const [ns, minflt, majflt] = readFileSync(path, 'utf8').trim().split(' ').map(Number);
  return { cpuNs: ns, faults: minflt + majflt };
}

/**
 * A task-clock count against the process's own CPU time, within `fraction`; over it also by the
 * time the host stole over the run (`steal`), which task-clock counts and the CPU time does not.
 */
function assertCpuTime(count: number, cpu: number, steal: number, fraction: number, what: string): void {
  assert.ok(count - cpu <= fraction * cpu + steal && cpu - count <= fraction * cpu, `${what}: ${count}, the command's CPU time ${cpu} +- ${100 * fraction}% (+ steal ${steal})`);
}

/** `run()` and the host's steal time meanwhile (/proc/stat). */
function withSteal<T>(run: () => T): [T, number] {
  const steal0 = machineStealNs();
  const r = run();
  return [r, machineStealNs() - steal0];
}

const COUNT_LINE = /^\s+\d+(\s+\d+)*$/;

test('-p task-clock -p page-faults: pmcstat\'s header and a row on stderr, task-clock = the command\'s CPU time', () => {
  const ru = rusageFile();
  const [r, steal] = withSteal(() => pmcstat(['-p', 'task-clock', '-p', 'page-faults', '--', burn, ITERS, ru]));
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 2, r.stderr);
  assert.match(lines[0], /^#\s+p\/task-clock\s+p\/page-faults$/);
  assert.match(lines[1], COUNT_LINE);
  const [clock, faults] = lines[1].trim().split(/\s+/).map(Number);
  const usage = readRusage(ru);
  // Counting starts before the exec and stops after the exit, getrusage() runs just before the exit: 5% covers both.
  assertCpuTime(clock, usage.cpuNs, steal, 0.05, 'task-clock');
  // The process's faults since its fork include the ones counted from the exec on.
  assert.ok(faults > 0 && faults <= usage.faults, `page-faults ${faults}, the process had ${usage.faults}`);
});

test('--json: one object with pmcs, elapsed_ns and exit_status', () => {
  const ru = rusageFile();
  const [r, steal] = withSteal(() => pmcstat(['--json', '-p', 'task-clock', '-p', 'page-faults', '--', burn, ITERS, ru]));
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stdout);
  const out = JSON.parse(lines[0]) as { pmcs: { event: string; mode: string; value: number }[]; elapsed_ns: number; exit_status: number };
  assert.deepEqual(
    out.pmcs.map((p) => [p.event, p.mode, typeof p.value]),
    [
      ['task-clock', 'TC', 'number'],
      ['page-faults', 'TC', 'number'],
    ],
  );
  assertCpuTime(out.pmcs[0].value, readRusage(ru).cpuNs, steal, 0.05, 'task-clock');
  assert.equal(out.exit_status, 0);
  // A single-threaded command cannot use more CPU than the time it ran.
  assert.ok(out.elapsed_ns >= out.pmcs[0].value, `elapsed_ns ${out.elapsed_ns} >= task-clock ${out.pmcs[0].value}`);
});

test('the command\'s exit status is pmcstat\'s', () => {
  const json = pmcstat(['--json', '-p', 'task-clock', '--', 'sh', '-c', 'exit 7']);
  assert.equal(json.status, 7, json.stderr);
  assert.equal((JSON.parse(json.stdout) as { exit_status: number }).exit_status, 7);
  const text = pmcstat(['-p', 'task-clock', '--', 'sh', '-c', 'exit 7']);
  assert.equal(text.status, 7, text.stderr);
  assert.match(text.stderr, /^#\s+p\/task-clock\n\s+\d+\n$/);
});

test('-c CPU -s cpu-clock -l 0.5: one system PMC on the first online CPU that counted the half second', (t) => {
  const seconds = 0.5;
  const cpu = onlineCpus()[0];
  const r = pmcstat(['--json', '-c', String(cpu), '-s', 'cpu-clock', '-l', `${seconds}`]);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { pmcs: { event: string; mode: string; cpu: number; value: number }[]; elapsed_ns: number; exit_status?: number };
  assert.equal(out.pmcs.length, 1);
  const [pmc] = out.pmcs;
  assert.deepEqual([pmc.event, pmc.mode, pmc.cpu], ['cpu-clock', 'SC', cpu]);
  // -l ends the measurement once the duration has passed since the PMC started (never before; a busy
  // machine may end it later). cpu-clock on a CPU counts wall time, busy or idle, so it counted at least
  // the duration, and so did pmcstat's elapsed time (1% for the two clocks and timer granularity).
  assert.ok(pmc.value >= seconds * 1e9 * 0.99, `cpu-clock ${pmc.value} ns covers -l ${seconds}`);
  assert.ok(out.elapsed_ns >= seconds * 1e9 * 0.99, `elapsed_ns ${out.elapsed_ns} covers -l ${seconds}`);
  t.diagnostic(`-l ${seconds}: measured for ${(out.elapsed_ns / 1e6).toFixed(1)} ms, cpu-clock ${(pmc.value / 1e6).toFixed(1)} ms`);
  assert.equal(out.exit_status, undefined);
});

test('-l 0.5 -- a command that would sleep for weeks: pmcstat ends the measurement, prints the counts and ends the command', async (t) => {
  // The sleep's length is unique to this run: no other process has it on its command line.
  const weeks = String(3_000_000 + process.pid);
  const run = pmcstatAsync(['--json', '-l', '0.5', '-p', 'task-clock', '--', 'sleep', weeks]);
  // Only -l can end this run before the sleep does (60 s is a hang).
  const r = await hangGuard(run.done, 60_000, 'pmcstat -l 0.5 -- sleep', () => run.child.kill('SIGKILL'));
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { pmcs: { event: string; value: number }[]; elapsed_ns: number; exit_status?: number };
  assert.deepEqual(out.pmcs.map((p) => p.event), ['task-clock']);
  assert.ok(out.pmcs[0].value > 0, 'the command (its exec of sleep) was counted');
  assert.equal(out.exit_status, undefined, 'the command was still running when -l ended the measurement');
  assert.ok(out.elapsed_ns >= 0.5e9 * 0.99, `elapsed_ns ${out.elapsed_ns} covers -l 0.5`);
  assert.deepEqual(processesWith(weeks), [], 'pmcstat ended the command it started');
  t.diagnostic(`measured for ${(out.elapsed_ns / 1e6).toFixed(1)} ms`);
});

test('-t PID counts a running process until it exits', async () => {
  const ru = rusageFile();
  // The target waits for a line before it starts burning, so that all its work happens while attached.
  const target = spawn('sh', ['-c', 'read line; exec "$0" "$@"', burn, ITERS, ru], { stdio: ['pipe', 'ignore', 'ignore'] });
  const targetExit = once(target, 'exit');
  const counter = pmcstatAsync(['-t', `${target.pid}`, '-p', 'task-clock']);
  // pmcstat prints its header once the PMC runs (or exits early: that is checked below).
  await new Promise<void>((resolve) => {
    counter.child.stderr!.on('data', () => resolve());
    counter.child.on('exit', () => resolve());
  });
  const steal0 = machineStealNs();
  target.stdin!.end('go\n');
  const [code] = await targetExit;
  const steal = machineStealNs() - steal0;
  assert.equal(code, 0);
  const r = await counter.done;
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  assert.match(lines[0], /^#\s+p\/task-clock$/);
  assert.equal(lines.length, 2, `a header and the final row:\n${r.stderr}`);
  assert.match(lines[1], COUNT_LINE);
  assertCpuTime(Number(lines[1].trim()), readRusage(ru).cpuNs, steal, 0.05, 'task-clock of the target');
});

test('-w 0.2 prints a row every 0.2 s; the rows add up to the command\'s CPU time', () => {
  const ru = rusageFile();
  const [r, steal] = withSteal(() => pmcstat(['-w', '0.2', '-p', 'task-clock', '--', burn, '2000000000', ru]));
  assert.equal(r.status, 0, r.stderr);
  const [header, ...rows] = r.stderr.trimEnd().split('\n');
  assert.match(header, /^#\s+p\/task-clock$/);
  for (const row of rows) assert.match(row, COUNT_LINE);
  assert.ok(rows.length >= 3, `several rows for a command of about a second:\n${r.stderr}`);
  // Without -C each row is the count since the previous one.
  const total = rows.reduce((s, row) => s + Number(row.trim()), 0);
  assertCpuTime(total, readRusage(ru).cpuNs, steal, 0.05, 'sum of the rows');
});

test('-o FILE --json: the JSON object goes to FILE, nothing to stdout', () => {
  const out = join(dir, 'counts.json');
  const r = pmcstat(['-o', out, '--json', '-p', 'task-clock', '--', 'sh', '-c', 'exit 5']);
  assert.equal(r.status, 5, r.stderr);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, '');
  const json = JSON.parse(readFileSync(out, 'utf8')) as { pmcs: { event: string; value: number }[]; exit_status: number };
  assert.equal(json.pmcs[0].event, 'task-clock');
  assert.ok(json.pmcs[0].value > 0);
  assert.equal(json.exit_status, 5);
});

test('-o FILE that fails mid-run (its reader goes away): one error, the remaining rows on stderr, the command measured to its end', async () => {
  const fifo = join(dir, 'rows.fifo');
  execFileSync('mkfifo', [fifo]);
  const ru = rusageFile();
  const counter = pmcstatAsync(['-o', fifo, '-w', '0.1', '-p', 'task-clock', '--', burn, '2000000000', ru]);
  // Read the header, then go away: the next row meets a pipe without a reader (EPIPE).
  const reader = createReadStream(fifo, { encoding: 'utf8' });
  let got = '';
  await new Promise<void>((resolve) => {
    reader.on('data', (d) => {
      got += d;
      if (got.includes('\n')) {
        reader.destroy();
        resolve();
      }
    });
  });
  assert.match(got.split('\n')[0], /^#\s+p\/task-clock$/);
  const r = await counter.done;
  assert.equal(r.status, 1, r.stderr);
  assert.deepEqual(stackTraceLines(r.stderr), []);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('pmcstat: ERROR'));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0], new RegExp(`-o ${fifo}: cannot write: .*\\(EPIPE\\); the counts follow on stderr`));
  const rows = r.stderr.split('\n').filter((l) => COUNT_LINE.test(l));
  assert.ok(rows.length >= 1, `rows after the error:\n${r.stderr}`);
  // The command ran to its end and wrote its usage: it was measured, not abandoned.
  assert.ok(readRusage(ru).cpuNs > 0);
});
