// pmcstat -S: a system-wide sampler started first, then a program the test
// starts while it runs. The program was not there when the sampler took
// its inventory of processes, so everything the analysis knows of it comes
// from what the kernel reported while sampling: its fork, exec and mappings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { onlineCpus } from '../src/os/cpus.js';
import { buildC, foldedStacks, logStats, logText, pmcstatAsync, samplesWhere, tempDir } from './cli-fixture.js';

test('pmcstat -S cpu-clock sees a program started after it, by name and function', async (t) => {
  const dir = tempDir('sampling-system-');
  const burner = buildC(dir, 'sampling-burn.c', 'ss-burner');
  const log = join(dir, 'system.pmclog');
  // 5000 samples a second per CPU: a rate the collector keeps up with, so that the
  // kernel loses none of the fork, exec and mmap reports this test is about.
  const sampler = pmcstatAsync(['-c', onlineCpus().join(','), '-n', '200000', '-S', 'cpu-clock', '-l', '4', '-O', log]);

  // The log's first bytes (INITIALIZE) are written when it is opened, before
  // the PMC starts and takes its inventory of processes; the next write comes
  // once a log buffer has filled with samples, after the inventory: only
  // then has the sampler started. (A fixed wait was not enough on a loaded
  // machine: the inventory of a machine running a test suite took longer.)
  const logSize = (): number => {
    try {
      return statSync(log).size;
    } catch {
      return 0; // not created yet
    }
  };
  let first = 0;
  for (let i = 0; first === 0 || logSize() === first; i++) {
    if (first === 0) first = logSize();
    assert.ok(i < 2400 && sampler.child.exitCode === null, 'the sampler starts writing samples to its log');
    await sleep(25);
  }
  const prog = spawn(burner, ['300000000'], { stdio: 'ignore' });
  const [code] = await once(prog, 'exit');
  assert.equal(code, 0);
  const run = await sampler.done;
  assert.equal(run.status, 0, run.stderr);

  const stats = logStats(log);
  t.diagnostic(`samples ${stats.samples}, lost ${stats.lost}, dropped ${stats.dropped}`);
  const text = logText(log);
  const pid = prog.pid!;
  const created = text.filter((l) => l.startsWith('proc-create '));
  assert.ok(created.length > 0, 'the inventory of processes at start (PROC_CREATE)');
  assert.ok(!created.some((l) => l.startsWith(`proc-create ${pid} `)), 'the program started after the inventory');
  assert.ok(text.includes(`fork      ${process.pid} ${pid}`), `a fork record ${process.pid} -> ${pid}`);
  const exec = text.filter((l) => new RegExp(`^exec\\s+0x[0-9a-f]+ ${pid} .* "${burner}"$`).test(l));
  assert.equal(exec.length, 1, `one exec record of ${burner} by ${pid}`);

  const stacks = foldedStacks(log);
  const inBurn = samplesWhere(stacks, (f) => f[0] === 'ss-burner' && f.at(-1) === 'burn_cpu' && f.at(-2) === 'main');
  assert.ok(inBurn > 0, `samples ss-burner;...;main;burn_cpu, among:\n${[...stacks.keys()].filter((k) => k.startsWith('ss-burner')).slice(0, 20).join('\n')}`);
});
