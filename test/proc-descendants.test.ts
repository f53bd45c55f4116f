// Following a process tree (PMC_F_DESCENDANTS): pmcstat -d -t PID and
// -d -- command on workloads that fork many short-lived children, with the
// CPUs busy, must end once the tree is gone and count what perf stat counts
// on the same process; a tree with an orphan must not be declared gone
// before the orphan ends; a descendant watch whose rings overflow must
// still know the tree. The reference counts are perf stat's, attached to
// the same process before the workload runs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { DescendantWatch } from '../src/md/descendant-watch.js';
import { listDescendants, processExited } from '../src/os/procfs.js';
import { Lines, busyCpus, buildWorkload, hangGuard, killAll, monotonicNs, perfStat, Workload } from './proc-fixture.js';
import { pmcstatAsync, tempDir } from './cli-fixture.js';

let dir = '';
let workload = '';

before(() => {
  dir = tempDir('proc-descendants-');
  workload = buildWorkload(dir);
});

after(() => {
  killAll();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const env = (): NodeJS.ProcessEnv => ({ TSPMC_ADMIN_STATE: `${dir}/admin.json`, TSPMC_LOCAL: '1', TSPMC_SOCKET: `${dir}/pmcd.sock` });

interface TreeRun {
  /** pmcstat's task-clock of the tree, ns. */
  count: number;
  /** perf stat's, on the same process. */
  perf: number;
  /** From the last process of the tree to pmcstat's exit, ms. */
  endLatencyMs: number;
}

/** pmcstat's count: the last line of its counting output. */
function countOf(stderr: string): number {
  const rows = stderr.trimEnd().split('\n').filter((l) => /^\s*\d+\s*$/.test(l));
  assert.ok(rows.length > 0, `pmcstat printed no count:\n${stderr}`);
  return Number(rows.at(-1)!.trim());
}

/**
 * One run of the workload `args` under pmcstat -d, as a -t target or as its
 * command. Resolves once pmcstat has exited; a pmcstat still running 20 s
 * after the tree ended is a hang.
 */
async function runTree(how: 't' | 'cmd', args: string[], withPerf = true): Promise<TreeRun> {
  let w: Workload;
  let run: ReturnType<typeof pmcstatAsync>;
  if (how === 't') {
    w = Workload.start(workload, args);
    const pid = await w.ready();
    run = pmcstatAsync(['-d', '-t', String(pid), '-p', 'task-clock'], { env: env() });
  } else {
    run = pmcstatAsync(['-d', '-p', 'task-clock', '--', workload, ...args], { env: env(), stdio: ['pipe', 'pipe', 'pipe'] });
    w = new Workload(run.child, run.child.stdout!, run.child.stdin!);
  }
  // pmcstat prints its header once its PMCs run.
  const header = new Lines(run.child.stderr!);
  const pid = how === 't' ? w.child.pid! : await w.ready();
  await hangGuard(header.expect('#'), 60_000, 'pmcstat start', () => run.child.kill('SIGKILL'));
  const perf = withPerf ? await perfStat(pid) : undefined;
  w.go();
  const end = Number((await w.lines.expect('end'))[0]);
  const r = await hangGuard(run.done, 60_000, `pmcstat -d ${how === 't' ? '-t' : '--'} ${args.join(' ')} after its tree ended`, () => run.child.kill('SIGKILL'));
  const exitedAt = monotonicNs();
  assert.equal(r.status, 0, `pmcstat failed: ${r.stderr}`);
  return { count: countOf(r.stderr), perf: perf ? await perf.count : NaN, endLatencyMs: (exitedAt - end) / 1e6 };
}

/** Runs `runs` times with the CPUs busy; prints the figures; checks each count against perf's. */
async function stress(t: { diagnostic(s: string): void }, how: 't' | 'cmd', args: string[], runs: number): Promise<void> {
  const stopBusy = busyCpus(2);
  try {
    const latencies: number[] = [];
    for (let i = 0; i < runs; i++) {
      const r = await runTree(how, args);
      latencies.push(r.endLatencyMs);
      const ratio = r.count / r.perf;
      t.diagnostic(`run ${i + 1}: task-clock ${(r.count / 1e6).toFixed(1)} ms, perf stat ${(r.perf / 1e6).toFixed(1)} ms (ratio ${ratio.toFixed(4)}), ended ${r.endLatencyMs.toFixed(0)} ms after the tree`);
      assert.ok(Math.abs(ratio - 1) <= 0.05, `run ${i + 1}: pmcstat counted ${r.count} ns, perf stat ${r.perf} ns on the same tree`);
    }
    t.diagnostic(`end latency after the tree: max ${Math.max(...latencies).toFixed(0)} ms, mean ${(latencies.reduce((a, b) => a + b, 0) / runs).toFixed(0)} ms`);
  } finally {
    await stopBusy();
  }
}

// 20 runs in all: 1,000 sequential and 200 concurrent children, as a -t target and as the command.
test('-d -t PID: 1,000 sequential short-lived children, CPUs busy: ends after the tree, counts what perf stat counts', async (t) => {
  await stress(t, 't', ['forks', '1000', 'seq', '100'], 5);
});

test('-d -t PID: 200 concurrent short-lived children, CPUs busy: ends after the tree, counts what perf stat counts', async (t) => {
  await stress(t, 't', ['forks', '200', 'conc', '500'], 5);
});

test('-d -- command: 1,000 sequential short-lived children, CPUs busy: ends after the tree, counts what perf stat counts', async (t) => {
  await stress(t, 'cmd', ['forks', '1000', 'seq', '100'], 5);
});

test('-d -- command: 200 concurrent short-lived children, CPUs busy: ends after the tree, counts what perf stat counts', async (t) => {
  await stress(t, 'cmd', ['forks', '200', 'conc', '500'], 5);
});

test('-d -t PID on a tree of five processes with an orphan: ends only after the orphan, counting all five', async (t) => {
  // perf stat -p ends with the process it watches, before the orphan: no reference here.
  const r = await runTree('t', ['tree'], false);
  t.diagnostic(`task-clock ${(r.count / 1e6).toFixed(1)} ms, ended ${r.endLatencyMs.toFixed(0)} ms after the orphan`);
  assert.ok(r.endLatencyMs > 0, 'pmcstat ended before the orphan did');
  // Five processes burn 100 ms of CPU each (their thread CPU clocks), the orphan 300 ms more;
  // forks, exits and start-up add a few ms.
  assert.ok(r.count >= 0.99 * 800e6 && r.count <= 1.1 * 800e6, `counted ${r.count} ns for the tree's 800 ms of burning`);
});

test('a descendant watch whose rings overflow knows the tree again from /proc: forks and exits it lost', async () => {
  const w = Workload.start(workload, ['sleepers', '300', '30000']);
  const pid = await w.ready();
  // One page per ring holds 128 records: 300 forks overflow it.
  const watch = DescendantWatch.open(pid, { pages: 1 });
  try {
    assert.equal(watch.liveCount(), 0);
    w.go();
    // Hold the event loop (no drain) until /proc shows every child: the rings overflow meanwhile.
    const until = Date.now() + 30_000;
    while (listDescendants(pid).length < 300 && Date.now() < until);
    const children = listDescendants(pid);
    assert.equal(children.length, 300, 'the workload did not fork its 300 children');
    // One child exits while the rings are still full: its EXIT is lost too, and no LOST follows.
    process.kill(children[0], 'SIGKILL');
    while (!processExited(children[0])) await sleep(5);
    assert.equal(watch.liveCount(), 299, 'the killed child is gone, the 299 others sleep on');
    assert.ok(watch.overflows > 0, 'the rings did not overflow: the test proves nothing');
    for (const c of children.slice(1)) process.kill(c, 'SIGKILL');
    await hangGuard(w.lines.expect('end'), 60_000, 'the sleepers');
    for (const hang = Date.now() + 60_000; watch.liveCount() > 0 && Date.now() < hang; ) await sleep(20);
    assert.equal(watch.liveCount(), 0, 'every child exited');
  } finally {
    watch.close();
    w.finish();
  }
});
