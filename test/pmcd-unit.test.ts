// systemd/pmcd.service, the unit an administrator installs: systemd's own
// checker accepts it (where systemd-analyze is installed), pmcd's default
// socket and PMCADMIN state lie where the unit's sandbox lets it write, and
// pmcd started exactly as its ExecStart says (moved to a temporary socket by
// its config file) serves clients and stops on the unit's KillSignal with
// status 0 within TimeoutStopSec (else systemd would SIGKILL it and call
// the stop a failure).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SOCKET, PMCD_STOP_BOUND_MS } from '../src/daemon/server.js';
import { Libpmc } from '../src/lib/index.js';
import { connectPmcd } from '../src/lib/open-client.js';
import { DEFAULT_ADMIN_STATE } from '../src/module/admin-state.js';
import { PMCD } from './pmcd-fixture.js';
import { hangGuard } from './proc-fixture.js';

const UNIT = fileURLToPath(new URL('../../systemd/pmcd.service', import.meta.url));
/** Where the unit's ExecStart expects pmcd (npm install -g). */
const INSTALLED = '/usr/local/bin/pmcd';

/** The unit's settings: section -> key -> values (a key may repeat). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      sections.set(section[1], (current = new Map()));
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    assert.ok(kv && current, `unit line "${line}" is a key=value in a section`);
    current.set(kv[1], [...(current.get(kv[1]) ?? []), kv[2]]);
  }
  return sections;
}

const unit = parseUnit(readFileSync(UNIT, 'utf8'));
const service = (key: string): string => {
  const v = unit.get('Service')?.get(key);
  assert.ok(v?.length === 1, `[Service] ${key}= once`);
  return v[0];
};
const seconds = (text: string): number => {
  const m = /^(\d+)(s|min)?$/.exec(text);
  assert.ok(m, `a time span in seconds or minutes: ${text}`);
  return Number(m[1]) * (m[2] === 'min' ? 60 : 1);
};

const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });

test('systemd-analyze verify accepts the unit, warnings included', { skip: analyze.status !== 0 && 'systemd-analyze is not installed (Debian: the systemd package)' }, () => {
  // An image of the machine's unit directory, with pmcd where ExecStart looks for it: the checker
  // follows the unit's dependencies and checks that ExecStart is executable, within --root.
  const root = mkdtempSync(join(tmpdir(), 'tspmc-unit-'));
  try {
    cpSync('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true });
    mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
    cpSync(UNIT, join(root, 'etc/systemd/system/pmcd.service'));
    mkdirSync(join(root, dirname(INSTALLED)), { recursive: true });
    writeFileSync(join(root, INSTALLED), `#!/bin/sh\nexec ${process.execPath} ${PMCD} "$@"\n`);
    chmodSync(join(root, INSTALLED), 0o755);
    const r = spawnSync('systemd-analyze', ['verify', `--root=${root}`, 'pmcd.service'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.trim(), '', 'no warning about the unit');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the sandbox leaves pmcd the paths it writes, and gives it time to stop', () => {
  const runtime = `/run/${service('RuntimeDirectory')}`;
  assert.equal(dirname(DEFAULT_SOCKET), runtime, 'the default socket is in the RuntimeDirectory');
  assert.equal(dirname(DEFAULT_ADMIN_STATE), runtime, 'PMCADMIN\'s state is in the RuntimeDirectory');
  assert.equal(service('RuntimeDirectoryPreserve'), 'yes', 'PMCADMIN\'s state survives a restart');
  if (service('ProtectSystem') === 'strict') assert.ok(service('ReadWritePaths').split(/\s+/).includes(runtime), 'ProtectSystem=strict: the RuntimeDirectory is writable');
  assert.ok(seconds(service('TimeoutStopSec')) * 1000 > PMCD_STOP_BOUND_MS, `pmcd ends within ${PMCD_STOP_BOUND_MS} ms of SIGTERM, before systemd's TimeoutStopSec`);
});

test('pmcd started with exactly the unit\'s ExecStart serves, and its KillSignal stops it with status 0', async () => {
  const argv = service('ExecStart').split(/\s+/);
  assert.ok(/^\//.test(argv[0]), 'ExecStart names its program by absolute path, with no prefix');
  assert.equal(argv[0], INSTALLED);
  const signal = service('KillSignal') as NodeJS.Signals;
  const dir = mkdtempSync(join(tmpdir(), 'tspmc-unit-'));
  // The unit reads /etc/tspmc.conf; this pmcd reads a config of its own that moves its socket.
  const socket = join(dir, 'pmcd.sock');
  const config = join(dir, 'tspmc.conf');
  writeFileSync(config, `pmcd.socket = ${socket}\n`);
  const env = { PATH: process.env.PATH, TSPMC_CONFIG: config, TSPMC_ADMIN_STATE: join(dir, 'admin.json') };
  const pmcd = spawn(process.execPath, [PMCD, ...argv.slice(1)], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  pmcd.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = once(pmcd, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  try {
    await hangGuard(
      new Promise<void>((resolve, reject) => {
        pmcd.stderr!.on('data', () => stderr.includes('pmcd: serving') && resolve());
        void exited.then(() => reject(new Error(`pmcd exited: ${stderr}`)));
      }),
      20_000,
      'pmcd start',
    );
    assert.match(stderr, new RegExp(`serving ${socket}`));
    const lib = await hangGuard(connectPmcd(socket).then((c) => Libpmc.init(c)), 20_000, 'connecting');
    try {
      assert.equal(lib.client.constructor.name, 'PmcdClient');
      assert.ok((await hangGuard(lib.driverStats(), 20_000, 'GETDRIVERSTATS')).syscalls > 0);
    } finally {
      await hangGuard(lib.close(), 20_000, 'closing');
    }
    pmcd.kill(signal);
    const [code, sig] = await hangGuard(exited, seconds(service('TimeoutStopSec')) * 1000, `pmcd stopping on ${signal} (systemd's TimeoutStopSec)`);
    assert.deepEqual([code, sig], [0, null], stderr);
    assert.equal(existsSync(socket), false, 'the socket is removed');
  } finally {
    if (pmcd.exitCode === null && pmcd.signalCode === null) {
      pmcd.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
