// A process that is the target of one or more PMCs (hwpmc's pmc_process):
// at most one PMC per row, so two PMCs never fight over one counter of a thread.
import type { Pmc } from './pmc.js';

export class TargetProcess {
  /** Row index -> the PMC attached at that row. */
  readonly pmcs = new Map<number, Pmc>();

  constructor(readonly pid: number) {}
}
