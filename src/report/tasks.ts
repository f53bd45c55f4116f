// Who a sample ran in: a task is one thread of one process under one name
// (an exec renames it). Call trees count the samples ending in each task, so
// outputs can split stacks per process or thread. Interned in typed columns:
// a log of a million short-lived processes costs a few bytes each.
import type { MemoryBudget } from './memory-budget.js';
import { emptySlots, hashPair, reindex } from './open-index.js';

export class TaskTable {
  /** Process names; process(i) indexes this list. */
  readonly processNames: string[] = [];
  private readonly nameIndex = new Map<string, number>();
  private pids = new Int32Array(0);
  private tids = new Int32Array(0);
  private names = new Int32Array(0);
  private n = 0;
  /** (tid, name) -> task; -1 = empty; at most half full. */
  private slots = emptySlots(64);

  constructor(private readonly budget: MemoryBudget) {
    budget.describe('tasks', () => `${this.n} threads`);
  }

  get length(): number {
    return this.n;
  }

  pid(task: number): number {
    return this.pids[task];
  }

  tid(task: number): number {
    return this.tids[task];
  }

  /** Index of the process name in processNames. */
  process(task: number): number {
    return this.names[task];
  }

  /** The task of thread `tid` of process `pid` running under `name`. */
  intern(pid: number, tid: number, name: string): number {
    const process = this.nameId(name);
    const mask = this.slots.length - 1;
    let s = hashPair(tid, process) & mask;
    for (let t = this.slots[s]; t >= 0; t = this.slots[s]) {
      if (this.tids[t] === tid && this.names[t] === process && this.pids[t] === pid) return t;
      s = (s + 1) & mask;
    }
    const t = this.n;
    if (t === this.pids.length) {
      this.pids = this.budget.grow(this.pids, t + 1);
      this.tids = this.budget.grow(this.tids, t + 1);
      this.names = this.budget.grow(this.names, t + 1);
    }
    this.pids[t] = pid;
    this.tids[t] = tid;
    this.names[t] = process;
    this.n = t + 1;
    if (2 * this.n > this.slots.length) this.slots = reindex(this.slots, 0, this.n, (x) => hashPair(this.tids[x], this.names[x]), this.budget);
    else this.slots[s] = t;
    return t;
  }

  private nameId(name: string): number {
    let i = this.nameIndex.get(name);
    if (i === undefined) {
      this.budget.take(64 + name.length);
      i = this.processNames.length;
      this.processNames.push(name);
      this.nameIndex.set(name, i);
    }
    return i;
  }
}
