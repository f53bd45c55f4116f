// A SampleSource on perf: one CPU's mmap ring, shared by the events of a
// target's threads on that CPU. Draining it turns each record into what the
// module understands (md/sample-sink.ts): PERF_RECORD_SAMPLE into a Sample
// read in place (no object, no BigInt per sample), the side-band (comm,
// mmap2, fork, exit, lost) into process events. A counting set that logs
// context switches uses the same source: its samples are switch-outs that
// carry the thread's count.
import { now } from '../pmc-common.js';
import type { PerfEvent } from './perf-event.js';
import { decodeSideRecord, PerfRecordMisc, PerfRecordType, type SideRecord } from './perf-records.js';
import { copyChainWords, type SampleLayout } from './perf-sample-record.js';
import type { RingBuffer } from './ring-buffer.js';
import type { ProcessEvent, Sample, SampleSink, SampleSource } from './sample-sink.js';

const TWO_32 = 0x1_0000_0000;
const PROT_EXEC = 4;

/** A PERF_RECORD_SAMPLE seen in place as a Sample: valid while the sink's sample() runs. */
class PerfSample implements Sample {
  cpu = 0;
  pid = 0;
  tid = 0;
  time = 0;
  user = false;
  private words: Int32Array = new Int32Array(0);
  /** Word of the sampled IP, or -1. */
  private ip = -1;
  /** Word of the first call-chain entry (after `nr`), or -1 without a chain. */
  private chain = -1;
  private entries = 0;

  /** Reads the record whose header is at word `w` of `words`. */
  read(layout: SampleLayout, words: Int32Array, w: number, misc: number, cpu: number): void {
    this.words = words;
    const mode = misc & PerfRecordMisc.CPUMODE_MASK;
    this.user = mode === PerfRecordMisc.USER || mode === PerfRecordMisc.GUEST_USER;
    let o = layout.tid;
    this.pid = o >= 0 ? words[w + (o >>> 2)] : -1;
    this.tid = o >= 0 ? words[w + (o >>> 2) + 1] : -1;
    o = layout.time;
    this.time = o >= 0 ? (words[w + (o >>> 2)] >>> 0) + (words[w + (o >>> 2) + 1] >>> 0) * TWO_32 : now();
    o = layout.cpu;
    this.cpu = o >= 0 ? words[w + (o >>> 2)] : cpu;
    this.ip = layout.ip >= 0 ? w + (layout.ip >>> 2) : -1;
    if (layout.callchain >= 0) {
      const nr = w + (layout.callchain >>> 2);
      this.entries = words[nr];
      this.chain = nr + 2;
    } else {
      this.chain = -1;
    }
  }

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

  drain(sink: SampleSink): void {
    this.sink = sink;
    // A ring a quarter full is copied out and returned to the kernel before
    // its records are visited: slow first drains (cold code) lose nothing.
    this.ring.drain(this.visit, Infinity, this.ring.size / 4, this);
  }

  /**
   * One record. A method, not a closure per source, so that the ring's drain
   * loop calls one function whatever the source (V8 then compiles the loop
   * once, with the call inlined, instead of again for each new closure).
   */
  private visit(bytes: Uint8Array, view: DataView, offset: number, type: number, misc: number, size: number, words: Int32Array): boolean {
    if (type !== PerfRecordType.SAMPLE) {
      this.onSideBand(decodeSideRecord(this.layout, bytes, view, offset, type, misc, size));
      return true;
    }
    const w = offset >>> 2;
    const s = this.sample;
    s.read(this.layout, words, w, misc, this.cpu);
    const at = this.switchCountWord;
    if (at < 0) return this.sink!.sample(s);
    const count = (words[w + at] >>> 0) + (words[w + at + 1] >>> 0) * TWO_32;
    return this.sink!.switchOut(s.time, s.cpu, s.pid, s.tid, count);
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
