// One perf_event file descriptor: open, read, the ioctls, close.
import { errnoName, PmcError } from '../pmc-error.js';
import { closeFd } from '../os/libc.js';
import { allocNative, ioctl, ioctlBuffer, perfEventOpen, readNative } from './native.js';
import { encodeAttr, PerfFormat, type PerfEventAttr } from './perf-attr.js';

const PERF_FLAG_FD_CLOEXEC = 1 << 3;

// _IO('$', n) and friends.
const IOC = {
  ENABLE: 0x2400,
  DISABLE: 0x2401,
  SET_OUTPUT: 0x2405,
  ID: 0x80082407,
} as const;

/** Every counter is read with its enabled and running times (see read()). */
export const COUNTING_READ_FORMAT = PerfFormat.TOTAL_TIME_ENABLED | PerfFormat.TOTAL_TIME_RUNNING;

export interface CounterReading {
  value: bigint;
  /** Nanoseconds the event was enabled and actually counting; equal unless multiplexed. */
  enabled: bigint;
  running: bigint;
}

export interface OpenTarget {
  /** Thread id, 0 for the calling thread, -1 for every task on `cpu`. */
  pid: number;
  /** CPU number, or -1 for any CPU the thread runs on. */
  cpu: number;
  groupFd?: number;
}

/** The largest read_format block read here: a group of 64 (nr, enabled, running, values). */
const MAX_READ = 8 * (3 + 64);

/**
 * Every read lands in one buffer outside the JS heap and is decoded before
 * the next (JS runs one read at a time): read(2) gets a plain address.
 */
const scratch = allocNative(MAX_READ);
const scratchU64 = new BigUint64Array(scratch.buffer);
const scratchU32 = new Uint32Array(scratch.buffer);
const scratchBytes = new Uint8Array(scratch.buffer);

/** A group read's words as 64-bit values (a BigInt each) and as 32-bit halves (numbers, no BigInt). */
export interface GroupWords {
  readonly u64: BigUint64Array;
  readonly u32: Uint32Array;
}
const groupWords: GroupWords = { u64: scratchU64, u32: scratchU32 };

export class PerfEvent {
  private closed = false;

  private constructor(
    readonly fd: number,
    readonly target: OpenTarget,
  ) {}

  /** Opens an event; a failure is a PmcError naming the errno and the target. */
  static open(attr: PerfEventAttr, target: OpenTarget): PerfEvent {
    const fd = perfEventOpen(encodeAttr(attr), target.pid, target.cpu, target.groupFd ?? -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0) {
      const where = target.pid === -1 ? `cpu ${target.cpu}` : `tid ${target.pid}${target.cpu >= 0 ? ` on cpu ${target.cpu}` : ''}`;
      throw new PmcError(errnoName(fd), `perf_event_open(type ${attr.type}, config 0x${attr.config.toString(16)}) for ${where} failed`);
    }
    return new PerfEvent(fd, target);
  }

  /**
   * Reads value and times. A pinned event the PMU could not keep reads as
   * end-of-file: that is a counter that stopped counting, never a zero.
   */
  read(): CounterReading {
    this.readToScratch(24);
    return { value: scratchU64[0]!, enabled: scratchU64[1]!, running: scratchU64[2]! };
  }

  /**
   * The value of a counter that must have counted all the time it was
   * enabled (a pinned counting event); EBUSY if it did not. The PMCRW hot
   * path: one read(2) and one BigInt.
   */
  readValue(): bigint {
    this.readToScratch(24);
    // enabled == running, compared as 32-bit halves: no BigInt for the times.
    if (scratchU32[2] !== scratchU32[4] || scratchU32[3] !== scratchU32[5]) {
      throw new PmcError('EBUSY', `counter fd ${this.fd} ran ${scratchU64[2]} of ${scratchU64[1]} ns: it was multiplexed`);
    }
    return scratchU64[0]!;
  }

  /**
   * A group leader's PERF_FORMAT_GROUP | PERF_FORMAT_ID block: nr, enabled,
   * running, then (value, id) per event, the leader first. The words are
   * md's scratch buffer, valid until the next read. A group that ran less
   * than it was enabled is EBUSY, as readValue.
   */
  readGroup(): GroupWords {
    this.readToScratch(MAX_READ);
    if (scratchU32[2] !== scratchU32[4] || scratchU32[3] !== scratchU32[5]) {
      throw new PmcError('EBUSY', `group of fd ${this.fd} ran ${scratchU64[2]} of ${scratchU64[1]} ns: it was multiplexed`);
    }
    return groupWords;
  }

  /** Reads the raw read_format block (e.g. a group's) into `buf`; returns its length. */
  readRaw(buf: Buffer): number {
    const n = this.readToScratch(Math.min(buf.length, MAX_READ));
    buf.set(scratchBytes.subarray(0, n));
    return n;
  }

  private readToScratch(length: number): number {
    const n = readNative(this.fd, scratch, length);
    if (n < 0) throw new PmcError(errnoName(n), `read of perf event fd ${this.fd} failed`);
    if (n === 0) throw new PmcError('EBUSY', `perf event fd ${this.fd} was pushed off the PMU and stopped counting`);
    return n;
  }

  enable(): void {
    this.control(IOC.ENABLE, 0, 'enable');
  }
  disable(): void {
    this.control(IOC.DISABLE, 0, 'disable');
  }
  /** Redirect this event's records into another event's ring buffer (same CPU). */
  setOutput(target: PerfEvent): void {
    this.control(IOC.SET_OUTPUT, target.fd, 'set-output');
  }
  /** The kernel's id for this event, as found in sample records. */
  id(): bigint {
    const b = Buffer.alloc(8);
    const r = ioctlBuffer(this.fd, IOC.ID, b);
    if (r < 0) throw new PmcError(errnoName(r), `reading the id of perf event fd ${this.fd} failed`);
    return b.readBigUInt64LE(0);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeFd(this.fd);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private control(request: number, arg: number, what: string): void {
    const r = ioctl(this.fd, request, arg);
    if (r < 0) throw new PmcError(errnoName(r), `${what} of perf event fd ${this.fd} failed`);
  }
}
