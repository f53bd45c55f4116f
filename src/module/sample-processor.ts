// The sampling path: hwpmc's pmc_process_interrupt() and
// pmc_process_samples(), on perf. Every few milliseconds each running
// sampling PMC's ring buffers are drained into the per-CPU sample buffers,
// and the sample buffers into the owners' logs. A sample that finds its
// CPU's buffer full, even after a sweep into the log, is dropped and its
// PMC stalls on that CPU (its events are disabled) until the buffer has
// room again; the owner's log then gets a DROPNOTIFY with the count. The
// kernel's side-band (exec, mmap, fork, exit, lost) becomes process records.
import { CSW_LEADER_VALUE_OFFSET } from '../md/csw-counting-set.js';
import { PerfRecordType, decodeSample, decodeSideRecord, SampleFields, CallchainCopy, copyCallchainFrames, type SideRecord, u64Number } from '../md/perf-records.js';
import type { SampleSource } from '../md/sampling-set.js';
import { LogType, PMC_CC_F_USERSPACE } from '../log/records.js';
import type { DriverStats } from './driver-stats.js';
import { now } from './mappings.js';
import type { Pmc } from './pmc.js';
import { PmcFlags, PmcMode, PmcState } from './pmc-types.js';
import { SampleBuffer } from './sample-buffer.js';

/** How often the rings are drained: often enough that 512 KiB rings hold a tick of 50 kHz sampling with call chains. */
export const SAMPLE_TICK_MS = 10;

const PROT_EXEC = 4;
/** A CALLCHAIN record's bytes before its PCs. */
const CALLCHAIN_HEADER_BYTES = 32;
/** Lowest kernel address on x86_64: the high u32 of a kernel PC is at least this. */
const KERNEL_HIGH_MIN = 0xffff8000;
const PERF_RECORD_MISC_CPUMODE_MASK = 7;
const PERF_RECORD_MISC_USER = 2;

export class SampleProcessor {
  private readonly buffers: SampleBuffer[];
  private readonly fields = new SampleFields();
  private readonly chain = new CallchainCopy();
  private timer?: NodeJS.Timeout;
  /** Records newer than this wait for the next tick; Infinity outside ticks. */
  private horizon = Infinity;
  private pendingSide: { pmc: Pmc; rec: SideRecord; ts: number }[] = [];
  /** PMC_F_LOG_PROCCSW: each thread's count on each CPU at its last switch-out. */
  private readonly lastCsw = new WeakMap<Pmc, Map<number, number>>();

  constructor(
    private readonly stats: DriverStats,
    ncpu: number,
    nsamples: number,
    callchainDepth: number,
    /** The PMCs to drain: every running sampling PMC. */
    private readonly samplers: () => Iterable<Pmc>,
  ) {
    this.buffers = Array.from({ length: ncpu }, () => new SampleBuffer(nsamples, callchainDepth));
  }

  /** Runs the periodic drain while there is something to drain. */
  ensureRunning(): void {
    this.timer ??= setInterval(() => this.tick(), SAMPLE_TICK_MS);
  }

  tick(): void {
    // Rings are drained one after the other, so a record newer than this
    // moment may still be followed by an older one in a ring read later; it
    // waits for the next tick, and the log stays in time order (perf's
    // ordered events do the same).
    this.horizon = now();
    const owners = new Set<Pmc['owner']>();
    for (const pmc of this.samplers()) {
      owners.add(pmc.owner);
      this.drainPmc(pmc);
    }
    this.flush(this.horizon);
    this.horizon = Infinity;
    this.stats.log_sweeps++;
    for (const o of owners) {
      o.log?.reportDrops(now());
      o.log?.accountBuffers();
    }
    const any = owners.size > 0;
    if (!any && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Moves everything the kernel has for this PMC into the sample buffers, and resumes its stalled sources that have room. */
  drainPmc(pmc: Pmc): void {
    for (const hw of pmc.counterSets()) {
      for (const src of hw.sampleSources) {
        if (src.ring.isClosed) continue;
        const onSample = pmc.isSampling ? this.sample : this.contextSwitch;
        // A ring a quarter full is copied out and returned to the kernel before
        // its records are decoded: slow first ticks (cold code) lose nothing.
        src.ring.drain(
          (bytes, view, offset, type, misc, size) => {
            if (type === PerfRecordType.SAMPLE) onSample.call(this, pmc, src, view, offset, misc);
            else this.queueSideBand(pmc, decodeSideRecord(src.layout, bytes, view, offset, type, misc, size));
          },
          Infinity,
          src.ring.size / 4,
        );
        if (src.stalled && !this.buffers[src.cpu].full && pmc.state === PmcState.RUNNING) src.resume();
      }
    }
  }

  /** pmc_process_interrupt(): one sample into its CPU's buffer, or a drop and a stall. */
  private sample(pmc: Pmc, src: SampleSource, view: DataView, offset: number, misc: number): void {
    const f = this.fields;
    decodeSample(src.layout, view, offset, f);
    const buf = this.buffers[src.cpu];
    // A full buffer is swept whole: losing samples is worse than logging a few out of time order.
    if (buf.full) this.flush();
    if (buf.full) {
      this.stats.intr_bufferfull++;
      if (pmc.owner.log) pmc.owner.log.pendingDropped++;
      src.pause();
      return;
    }
    const slot = buf.nextSlot();
    const at = buf.slotOffset(slot);
    let n: number;
    let user: boolean;
    if (f.callchainOffset >= 0) {
      copyCallchainFrames(view, f.callchainOffset, f.callchainLength, buf.pcsView, at, buf.depth, this.chain);
      n = this.chain.frames;
      user = this.chain.userMode;
      // pmcstat -U: without it a sample taken in the kernel keeps only its kernel frames.
      if (!user && !(pmc.flags & PmcFlags.USERCALLCHAIN)) n = kernelFrames(buf.pcsView, at, n);
    } else {
      buf.pcsView.setUint32(at, f.ipLo, true);
      buf.pcsView.setUint32(at + 4, f.ipHi, true);
      n = 1;
      user = (misc & PERF_RECORD_MISC_CPUMODE_MASK) === PERF_RECORD_MISC_USER;
    }
    if (n === 0) {
      this.stats.intr_ignored++;
      return;
    }
    buf.ts[slot] = f.time;
    buf.pid[slot] = f.pid;
    buf.tid[slot] = f.tid;
    buf.cpuflags[slot] = ((f.cpu << 16) | (user ? PMC_CC_F_USERSPACE : 0)) >>> 0;
    buf.npcs[slot] = n;
    buf.pmc[slot] = pmc;
    buf.commit();
    this.stats.intr_processed++;
  }

  /**
   * pmc_process_csw_out() with PMC_F_LOG_PROCCSW: a thread left a CPU; the
   * sample read its group, whose leader holds the thread's count on that
   * CPU. The difference from its last switch-out there is what it counted
   * in the slice.
   */
  private contextSwitch(pmc: Pmc, src: SampleSource, view: DataView, offset: number): void {
    const f = this.fields;
    decodeSample(src.layout, view, offset, f);
    const log = pmc.owner.log;
    if (!log || f.readOffset < 0) return;
    const value = u64Number(view, f.readOffset + CSW_LEADER_VALUE_OFFSET);
    let last = this.lastCsw.get(pmc);
    if (!last) this.lastCsw.set(pmc, (last = new Map()));
    const key = f.tid * 4096 + src.cpu;
    const delta = value - (last.get(key) ?? 0);
    last.set(key, value);
    log.write({ type: LogType.PROCCSW, ts: f.time, value: BigInt(delta), pmcid: pmc.id, pid: f.pid, tid: f.tid });
  }

  /** Side-band records and samples up to `horizon` into the logs, in time order. */
  flush(horizon = Infinity): void {
    this.flushSideBand(horizon);
    for (const buf of this.buffers) this.sweep(buf, horizon);
  }

  /** Whether records of this owner still wait here. */
  holdsRecordsOf(owner: Pmc['owner']): boolean {
    if (this.pendingSide.some((p) => p.pmc.owner === owner)) return true;
    return this.buffers.some((b) => b.pmc.some((p) => p?.owner === owner));
  }

  /** pmc_process_samples(): the oldest samples of a buffer (up to `horizon`) into their owners' logs, until a log is full. */
  private sweep(buf: SampleBuffer, horizon: number): void {
    for (let slot = buf.oldest(); slot >= 0 && buf.ts[slot] <= horizon; slot = buf.oldest()) {
      const pmc = buf.pmc[slot]!;
      const log = pmc.owner.log;
      if (log && pmc.state !== PmcState.DELETED) {
        const n = buf.npcs[slot];
        if (CALLCHAIN_HEADER_BYTES + n * 8 > log.writer.bufferSize) {
          // A chain no log buffer can hold (logbuffersize below callchaindepth's needs) is a dropped sample.
          log.pendingDropped++;
          this.stats.buffer_requests_failed++;
        } else if (!log.writer.writeCallchain(buf.ts[slot], buf.pid[slot], buf.tid[slot], pmc.id, buf.cpuflags[slot], buf.pcs, buf.slotOffset(slot), n)) {
          return;
        }
      } else {
        this.stats.intr_ignored++;
      }
      buf.dropOldest();
    }
  }

  private queueSideBand(pmc: Pmc, rec: SideRecord | null): void {
    if (!rec || !pmc.owner.log) return;
    const ts = rec.type === PerfRecordType.FORK || rec.type === PerfRecordType.EXIT ? rec.time : (rec.sampleId?.time ?? now());
    this.pendingSide.push({ pmc, rec, ts });
  }

  private flushSideBand(horizon: number): void {
    if (this.pendingSide.length === 0) return;
    this.pendingSide.sort((a, b) => a.ts - b.ts);
    let n = 0;
    while (n < this.pendingSide.length && this.pendingSide[n].ts <= horizon) {
      const { pmc, rec, ts } = this.pendingSide[n++];
      this.sideBand(pmc, rec, ts);
    }
    this.pendingSide.splice(0, n);
  }

  /** The exec, fork, exit and mmap hooks, and the kernel's loss reports. */
  private sideBand(pmc: Pmc, rec: SideRecord, ts: number): void {
    const log = pmc.owner.log;
    if (!log) return;
    switch (rec.type) {
      case PerfRecordType.COMM:
        if (rec.exec && log.firstSighting(`c:${rec.pid}:${ts}`)) {
          log.execPending.add(rec.pid);
          log.forgetMappings(rec.pid);
        }
        break;
      case PerfRecordType.MMAP:
      case PerfRecordType.MMAP2: {
        if (rec.type === PerfRecordType.MMAP2 && !(rec.prot & PROT_EXEC)) break;
        const path = rec.filename;
        if (!path.startsWith('/') && path !== '[vdso]') break;
        const start = rec.addr - rec.pgoff;
        // The first image mapped after an exec is the new executable (the loader comes second).
        if (path.startsWith('/') && log.execPending.delete(rec.pid)) {
          log.write({ type: LogType.PROCEXEC, ts, pid: rec.pid, pmcid: pmc.id, base: 0n, dyn: start, pathname: path });
        }
        log.mapIn(ts, rec.pid, start, path);
        break;
      }
      case PerfRecordType.FORK:
        if (!log.firstSighting(`f:${rec.pid}:${rec.tid}:${rec.time}`)) break;
        if (rec.pid !== rec.ppid) log.write({ type: LogType.PROCFORK, ts: rec.time, oldpid: rec.ppid, newpid: rec.pid });
        else log.write({ type: LogType.THR_CREATE, ts: rec.time, tid: rec.tid, pid: rec.pid, flags: 0, tdname: '' });
        break;
      case PerfRecordType.EXIT:
        if (!log.firstSighting(`e:${rec.pid}:${rec.tid}:${rec.time}`)) break;
        if (rec.pid !== rec.tid) log.write({ type: LogType.THR_EXIT, ts: rec.time, tid: rec.tid });
        // System samplers' owners hear of every exit; PROCEXIT, with a count, is for counting PMCs (the module's reaper).
        else if (pmc.mode === PmcMode.SS) log.write({ type: LogType.SYSEXIT, ts: rec.time, pid: rec.pid });
        break;
      case PerfRecordType.LOST:
        log.pendingLost += rec.lost;
        break;
      default:
        break;
    }
  }
}

/** How many leading PCs are kernel addresses. */
function kernelFrames(view: DataView, at: number, n: number): number {
  let k = 0;
  while (k < n && view.getUint32(at + k * 8 + 4, true) >= KERNEL_HIGH_MIN) k++;
  return k;
}
