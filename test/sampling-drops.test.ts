// Sampling that cannot keep up: tiny sample buffers (TSPMC_NSAMPLES=4) and a
// tiny log (two 1 KiB buffers) under a busy two-thread workload. Samples
// that find no room are dropped and counted, and every sample the kernel
// produced must be accounted for: recorded (CALLCHAIN) + dropped + lost
// (PERF_RECORD_LOST) == the overflows of the sampled event, which we know
// independently from the event's own count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Libpmc, LocalModuleClient, launchHeld, onlineCpus } from '../src/lib/index.js';
import { readLog } from '../src/log/log-reader.js';
import { LogType } from '../src/log/records.js';
import { loadModule } from '../src/module/load.js';
import { buildC, logStats, logText, pmcstat, pmcstatAsync, stackTraceLines, tempDir } from './cli-fixture.js';

// Chains of at most 32 frames make CALLCHAIN records of at most 288 bytes, which fit a 1 KiB log buffer.
const TINY = { TSPMC_NSAMPLES: '4', TSPMC_LOGBUFFERSIZE: '1', TSPMC_NBUFFERS: '2', TSPMC_CALLCHAINDEPTH: '32' };
const dir = tempDir('sampling-drops-');
const workload = buildC(dir, 'sampling-threads.c', 'threads', ['-pthread']);
// Two threads, each 100 rounds of 64 fresh pages and a short spin.
const ARGS = ['100', '64'];

test('pmcstat with tiny tunables: drops in the log, in --stats and in the warnings', () => {
  const log = join(dir, 'cli.pmclog');
  const run = pmcstat(['-n', '20000', '-P', 'cpu-clock', '-O', log, '--', workload, ...ARGS], { env: TINY });
  assert.equal(run.status, 0, run.stderr);

  const stats = logStats(log);
  assert.ok(stats.dropped > 0, `dropped ${stats.dropped}`);
  assert.equal(stats.samples, stats.records.CALLCHAIN);

  const drops = logText(log).filter((l) => l.startsWith('drop '));
  assert.ok(drops.length > 0, 'DROPNOTIFY records');
  const sum = (i: number): number => drops.reduce((s, l) => s + Number(l.split(/\s+/)[i]), 0);
  assert.equal(sum(1), stats.dropped);
  assert.equal(sum(2), stats.lost);

  // pmcstat's end-of-run warning counts the stalls from the driver statistics: each is one dropped sample.
  const paused = /^WARNING: sampling was paused at least (\d+) times?\.$/m.exec(run.stderr);
  assert.ok(paused, `the stall warning on stderr:\n${run.stderr}`);
  assert.equal(Number(paused[1]), stats.dropped, 'every stall the driver counted is reported in the log\'s DROPNOTIFY records');
  assert.match(run.stderr, /^Please consider tuning the "kern\.hwpmc\.nsamples" tunable\.$/m);
});

test('pmcstat stopped while the kernel samples: the samples it lost are in the log and in an end-of-run warning', async () => {
  // Stopped for 3 s while a spinning command (below timeout: -d) is sampled 50,000 times a second, the collector
  // leaves the kernel far more samples than a 1 MiB ring holds: the kernel counts the rest lost
  // (PERF_RECORD_LOST). Before, the run said nothing of them; only a later -R did.
  const log = join(dir, 'stopped.pmclog');
  const run = pmcstatAsync(['-d', '--freq', '50000', '-P', 'cpu-clock', '-O', log, '--', 'timeout', '8', 'sh', '-c', 'while :; do :; done']);
  for (let i = 0; ; i++) {
    if ((statSync(log, { throwIfNoEntry: false })?.size ?? 0) > 4096) break;
    assert.ok(i < 6000, 'the log never grew: the collector did not start');
    await new Promise((r) => setTimeout(r, 10));
  }
  run.child.kill('SIGSTOP');
  await new Promise((r) => setTimeout(r, 3000));
  run.child.kill('SIGCONT');
  const r = await run.done;
  assert.equal(r.status, 124, r.stderr);
  const stats = logStats(log);
  assert.ok(stats.lost > 0, `the kernel lost samples while pmcstat was stopped: ${stats.lost}`);
  const warning = /^WARNING: the kernel lost at least (\d+) samples?: its ring buffers were full\.$/m.exec(r.stderr);
  assert.ok(warning, `the kernel's losses on stderr:\n${r.stderr}`);
  assert.equal(Number(warning[1]), stats.lost, 'the warning counts what the log\'s DROPNOTIFY records count');
  assert.deepEqual(stackTraceLines(r.stderr), []);
});

interface Accounting {
  /** The sampled event's own count. */
  value: bigint;
  recorded: number;
  dropped: number;
  lost: number;
  /** Stalls in the driver statistics during the run. */
  stalls: number;
  /** CLOSELOG records: the log must end with one. */
  closelogs: number;
}

/** Samples `event` every `period` on the workload through libpmc with the tiny tunables; the log's and the PMC's view. */
async function sampleWorkload(event: string, period: bigint, name: string): Promise<Accounting> {
  const lib = await Libpmc.init(new LocalModuleClient(loadModule({ env: { ...process.env, ...TINY } })));
  const path = join(dir, name);
  const fd = openSync(path, 'w');
  let value: bigint;
  let stalls: number;
  try {
    await lib.configureLogfile(fd);
    const id = await lib.allocate(event, 'TS', { count: period });
    const cmd = await launchHeld([workload, ...ARGS], 'ignore');
    await lib.attach(id, cmd.pid);
    const before = await lib.driverStats();
    await lib.start(id);
    cmd.resume();
    assert.equal(await cmd.exited, 0);
    await lib.stop(id);
    value = await lib.read(id);
    await lib.closeLogfile();
    stalls = (await lib.driverStats()).intr_bufferfull - before.intr_bufferfull;
  } finally {
    await lib.close();
    closeSync(fd);
  }
  const a: Accounting = { value, recorded: 0, dropped: 0, lost: 0, stalls, closelogs: 0 };
  for await (const r of readLog(path)) {
    if (r.type === LogType.CALLCHAIN) a.recorded++;
    if (r.type === LogType.CLOSELOG) a.closelogs++;
    if (r.type === LogType.DROPNOTIFY) {
      a.dropped += r.dropped;
      a.lost += r.lost;
    }
  }
  return a;
}

/** Every drop the driver counted was reported in the log, and the log was closed. */
function assertCompleteLog(a: Accounting): void {
  const detail = JSON.stringify({ ...a, value: String(a.value) });
  assert.equal(a.closelogs, 1, `the log ends with CLOSELOG: ${detail}`);
  assert.equal(a.dropped, a.stalls, `the log's DROPNOTIFY counts add up to the driver's stalls: ${detail}`);
}

test('page-faults every fault: recorded + dropped + lost == faults counted, exactly', async () => {
  const a = await sampleWorkload('page-faults', 1n, 'faults.pmclog');
  assert.ok(a.dropped > 0, `dropped ${a.dropped} (recorded ${a.recorded})`);
  assertCompleteLog(a);
  // A software event counted one fault at a time overflows at every multiple of its
  // period; with a period of 1 each counted fault is one sample. While a CPU's buffer
  // is full its events are disabled and neither count nor sample. So no tolerance.
  assert.equal(BigInt(a.recorded + a.dropped + a.lost), a.value, JSON.stringify({ ...a, value: String(a.value) }));
});

test('task-clock every 100 us: recorded + dropped + lost == task-clock ns / period, within the timer\'s slack', async (t) => {
  const period = 100_000n;
  const a = await sampleWorkload('task-clock', period, 'clock.pmclog');
  assert.ok(a.dropped > 0, `dropped ${a.dropped} (recorded ${a.recorded})`);
  assertCompleteLog(a);
  const accounted = a.recorded + a.dropped + a.lost;
  const periods = Number(a.value / period);
  // Tolerance. Each perf event (one per thread and CPU: the main thread and two
  // workers on each online CPU) ends with a partial period that counted but did not
  // overflow: at most one sample each, either way. Nothing can make more samples than
  // periods. Fewer can be made: task-clock samples come from an hrtimer that perf
  // re-arms with hrtimer_forward_now(), so when its interrupt is late by more than a
  // period the periods in between are skipped, not sampled. How late depends on the
  // machine, not on tspmc: alone (even at load 20) this run samples within a period
  // of the count, but on this shared machine under the full suite, with other
  // helpers' sampling benchmarks running, it sampled 0.76 and 0.82 of the periods
  // (the second with no steal time at all, so the host's steal is not the cause).
  // So the lower bound only checks that sampling and the stall do not lose a large
  // share (half); the exact check of tspmc's own bookkeeping is the page-fault test
  // above, whose samples come from the counter itself.
  const events = 3 * onlineCpus().length;
  const detail = JSON.stringify({ ...a, value: String(a.value), periods, events });
  t.diagnostic(detail);
  assert.ok(accounted <= periods + events, `more samples than periods: ${detail}`);
  assert.ok(accounted >= periods * 0.5 - events, `samples unaccounted for: ${detail}`);
});

test('a call chain longer than a log buffer holds is a dropped sample, not a crash', () => {
  // 128 frames (the default depth) make a 1056-byte CALLCHAIN record; the log buffers are 1 KiB.
  const deep = buildC(dir, 'sampling-deep.c', 'deep');
  const log = join(dir, 'deep.pmclog');
  const run = pmcstat(['-P', 'cpu-clock', '-O', log, '--', deep, '200', '100000000'], { env: { TSPMC_LOGBUFFERSIZE: '1' } });
  assert.deepEqual(stackTraceLines(run.stderr), [], run.stderr);
  assert.equal(run.status, 0, run.stderr);
  const stats = logStats(log);
  assert.ok(stats.dropped > 0, `the samples that cannot be logged are counted as dropped: ${JSON.stringify(stats)}`);
});
