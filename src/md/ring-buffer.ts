// The mmap ring buffer of one perf event: page 0 is struct perf_event_mmap_page,
// then 2^n data pages the kernel fills with records. We are the only reader:
// data_head (kernel) says how far records are complete, data_tail (ours)
// how far we have consumed. Mapped PROT_WRITE, so the kernel never writes
// over unread bytes: when the ring is full it counts losses and later writes
// a PERF_RECORD_LOST instead.
import { readSysctl } from '../os/procfs.js';
import { errnoName, PmcError } from '../pmc-error.js';
import { mmapShared, munmap, PROT_READ, PROT_WRITE, type Mapping } from './native.js';
import type { PerfEvent } from './perf-event.js';

/** x86_64 page size; the mapping is one control page plus the data pages. */
const PAGE_SIZE = 4096;
/** perf_event_header.size is a u16, so no record is longer than this. */
const MAX_RECORD_SIZE = 0xffff;
const HEADER_SIZE = 8;
const TWO_32 = 0x1_0000_0000;

// perf_event_mmap_page control words, as indexes of u32 halves (little-endian: low half first).
const DATA_HEAD_LO = 1024 / 4;
const DATA_HEAD_HI = DATA_HEAD_LO + 1;
const DATA_TAIL_LO = 1032 / 4;
const DATA_TAIL_HI = DATA_TAIL_LO + 1;
const DATA_OFFSET_LO = 1040 / 4;
const DATA_SIZE_LO = 1048 / 4;

/**
 * Called once per complete record. `offset` is the record header inside
 * `bytes`/`view`/`words` (the same memory as bytes, a DataView and int32
 * words; records are 8-byte aligned, so the header is word offset / 4): the
 * ring itself, or a copy for a record that wraps around the end of the ring.
 * They are only valid until drain() returns: copy out what you keep.
 * Returning false stops the drain before this record: it stays, and the
 * next drain begins with it.
 */
export type RecordVisitor = (bytes: Uint8Array, view: DataView, offset: number, type: number, misc: number, size: number, words: Int32Array) => boolean | void;

/** One memory area seen three ways. */
export interface Area {
  bytes: Uint8Array;
  view: DataView;
  words: Int32Array;
}

function area(bytes: Uint8Array): Area {
  return { bytes, view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), words: new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2) };
}

export class RingBuffer {
  private mapping: Mapping | null;
  private readonly control: Uint32Array;
  private readonly data: Area;
  private readonly dataSize: number;
  /** Where a record that wraps around the ring's end is put together. */
  private readonly scratch = area(new Uint8Array(MAX_RECORD_SIZE + 1));
  /** Where a well-filled ring is copied before its records are visited (allocated on first use). */
  private staging?: Area;
  /** Staged records a visitor stopped before: staged[stagedStart, stagedEnd), visited first by the next drain. */
  private stagedStart = 0;
  private stagedEnd = 0;
  /** The staged records are read in the ring itself (stage()): its tail is at stagedStart. */
  private inPlace = false;
  /** Our copy of data_tail: we are its only writer. */
  private tail: number;

  private constructor(
    readonly event: PerfEvent,
    mapping: Mapping,
  ) {
    this.mapping = mapping;
    this.control = new Uint32Array(mapping.buffer, 0, PAGE_SIZE / 4);
    // data_offset/data_size are set by every kernel since 4.1.
    const dataOffset = this.control[DATA_OFFSET_LO]!;
    this.dataSize = this.control[DATA_SIZE_LO]!;
    this.data = area(new Uint8Array(mapping.buffer, dataOffset, this.dataSize));
    this.tail = Atomics.load(this.control, DATA_TAIL_LO) + Atomics.load(this.control, DATA_TAIL_HI) * TWO_32;
  }

  /**
   * Maps the ring of `event` with `dataPages` (a power of two) data pages.
   * An event whose output was redirected with setOutput() has no ring of its own.
   */
  static map(event: PerfEvent, dataPages: number): RingBuffer {
    if (!Number.isInteger(dataPages) || dataPages < 1 || (dataPages & (dataPages - 1)) !== 0 || dataPages > 1 << 20) {
      throw new PmcError('EINVAL', `ring buffer size ${dataPages} pages is not a power of two between 1 and 2^20`);
    }
    const length = (1 + dataPages) * PAGE_SIZE;
    const m = mmapShared(event.fd, length, PROT_READ | PROT_WRITE);
    if (typeof m === 'number') {
      const code = errnoName(m);
      throw new PmcError(code, `mmap of a ${dataPages}-page (${(dataPages * PAGE_SIZE) / 1024} kB) ring buffer for perf event fd ${event.fd} failed${mapFailureHint(code)}`);
    }
    return new RingBuffer(event, m);
  }

  /** Bytes of complete records not yet drained. */
  pending(): number {
    this.checkOpen('pending');
    return this.readHead() - this.tail;
  }

  /** Size of the data area in bytes. */
  get size(): number {
    return this.dataSize;
  }

  /**
   * Hands every complete record to `visitor`, oldest first, then releases
   * their space to the kernel. `maxBytes` bounds the work of one call: it
   * stops before the first record that starts maxBytes or more past where it
   * began, leaving the rest for the next drain.
   * A record whose visitor throws counts as consumed, so one bad record
   * cannot wedge the ring; one whose visitor returns false stays. With more
   * than `stageAbove` bytes pending the ring is copied out first (see
   * drainStaged). The visitor is called with `self` as `this`. Returns the
   * number of records consumed.
   */
  drain(visitor: RecordVisitor, maxBytes = Infinity, stageAbove = Infinity, self?: unknown): number {
    this.checkOpen('drain');
    let count = 0;
    if (this.stagedStart < this.stagedEnd) {
      count = this.visitStaged(visitor, self);
      if (this.stagedStart < this.stagedEnd) return count;
    }
    // Ordering: the kernel publishes data_head with a release store after the
    // records. x86 is TSO: loads are not reordered with older loads, and a
    // store is not reordered with older loads, so reading data_head, then the
    // records, then writing data_tail needs no fence instruction. Atomics on
    // the control words keep V8 from folding, tearing or moving those accesses.
    const head = this.readHead();
    const start = this.tail;
    if (maxBytes === Infinity && head - start > stageAbove) return count + this.drainStaged(visitor, head, start, self);
    const { bytes: data, view, words } = this.data;
    const mask = this.dataSize - 1;
    let tail = start;
    try {
      while (tail < head && tail - start < maxBytes) {
        // `&` works on the low 32 bits, which is all the mask needs.
        const pos = tail & mask;
        const type = view.getUint32(pos, true);
        const misc = view.getUint16(pos + 4, true);
        const size = view.getUint16(pos + 6, true);
        if (size < HEADER_SIZE || (size & 7) !== 0 || tail + size > head) {
          const skipped = head - tail;
          tail = head;
          throw new PmcError('EIO', `perf ring of fd ${this.event.fd} holds a record of type ${type} with size ${size} at byte ${pos}; ${skipped} bytes discarded`);
        }
        tail += size;
        // Records are 8-byte aligned and the ring size is a multiple of 8,
        // so a header never wraps; a body may.
        let more;
        if (pos + size <= this.dataSize) {
          more = visitor.call(self, data, view, pos, type, misc, size, words);
        } else {
          const first = this.dataSize - pos;
          const s = this.scratch;
          s.bytes.set(data.subarray(pos), 0);
          s.bytes.set(data.subarray(0, size - first), first);
          more = visitor.call(self, s.bytes, s.view, 0, type, misc, size, s.words);
        }
        if (more === false) {
          tail -= size;
          break;
        }
        count++;
      }
    } finally {
      if (tail !== start) this.writeTail(tail);
    }
    return count;
  }

  /**
   * A well-filled ring is copied out whole first and given back to the
   * kernel at once, then visited from the copy: the kernel keeps writing
   * while a slow visitor (cold code, a busy machine) works, instead of
   * losing samples. Records not visited yet (a visitor stopped, or threw)
   * wait in the copy for the next drain.
   */
  private drainStaged(visitor: RecordVisitor, head: number, start: number, self: unknown): number {
    this.copyOut(head, start);
    return this.visitStaged(visitor, self);
  }

  /** The ring's bytes from `start` to `head` into the staging area, and the ring given back to the kernel. */
  private copyOut(head: number, start: number): void {
    const n = head - start;
    const pos = start & (this.dataSize - 1);
    this.staging ??= area(new Uint8Array(this.dataSize));
    const staging = this.staging.bytes;
    const data = this.data.bytes;
    if (pos + n <= this.dataSize) {
      staging.set(data.subarray(pos, pos + n), 0);
    } else {
      const first = this.dataSize - pos;
      staging.set(data.subarray(pos), 0);
      staging.set(data.subarray(0, n - first), first);
    }
    this.writeTail(head);
    this.stagedStart = 0;
    this.stagedEnd = n;
  }

  // ---- for a reader that walks the records itself (the sample path) ----
  // Calling a visitor per record costs more than the sample path's own work
  // on each record; such a reader takes what the kernel wrote as one run of
  // records (stage), walks it (staged, stagedFrom, stagedTo) and says how
  // far it got (consumeStaged). A run that lies in one piece of the ring is
  // read in place, and its space goes back to the kernel as it is consumed;
  // one that wraps around the ring's end is copied out first and the ring
  // given back at once. What the reader did not consume stays staged, and
  // drain() visits it first as well.

  /** Staged records wait to be read. */
  get hasStaged(): boolean {
    return this.stagedStart < this.stagedEnd;
  }

  /**
   * Stages what the kernel wrote since the last drain; returns its bytes (0:
   * nothing new). Only when nothing is staged.
   */
  stage(): number {
    this.checkOpen('stage');
    if (this.hasStaged) throw new PmcError('EBUSY', `perf ring of fd ${this.event.fd} still holds staged records`);
    const head = this.readHead();
    const start = this.tail;
    const n = head - start;
    if (n === 0) return 0;
    const pos = start & (this.dataSize - 1);
    if (pos + n <= this.dataSize) {
      this.inPlace = true;
      this.stagedStart = pos;
      this.stagedEnd = pos + n;
    } else {
      this.copyOut(head, start);
    }
    return n;
  }

  /** Where the staged records are (the ring itself, or the staging area): byte offsets stagedFrom..stagedTo, 8-byte aligned. */
  get staged(): Area {
    return this.inPlace ? this.data : this.staging!;
  }

  get stagedFrom(): number {
    return this.stagedStart;
  }

  get stagedTo(): number {
    return this.stagedEnd;
  }

  /** The staged records before byte `upTo` are read (upTo = stagedTo: all of them). */
  consumeStaged(upTo: number): void {
    const to = upTo < this.stagedEnd ? upTo : this.stagedEnd;
    if (this.inPlace && to > this.stagedStart) this.writeTail(this.tail + (to - this.stagedStart));
    if (to < this.stagedEnd) {
      this.stagedStart = to;
    } else {
      this.stagedStart = this.stagedEnd = 0;
      this.inPlace = false;
    }
  }

  /** Visits the staged records, until the end or a visitor that stops. */
  private visitStaged(visitor: RecordVisitor, self: unknown): number {
    const { bytes, view, words } = this.staged;
    const n = this.stagedEnd;
    let count = 0;
    for (let off = this.stagedStart; off < n; ) {
      const type = view.getUint32(off, true);
      const misc = view.getUint16(off + 4, true);
      const size = view.getUint16(off + 6, true);
      if (size < HEADER_SIZE || (size & 7) !== 0 || off + size > n) {
        this.consumeStaged(n);
        throw new PmcError('EIO', `perf ring of fd ${this.event.fd} holds a record of type ${type} with size ${size}; ${n - off} bytes discarded`);
      }
      let more;
      try {
        more = visitor.call(self, bytes, view, off, type, misc, size, words);
      } catch (e) {
        this.consumeStaged(off + size);
        throw e;
      }
      if (more === false) return count;
      this.consumeStaged(off + size);
      count++;
      off += size;
    }
    return count;
  }

  /** Unmaps the ring; close the event afterwards. */
  close(): void {
    if (this.mapping === null) return;
    const m = this.mapping;
    this.mapping = null;
    // Records staged in place go with the ring.
    if (this.inPlace) this.stagedStart = this.stagedEnd = 0;
    this.inPlace = false;
    const r = munmap(m);
    if (r < 0) throw new PmcError(errnoName(r), `munmap of the ring buffer of perf event fd ${this.event.fd} failed`);
  }

  get isClosed(): boolean {
    return this.mapping === null;
  }

  /**
   * data_head as a number (it would take 2^53 bytes to lose precision). Read
   * as two u32 halves, high-low-high: data_head only increases, so an
   * unchanged high half means the low half belongs to it.
   */
  private readHead(): number {
    const c = this.control;
    let hi = Atomics.load(c, DATA_HEAD_HI);
    for (;;) {
      const lo = Atomics.load(c, DATA_HEAD_LO);
      const again = Atomics.load(c, DATA_HEAD_HI);
      if (again === hi) return hi * TWO_32 + lo;
      hi = again;
    }
  }

  /**
   * Low half first: if the kernel reads between the two stores while a carry
   * crosses into the high half, it sees an older (smaller) tail, i.e. less free
   * space, never more.
   */
  private writeTail(tail: number): void {
    this.tail = tail;
    Atomics.store(this.control, DATA_TAIL_LO, tail >>> 0);
    Atomics.store(this.control, DATA_TAIL_HI, Math.floor(tail / TWO_32));
  }

  private checkOpen(what: string): void {
    // Touching the ArrayBuffer of an unmapped ring would fault the process.
    if (this.mapping === null) throw new PmcError('EBADF', `${what} on the closed ring buffer of perf event fd ${this.event.fd}`);
  }
}

function mapFailureHint(code: string): string {
  if (code === 'EPERM' || code === 'ENOMEM') {
    // Without the setting, the hint still names it.
    const mlockKb = readSysctl('kernel.perf_event_mlock_kb');
    const current = mlockKb === undefined ? '' : `, now ${mlockKb} kB`;
    return `: perf ring buffers of one user may lock /proc/sys/kernel/perf_event_mlock_kb${current} per online CPU, then count against RLIMIT_MEMLOCK unless the caller has CAP_IPC_LOCK; use fewer pages or raise the limit`;
  }
  if (code === 'EINVAL') {
    return ': an inherited event opened for any CPU (cpu -1), or one whose output was redirected with SET_OUTPUT, has no ring to map';
  }
  return '';
}
