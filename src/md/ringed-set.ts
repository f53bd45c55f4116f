// What the counter sets that read records share: per-CPU rings of their
// threads' events, and with descendants a watch on the processes below.
import { closeCpuRings, type CpuRings, openEventCount } from './cpu-rings.js';
import type { DescendantWatch } from './descendant-watch.js';

export abstract class RingedSet {
  protected constructor(
    protected readonly rings: CpuRings,
    private readonly watch?: DescendantWatch,
  ) {}

  close(): void {
    closeCpuRings(this.rings);
    this.watch?.close();
  }

  liveDescendants(): number | undefined {
    return this.watch?.liveCount();
  }

  get fdCount(): number {
    return openEventCount(this.rings.events) + (this.watch?.fdCount ?? 0);
  }
}
