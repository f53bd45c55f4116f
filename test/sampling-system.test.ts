// pmcstat -S: a system-wide sampler started first, then a program the test
// starts while it runs. The program was not there when the sampler took
// its inventory of processes, so everything the analysis knows of it comes
// from what the kernel reported while sampling: its fork, exec and mappings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { onlineCpus } from '../src/os/cpus.js';
import { buildC, foldedStacks, logStats, logText, pmcstatAsync, samplesWhere, tempDir } from './cli-fixture.js';
import { hangGuard } from './proc-fixture.js';

test('pmcstat -S cpu-clock sees a program started after it, by name and function', async (t) => {
  const dir = tempDir('sampling-system-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const burner = buildC(dir, 'sampling-burn.c', 'ss-burner');
  const log = join(dir, 'system.pmclog');
  // 5000 samples a second per CPU: a rate the collector keeps up with, so that the
  // kernel loses none of the fork, exec and mmap reports this test is about. A
  // counting PMC beside it prints pmcstat's header once every PMC runs, the
  // inventory taken (the log's first bytes are written when it opens, before
  // that); the run lasts until it is interrupted, after the program (-l would
  // be a window the program must fit in on a loaded machine).
  const sampler = pmcstatAsync(['-c', onlineCpus().join(','), '-n', '200000', '-S', 'cpu-clock', '-s', 'cpu-clock', '-O', log]);
  t.after(() => sampler.child.kill('SIGKILL'));
  let stderr = '';
  sampler.child.stderr!.on('data', (d: string | Buffer) => (stderr += d.toString()));
  await hangGuard(
    new Promise<void>((resolve, reject) => {
      sampler.child.stderr!.on('data', () => stderr.startsWith('#') && resolve());
      sampler.child.on('exit', () => reject(new Error(`the sampler ended before its PMCs ran: ${stderr}`)));
    }),
    60_000,
    'the sampler\'s header',
    () => sampler.child.kill('SIGKILL'),
  );
  const prog = spawn(burner, ['300000000'], { stdio: 'ignore' });
  const [code] = await once(prog, 'exit');
  assert.equal(code, 0);
  // Without a command, the first signal ends the measurement.
  sampler.child.kill('SIGINT');
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
