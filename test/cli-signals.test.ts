// Stop signals end pmcstat cleanly: INT, TERM and HUP alike pass the signal
// to the command, measure it while it cleans up, then print the final counts,
// close the log (CLOSELOG) and exit with the command's status; a command that
// does not end in the grace period, or a second signal, gets SIGKILL; a signal
// during start-up leaves no launcher waiting; pmcstat killed with SIGKILL
// takes its command with it. The command is test/fixtures/signal-cleanup.c,
// which reports its CPU time and the moment it exited.
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { buildC, logStats, logText, pmcstatAsync, tempDir, type ToolRun } from './cli-fixture.js';
import { childrenOf, ended, freezeAtLaunch, processesWith, readReport, reportPath, stateOf, waitFor } from './cli-signal-fixture.js';

const dir = tempDir('cli-signals-');
const cleanupCmd = buildC(dir, 'signal-cleanup.c', 'signal-cleanup');
const env = { TSPMC_ADMIN_STATE: join(dir, 'admin.json') };
/** Every pmcstat started here is killed when the file's tests end, whatever happened. */
const hangGuard: { kill(s: NodeJS.Signals): boolean }[] = [];
after(() => {
  hangGuard.forEach((c) => c.kill('SIGKILL'));
  // A pmcstat that fails these tests leaves its commands: they carry this directory in their command lines.
  for (const line of processesWith(dir)) process.kill(Number(line.split(':')[0]), 'SIGKILL');
});

const COUNT_LINE = /^\s+\d+(\s+\d+)*$/;
/**
 * --grace for commands that clean up (300 ms of CPU): on busy CPUs that can take
 * longer than the default 5 s of wall time, and the command would be killed.
 */
const GRACE_S = 60;
const signo = (s: NodeJS.Signals): number => (constants.signals as Record<string, number>)[s];

function assertNear(actual: number, expected: number, fraction: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= fraction * expected, `${what}: ${actual}, expected ${expected} +- ${100 * fraction}%`);
}

/** Counting header and final row on stderr; the row's first value. */
function finalCount(r: ToolRun): number {
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('#') || COUNT_LINE.test(l));
  assert.match(lines[0] ?? '', /^#\s+p\/task-clock/, `header in:\n${r.stderr}`);
  assert.equal(lines.length, 2, `a header and the final row:\n${r.stderr}`);
  return Number(lines[1].trim().split(/\s+/)[0]);
}

/** pmcstat on the cleanup command; resolves once the command runs. */
async function startMeasured(args: string[], burnMs: number, cleanupMs: number, code: number, ignore = false) {
  const report = reportPath(dir);
  const run = pmcstatAsync([...args, '--', cleanupCmd, `${burnMs}`, `${cleanupMs}`, `${code}`, report, ...(ignore ? ['ignore'] : [])], { env });
  hangGuard.push(run.child);
  let exitedAt = 0n;
  run.child.on('exit', () => (exitedAt = process.hrtime.bigint()));
  await Promise.race([
    waitFor('command start', () => existsSync(`${report}.started`)),
    run.done.then((r) => assert.fail(`pmcstat ended before the command ran: ${r.status} ${r.signal}\n${r.stderr}`)),
  ]);
  return { ...run, report, exitedAt: () => exitedAt };
}

for (const sig of ['SIGTERM', 'SIGHUP', 'SIGINT'] as const) {
  test(`${sig} while counting: the command cleans up measured, final counts, its exit status, nothing left`, { timeout: 120_000 }, async (t: TestContext) => {
    const run = await startMeasured(['--grace', String(GRACE_S), '-p', 'task-clock'], 100, 300, 3);
    run.child.kill(sig);
    const r = await ended(run);
    const rep = readReport(run.report);
    assert.equal(rep.signal, signo(sig), 'the command got the signal pmcstat got');
    assert.equal(r.status, 3, `pmcstat exits with the command's status:\n${r.stderr}`);
    // The count covers the cleanup: all of the command's CPU time.
    assertNear(finalCount(r), rep.cpuNs, 0.05, 'task-clock vs the command\'s CPU time');
    assert.deepEqual(processesWith(run.report), []);
    t.diagnostic(`${sig}: pmcstat exited ${Number(run.exitedAt() - rep.exitMonotonicNs) / 1e6} ms after the command`);
  });
}

test('SIGTERM: the processes below the command get it too (a shell that dies of it leaves none running)', { timeout: 60_000 }, async () => {
  // `; :` keeps sh from exec'ing sleep: the sleep is the shell's child.
  const marker = `${3000 + process.pid % 1000}.${Date.now() % 100000}`;
  const run = pmcstatAsync(['-p', 'task-clock', '--', 'sh', '-c', `sleep ${marker}; :`], { env });
  hangGuard.push(run.child);
  await waitFor('the shell\'s sleep', () => processesWith(marker).some((p) => /^\d+: sleep /.test(p)));
  run.child.kill('SIGTERM');
  const r = await ended(run);
  assert.equal(r.status, 128 + signo('SIGTERM'), r.stderr);
  assert.deepEqual(processesWith(marker), [], 'nothing of the command left running');
});

test('SIGTERM while sampling: every sample reaches the log, which ends with CLOSELOG', { timeout: 120_000 }, async (t: TestContext) => {
  const log = join(dir, 'term.pmclog');
  // One sample per millisecond of the command's CPU time.
  const run = await startMeasured(['--grace', String(GRACE_S), '-O', log, '-n', '1000000', '-P', 'cpu-clock'], 400, 300, 4);
  run.child.kill('SIGTERM');
  const r = await ended(run);
  assert.equal(r.status, 4, r.stderr);
  const rep = readReport(run.report);
  const lines = logText(log).filter((l) => l.trim() !== '');
  assert.match(lines.at(-1)!, /closelog/, `the last record is CLOSELOG: ${lines.filter((l) => !l.startsWith('...')).slice(-3).join(' | ')}\n${r.stderr}`);
  const { samples } = logStats(log);
  assertNear(samples, rep.cpuNs / 1e6, 0.1, 'samples vs the command\'s CPU milliseconds');
  assert.deepEqual(processesWith(run.report), []);
  t.diagnostic(`sampling: pmcstat exited ${Number(run.exitedAt() - rep.exitMonotonicNs) / 1e6} ms after the command`);
});

test('a command that ignores the signal is killed after --grace, and pmcstat says so', { timeout: 60_000 }, async (t: TestContext) => {
  const run = await startMeasured(['--grace', '0.5', '-p', 'task-clock'], 50, 0, 0, true);
  const sent = process.hrtime.bigint();
  run.child.kill('SIGTERM');
  const r = await ended(run);
  assert.equal(r.status, 128 + 9, r.stderr);
  assert.match(r.stderr, /pmcstat: the command did not exit within 0\.5 s of SIGTERM: killed it \(SIGKILL\)/);
  finalCount(r);
  assert.deepEqual(processesWith(run.report), []);
  t.diagnostic(`grace 0.5 s: pmcstat exited ${Number(run.exitedAt() - sent) / 1e6} ms after the signal`);
});

test('a second signal kills a command that is still cleaning up, at once', { timeout: 60_000 }, async (t: TestContext) => {
  // The cleanup would take 30 s of CPU.
  const run = await startMeasured(['-p', 'task-clock'], 50, 30_000, 0);
  run.child.kill('SIGINT');
  // The second signal once the first has reached the command (pmcstat passed it on): two sent at once could be one.
  await waitFor('the command to get the first signal', () => existsSync(`${run.report}.signaled`));
  const second = process.hrtime.bigint();
  run.child.kill('SIGINT');
  const r = await ended(run);
  assert.equal(r.status, 128 + 9, r.stderr);
  assert.match(r.stderr, /pmcstat: the command is still running at SIGINT: killed it \(SIGKILL\)/);
  assert.ok(!existsSync(run.report), 'the command did not finish its cleanup');
  finalCount(r);
  assert.deepEqual(processesWith(run.report), []);
  t.diagnostic(`second signal: pmcstat exited ${Number(run.exitedAt() - second) / 1e6} ms after it`);
});

test('SIGINT while the launcher waits at its gate: nothing left behind, the command never runs, the log is closed', { timeout: 120_000 }, async (t: TestContext) => {
  for (let attempt = 1; ; attempt++) {
    const log = join(dir, `startup-${attempt}.pmclog`);
    const report = reportPath(dir);
    const run = pmcstatAsync(['-O', log, '-p', 'task-clock', '-P', 'cpu-clock', '--', cleanupCmd, '0', '0', '0', report], { env });
    t.after(() => run.child.kill('SIGKILL'));
    const launcher = freezeAtLaunch(run.child.pid!, () => existsSync(`${report}.started`));
    if (launcher === undefined) {
      run.child.kill('SIGKILL');
      await ended(run);
      assert.ok(attempt < 5, 'caught pmcstat with its launcher at its gate');
      continue;
    }
    // The signal waits while pmcstat is stopped, and comes first when it goes on.
    run.child.kill('SIGINT');
    run.child.kill('SIGCONT');
    const r = await ended(run);
    assert.equal(r.status, 128 + 2, r.stderr);
    assert.ok(!existsSync(`${report}.started`), 'the command never ran');
    assert.deepEqual(processesWith(report), []);
    assert.equal(stateOf(launcher), undefined, 'the launcher is gone');
    assert.match(logText(log).filter((l) => l.trim() !== '').at(-1)!, /closelog/);
    finalCount(r);
    return;
  }
});

for (const when of ['while the command runs', 'while the launcher waits at its gate'] as const) {
  test(`pmcstat killed with SIGKILL ${when} takes its command with it`, { timeout: 120_000 }, async (t: TestContext) => {
    for (let attempt = 1; ; attempt++) {
      const report = reportPath(dir);
      const run = pmcstatAsync(['-p', 'task-clock', '--', cleanupCmd, '0', '0', '0', report], { env });
      t.after(() => run.child.kill('SIGKILL'));
      let launched: number | undefined;
      if (when === 'while the command runs') {
        await Promise.race([waitFor(when, () => existsSync(`${report}.started`)), run.done.then((r) => assert.fail(`pmcstat ended first: ${r.status}\n${r.stderr}`))]);
        launched = childrenOf(run.child.pid!)[0];
      } else {
        launched = freezeAtLaunch(run.child.pid!, () => existsSync(`${report}.started`));
      }
      run.child.kill('SIGKILL');
      try {
        await waitFor('end of pmcstat', () => stateOf(run.child.pid!) === undefined);
        if (launched === undefined) {
          assert.ok(attempt < 5, 'caught pmcstat with its launcher at its gate');
          continue;
        }
        await waitFor('end of the orphaned command', () => processesWith(report).length === 0);
        return;
      } finally {
        // Whatever happens, this test leaves nothing behind either.
        for (const line of processesWith(report)) process.kill(Number(line.split(':')[0]), 'SIGKILL');
      }
    }
  });
}
