// The row layout (pmc_rowindex_to_classdep): the classes' rows one after
// another, class i's starting at firstRow(i). A class's row count probes the
// kernel (HW and CACHE open one event after another, tracepoints look for
// tracefs), so the layout is made only as far as something asks: allocating
// a SOFT event never probes the classes after it, while GETCPUINFO and
// GETPMCINFO lay out every class.
import type { ClassDep } from '../md/class-dep.js';
import { PmcError } from '../pmc-error.js';

/** Row indices are 8 bits of a PMC id. */
export const MAX_ROWS = 256;

export class RowLayout {
  private readonly firstRows: number[] = [0];

  constructor(readonly classes: readonly ClassDep[]) {}

  /** The first row of class `i` (i = the number of classes: the row count), laying out the classes before it. */
  firstRow(i: number): number {
    const first = this.firstRows;
    for (let k = first.length - 1; k < i; k++) {
      const next = first[k] + this.classes[k].rows;
      if (next > MAX_ROWS) throw new PmcError('EINVAL', `classes provide ${next} rows or more; at most ${MAX_ROWS} fit a PMC id`);
      first.push(next);
    }
    return first[i];
  }

  /** Rows in all (pm_npmc): every class laid out. */
  get npmc(): number {
    return this.firstRow(this.classes.length);
  }

  classOfRow(row: number): { cls: ClassDep; local: number } {
    for (let i = this.classes.length - 1; i >= 0; i--) {
      if (row >= this.firstRow(i)) return { cls: this.classes[i], local: row - this.firstRow(i) };
    }
    throw new PmcError('EINVAL', `row ${row} does not exist`);
  }
}
