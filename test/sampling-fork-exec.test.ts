// pmcstat -d -P: a process that forks a child which execs another program.
// The log must carry the fork and the exec with the right pids and path,
// and the child's samples must resolve in the child's executable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { buildC, foldedStacks, logText, ok, pmcstat, samplesWhere, tempDir } from './cli-fixture.js';

const dir = tempDir('sampling-fork-');
const forker = buildC(dir, 'sampling-forker.c', 'forker');
const child = buildC(dir, 'sampling-burn.c', 'execd-child');

test('fork and exec records, and child samples in the child program', () => {
  const log = join(dir, 'fork.pmclog');
  const run = ok(pmcstat(['-d', '-P', 'cpu-clock', '-O', log, '--', forker, child, '400000000']), 'pmcstat -d -P');
  // The forker prints its child's pid.
  const childPid = Number(run.stdout.trim());
  assert.ok(Number.isInteger(childPid) && childPid > 0, `child pid on stdout: ${run.stdout}`);

  const text = logText(log);
  const execOf = (path: string): number[] =>
    text.flatMap((l) => {
      const m = /^exec\s+0x[0-9a-f]+ (\d+) 0x[0-9a-f]+ 0x[0-9a-f]+ "(.*)"$/.exec(l);
      return m && m[2] === path ? [Number(m[1])] : [];
    });
  const [forkerPid] = execOf(forker);
  assert.ok(forkerPid, `an exec record for ${forker}`);
  assert.ok(text.includes(`fork      ${forkerPid} ${childPid}`), `a fork record ${forkerPid} -> ${childPid}`);
  assert.deepEqual(execOf(child), [childPid], `one exec record of ${child}, by pid ${childPid}`);

  const stacks = foldedStacks(log);
  const inChild = samplesWhere(stacks, (f) => f[0] === 'execd-child' && f.at(-1) === 'burn_cpu');
  const underMain = samplesWhere(stacks, (f) => f[0] === 'execd-child' && f.at(-1) === 'burn_cpu' && f.at(-2) === 'main');
  assert.ok(underMain > 0, `samples execd-child;...;main;burn_cpu in:\n${[...stacks.keys()].filter((k) => k.includes('burn_cpu')).join('\n')}`);
  // burn_cpu exists only in the child's program: no other process has it.
  assert.equal(samplesWhere(stacks, (f) => f[0] !== 'execd-child' && f.includes('burn_cpu')), 0);

  // -G: every sample taken in burn_cpu, whatever its callers, under burn_cpu in the child's program.
  const graph = ok(pmcstat(['-R', log, '-G', '-']), 'pmcstat -R -G').stdout;
  assert.match(graph, new RegExp(`^\\S+%\\s+\\[${inChild}\\]\\s+burn_cpu @ ${child.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 'm'));
});

test('without -d the forked child is not sampled', () => {
  const log = join(dir, 'nodesc.pmclog');
  ok(pmcstat(['-P', 'cpu-clock', '-O', log, '--', forker, child, '100000000']), 'pmcstat -P');
  const stacks = foldedStacks(log);
  assert.ok(samplesWhere(stacks, (f) => f[0] === 'forker') > 0, 'the forker itself is sampled');
  assert.equal(samplesWhere(stacks, (f) => f[0] === 'execd-child' || f.includes('burn_cpu')), 0);
});
