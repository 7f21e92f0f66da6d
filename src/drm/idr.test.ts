import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Idr } from './idr.js';

const SEED = Number(process.env.SEED ?? 7);

describe(`idr (seed ${SEED})`, () => {
  it('hands out the lowest free id at or above the base', () => {
    const idr = new Idr<string>(1);
    expect([idr.alloc('a'), idr.alloc('b'), idr.alloc('c')]).toEqual([1, 2, 3]);
    expect(idr.remove(2)).toBe('b');
    expect(idr.remove(2)).toBeUndefined();
    expect(idr.remove(1)).toBe('a');
    expect(idr.alloc('d')).toBe(1);
    expect(idr.alloc('e')).toBe(2);
    expect(idr.alloc('f')).toBe(4);
    expect(idr.find(4)).toBe('f');
    expect(idr.find(0)).toBeUndefined();
    expect([...idr.entries()].map(([id]) => id)).toEqual([1, 2, 3, 4]);
    expect(idr.replace('g', 4)).toBe('f');
    expect(idr.replace('g', 9)).toBeUndefined();
    expect(idr.alloc('x', 5)).toBe(-28);
    idr.destroy();
    expect(idr.size).toBe(0);
    expect(idr.alloc('z')).toBe(1);
  });

  it('matches a lowest-free model', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constant(-1), fc.integer({ min: 1, max: 40 })), { maxLength: 200 }),
        (ops) => {
          const idr = new Idr<number>(1);
          const used = new Set<number>();
          for (const op of ops) {
            if (op === -1) {
              let want = 1;
              while (used.has(want)) want++;
              expect(idr.alloc(want)).toBe(want);
              used.add(want);
            } else {
              expect(idr.remove(op) !== undefined).toBe(used.delete(op));
            }
            expect(idr.size).toBe(used.size);
          }
          for (const [id, v] of idr.entries()) expect(v).toBe(id);
        },
      ),
      { seed: SEED, numRuns: 200 },
    );
  });
});
