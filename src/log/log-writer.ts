// The owner's log buffers, as hwpmc keeps them: records are appended to a
// current buffer of fixed size; a full buffer is queued and written to the
// sink in order while the next one fills. The number of buffers is bounded:
// when none can be had the write fails and nothing is written, which is how
// the caller learns that the log cannot keep up (it counts a drop and stalls
// sampling). Nothing grows without bound. Records the sink never took (a
// write error, or a log given up because its reader stopped reading) are
// counted: nothing is lost without a number saying so.
import { writev as fsWritev } from 'node:fs';
import type { Writable } from 'node:stream';
import { PmcError } from '../pmc-error.js';
import { PMC_CALLCHAIN_DEPTH_MAX } from '../pmc-common.js';
import { checkDepth, encodedLength, encodeRecord, fieldWord, putHeaderWords, TailOffset } from './codec.js';
import { LogType, type LogRecord } from './records.js';

/** A file descriptor (a file, or a blocking pipe or socket) or a Node stream. The caller owns it. */
export type LogSink = number | Writable;

export interface LogWriterOptions {
  sink: LogSink;
  /** Bytes per buffer: the logbuffersize tunable (KiB) times 1024. At least 128, at most 16 MiB. */
  bufferSize: number;
  /** Most buffers in existence at once (filling, queued or being written): the nbuffers tunable. */
  nbuffers: number;
  /** Called once, with the error, when writing to the sink fails: hwpmc's SIGIO to the owner. */
  onError?: (err: PmcError) => void;
}

const MIN_LOG_BUFFER_SIZE = 128;
const MAX_LOG_BUFFER_SIZE = 16 * 1024 * 1024;
/**
 * A stream is handed a buffer in slices of this size, so that a slow reader
 * shows progress (bytesWritten) long before a whole buffer has gone.
 */
const STREAM_SLICE = 16 * 1024;
/** Buffers handed to one writev(2): at most IOV_MAX. */
const MAX_IOV = 1024;

interface LogBuffer {
  readonly bytes: Uint8Array;
  /** The same memory as 32-bit words, for the hot path's fields and pcs. */
  readonly words: Int32Array;
  used: number;
  /** Position in the write order, set when the buffer is queued. */
  seq: number;
}

interface FlushWaiter {
  seq: number;
  resolve: () => void;
  reject: (e: PmcError) => void;
}

// CALLCHAIN's fields as 32-bit words, from its one declaration (record-layouts.ts).
const CC_PID = fieldWord(LogType.CALLCHAIN, 'pid');
const CC_TID = fieldWord(LogType.CALLCHAIN, 'tid');
const CC_PMCID = fieldWord(LogType.CALLCHAIN, 'pmcid');
const CC_CPUFLAGS = fieldWord(LogType.CALLCHAIN, 'cpuflags');

export class LogWriter {
  readonly bufferSize: number;
  readonly nbuffers: number;
  private readonly sink: LogSink;
  private readonly onError: ((err: PmcError) => void) | undefined;
  private readonly free: LogBuffer[] = [];
  private allocated = 0;
  private current: LogBuffer | null = null;
  /** Full buffers in write order; queue[0, inFlight) are being written. */
  private readonly queue: LogBuffer[] = [];
  private inFlight = 0;
  /** A write of the queue is due once the caller's synchronous work is done (schedule). */
  private writeDue = false;
  private queuedSeq = 0;
  private writtenSeq = 0;
  private waiters: FlushWaiter[] = [];
  private error: PmcError | null = null;
  private state: 'open' | 'closing' | 'closed' = 'open';
  private closing: Promise<void> | null = null;
  private readonly sinkErrorListener: ((e: Error) => void) | null = null;
  private requests = 0;
  private requestsFailed = 0;
  private written = 0;
  private lostRecords = 0;
  private lostBytes = 0;
  /** Given up (abandon()): completions of a write still in flight are ignored. */
  private abandoned = false;
  // The source array last copied from, seen as 32-bit words (null if it is not 4-byte aligned).
  private srcArray: Uint8Array | null = null;
  private srcWords: Int32Array | null = null;

  constructor(opts: LogWriterOptions) {
    const { sink, bufferSize, nbuffers } = opts;
    if (!Number.isInteger(bufferSize) || bufferSize < MIN_LOG_BUFFER_SIZE || bufferSize > MAX_LOG_BUFFER_SIZE) {
      throw new PmcError('EINVAL', `log buffer size ${bufferSize} (expected an integer from ${MIN_LOG_BUFFER_SIZE} to ${MAX_LOG_BUFFER_SIZE} bytes)`);
    }
    if (!Number.isInteger(nbuffers) || nbuffers < 1) {
      throw new PmcError('EINVAL', `log buffer count ${nbuffers} (expected an integer of at least 1)`);
    }
    if (typeof sink === 'number') {
      if (!Number.isInteger(sink) || sink < 0) throw new PmcError('EBADF', `log file descriptor ${sink} (expected a non-negative integer)`);
    } else if (sink === null || typeof sink !== 'object' || typeof sink.write !== 'function') {
      throw new PmcError('EINVAL', 'log sink (expected a file descriptor number or a Writable stream)');
    } else {
      // Without a listener a stream 'error' would crash the process; here it is the SIGIO case.
      this.sinkErrorListener = (e: Error) => this.fail(e);
      sink.on('error', this.sinkErrorListener);
    }
    this.sink = sink;
    this.bufferSize = bufferSize & ~3;
    this.nbuffers = nbuffers;
    this.onError = opts.onError;
  }

  /** pm_buffer_requests: times a fresh buffer was needed. */
  get bufferRequests(): number {
    return this.requests;
  }
  /** pm_buffer_requests_failed: times none could be had (records dropped). */
  get bufferRequestsFailed(): number {
    return this.requestsFailed;
  }
  /** Bytes the sink has accepted. */
  get bytesWritten(): number {
    return this.written;
  }
  /** Records (and their bytes) the sink never took: discarded after a write error or when the log was given up. */
  get recordsLost(): number {
    return this.lostRecords;
  }
  get bytesLost(): number {
    return this.lostBytes;
  }
  /** Whether records wait to be written (buffered or being written). */
  get hasUnwritten(): boolean {
    return this.queue.length > 0 || (this.current !== null && this.current.used > 0);
  }
  /** The write error that stopped the log, if any. */
  get pendingError(): PmcError | null {
    return this.error;
  }

  /**
   * Whether records of `bytes` bytes would be accepted now. When they would
   * not, the current buffer is handed off to be written, as a record that
   * does not fit hands it off: a caller that then writes nothing smaller in
   * the meantime (to keep the log in time order) does not hold the log's
   * last buffer unwritten.
   */
  makeRoom(bytes: number): boolean {
    if (this.state !== 'open' || this.error !== null || bytes > this.bufferSize) return false;
    const cur = this.current;
    if (cur !== null && cur.used + bytes <= this.bufferSize) return true;
    if (this.free.length > 0 || this.allocated < this.nbuffers) return true;
    if (cur !== null) {
      this.current = null;
      this.schedule(cur);
    }
    return false;
  }

  /** Appends a record; false (nothing written) when no buffer space can be had or the log has failed. */
  writeRecord(rec: LogRecord): boolean {
    this.checkOpen();
    const len = encodedLength(rec);
    const o = this.reserve(len);
    if (o < 0) return false;
    const cur = this.current as LogBuffer;
    try {
      encodeRecord(rec, cur.bytes, o);
    } catch (e) {
      cur.used = o; // give back the reservation: no half-written record in the log
      throw e;
    }
    return true;
  }

  /**
   * Appends a CALLCHAIN record whose pcs are `npcs` little-endian u64s at
   * `src[srcOffset..]` (a perf sample, say): copied as bytes, no BigInt.
   * `cpuflags` is (cpu << 16) | PMC_CC_F_* flags.
   */
  writeCallchain(ts: number, pid: number, tid: number, pmcid: number, cpuflags: number, src: Uint8Array, srcOffset: number, npcs: number): boolean {
    this.checkOpen();
    if (npcs < 1 || npcs > PMC_CALLCHAIN_DEPTH_MAX || (npcs | 0) !== npcs) checkDepth(npcs);
    const nbytes = npcs * 8;
    if (!(srcOffset >= 0) || srcOffset + nbytes > src.length) {
      throw new PmcError('EINVAL', `call chain of ${npcs} pcs at offset ${srcOffset} lies outside its ${src.length}-byte source`);
    }
    const len = TailOffset.CALLCHAIN + nbytes;
    const o = this.reserve(len);
    if (o < 0) return false;
    const b = this.current as LogBuffer;
    // Records are 4-byte aligned: the fixed fields go in as words (the host is little-endian, as the log).
    const w = b.words;
    const d = o >>> 2;
    putHeaderWords(w, d, LogType.CALLCHAIN, len, ts);
    w[d + CC_PID] = pid;
    w[d + CC_TID] = tid;
    w[d + CC_PMCID] = pmcid;
    w[d + CC_CPUFLAGS] = cpuflags;
    this.copyPcs(b, o + TailOffset.CALLCHAIN, src, srcOffset, nbytes);
    return true;
  }

  /**
   * Appends a record already encoded as int32 words (`words[at..]`, its
   * length taken from its header word): the sample path's fast path, a copy
   * of words. False (nothing written) when no buffer space can be had.
   */
  writeEncoded(words: Int32Array, at: number): boolean {
    this.checkOpen();
    const len = words[at] & 0xffff;
    const o = this.reserve(len);
    if (o < 0) return false;
    const dw = (this.current as LogBuffer).words;
    const d = o >>> 2;
    const n = len >>> 2;
    for (let i = 0; i < n; i++) dw[d + i] = words[at + i];
    return true;
  }

  /**
   * For a writer of many records at once (the sample sweep, which copies
   * words without a call per record): the current buffer's words, with room
   * for at least `bytes` more bytes (a buffer without it is handed off and
   * another taken). Records go from word `wordsUsed` on; commitWords(n)
   * says n more words hold records. Null (nothing changes) when no buffer
   * can be had or the log has failed.
   */
  openWords(bytes: number): Int32Array | null {
    this.checkOpen();
    const o = this.reserve(bytes);
    if (o < 0) return null;
    const cur = this.current as LogBuffer;
    cur.used = o;
    return cur.words;
  }

  /** Words of the current buffer that hold records (after openWords). */
  get wordsUsed(): number {
    return (this.current as LogBuffer).used >>> 2;
  }

  /** `n` more words of the current buffer (from openWords) hold records; they must fit bufferSize. */
  commitWords(n: number): void {
    (this.current as LogBuffer).used += n * 4;
  }

  /**
   * Writes out everything buffered so far, the partly filled buffer too
   * (FLUSHLOG). Rejects with the write error, as a PmcError, if the log failed.
   */
  flush(): Promise<void> {
    if (this.state === 'closed') return Promise.reject(new PmcError('EINVAL', 'flush of a closed log'));
    if (this.error !== null) return Promise.reject(this.error);
    const cur = this.current;
    if (cur !== null && cur.used > 0) {
      this.current = null;
      this.schedule(cur);
    }
    const seq = this.queuedSeq;
    if (this.writtenSeq >= seq) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ seq, resolve, reject }));
  }

  /**
   * Flushes, then stops: later writes throw. The caller writes CLOSELOG
   * before, as hwpmc does; the sink stays open (it belongs to the caller).
   * Rejects with the write error if the log failed.
   */
  close(): Promise<void> {
    if (this.closing === null) {
      const flushed = this.flush();
      this.state = 'closing';
      this.closing = flushed.finally(() => this.release());
    }
    return this.closing;
  }

  /**
   * Gives the log up (its reader stopped reading and nobody waits for it):
   * everything not yet written, the buffer being written included, is
   * counted as lost, flushes and close() reject with ETIMEDOUT saying `why`
   * and how much was lost, and the write in flight is forgotten (the owner
   * of the sink closes it).
   */
  abandon(why: string): void {
    if (this.state === 'closed' || this.abandoned) return;
    this.abandoned = true;
    this.loseInFlight();
    this.fail(new PmcError('ETIMEDOUT', why));
  }

  private release(): void {
    this.state = 'closed';
    this.free.length = 0;
    this.current = null;
    this.srcArray = null;
    this.srcWords = null;
    if (this.sinkErrorListener !== null) (this.sink as Writable).off('error', this.sinkErrorListener);
  }

  private checkOpen(): void {
    if (this.state !== 'open') throw new PmcError('EINVAL', `write to a ${this.state === 'closing' ? 'closing' : 'closed'} log`);
  }

  /** Reserves `len` bytes in the current buffer and returns their offset, or -1 if no buffer can be had. */
  private reserve(len: number): number {
    const cur = this.current;
    if (cur !== null && cur.used + len <= this.bufferSize) {
      const o = cur.used;
      cur.used = o + len;
      return o;
    }
    if (this.error !== null) return -1;
    if (len > this.bufferSize) {
      throw new PmcError('E2BIG', `a ${len}-byte log record does not fit a ${this.bufferSize}-byte log buffer (raise logbuffersize)`);
    }
    if (cur !== null) {
      this.current = null;
      this.schedule(cur);
    }
    const next = this.getBuffer();
    if (next === null) return -1;
    next.used = len;
    this.current = next;
    return 0;
  }

  private getBuffer(): LogBuffer | null {
    this.requests++;
    const b = this.free.pop();
    if (b !== undefined) return b;
    if (this.allocated < this.nbuffers) {
      this.allocated++;
      const bytes = new Uint8Array(this.bufferSize);
      return { bytes, words: new Int32Array(bytes.buffer), used: 0, seq: 0 };
    }
    this.requestsFailed++;
    return null;
  }

  private copyPcs(b: LogBuffer, to: number, src: Uint8Array, from: number, nbytes: number): void {
    if (src !== this.srcArray) {
      this.srcArray = src;
      this.srcWords = (src.byteOffset & 3) === 0 ? new Int32Array(src.buffer, src.byteOffset, src.byteLength >>> 2) : null;
    }
    const sw = this.srcWords;
    if (sw !== null && (from & 3) === 0) {
      // Both sides 4-byte aligned (records are): copy words, no allocation.
      const dw = b.words;
      const d = to >>> 2;
      const s = from >>> 2;
      const n = nbytes >>> 2;
      for (let i = 0; i < n; i++) dw[d + i] = sw[s + i];
    } else {
      const db = b.bytes;
      for (let i = 0; i < nbytes; i++) db[to + i] = src[from + i];
    }
  }

  /**
   * Queues a full buffer. The write starts once the caller's synchronous
   * work is done (a microtask): a sweep that fills several buffers hands
   * them to a descriptor in one writev(2), whose completion wakes the event
   * loop once, not once per buffer.
   */
  private schedule(b: LogBuffer): void {
    b.seq = ++this.queuedSeq;
    this.queue.push(b);
    if (this.inFlight > 0 || this.writeDue) return;
    this.writeDue = true;
    queueMicrotask(() => {
      this.writeDue = false;
      if (this.inFlight === 0 && !this.abandoned) this.writeNext();
    });
  }

  private writeNext(): void {
    if (this.queue.length === 0 || this.error !== null) {
      this.inFlight = 0;
      return;
    }
    const sink = this.sink;
    if (typeof sink === 'number') {
      this.inFlight = Math.min(this.queue.length, MAX_IOV);
      this.writeFd(sink, 0);
    } else {
      this.inFlight = 1;
      this.writeStream(sink, this.queue[0], 0);
    }
  }

  /**
   * A stream may keep the chunk after its callback (a PassThrough does):
   * the buffer is handed over for good and a fresh one allocated later.
   */
  private writeStream(sink: Writable, b: LogBuffer, from: number): void {
    const n = Math.min(STREAM_SLICE, b.used - from);
    sink.write(b.bytes.subarray(from, from + n), (err) => {
      if (this.abandoned) return;
      if (err) return this.writeFailed(err, false);
      this.written += n;
      if (from + n < b.used) {
        if (this.error !== null) this.writeFailed(this.error, false);
        else this.writeStream(sink, b, from + n);
      } else if (this.completed(b, false)) {
        this.writeNext();
      }
    });
  }

  /** The buffers in flight, queue[0, inFlight), from byte `from` of the first on, in one writev(2). */
  private writeFd(fd: number, from: number): void {
    const bufs = this.queue.slice(0, this.inFlight);
    fsWritev(fd, bufs.map((b, i) => b.bytes.subarray(i === 0 ? from : 0, b.used)), (err, n) => {
      if (this.abandoned) return;
      if (err) {
        // A non-blocking pipe or socket that is full: wait as a blocking write would.
        if (err.code === 'EAGAIN') setTimeout(() => this.abandoned || this.writeFd(fd, from), 1);
        else this.writeFailed(err, true);
        return;
      }
      this.written += n;
      let rest = from + n;
      for (const b of bufs) {
        if (rest < b.used) {
          // Written in part (a pipe, a signal): the rest of the buffers in flight next.
          if (this.error !== null) this.writeFailed(this.error, true);
          else this.writeFd(fd, rest);
          return;
        }
        rest -= b.used;
        if (!this.completed(b, true)) return;
      }
      this.writeNext();
    });
  }

  /** The buffers being written did not reach the sink: the log stops and they count as lost. */
  private writeFailed(err: Error, reuse: boolean): void {
    this.loseInFlight(reuse);
    this.fail(err);
  }

  /** The buffers in flight never reach the sink: counted as lost, and recycled unless the log was abandoned (`reuse` undefined). */
  private loseInFlight(reuse?: boolean): void {
    for (const b of this.queue.splice(0, this.inFlight)) {
      this.countLost(b);
      if (reuse !== undefined) this.recycle(b, reuse);
    }
    this.inFlight = 0;
  }

  /** Counts a buffer's records as never written. */
  private countLost(b: LogBuffer): void {
    const w = b.words;
    for (let o = 0; o < b.used; ) {
      const len = w[o >>> 2] & 0xffff;
      if (len === 0) break;
      this.lostRecords++;
      o += len;
    }
    this.lostBytes += b.used;
  }

  /** The first buffer in flight is written whole: recycled, its flushes resolved. False when the log has failed meanwhile. */
  private completed(b: LogBuffer, reuse: boolean): boolean {
    this.queue.shift();
    this.inFlight--;
    this.recycle(b, reuse);
    if (this.error !== null) {
      // The rest of what was in flight counts as lost with what fail() discarded.
      this.loseInFlight(reuse);
      return false;
    }
    this.writtenSeq = b.seq;
    if (this.waiters.length > 0 && this.waiters[0].seq <= b.seq) {
      const done = this.waiters.filter((w) => w.seq <= b.seq);
      this.waiters = this.waiters.filter((w) => w.seq > b.seq);
      for (const w of done) w.resolve();
    }
    return true;
  }

  /** Returns a buffer to the pool, or forgets it (handed to a stream, or the log is closed). */
  private recycle(b: LogBuffer, reuse: boolean): void {
    if (reuse && this.state !== 'closed') {
      b.used = 0;
      this.free.push(b);
    } else {
      this.allocated--;
    }
  }

  /**
   * The first write error stops the log: queued data is discarded and
   * counted, flushes reject, onError hears of it; the error says what was lost.
   */
  private fail(e: Error): void {
    if (this.error !== null) return;
    for (const b of this.queue.splice(this.inFlight)) {
      this.countLost(b);
      this.recycle(b, true);
    }
    if (this.current !== null) {
      this.countLost(this.current);
      this.recycle(this.current, true);
      this.current = null;
    }
    let err = toPmcError(e, this.sink);
    if (this.lostRecords > 0) err = new PmcError(err.code, `${err.detail}; ${this.lostRecords} log record(s) (${this.lostBytes} bytes) were not written`);
    this.error = err;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(err);
    this.onError?.(err);
  }
}

function toPmcError(e: Error, sink: LogSink): PmcError {
  if (e instanceof PmcError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  const name =
    typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)
      ? code
      : code === 'ERR_STREAM_DESTROYED' || code === 'ERR_STREAM_WRITE_AFTER_END'
        ? 'EPIPE'
        : 'EIO';
  const where = typeof sink === 'number' ? `fd ${sink}` : 'stream';
  return new PmcError(name, `log write to ${where} failed: ${e.message}`);
}
