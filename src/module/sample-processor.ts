// The sampling path: hwpmc's pmc_process_interrupt() and
// pmc_process_samples(), on whatever md's sample sources are. Every tick each
// running sampling PMC's sources are drained into the per-CPU sample buffers
// (each sample encoded at once as a CALLCHAIN record), and the sample buffers
// into the owners' logs. A sample that finds its CPU's buffer full, even
// after a sweep into the log, is dropped and its source stalls until the
// buffer has room again; the owner's log then gets a DROPNOTIFY with the
// count. The process events that come with the samples (exec, mmap, fork,
// exit) become process records, and PMC_F_LOG_PROCCSW switch-outs PROCCSW.
//
// The log is in time order across CPUs and PMCs: a sweep merges the CPUs'
// buffers and the owners' pending process events by time, up to the moment
// the tick began (a record newer than that may still be preceded by an
// older one in a source drained later; it waits for the next tick, as perf's
// ordered events do).
import { callchainLength, encodedLength, encodeRecord, fieldWord, putHeaderWords } from '../log/codec.js';
import { LogType, PMC_CC_F_USERSPACE, type LogRecord } from '../log/records.js';
import type { ProcessEvent, Sample, SampleSink } from '../md/sample-sink.js';
import { now } from '../pmc-common.js';
import type { DriverStats } from './driver-stats.js';
import type { Owner } from './owner.js';
import type { OwnerLog } from './owner-log.js';
import type { Pmc } from './pmc.js';
import { PmcFlags, PmcMode, PmcState } from './pmc-types.js';
import { SampleBuffer } from './sample-buffer.js';

/** How often the sources are drained: often enough that 512 KiB rings hold a tick of 50 kHz sampling with call chains. */
export const SAMPLE_TICK_MS = 10;
/** Process events that may wait for an owner whose log is full; beyond that they are counted as not logged. */
const PENDING_EVENTS_LIMIT = 4096;

// CALLCHAIN's fields as words, from its one declaration (log/codec.ts).
const CC_PID = fieldWord(LogType.CALLCHAIN, 'pid');
const CC_TID = fieldWord(LogType.CALLCHAIN, 'tid');
const CC_PMCID = fieldWord(LogType.CALLCHAIN, 'pmcid');
const CC_CPUFLAGS = fieldWord(LogType.CALLCHAIN, 'cpuflags');
const CC_PCS = callchainLength(0) >>> 2;

interface PendingEvent {
  pmc: Pmc;
  e: ProcessEvent;
}

export class SampleProcessor implements SampleSink {
  private readonly buffers: SampleBuffer[];
  private timer?: NodeJS.Timeout;
  /** Process events not logged yet, per owner, in arrival order (sorted by time at each sweep). */
  private readonly pending = new Map<Owner, PendingEvent[]>();
  /** PMC_F_LOG_PROCCSW: each thread's count on each CPU at its last logged switch-out. */
  private readonly lastCsw = new WeakMap<Pmc, Map<number, number>>();
  /** The PMC and CPU buffer of the source being drained. */
  private pmc!: Pmc;
  private buf!: SampleBuffer;

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
  }

  /** Runs the periodic drain while there is something to drain. */
  ensureRunning(): void {
    this.timer ??= setInterval(() => this.tick(), SAMPLE_TICK_MS);
  }

  tick(): void {
    const horizon = now();
    const owners = new Set<Owner>();
    for (const pmc of this.samplers()) {
      owners.add(pmc.owner);
      this.drainPmc(pmc);
    }
    this.sweep(horizon);
    this.stats.log_sweeps++;
    for (const o of owners) {
      o.log?.reportDrops(now());
      o.log?.accountBuffers();
    }
    if (owners.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Moves everything the sources hold for this PMC into the sample buffers, and resumes its stalled sources that have room. */
  drainPmc(pmc: Pmc): void {
    for (const hw of pmc.counterSets()) {
      for (const src of hw.sampleSources) {
        if (src.isClosed) continue;
        this.pmc = pmc;
        this.buf = this.buffers[src.cpu];
        src.drain(this);
        if (src.stalled && !this.buf.full && pmc.state === PmcState.RUNNING) src.resume();
      }
    }
  }

  /** Everything waiting, into the logs in time order (as far as the logs take it). */
  flush(): void {
    this.sweep(Infinity);
  }

  /** Whether records of this owner still wait here. */
  holdsRecordsOf(owner: Owner): boolean {
    if ((this.pending.get(owner)?.length ?? 0) > 0) return true;
    return this.buffers.some((b) => b.pmc.some((p) => p?.owner === owner));
  }

  // ---- SampleSink: what md's sources call during drainPmc ----

  /** pmc_process_interrupt(): one sample into its CPU's buffer, as a CALLCHAIN record; false (dropped, stall) when there is no room. */
  sample(s: Sample): boolean {
    const pmc = this.pmc;
    const buf = this.room();
    if (buf === null) {
      this.stats.intr_bufferfull++;
      if (pmc.owner.log) pmc.owner.log.pendingDropped++;
      return false;
    }
    const slot = buf.reserve();
    const w = buf.slotWord(slot);
    const words = buf.words;
    const n = s.copyChain(words, w + CC_PCS, this.callchainDepth, (pmc.flags & PmcFlags.USERCALLCHAIN) !== 0);
    if (n === 0) {
      this.stats.intr_ignored++;
      return true;
    }
    putHeaderWords(words, w, LogType.CALLCHAIN, callchainLength(n), s.time);
    words[w + CC_PID] = s.pid;
    words[w + CC_TID] = s.tid;
    words[w + CC_PMCID] = pmc.id;
    words[w + CC_CPUFLAGS] = (s.cpu << 16) | (s.user ? PMC_CC_F_USERSPACE : 0);
    buf.commit(slot, s.time, pmc);
    this.stats.intr_processed++;
    return true;
  }

  /**
   * pmc_process_csw_out() with PMC_F_LOG_PROCCSW: what the thread counted
   * in the slice that ended is its count now less its count at its last
   * logged switch-out on that CPU. A slice that finds no room is not logged
   * and the baseline stays, so the next slice carries its count.
   */
  switchOut(time: number, cpu: number, pid: number, tid: number, count: number): void {
    const pmc = this.pmc;
    const log = pmc.owner.log;
    if (!log) return;
    let last = this.lastCsw.get(pmc);
    if (!last) this.lastCsw.set(pmc, (last = new Map()));
    const key = tid * 4096 + cpu;
    const buf = this.room();
    if (buf === null) {
      log.countUnlogged(LogType.PROCCSW);
      return;
    }
    const slot = buf.reserve();
    const value = BigInt(count - (last.get(key) ?? 0));
    encodeRecord({ type: LogType.PROCCSW, ts: time, value, pmcid: pmc.id, pid, tid }, buf.bytes, buf.slotWord(slot) * 4);
    buf.commit(slot, time, pmc);
    last.set(key, count);
  }

  process(e: ProcessEvent): void {
    const owner = this.pmc.owner;
    const log = owner.log;
    if (!log) return;
    let q = this.pending.get(owner);
    if (!q) this.pending.set(owner, (q = []));
    if (q.length >= PENDING_EVENTS_LIMIT) {
      const oldest = q.shift()!;
      for (const r of this.recordsOf(oldest.pmc, log, oldest.e)) log.countUnlogged(r.type);
    }
    q.push({ pmc: this.pmc, e });
  }

  lost(count: number): void {
    const log = this.pmc.owner.log;
    if (log) log.pendingLost += count;
  }

  /** The current CPU's buffer, swept whole first if full (losing samples is worse than logging a few out of time order); null if still full. */
  private room(): SampleBuffer | null {
    const buf = this.buf;
    if (buf.full) this.sweep(Infinity);
    return buf.full ? null : buf;
  }

  // ---- the sweep: pmc_process_samples(), merged by time ----

  /**
   * Writes the buffered records and pending process events up to `horizon`
   * into their logs, oldest first across all CPUs. A buffer whose oldest
   * record finds its log full stops there until the next sweep, and so do
   * an owner's events; the rest go on.
   */
  private sweep(horizon: number): void {
    const bufs = this.buffers;
    const blocked = new Set<SampleBuffer | Owner>();
    const queues = this.sortedQueues();
    for (;;) {
      // The oldest record of any buffer, and the next oldest, so that a run
      // of one buffer's records goes out without searching again.
      let best: SampleBuffer | null = null;
      let bestTs = Infinity;
      let nextTs = Infinity;
      for (const b of bufs) {
        if (blocked.has(b)) continue;
        const t = b.oldestTime();
        if (t < bestTs) {
          nextTs = bestTs;
          bestTs = t;
          best = b;
        } else if (t < nextTs) nextTs = t;
      }
      // Process events go before samples of the same time (fork, exec and mmap before the child's samples).
      let events: { owner: Owner; q: PendingEvent[] } | null = null;
      for (const entry of queues) {
        if (blocked.has(entry.owner) || entry.q.length === 0) continue;
        const t = entry.q[0].e.time;
        if (t <= bestTs && t <= horizon && (events === null || t < events.q[0].e.time)) events = entry;
      }
      if (events !== null) {
        if (!this.logEvent(events.q[0], events.owner)) blocked.add(events.owner);
        else events.q.shift();
        continue;
      }
      if (best === null || bestTs > horizon) break;
      const limit = Math.min(nextTs, horizon, this.nextEventTime(queues, blocked));
      for (let t = bestTs; t <= limit && best.size > 0; t = best.oldestTime()) {
        if (!this.logSample(best)) {
          blocked.add(best);
          break;
        }
      }
    }
    for (const [owner, q] of this.pending) if (q.length === 0) this.pending.delete(owner);
  }

  private sortedQueues(): { owner: Owner; q: PendingEvent[] }[] {
    const out: { owner: Owner; q: PendingEvent[] }[] = [];
    for (const [owner, q] of this.pending) {
      q.sort((a, b) => a.e.time - b.e.time);
      out.push({ owner, q });
    }
    return out;
  }

  private nextEventTime(queues: { owner: Owner; q: PendingEvent[] }[], blocked: Set<SampleBuffer | Owner>): number {
    let t = Infinity;
    for (const { owner, q } of queues) if (q.length > 0 && !blocked.has(owner) && q[0].e.time < t) t = q[0].e.time;
    return t;
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
    const recs = this.recordsOf(pmc, log, e);
    let bytes = 0;
    for (const r of recs) bytes += encodedLength(r);
    if (bytes > log.writer.bufferSize) {
      // Records no log buffer can hold (a path of tens of kB) are never logged.
      for (const r of recs) log.countUnlogged(r.type);
      recs.length = 0;
    } else if (bytes > 0 && !log.writer.hasSpace(bytes)) {
      return false;
    }
    this.applyEvent(pmc, log, e);
    for (const r of recs) {
      if (r.type === LogType.MAP_IN) log.mapIn(r.ts, r.pid, r.start, r.pathname);
      else log.write(r);
    }
    return true;
  }

  /** The records an event makes in this log now (none for one already logged through another source). */
  private recordsOf(pmc: Pmc, log: OwnerLog, e: ProcessEvent): LogRecord[] {
    const ts = e.time;
    switch (e.kind) {
      case 'exec':
        return [];
      case 'map': {
        const out: LogRecord[] = [];
        // The first image mapped after an exec is the new executable (the loader comes second).
        if (e.path.startsWith('/') && log.execPending.has(e.pid)) {
          out.push({ type: LogType.PROCEXEC, ts, pid: e.pid, pmcid: pmc.id, base: 0n, dyn: e.start, pathname: e.path });
        }
        if (!log.isMapped(e.pid, e.start, e.path)) out.push({ type: LogType.MAP_IN, ts, pid: e.pid, start: e.start, pathname: e.path });
        return out;
      }
      case 'fork':
        return log.seen(`f:${e.pid}:${ts}`) ? [] : [{ type: LogType.PROCFORK, ts, oldpid: e.ppid, newpid: e.pid }];
      case 'thread':
        return log.seen(`t:${e.pid}:${e.tid}:${ts}`) ? [] : [{ type: LogType.THR_CREATE, ts, tid: e.tid, pid: e.pid, flags: 0, tdname: '' }];
      case 'thread-exit':
        return log.seen(`x:${e.pid}:${e.tid}:${ts}`) ? [] : [{ type: LogType.THR_EXIT, ts, tid: e.tid }];
      case 'exit':
        // System samplers' owners hear of every exit; PROCEXIT, with a count, is for counting PMCs (the exit reaper).
        return pmc.mode !== PmcMode.SS || log.seen(`e:${e.pid}:${ts}`) ? [] : [{ type: LogType.SYSEXIT, ts, pid: e.pid }];
    }
  }

  /** What the log remembers of an event it took. */
  private applyEvent(pmc: Pmc, log: OwnerLog, e: ProcessEvent): void {
    switch (e.kind) {
      case 'exec':
        if (log.firstSighting(`c:${e.pid}:${e.time}`)) {
          log.execPending.add(e.pid);
          log.forgetMappings(e.pid);
        }
        break;
      case 'map':
        if (e.path.startsWith('/')) log.execPending.delete(e.pid);
        break;
      case 'fork':
        log.firstSighting(`f:${e.pid}:${e.time}`);
        break;
      case 'thread':
        log.firstSighting(`t:${e.pid}:${e.tid}:${e.time}`);
        break;
      case 'thread-exit':
        log.firstSighting(`x:${e.pid}:${e.tid}:${e.time}`);
        break;
      case 'exit':
        if (pmc.mode === PmcMode.SS) log.firstSighting(`e:${e.pid}:${e.time}`);
        break;
    }
  }
}
