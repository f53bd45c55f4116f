// pmcstat under a tracer (strace -f): pmcstat launches its command held at a
// gate until the PMCs are attached. A launcher that stopped itself (SIGSTOP)
// could be taken for stopped while strace still held its signal, be continued
// too early, then stop for good: about one run in three hung. Each run here
// must end with its counts or samples.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildC, foldedStacks, pmcstatAsync, samplesWhere, tempDir } from './cli-fixture.js';
import { processesWith } from './cli-signal-fixture.js';
import { hangGuard } from './proc-fixture.js';

const strace = (() => {
  try {
    return execFileSync('sh', ['-c', 'command -v strace'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
})();

const dir = tempDir('cli-traced-');
const env = { TSPMC_ADMIN_STATE: join(dir, 'admin.json') };
const burn = buildC(dir, 'sampling-burn.c', 'burn');
/** About 200 ms of CPU. */
const ITERS = '400000000';
/** With the old launcher 8 runs all passed about 4% of the time (2 hung in 6 tries). */
const RUNS = 8;

test(`pmcstat under strace -f: ${RUNS} runs, counting and sampling, each ends with its counts or samples`, { skip: strace ? false : 'strace is not installed', timeout: 300_000 }, async (t: TestContext) => {
  for (let i = 0; i < RUNS; i++) {
    const sampling = i % 2 === 1;
    const ru = join(dir, `rusage-${i}`);
    const log = join(dir, `run-${i}.pmclog`);
    const args = sampling ? ['-P', 'cpu-clock', '-O', log] : ['-p', 'task-clock'];
    const run = pmcstatAsync([...args, '--', burn, ITERS, ru], { env, prefix: [strace!, '-f', '-qq', '-o', '/dev/null', '--'] });
    const r = await hangGuard(run.done, 60_000, `run ${i} under strace`, () => {
      for (const line of processesWith(dir)) process.kill(Number(line.split(':')[0]), 'SIGKILL');
      run.child.kill('SIGKILL');
    });
    assert.equal(r.status, 0, r.stderr);
    const [cpuNs, , , beforeMainNs] = readFileSync(ru, 'utf8').trim().split(' ').map(Number);
    if (sampling) {
      const inBurn = samplesWhere(foldedStacks(log), (frames) => frames.includes('burn_cpu'));
      assert.ok(inBurn > 0, `samples in burn_cpu: ${inBurn}`);
    } else {
      const row = r.stderr.trimEnd().split('\n').at(-1) ?? '';
      assert.match(row, /^\s+\d+$/, r.stderr);
      // Counting starts before the exec (the launcher's CPU time before it is not counted; under strace it
      // is tens of ms) and stops after the exit, getrusage() runs just before the exit.
      const clock = Number(row.trim());
      assert.ok(clock >= cpuNs - beforeMainNs && clock <= 1.05 * cpuNs, `task-clock ${clock}, the command's CPU time ${cpuNs}, ${beforeMainNs} of it before main()`);
    }
    t.diagnostic(`run ${i}: ${sampling ? 'sampled' : 'counted'} ${cpuNs / 1e6} ms of CPU`);
  }
});
