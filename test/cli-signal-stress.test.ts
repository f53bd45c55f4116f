// Stop signals at random moments of pmcstat's start-up and measurement:
// INT, TERM or HUP, sometimes followed by a second one. Every run must leave
// no process behind (neither the command nor its launcher), print its final
// counts, and leave a log that reads to the end and ends with CLOSELOG.
// Two runs at a time keep the test short.
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { readLog } from '../src/log/log-reader.js';
import { LogType } from '../src/log/records.js';
import { buildC, pmcstatAsync, tempDir } from './cli-fixture.js';
import { ended, processesWith, readReport, reportPath, waitFor } from './cli-signal-fixture.js';

const dir = tempDir('cli-signal-stress-');
const cleanupCmd = buildC(dir, 'signal-cleanup.c', 'signal-cleanup');
const env = { TSPMC_ADMIN_STATE: join(dir, 'admin.json') };
const RUNS = 50;
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const COUNT_LINE = /^\s+\d+$/;

/** Whether the process has a handler for `signal` (SigCgt in /proc/PID/status; Node itself catches INT and TERM, not HUP). */
function catches(pid: number, signal: NodeJS.Signals): boolean {
  try {
    const mask = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1];
    return mask !== undefined && (BigInt(`0x${mask}`) & (1n << BigInt(constants.signals[signal] - 1))) !== 0n;
  } catch {
    return false;
  }
}

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function lastRecordType(log: string): Promise<LogType | undefined> {
  let last: LogType | undefined;
  for await (const rec of readLog(log)) last = rec.type;
  return last;
}

interface Outcome {
  phase: 'before Node ran pmcstat' | 'start-up' | 'measurement' | 'second signal';
  latencyMs?: number;
}

async function oneRun(i: number): Promise<Outcome> {
  const log = join(dir, `run-${i}.pmclog`);
  const report = reportPath(dir);
  const first = pick(SIGNALS);
  const second = Math.random() < 1 / 3 ? pick(SIGNALS) : undefined;
  // A quarter of the signals fall anywhere from the spawn on (Node's own start-up included);
  // the rest after pmcstat's handlers exist, in its start-up or its measurement.
  const fromSpawn = i % 4 === 0;
  const delayMs = Math.random() * (fromSpawn ? 500 : 700);
  // The cleanup is 50 ms of CPU; a grace that busy CPUs cannot use up (the second signal kills at once).
  const run = pmcstatAsync(['-O', log, '--grace', '60', '-p', 'task-clock', '-n', '1000000', '-P', 'cpu-clock', '--', cleanupCmd, '100', '50', '0', report], { env });
  let exitedAt = 0n;
  run.child.on('exit', () => (exitedAt = process.hrtime.bigint()));
  try {
    if (!fromSpawn) await waitFor('stop signal handlers', () => catches(run.child.pid!, 'SIGHUP') || run.child.exitCode !== null);
    await sleep(delayMs);
    run.child.kill(first);
    if (second) {
      await sleep(Math.random() * 100);
      run.child.kill(second);
    }
    const guard = setTimeout(() => run.child.kill('SIGKILL'), 120_000);
    const r = await ended(run);
    clearTimeout(guard);
    assert.ok(r.signal !== 'SIGKILL', `hang guard: run ${i} (${first}${second ? ` ${second}` : ''} at ${delayMs.toFixed(0)} ms) did not end`);
    const what = `run ${i}: ${first}${second ? ` then ${second}` : ''} at ${delayMs.toFixed(0)} ms${fromSpawn ? '' : ' after the handlers'}: status ${r.status} signal ${r.signal}\n${r.stderr}`;
    // Nothing of pmcstat's is left: not the command, not its launcher.
    await sleep(0);
    assert.deepEqual(processesWith(report), [], what);
    if (r.signal !== null) {
      // Node had not run pmcstat's first line yet: nothing was started or written.
      // (Signals pending together are delivered lowest number first.)
      assert.ok(r.signal === first || r.signal === second, what);
      assert.ok(!existsSync(log) || statSync(log).size === 0, what);
      return { phase: 'before Node ran pmcstat' };
    }
    const rows = r.stderr.split('\n').filter((l) => COUNT_LINE.test(l));
    assert.equal(rows.length, 1, `the final counts: ${what}`);
    assert.equal(await lastRecordType(log), LogType.CLOSELOG, what);
    const signo = (s: NodeJS.Signals): number => (constants.signals as Record<string, number>)[s];
    if (!existsSync(`${report}.started`)) {
      // The command ran but had not written REPORT.started yet (exec and
      // start-up take a while on busy CPUs) when the second signal made
      // pmcstat kill it: pmcstat says this only of a command it had resumed.
      if (second && /^pmcstat: the command is still running at SIG[A-Z]+: killed it/m.test(r.stderr)) {
        assert.equal(r.status, 128 + 9, what);
        return { phase: 'second signal' };
      }
      // The command never ran: pmcstat's status is the signal's (the second one's, if both were pending together).
      assert.ok([first, second].some((sig) => sig !== undefined && r.status === 128 + signo(sig)), what);
      return { phase: 'start-up' };
    }
    if (!existsSync(report)) {
      // The second signal came while the command cleaned up.
      assert.ok(second, what);
      assert.equal(r.status, 128 + 9, what);
      return { phase: 'second signal' };
    }
    assert.equal(r.status, 0, what);
    return { phase: 'measurement', latencyMs: Number(exitedAt - readReport(report).exitMonotonicNs) / 1e6 };
  } finally {
    run.child.kill('SIGKILL');
  }
}

// A pmcstat that fails this test leaves its commands: they carry this directory in their command lines.
after(() => {
  for (const line of processesWith(dir)) process.kill(Number(line.split(':')[0]), 'SIGKILL');
});

test(`${RUNS} runs with stop signals at random moments: nothing left behind, counts printed, log closed`, { timeout: 300_000 }, async (t: TestContext) => {
  const outcomes: Outcome[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < RUNS) outcomes.push(await oneRun(next++));
  };
  await Promise.all([worker(), worker()]);
  await waitFor('all runs', () => outcomes.length === RUNS);
  const by = new Map<string, number>();
  for (const o of outcomes) by.set(o.phase, (by.get(o.phase) ?? 0) + 1);
  t.diagnostic(`signalled in: ${[...by].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  const latencies = outcomes.flatMap((o) => (o.latencyMs === undefined ? [] : [o.latencyMs])).sort((a, b) => a - b);
  if (latencies.length > 0) {
    t.diagnostic(`pmcstat exit after the command's exit: median ${latencies[latencies.length >> 1].toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms`);
  }
});
