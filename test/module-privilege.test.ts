// Privilege: the uid/gid rules of pmc_can_attach on constructed credentials,
// and a real unprivileged user (created for the test) running libpmc: it may
// count its own child, not a root process, and allocates system-mode PMCs
// only when the unprivileged_syspmcs tunable allows.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, chmodSync, constants, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CAP_PERFMON, CAP_SYS_ADMIN, CAP_SYS_PTRACE, type Credentials } from '../src/os/procfs.js';
import { canDebug, isPmcPrivileged, pmcCanAttach } from '../src/module/caller.js';

// ---- pmc_can_attach on constructed credentials ------------------------------------

function creds(c: Partial<Credentials> & { uid?: number; gid?: number }): Credentials {
  const uid = c.uid ?? 1000;
  const gid = c.gid ?? 1000;
  return {
    euid: c.euid ?? uid,
    ruid: c.ruid ?? uid,
    suid: c.suid ?? uid,
    egid: c.egid ?? gid,
    rgid: c.rgid ?? gid,
    sgid: c.sgid ?? gid,
    groups: c.groups ?? [gid],
    capEff: c.capEff ?? 0n,
  };
}

test('pmc_can_attach: the owner effective uid must be one of the target uids', () => {
  const owner = creds({});
  assert.equal(pmcCanAttach(owner, creds({})), true, 'same user');
  assert.equal(pmcCanAttach(owner, creds({ euid: 0, suid: 0 })), true, 'target real uid matches (a setuid program it ran)');
  assert.equal(pmcCanAttach(owner, creds({ euid: 0, ruid: 0 })), true, 'target saved uid matches');
  assert.equal(pmcCanAttach(owner, creds({ ruid: 0, suid: 0 })), true, 'target effective uid matches');
  assert.equal(pmcCanAttach(owner, creds({ uid: 1001 })), false, 'another user');
  assert.equal(pmcCanAttach(creds({ euid: 1001 }), creds({})), false, "the owner's real uid does not count, its effective uid does");
  assert.equal(pmcCanAttach(creds({ ruid: 1001, suid: 1001 }), creds({})), true);
});

test("pmc_can_attach: every group of the target must be one of the owner's", () => {
  const owner = creds({ groups: [1000, 20] });
  assert.equal(pmcCanAttach(owner, creds({ groups: [20] })), true, 'supplementary group the owner has');
  assert.equal(pmcCanAttach(owner, creds({ groups: [1000, 30] })), false, 'a supplementary group the owner lacks declines');
  assert.equal(pmcCanAttach(owner, creds({ rgid: 30 })), false, 'a real gid the owner lacks declines');
  assert.equal(pmcCanAttach(owner, creds({ sgid: 30 })), false, 'a saved gid the owner lacks declines');
  assert.equal(pmcCanAttach(owner, creds({ gid: 20, groups: [] })), true, "the target's gids among the owner's supplementary groups");
  assert.equal(pmcCanAttach(creds({ gid: 30, groups: [] }), creds({ rgid: 30, sgid: 30, egid: 30, groups: [] })), true, "the owner's effective gid counts");
  assert.equal(pmcCanAttach(creds({ gid: 1000, groups: [] }), creds({ groups: [] })), true);
});

test(
  "pmc_can_attach: the target's effective gid must be one of the owner's too",
  () => {
    const owner = creds({ groups: [1000] });
    assert.equal(pmcCanAttach(owner, creds({ egid: 30, groups: [] })), false);
  },
);

test('canDebug: root and CAP_SYS_PTRACE attach anywhere; others follow pmc_can_attach', () => {
  const target = creds({ uid: 0, gid: 0, groups: [0] });
  assert.equal(canDebug(creds({ uid: 0, gid: 0 }), target), true);
  assert.equal(canDebug(creds({ capEff: 1n << CAP_SYS_PTRACE }), target), true);
  assert.equal(canDebug(creds({ capEff: 1n << CAP_PERFMON }), target), false, 'CAP_PERFMON is no licence to debug');
  assert.equal(canDebug(creds({}), target), false);
  assert.equal(canDebug(creds({}), creds({})), true);
});

test('system privilege: root, CAP_PERFMON or CAP_SYS_ADMIN', () => {
  assert.equal(isPmcPrivileged(creds({ uid: 0 })), true);
  assert.equal(isPmcPrivileged(creds({ capEff: 1n << CAP_PERFMON })), true);
  assert.equal(isPmcPrivileged(creds({ capEff: 1n << CAP_SYS_ADMIN })), true);
  assert.equal(isPmcPrivileged(creds({ capEff: 1n << CAP_SYS_PTRACE })), false);
  assert.equal(isPmcPrivileged(creds({ ruid: 0, suid: 0 })), false, 'only the effective uid counts');
});

// ---- a real unprivileged user -------------------------------------------------------

const isRoot = process.getuid?.() === 0;
const DIST = fileURLToPath(new URL('..', import.meta.url)); // dist/
const ROOT = path.dirname(DIST.replace(/\/$/, '')); // the package
const FIXTURE = path.join(ROOT, 'test/fixtures/count-workload.c');

/** What the script run as the user reports for each check. */
interface Outcome {
  ok: boolean;
  code?: string;
  message?: string;
  value?: string;
}

interface Report {
  creds: Omit<Credentials, 'capEff'> & { capEff: string };
  checks: Record<string, Outcome>;
  /** utime + stime of the counted child, from its /proc stat. */
  procTicks: Record<string, number>;
}

// The script the unprivileged user runs: each check's outcome, as JSON, on stdout.
const SCRIPT = `
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
const [dist, workload, rootPid, mode] = process.argv.slice(2);
const { Libpmc } = await import(dist + '/src/lib/libpmc.js');
const { selfCaller } = await import(dist + '/src/module/caller.js');
const { onlineCpus } = await import(dist + '/src/lib/cpu-list.js');
const creds = selfCaller().creds;
const out = { creds: { ...creds, capEff: String(creds.capEff) }, checks: {}, procTicks: {} };
async function check(name, fn) {
  try { out.checks[name] = { ok: true, value: String(await fn()) }; }
  catch (e) { out.checks[name] = { ok: false, code: e.code, message: e.message }; }
}
const lib = await Libpmc.init();
if (mode === 'self') {
  await check('attachSelf', async () => { const id = await lib.allocate('task-clock', 'TC'); await lib.attach(id, 0); });
} else {
  await check('attachRoot', async () => { const id = await lib.allocate('task-clock', 'TC'); await lib.attach(id, Number(rootPid)); });
  for (const spec of ['task-clock', 'task-clock,usr']) {
    await check('child:' + spec, async () => {
      const child = spawn(workload, ['spin', '200'], { stdio: ['pipe', 'pipe', 'inherit'] });
      const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
      if ((await lines.next()).value !== 'ready') throw new Error('workload did not start');
      const id = await lib.allocate(spec, 'TC');
      try {
        await lib.attach(id, child.pid);
        await lib.start(id);
        child.stdin.write('go\\n');
        await lines.next();
        const value = await lib.read(id);
        const f = readFileSync('/proc/' + child.pid + '/stat', 'utf8').split(') ')[1].split(' ');
        out.procTicks[spec] = Number(f[11]) + Number(f[12]);
        return value;
      } finally {
        child.stdin.end();
        // Gone before the user is deleted.
        if (child.exitCode === null && child.signalCode === null) await new Promise((resolve) => child.on('exit', resolve));
        await lib.release(id);
      }
    });
  }
  await check('systemPmc', async () => { const id = await lib.allocate('cpu-clock', 'SC', { cpu: onlineCpus()[0] }); await lib.start(id); return lib.read(id); });
  await check('admin', () => lib.disable(0, 0));
}
await lib.close();
console.log(JSON.stringify(out));
`;

describe('an unprivileged user', { skip: !isRoot && 'creating a user and dropping to it needs root' }, () => {
  const user = `tspmc-test-${Math.random().toString(16).slice(2, 8)}`;
  let uid = 0;
  let gid = 0;
  let stage = '';
  let dist = DIST;
  let root: ChildProcess | undefined;

  /** Runs the script as the user, with only the environment given; returns its report. */
  function runAsUser(env: NodeJS.ProcessEnv, mode = 'checks', gids = ['--regid', String(gid)]): Report {
    const out = execFileSync(
      'setpriv',
      [`--reuid=${uid}`, ...gids, '--clear-groups', process.execPath, path.join(stage, 'script.mjs'), dist, path.join(stage, 'count-workload'), String(root!.pid), mode],
      { env: { PATH: process.env.PATH, TSPMC_ADMIN_STATE: path.join(stage, 'admin.json'), ...env }, encoding: 'utf8', cwd: stage, stdio: ['ignore', 'pipe', 'inherit'], timeout: 30_000 },
    );
    return JSON.parse(out.trim().split('\n').pop()!);
  }

  /** Can the user read this path (every directory above it searchable)? */
  function userCanRead(file: string): boolean {
    try {
      execFileSync('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', process.execPath, '-e', `require('fs').accessSync(${JSON.stringify(file)}, require('fs').constants.R_OK)`], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  }

  before(() => {
    execFileSync('useradd', ['-M', '-r', '-s', '/usr/sbin/nologin', user]);
    uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }));
    gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }));
    stage = mkdtempSync(path.join(tmpdir(), 'module-privilege-'));
    chmodSync(stage, 0o755);
    writeFileSync(path.join(stage, 'script.mjs'), SCRIPT, { mode: 0o644 });
    execFileSync('gcc', ['-O0', '-o', path.join(stage, 'count-workload'), FIXTURE]);
    chmodSync(path.join(stage, 'count-workload'), 0o755);
    // The user must read the compiled module and koffi; where the checkout is not
    // world-readable, a copy of what the script loads goes beside it.
    const koffi = path.join(ROOT, 'node_modules/koffi');
    if (!userCanRead(path.join(DIST, 'src/lib/libpmc.js')) || !userCanRead(path.join(koffi, 'index.js'))) {
      accessSync(koffi, constants.R_OK);
      cpSync(path.join(DIST, 'src'), path.join(stage, 'dist/src'), { recursive: true });
      for (const f of ['index.js', 'indirect.js', 'package.json', `build/koffi/${process.platform}_${process.arch}`]) {
        cpSync(path.join(koffi, f), path.join(stage, 'node_modules/koffi', f), { recursive: true });
      }
      // The op table's schemas (lib -> module/op-table.ts).
      cpSync(path.join(ROOT, 'node_modules/zod'), path.join(stage, 'node_modules/zod'), { recursive: true });
      writeFileSync(path.join(stage, 'package.json'), '{ "type": "module" }\n');
      execFileSync('chmod', ['-R', 'a+rX', stage]);
      dist = path.join(stage, 'dist');
    }
    root = spawn('sleep', ['300'], { stdio: 'ignore' });
  });

  after(async () => {
    if (root) {
      root.kill('SIGKILL');
      await once(root, 'exit');
    }
    if (stage) rmSync(stage, { recursive: true, force: true });
    if (uid) execFileSync('userdel', [user]);
  });

  test('runs unprivileged, counts its own child, and is refused root processes, system PMCs and PMCADMIN', () => {
    const { creds: who, checks: r, procTicks } = runAsUser({});
    assert.deepEqual([who.euid, who.ruid, who.egid, who.groups, who.capEff], [uid, uid, gid, [], '0']);
    assert.deepEqual([r.attachRoot.ok, r.attachRoot.code], [false, 'EPERM'], r.attachRoot.message);
    assert.match(r.attachRoot.message!, /may not debug process/);
    const clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
    for (const spec of ['task-clock', 'task-clock,usr']) {
      const o = r[`child:${spec}`];
      assert.ok(o.ok, `${spec} on its own child: ${o.message}`);
      const procNs = (procTicks[spec] * 1e9) / clkTck;
      const counted = Number(o.value);
      assert.ok(Math.abs(counted - procNs) <= 0.05 * procNs + 2e9 / clkTck, `${spec}: ${counted} ns counted, /proc says ${procNs} ns`);
    }
    assert.deepEqual([r.systemPmc.ok, r.systemPmc.code], [false, 'EPERM'], r.systemPmc.message);
    assert.match(r.systemPmc.message!, /unprivileged_syspmcs/);
    assert.deepEqual([r.admin.ok, r.admin.code], [false, 'EPERM'], r.admin.message);
  });

  test('with TSPMC_UNPRIVILEGED_SYSPMCS=1 the module lets a system PMC through to the kernel', () => {
    const r = runAsUser({ TSPMC_UNPRIVILEGED_SYSPMCS: '1' }).checks;
    if (r.systemPmc.ok) {
      assert.ok(BigInt(r.systemPmc.value!) > 0n);
    } else {
      // perf_event_paranoid >= 1 still keeps CPU-wide events from unprivileged users:
      // that refusal is the kernel's (EACCES), not the module's EPERM.
      assert.equal(r.systemPmc.code, 'EACCES', r.systemPmc.message);
      assert.match(r.systemPmc.message!, /perf_event_open/);
    }
  });

  test(
    'an owner whose real and effective gids differ may attach a PMC to itself',
    () => {
      const { creds: who, checks } = runAsUser({}, 'self', [`--rgid=${gid}`, '--egid=65534']);
      assert.notEqual(who.rgid, who.egid);
      assert.ok(checks.attachSelf.ok, checks.attachSelf.message);
    },
  );
});
