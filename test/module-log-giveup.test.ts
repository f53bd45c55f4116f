// A log whose reader stops reading, at the log's end: the module waits for
// the reader only while it takes something, then gives the log up, counts
// the records it could not write (log_records_lost) and says so. Through
// pmcd (the owner gone, pmcd stopped) and in pmcstat's own process alike;
// meanwhile pmcd keeps serving its other clients.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, fstatSync, openSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pipe } from '../src/ipc/unix.js';
import { pmcstatAsync, tempDir } from './cli-fixture.js';
import { killChildren, TestPmcd, waitFor } from './pmcd-fixture.js';
import { hangGuard } from './proc-fixture.js';
import { spinner } from './spinner.js';

const guard = <T>(p: Promise<T>, what: string): Promise<T> => hangGuard(p, 60_000, what);

// Small logs fill fast: 4 buffers of 4 KiB.
const SMALL_LOG = ['kern.hwpmc.logbuffersize = 4', 'kern.hwpmc.nbuffers = 4'];

/** Whether pmcd holds a descriptor of this pipe (by its inode). */
function holdsPipe(pmcd: TestPmcd, readEnd: number): boolean {
  const name = `pipe:[${fstatSync(readEnd).ino}]`;
  return pmcd.fds().some((fd) => {
    try {
      return readlinkSync(`/proc/${pmcd.pid}/fd/${fd}`) === name;
    } catch {
      return false;
    }
  });
}

type Lib = Awaited<ReturnType<TestPmcd['libpmc']>>;

/**
 * Runs `body` with a pmcd and an owner of it sampling a spinner into a pipe
 * nobody reads, once that pipe is full; everything is cleaned up after.
 */
async function withStalledOwner(body: (pmcd: TestPmcd, owner: Lib, readEnd: number) => Promise<void>): Promise<void> {
  const pmcd = await TestPmcd.start({ config: SMALL_LOG });
  const target = spinner();
  const [readEnd, writeEnd] = pipe();
  try {
    const lib = await guard(pmcd.libpmc(), 'connecting');
    await guard(lib.configureLogfile(writeEnd), 'CONFIGURELOG');
    closeSync(writeEnd);
    const id = await guard(lib.allocate('cpu-clock', 'TS', { count: 20000n }), 'allocate');
    await guard(lib.attach(id, target.pid!), 'attach');
    await guard(lib.start(id), 'start');
    // Full log buffers alone do not make a stall (they fill faster than a write completes): the pipe
    // is full when what pmcd has written stops growing while records keep being refused.
    let last = { written: -1, bufferRequestsFailed: 0 };
    await waitFor('the pipe to be full', async () => {
      const log = (await guard(lib.ownerStats(), 'GETOWNERSTATS')).find((o) => o.pid === process.pid)!.log!;
      if (log.written === last.written && log.bufferRequestsFailed >= last.bufferRequestsFailed + 50) return true;
      if (log.written !== last.written) last = log;
      return false;
    }, 120_000);
    await body(pmcd, lib, readEnd);
  } finally {
    closeSync(readEnd);
    await killChildren([target]);
    await pmcd.cleanup();
  }
}

test('pmcd: an owner gone while its log reader stalls loses the log after a bound, counted, and pmcd serves others meanwhile', () =>
  withStalledOwner(async (pmcd, owner, readEnd) => {
    const other = await guard(pmcd.libpmc(), 'connecting another client');
    try {
      await guard(owner.close(), 'the owner leaving');
      // The other client is answered while the gone owner's log still waits for its reader.
      const meanwhile = await guard(other.driverStats(), 'GETDRIVERSTATS of another client');
      assert.ok(holdsPipe(pmcd, readEnd), 'the gone owner\'s log still waits for its reader');
      assert.equal(meanwhile.log_records_lost, 0);
      await waitFor('the log to be given up', async () => (await guard(other.driverStats(), 'GETDRIVERSTATS')).log_records_lost > 0, 60_000);
      assert.equal(holdsPipe(pmcd, readEnd), false, 'pmcd closed the given-up log\'s descriptor');
      assert.match(pmcd.stderr, /the log was given up: its reader took nothing for \d+ s; \d+ log record\(s\) \(\d+ bytes\) were not written/);
    } finally {
      await guard(other.close(), 'closing the other client');
    }
  }));

test('pmcd: SIGTERM ends pmcd by itself while an owner\'s log reader stalls', () =>
  withStalledOwner(async (pmcd, owner) => {
    // The owner is still connected. The fixture's SIGKILL (after 20 s) would leave no exit status: 0 says pmcd ended on its own.
    assert.equal(await pmcd.stop(), 0, pmcd.stderr);
    await guard(owner.close().catch(() => undefined), 'the client seeing pmcd go');
    assert.match(pmcd.stderr, /the log was given up/);
  }));

test('in-process: pmcstat whose log reader stalls ends after a bound, saying how many records were not written', async () => {
  const dir = tempDir('tspmc-giveup-');
  const fifo = join(dir, 'log.fifo');
  execFileSync('mkfifo', [fifo]);
  // A reader that opens the log and never reads.
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const env = { TSPMC_LOCAL: '1', TSPMC_ADMIN_STATE: join(dir, 'admin.json'), TSPMC_LOGBUFFERSIZE: '4', TSPMC_NBUFFERS: '2' };
    const run = pmcstatAsync(['-n', '20000', '-P', 'cpu-clock', '-O', fifo, '--', 'sh', '-c', 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done'], { env });
    const r = await hangGuard(run.done, 60_000, 'pmcstat with a stalled log reader', () => run.child.kill('SIGKILL'));
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /ERROR: .*the log was given up: its reader took nothing for \d+ s; [1-9]\d* log record\(s\) \(\d+ bytes\) were not written/);
  } finally {
    closeSync(reader);
    rmSync(dir, { recursive: true, force: true });
  }
});
