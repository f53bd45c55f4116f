// Streaming reader of the owner log: bytes go in as they arrive (any chunk
// boundaries), records come out. Damage is reported once, at the offset of
// the first bad record, after every good record before it has come out.
import { open, type FileHandle } from 'node:fs/promises';
import { PMC_CALLCHAIN_DEPTH_MAX } from '../pmc-common.js';
import { PmcError } from '../pmc-error.js';
import { checkHeader, decodeRecord, headerWord, LogFormatError, TailOffset, typeName } from './codec.js';
import { LOG_HEADER_SIZE } from './record-layouts.js';
import { LogType, type LogRecord } from './records.js';

export { LogFormatError } from './codec.js';

const EMPTY = new Uint8Array(0);
/** readLog's read size: large reads keep the per-chunk costs negligible. */
const DEFAULT_READ_SIZE = 1 << 20;

/**
 * Takes the records of a log without a record object per sample: a reader
 * of many call chains (the analysis) gets each one's fields and PCs in place.
 */
export interface RecordVisitor {
  /** Any record but a CALLCHAIN, decoded. */
  record(r: LogRecord): void;
  /**
   * A CALLCHAIN: its `npcs` PCs are words[at .. at + 2 * npcs) as (low, high)
   * u32 pairs, sampled PC first; `words` is only valid during the call.
   * `cpuflags` is pl_cpuflags (CPU in the high 16 bits, PMC_CC_F_* in the low).
   */
  callchain(words: Uint32Array, at: number, npcs: number, pid: number, tid: number, pmcid: number, cpuflags: number, ts: number): void;
}

const TWO_32 = 0x1_0000_0000;
/** Magic and type, the high half of a CALLCHAIN's header word. */
const CALLCHAIN_HIGH = headerWord(LogType.CALLCHAIN, 0) >>> 16;
// CALLCHAIN lengths: 32 bytes of fields and 1 to 512 PCs of 8 bytes.
const MIN_CALLCHAIN = TailOffset.CALLCHAIN + 8;
const MAX_CALLCHAIN = TailOffset.CALLCHAIN + 8 * PMC_CALLCHAIN_DEPTH_MAX;

export class LogReader implements Iterable<LogRecord> {
  /** Chunk being decoded, position in it, and its offset in the log. */
  private cur: Uint8Array = EMPTY;
  /** `cur` as u32 words, when its records are 4-byte aligned in memory (then call chains are read in place). */
  private words: Uint32Array | null = null;
  private pos = 0;
  private base = 0;
  /** Chunks fed after `cur`, and their total size. */
  private readonly pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private ended = false;
  private failure: LogFormatError | null = null;
  private count = 0;

  /** Offset in the log of the next record. */
  get offset(): number {
    return this.base + this.pos;
  }

  /** Records decoded so far. */
  get recordCount(): number {
    return this.count;
  }

  /** Adds the next bytes of the log. The reader keeps the chunk until it is decoded (or release()): do not reuse it before. */
  feed(chunk: Uint8Array): void {
    if (this.ended) throw new PmcError('EINVAL', 'log data fed after the end of the log');
    if (chunk.length === 0) return;
    if (this.pos === this.cur.length && this.pending.length === 0) {
      this.base += this.cur.length;
      this.setCurrent(chunk);
    } else {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
    }
  }

  /**
   * Lets go of every chunk fed so far, keeping a copy of the bytes not yet
   * decoded (at most a partial record): the caller may then reuse its buffers.
   */
  release(): void {
    const rest = this.cur.length - this.pos + this.pendingBytes;
    const tail = rest === 0 ? EMPTY : this.peek(rest);
    this.base = this.offset;
    this.setCurrent(tail);
    this.pending.length = 0;
    this.pendingBytes = 0;
  }

  /** Declares that no more data will come: a partial record left over is then reported as truncation. */
  end(): void {
    this.ended = true;
  }

  /**
   * The next record; undefined when more data is needed (or the log ended
   * cleanly). Throws LogFormatError, now and on every later call, at damage.
   */
  next(): LogRecord | undefined {
    if (this.failure !== null) throw this.failure;
    const cur = this.cur;
    const pos = this.pos;
    const avail = cur.length - pos;
    if (avail >= LOG_HEADER_SIZE) {
      const len = cur[pos] | (cur[pos + 1] << 8);
      // Whole record in this chunk (a length of 0 falls through to decodeRecord, which rejects it).
      if (len <= avail) {
        let rec: LogRecord;
        try {
          rec = decodeRecord(cur, pos, this.base + pos);
        } catch (e) {
          throw this.fault(e);
        }
        this.pos = pos + len;
        this.count++;
        return rec;
      }
    }
    return this.nextSpanning();
  }

  /**
   * Gives every record that is complete so far to `visitor`, call chains in
   * place (see RecordVisitor); returns when more data is needed. Throws
   * LogFormatError, as next() does, after every good record before the damage.
   */
  visit(visitor: RecordVisitor): void {
    for (;;) {
      const words = this.words;
      const cur = this.cur;
      const pos = this.pos;
      if (words !== null && cur.length - pos >= LOG_HEADER_SIZE) {
        const w = pos >>> 2;
        const head = words[w];
        const len = head & 0xffff;
        // A well-formed call chain (magic, length for 1 to 512 PCs) is taken here; anything else goes through next(), which says what is wrong.
        if (head >>> 16 === CALLCHAIN_HIGH && len >= MIN_CALLCHAIN && len <= MAX_CALLCHAIN && (len & 7) === 0 && len <= cur.length - pos) {
          this.pos = pos + len;
          this.count++;
          const npcs = (len - TailOffset.CALLCHAIN) >>> 3;
          visitor.callchain(words, w + 8, npcs, words[w + 4] | 0, words[w + 5] | 0, words[w + 6], words[w + 7], words[w + 2] + words[w + 3] * TWO_32);
          continue;
        }
      }
      const r = this.next();
      if (r === undefined) return;
      if (r.type === LogType.CALLCHAIN) {
        const pcs = r.pcs;
        visitor.callchain(new Uint32Array(pcs.buffer, pcs.byteOffset, pcs.length * 2), 0, pcs.length, r.pid, r.tid, r.pmcid, ((r.cpu << 16) | r.flags) >>> 0, r.ts);
      } else visitor.record(r);
    }
  }

  *[Symbol.iterator](): Iterator<LogRecord> {
    for (let r = this.next(); r !== undefined; r = this.next()) yield r;
  }

  /** The slow path: the record (or its header) continues in later chunks. */
  private nextSpanning(): LogRecord | undefined {
    while (this.pos === this.cur.length && this.pending.length > 0) this.advance();
    const total = this.cur.length - this.pos + this.pendingBytes;
    if (total === 0) return undefined;
    const offset = this.offset;
    if (total < 4) return this.needMore(offset, `truncated header at end of log: ${total} of ${LOG_HEADER_SIZE} bytes`);
    const head = this.peek(4);
    const word = (head[0] | (head[1] << 8) | (head[2] << 16) | (head[3] << 24)) >>> 0;
    let len: number;
    try {
      len = checkHeader(word, offset);
    } catch (e) {
      throw this.fault(e);
    }
    if (total < len) {
      const what =
        total < LOG_HEADER_SIZE
          ? `truncated header at end of log: ${total} of ${LOG_HEADER_SIZE} bytes`
          : `truncated ${typeName((word >>> 16) & 0xff)} record at end of log: ${total} of ${len} bytes`;
      return this.needMore(offset, what);
    }
    const bytes = this.take(len);
    let rec: LogRecord;
    try {
      rec = decodeRecord(bytes, 0, offset);
    } catch (e) {
      throw this.fault(e);
    }
    this.count++;
    return rec;
  }

  /** Undefined while more data may come; the truncation error once the log has ended. */
  private needMore(offset: number, what: string): undefined {
    if (!this.ended) return undefined;
    this.failure = new LogFormatError(offset, what);
    throw this.failure;
  }

  /** Remembers a format error so that every later call reports it too. */
  private fault(e: unknown): unknown {
    if (e instanceof LogFormatError) this.failure = e;
    return e;
  }

  private advance(): void {
    this.base += this.cur.length;
    this.setCurrent(this.pending.shift() as Uint8Array);
    this.pendingBytes -= this.cur.length;
  }

  private setCurrent(chunk: Uint8Array): void {
    this.cur = chunk;
    this.pos = 0;
    // Records start at multiples of 4 in the log: read in place when they are at multiples of 4 in memory too.
    this.words = chunk.byteOffset % 4 === 0 && this.base % 4 === 0 && chunk.length >= 4 ? new Uint32Array(chunk.buffer, chunk.byteOffset, chunk.length >>> 2) : null;
  }

  /** A copy of the next `n` bytes, across chunks, without consuming them. */
  private peek(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let k = 0;
    let src = this.cur;
    let at = this.pos;
    for (let i = 0; k < n; ) {
      const m = Math.min(src.length - at, n - k);
      out.set(src.subarray(at, at + m), k);
      k += m;
      src = this.pending[i++] ?? EMPTY;
      at = 0;
    }
    return out;
  }

  /** Consumes the next `n` bytes, across chunks, into one new array. */
  private take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let k = 0;
    while (k < n) {
      if (this.pos === this.cur.length) this.advance();
      const m = Math.min(this.cur.length - this.pos, n - k);
      out.set(this.cur.subarray(this.pos, this.pos + m), k);
      k += m;
      this.pos += m;
    }
    return out;
  }
}

export interface ReadLogOptions {
  /** Bytes per read from a file (default 1 MiB). */
  readSize?: number;
}

export type LogSource = string | AsyncIterable<Uint8Array>;

/**
 * The records of a log file (path) or byte stream (a Readable, or any async
 * iterable of byte chunks), in order. A damaged or truncated log yields every
 * record before the damage, then throws LogFormatError.
 */
export async function* readLog(source: LogSource, opts: ReadLogOptions = {}): AsyncGenerator<LogRecord, void, undefined> {
  const reader = new LogReader();
  for await (const _ of feedChunks(reader, source, opts)) {
    for (let r = reader.next(); r !== undefined; r = reader.next()) yield r;
  }
}

/**
 * Gives every record of a log to `visitor` (call chains in place, see
 * RecordVisitor), synchronously within each chunk. Rejects as readLog throws,
 * after the visitor has had every record before the damage.
 */
export async function visitLog(source: LogSource, visitor: RecordVisitor, opts: ReadLogOptions = {}): Promise<void> {
  const reader = new LogReader();
  for await (const _ of feedChunks(reader, source, opts)) reader.visit(visitor);
}

/**
 * Feeds the log to `reader` a chunk at a time, pausing after each chunk
 * (and once more after the end of the log) for the caller to take the
 * records it completed.
 */
async function* feedChunks(reader: LogReader, source: LogSource, opts: ReadLogOptions): AsyncGenerator<void, void, undefined> {
  if (typeof source === 'string') {
    yield* feedFile(reader, source, opts.readSize ?? DEFAULT_READ_SIZE);
  } else {
    for await (const chunk of source) {
      if (!(chunk instanceof Uint8Array)) throw new PmcError('EINVAL', `log stream gave a ${typeof chunk} chunk (expected bytes; do not set an encoding)`);
      reader.feed(chunk);
      yield;
    }
  }
  reader.end();
  yield;
}

/**
 * Two read buffers in turn: the next read runs while the current chunk is
 * decoded, and buffers are reused (decoded records copy what they keep).
 */
async function* feedFile(reader: LogReader, path: string, readSize: number): AsyncGenerator<void, void, undefined> {
  if (!Number.isInteger(readSize) || readSize < 1) throw new PmcError('EINVAL', `log read size ${readSize} (expected a positive integer)`);
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw ioError(e, `cannot open log "${path}" for reading`);
  }
  const buffers = [Buffer.allocUnsafe(readSize), Buffer.allocUnsafe(readSize)];
  const readInto = async (buf: Buffer): Promise<Uint8Array> => {
    try {
      const { bytesRead } = await fh.read(buf, 0, readSize, null);
      return buf.subarray(0, bytesRead);
    } catch (e) {
      throw ioError(e, `cannot read log "${path}"`);
    }
  };
  let pending = readInto(buffers[0]);
  try {
    for (let k = 1; ; k ^= 1) {
      const chunk = await pending;
      if (chunk.length === 0) break;
      // The reader released the other buffer after the previous chunk.
      pending = readInto(buffers[k]);
      // Handled now so that a failed read ahead is no unhandled rejection; awaited above.
      pending.catch(() => undefined);
      reader.feed(chunk);
      yield;
      reader.release();
    }
  } finally {
    // A read still running must settle before the file is closed.
    await pending.catch(() => undefined);
    await fh.close();
  }
}

function ioError(e: unknown, what: string): PmcError {
  const err = e as NodeJS.ErrnoException;
  return new PmcError(typeof err.code === 'string' && /^E[A-Z0-9]+$/.test(err.code) ? err.code : 'EIO', `${what}: ${err.message}`);
}
