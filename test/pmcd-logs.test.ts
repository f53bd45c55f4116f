// Logs through pmcd: the owner's descriptor (a file, a pipe, libpmc's pump
// for a stream) is passed with SCM_RIGHTS and pmcd writes the log straight
// into it. A reader that stalls fills pmcd's log buffers and samples are
// dropped (DROPNOTIFY when the reader catches up) while pmcd's memory stays
// bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, createWriteStream, openSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pipe } from '../src/ipc/unix.js';
import { readLog } from '../src/log/log-reader.js';
import { type LogRecord, LogType } from '../src/log/records.js';
import { pmcstat } from './cli-fixture.js';
import { TestPmcd, waitFor } from './pmcd-fixture.js';

async function records(path: string): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const r of readLog(path)) out.push(r);
  return out;
}

const spinner = (): ChildProcess => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });

async function kill(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = once(c, 'exit');
  c.kill('SIGKILL');
  await exited;
}

test('a log on a file and on a stream: pmcd writes them into the descriptors passed to it', async () => {
  const pmcd = await TestPmcd.start();
  const target = spinner();
  try {
    // A file: the descriptor goes to pmcd; USERDATA, samples and CLOSELOG land in the file.
    const path = join(pmcd.dir, 'file.pmclog');
    const fd = openSync(path, 'w');
    const lib = await pmcd.libpmc();
    try {
      await lib.configureLogfile(fd);
      await lib.writeLog(0xfeed);
      const id = await lib.allocate('cpu-clock', 'TS', { count: 100000n });
      await lib.attach(id, target.pid!);
      await lib.start(id);
      await waitFor('samples', async () => (await lib.driverStats()).intr_processed > 20);
      await lib.closeLogfile();
    } finally {
      await lib.close();
      closeSync(fd);
    }
    const types = (await records(path)).map((r) => r.type);
    assert.deepEqual(types.slice(0, 2), [LogType.INITIALIZE, LogType.USERDATA]);
    assert.ok(types.includes(LogType.CALLCHAIN));
    assert.equal(types.at(-1), LogType.CLOSELOG);

    // A stream: libpmc pumps a pipe whose write end pmcd holds; a flush is on the stream when it resolves.
    const lib2 = await pmcd.libpmc();
    const chunks: Buffer[] = [];
    const stream = new PassThrough();
    stream.on('data', (c: Buffer) => chunks.push(c));
    try {
      await lib2.configureLogfile(stream);
      await lib2.writeLog(0xbeef);
      await lib2.flushLogfile();
      const flushed = join(pmcd.dir, 'stream.pmclog');
      writeFileSync(flushed, Buffer.concat(chunks));
      assert.deepEqual((await records(flushed)).map((r) => LogType[r.type]), ['INITIALIZE', 'USERDATA']);
      await lib2.closeLogfile();
    } finally {
      await lib2.close();
    }
  } finally {
    await kill(target);
    await pmcd.cleanup();
  }
});

test('a stalled log reader: pmcd drops samples (DROPNOTIFY when the reader returns) and its memory stays bounded', async (t) => {
  // 16 buffers of 64 KiB: what one owner's log may hold in pmcd.
  const pmcd = await TestPmcd.start({ config: ['kern.hwpmc.logbuffersize = 64', 'kern.hwpmc.nbuffers = 16'] });
  const targets = [spinner(), spinner()];
  const [readEnd, writeEnd] = pipe();
  const lib = await pmcd.libpmc();
  try {
    await lib.configureLogfile(writeEnd);
    closeSync(writeEnd); // pmcd has its own; the pipe ends when pmcd closes the log
    const ids: number[] = [];
    for (const t of targets) {
      const id = await lib.allocate('cpu-clock', 'TS', { count: 20000n });
      await lib.attach(id, t.pid!);
      await lib.start(id);
      ids.push(id);
    }
    const rssBefore = pmcd.rssKiB();
    let rssMax = rssBefore;
    // Nobody reads the pipe: its 64 KiB fill, then pmcd's 1 MiB of buffers, then samples are dropped.
    await waitFor('records to be dropped', async () => {
      rssMax = Math.max(rssMax, pmcd.rssKiB());
      return (await lib.driverStats()).buffer_requests_failed > 1000;
    }, 60_000);
    for (let i = 0; i < 20; i++) {
      rssMax = Math.max(rssMax, pmcd.rssKiB());
      await new Promise((r) => setTimeout(r, 50));
    }
    const growthMiB = (rssMax - rssBefore) / 1024;
    t.diagnostic(`pmcd RSS ${(rssBefore / 1024).toFixed(1)} MiB before, at most ${(rssMax / 1024).toFixed(1)} MiB while the reader stalled`);
    assert.ok(growthMiB < 32, `pmcd grew by ${growthMiB.toFixed(1)} MiB while the reader stalled`);
    const owner = (await lib.ownerStats()).find((o) => o.pid === process.pid)!;
    assert.ok(owner.log!.bufferRequestsFailed > 1000, 'the drops are the owner\'s');

    // The reader comes back: everything pmcd kept arrives, with the drops reported, then CLOSELOG.
    const out = join(pmcd.dir, 'stalled.pmclog');
    const file = createWriteStream(out);
    const reader = new Socket({ fd: readEnd, readable: true, writable: false });
    reader.pipe(file);
    for (const id of ids) await lib.stop(id);
    await lib.closeLogfile();
    await once(file, 'finish');
    const recs = await records(out);
    assert.equal(recs.at(-1)?.type, LogType.CLOSELOG);
    const dropped = recs.reduce((n, r) => n + (r.type === LogType.DROPNOTIFY ? r.dropped : 0), 0);
    assert.ok(dropped > 0, 'DROPNOTIFY reports the dropped samples');
    t.diagnostic(`${dropped} samples reported dropped by DROPNOTIFY`);
  } finally {
    await lib.close();
    for (const t of targets) await kill(t);
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
    const r = pmcstat(['-P', 'cpu-clock', '-n', '100000', '-O', `127.0.0.1:${port}`, '--', 'sh', '-c', 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done'], { env: pmcd.clientEnv() });
    assert.equal(r.status, 0, r.stderr);
    await peerClosed;
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
