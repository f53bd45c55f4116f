// pmcd at its descriptor limit: connections (idle ones too) take at most a
// quarter of pmcd's RLIMIT_NOFILE (two descriptors each) and a user other than root an eighth of that; a
// client past the limit is refused with EMFILE saying why (after its first
// request is read, so it gets the reply rather than a reset), refusals are
// logged a line per 10 s, and the owners already there keep working.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { isPmcError } from '../src/lib/index.js';
import { TestPmcd, TestUser, waitFor } from './pmcd-fixture.js';

const NOFILE = 256;
const isRoot = process.geteuid?.() === 0;
const haveTools = spawnSync('setpriv', ['--version']).status === 0 && spawnSync('useradd', ['--help']).status === 0;

test('idle connections past the descriptor budget: new clients get EMFILE, owners keep working, pmcd keeps descriptors', async () => {
  const pmcd = await TestPmcd.start({ nofile: NOFILE });
  const lib = await pmcd.libpmc();
  const idle: Socket[] = [];
  try {
    const id = await lib.allocate('page-faults', 'TC');
    await lib.attach(id, 0);
    await lib.start(id);
    for (let i = 0; i < NOFILE; i++) idle.push(connect(pmcd.socket).on('error', () => undefined));
    await waitFor('a refusal in pmcd\'s log', () => pmcd.stderr.includes('refused'));
    await assert.rejects(pmcd.libpmc(), (e) => isPmcError(e, 'EMFILE') && /descriptor limit/.test(e.message));
    // The owner already there is served, and may still open PMCs: the budget left it descriptors.
    assert.ok((await lib.read(id)) >= 0n);
    const more = await lib.allocate('context-switches', 'TC');
    await lib.attach(more, 0);
    await lib.start(more);
    await lib.read(more);
    await lib.release(more);
    assert.ok(pmcd.fds().length < NOFILE * 0.75, `pmcd holds ${pmcd.fds().length} descriptors of ${NOFILE}`);
    for (const s of idle) s.destroy();
    await waitFor('a new client to be served', async () => {
      const l = await pmcd.libpmc().catch(() => undefined);
      await l?.close();
      return l !== undefined;
    });
    // Over a hundred refusals, one line (the next sums them up 10 s later).
    assert.equal(pmcd.stderr.split('\n').filter((l) => l.includes('refused')).length, 1, pmcd.stderr);
  } finally {
    for (const s of idle) s.destroy();
    await lib.close().catch(() => undefined);
    await pmcd.cleanup();
  }
});

// One frame: u32 length, version 1, kind, 2 reserved bytes, JSON.
const USER_SCRIPT = `
const net = require('net');
const n = Number(process.argv[1]);
const ping = (seq) => { const p = Buffer.from(JSON.stringify({ seq })); const h = Buffer.alloc(8); h.writeUInt32LE(p.length, 0); h[4] = 1; h[5] = 5; return Buffer.concat([h, p]); };
let ok = 0, refused = 0, other = 0;
const socks = [];
for (let i = 1; i <= n; i++) {
  const s = net.connect(process.env.TSPMC_SOCKET, () => s.write(ping(i)));
  let buf = Buffer.alloc(0);
  s.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    if (buf.length < 8 || buf.length < 8 + buf.readUInt32LE(0)) return;
    const r = JSON.parse(buf.subarray(8, 8 + buf.readUInt32LE(0)).toString());
    if (r.error && r.error.code === 'EMFILE') refused++; else if (!r.error) ok++; else other++;
    if (ok + refused + other === n) { console.log(JSON.stringify({ ok, refused, other })); process.exit(0); }
  });
  s.on('error', () => { other++; });
  socks.push(s);
}
setTimeout(() => { console.log(JSON.stringify({ ok, refused, other, timeout: true })); process.exit(0); }, 20000);
`;

test('one user may hold an eighth of the connections: the rest are refused with EMFILE, logged with the peer', { skip: (!isRoot || !haveTools) && 'needs root, useradd and setpriv' }, async () => {
  const pmcd = await TestPmcd.start({ nofile: NOFILE });
  const user = TestUser.create('conns');
  try {
    const perUser = Math.floor(NOFILE / 4 / 8);
    const child = spawnSync(user.prefix[0], [...user.prefix.slice(1), process.execPath, '-e', USER_SCRIPT, String(perUser + 4)], {
      env: pmcd.clientEnv(),
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.deepEqual(JSON.parse(child.stdout), { ok: perUser, refused: 4, other: 0 }, child.stderr);
    await waitFor('the refusal logged', () => pmcd.stderr.includes(`uid ${user.uid}`));
    assert.match(pmcd.stderr, new RegExp(`refused a connection: pid \\d+ uid ${user.uid} gid ${user.gid} session \\d+: user ${user.uid} has ${perUser} connections`));
    // root's own connections are not the user's: still served.
    const lib = await pmcd.libpmc();
    await lib.close();
  } finally {
    user.drop();
    await pmcd.cleanup();
  }
});
