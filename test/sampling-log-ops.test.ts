// The owner's log through libpmc: configure it on a stream or a pipe,
// write user data, flush, close; the errors hwpmc gives for a second log,
// for writing after the close, and for sampling PMCs started without a log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { isPmcError, Libpmc, onlineCpus } from '../src/lib/index.js';
import { readLog } from '../src/log/log-reader.js';
import { type LogRecord, LogType } from '../src/log/records.js';
import { tempDir } from './cli-fixture.js';

const dir = tempDir('sampling-log-ops-');

async function records(source: string | Uint8Array[]): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  const input = typeof source === 'string' ? source : (async function* () { yield* source; })();
  for await (const r of readLog(input)) out.push(r);
  return out;
}

const rejectsWith = (code: string) => (e: unknown) => isPmcError(e, code);

test('a log on a Node stream: USERDATA after flush, EBUSY for a second log, EINVAL after the close', async () => {
  const lib = await Libpmc.init();
  try {
    const stream = new PassThrough();
    const chunks: Uint8Array[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    await lib.configureLogfile(stream);
    await lib.writeLog(0x1234);
    await lib.flushLogfile();
    // What the flush wrote is on the stream now.
    const flushed = await records([...chunks]);
    assert.deepEqual(flushed.map((r) => LogType[r.type]), ['INITIALIZE', 'USERDATA']);
    assert.equal(flushed[1].type === LogType.USERDATA && flushed[1].userdata, 0x1234);

    await assert.rejects(lib.configureLogfile(new PassThrough()), rejectsWith('EBUSY'));

    await lib.closeLogfile();
    const all = await records(chunks);
    assert.deepEqual(all.map((r) => LogType[r.type]), ['INITIALIZE', 'USERDATA', 'CLOSELOG']);
    await assert.rejects(lib.writeLog(0x1234), rejectsWith('EINVAL'));
    await assert.rejects(lib.flushLogfile(), rejectsWith('EINVAL'));
  } finally {
    await lib.close();
  }
});

test('a log on a pipe file descriptor', async () => {
  const fifo = join(dir, 'log.fifo');
  const out = join(dir, 'from-pipe.pmclog');
  execFileSync('mkfifo', [fifo]);
  const reader = spawn('sh', ['-c', 'cat "$0" > "$1"', fifo, out], { stdio: 'ignore' });
  const readerExit = once(reader, 'exit');
  // Opening a FIFO for writing waits for its reader: cat opens it.
  const fd = openSync(fifo, 'w');
  const lib = await Libpmc.init();
  try {
    await lib.configureLogfile(fd);
    await lib.writeLog(0xabcd);
    await lib.closeLogfile();
  } finally {
    await lib.close();
    closeSync(fd);
  }
  assert.deepEqual(await readerExit, [0, null]);
  const all = await records(out);
  assert.deepEqual(all.map((r) => LogType[r.type]), ['INITIALIZE', 'USERDATA', 'CLOSELOG']);
  assert.equal(all[1].type === LogType.USERDATA && all[1].userdata, 0xabcd);
});

test('a TS PMC on another process, started without a log: EDOOFUS (PMC_F_NEEDS_LOGFILE)', async () => {
  const target = spawn('sleep', ['30'], { stdio: 'ignore' });
  const lib = await Libpmc.init();
  try {
    const id = await lib.allocate('cpu-clock', 'TS');
    await lib.attach(id, target.pid!);
    await assert.rejects(lib.start(id), rejectsWith('EDOOFUS'));
  } finally {
    await lib.close();
    target.kill();
  }
});

test('an SS PMC started without a log: EDOOFUS', async () => {
  const lib = await Libpmc.init();
  try {
    const id = await lib.allocate('cpu-clock', 'SS', { cpu: onlineCpus()[0] });
    await assert.rejects(lib.start(id), rejectsWith('EDOOFUS'));
  } finally {
    await lib.close();
  }
});
