// The thread creations of the whole machine, for attaches to running
// processes (thread-attach.ts): one dummy `task` event per CPU on every task
// (which needs CAP_PERFMON), a few descriptors instead of one per thread and
// CPU. Opened by an attach and closed at its end, or, in a process that
// attaches all the time (pmcd), kept open for every attach (keepOpen: the
// kernel writes what no one reads into full rings, which costs it nothing
// more). An attach holds
// it from before it lists its target's threads until its counters are open
// and hears only its target's thread creations; what came before the hold is
// thrown away, and a loss between holds is nobody's. A loss during a hold
// (any process's storm of forks can overflow the rings) is counted, and the
// hold moves to a DescendantWatch of its target alone for the attach's new
// start (attachThreads).
import { PMC_CLOCKID } from '../pmc-common.js';
import { PmcError } from '../pmc-error.js';
import { onlineCpus } from '../os/cpus.js';
import { closeCpuRings, type CpuRing, type CpuRings, openCpuRings, ringFull } from './cpu-rings.js';
import { DescendantWatch, type ForkSource, type TaskFork } from './descendant-watch.js';
import { PerfSoftware, PerfType } from './perf-attr.js';
import { PerfEvent } from './perf-event.js';
import { PerfRecordType, u64Number } from './perf-records.js';

/** 4096 task records per CPU: an attach reads them every few ms. */
const RING_PAGES = 32;

export class MachineForkWatch {
  /** Kept open between attaches. */
  private static kept = false;
  private static rings?: CpuRings;
  private static holds = 0;
  /** The caller may not watch the whole machine: not asked again. */
  private static refused = false;

  /** From now on the watch stays open between attaches (when this process may open it). */
  static keepOpen(): void {
    MachineForkWatch.kept = true;
    MachineForkWatch.open();
  }

  /**
   * A hold on the watch for `pid`'s thread creations; undefined when this
   * caller may not watch the machine. `pages` sizes the rings when this hold
   * opens them (tests shrink them to force losses).
   */
  static hold(pid: number, pages = RING_PAGES): ForkSource | undefined {
    const rings = MachineForkWatch.open(pages);
    if (!rings) return undefined;
    MachineForkWatch.holds++;
    // Creations before the hold are of threads the attach will list. A ring
    // that was full lost records before the hold, and the kernel says so
    // (LOST) with the first record it writes next: that loss is not this hold's.
    const lostBefore = new Set<CpuRing>();
    for (const r of rings.rings) {
      if (ringFull(r.ring)) lostBefore.add(r);
      r.ring.drain(() => undefined);
    }
    let held = true;
    let overflows = 0;
    let own: DescendantWatch | undefined;
    return {
      get overflows() {
        return overflows + (own?.overflows ?? 0);
      },
      drain: (onThread) => {
        if (!held) return;
        if (own) return own.drain(onThread);
        const forks: TaskFork[] = [];
        let lost = false;
        for (const r of rings.rings) {
          if (ringFull(r.ring)) lost = true;
          r.ring.drain((_bytes, view, offset, type) => {
            const first = lostBefore.delete(r);
            if (type === PerfRecordType.LOST) lost ||= !first;
            // FORK: pid, ppid, tid, ptid (u32 each) and time (u64) after the header; a thread has pid === ppid.
            if (type !== PerfRecordType.FORK || view.getUint32(offset + 8, true) !== pid || view.getUint32(offset + 12, true) !== pid) return;
            forks.push({ pid, ppid: pid, tid: view.getUint32(offset + 16, true), ptid: view.getUint32(offset + 20, true), time: u64Number(view, offset + 24) });
          });
        }
        if (onThread) for (const f of forks.sort((a, b) => a.time - b.time)) onThread(f);
        if (!lost) return;
        // The attach starts over (attachThreads); the rest of the machine may
        // overflow these rings again, a watch of the target alone only if the
        // target itself outruns it.
        overflows++;
        try {
          own = DescendantWatch.open(pid);
        } catch (e) {
          if (!(e instanceof PmcError)) throw e;
        }
      },
      close: () => {
        if (!held) return;
        held = false;
        own?.close();
        if (--MachineForkWatch.holds === 0 && !MachineForkWatch.kept) MachineForkWatch.close();
      },
    };
  }

  private static open(pages = RING_PAGES): CpuRings | undefined {
    if (MachineForkWatch.refused) return undefined;
    if (!MachineForkWatch.rings) {
      try {
        MachineForkWatch.rings = openCpuRings(onlineCpus(), [-1], undefined, pages, (_tid, cpu, opened) => {
          const attr = { type: PerfType.SOFTWARE, config: PerfSoftware.DUMMY, clockid: PMC_CLOCKID, flags: { task: true, excludeKernel: true, excludeHv: true, useClockid: true } };
          const ev = PerfEvent.open(attr, { pid: -1, cpu });
          opened.push(ev);
          return ev;
        });
      } catch (e) {
        if (!(e instanceof PmcError && (e.code === 'EACCES' || e.code === 'EPERM'))) throw e;
        MachineForkWatch.refused = true;
        return undefined;
      }
    }
    return MachineForkWatch.rings;
  }

  private static close(): void {
    if (!MachineForkWatch.rings) return;
    closeCpuRings(MachineForkWatch.rings);
    MachineForkWatch.rings = undefined;
  }
}
