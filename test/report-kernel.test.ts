// Kernel frames of a log: resolved once the log is read, with kallsyms read
// on a worker thread meanwhile, or from the per-boot cache of the parsed
// /proc/kallsyms (report/kallsyms-thread.ts, report/kallsyms-cache.ts).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodedLength, encodeRecord } from '../src/log/codec.js';
import { LogType, type LogRecord } from '../src/log/records.js';
import { pmcstat } from './cli-fixture.js';
import { tempDir } from './report-fixture.js';

const dir = tempDir('tspmc-report-kernel-');
after(() => rmSync(dir, { recursive: true, force: true }));

function writeLog(path: string, chains: bigint[][]): void {
  const recs: LogRecord[] = [
    { type: LogType.PMCALLOCATEDYN, ts: 1, pmcid: 0x100, event: 0, flags: 0, rate: 1000n, eventName: 'cpu-clock' },
    { type: LogType.MAP_IN, ts: 2, pid: -1, start: 0xffffffff81000000n, pathname: '[kernel.kallsyms]' },
    ...chains.map((pcs, i): LogRecord => ({ type: LogType.CALLCHAIN, ts: 10 + i, pid: 0, tid: 0, pmcid: 0x100, cpu: 0, flags: 0, pcs: BigUint64Array.from(pcs) })),
    { type: LogType.CLOSELOG, ts: 1000 },
  ];
  const bytes = new Uint8Array(recs.reduce((n, r) => n + encodedLength(r), 0));
  let at = 0;
  for (const r of recs) at = encodeRecord(r, bytes, at);
  writeFileSync(path, bytes);
}

function folded(log: string, args: string[], env: NodeJS.ProcessEnv): string {
  const out = join(dir, 'out.folded');
  rmSync(out, { force: true });
  const r = pmcstat(['-R', log, '--folded', out, ...args], { env });
  assert.equal(r.status, 0, r.stderr);
  return readFileSync(out, 'utf8');
}

test('kernel frames resolve through a kallsyms copy (-k), read on a worker thread while the log is read', () => {
  const copy = join(dir, 'kallsyms');
  writeFileSync(copy, ['ffffffff81000000 T _stext', 'ffffffff81000100 t local_helper', 'ffffffff81000200 T do_syscall_64', 'ffffffffc0001000 t mod_func\t[mymod]', ''].join('\n'));
  const log = join(dir, 'copy.pmclog');
  // A sampled PC, then return addresses (looked up one byte before: 0x...200 is still local_helper).
  writeLog(log, [
    [0xffffffff81000250n, 0xffffffff81000200n],
    [0xffffffff81000250n, 0xffffffff81000200n],
    [0xffffffffc0001004n, 0xffffffff81000201n],
  ]);
  assert.equal(folded(log, ['-k', copy], { TSPMC_CACHE_DIR: join(dir, 'unused-cache') }), 'swapper;do_syscall_64_[k];mod_func_[k] 1\nswapper;local_helper_[k];do_syscall_64_[k] 2\n');
  assert.ok(!existsSync(join(dir, 'unused-cache')), 'a copy given with -k is not cached');
});

test('/proc/kallsyms is parsed once per boot: cold, cached, and a damaged cache file, the same frames', (t) => {
  const lines = readFileSync('/proc/kallsyms', 'latin1').split('\n').map((l) => l.split(/\s+/));
  const text = lines.filter((f) => /^[Tt]$/.test(f[1] ?? '') && !/^0+$/.test(f[0]) && f.length === 3);
  if (text.length < 100) {
    t.skip('kernel addresses are hidden from this user (kptr_restrict)');
    return;
  }
  // Symbols alone at their address, each followed by a higher one: their names are the only answers.
  const counts = new Map<string, number>();
  for (const f of text) counts.set(f[0], (counts.get(f[0]) ?? 0) + 1);
  const picks = text.filter((f, i) => counts.get(f[0]) === 1 && i + 1 < text.length && text[i + 1][0] > f[0]).filter((_, i) => i % 997 === 0).slice(0, 8);
  const log = join(dir, 'live.pmclog');
  writeLog(log, picks.map((f) => [BigInt('0x' + f[0]) + 1n]));
  const expected = picks.map((f) => `swapper;${f[2]}_[k] 1\n`).sort().join('');
  const cache = join(dir, 'cache');
  const env = { TSPMC_CACHE_DIR: cache };
  assert.equal(folded(log, [], env), expected, 'cold: read on a worker thread');
  const files = readdirSync(cache);
  assert.equal(files.length, 1, files.join(' '));
  assert.match(files[0], /^kallsyms-[0-9a-f-]+-[0-9a-f]+\.bin$/);
  assert.equal(folded(log, [], env), expected, 'warm: from the cache');
  truncateSync(join(cache, files[0]), 1000);
  assert.equal(folded(log, [], env), expected, 'a damaged cache file is read around, and replaced');
  assert.ok(readFileSync(join(cache, files[0])).length > 1000);
  rmSync(cache, { recursive: true });
  assert.equal(folded(log, [], { TSPMC_CACHE_DIR: '' }), expected, 'no cache');
  assert.ok(!existsSync(cache));
});
