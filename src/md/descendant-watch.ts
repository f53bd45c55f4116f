// Which descendants of a target are alive. With PMC_F_DESCENDANTS the
// kernel's inheritance counts every process forked below a target, but
// tells nobody about them; a process that forks a child and exits leaves an
// orphan no /proc walk from the target finds. A dummy event with `task` set,
// inherited like the counters, reports every fork and exit in the tree.
import { onlineCpus } from './cpus.js';
import { PerfType } from './perf-attr.js';
import { PerfEvent } from './perf-event.js';
import { PerfRecordType } from './perf-records.js';
import { listThreads, processState } from './procfs.js';
import { closeCpuRings, type CpuRings, openCpuRings, openEventCount } from './cpu-rings.js';

const PERF_COUNT_SW_DUMMY = 9n;
const RING_PAGES = 4;

export class DescendantWatch {
  /** Processes forked below the target that have not exited. */
  readonly alive = new Set<number>();
  /** The kernel lost records: fall back on /proc for the set's accuracy. */
  lossy = false;

  private constructor(private readonly rings: CpuRings) {}

  /** Watches `pid`'s future descendants (one inherited dummy event per thread and CPU, one ring per CPU). */
  static open(pid: number): DescendantWatch {
    const attr = { type: PerfType.SOFTWARE, config: PERF_COUNT_SW_DUMMY, flags: { inherit: true, task: true, excludeKernel: true, excludeHv: true } };
    return new DescendantWatch(
      openCpuRings(onlineCpus(), listThreads(pid), pid, RING_PAGES, (tid, cpu, opened) => {
        const ev = PerfEvent.open(attr, { pid: tid, cpu });
        opened.push(ev);
        return ev;
      }),
    );
  }

  /** How many are alive, after reading the forks and exits reported since the last call. */
  liveCount(): number {
    this.update();
    return this.alive.size;
  }

  private update(): void {
    for (const { ring } of this.rings.rings) {
      ring.drain((_bytes, view, offset, type) => {
        // FORK and EXIT: u32 pid, ppid, tid, ptid after the 8-byte header.
        const pid = view.getUint32(offset + 8, true);
        const ppid = view.getUint32(offset + 12, true);
        const tid = view.getUint32(offset + 16, true);
        if (type === PerfRecordType.FORK && pid !== ppid) this.alive.add(pid);
        else if (type === PerfRecordType.EXIT && pid === tid) this.alive.delete(pid);
        else if (type === PerfRecordType.LOST) this.lossy = true;
      });
    }
    if (this.lossy) {
      for (const pid of this.alive) {
        const s = processState(pid);
        if (s === 'dead' || s === 'zombie') this.alive.delete(pid);
      }
    }
  }

  close(): void {
    closeCpuRings(this.rings);
  }

  get fdCount(): number {
    return openEventCount(this.rings.events);
  }
}
