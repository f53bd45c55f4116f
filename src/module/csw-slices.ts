// PMC_F_LOG_PROCCSW: a PROCCSW record per context switch-out, with what the
// thread counted in the slice that ended (hwpmc's pmc_process_csw_out()).
// A switch-out sample reads the thread's count on its CPU, cumulative from
// the counter's start; the slice is that count less the count at the
// thread's last logged switch-out on that CPU.
//
// The slices of a PMC always add up to its value: a switch-out that finds
// its CPU's sample buffer full is owed, and the next one logged for that
// thread and CPU (or the owed one itself, once there is room) carries its
// count; each slice boundary lost that way is counted in DROPNOTIFY. The
// kernel samples no switch-out at a thread's exit, so what threads counted
// after their last switch-outs is logged as one last slice: per target when
// it is found gone (exitSlice), and for the whole PMC when it stops, loses a
// target or its log closes (endSlices). A last slice is a switch-out of the
// target on a CPU no sample has, owed like any other while there is no room.
import { encodeRecord } from '../log/codec.js';
import { LogType } from '../log/records.js';
import { now } from '../pmc-common.js';
import type { Owner } from './owner.js';
import type { OwnerLog } from './owner-log.js';
import type { Pmc } from './pmc.js';
import { PmcState } from './pmc-types.js';
import type { SampleBuffer } from './sample-buffer.js';

/** One thread on one CPU of a PMC_F_LOG_PROCCSW PMC. */
interface CswState {
  /** The thread's process. */
  pid: number;
  /** Its count at its last logged switch-out. */
  logged: number;
  /** Its latest switch-out, when that found no room in sample buffer `buffer`. */
  owed?: { time: number; buffer: number; pid: number; tid: number; count: number };
}

// Per PMC, threads are keyed by tid * 4096 + CPU (a PMC id's CPU field is 12
// bits); a target's last slices have the CPU no sample has, 4095.
const CPU_KEYS = 4096;
const LAST_SLICE_KEY_CPU = 4095;
/** The sample buffer last slices go into. */
const LAST_SLICE_BUFFER = 0;

export class CswSlices {
  /** Per PMC, per (thread, CPU): the switch-outs logged and owed. */
  private readonly threads = new WeakMap<Pmc, Map<number, CswState>>();
  /** PMCs with owed switch-outs. */
  private readonly owing = new Set<Pmc>();
  /** Per PMC, the sum of the slices logged. */
  private readonly loggedSum = new WeakMap<Pmc, number>();

  constructor(
    /** The per-CPU sample buffers the PROCCSW records go into (they are swept into the log in time order). */
    private readonly buffers: readonly SampleBuffer[],
    /** Sweeps the sample buffers into the logs, making room. */
    private readonly makeRoom: () => void,
  ) {}

  /** Thread `tid` left `cpu` at `time` having counted `count` there. */
  switchOut(pmc: Pmc, log: OwnerLog, time: number, cpu: number, pid: number, tid: number, count: number): void {
    this.slice(pmc, log, tid * CPU_KEYS + cpu, cpu, time, pid, tid, count);
  }

  /**
   * pmc_process_exit(): target `pid` was found gone with final count
   * `total`; what its threads counted after their last switch-outs is its
   * last slice, so that its slices add up to `total`. The PMC's sources
   * must be drained first (switch-outs still in the rings come first).
   */
  exitSlice(pmc: Pmc, pid: number, total: bigint, time: number): void {
    const log = pmc.owner.log;
    if (!log) return;
    let counted = 0;
    // An owed switch-out will be logged with its count.
    for (const st of this.threadsOf(pmc).values()) if (st.pid === pid) counted += st.owed?.count ?? st.logged;
    this.lastSlice(pmc, log, pid, time, Number(total) - counted);
  }

  /**
   * The PMC stops or loses a target: a thread that exited after its last
   * switch-out has counted more, which the kernel folds into its creator's
   * counter and the PMC's value, but into no slice. That rest ends here, as
   * one slice of the target, so that the slices add up to the PMC's value.
   */
  endSlices(pmc: Pmc): void {
    const log = pmc.owner.log;
    const pid = pmc.targets.keys().next().value;
    if (!pmc.request.contextSwitchValues || !log || pid === undefined) return;
    // Switch-outs still owed are carried by the rest.
    for (const st of this.threads.get(pmc)?.values() ?? []) {
      if (!st.owed) continue;
      log.countUnlogged(LogType.PROCCSW);
      st.logged = st.owed.count;
      st.owed = undefined;
    }
    const rest = Number(pmc.read()) - (this.loggedSum.get(pmc) ?? 0);
    if (rest <= 0) return;
    if (this.buffers[LAST_SLICE_BUFFER].full) this.makeRoom();
    this.lastSlice(pmc, log, pid, now(), rest);
  }

  /** Whether switch-outs of this owner's PMCs are owed. */
  owes(owner: Owner): boolean {
    for (const pmc of this.owing) if (pmc.owner === owner) return true;
    return false;
  }

  get owesAny(): boolean {
    return this.owing.size > 0;
  }

  /** Owed switch-outs into the buffers that have room again. */
  payOwed(): void {
    for (const pmc of this.owing) {
      const threads = this.threads.get(pmc);
      let owes = false;
      for (const st of threads?.values() ?? []) {
        const o = st.owed;
        if (!o) continue;
        if (!pmc.owner.log || pmc.state === PmcState.DELETED) {
          st.owed = undefined;
          continue;
        }
        const buf = this.buffers[o.buffer];
        if (buf.full) {
          owes = true;
          continue;
        }
        st.owed = undefined;
        this.logSlice(buf, pmc, st, o.time, o.pid, o.tid, o.count);
      }
      if (!owes) this.owing.delete(pmc);
    }
  }

  /** `rest` more counted by target `pid` than its slices carry: one more slice of the target. */
  private lastSlice(pmc: Pmc, log: OwnerLog, pid: number, time: number, rest: number): void {
    if (rest <= 0) return;
    const key = pid * CPU_KEYS + LAST_SLICE_KEY_CPU;
    const st = this.threadsOf(pmc).get(key);
    this.slice(pmc, log, key, LAST_SLICE_BUFFER, time, pid, pid, (st?.owed?.count ?? st?.logged ?? 0) + rest);
  }

  /**
   * The thread state `key` reached `count` at `time`: a slice into sample
   * buffer `buffer`, or owed while that buffer is full.
   */
  private slice(pmc: Pmc, log: OwnerLog, key: number, buffer: number, time: number, pid: number, tid: number, count: number): void {
    const threads = this.threadsOf(pmc);
    let st = threads.get(key);
    if (!st) threads.set(key, (st = { pid, logged: 0 }));
    // An owed switch-out still owed now is replaced or carried by this one: its slice boundary is lost.
    if (st.owed) log.countUnlogged(LogType.PROCCSW);
    const buf = this.buffers[buffer];
    if (buf.full) {
      st.owed = { time, buffer, pid, tid, count };
      this.owing.add(pmc);
    } else {
      st.owed = undefined;
      this.logSlice(buf, pmc, st, time, pid, tid, count);
    }
  }

  private threadsOf(pmc: Pmc): Map<number, CswState> {
    let threads = this.threads.get(pmc);
    if (!threads) this.threads.set(pmc, (threads = new Map()));
    return threads;
  }

  /** A PROCCSW record into a buffer slot. */
  private logSlice(buf: SampleBuffer, pmc: Pmc, st: CswState, time: number, pid: number, tid: number, count: number): void {
    const slot = buf.reserve();
    encodeRecord({ type: LogType.PROCCSW, ts: time, value: BigInt(count - st.logged), pmcid: pmc.id, pid, tid }, buf.bytes, buf.slotWord(slot) * 4);
    buf.commit(slot, pmc, time);
    this.loggedSum.set(pmc, (this.loggedSum.get(pmc) ?? 0) + count - st.logged);
    st.logged = count;
  }
}
