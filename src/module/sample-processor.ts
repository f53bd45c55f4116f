// The sampling path: hwpmc's pmc_process_interrupt() and
// pmc_process_samples(), on whatever md's sample sources are. Every tick the
// running sampling PMCs' sources are drained into the per-CPU sample buffers
// (each sample encoded at once as a CALLCHAIN record), and the sample buffers
// into the owners' logs. The process events that come with the samples
// (exec, mmap, fork, exit) become process records (process-records.ts), and
// PMC_F_LOG_PROCCSW switch-outs PROCCSW records (csw-slices.ts).
//
// The log is in time order across CPUs and PMCs: a tick takes from the
// sources only what is older than its start (the rest waits in them), and
// the sweep merges the CPUs' buffers and the owners' pending process events
// by time, as perf's ordered events do. A source whose CPU buffer is full
// stops until a sweep has made room; only when the log takes nothing is a
// sample dropped and counted (intr_bufferfull, the next DROPNOTIFY) and the
// source stalled (it takes no samples, but its process events go on) until
// its buffer has room again.
import { callchainLength, encodedLength, fieldWord, headerWord } from '../log/codec.js';
import { LogType, PMC_CC_F_USERSPACE } from '../log/records.js';
import type { ProcessEvent, Sample, SampleSink, SampleSource } from '../md/sample-sink.js';
import { whenReadable } from '../os/libc.js';
import { now } from '../pmc-common.js';
import { CswSlices } from './csw-slices.js';
import type { DriverStats } from './driver-stats.js';
import type { Owner } from './owner.js';
import type { Pmc } from './pmc.js';
import { PmcFlags, PmcState } from './pmc-types.js';
import { processRecords, rememberEvent } from './process-records.js';
import { SampleBuffer } from './sample-buffer.js';

/**
 * When the sources are drained: as soon as one is well filled (its
 * descriptor polls readable: a perf ring past its wakeup watermark), and at least every
 * 2 s; every 10 ms, as a plain timer, while a source cannot be waited on
 * (none has a descriptor, or one hung up while others may still write to
 * its ring). Like perf record, the collector sleeps while the workload
 * runs: a timer waking it every few milliseconds would cost a quiet run
 * more CPU than perf record spends in all (80 us or more a wakeup on a
 * 2-CPU VM), and a slower one would let a burst overflow the rings. What
 * waits in a ring below its watermark is safe there: stop, FLUSHLOG and
 * CLOSELOG drain everything (so the timeout only bounds how long a slow
 * trickle of samples waits before it reaches the log's buffers).
 */
const TICK_MS_MIN = 10;
const TICK_MS_MAX = 2000;
/**
 * A tick takes only records older than this before its start. A record is
 * stamped before the kernel publishes it in its ring, and a CPU that is
 * held up in between (a nested sample into another ring, a vCPU the host
 * preempts) publishes it after later records of other rings: those stay in
 * the rings until the next tick, so that the late one is still in time.
 */
const HORIZON_SLACK_NS = 5e6;
/** Process events that may wait for an owner whose log is full; beyond that they are counted as not logged. */
const PENDING_EVENTS_LIMIT = 4096;

// CALLCHAIN's fields as words, from its one declaration (log/record-layouts.ts).
const CC_PID = fieldWord(LogType.CALLCHAIN, 'pid');
const CC_TID = fieldWord(LogType.CALLCHAIN, 'tid');
const CC_PMCID = fieldWord(LogType.CALLCHAIN, 'pmcid');
const CC_CPUFLAGS = fieldWord(LogType.CALLCHAIN, 'cpuflags');
const CC_PCS = callchainLength(0) >>> 2;
/** A CALLCHAIN's header word less its length. */
const CC_HEADER = headerWord(LogType.CALLCHAIN, 0) | 0;
const TWO_32 = 0x1_0000_0000;

interface PendingEvent {
  pmc: Pmc;
  e: ProcessEvent;
}

interface PendingQueue {
  owner: Owner;
  q: PendingEvent[];
}

export class SampleProcessor implements SampleSink {
  private readonly buffers: SampleBuffer[];
  /** A wait for the sources (poll on a libuv thread) is under way. */
  private waiting = false;
  /** Descriptors that hung up: they are not waited on again. */
  private readonly hungUp = new Set<number>();
  /** Per buffer, during a sweep: its log is full. */
  private readonly blocked: Uint8Array;
  private timer?: NodeJS.Timeout;
  /** Process events not logged yet, per owner, in arrival order (sorted by time at each sweep). */
  private readonly pending = new Map<Owner, PendingEvent[]>();
  private readonly slices: CswSlices;
  /** The source being drained, its PMC and its CPU's buffer. */
  private src!: SampleSource;
  private pmc!: Pmc;
  /** Its call chains keep user frames under kernel ones (PMC_F_USERCALLCHAIN). */
  private withUser = false;
  private buf!: SampleBuffer;
  /** Time of the sample a full buffer refused in this drain round (Infinity: none). */
  private refusedAt = Infinity;
  /** The logs took nothing: a sample that finds no room is dropped, not left in its source. */
  private dropping = false;
  /** Samples later than this stay in their sources. */
  private until = Infinity;
  /** A sample of this time that finds its buffer full is written to its log directly (drain). */
  private directAt = NaN;
  private readonly directSlot: SampleBuffer;

  constructor(
    private readonly stats: DriverStats,
    ncpu: number,
    nsamples: number,
    private readonly callchainDepth: number,
    /** The PMCs to drain: every running sampling PMC. */
    private readonly samplers: () => Iterable<Pmc>,
  ) {
    const slotBytes = Math.max(callchainLength(callchainDepth), 64);
    this.buffers = Array.from({ length: ncpu }, () => new SampleBuffer(nsamples, slotBytes));
    this.directSlot = new SampleBuffer(1, slotBytes);
    this.blocked = new Uint8Array(ncpu);
    this.slices = new CswSlices(this.buffers, () => this.sweep(Infinity));
  }

  /** Drains the sources while there is something to drain: now (a new source may be filling fast), then as they fill. */
  ensureRunning(): void {
    if (this.timer || this.waiting) return;
    this.timer = setTimeout(() => this.next(), TICK_MS_MIN);
  }

  /** One tick, then the wait for the next. */
  private next(): void {
    this.timer = undefined;
    if (!this.tick()) return;
    const fds: number[] = [];
    let timerOnly = false;
    for (const pmc of this.samplers()) {
      for (const hw of pmc.counterSets()) {
        for (const src of hw.sampleSources) {
          const fd = src.pollFd;
          if (src.isClosed) continue;
          if (fd === undefined || this.hungUp.has(fd)) timerOnly = true;
          else fds.push(fd);
        }
      }
    }
    if (timerOnly || fds.length === 0) {
      this.timer = setTimeout(() => this.next(), TICK_MS_MIN);
      return;
    }
    this.waiting = true;
    void whenReadable(fds, TICK_MS_MAX).then((ready) => {
      this.waiting = false;
      if (typeof ready !== 'number') ready.forEach((r, i) => r === 'hup' && this.hungUp.add(fds[i]));
      this.next();
    });
  }

  /** One drain and sweep of every running sampler; false when there was none. */
  tick(): boolean {
    const horizon = now() - HORIZON_SLACK_NS;
    const pmcs = [...this.samplers()];
    this.drain(pmcs, horizon);
    this.sweep(horizon);
    this.stats.log_sweeps++;
    const owners = new Set(pmcs.map((p) => p.owner));
    for (const o of owners) {
      o.log?.reportDrops(horizon);
      o.log?.accountBuffers();
    }
    if (owners.size === 0) this.hungUp.clear();
    return owners.size > 0;
  }

  /**
   * Moves everything the sources of this PMC hold into the sample buffers,
   * and, so that what is then written stays in time order, everything the
   * other running samplers hold.
   */
  drainPmc(pmc: Pmc, ending = false): void {
    this.drain(new Set([pmc, ...this.samplers()]), Infinity);
    if (ending) this.slices.endSlices(pmc);
  }

  /**
   * Drains sources up to `until` (later samples stay in their sources for
   * the next drain), in rounds. A source whose CPU buffer is full stops at
   * that sample; once every source has delivered what it can, everything
   * older than the first stopped sample is in the buffers, so a sweep up to
   * it keeps the log in time order and makes room, and the stopped sources
   * go on. Only when the logs take nothing are the samples that find no room
   * dropped (and counted).
   */
  private drain(pmcs: Iterable<Pmc>, until: number): void {
    this.until = until;
    let todo: [Pmc, SampleSource][] = [];
    for (const pmc of pmcs) for (const hw of pmc.counterSets()) for (const src of hw.sampleSources) if (!src.isClosed) todo.push([pmc, src]);
    try {
      while (todo.length > 0) {
        const stopped: [Pmc, SampleSource][] = [];
        let safe = Infinity;
        for (const entry of todo) {
          const [pmc, src] = entry;
          this.src = src;
          this.pmc = pmc;
          this.withUser = (pmc.flags & PmcFlags.USERCALLCHAIN) !== 0;
          this.buf = this.buffers[src.cpu];
          this.refusedAt = Infinity;
          src.drain(this);
          if (src.stalled && !this.buf.full && pmc.state === PmcState.RUNNING) src.resume();
          if (this.refusedAt !== Infinity) {
            stopped.push(entry);
            safe = Math.min(safe, this.refusedAt);
          }
        }
        // No further than `until` (when no source stopped): process events
        // later than it are taken from the rings with the rest, and must not
        // go out before older samples that wait there for the next tick.
        if (this.sweep(Math.min(safe, until))) {
          this.directAt = NaN;
          this.dropping = false;
        } else if (this.directAt !== safe) {
          // Nothing older than `safe` is buffered: another PMC's newer records
          // fill the buffer of the oldest refused sample, which is then the
          // oldest of all. The next round writes it to its log directly, in
          // time order (writing the newer records first put it out of order).
          this.directAt = safe;
          this.dropping = false;
        } else {
          // Even that sample found no room: the logs take nothing, or little. Write what they take, out of order, rather than drop.
          this.directAt = NaN;
          this.dropping = !this.sweep(Infinity);
        }
        todo = stopped;
      }
    } finally {
      this.dropping = false;
      this.directAt = NaN;
      this.until = Infinity;
    }
  }

  /** Everything waiting up to `horizon`, into the logs in time order (as far as the logs take it). */
  flush(horizon = Infinity): void {
    this.sweep(horizon);
  }

  /** Whether records of this owner up to `horizon` still wait here. */
  holdsRecordsOf(owner: Owner, horizon = Infinity): boolean {
    if (this.pending.get(owner)?.some((p) => p.e.time <= horizon)) return true;
    if (this.slices.owes(owner)) return true;
    return this.buffers.some((b) => b.pmc.some((p, slot) => p?.owner === owner && b.ts[slot] <= horizon));
  }

  // ---- SampleSink: what md's sources call during drainPmc ----

  /** pmc_process_interrupt(): one sample into its CPU's buffer, as a CALLCHAIN record; false when the buffer is full. */
  sample(s: Sample): boolean {
    const buf = this.buf;
    if (buf.room === 0 || s.time > this.until) return this.sampleWithoutRoom(s);
    const slot = buf.free[buf.room - 1];
    const w = slot * buf.slotWords;
    const words = buf.words;
    const n = s.copyChain(words, w + CC_PCS, this.callchainDepth, this.withUser);
    if (n === 0) {
      this.stats.intr_ignored++;
      return true;
    }
    const t = s.time;
    // The header as log/codec.ts's putHeaderWords writes it.
    words[w] = CC_HEADER | (CC_PCS * 4 + 8 * n);
    words[w + 1] = 0;
    words[w + 2] = t >>> 0;
    words[w + 3] = t / TWO_32;
    words[w + CC_PID] = s.pid;
    words[w + CC_TID] = s.tid;
    words[w + CC_PMCID] = this.pmc.id;
    words[w + CC_CPUFLAGS] = (s.cpu << 16) | (s.user ? PMC_CC_F_USERSPACE : 0);
    buf.commit(slot, this.pmc, t);
    this.stats.intr_processed++;
    return true;
  }

  /** A sample later than `until`, or one whose buffer is full: left in its source, or dropped when the logs take nothing. */
  private sampleWithoutRoom(s: Sample): boolean {
    if (s.time > this.until) return this.refuse(Infinity);
    if (s.time === this.directAt) return this.writeDirect(s);
    const buf = this.buf;
    // With the logs full, each sample still asks them for room (as hwpmc's
    // sweep asks for a log buffer per sample: pm_buffer_requests_failed).
    if (this.dropping) this.sweep(Infinity);
    if (!buf.full) return this.sample(s);
    if (!this.dropping) return this.refuse(s.time);
    // hwpmc's stall: the source takes no more samples until there is room.
    this.stats.intr_bufferfull++;
    if (this.pmc.owner.log) this.pmc.owner.log.pendingDropped++;
    this.src.pause();
    return true;
  }

  /** The oldest refused sample, older than everything buffered (drain): encoded in a one-slot buffer and written to its log at once. */
  private writeDirect(s: Sample): boolean {
    const buf = this.buf;
    const one = this.directSlot;
    this.buf = one;
    try {
      this.sample(s);
    } finally {
      this.buf = buf;
    }
    if (one.size === 0 || this.logSample(one)) {
      this.directAt = NaN;
      return true;
    }
    // Its log is full too: the sample stays in its source, and directAt stays, which tells the drain that the logs take nothing.
    one.dropOldest();
    this.stats.intr_processed--;
    return this.refuse(s.time);
  }

  /** Leaves a sample in its source: a full buffer refuses it at its time, `until` at Infinity (nothing to make room for). */
  private refuse(time: number): false {
    this.refusedAt = Math.min(this.refusedAt, time);
    return false;
  }

  /** pmc_process_csw_out() with PMC_F_LOG_PROCCSW: a thread's switch-out, a PROCCSW slice (csw-slices.ts). */
  switchOut(time: number, cpu: number, pid: number, tid: number, count: number): boolean {
    const log = this.pmc.owner.log;
    if (!log) return true;
    if (time > this.until) return this.refuse(Infinity);
    if (this.buf.full && !this.dropping) return this.refuse(time);
    this.slices.switchOut(this.pmc, log, time, cpu, pid, tid, count);
    return true;
  }

  /** pmc_process_exit() with PMC_F_LOG_PROCCSW: target `pid` was found gone; its last slice. */
  exitSlice(pmc: Pmc, pid: number, total: bigint, time: number): void {
    // Switch-outs still in the rings come first.
    this.drainPmc(pmc);
    this.slices.exitSlice(pmc, pid, total, time);
  }

  process(e: ProcessEvent): void {
    const owner = this.pmc.owner;
    const log = owner.log;
    if (!log) return;
    let q = this.pending.get(owner);
    if (!q) this.pending.set(owner, (q = []));
    if (q.length >= PENDING_EVENTS_LIMIT) {
      const oldest = q.shift()!;
      for (const r of processRecords(oldest.pmc, log, oldest.e)) log.countUnlogged(r.type);
    }
    q.push({ pmc: this.pmc, e });
  }

  lost(count: number): void {
    this.stats.samples_lost += count;
    const log = this.pmc.owner.log;
    if (log) log.pendingLost += count;
  }

  // ---- the sweep: pmc_process_samples(), merged by time ----

  /**
   * Writes the buffered records and pending process events up to `horizon`
   * into their logs, oldest first across all CPUs. A buffer whose oldest
   * record finds its log full stops there until the next sweep, and so do
   * an owner's events; the rest go on. Nothing of an owner newer than a
   * record its log refused is written after it (a smaller record would still
   * fit: the log would lose its time order). Returns whether it wrote
   * anything.
   */
  private sweep(horizon: number): boolean {
    const bufs = this.buffers;
    const blocked = this.blocked.fill(0);
    const queues = this.pending.size > 0 ? this.sortedQueues() : null;
    /** Per owner, the time of the oldest record its log refused in this sweep. */
    const held = new Map<Owner, number>();
    const hold = (owner: Owner, t: number): void => void held.set(owner, Math.min(held.get(owner) ?? Infinity, t));
    const blockedOwners = new Set<Owner>();
    let written = false;
    for (;;) {
      // The oldest record of any buffer, and the next oldest, so that a run
      // of one buffer's records goes out without searching again.
      let best = -1;
      let bestTs = Infinity;
      let nextTs = Infinity;
      for (let i = 0; i < bufs.length; i++) {
        if (blocked[i] !== 0) continue;
        const t = bufs[i].oldestTime();
        if (t < bestTs) {
          nextTs = bestTs;
          bestTs = t;
          best = i;
        } else if (t < nextTs) nextTs = t;
      }
      let limit = nextTs < horizon ? nextTs : horizon;
      let eventTs = Infinity;
      if (queues !== null) {
        // Process events go before samples of the same time (fork, exec and mmap before the child's samples).
        let events: PendingQueue | null = null;
        for (const entry of queues) {
          if (entry.q.length === 0 || blockedOwners.has(entry.owner)) continue;
          const t = entry.q[0].e.time;
          if (t > (held.get(entry.owner) ?? Infinity)) continue;
          if (t < eventTs) {
            eventTs = t;
            events = entry;
          }
        }
        if (events !== null && eventTs <= bestTs && eventTs <= horizon) {
          if (this.logEvent(events.q[0], events.owner)) {
            events.q.shift();
            written = true;
          } else {
            blockedOwners.add(events.owner);
            hold(events.owner, eventTs);
          }
          continue;
        }
        if (eventTs < limit) limit = eventTs;
      }
      if (best < 0 || bestTs > horizon) break;
      const buf = bufs[best];
      if (held.size === 0) {
        if (this.merge(buf.pmc[buf.oldest()]!.owner, horizon, eventTs)) {
          written = true;
          continue;
        }
      }
      do {
        const owner = buf.pmc[buf.oldest()]!.owner;
        const t = buf.oldestTime();
        if (held.size > 0 && t > (held.get(owner) ?? Infinity)) {
          blocked[best] = 1;
          break;
        }
        if (!this.logSample(buf)) {
          hold(owner, t);
          blocked[best] = 1;
          break;
        }
        written = true;
      } while (buf.size > 0 && buf.oldestTime() <= limit);
    }
    for (const [owner, q] of this.pending) if (q.length === 0) this.pending.delete(owner);
    if (this.slices.owesAny) this.slices.payOwed();
    return written;
  }

  /**
   * The sweep's common case, without a call per record: the records of all
   * unblocked buffers, oldest first, copied as words into `owner`'s log
   * while they are no later than `horizon` and older than `eventTs` (process
   * events go first), belong to live PMCs of `owner` and fit its log.
   * Returns whether it wrote any; the general path takes the record it
   * stopped at.
   */
  private merge(owner: Owner, horizon: number, eventTs: number): boolean {
    const writer = owner.log?.writer;
    if (!writer) return false;
    const max = writer.bufferSize;
    let written = false;
    for (;;) {
      // A log buffer with room for the next record, then as many records as fit.
      const len = this.nextRecordLength(owner, horizon, eventTs);
      if (len === 0 || len > max) return written;
      const dst = writer.openWords(len);
      if (dst === null) return written;
      const from = writer.wordsUsed;
      writer.commitWords(this.mergeInto(dst, from, max >>> 2, owner, horizon, eventTs) - from);
      written = true;
    }
  }

  /** Byte length of the record merge() would write next, 0 if none. */
  private nextRecordLength(owner: Owner, horizon: number, eventTs: number): number {
    const best = this.oldestBuffer(horizon, eventTs);
    if (best === null) return 0;
    const slot = best.order[best.first];
    const pmc = best.pmc[slot]!;
    if (pmc.owner !== owner || pmc.state === PmcState.DELETED) return 0;
    return best.words[slot * best.slotWords] & 0xffff;
  }

  /** The unblocked buffer whose oldest record is the oldest, if that is no later than `horizon` and older than `eventTs`. */
  private oldestBuffer(horizon: number, eventTs: number): SampleBuffer | null {
    const bufs = this.buffers;
    let best: SampleBuffer | null = null;
    let bestTs = Infinity;
    for (let i = 0; i < bufs.length; i++) {
      const b = bufs[i];
      if (b.first === b.end || this.blocked[i] !== 0) continue;
      const t = b.ts[b.order[b.first]];
      if (t < bestTs) {
        bestTs = t;
        best = b;
      }
    }
    return bestTs <= horizon && bestTs < eventTs ? best : null;
  }

  /**
   * merge()'s loop, over one log buffer: `dst` from word `d`, `end` words
   * long. Returns where the records it wrote end. It stops at the first
   * record it may not write, or that does not fit. (Its only way out is the
   * return at the top: code after a loop that has not run yet when V8
   * compiles the loop, in the middle of the first call, would throw that
   * compiled code away when reached.)
   */
  private mergeInto(dst: Int32Array, d: number, end: number, owner: Owner, horizon: number, eventTs: number): number {
    const bufs = this.buffers;
    const blocked = this.blocked;
    for (;;) {
      let best = -1;
      let bestTs = Infinity;
      for (let i = 0; i < bufs.length; i++) {
        const b = bufs[i];
        if (b.first === b.end || blocked[i] !== 0) continue;
        const t = b.ts[b.order[b.first]];
        if (t < bestTs) {
          bestTs = t;
          best = i;
        }
      }
      const b = best < 0 ? null : bufs[best];
      const slot = b === null ? -1 : b.order[b.first];
      const pmc = b === null ? undefined : b.pmc[slot];
      const at = b === null ? 0 : slot * b.slotWords;
      const n = b === null ? 0 : (b.words[at] & 0xffff) >>> 2;
      if (b === null || bestTs > horizon || bestTs >= eventTs || pmc!.owner !== owner || pmc!.state === PmcState.DELETED || d + n > end) return d;
      const src = b.words;
      for (let i = 0; i < n; i++) dst[d + i] = src[at + i];
      d += n;
      // b.dropOldest(), here without a call and without its branch (commit() compacts the order when it reaches the end).
      b.first++;
      b.pmc[slot] = undefined;
      b.free[b.room++] = slot;
    }
  }

  private sortedQueues(): PendingQueue[] {
    const out: PendingQueue[] = [];
    for (const [owner, q] of this.pending) {
      q.sort((a, b) => a.e.time - b.e.time);
      out.push({ owner, q });
    }
    return out;
  }

  /** The oldest record of a buffer into its log; false (it stays) when the log is full. */
  private logSample(buf: SampleBuffer): boolean {
    const slot = buf.oldest();
    const pmc = buf.pmc[slot]!;
    const log = pmc.owner.log;
    const w = buf.slotWord(slot);
    if (log && pmc.state !== PmcState.DELETED) {
      const len = buf.words[w] & 0xffff;
      if (len > log.writer.bufferSize) {
        // A chain no log buffer can hold (logbuffersize below callchaindepth's needs) is a dropped sample.
        log.pendingDropped++;
        this.stats.buffer_requests_failed++;
      } else if (!log.writer.writeEncoded(buf.words, w)) {
        return false;
      }
    } else {
      this.stats.intr_ignored++;
    }
    buf.dropOldest();
    return true;
  }

  /** One process event into its owner's log; false (it waits) when the log has no room for its records. */
  private logEvent({ pmc, e }: PendingEvent, owner: Owner): boolean {
    const log = owner.log;
    if (!log) return true;
    const recs = processRecords(pmc, log, e);
    let bytes = 0;
    for (const r of recs) bytes += encodedLength(r);
    if (bytes > log.writer.bufferSize) {
      // Records no log buffer can hold (a path of tens of kB) are never logged.
      for (const r of recs) log.countUnlogged(r.type);
      recs.length = 0;
    } else if (bytes > 0 && !log.writer.makeRoom(bytes)) {
      return false;
    }
    rememberEvent(pmc, log, e);
    for (const r of recs) {
      if (r.type === LogType.MAP_IN) log.mapIn(r);
      else log.write(r);
    }
    return true;
  }
}
