// What a program pays for at start. Measuring in process must not load
// pmcd's socket client or the op schemas it checks replies with (zod: ~14
// MiB and ~35 ms of CPU per process); a program that talks to pmcd does. A
// plain counting or sampling run asks the kernel only about the classes its
// PMCs use: no probe of HW, CACHE, tracefs or the PMUs (~44 failing
// perf_event_open calls on a machine without a PMU). pmcstat runs as its
// CommonJS bundle (dist/bin): a handful of files, not tspmc's ~90 ES modules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixture, PMCCONTROL, PMCSTAT } from './cli-fixture.js';
import { TestPmcd } from './pmcd-fixture.js';

const LIB = fileURLToPath(new URL('../src/lib/index.js', import.meta.url));

/**
 * Every module URL a fresh Node resolves while it imports lib and measures
 * task-clock once. A resolve hook reports each URL; a last import of a
 * marker tells when every report before it has arrived.
 */
function modulesLoaded(env: NodeJS.ProcessEnv): string[] {
  const hook = `let port; export function initialize(d) { port = d.port; }
    export async function resolve(s, c, next) { const r = await next(s, c); port.postMessage(r.url); return r; }`;
  const script = `
    import { register } from 'node:module';
    import { MessageChannel } from 'node:worker_threads';
    const { port1, port2 } = new MessageChannel();
    const urls = [];
    const MARK = 'data:text/javascript,export{}';
    const marked = new Promise((r) => port1.on('message', (u) => (urls.push(u), u === MARK && r())));
    register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}), { data: { port: port2 }, transferList: [port2] });
    const { Libpmc } = await import(${JSON.stringify(LIB)});
    const lib = await Libpmc.init();
    const id = await lib.allocate('task-clock', 'TC');
    await lib.attach(id, 0);
    await lib.start(id);
    if (typeof (await lib.read(id)) !== 'bigint') throw new Error('no count');
    await lib.close();
    await import(MARK);
    await marked;
    port1.close();
    console.log(JSON.stringify(urls));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env, timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
}

const zodOf = (urls: string[]): string[] => urls.filter((u) => u.includes('/node_modules/zod/'));

test('measuring in process loads neither zod nor the pmcd client', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tspmc-imports-'));
  try {
    const urls = modulesLoaded({ ...process.env, TSPMC_LOCAL: '1', TSPMC_ADMIN_STATE: join(dir, 'admin.json') });
    assert.ok(urls.some((u) => u.endsWith('/src/module/pmc-module.js')), 'the module ran in this process');
    assert.deepEqual(zodOf(urls), []);
    assert.deepEqual(urls.filter((u) => /\/src\/(lib\/pmcd-client|module\/op-table|daemon\/)/.test(u)), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('through pmcd the socket client and its schemas are loaded (what the check above would see)', async () => {
  const pmcd = await TestPmcd.start();
  try {
    const urls = modulesLoaded(pmcd.clientEnv());
    assert.ok(urls.some((u) => u.endsWith('/src/lib/pmcd-client.js')));
    assert.ok(zodOf(urls).length > 0, 'zod checks pmcd\'s replies');
  } finally {
    await pmcd.cleanup();
  }
});

/** perf_event_open calls (and those that failed) of `argv` and its children, from the syscall tracepoints. */
function perfEventOpens(argv: string[], env: NodeJS.ProcessEnv): { calls: number; failed: number } {
  const r = spawnSync('perf', ['stat', '-x,', '-e', 'syscalls:sys_enter_perf_event_open', '-e', 'syscalls:sys_exit_perf_event_open', '--filter', 'ret < 0', '--', ...argv], { encoding: 'utf8', env, timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const count = (event: string): number => Number(r.stderr.split('\n').find((l) => l.includes(event))?.split(',')[0]);
  return { calls: count('sys_enter_perf_event_open'), failed: count('sys_exit_perf_event_open') };
}

const syscallTracepoints = spawnSync('perf', ['stat', '-e', 'syscalls:sys_enter_perf_event_open', 'true']).status === 0;

test('a plain counting or sampling run probes only the class its PMCs use', { skip: !syscallTracepoints && 'needs perf and the syscalls tracepoints (root, tracefs)' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tspmc-probes-'));
  try {
    const env = { ...process.env, TSPMC_LOCAL: '1', TSPMC_ADMIN_STATE: join(dir, 'admin.json') };
    // Listing every class asks the kernel about each: what a plain run must not pay.
    const all = perfEventOpens([process.execPath, PMCCONTROL, '-L'], env);
    const runs = {
      'pmcstat -p task-clock -- true': perfEventOpens([process.execPath, PMCSTAT, '-p', 'task-clock', '--', 'true'], env),
      'pmcstat -P cpu-clock -O log -- true': perfEventOpens([process.execPath, PMCSTAT, '-n', '1000000000000', '-P', 'cpu-clock', '-O', join(dir, 'log'), '--', 'true'], env),
    };
    t.diagnostic(`perf_event_open calls (failed): pmccontrol -L ${all.calls} (${all.failed}); ${Object.entries(runs).map(([k, v]) => `${k} ${v.calls} (${v.failed})`).join('; ')}`);
    for (const [what, opens] of Object.entries(runs)) {
      // SOFT's events open here: a failed open is a probe of a class the run does not use.
      assert.equal(opens.failed, 0, `${what}: ${opens.failed} failed perf_event_open calls`);
      assert.ok(opens.calls > 0 && opens.calls < all.calls / 2, `${what}: ${opens.calls} perf_event_open calls, against ${all.calls} to list every class`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pmcstat -P runs from its bundle: every file of tspmc it loads is in dist/bin', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tspmc-bundle-'));
  try {
    const env = { ...process.env, TSPMC_LOCAL: '1', TSPMC_ADMIN_STATE: join(dir, 'admin.json') };
    const r = spawnSync(process.execPath, ['-r', fixture('loaded-files.cjs'), PMCSTAT, '-n', '1000000000000', '-P', 'cpu-clock', '-O', join(dir, 'log'), '--', 'true'], { encoding: 'utf8', env, timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const line = r.stderr.split('\n').find((l) => l.startsWith('loaded-files '));
    assert.ok(line, r.stderr);
    const files = JSON.parse(line.slice('loaded-files '.length)) as string[];
    const dist = fileURLToPath(new URL('..', import.meta.url));
    const ours = files.filter((f) => f.startsWith(dist));
    assert.ok(ours.includes(PMCSTAT) && ours.some((f) => f.endsWith('/bin/chunks/load.cjs')), `the bundle and its module chunk: ${ours.join(' ')}`);
    assert.deepEqual(ours.filter((f) => !f.startsWith(join(dist, 'bin/'))), []);
    assert.ok(ours.length <= 12, `${ours.length} files of tspmc: ${ours.join(' ')}`);
    assert.ok(files.some((f) => f.includes('/node_modules/koffi/')), 'koffi, through require');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('no source imports node:process (its ES module view runs every getter of process, some ms of each start)', () => {
  const src = fileURLToPath(new URL('../../src/', import.meta.url));
  const offenders = (readdirSync(src, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.ts'))
    .filter((f) => /from ['"](node:)?process['"]/.test(readFileSync(join(src, f), 'utf8')));
  assert.deepEqual(offenders, []);
});
