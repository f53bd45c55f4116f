// libpmc on the in-process module with real perf events: the pmc(3) calls on
// a live child, event specifiers with qualifiers and PMU terms, and the
// countFunction / countCommand conveniences.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { countCommand, countFunction } from '../src/lib/count.js';
import { Libpmc } from '../src/lib/libpmc.js';
import { PmcCaps, PmcMode, pmcIdToRow } from '../src/module/pmc-types.js';
import { PmcError } from '../src/pmc-error.js';
import { CountWorkload, useCountWorkload } from './count-workload-fixture.js';

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
const isRoot = process.getuid?.() === 0;

useCountWorkload('lib-libpmc-');

async function expectCode(code: string, fn: () => Promise<unknown>, why: string): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof PmcError, `${why}: expected a PmcError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, `${why}: ${e.message}`);
    return;
  }
  assert.fail(`${why}: expected ${code}, but it succeeded`);
}

test('allocate, attach, start, read, stop, write, rw, setCount and release on a live child', async () => {
  const lib = await Libpmc.init();
  const w = await CountWorkload.start('spin', '200');
  const id = await lib.allocate('task-clock', 'TC');
  assert.deepEqual(lib.describe(id), { id, spec: 'task-clock', eventName: 'task-clock', mode: PmcMode.TC, cpu: -1 });
  const caps = await lib.capabilities(id);
  assert.ok(caps & PmcCaps.READ && caps & PmcCaps.WRITE);
  assert.equal(await lib.width(id), 64);
  await lib.attach(id, w.pid);
  await lib.start(id);
  await w.go();
  const running = await lib.read(id);
  assert.ok(running > 150_000_000n, `${running} ns for 200 ms of spinning`);
  await expectCode('EBUSY', () => lib.write(id, 1n), 'writing a running PMC');
  await expectCode('EBUSY', () => lib.setCount(id, 1n), 'setting the count of a running PMC');
  await lib.stop(id);
  const stopped = await lib.read(id);
  assert.ok(stopped >= running);
  await lib.write(id, 1000n);
  assert.equal(await lib.read(id), 1000n);
  assert.equal(await lib.rw(id, 5n), 1000n, 'rw returns the old value');
  assert.equal(await lib.read(id), 5n);
  await lib.setCount(id, 42n);
  assert.equal(await lib.read(id), 42n);

  const info = (await lib.pmcInfo(0))[pmcIdToRow(id)];
  assert.deepEqual([info.ownerPid, info.eventName, info.mode], [process.pid, 'task-clock', PmcMode.TC]);
  await lib.detach(id, w.pid);
  assert.equal(await lib.read(id), 42n, 'a detached target leaves its count behind');
  await lib.release(id);
  assert.equal(lib.describe(id), undefined);
  await expectCode('ESRCH', () => lib.read(id), 'a released PMC');
  await w.finish();
  await lib.close();
});

test('qualifiers: page-faults,usr counts the faults of user code, page-faults,os only kernel ones', async () => {
  const pages = 2000;
  const lib = await Libpmc.init();
  const w = await CountWorkload.start('pages', String(pages));
  const usr = await lib.allocate('page-faults,usr', 'TC');
  const os = await lib.allocate('page-faults,os', 'TC');
  for (const id of [usr, os]) await lib.attach(id, w.pid);
  for (const id of [usr, os]) await lib.start(id);
  await w.go();
  const [u, k] = [await lib.read(usr), await lib.read(os)];
  assert.ok(u >= BigInt(pages), `${u} user-mode faults for ${pages} pages written by user code`);
  assert.ok(k < u / 10n, `${k} kernel-mode faults`);
  await w.finish();
  await lib.close();
});

test('task-clock,os is allowed to root and counts', { skip: !isRoot && 'needs root (kernel profiling)' }, async () => {
  const lib = await Libpmc.init();
  const w = await CountWorkload.start('spin', '50');
  const id = await lib.allocate('task-clock,os', 'TC');
  await lib.attach(id, w.pid);
  await lib.start(id);
  await w.go();
  // The kernel's task-clock counts time, not a mode: the qualifier only filters its samples.
  assert.ok((await lib.read(id)) > 0n);
  await w.finish();
  await lib.close();
});

test('msr/tsc/ counts in process mode, or says clearly that it cannot', async () => {
  const lib = await Libpmc.init();
  const msr = (await lib.eventClasses()).find((c) => c.name === 'msr');
  if (!msr?.available) {
    await expectCode('ENOENT', () => lib.allocate('msr/tsc/', 'TC'), 'msr/tsc/ without an msr PMU');
    return;
  }
  const w = await CountWorkload.start('spin', '100');
  let id: number;
  try {
    id = await lib.allocate('msr/tsc/', 'TC');
    await lib.attach(id, w.pid);
  } catch (e) {
    // A PMU that counts per CPU only must say so by name.
    assert.ok(e instanceof PmcError && e.code === 'EINVAL' && /msr.*per CPU/.test(e.message), String(e));
    await w.finish();
    await lib.close();
    return;
  }
  const clock = await lib.allocate('task-clock', 'TC');
  await lib.attach(clock, w.pid);
  await lib.start(id);
  await lib.start(clock);
  await w.go();
  const [tsc, ns] = [Number(await lib.read(id)), Number(await lib.read(clock))];
  // The time stamp counter ticks at a fixed rate of a few GHz while the target runs.
  const ghz = tsc / ns;
  assert.ok(ghz > 0.2 && ghz < 10, `${tsc} TSC ticks in ${ns} ns of task-clock (${ghz.toFixed(2)} GHz)`);
  await w.finish();
  await lib.close();
});

test('countFunction counts the function it runs and hands back its result', async () => {
  const pages = 1000;
  let inside = { user: 0, system: 0 };
  const token = { sum: 0 };
  const { result, counts } = await countFunction(['task-clock', 'page-faults'], () => {
    const t0 = process.cpuUsage();
    for (let i = 0; i < 30_000_000; i++) token.sum += i % 7;
    const b = Buffer.alloc(pages * 4096);
    for (let i = 0; i < b.length; i += 4096) b[i] = 1;
    inside = process.cpuUsage(t0);
    return token;
  });
  assert.equal(result, token);
  assert.deepEqual(
    counts.map((c) => c.event),
    ['task-clock', 'page-faults'],
  );
  const [clock, faults] = counts.map((c) => Number(c.value));
  const insideNs = (inside.user + inside.system) * 1000;
  assert.ok(clock >= 0.9 * insideNs, `task-clock ${clock} ns, the function used ${insideNs} ns`);
  assert.ok(faults >= pages * 0.9, `${faults} page faults for ${pages} fresh pages`);
});

test('countCommand counts the command from its first instruction and passes its exit status through', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'count-command-'));
  try {
    const statFile = path.join(dir, 'stat');
    // The shell spins, then has cat copy the shell's own /proc stat: its CPU time until then.
    const script = `i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; cat /proc/$$/stat > ${statFile}`;
    const r = await countCommand(['task-clock', 'page-faults'], ['sh', '-c', script], { stdio: 'ignore' });
    assert.equal(r.exitStatus, 0);
    const stat = readFileSync(statFile, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const shellNs = ((Number(f[11]) + Number(f[12])) * 1e9) / CLK_TCK;
    const [clock, faults] = r.counts.map((c) => Number(c.value));
    const slack = 0.05 * shellNs + (2 * 1e9) / CLK_TCK;
    assert.ok(Math.abs(clock - shellNs) <= slack, `task-clock ${clock} ns, the shell used ${shellNs} ns (±${slack})`);
    assert.ok(faults > 0, 'exec alone faults pages in');
    assert.ok(r.elapsedNs >= BigInt(clock) / 2n, `elapsed ${r.elapsedNs} ns`);

    assert.equal((await countCommand(['task-clock'], ['sh', '-c', 'exit 3'], { stdio: 'ignore' })).exitStatus, 3);
    assert.equal((await countCommand(['task-clock'], ['sh', '-c', 'kill -TERM $$'], { stdio: 'ignore' })).exitStatus, 128 + 15);
    await expectCode('ENOENT', () => countCommand(['task-clock'], ['no-such-command-here'], { stdio: 'ignore' }), 'a missing command');
    await expectCode('ENOENT', () => countCommand(['no-such-event-anywhere'], ['true'], { stdio: 'ignore' }), 'an unknown event');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
