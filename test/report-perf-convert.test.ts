// bench/perf-to-pmclog.ts gives pmcstat -R the samples perf report reads (the
// analysis benchmark's premise): a real perf record, converted, has the same
// samples and the same sampled functions in both tools.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { convertPerfData } from '../bench/perf-to-pmclog.js';
import { readLog } from '../src/log/log-reader.js';
import { LogType, type MapInRecord } from '../src/log/records.js';
import { pmcstat } from './cli-fixture.js';
import { hasTool, tempDir } from './report-fixture.js';

const dir = tempDir('tspmc-report-perf-convert-');
after(() => rmSync(dir, { recursive: true, force: true }));

test('a perf.data converted to a pmclog: the same samples, the same sampled functions', async (t) => {
  if (!hasTool('perf')) return t.skip('perf is not installed');
  const busy2 = join(dir, 'busy2');
  execFileSync('gcc', ['-O2', '-fno-omit-frame-pointer', '-pthread', '-o', busy2, fileURLToPath(new URL('../../bench/busy2.c', import.meta.url))]);
  const data = join(dir, 'busy2.perf.data');
  // -N: no build-id cache (~/.debug) written by a test. 0.5 s of CPU time (not of wall time: busy CPUs gave ~100 samples).
  const rec = spawnSync('perf', ['record', '-N', '-e', 'cpu-clock', '-F', '2000', '-g', '-o', data, '--', busy2, '--cpu', '0.5', join(dir, 'rusage.json')], { encoding: 'utf8', timeout: 60_000 });
  if (rec.status !== 0) return t.skip(`perf record cannot sample here: ${rec.stderr.trim().split('\n').pop()}`);
  const log = join(dir, 'busy2.pmclog');
  const { samples } = convertPerfData(data, log);
  // Each mapping of a file keeps its extent (MMAP2's pgoff and len); the kernel's have none.
  const maps: MapInRecord[] = [];
  for await (const r of readLog(log)) if (r.type === LogType.MAP_IN) maps.push(r);
  assert.ok(maps.some((m) => m.pathname === busy2 && m.extent && m.extent.length > 0n), 'a MAP_IN of busy2 with its extent');
  assert.deepEqual(maps.filter((m) => (m.pid === -1) === (m.extent !== undefined)), []);
  // perf's own account of the samples and of each one's sampled function.
  const script = execFileSync('perf', ['script', '-i', data, '-F', 'ip,sym', '-G'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20 });
  const perfLeaves = new Map<string, number>();
  const lines = script.split('\n').filter((l) => l.trim() !== '');
  for (const l of lines) {
    const sym = l.trim().split(/\s+/)[1] ?? '[unknown]';
    perfLeaves.set(sym, (perfLeaves.get(sym) ?? 0) + 1);
  }
  assert.equal(samples, lines.length);
  assert.ok(samples > 100, `${samples} samples`);
  const r = pmcstat(['-R', log, '--folded', '-', '--stats', '--json'], { env: { TSPMC_CACHE_DIR: '' } });
  assert.equal(r.status, 0, r.stderr);
  const folded = r.stdout.slice(0, r.stdout.indexOf('{'));
  const stats = JSON.parse(r.stdout.slice(r.stdout.indexOf('{')));
  assert.equal(stats.samples, samples);
  const ours = new Map<string, number>();
  for (const l of folded.trimEnd().split('\n')) {
    const frames = l.slice(0, l.lastIndexOf(' ')).split(';');
    const leaf = frames[frames.length - 1];
    ours.set(leaf, (ours.get(leaf) ?? 0) + Number(l.slice(l.lastIndexOf(' ') + 1)));
  }
  // The workload's own functions: named alike by both (kernel and vdso aliases may differ).
  for (const fn of ['leaf_mix', 'leaf_shift.constprop.0', 'inner', 'middle', 'outer']) {
    assert.equal(ours.get(fn) ?? 0, perfLeaves.get(fn) ?? 0, `${fn}: tspmc ${ours.get(fn)} perf ${perfLeaves.get(fn)}`);
  }
  assert.ok((ours.get('leaf_mix') ?? 0) > 0);
});
