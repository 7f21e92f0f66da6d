import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DrmMm, DrmMmNode } from './drm_mm.js';

const SEED = Number(process.env.SEED ?? 11);

describe(`drm_mm (seed ${SEED})`, () => {
  it('first fit bottom-up with alignment, top-down, ranges and -ENOSPC', () => {
    const mm = new DrmMm(0, 16 * 4096);
    const a = new DrmMmNode();
    expect(mm.insert_node_in_range(a, 4096, 4096)).toBe(0);
    expect(a.start).toBe(0);
    const b = new DrmMmNode();
    expect(mm.insert_node_in_range(b, 4096, 4 * 4096)).toBe(0);
    expect(b.start).toBe(4 * 4096);
    const c = new DrmMmNode();
    expect(mm.insert_node_in_range(c, 2 * 4096, 4096, 0, 16 * 4096, 'top-down')).toBe(0);
    expect(c.start).toBe(14 * 4096);
    const d = new DrmMmNode();
    expect(mm.insert_node_in_range(d, 4096, 4096, 0, 4 * 4096)).toBe(0);
    expect(d.start).toBe(4096);
    expect(mm.insert_node_in_range(new DrmMmNode(), 12 * 4096, 4096)).toBe(-28);
    expect(mm.largestHole()).toBe(9 * 4096);
    mm.remove_node(b);
    expect(mm.largestHole()).toBe(12 * 4096);
    expect(mm.reserve_node(new DrmMmNode(), 4096, 4096)).toBe(-28);
    expect(mm.used).toBe(4 * 4096);
  });

  it('never overlaps and accounts exactly (against a bitmap model)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({
              op: fc.constant('alloc' as const),
              pages: fc.integer({ min: 1, max: 6 }),
              align: fc.constantFrom(1, 2, 4),
              top: fc.boolean(),
            }),
            fc.record({ op: fc.constant('free' as const), pick: fc.nat() }),
          ),
          { maxLength: 60 },
        ),
        (ops) => {
          const PAGES = 32;
          const mm = new DrmMm(0, PAGES * 4096);
          const live: DrmMmNode[] = [];
          const used = new Array<boolean>(PAGES).fill(false);
          for (const o of ops) {
            if (o.op === 'alloc') {
              const n = new DrmMmNode();
              const r = mm.insert_node_in_range(
                n,
                o.pages * 4096,
                o.align * 4096,
                0,
                PAGES * 4096,
                o.top ? 'top-down' : 'bottom-up',
              );
              // The model: does any aligned free run exist?
              let fits = false;
              for (let s = 0; s + o.pages <= PAGES; s += o.align)
                if (used.slice(s, s + o.pages).every((u) => !u)) fits = true;
              expect(r === 0).toBe(fits);
              if (r === 0) {
                expect(n.start % (o.align * 4096)).toBe(0);
                for (let p = n.start / 4096; p < n.end / 4096; p++) {
                  expect(used[p]).toBe(false);
                  used[p] = true;
                }
                live.push(n);
              }
            } else if (live.length) {
              const n = live.splice(o.pick % live.length, 1)[0]!;
              for (let p = n.start / 4096; p < n.end / 4096; p++) used[p] = false;
              mm.remove_node(n);
            }
            expect(mm.used).toBe(used.filter(Boolean).length * 4096);
          }
        },
      ),
      { seed: SEED, numRuns: 200 },
    );
  });
});
