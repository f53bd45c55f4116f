// pmcstat on Node.js: V8 writes /tmp/perf-PID.map (--perf-basic-prof), and
// the analysis names JIT-compiled frames from it. The workload spends its
// time in one named function, hotLoop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fixture, foldedStacks, ok, pmcstat, removePerfMaps, samplesWhere, tempDir } from './cli-fixture.js';

test('a JS function hot in V8 is named in -G and --folded', (t) => {
  const dir = tempDir('sampling-node-');
  const log = join(dir, 'node.pmclog');
  const run = pmcstat(['-n', '100000', '-P', 'cpu-clock', '-O', log, '--', process.execPath, '--perf-basic-prof', '--interpreted-frames-native-stack', fixture('sampling-hotloop.js'), '1000']);
  t.after(() => removePerfMaps(run.stdout));
  ok(run, 'pmcstat -P -- node');
  assert.match(run.stdout, /^hotLoop total \d+$/m);

  const stacks = foldedStacks(log);
  const all = samplesWhere(stacks, () => true);
  // V8 names an optimized function "JS:*hotLoop" (older: "LazyCompile:*hotLoop"); the leaf frame carries the name.
  const inHotLoop = samplesWhere(stacks, (f) => f[0] === 'node' && f[f.length - 1].includes('hotLoop'));
  assert.ok(inHotLoop > 0, 'samples whose leaf frame is hotLoop');
  // The program does little else than call hotLoop; kernel work (page faults, timer
  // interrupts) and V8's own threads take the rest, so hotLoop is a clear share.
  assert.ok(inHotLoop >= 0.1 * all, `hotLoop has ${inHotLoop} of ${all} samples`);

  const graph = ok(pmcstat(['-R', log, '-G', '-']), 'pmcstat -R -G -').stdout;
  const top = graph.split('\n').find((l) => /^\S+%\s+\[\d+\]\s+\S*hotLoop\b.* @ \/tmp\/perf-\d+\.map$/.test(l));
  assert.ok(top, `-G has a top-level hotLoop entry from the perf map:\n${graph.slice(0, 2000)}`);
});
