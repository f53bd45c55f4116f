// Row dispositions. A row (one hardware counter index, the same on every
// CPU) is used either by process-virtual PMCs (THREAD) or by system-wide
// PMCs and disabled rows (STANDALONE), never both at once: a virtual PMC
// follows its threads onto every CPU, so a system PMC on the same row of
// any CPU would collide with it.
import { isSystemMode, type PmcMode, RowDisposition } from './pmc-types.js';
import type { Pmc } from './pmc.js';

export class RowTable {
  /** > 0: virtual PMCs on the row; < 0: system PMCs and disabled CPUs; 0: free. */
  private readonly count: Int32Array;
  /** Per CPU per row: enabled by PMCADMIN, and the system PMC holding it. */
  private readonly enabled: Uint8Array[];
  private readonly holder: (Pmc | undefined)[][];

  constructor(
    readonly rows: number,
    ncpu: number,
  ) {
    this.count = new Int32Array(rows);
    this.enabled = Array.from({ length: ncpu }, () => new Uint8Array(rows).fill(1));
    this.holder = Array.from({ length: ncpu }, () => new Array<Pmc | undefined>(rows));
  }

  disposition(row: number): RowDisposition {
    const n = this.count[row];
    return n > 0 ? RowDisposition.THREAD : n < 0 ? RowDisposition.STANDALONE : RowDisposition.FREE;
  }

  /** pmc_can_allocate_row(): may a PMC of this mode use the row now? */
  canUse(row: number, mode: PmcMode): boolean {
    const disp = this.disposition(row);
    if (disp === RowDisposition.FREE) return true;
    return isSystemMode(mode) ? disp === RowDisposition.STANDALONE : disp === RowDisposition.THREAD;
  }

  mark(row: number, mode: PmcMode): void {
    this.count[row] += isSystemMode(mode) ? -1 : 1;
  }

  unmark(row: number, mode: PmcMode): void {
    this.count[row] -= isSystemMode(mode) ? -1 : 1;
  }

  isEnabled(cpu: number, row: number): boolean {
    return this.enabled[cpu][row] === 1;
  }

  /** PMCADMIN: a disabled CPU row counts as a STANDALONE user of the row. */
  setEnabled(cpu: number, row: number, on: boolean): void {
    if (this.isEnabled(cpu, row) === on) return;
    this.enabled[cpu][row] = on ? 1 : 0;
    this.count[row] += on ? 1 : -1;
  }

  /** Every (cpu, row) PMCADMIN disabled. */
  disabledRows(): [number, number][] {
    const out: [number, number][] = [];
    this.enabled.forEach((rows, cpu) => rows.forEach((on, row) => on || out.push([cpu, row])));
    return out;
  }

  holderOf(cpu: number, row: number): Pmc | undefined {
    return this.holder[cpu][row];
  }

  setHolder(cpu: number, row: number, pmc: Pmc | undefined): void {
    this.holder[cpu][row] = pmc;
  }
}
