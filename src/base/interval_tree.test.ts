import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  IntervalTreeNode,
  IntervalTreeRoot,
  interval_tree_insert,
  interval_tree_iter_first,
  interval_tree_iter_next,
  interval_tree_remove,
} from './interval_tree.js';
import { Prng } from './prng.js';

/** Printed, overridable seed (TEST_SEED=...). */
const SEED = Number(process.env.TEST_SEED ?? 0x5eed);

function query<T>(root: IntervalTreeRoot<T>, start: number, last: number): IntervalTreeNode<T>[] {
  const out: IntervalTreeNode<T>[] = [];
  for (
    let n = interval_tree_iter_first(root, start, last);
    n !== null;
    n = interval_tree_iter_next(n, start, last)
  ) {
    out.push(n);
  }
  return out;
}

describe('interval tree', () => {
  it('finds overlapping intervals with inclusive last, in start order', () => {
    const root = new IntervalTreeRoot<string>();
    const a = new IntervalTreeNode(0, 4095, 'a');
    const b = new IntervalTreeNode(4096, 8191, 'b');
    const c = new IntervalTreeNode(2000, 5000, 'c');
    for (const n of [a, b, c]) interval_tree_insert(n, root);
    root.checkInvariants();
    expect(root.size).toBe(3);
    expect(query(root, 4095, 4095).map((n) => n.value)).toEqual(['a', 'c']);
    expect(query(root, 4096, 4096).map((n) => n.value)).toEqual(['c', 'b']);
    expect(query(root, 8191, 9000).map((n) => n.value)).toEqual(['b']);
    expect(query(root, 8192, 9000)).toEqual([]);
    expect(interval_tree_iter_first(root, 0, 0)).toBe(a);
    expect([...root.overlapping(0, 10_000)].map((n) => n.value)).toEqual(['a', 'c', 'b']);
    interval_tree_remove(c, root);
    root.checkInvariants();
    expect(query(root, 4095, 4096).map((n) => n.value)).toEqual(['a', 'b']);
    expect(root.size).toBe(2);
    expect(c.inTree).toBe(false);
  });

  it('orders equal starts by insertion', () => {
    const root = new IntervalTreeRoot<number>();
    for (let i = 0; i < 50; i++) interval_tree_insert(new IntervalTreeNode(10, 10 + i, i), root);
    root.checkInvariants();
    expect(query(root, 0, 100).map((n) => n.value)).toEqual([...Array(50).keys()]);
    expect([...root].map((n) => n.value)).toEqual([...Array(50).keys()]);
  });

  it('rejects double insertion, foreign removal and bad intervals', () => {
    const r1 = new IntervalTreeRoot<null>();
    const r2 = new IntervalTreeRoot<null>();
    const n = new IntervalTreeNode(1, 2, null);
    interval_tree_insert(n, r1);
    expect(() => interval_tree_insert(n, r1)).toThrow(/already/);
    expect(() => interval_tree_insert(n, r2)).toThrow(/already/);
    expect(() => interval_tree_remove(n, r2)).toThrow(/not in this tree/);
    interval_tree_remove(n, r1);
    expect(() => interval_tree_remove(n, r1)).toThrow(/not in this tree/);
    expect(() => interval_tree_insert(new IntervalTreeNode(5, NaN, null), r1)).toThrow(RangeError);
    // An inverted interval goes in, as in the kernel, and the kernel's overlap test applies:
    // [5, 4] is returned only by a query covering both 4 and 5.
    const inv = new IntervalTreeNode(5, 4, null);
    interval_tree_insert(inv, r1);
    expect([...r1]).toEqual([inv]);
    expect(interval_tree_iter_first(r1, 0, 10)).toBe(inv);
    expect(interval_tree_iter_first(r1, 4, 5)).toBe(inv);
    expect(interval_tree_iter_first(r1, 4, 4)).toBeNull();
    expect(interval_tree_iter_first(r1, 5, 5)).toBeNull();
    interval_tree_remove(inv, r1);
    // A removed node may be changed and inserted again.
    n.start = 100;
    n.last = 200;
    interval_tree_insert(n, r2);
    expect(interval_tree_iter_first(r2, 150, 150)).toBe(n);
  });

  it('handles addresses up to 2^47', () => {
    const root = new IntervalTreeRoot<number>();
    const top = 2 ** 47;
    for (let i = 1; i <= 64; i++)
      interval_tree_insert(new IntervalTreeNode(top - i * 2 ** 33, top - 1, i), root);
    root.checkInvariants();
    expect(query(root, top - 1, top - 1)).toHaveLength(64);
    expect(query(root, top - 2 ** 33, top - 2 ** 33 + 1)).toHaveLength(64);
    expect(query(root, 0, top - 64 * 2 ** 33 - 1)).toHaveLength(0);
  });

  it(`handles 100 000 nodes: insert, query, remove (seed ${SEED})`, () => {
    const prng = new Prng(SEED);
    const root = new IntervalTreeRoot<number>();
    const nodes: IntervalTreeNode<number>[] = [];
    const N = 100_000;
    for (let i = 0; i < N; i++) {
      const start = prng.below(2 ** 32) * 4096;
      const n = new IntervalTreeNode(start, start + (1 + prng.below(16)) * 4096 - 1, i);
      nodes.push(n);
      interval_tree_insert(n, root);
    }
    expect(root.size).toBe(N);
    let hits = 0;
    let missing = 0;
    for (let i = 0; i < N; i++) {
      const n = nodes[prng.below(N)]!;
      const found = query(root, n.start, n.start);
      if (!found.includes(n)) missing++;
      hits += found.length;
    }
    expect(missing).toBe(0);
    expect(hits).toBeGreaterThanOrEqual(N);
    root.checkInvariants();
    for (let i = 0; i < N; i += 2) interval_tree_remove(nodes[i]!, root);
    root.checkInvariants();
    expect(root.size).toBe(N / 2);
  });

  it('matches an array model under random insert/remove/query sequences', () => {
    type Op =
      | { kind: 'insert'; start: number; len: number }
      | { kind: 'remove'; pick: number }
      | { kind: 'query'; start: number; len: number };
    const coord = fc.integer({ min: 0, max: 200 });
    const op: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record({ kind: fc.constant('insert' as const), start: coord, len: fc.nat(40) }),
      },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }) },
      {
        weight: 3,
        arbitrary: fc.record({ kind: fc.constant('query' as const), start: coord, len: fc.nat(60) }),
      },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300, size: 'max' }), (ops) => {
        const root = new IntervalTreeRoot<number>();
        // Reference model: nodes in insertion order.
        const model: IntervalTreeNode<number>[] = [];
        let id = 0;
        for (const o of ops) {
          if (o.kind === 'insert') {
            const n = new IntervalTreeNode(o.start, o.start + o.len, id++);
            interval_tree_insert(n, root);
            model.push(n);
          } else if (o.kind === 'remove') {
            if (model.length === 0) continue;
            const [n] = model.splice(o.pick % model.length, 1);
            interval_tree_remove(n!, root);
          } else {
            const last = o.start + o.len;
            const expected = model
              .filter((n) => n.start <= last && o.start <= n.last)
              .sort((x, y) => x.start - y.start) // stable: ties keep insertion order
              .map((n) => n.value);
            expect(query(root, o.start, last).map((n) => n.value)).toEqual(expected);
          }
          expect(root.size).toBe(model.length);
        }
        root.checkInvariants();
        const all = [...model].sort((x, y) => x.start - y.start).map((n) => n.value);
        expect([...root].map((n) => n.value)).toEqual(all);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('keeps invariants after every operation', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.nat(1000), fc.nat(50)), { maxLength: 200, size: 'max' }),
        (ops) => {
          const root = new IntervalTreeRoot<null>();
          const live: IntervalTreeNode<null>[] = [];
          for (const [ins, a, b] of ops) {
            if (ins || live.length === 0) {
              const n = new IntervalTreeNode(a, a + b, null);
              interval_tree_insert(n, root);
              live.push(n);
            } else {
              const [n] = live.splice(a % live.length, 1);
              interval_tree_remove(n!, root);
            }
            root.checkInvariants();
          }
        },
      ),
      { seed: SEED, numRuns: 100 },
    );
  });
});
