// pmcd's own signals: a SIGTERM that comes while pmcd starts (its socket just
// made, its metrics' system PMCs being opened) ends it as cleanly as one that
// comes later; run by npm (npx pmcd), whose shell dies of the signal without
// passing it on, pmcd stops with that shell instead of living on orphaned.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killChildren, PMCD, waitFor } from './pmcd-fixture.js';

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pmcd-signals-'));
  writeFileSync(join(dir, 'tspmc.conf'), '\n');
  return dir;
}

function pmcdEnv(dir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, TSPMC_ADMIN_STATE: join(dir, 'admin.json'), TSPMC_CONFIG: join(dir, 'tspmc.conf'), ...extra };
}

/** Whether `pid` is gone (or a zombie nobody reaped yet: it holds nothing any more). */
function gone(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

test('SIGTERM as soon as the socket exists, while the metrics PMCs open: released, socket removed, status 0', async () => {
  const dir = tempDir();
  const children: ChildProcess[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const socket = join(dir, `pmcd${i}.sock`);
      const child = spawn(process.execPath, [PMCD, '--socket', socket, '--metrics', '127.0.0.1:0'], { env: pmcdEnv(dir), stdio: ['ignore', 'ignore', 'pipe'] });
      children.push(child);
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const exited = once(child, 'exit');
      await waitFor('the socket', () => existsSync(socket) || child.exitCode !== null);
      child.kill('SIGTERM');
      const [code, signal] = (await exited) as [number | null, string | null];
      assert.deepEqual({ code, signal }, { code: 0, signal: null }, stderr);
      assert.match(stderr, /SIGTERM: releasing every owner/);
      assert.equal(existsSync(socket), false, 'the socket is removed');
    }
  } finally {
    await killChildren(children);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('run by npm (npx pmcd): the shell npm signals dies without passing it on, and pmcd stops with it', async () => {
  const dir = tempDir();
  const socket = join(dir, 'pmcd.sock');
  // npm exec runs `sh -c pmcd ...` and sends SIGINT/SIGTERM to that shell only.
  const shell = spawn('/bin/sh', ['-c', `"${process.execPath}" "${PMCD}" --socket "${socket}" & echo $!; wait`], {
    env: pmcdEnv(dir, { npm_lifecycle_event: 'npx' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let out = '';
  shell.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  shell.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let pid = 0;
  try {
    await waitFor('pmcd serving', () => stderr.includes('pmcd: serving'));
    pid = Number(out.trim());
    assert.ok(pid > 0, out);
    shell.kill('SIGTERM');
    await waitFor('pmcd to end after its shell', () => gone(pid));
    assert.match(stderr, /SIGTERM: releasing every owner/);
    assert.equal(existsSync(socket), false, 'the socket is removed');
  } finally {
    if (pid > 0 && !gone(pid)) process.kill(pid, 'SIGKILL');
    await killChildren([shell]);
    rmSync(dir, { recursive: true, force: true });
  }
});
