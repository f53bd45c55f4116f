// A SampleSource on perf: one CPU's mmap ring, shared by the events of a
// target's threads on that CPU. Draining it turns each record into what the
// module understands (md/sample-sink.ts): PERF_RECORD_SAMPLE into a Sample
// read in place (no object, no BigInt per sample), the side-band (comm,
// mmap2, fork, exit, lost) into process events. A counting set that logs
// context switches uses the same source: its samples are switch-outs that
// carry the thread's count.
import { now } from '../pmc-common.js';
import { PmcError } from '../pmc-error.js';
import type { PerfEvent } from './perf-event.js';
import { decodeSideRecord, PerfRecordMisc, PerfRecordType, type SideRecord } from './perf-records.js';
import { copyChainWords, type SampleLayout, u64Words } from './perf-sample-record.js';
import type { RingBuffer } from './ring-buffer.js';
import type { ProcessEvent, Sample, SampleSink, SampleSource } from './sample-sink.js';

const TWO_32 = 0x1_0000_0000;
const HEADER_SIZE = 8;
const PROT_EXEC = 4;

/** A PERF_RECORD_SAMPLE seen in place as a Sample: valid while the sink's sample() runs. */
class PerfSample implements Sample {
  cpu = 0;
  pid = 0;
  tid = 0;
  // NaN, not 0: the field holds doubles from the start (a field that changes representation throws optimized code away).
  time = NaN;
  user = false;
  /** The record's memory (the ring's staging area). */
  words: Int32Array = new Int32Array(0);
  /** Word of the sampled IP, or -1. */
  ip = -1;
  /** Word of the first call-chain entry (after `nr`), or -1 without a chain. */
  chain = -1;
  entries = 0;

  copyChain(dst: Int32Array, at: number, maxDepth: number, withUser: boolean): number {
    const src = this.words;
    if (this.chain < 0) {
      if (this.ip < 0 || maxDepth < 1) return 0;
      dst[at] = src[this.ip];
      dst[at + 1] = src[this.ip + 1];
      return 1;
    }
    return copyChainWords(src, this.chain, this.entries, dst, at, maxDepth, !withUser && !this.user);
  }
}

export class PerfSampleSource implements SampleSource {
  stalled = false;
  private sink: SampleSink | null = null;
  private readonly sample = new PerfSample();
  /** Context-switch samplers: the word, in a sample's read_format block, of the count to report; -1 otherwise. */
  private readonly switchCountWord: number;
  // The sample's fields as word offsets from its header (-1: absent), from the layout.
  private readonly tidWord: number;
  private readonly timeWord: number;
  private readonly cpuWord: number;
  private readonly ipWord: number;
  private readonly chainWord: number;

  constructor(
    readonly cpu: number,
    readonly ring: RingBuffer,
    readonly layout: SampleLayout,
    /** The events that sample into the ring (paused and resumed). */
    readonly events: PerfEvent[],
    /**
     * For a context-switch sampler: where, in the sample's read_format
     * block, the count to report lies. Its samples are then switch-outs.
     */
    switchCountOffset?: number,
  ) {
    this.switchCountWord = switchCountOffset === undefined ? -1 : (layout.read + switchCountOffset) >>> 2;
    const word = (offset: number): number => (offset >= 0 ? offset >>> 2 : -1);
    this.tidWord = word(layout.tid);
    this.timeWord = word(layout.time);
    this.cpuWord = word(layout.cpu);
    this.ipWord = word(layout.ip);
    this.chainWord = word(layout.callchain);
  }

  get isClosed(): boolean {
    return this.ring.isClosed;
  }

  /** hwpmc's stall: the sampling events stop (and stop counting) until resume(); side-band and switch-outs go on. */
  pause(): void {
    if (this.stalled) return;
    this.stalled = true;
    for (const e of this.events) e.disable();
  }

  resume(): void {
    if (!this.stalled) return;
    this.stalled = false;
    for (const e of this.events) e.enable();
  }

  get pollFd(): number {
    return this.ring.event.fd;
  }

  /**
   * What the ring holds is staged (RingBuffer.stage) and walked here: the
   * records a sink stopped before stay staged and come first next time.
   */
  drain(sink: SampleSink): void {
    this.sink = sink;
    const ring = this.ring;
    if (ring.isClosed) return;
    if (ring.hasStaged && !this.visitStaged()) return;
    if (ring.stage() > 0) this.visitStaged();
  }

  /**
   * The staged records, oldest first, until the sink refuses a sample
   * (false). One loop for every record: a sample is read in place into the
   * reused PerfSample (int32 words, no object, no BigInt) and handed to the
   * sink, the hot path's only call; side-band records are decoded. A record
   * whose handling throws counts as read, so one bad record cannot wedge the
   * ring.
   */
  private visitStaged(): boolean {
    const ring = this.ring;
    const { bytes, view, words } = ring.staged;
    const to = ring.stagedTo;
    const sink = this.sink!;
    const s = this.sample;
    s.words = words;
    let off = ring.stagedFrom;
    try {
      while (off < to) {
        const w = off >>> 2;
        const type = words[w];
        const misc = words[w + 1] & 0xffff;
        const size = words[w + 1] >>> 16;
        if (size < HEADER_SIZE || (size & 7) !== 0 || off + size > to) {
          const skipped = to - off;
          off = to;
          throw new PmcError('EIO', `perf ring of fd ${ring.event.fd} holds a record of type ${type} with size ${size}; ${skipped} bytes discarded`);
        }
        if (type !== PerfRecordType.SAMPLE) {
          off += size;
          this.onSideBand(decodeSideRecord(this.layout, bytes, view, off - size, type, misc, size));
          continue;
        }
        const mode = misc & PerfRecordMisc.CPUMODE_MASK;
        s.user = mode === PerfRecordMisc.USER || mode === PerfRecordMisc.GUEST_USER;
        let o = this.tidWord;
        s.pid = o >= 0 ? words[w + o] : -1;
        s.tid = o >= 0 ? words[w + o + 1] : -1;
        o = this.timeWord;
        if (o >= 0) {
          // u64Words(), without a call (the sample path is compiled without inlining).
          const lo = words[w + o];
          s.time = words[w + o + 1] * TWO_32 + lo + (lo < 0 ? TWO_32 : 0);
        } else {
          s.time = now();
        }
        o = this.cpuWord;
        s.cpu = o >= 0 ? words[w + o] : this.cpu;
        o = this.ipWord;
        s.ip = o >= 0 ? w + o : -1;
        o = this.chainWord;
        if (o >= 0) {
          // No more entries than the record holds.
          s.entries = Math.min(words[w + o], (size >>> 3) - o / 2 - 1);
          s.chain = w + o + 2;
        } else {
          s.chain = -1;
        }
        const at = this.switchCountWord;
        if (at < 0) {
          if (!sink.sample(s)) return false;
        } else {
          const count = u64Words(words, w + at);
          if (!sink.switchOut(s.time, s.cpu, s.pid, s.tid, count)) return false;
        }
        off += size;
      }
      return true;
    } finally {
      ring.consumeStaged(off);
    }
  }

  private onSideBand(rec: SideRecord | null): void {
    if (rec === null) return;
    if (rec.type === PerfRecordType.LOST) {
      this.sink!.lost(rec.lost);
      return;
    }
    const e = processEvent(rec);
    if (e) this.sink!.process(e);
  }
}

/** The side-band record as the module's process event, if it is one. */
function processEvent(rec: SideRecord): ProcessEvent | undefined {
  const time = rec.sampleId?.time ?? now();
  switch (rec.type) {
    case PerfRecordType.COMM:
      return rec.exec ? { kind: 'exec', time, pid: rec.pid, comm: rec.comm } : undefined;
    case PerfRecordType.MMAP:
    case PerfRecordType.MMAP2: {
      // Executable mappings of files, and the vdso; MMAP (v1) records come only for executable ones.
      if (rec.type === PerfRecordType.MMAP2 && !(rec.prot & PROT_EXEC)) return undefined;
      if (!rec.filename.startsWith('/') && rec.filename !== '[vdso]') return undefined;
      return { kind: 'map', time, pid: rec.pid, start: rec.addr - rec.pgoff, offset: rec.pgoff, length: rec.len, path: rec.filename };
    }
    case PerfRecordType.FORK:
      return rec.pid !== rec.ppid ? { kind: 'fork', time: rec.time, pid: rec.pid, ppid: rec.ppid } : { kind: 'thread', time: rec.time, pid: rec.pid, tid: rec.tid };
    case PerfRecordType.EXIT:
      return rec.pid === rec.tid ? { kind: 'exit', time: rec.time, pid: rec.pid } : { kind: 'thread-exit', time: rec.time, pid: rec.pid, tid: rec.tid };
    default:
      return undefined;
  }
}
