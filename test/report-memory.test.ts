// pmcstat -R on logs crafted to exhaust the analysis' memory (issue 6,
// defect 6): each run is a child with a small V8 heap, reporting its peak
// RSS, so that a regression fails fast instead of taking the machine.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeDeepChains, writeLongPaths, writeManyMappings, writeManyPids, writeManyPmcs } from '../bench/crafted-logs.js';
import { fixture, PMCSTAT, tempDir } from './cli-fixture.js';

const dir = tempDir('tspmc-report-memory-');
after(() => rmSync(dir, { recursive: true, force: true }));

// A heap far below what the unbounded structures needed (they aborted at 4 GB).
const HEAP_MB = 128;

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  stdout: string;
  /** Peak RSS in MiB, as the child measured it at exit. */
  rssMib: number;
}

function analyze(args: string[]): Run {
  const r = spawnSync(process.execPath, [`--max-old-space-size=${HEAP_MB}`, '-r', fixture('report-maxrss.cjs'), PMCSTAT, '-R', ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 64 << 20,
  });
  if (r.error) throw r.error;
  const m = /^maxrss-kb (\d+)$/m.exec(r.stderr);
  return {
    status: r.status,
    signal: r.signal,
    stdout: r.stdout,
    stderr: r.stderr.replace(/^maxrss-kb \d+\n/m, ''),
    rssMib: m ? Number(m[1]) / 1024 : NaN,
  };
}

function ok(r: Run, what: string): Run {
  assert.equal(r.signal, null, `${what}: killed by ${r.signal} (V8 abort?)\n${r.stderr.slice(0, 2000)}`);
  assert.equal(r.status, 0, `${what}: status ${r.status}\n${r.stderr.slice(0, 2000)}`);
  return r;
}

test('2,000 chains of 512 distinct frames: -G, --folded and --stats complete in a 128 MB heap', () => {
  const log = join(dir, 'deep.pmclog');
  writeDeepChains(log, 2000, 512);
  const graph = join(dir, 'deep.graph');
  const folded = join(dir, 'deep.folded');
  const r = ok(analyze([log, '-G', graph, '--folded', folded, '--stats', '--json']), 'deep chains');
  const stats = JSON.parse(r.stdout);
  assert.equal(stats.samples, 2000);
  assert.equal(stats.callerFrames, 2000 * 511);
  // Every chain is its own stack of 512 frames after the process name.
  const lines = readFileSync(folded, 'utf8').trimEnd().split('\n');
  assert.equal(lines.length, 2000);
  for (const l of [lines[0], lines[1999]]) assert.equal(l.split(' ')[0].split(';').length, 513);
  // -G shows 16 frames per chain (the default -z): 2000 sampled functions of 16 lines each.
  const graphLines = readFileSync(graph, 'utf8').split('\n').filter((l) => /\[\d+\]/.test(l));
  assert.equal(graphLines.length, 2000 * 16);
  // 1M distinct frames and call paths: tens of bytes each, not hundreds.
  assert.ok(r.rssMib < 400, `peak RSS ${r.rssMib.toFixed(0)} MiB`);
});

test('a distinct pid costs a few hundred bytes, not a frame cache each', () => {
  const rss = (pids: number): number => {
    const log = join(dir, `pids-${pids}.pmclog`);
    writeManyPids(log, pids);
    const folded = join(dir, `pids-${pids}.folded`);
    const r = ok(analyze([log, '--folded', folded]), `${pids} pids`);
    // One line per process (pid-N: no name was logged).
    assert.equal(readFileSync(folded, 'utf8').trimEnd().split('\n').length, pids);
    return r.rssMib;
  };
  const small = rss(2000);
  const large = rss(12000);
  const perPid = ((large - small) * 1048576) / 10000;
  assert.ok(perPid < 4096, `${perPid.toFixed(0)} bytes per pid (peak RSS ${small.toFixed(0)} -> ${large.toFixed(0)} MiB)`);
});

test('MAP_IN records of 65 KB paths: the --stats problem list is capped, paths are shortened', () => {
  const log = join(dir, 'paths.pmclog');
  writeLongPaths(log, 200, 65_000);
  const r = ok(analyze([log, '--stats', '--json']), 'long paths');
  assert.ok(r.stdout.length < 32 * 1024, `--stats --json is ${r.stdout.length} bytes`);
  const stats = JSON.parse(r.stdout);
  assert.equal(stats.records.MAP_IN, 200);
  assert.equal(stats.problems.length + stats.problemsOmitted, 200);
  assert.ok(stats.problems.length <= 20);
  for (const p of stats.problems) {
    assert.ok(p.path.length <= 300 && p.reason.length <= 300, JSON.stringify(p).slice(0, 200));
    assert.match(p.reason, /ENAMETOOLONG/);
  }
  const text = ok(analyze([log, '--stats']), 'long paths, text');
  assert.match(text.stdout, /#unreadable \.\.\. and \d+ more/);
  assert.ok(r.rssMib < 200, `peak RSS ${r.rssMib.toFixed(0)} MiB`);
});

test('over the memory limit: one line naming the limit and --memory-limit, status 1, no V8 abort', () => {
  const log = join(dir, 'limit.pmclog');
  writeDeepChains(log, 2000, 512);
  const folded = join(dir, 'limit.folded');
  const r = analyze([log, '--folded', folded, '--memory-limit', '16']);
  assert.equal(r.signal, null);
  assert.equal(r.status, 1, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^pmcstat: ERROR: .*limit\.pmclog: the analysis needs more than its memory limit of 16 MiB \(.*frames.*\).*raise the limit with --memory-limit MIB$/);
  assert.throws(() => statSync(folded), 'no partial output');
  // The same log within a larger limit.
  ok(analyze([log, '--folded', folded, '--memory-limit', '256']), 'within the limit');
  assert.equal(readFileSync(folded, 'utf8').trimEnd().split('\n').length, 2000);
});

test('100,000 mappings in one process, 20,000 PMCs: linear work, a capped --stats; 100,000 PMCs: one line naming the heap, no V8 abort', () => {
  const maps = join(dir, 'maps.pmclog');
  writeManyMappings(maps, 100_000);
  const m = ok(analyze([maps, '--folded', join(dir, 'maps.folded'), '--stats', '--json']), 'many mappings');
  const ms = JSON.parse(m.stdout);
  assert.equal(ms.records.MAP_IN, 100_000);
  assert.equal(ms.samples, 1000);
  assert.equal(ms.unknownFunction, 1000, 'each sample inside its mapping (a missing file: image+offset)');
  const pmcs = join(dir, 'pmcs.pmclog');
  writeManyPmcs(pmcs, 20_000);
  const p = ok(analyze([pmcs, '--stats', '--json']), 'many PMCs');
  const ps = JSON.parse(p.stdout);
  assert.equal(ps.samples, 20_000);
  // The crafted log's own cpu-clock PMC, and these.
  assert.equal(ps.pmcs.length + ps.pmcsOmitted, 20_001);
  assert.ok(p.stdout.length < 64 * 1024, `--stats --json is ${p.stdout.length} bytes`);
  // Each PMC's objects live in the JavaScript heap: 100,000 of them outgrow this 128 MB heap.
  writeManyPmcs(pmcs, 100_000);
  const full = analyze([pmcs, '--stats', '--json']);
  assert.equal(full.signal, null, full.stderr.slice(0, 500));
  assert.equal(full.status, 1, full.stderr.slice(0, 500));
  assert.match(full.stderr, /^pmcstat: ERROR: .*pmcs\.pmclog: the analysis needs more than Node's JavaScript heap of \d+ MiB \(.*\d+ PMCs.*\).*raise the limit with NODE_OPTIONS=--max-old-space-size=MIB\n$/);
});
