// The index shared by the analysis' interning tables (frames, call tree
// nodes, tasks): open addressing over ids that live in the table's own typed
// columns, so an entry costs two Int32 slots and no object. The tables probe
// it inline (the hot path); this file gives the hash and the rebuild.
import type { MemoryBudget } from './memory-budget.js';

/** A 32-bit hash of two 32-bit values. */
export function hashPair(a: number, b: number): number {
  let h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca6b);
  h ^= h >>> 16;
  return Math.imul(h, 0xc2b2ae35) >>> 0;
}

/** Empty slots (-1), a power of two. */
export function emptySlots(size: number): Int32Array {
  return new Int32Array(size).fill(-1);
}

/**
 * Twice as many slots as `old`, holding ids first..end-1 placed by `hashOf`
 * (a negative hash leaves the id out); the growth is charged to `budget`.
 */
export function reindex(old: Int32Array, first: number, end: number, hashOf: (id: number) => number, budget: MemoryBudget): Int32Array {
  budget.take(old.length * 4);
  const slots = emptySlots(old.length * 2);
  const mask = slots.length - 1;
  for (let id = first; id < end; id++) {
    const h = hashOf(id);
    if (h < 0) continue;
    let s = h & mask;
    while (slots[s] >= 0) s = (s + 1) & mask;
    slots[s] = id;
  }
  return slots;
}
