// A file mapped twice, with code generated next to the second mapping: what
// V8 does to node's text (its builtins mapped again inside the JIT code range).
// Samples in the generated code are nobody's; samples in the second mapping
// are the file's functions, and so are those in the text. Sampled for real
// with cpu-clock (test/fixtures/sampling-remap.c), then read back by every
// output of pmcstat -R, and as an older log without the mappings' extents.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Libpmc, LocalModuleClient } from '../src/lib/index.js';
import { encodedLength, encodeRecord } from '../src/log/codec.js';
import { readLog } from '../src/log/log-reader.js';
import { LogType, PMC_CC_F_USERSPACE, type LogRecord } from '../src/log/records.js';
import { loadModule } from '../src/module/load.js';
import { analyzeLog, type AnalysisResult } from '../src/report/analyze.js';
import { buildC, ok, pmcstat, tempDir } from './cli-fixture.js';

process.env.TSPMC_CACHE_DIR ??= '';
const dir = tempDir('sampling-remap-');
after(() => rmSync(dir, { recursive: true, force: true }));

const DECOY = 'decoy_never_called';
const prog = buildC(dir, 'sampling-remap.c', 'remap');
// An empty directory for perf-PID.map: a stale map in /tmp must not name the copy.
const noMaps = join(dir, 'no-maps');

const parseRanges = (stdout: string): Ranges => {
  const m = /^remap (0x[0-9a-f]+) (0x[0-9a-f]+) anon (0x[0-9a-f]+) (0x[0-9a-f]+)$/m.exec(stdout);
  assert.ok(m, stdout);
  return { remap: [BigInt(m[1]), BigInt(m[2])], anon: [BigInt(m[3]), BigInt(m[4])] };
};

interface Ranges {
  remap: [bigint, bigint];
  anon: [bigint, bigint];
}

const inRange = (pc: bigint, [lo, hi]: [bigint, bigint]): boolean => pc >= lo && pc < hi;

/** Leaf frames of the program's user-mode samples, by where the sampled PC is. */
function leaves(result: AnalysisResult, pid: number, ranges: Ranges): { remap: string[]; anon: { name: string; image: string | undefined }[]; text: string[] } {
  const out = { remap: [] as string[], anon: [] as { name: string; image: string | undefined }[], text: [] as string[] };
  for (const s of result.samples!) {
    if (s.pid !== pid || s.pcs[0] >= 0xffff_8000_0000_0000n) continue;
    const f = s.frames[0];
    const name = result.frames.name(f);
    if (inRange(s.pcs[0], ranges.remap)) out.remap.push(name);
    else if (inRange(s.pcs[0], ranges.anon)) out.anon.push({ name, image: result.frames.image(f)?.path });
    else out.text.push(name);
  }
  return out;
}

test('code next to a second mapping of the executable is not named after the executable; the mapping and the text are', async () => {
  const log = join(dir, 'remap.pmclog');
  const run = ok(pmcstat(['-n', '100000', '-P', 'cpu-clock', '-O', log, '--', prog, '100000000']), 'pmcstat -P cpu-clock -- remap');
  const ranges = parseRanges(run.stdout);

  const records: LogRecord[] = [];
  for await (const r of readLog(log)) records.push(r);
  const exec = records.find((r) => r.type === LogType.PROCEXEC && r.pathname === prog);
  const pid = exec?.type === LogType.PROCEXEC ? exec.pid : undefined;
  assert.ok(pid, 'PROCEXEC of the program');
  // The collector logged both mappings of the program with their extents (the remap: two pages at its address).
  const maps = records.filter((r) => r.type === LogType.MAP_IN && r.pid === pid && r.pathname === prog);
  assert.ok(maps.some((r) => r.type === LogType.MAP_IN && r.extent && r.start + r.extent.offset === ranges.remap[0] && r.extent.length === 0x2000n), JSON.stringify(maps, (_, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v)));
  const userSamples = records.filter((r) => r.type === LogType.CALLCHAIN && r.pid === pid && r.flags & PMC_CC_F_USERSPACE).length;

  const fixed = leaves(await analyzeLog(records, { keepSamples: true, perfMapDir: noMaps }), pid, ranges);
  // spin ran N iterations in each place: every place has samples (CPU time, so busy CPUs do not change it).
  assert.ok(fixed.anon.length > 20 && fixed.remap.length > 20 && fixed.text.filter((n) => n === 'spin').length > 20, `${userSamples} user samples: ${fixed.text.length} text, ${fixed.remap.length} remap, ${fixed.anon.length} copy`);
  for (const a of fixed.anon) assert.equal(a.image, undefined, `a sample in the copied code is named ${a.name} (image ${a.image})`);
  assert.ok(fixed.anon.every((a) => /^0x[0-9a-f]+$/.test(a.name)), 'printed as addresses');
  assert.deepEqual([...new Set(fixed.remap)], ['spin'], 'the second mapping holds spin');

  // Every output of pmcstat -R resolves through the same address spaces.
  const out = (name: string): string => join(dir, name);
  ok(pmcstat(['-R', log, '-G', out('graph.txt'), '--folded', out('folded.txt'), '--flamegraph', out('flame.html'), '--speedscope', out('speedscope.json'), '--pprof', out('profile.pb.gz'), '-m', out('pcs.txt')]), 'pmcstat -R with every output');
  const texts: [string, string][] = [
    ['-G', readFileSync(out('graph.txt'), 'utf8')],
    ['--folded', readFileSync(out('folded.txt'), 'utf8')],
    ['--flamegraph', readFileSync(out('flame.html'), 'utf8')],
    ['--speedscope', readFileSync(out('speedscope.json'), 'utf8')],
    ['--pprof', gunzipSync(readFileSync(out('profile.pb.gz'))).toString('latin1')],
    ['-m', readFileSync(out('pcs.txt'), 'utf8')],
  ];
  for (const [option, t] of texts) {
    assert.ok(t.includes('spin'), `${option} names spin`);
    assert.ok(!t.includes(DECOY), `${option} names ${DECOY}, which never ran`);
  }
  // -m lists only samples with a symbol: none in the copy.
  const pcs = texts[5][1].trim().split('\n').map((l) => BigInt(l.split(' ')[0]));
  assert.ok(!pcs.some((pc) => inRange(pc, ranges.anon)));
  assert.ok(pcs.some((pc) => inRange(pc, ranges.remap)));

  // The same log without the extents, as an older tspmc (or hwpmc) wrote it, is still read: as before, the
  // second mapping stands for the whole text, and the copied code next to it is taken for the decoy.
  const old = records.map((r) => (r.type === LogType.MAP_IN ? { type: r.type, ts: r.ts, pid: r.pid, start: r.start, pathname: r.pathname } : r));
  const bytes = new Uint8Array(old.reduce((n, r) => n + encodedLength(r), 0));
  old.reduce((o, r) => encodeRecord(r, bytes, o), 0);
  const oldLog = out('old.pmclog');
  writeFileSync(oldLog, bytes);
  const folded = ok(pmcstat(['-R', oldLog, '--folded', '-']), 'pmcstat -R old log').stdout;
  assert.ok(folded.includes(DECOY), `a log without extents resolves as before:\n${folded}`);
  const before = leaves(await analyzeLog(old, { keepSamples: true, perfMapDir: noMaps }), pid, ranges);
  assert.equal(before.anon.length, fixed.anon.length);
  assert.ok(before.anon.every((a) => a.name === DECOY));
  assert.deepEqual([...new Set(before.remap)], ['spin']);
});

test('a process already running at attach: its mappings come from /proc/PID/maps with their extents', async () => {
  const target = spawn(prog, ['100000000', 'wait'], { stdio: ['pipe', 'pipe', 'inherit'] });
  let stdout = '';
  target.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const exited = once(target, 'exit');
  const lib = await Libpmc.init(new LocalModuleClient(loadModule({ env: { ...process.env, TSPMC_ADMIN_STATE: join(dir, 'admin.json') } })));
  const log = join(dir, 'attach.pmclog');
  const fd = openSync(log, 'w');
  try {
    // The ranges are printed once both mappings exist; then it waits for a byte.
    while (!/^remap .*\n/m.test(stdout) && target.exitCode === null) await Promise.race([once(target.stdout!, 'data'), exited]);
    assert.equal(target.exitCode, null, `the program ended before it was attached to: ${stdout}`);
    await lib.configureLogfile(fd);
    const id = await lib.allocate('cpu-clock', 'TS', { count: 100000n });
    await lib.attach(id, target.pid!);
    await lib.start(id);
    target.stdin!.end('x');
    assert.deepEqual(await exited, [0, null]);
    await lib.stop(id);
    await lib.closeLogfile();
  } finally {
    target.kill('SIGKILL');
    await lib.close();
    closeSync(fd);
  }
  const ranges = parseRanges(stdout);
  const records: LogRecord[] = [];
  for await (const r of readLog(log)) records.push(r);
  // Both mappings of the program, from /proc/PID/maps: the loader's and the remap, each with its extent.
  const maps = records.filter((r) => r.type === LogType.MAP_IN && r.pid === target.pid && r.pathname === prog);
  assert.ok(maps.length >= 2 && maps.every((r) => r.type === LogType.MAP_IN && r.extent), `${maps.length} MAP_IN of the program`);
  assert.ok(maps.some((r) => r.type === LogType.MAP_IN && r.start + r.extent!.offset === ranges.remap[0] && r.extent!.length === 0x2000n));
  const found = leaves(await analyzeLog(records, { keepSamples: true, perfMapDir: noMaps }), target.pid!, ranges);
  assert.ok(found.anon.length > 20 && found.remap.length > 20, `${found.text.length} text, ${found.remap.length} remap, ${found.anon.length} copy samples`);
  assert.deepEqual(found.anon.filter((a) => a.image !== undefined), [], 'samples in the copied code named after a file');
  assert.deepEqual([...new Set(found.remap)], ['spin']);
  assert.ok(found.text.includes('spin'));
});
