// Logs through pmcd: the owner's descriptor (a file, a pipe, libpmc's pump
// for a stream) is passed with SCM_RIGHTS and pmcd writes the log straight
// into it. A reader that stalls fills pmcd's log buffers and samples are
// dropped (DROPNOTIFY when the reader catches up) while pmcd's memory stays
// bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { closeSync, createWriteStream, openSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pipe } from '../src/ipc/unix.js';
import { readLog } from '../src/log/log-reader.js';
import { type LogRecord, LogType } from '../src/log/records.js';
import { pmcstatAsync } from './cli-fixture.js';
import { killChildren, TestPmcd, waitFor } from './pmcd-fixture.js';
import { hangGuard } from './proc-fixture.js';
import { spinner } from './spinner.js';

/** Every wait on pmcd or a pipe fails the test rather than hang it (the finally blocks clean up). */
const guard = <T>(p: Promise<T>, what: string): Promise<T> => hangGuard(p, 60_000, what);

async function records(path: string): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const r of readLog(path)) out.push(r);
  return out;
}



test('a log on a file and on a stream: pmcd writes them into the descriptors passed to it', async () => {
  const pmcd = await TestPmcd.start();
  const target = spinner();
  try {
    // A file: the descriptor goes to pmcd; USERDATA, samples and CLOSELOG land in the file.
    const path = join(pmcd.dir, 'file.pmclog');
    const fd = openSync(path, 'w');
    const lib = await guard(pmcd.libpmc(), 'connecting');
    try {
      await guard(lib.configureLogfile(fd), 'CONFIGURELOG');
      await guard(lib.writeLog(0xfeed), 'WRITELOG');
      const id = await guard(lib.allocate('cpu-clock', 'TS', { count: 100000n }), 'allocate');
      await guard(lib.attach(id, target.pid!), 'attach');
      await guard(lib.start(id), 'start');
      await waitFor('samples', async () => (await guard(lib.driverStats(), 'GETDRIVERSTATS')).intr_processed > 20);
      await guard(lib.closeLogfile(), 'CLOSELOG');
    } finally {
      await guard(lib.close(), 'closing the connection');
      closeSync(fd);
    }
    const types = (await records(path)).map((r) => r.type);
    assert.deepEqual(types.slice(0, 2), [LogType.INITIALIZE, LogType.USERDATA]);
    assert.ok(types.includes(LogType.CALLCHAIN));
    assert.equal(types.at(-1), LogType.CLOSELOG);

    // A stream: libpmc pumps a pipe whose write end pmcd holds; a flush is on the stream when it resolves.
    const lib2 = await guard(pmcd.libpmc(), 'connecting');
    const chunks: Buffer[] = [];
    const stream = new PassThrough();
    stream.on('data', (c: Buffer) => chunks.push(c));
    try {
      await guard(lib2.configureLogfile(stream), 'CONFIGURELOG');
      await guard(lib2.writeLog(0xbeef), 'WRITELOG');
      await guard(lib2.flushLogfile(), 'FLUSHLOG');
      const flushed = join(pmcd.dir, 'stream.pmclog');
      writeFileSync(flushed, Buffer.concat(chunks));
      assert.deepEqual((await records(flushed)).map((r) => LogType[r.type]), ['INITIALIZE', 'USERDATA']);
      await guard(lib2.closeLogfile(), 'CLOSELOG');
    } finally {
      await guard(lib2.close(), 'closing the connection');
    }
  } finally {
    await killChildren([target]);
    await pmcd.cleanup();
  }
});

test('a stalled log reader: pmcd drops samples (DROPNOTIFY when the reader returns) and its memory stays bounded', async (t) => {
  // 16 buffers of 64 KiB: what one owner's log may hold in pmcd.
  const pmcd = await TestPmcd.start({ config: ['kern.hwpmc.logbuffersize = 64', 'kern.hwpmc.nbuffers = 16'] });
  const targets = [spinner(), spinner()];
  const [readEnd, writeEnd] = pipe();
  let reader: Socket | undefined;
  const lib = await pmcd.libpmc();
  try {
    await guard(lib.configureLogfile(writeEnd), 'CONFIGURELOG');
    closeSync(writeEnd); // pmcd has its own; the pipe ends when pmcd closes the log
    const ids: number[] = [];
    for (const t of targets) {
      const id = await guard(lib.allocate('cpu-clock', 'TS', { count: 20000n }), 'allocate');
      await guard(lib.attach(id, t.pid!), 'attach');
      await guard(lib.start(id), 'start');
      ids.push(id);
    }
    const rssBefore = pmcd.rssKiB();
    let rssMax = rssBefore;
    const failed = async (): Promise<number> => {
      rssMax = Math.max(rssMax, pmcd.rssKiB());
      return (await guard(lib.driverStats(), 'GETDRIVERSTATS')).buffer_requests_failed;
    };
    // Nobody reads the pipe: its 64 KiB fill, then pmcd's 1 MiB of buffers, then samples are dropped.
    // Wait for the first drops, then for dropping to go on (a count of samples, however long the load makes it).
    await waitFor('records to be dropped', async () => (await failed()) > 0, 120_000);
    const first = await failed();
    await waitFor('dropping to go on', async () => (await failed()) > first + 200, 120_000);
    const growthMiB = (rssMax - rssBefore) / 1024;
    t.diagnostic(`pmcd RSS ${(rssBefore / 1024).toFixed(1)} MiB before, at most ${(rssMax / 1024).toFixed(1)} MiB while the reader stalled`);
    assert.ok(growthMiB < 32, `pmcd grew by ${growthMiB.toFixed(1)} MiB while the reader stalled`);
    const owner = (await guard(lib.ownerStats(), 'GETOWNERSTATS')).find((o) => o.pid === process.pid)!;
    assert.ok(owner.log!.bufferRequestsFailed > first, 'the drops are the owner\'s');

    // The reader comes back: everything pmcd kept arrives, with the drops reported, then CLOSELOG.
    const out = join(pmcd.dir, 'stalled.pmclog');
    const file = createWriteStream(out);
    const finished = once(file, 'finish');
    reader = new Socket({ fd: readEnd, readable: true, writable: false });
    reader.pipe(file);
    for (const id of ids) await guard(lib.stop(id), 'PMCSTOP');
    await guard(lib.closeLogfile(), 'CLOSELOG with the reader back');
    await guard(finished, 'the end of the pipe');
    const recs = await records(out);
    assert.equal(recs.at(-1)?.type, LogType.CLOSELOG);
    const dropped = recs.reduce((n, r) => n + (r.type === LogType.DROPNOTIFY ? r.dropped : 0), 0);
    assert.ok(dropped > 0, 'DROPNOTIFY reports the dropped samples');
    t.diagnostic(`${dropped} samples reported dropped by DROPNOTIFY`);
    assert.equal((await guard(lib.driverStats(), 'GETDRIVERSTATS')).log_records_lost, 0, 'nothing given up: the reader came back');
  } finally {
    // The read end goes first: a log still open then fails at once (EPIPE) instead of waiting to be given up.
    if (reader) reader.destroy();
    else closeSync(readEnd);
    await guard(lib.close(), 'closing the connection').catch(() => undefined);
    for (const t of targets) await killChildren([t]);
    await pmcd.cleanup();
  }
});

test('pmcstat -O host:port through pmcd: the log goes to a TCP peer', async () => {
  const pmcd = await TestPmcd.start();
  const received: Buffer[] = [];
  const server = createServer((s) => s.on('data', (b: Buffer) => received.push(b)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const peerClosed = new Promise<void>((r) => server.once('connection', (s) => s.once('close', () => r())));
  try {
    const port = (server.address() as { port: number }).port;
    // In the background: this process is the TCP peer and must keep reading while pmcstat runs.
    const run = pmcstatAsync(['-P', 'cpu-clock', '-n', '100000', '-O', `127.0.0.1:${port}`, '--', 'sh', '-c', 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done'], { env: pmcd.clientEnv() });
    const r = await hangGuard(run.done, 60_000, 'pmcstat -O host:port', () => run.child.kill('SIGKILL'));
    assert.equal(r.status, 0, r.stderr);
    await guard(peerClosed, 'the end of the TCP log');
    const path = join(pmcd.dir, 'tcp.pmclog');
    writeFileSync(path, Buffer.concat(received));
    const types = (await records(path)).map((x) => x.type);
    assert.equal(types[0], LogType.INITIALIZE);
    assert.ok(types.includes(LogType.CALLCHAIN), 'samples');
    assert.equal(types.at(-1), LogType.CLOSELOG);
  } finally {
    server.close();
    await pmcd.cleanup();
  }
});
