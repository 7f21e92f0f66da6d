import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SegmentSet } from './segment_set.js';
import { Prng } from './prng.js';

/** Printed, overridable seed (TEST_SEED=...). */
const SEED = Number(process.env.TEST_SEED ?? 0x5eed);

interface Seg {
  start: number;
  end: number;
  id: number;
}

const seg = (start: number, end: number, id = 0): Seg => ({ start, end, id });

/** Reference gap finder: tries every aligned start from the top down. */
function naiveGap(
  model: readonly Seg[],
  length: number,
  low: number,
  high: number,
  align: number,
): number | undefined {
  let s = Math.floor((high - length) / align) * align;
  for (; s >= low; s -= align) {
    const e = s + length;
    if (model.every((m) => m.end <= s || e <= m.start)) return s;
  }
  return undefined;
}

describe('SegmentSet', () => {
  it('finds, orders and navigates segments', () => {
    const set = new SegmentSet<Seg>();
    const a = seg(0x1000, 0x3000, 1);
    const b = seg(0x5000, 0x6000, 2);
    const c = seg(0x6000, 0x9000, 3);
    set.insert(c);
    set.insert(a);
    set.insert(b);
    set.checkInvariants();
    expect(set.size).toBe(3);
    expect([...set]).toEqual([a, b, c]);
    expect(set.first()).toBe(a);
    expect(set.last()).toBe(c);
    expect(set.find(0x0fff)).toBeUndefined();
    expect(set.find(0x1000)).toBe(a);
    expect(set.find(0x2fff)).toBe(a);
    expect(set.find(0x3000)).toBeUndefined();
    expect(set.find(0x6000)).toBe(c);
    expect(set.find_vma(0)).toBe(a);
    expect(set.find_vma(0x3000)).toBe(b);
    expect(set.find_vma(0x5fff)).toBe(b);
    expect(set.find_vma(0x9000)).toBeUndefined();
    expect(set.prev(a)).toBeUndefined();
    expect(set.prev(b)).toBe(a);
    expect(set.next(b)).toBe(c);
    expect(set.next(c)).toBeUndefined();
    expect([...set.range(0x2fff, 0x5001)]).toEqual([a, b]);
    expect([...set.range(0x3000, 0x5000)]).toEqual([]);
    expect([...set.range(0x5000, 0x5000)]).toEqual([]);
    expect(set.remove(b)).toBe(true);
    expect(set.remove(b)).toBe(false);
    expect(() => set.prev(b)).toThrow(/not in the set/);
    set.checkInvariants();
    expect([...set]).toEqual([a, c]);
  });

  it('rejects overlaps, duplicates and empty segments', () => {
    const set = new SegmentSet<Seg>();
    const a = seg(100, 200);
    set.insert(a);
    expect(() => set.insert(a)).toThrow(/already/);
    expect(() => set.insert(seg(150, 160))).toThrow(/overlaps/);
    expect(() => set.insert(seg(50, 101))).toThrow(/overlaps/);
    expect(() => set.insert(seg(199, 300))).toThrow(/overlaps/);
    expect(() => set.insert(seg(0, 1000))).toThrow(/overlaps/);
    expect(() => set.insert(seg(300, 300))).toThrow(RangeError);
    set.insert(seg(200, 300));
    set.insert(seg(0, 100));
    set.checkInvariants();
    expect(set.size).toBe(3);
  });

  it('adjusts a segment in place between its neighbours', () => {
    const set = new SegmentSet<Seg>();
    const a = seg(0, 100);
    const b = seg(200, 300);
    const c = seg(400, 500);
    for (const s of [a, b, c]) set.insert(s);
    set.adjust(b, 100, 400);
    set.checkInvariants();
    expect(set.find(100)).toBe(b);
    expect(() => set.adjust(b, 99, 400)).toThrow(/overlap/);
    expect(() => set.adjust(b, 100, 401)).toThrow(/overlap/);
    expect(() => set.adjust(b, 300, 300)).toThrow(RangeError);
    set.adjust(b, 250, 260);
    set.checkInvariants();
    expect(set.findGapTopDown(140, 0, 1000, 1)).toBe(860);
    expect(set.findGapTopDown(150, 0, 400, 1)).toBe(100);
  });

  it('lets the caller remove and insert while iterating a range', () => {
    const set = new SegmentSet<Seg>();
    for (let i = 0; i < 20; i++) set.insert(seg(i * 10, i * 10 + 5, i));
    const seen: number[] = [];
    for (const s of set.range(32, 120)) {
      seen.push(s.id);
      set.remove(s); // munmap-style removal of the segment just visited
      if (s.id === 5) set.insert(seg(57, 59, 100)); // above the cursor: visited
      if (s.id === 6) set.insert(seg(55, 57, 101)); // below the cursor: not visited
    }
    expect(seen).toEqual([3, 4, 5, 100, 6, 7, 8, 9, 10, 11]);
    set.checkInvariants();
    expect([...set].map((s) => s.id)).toEqual([0, 1, 2, 101, 12, 13, 14, 15, 16, 17, 18, 19]);
  });

  it('finds gaps top-down, aligned, within bounds', () => {
    const set = new SegmentSet<Seg>();
    const P = 4096;
    expect(set.findGapTopDown(P, 0, 16 * P)).toBe(15 * P);
    set.insert(seg(12 * P, 16 * P));
    set.insert(seg(4 * P, 6 * P));
    expect(set.findGapTopDown(P, 0, 16 * P)).toBe(11 * P);
    expect(set.findGapTopDown(6 * P, 0, 16 * P)).toBe(6 * P);
    expect(set.findGapTopDown(7 * P, 0, 16 * P)).toBeUndefined();
    expect(set.findGapTopDown(4 * P, 0, 16 * P)).toBe(8 * P);
    expect(set.findGapTopDown(4 * P, 0, 10 * P)).toBe(6 * P);
    expect(set.findGapTopDown(3 * P, 0, 5 * P)).toBe(P);
    expect(set.findGapTopDown(P, 0, 16 * P, 8 * P)).toBe(8 * P);
    expect(set.findGapTopDown(P, 13, 4 * P + 12)).toBe(3 * P);
    // Addresses near the top of the 47-bit user space.
    const TASK_SIZE = 2 ** 47 - P;
    set.insert(seg(TASK_SIZE - 2 * P, TASK_SIZE));
    expect(set.findGapTopDown(P, 0, TASK_SIZE)).toBe(TASK_SIZE - 3 * P);
    expect(set.findGapTopDown(2 ** 21, 0, TASK_SIZE, 2 ** 21)).toBe(2 ** 47 - 2 ** 22);
  });

  it(`stays fast and balanced with 100 000 segments (seed ${SEED})`, () => {
    const prng = new Prng(SEED);
    const set = new SegmentSet<Seg>();
    const P = 4096;
    const all: Seg[] = [];
    for (let i = 0; i < 100_000; i++) {
      const s = seg(i * 4 * P, i * 4 * P + (1 + prng.below(3)) * P, i);
      all.push(s);
    }
    // Insert in a shuffled order.
    for (let i = all.length - 1; i > 0; i--) {
      const j = prng.below(i + 1);
      [all[i], all[j]] = [all[j]!, all[i]!];
    }
    for (const s of all) set.insert(s);
    set.checkInvariants();
    let wrong = 0;
    for (let i = 0; i < 100_000; i++) {
      const s = all[prng.below(all.length)]!;
      if (set.find(s.start + prng.below(s.end - s.start)) !== s) wrong++;
    }
    expect(wrong).toBe(0);
    // Fill the top-down gaps one page at a time.
    const high = 100_000 * 4 * P;
    let prev = Infinity;
    for (let i = 0; i < 1000; i++) {
      const g = set.findGapTopDown(P, 0, high);
      expect(g).toBeDefined();
      expect(g!).toBeLessThan(prev);
      prev = g!;
      set.insert(seg(g!, g! + P, -1));
    }
    set.checkInvariants();
  });

  it('matches an array model under random operation sequences', () => {
    type Op =
      | { kind: 'insert'; start: number; len: number }
      | { kind: 'remove'; pick: number }
      | { kind: 'adjust'; pick: number; start: number; len: number }
      | { kind: 'find'; addr: number }
      | { kind: 'nav'; pick: number }
      | { kind: 'range'; start: number; len: number }
      | { kind: 'gap'; len: number; low: number; span: number; align: number };
    const coord = fc.integer({ min: 0, max: 300 });
    const op: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 5,
        arbitrary: fc.record({
          kind: fc.constant('insert' as const),
          start: coord,
          len: fc.integer({ min: 1, max: 30 }),
        }),
      },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }) },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('adjust' as const),
          pick: fc.nat(),
          start: coord,
          len: fc.integer({ min: 0, max: 30 }),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({ kind: fc.constant('find' as const), addr: fc.integer({ min: -5, max: 340 }) }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('nav' as const), pick: fc.nat() }) },
      {
        weight: 2,
        arbitrary: fc.record({ kind: fc.constant('range' as const), start: coord, len: fc.nat(80) }),
      },
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant('gap' as const),
          len: fc.integer({ min: 1, max: 40 }),
          low: fc.integer({ min: 0, max: 300 }),
          span: fc.nat(200),
          align: fc.constantFrom(1, 2, 4, 8, 3),
        }),
      },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 250, size: 'max' }), (ops) => {
        const set = new SegmentSet<Seg>();
        let model: Seg[] = []; // sorted by start
        let id = 0;
        const overlapsModel = (s: number, e: number, except?: Seg): boolean =>
          model.some((m) => m !== except && m.start < e && s < m.end);
        for (const o of ops) {
          switch (o.kind) {
            case 'insert': {
              const s = seg(o.start, o.start + o.len, id++);
              if (overlapsModel(s.start, s.end)) {
                expect(() => set.insert(s)).toThrow();
              } else {
                set.insert(s);
                model.push(s);
                model.sort((x, y) => x.start - y.start);
              }
              break;
            }
            case 'remove': {
              if (model.length === 0) break;
              const [s] = model.splice(o.pick % model.length, 1);
              expect(set.remove(s!)).toBe(true);
              break;
            }
            case 'adjust': {
              if (model.length === 0) break;
              const s = model[o.pick % model.length]!;
              const end = o.start + o.len;
              if (o.len === 0) {
                expect(() => set.adjust(s, o.start, end)).toThrow(RangeError);
                break;
              }
              const i = model.indexOf(s);
              const p = model[i - 1];
              const n = model[i + 1];
              if ((p !== undefined && p.end > o.start) || (n !== undefined && n.start < end)) {
                expect(() => set.adjust(s, o.start, end)).toThrow();
              } else {
                set.adjust(s, o.start, end);
              }
              break;
            }
            case 'find': {
              expect(set.find(o.addr)).toBe(model.find((m) => m.start <= o.addr && o.addr < m.end));
              expect(set.find_vma(o.addr)).toBe(model.find((m) => m.end > o.addr));
              break;
            }
            case 'nav': {
              expect(set.first()).toBe(model[0]);
              expect(set.last()).toBe(model[model.length - 1]);
              if (model.length === 0) break;
              const i = o.pick % model.length;
              expect(set.prev(model[i]!)).toBe(model[i - 1]);
              expect(set.next(model[i]!)).toBe(model[i + 1]);
              break;
            }
            case 'range': {
              const end = o.start + o.len;
              expect([...set.range(o.start, end)]).toEqual(
                model.filter((m) => o.start < end && m.start < end && o.start < m.end),
              );
              break;
            }
            case 'gap': {
              const high = o.low + o.span;
              expect(set.findGapTopDown(o.len, o.low, high, o.align)).toBe(
                naiveGap(model, o.len, o.low, high, o.align),
              );
              break;
            }
          }
          expect(set.size).toBe(model.length);
        }
        set.checkInvariants();
        expect([...set]).toEqual(model);
        model = [];
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
});
