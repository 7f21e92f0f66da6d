/**
 * lib/idr.c as DRM uses it: an integer-id → pointer map whose `idr_alloc(idr, ptr, start, 0)`
 * hands out the LOWEST free id ≥ start (not a cyclic counter), so a closed GEM handle or a
 * dropped flink name is reused by the next allocation.
 *
 * Every user in this model allocates from one fixed lower bound (1 for handles and flink names),
 * so the lower bound is fixed at construction. Freed ids wait in a min-heap; everything at or
 * above `highWater` is free: allocation and removal are O(log n).
 *
 * Locking is the caller's (a spinlock or mutex in Linux). Operations here never yield, so they
 * are atomic with respect to the scheduler.
 */

/** INT_MAX: idr ids are non-negative ints; `end` 0 means "up to INT_MAX". */
export const IDR_MAX = 0x7fffffff;

export class Idr<T> {
  private readonly map = new Map<number, T>();
  /** Free ids in [base, highWater), as a binary min-heap. */
  private readonly heap: number[] = [];
  /** Every id ≥ highWater is free. */
  private highWater: number;

  constructor(
    /** The `start` argument every idr_alloc() on this idr passes. */
    readonly base = 0,
  ) {
    if (!Number.isInteger(base) || base < 0) throw new RangeError(`Idr: bad base ${base}`);
    this.highWater = base;
  }

  get size(): number {
    return this.map.size;
  }

  /**
   * idr_alloc(idr, ptr, base, end): the lowest free id in [base, end) (end 0: no bound below
   * INT_MAX), or -ENOSPC (-28).
   */
  alloc(ptr: T, end = 0): number {
    const limit = end > 0 ? end : IDR_MAX + 1;
    let id: number;
    if (this.heap.length > 0) {
      id = this.heap[0]!;
      if (id >= limit) return -28;
      this.popMin();
    } else {
      id = this.highWater;
      if (id >= limit) return -28;
      this.highWater++;
    }
    this.map.set(id, ptr);
    return id;
  }

  /** idr_find(). */
  find(id: number): T | undefined {
    return this.map.get(id);
  }

  /** idr_replace(): returns the old pointer, or undefined if `id` is not allocated. */
  replace(ptr: T, id: number): T | undefined {
    const old = this.map.get(id);
    if (old === undefined) return undefined;
    this.map.set(id, ptr);
    return old;
  }

  /** idr_remove(): returns the removed pointer (undefined if `id` was free). */
  remove(id: number): T | undefined {
    const old = this.map.get(id);
    if (old === undefined) return undefined;
    this.map.delete(id);
    this.push(id);
    return old;
  }

  /** idr_for_each(): ascending id order, as the radix tree walks. */
  *entries(): IterableIterator<[number, T]> {
    const ids = [...this.map.keys()].sort((a, b) => a - b);
    for (const id of ids) {
      const v = this.map.get(id);
      if (v !== undefined) yield [id, v];
    }
  }

  /** idr_destroy(): forget everything. */
  destroy(): void {
    this.map.clear();
    this.heap.length = 0;
    this.highWater = this.base;
  }

  // ---- heap ------------------------------------------------------------------------------------

  private push(v: number): void {
    const h = this.heap;
    h.push(v);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]! <= v) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = v;
  }

  private popMin(): number {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) this.siftDown(0, last);
    return top;
  }

  private siftDown(i: number, v: number): void {
    const h = this.heap;
    const n = h.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && h[r]! < h[l]! ? r : l;
      if (h[c]! >= v) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = v;
  }
}
