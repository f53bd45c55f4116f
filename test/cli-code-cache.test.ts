// pmcstat's code cache (cli/code-cache.ts): a run leaves V8's compiled code
// of the chunks it loaded on demand, the next run uses it; a cache V8 or the
// identity check refuses is replaced, never trusted; none is written after an
// analysis or with TSPMC_CACHE_DIR='', and none is read from another user.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { logText, ok, pmcstat, tempDir } from './cli-fixture.js';

/** A sampling run that records no sample (the period is never reached): start-up and end only. */
function startOnly(dir: string, env: NodeJS.ProcessEnv, extra: string[] = []): string {
  const log = join(dir, `${Math.random().toString(36).slice(2)}.pmclog`);
  ok(pmcstat(['-n', '1000000000000', '-P', 'cpu-clock', '-O', log, ...extra, '--', 'true'], { env }), 'pmcstat -P cpu-clock');
  return log;
}

const cacheFiles = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).filter((f) => f.startsWith('code-')).sort() : []);
const mtimes = (dir: string): number[] => cacheFiles(dir).map((f) => statSync(join(dir, f)).mtimeMs);

test('a run leaves the code of the chunks it loaded; the next run uses it as it is', () => {
  const dir = tempDir('tspmc-code-cache-');
  const cache = join(dir, 'cache');
  const env = { TSPMC_CACHE_DIR: cache, TSPMC_ADMIN_STATE: join(dir, 'admin.json') };
  const first = startOnly(dir, env);
  const files = cacheFiles(cache);
  assert.ok(files.includes('code-sampling-chunks_load.cjs.v8') && files.includes('code-sampling-chunks_run-measurement.cjs.v8'), files.join(' '));
  // Each names the bundle file it was made from, then V8's data.
  const head = readFileSync(join(cache, 'code-sampling-chunks_load.cjs.v8'), 'latin1').split('\n', 1)[0]!;
  assert.match(head, /\/bin\/chunks\/load\.cjs \d+ [\d.]+$/);
  // A counting run keeps its own (it calls other functions of the same chunks).
  ok(pmcstat(['-p', 'task-clock', '--', 'true'], { env }), 'pmcstat -p task-clock');
  assert.ok(cacheFiles(cache).includes('code-counting-chunks_load.cjs.v8'), cacheFiles(cache).join(' '));
  const before = mtimes(cache);
  const second = startOnly(dir, env);
  // A cache V8 refused would have been written again as the run ended.
  assert.deepEqual(mtimes(cache), before);
  const kinds = (log: string) => logText(log).map((l) => l.split(/\s+/)[0]).filter(Boolean);
  assert.deepEqual(kinds(second), kinds(first));
});

test('a damaged cache, or one made from another source, is replaced and the run is unchanged', () => {
  const dir = tempDir('tspmc-code-cache-');
  const cache = join(dir, 'cache');
  const env = { TSPMC_CACHE_DIR: cache, TSPMC_ADMIN_STATE: join(dir, 'admin.json') };
  startOnly(dir, env);
  const load = join(cache, 'code-sampling-chunks_load.cjs.v8');
  const codec = join(cache, 'code-sampling-chunks_codec.cjs.v8');
  const good = readFileSync(load);
  const head = good.toString('latin1').split('\n', 1)[0]!;
  // The right source named, the data garbage: V8 refuses it.
  writeFileSync(load, Buffer.concat([Buffer.from(`${head}\n`, 'latin1'), Buffer.alloc(4096, 0x5a)]));
  // Another file's data under this file's name: the identity line does not match.
  writeFileSync(codec, good);
  const log = startOnly(dir, env);
  assert.ok(logText(log).some((l) => l.startsWith('closelog')));
  assert.ok(readFileSync(load).subarray(head.length + 1, head.length + 64).some((b) => b !== 0x5a), 'the damaged cache was replaced');
  assert.match(readFileSync(codec, 'latin1').split('\n', 1)[0]!, /\/bin\/chunks\/codec\.cjs /);
});

test('no cache after an analysis (V8 flags changed) nor with TSPMC_CACHE_DIR empty', () => {
  const dir = tempDir('tspmc-code-cache-');
  const cache = join(dir, 'cache');
  startOnly(dir, { TSPMC_CACHE_DIR: cache, TSPMC_ADMIN_STATE: join(dir, 'admin.json') }, ['-G', join(dir, 'callgraph.txt')]);
  assert.deepEqual(cacheFiles(cache), []);
  const home = join(dir, 'home');
  startOnly(dir, { TSPMC_CACHE_DIR: '', HOME: home, XDG_CACHE_HOME: '', TSPMC_ADMIN_STATE: join(dir, 'admin.json') });
  assert.equal(existsSync(join(home, '.cache')), false);
});

test('a cache file another user owns is not read', { skip: process.geteuid?.() !== 0 && 'needs root (chown)' }, () => {
  const dir = tempDir('tspmc-code-cache-');
  const cache = join(dir, 'cache');
  const env = { TSPMC_CACHE_DIR: cache, TSPMC_ADMIN_STATE: join(dir, 'admin.json') };
  startOnly(dir, env);
  const load = join(cache, 'code-sampling-chunks_load.cjs.v8');
  chownSync(load, 65534, 65534);
  startOnly(dir, env);
  // Not read, so made again and put in its place: this user's now.
  assert.equal(statSync(load).uid, 0);
});
