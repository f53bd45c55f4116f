// The owner-log ops (hwpmc_logging.c's job): CONFIGURELOG, FLUSHLOG,
// CLOSELOG, WRITELOG, and draining an owner's samples into its log. The log
// is written into a file descriptor the owner hands over, as hwpmc writes
// into the file behind pm_logfd.
//
// A log that ends (CLOSELOG, its owner gone, the module unloaded) waits for
// its reader only while the reader takes something: a descriptor that takes
// nothing for LOG_STALL_MS is given up. Its unwritten records are counted
// (log_records_lost) and the close fails saying how many, so a reader that
// stopped reading can neither hold the module nor lose records silently.
import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { Socket } from 'node:net';
import { machine, release } from 'node:os';
import { LogWriter, type LogSink } from '../log/log-writer.js';
import { LogType } from '../log/records.js';
import { PmcError } from '../pmc-error.js';
import { type Caller, ownerKey } from './caller.js';
import { countOp, type DriverStats } from './driver-stats.js';
import { now } from '../pmc-common.js';
import type { Owner } from './owner.js';
import { OwnerLog } from './owner-log.js';
import type { Pmc } from './pmc.js';
import { PMC_CPU_GENERIC, PMC_VERSION, PmcFlags, PmcState } from './pmc-types.js';
import type { SampleProcessor } from './sample-processor.js';
import type { Tunables } from './tunables.js';

/** What the log ops need of the module. */
export interface LogHost {
  readonly stats: DriverStats;
  readonly tunables: Tunables;
  readonly samples: SampleProcessor;
  readonly owners: ReadonlyMap<number, Owner>;
  /** The caller's owner, made when it has none. */
  ownerOf(caller: Caller): Owner;
  /** PMCs whose rings need draining. */
  runningSamplers(): Iterable<Pmc>;
  /** Stop a running PMC (its samples go to the log first). */
  stop(pmc: Pmc): void;
  /** Log the exits of the owner's targets that happened so far (the exit reaper), waiting for buffers with `flush`. */
  settleExits(owner: Owner, flush: () => Promise<void>): Promise<boolean>;
}

/** An ending log whose descriptor takes nothing for this long is given up. */
export const LOG_STALL_MS = 5000;

export class LogOps {
  /** Logs that are ending (closing, or their owner gone). */
  private readonly ending = new Set<OwnerLog>();

  constructor(private readonly host: LogHost) {}

  /**
   * CONFIGURELOG: start logging to `fd`, beginning with INITIALIZE; -1 ends
   * the log (CLOSELOG), stopping the PMCs that cannot run without one.
   */
  configureLog(caller: Caller, fd: number): Promise<void> {
    return countOp(this.host.stats, async () => {
      const owner = this.host.ownerOf(caller);
      if (fd === -1) {
        if (!owner.log) throw new PmcError('EINVAL', 'no log is configured');
        return this.closeOwnerLog(owner);
      }
      if (owner.log) {
        // A descriptor passed to the module (pmcd) is the module's: closed when it does not become the log.
        if (caller.passesFds) closeSync(fd);
        throw new PmcError('EBUSY', 'a log is already configured; close it first');
      }
      const { sink, release: releaseSink } = logSink(fd, caller.passesFds === true);
      let writer: LogWriter;
      try {
        writer = new LogWriter({
          sink,
          bufferSize: this.host.tunables.logbuffersize * 1024,
          nbuffers: this.host.tunables.nbuffers,
          onError: (e) => owner.signal({ signal: 'SIGIO', reason: `log write failed: ${e.message}` }),
        });
      } catch (e) {
        releaseSink();
        throw e;
      }
      const log = new OwnerLog(writer, this.host.stats, once(releaseSink));
      owner.log = log;
      const wall = Date.now();
      log.write({
        type: LogType.INITIALIZE,
        ts: now(),
        version: PMC_VERSION,
        cpuType: PMC_CPU_GENERIC,
        tscFreq: 1e9,
        wallSec: Math.floor(wall / 1000),
        wallNsec: (wall % 1000) * 1e6,
        cpuid: `Linux ${release()} ${machine()}`.slice(0, 63),
      });
      for (const pmc of owner.pmcs.values()) logAllocation(log, pmc);
    });
  }

  /** FLUSHLOG: write out what is buffered; rejects with the log's pending write error. */
  flushLog(caller: Caller): Promise<{ written: number }> {
    return countOp(this.host.stats, async () => {
      const { owner, log } = this.ownerLog(caller);
      await this.drainOwner(owner, log);
      await log.writer.flush();
      return { written: log.writer.bytesWritten };
    });
  }

  /** CLOSELOG: the last records, CLOSELOG, and the log is gone. */
  closeLog(caller: Caller): Promise<void> {
    return countOp(this.host.stats, async () => this.closeOwnerLog(this.ownerLog(caller).owner));
  }

  /** WRITELOG: a USERDATA record. */
  writeLog(caller: Caller, userdata: number): void {
    countOp(this.host.stats, () => {
      const { log } = this.ownerLog(caller);
      if (!Number.isInteger(userdata) || userdata < 0 || userdata > 0xffffffff) throw new PmcError('EINVAL', `user data ${userdata} is not a 32-bit unsigned value`);
      if (!log.write({ type: LogType.USERDATA, ts: now(), userdata })) throw new PmcError('ENOMEM', 'the log has no free buffer');
    });
  }

  private ownerLog(caller: Caller): { owner: Owner; log: OwnerLog } {
    const owner = this.host.owners.get(ownerKey(caller));
    if (!owner?.log) throw new PmcError('EINVAL', `process ${caller.pid} has no log configured`);
    return { owner, log: owner.log };
  }

  /**
   * Everything the kernel and the sample buffers hold for this owner, into
   * its log: while the log is full, its buffers are written out and the rest
   * follows, so FLUSHLOG and CLOSELOG lose nothing, the drop report included.
   * Records newer than the call need not wait: samplers that keep running
   * cannot keep it going.
   */
  private async drainOwner(owner: Owner, log: OwnerLog, closing = false): Promise<void> {
    const samples = this.host.samples;
    // A closing log also ends the context-switch slices in progress (PMC_F_LOG_PROCCSW).
    for (const pmc of this.host.runningSamplers()) if (pmc.owner === owner) samples.drainPmc(pmc, closing);
    const horizon = now();
    for (let written = -1; ; ) {
      samples.flush(horizon);
      log.reportDrops(now());
      if (!samples.holdsRecordsOf(owner, horizon) && !log.hasPendingDrops) return;
      if (log.writer.pendingError) throw log.writer.pendingError;
      // A round that wrote nothing will not be followed by one that does.
      if (log.writer.bytesWritten === written) return;
      written = log.writer.bytesWritten;
      await log.writer.flush();
    }
  }

  /**
   * The owner's log ends: PMCs that need it stop, the rest of its records and
   * CLOSELOG are written. Called again while the log ends (CLOSELOG, then
   * the owner goes away), it waits for the same end.
   */
  closeOwnerLog(owner: Owner): Promise<void> {
    const log = owner.log;
    if (!log) return Promise.resolve();
    log.ending ??= this.endLog(owner, log);
    return log.ending;
  }

  /** The ends of the logs that are ending now. */
  endings(): Promise<void>[] {
    return [...this.ending].map((log) => log.ending!);
  }

  /** Gives up every log still ending (the module is unloaded and will not wait longer). */
  giveUpEndingLogs(why: string): void {
    for (const log of this.ending) giveUp(log, why);
  }

  private async endLog(owner: Owner, log: OwnerLog): Promise<void> {
    this.ending.add(log);
    const watchdog = watchStall(log);
    try {
      for (const pmc of owner.pmcs.values()) if (pmc.flags & PmcFlags.NEEDS_LOGFILE && pmc.state === PmcState.RUNNING) this.host.stop(pmc);
      try {
        await this.host.settleExits(owner, () => log.writer.flush());
        await this.drainOwner(owner, log, true);
        const closing = { type: LogType.CLOSELOG, ts: now() } as const;
        if (!log.write(closing)) {
          await log.writer.flush();
          log.write(closing);
        }
      } finally {
        if (owner.log === log) owner.log = undefined;
        await log.writer.close();
      }
    } finally {
      clearInterval(watchdog);
      this.ending.delete(log);
      log.accountBuffers();
      log.release();
    }
  }
}

/**
 * Gives the log up when its descriptor has taken nothing for LOG_STALL_MS
 * while records wait: a reader that reads, however slowly, is waited for.
 */
function watchStall(log: OwnerLog): NodeJS.Timeout {
  let written = log.writer.bytesWritten;
  let since = Date.now();
  return setInterval(() => {
    const w = log.writer;
    if (w.bytesWritten !== written || !w.hasUnwritten) {
      written = w.bytesWritten;
      since = Date.now();
    } else if (Date.now() - since >= LOG_STALL_MS) {
      giveUp(log, `its reader took nothing for ${LOG_STALL_MS / 1000} s`);
    }
  }, LOG_STALL_MS / 10);
}

/** The log's unwritten records are counted as lost and its descriptor closed: whatever waits on it ends now. */
function giveUp(log: OwnerLog, why: string): void {
  log.writer.abandon(`the log was given up: ${why}`);
  log.release();
}

/** PMCALLOCATEDYN: a PMC the log's reader will see samples of. */
export function logAllocation(log: OwnerLog, pmc: Pmc): void {
  log.write({
    type: LogType.PMCALLOCATEDYN,
    ts: now(),
    pmcid: pmc.id,
    event: pmc.request.event,
    flags: pmc.flags | (pmc.request.frequency ? PmcFlags.FREQUENCY : 0),
    rate: pmc.isSampling ? pmc.reloadCount : 0n,
    eventName: pmc.eventName,
  });
}

/**
 * The sink for a log descriptor. A file is written by descriptor. A pipe or
 * a stream socket is written without blocking, through Node's event loop,
 * so a reader that stalls fills the log's buffers (and drops samples)
 * instead of holding a thread, and a log given up stops at once. A pipe is
 * reopened through /proc/self/fd (an open file description of the module's
 * own, made non-blocking without touching the owner's). `owned` (pmcd): the
 * descriptor was passed to the module, which closes it in the end.
 */
function logSink(fd: number, owned: boolean): { sink: LogSink; release: () => void } {
  let st;
  try {
    st = fstatSync(fd);
  } catch (e) {
    throw new PmcError('EBADF', `log file descriptor ${fd}: ${(e as Error).message}`);
  }
  const closeOwned = (): void => {
    if (owned) closeSync(fd);
  };
  if (!st.isFIFO() && !st.isSocket()) return { sink: fd, release: closeOwned };
  let own: number | undefined;
  if (st.isFIFO()) {
    try {
      own = openSync(`/proc/self/fd/${fd}`, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch {
      // No reader left (ENXIO), or a pipe of another user: its own descriptor, as a socket's.
    }
  }
  // A socket (or a pipe that cannot be reopened) not the module's own is written by descriptor, as a file.
  if (own === undefined && !owned) return { sink: fd, release: () => undefined };
  let socket: Socket;
  try {
    socket = new Socket({ fd: own ?? fd, readable: false, writable: true });
  } catch (e) {
    if (own !== undefined) closeSync(own);
    closeOwned();
    throw new PmcError('EINVAL', `log descriptor: a file, a pipe or a stream socket was expected (${(e as Error).message})`);
  }
  // The owner may be gone when its reader is: the write error is the log's, not the module's.
  socket.on('error', () => undefined);
  return {
    sink: socket,
    release: () => {
      socket.destroy();
      if (own !== undefined) closeOwned();
    },
  };
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}
