// Kernel symbols read on another thread. /proc/kallsyms is slow to read (the
// kernel formats 100k+ lines, 4 KiB per read call) and to parse: done on a
// worker thread, it overlaps the reading of the log, whose kernel frames are
// resolved once the whole log is read. This module is the worker's code too.
import { MessageChannel, receiveMessageOnPort, Worker, isMainThread, workerData, type MessagePort } from 'node:worker_threads';
import { PmcError } from '../pmc-error.js';
import { fromMessage, readKallsyms, toMessage, type KernelSymbols, type KernelSymbolsMessage } from './kallsyms.js';
import { writeCachedKallsyms } from './kallsyms-cache.js';

interface Job {
  kallsymsJob: true;
  path: string;
  /** Where to save the parsed symbols for the next analyses (see kallsyms-cache.ts). */
  cache?: { file: string; dir: string };
  port: MessagePort;
  /** [0] becomes 1 once the answer is posted. */
  done: Int32Array;
}

type Answer = { symbols: KernelSymbolsMessage } | { error: string; code: string };

// How long take() waits for the worker before reading the file itself.
const WAIT_MS = 60_000;

/** kallsyms being read and parsed by a worker thread; take() gives the result. */
export class KallsymsPrefetch {
  private worker: Worker | null = null;
  private readonly port: MessagePort;
  private readonly done = new Int32Array(new SharedArrayBuffer(4));

  constructor(
    private readonly path: string,
    cache?: { file: string; dir: string },
  ) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const job: Job = { kallsymsJob: true, path, cache, port: port2, done: this.done };
    try {
      this.worker = new Worker(new URL(import.meta.url), { workerData: job, transferList: [port2] });
      // Never keeps the process alive: an analysis without kernel frames does not wait for it.
      this.worker.unref();
      this.worker.on('error', () => undefined);
    } catch {
      this.worker = null;
    }
  }

  /** The symbols (waiting for the worker if it is still at it); throws PmcError as readKallsyms does. */
  take(): KernelSymbols {
    if (this.worker && Atomics.wait(this.done, 0, 0, WAIT_MS) !== 'timed-out') {
      const answer = receiveMessageOnPort(this.port)?.message as Answer | undefined;
      this.close();
      if (answer && 'symbols' in answer) return fromMessage(answer.symbols);
      if (answer) throw new PmcError(answer.code, answer.error);
    }
    this.close();
    return readKallsyms(this.path);
  }

  /** Stops the worker (its result is not needed); a take() after this reads the file itself. */
  close(): void {
    this.port.close();
    void this.worker?.terminate();
    this.worker = null;
  }
}

function work(job: Job): void {
  let answer: Answer;
  let transfer: ArrayBuffer[] = [];
  let symbols: KernelSymbols | undefined;
  try {
    symbols = readKallsyms(job.path);
    // The message first (saving decodes the names), saved before the tables are handed over (transferred, they are gone from here).
    const m = toMessage(symbols);
    if (job.cache) writeCachedKallsyms(job.cache.file, job.cache.dir, symbols);
    answer = { symbols: m.message };
    transfer = m.transfer;
  } catch (e) {
    answer = { error: (e as Error).message.replace(/ \([A-Z0-9]+\)$/, ''), code: e instanceof PmcError ? e.code : 'EIO' };
  }
  job.port.postMessage(answer, transfer);
  Atomics.store(job.done, 0, 1);
  Atomics.notify(job.done, 0);
}

if (!isMainThread && (workerData as Job | undefined)?.kallsymsJob) work(workerData as Job);
