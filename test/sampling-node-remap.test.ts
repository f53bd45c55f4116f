// pmcstat on Node.js without --perf-basic-prof: V8 maps a piece of node's text
// (its embedded builtins) a second time inside each isolate's JIT code range.
// JIT-compiled JavaScript next to that mapping has no name (perf report shows
// [unknown]); it must not be named after one of node's functions. Samples in
// node's mappings, the second ones too, are node's.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { realpathSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readLog } from '../src/log/log-reader.js';
import { LogType, PMC_CC_F_USERSPACE, type LogRecord } from '../src/log/records.js';
import { analyzeLog } from '../src/report/analyze.js';
import { fixture, ok, pmcstat, tempDir } from './cli-fixture.js';

process.env.TSPMC_CACHE_DIR ??= '';
const dir = tempDir('sampling-node-remap-');
after(() => rmSync(dir, { recursive: true, force: true }));

interface FileMapping {
  lo: bigint;
  hi: bigint;
  /** Where the mapping puts file offset 0. */
  start: bigint;
  path: string;
}

test('JIT-compiled JavaScript next to V8\'s second mapping of node is not named after node', async (t) => {
  const log = join(dir, 'node.pmclog');
  const run = ok(pmcstat(['-n', '100000', '-P', 'cpu-clock', '-O', log, '--', process.execPath, fixture('sampling-node-remap.cjs'), '200', '6']), 'pmcstat -P cpu-clock -- node');
  // Every executable mapping of a file (and the vdso) that the isolates saw (the workers' are gone once they end).
  const maps: FileMapping[] = [];
  for (const m of run.stdout.matchAll(/^map ([0-9a-f]+)-([0-9a-f]+) r-xp ([0-9a-f]+) \S+ \S+\s+(\/.*|\[vdso\])$/gm)) {
    const lo = BigInt(`0x${m[1]}`);
    maps.push({ lo, hi: BigInt(`0x${m[2]}`), start: lo - BigInt(`0x${m[3]}`), path: m[4] });
  }
  const node = realpathSync(process.execPath);
  const nodeMaps = maps.filter((m) => m.path === node).sort((a, b) => (a.lo < b.lo ? -1 : 1));
  // The loader's mappings of node share one start (the lowest one's); V8's second mappings each have their own.
  const second = nodeMaps.filter((m) => m.start !== nodeMaps[0]?.start);
  if (second.length === 0) return t.skip(`this node (${node}) maps its text only once: nothing to tell apart`);
  const logged: LogRecord[] = [];
  for await (const r of readLog(log)) logged.push(r);
  const exec = logged.find((r) => r.type === LogType.PROCEXEC && r.pathname === node);
  assert.ok(exec?.type === LogType.PROCEXEC, 'PROCEXEC of node');
  // The same process ran pmcstat's launcher (sh) before the exec: its samples are not node's.
  const records = logged.filter((r) => r.type !== LogType.CALLCHAIN || r.pid !== exec.pid || r.ts >= exec.ts);
  // An empty directory for perf-PID.map: a stale map in /tmp must not name the JIT code.
  const result = await analyzeLog(records, { keepSamples: true, perfMapDir: join(dir, 'no-maps') });
  let jit = 0;
  let inNode = 0;
  const misnamed = new Map<string, number>();
  for (const s of result.samples!) {
    if (s.pid !== exec.pid || s.pcs[0] >= 0xffff_8000_0000_0000n) continue;
    const pc = s.pcs[0];
    const image = result.frames.image(s.frames[0])?.path;
    const mapping = maps.find((m) => pc >= m.lo && pc < m.hi);
    if (mapping) {
      // In a file's mapping: that file's (a library's symbols or image+offset).
      if (mapping.path === node) inNode++;
      assert.equal(image, mapping.path, `pc 0x${pc.toString(16)}`);
    } else {
      jit++;
      const named = `${result.frames.name(s.frames[0])} @ ${image}`;
      if (image !== undefined) misnamed.set(named, (misnamed.get(named) ?? 0) + 1);
    }
  }
  const user = records.filter((r) => r.type === LogType.CALLCHAIN && r.pid === exec.pid && r.flags & PMC_CC_F_USERSPACE).length;
  // The hot function runs as JIT code (Sparkplug, Maglev or TurboFan output) most of the time.
  assert.ok(jit > 100, `${jit} of ${user} user samples outside every file mapping`);
  assert.deepEqual([...misnamed], [], 'JIT samples named after a file');
  assert.ok(inNode > 0, `${inNode} samples in node's mappings`);
  // What the extents fix, for the record: the same log without them names JIT samples after node.
  const old = records.map((r) => (r.type === LogType.MAP_IN ? { type: r.type, ts: r.ts, pid: r.pid, start: r.start, pathname: r.pathname } : r));
  const before = await analyzeLog(old, { keepSamples: true, perfMapDir: join(dir, 'no-maps') });
  let oldNamed = 0;
  for (const s of before.samples!) if (s.pid === exec.pid && !maps.some((m) => s.pcs[0] >= m.lo && s.pcs[0] < m.hi) && s.pcs[0] < 0xffff_8000_0000_0000n && before.frames.image(s.frames[0])) oldNamed++;
  t.diagnostic(`${jit} JIT samples; without the extents ${oldNamed} of them would be named after node`);
  // node's second mappings were logged with their extents, one per isolate.
  const inLog = (m: FileMapping): boolean =>
    records.some((r) => r.type === LogType.MAP_IN && r.pid === exec.pid && r.pathname === node && r.start === m.start && r.extent?.offset === m.lo - m.start && r.extent.length === m.hi - m.lo);
  assert.deepEqual(second.filter((m) => !inLog(m)), []);
});
