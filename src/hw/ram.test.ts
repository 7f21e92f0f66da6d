import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '../base/page.js';
import { CHUNK_PAGES, POISON_BYTE, PhysicalMemory, type RamReportKind } from './ram.js';

interface Reported {
  kind: RamReportKind;
  message: string;
}

function machine(pages: number): { ram: PhysicalMemory; reports: Reported[] } {
  const reports: Reported[] = [];
  const ram = new PhysicalMemory(pages * PAGE_SIZE, (kind, message) => reports.push({ kind, message }));
  return { ram, reports };
}

function counters(ram: PhysicalMemory): { freePages: number; usedPages: number; pinnedPages: number } {
  return { freePages: ram.freePages, usedPages: ram.usedPages, pinnedPages: ram.pinnedPages };
}

/** Every byte of a frame-aligned view equals value (compared a word at a time). */
function allBytes(view: Uint8Array, value: number): boolean {
  const words = new Int32Array(view.buffer, view.byteOffset, view.length >>> 2);
  const w = value * 0x01010101;
  for (let i = 0; i < words.length; i++) if (words[i]! >>> 0 !== w) return false;
  return true;
}

const MiB = 1024 * 1024;

describe('PhysicalMemory boot', () => {
  it('allocates no chunk before the first allocation', () => {
    for (let k = 0; k < 1000; k++) {
      const ram = new PhysicalMemory(512 * MiB, () => undefined);
      expect(ram.chunksAllocated).toBe(0);
    }
    const { ram } = machine((512 * MiB) / PAGE_SIZE);
    expect(ram.totalPages).toBe(131072);
    expect(counters(ram)).toEqual({ freePages: 131072, usedPages: 0, pinnedPages: 0 });
    expect(ram.recount()).toEqual(counters(ram));
    expect(ram.isFree(131071)).toBe(true);
    expect(ram.page_count(5000)).toBe(0);
    expect(ram.chunksAllocated).toBe(0);
    expect(ram.alloc_page()).toBe(0);
    expect(ram.chunksAllocated).toBe(1);
  });

  it('rejects a size that is not a whole number of frames', () => {
    const report = (): void => undefined;
    expect(() => new PhysicalMemory(4097, report)).toThrow(RangeError);
    expect(() => new PhysicalMemory(-4096, report)).toThrow(RangeError);
    expect(() => new PhysicalMemory(1.5, report)).toThrow(RangeError);
    expect(new PhysicalMemory(0, report).alloc_page()).toBe(-1);
  });

  it('allocates a new chunk only when a frame of it is first used', () => {
    const { ram } = machine(CHUNK_PAGES + 10);
    for (let k = 0; k < CHUNK_PAGES; k++) ram.alloc_page();
    expect(ram.chunksAllocated).toBe(1);
    expect(ram.alloc_page()).toBe(CHUNK_PAGES);
    expect(ram.chunksAllocated).toBe(2);
  });
});

describe('PhysicalMemory allocation', () => {
  it('hands out zero-filled frames and poisons freed ones', () => {
    const { ram, reports } = machine(8);
    const a = ram.alloc_page();
    expect(allBytes(ram.frame(a), 0)).toBe(true);
    expect(ram.page_count(a)).toBe(1);
    expect(ram.page_mapcount(a)).toBe(0);
    expect(ram.page_pincount(a)).toBe(0);
    expect(ram.PageDirty(a)).toBe(false);
    expect(ram.isFree(a)).toBe(false);
    ram.frame(a).fill(0x5a);
    ram.put_page(a);
    expect(ram.isFree(a)).toBe(true);
    expect(allBytes(ram.frame(a), POISON_BYTE)).toBe(true);
    const b = ram.alloc_page();
    expect(b).toBe(a); // LIFO reuse
    expect(allBytes(ram.frame(b), 0)).toBe(true);
    expect(reports).toEqual([]);
  });

  it('detects a CPU write to a free frame when the frame is reallocated', () => {
    const { ram, reports } = machine(8);
    const a = ram.alloc_page();
    const stale = ram.frame(a);
    ram.put_page(a);
    stale[100] = 1;
    expect(ram.alloc_page()).toBe(a);
    expect(reports).toHaveLength(1);
    expect(reports[0]!.kind).toBe('use-after-free');
    expect(reports[0]!.message).toContain('offset 0x64');
    expect(allBytes(ram.frame(a), 0)).toBe(true);
  });

  it('gives runs of allocations physically contiguous, ascending frames', () => {
    const { ram } = machine(256);
    const first = Array.from({ length: 100 }, () => ram.alloc_page());
    expect(first).toEqual(Array.from({ length: 100 }, (_, k) => k));

    // Freed in ascending order, one by one: they come back ascending.
    for (const pfn of first.slice(10, 50)) ram.put_page(pfn);
    const again = Array.from({ length: 40 }, () => ram.alloc_page());
    expect(again).toEqual(first.slice(10, 50));

    // Freed in descending order: also ascending.
    for (const pfn of first.slice(20, 60).reverse()) ram.put_page(pfn);
    expect(Array.from({ length: 40 }, () => ram.alloc_page())).toEqual(first.slice(20, 60));

    // release_pages of a scattered set: lowest first.
    ram.release_pages([70, 12, 90, 13, 5]);
    expect(Array.from({ length: 5 }, () => ram.alloc_page())).toEqual([5, 12, 13, 70, 90]);

    // Free list exhausted: back to never-used frames.
    expect(ram.alloc_page()).toBe(100);
    expect(ram.recount()).toEqual(counters(ram));
  });

  it('returns -1 when memory is exhausted and reuses freed frames', () => {
    const { ram, reports } = machine(16);
    const pfns = Array.from({ length: 16 }, () => ram.alloc_page());
    expect(new Set(pfns).size).toBe(16);
    expect(ram.freePages).toBe(0);
    expect(ram.alloc_page()).toBe(-1);
    expect(ram.alloc_page()).toBe(-1);
    ram.put_page(pfns[7]!);
    expect(ram.freePages).toBe(1);
    expect(ram.alloc_page()).toBe(pfns[7]);
    expect(ram.alloc_page()).toBe(-1);
    ram.release_pages(pfns);
    expect(counters(ram)).toEqual({ freePages: 16, usedPages: 0, pinnedPages: 0 });
    expect(ram.recount()).toEqual(counters(ram));
    expect(reports).toEqual([]);
  });
});

describe('PhysicalMemory struct page fields', () => {
  it('counts references and frees on the last put', () => {
    const { ram, reports } = machine(8);
    const a = ram.alloc_page();
    ram.get_page(a);
    ram.get_page(a);
    expect(ram.page_count(a)).toBe(3);
    ram.put_page(a);
    ram.put_page(a);
    expect(ram.isFree(a)).toBe(false);
    expect(ram.usedPages).toBe(1);
    ram.put_page(a);
    expect(ram.isFree(a)).toBe(true);
    expect(ram.page_count(a)).toBe(0);
    expect(ram.usedPages).toBe(0);
    expect(reports).toEqual([]);

    ram.put_page(a);
    ram.get_page(a);
    expect(reports.map((r) => r.kind)).toEqual(['BUG', 'BUG']);
    expect(reports[0]!.message).toContain('put_page');
    expect(ram.page_count(a)).toBe(0);
    expect(ram.freePages).toBe(8);
    expect(ram.recount()).toEqual(counters(ram));
  });

  it('reports bad pfns as BUG without throwing or changing state', () => {
    const { ram, reports } = machine(8);
    const a = ram.alloc_page();
    const before = counters(ram);
    for (const bad of [-1, 8, 1.5, Number.NaN, 2 ** 40]) {
      expect(() => {
        ram.get_page(bad);
        ram.put_page(bad);
        ram.pin(bad);
        ram.unpin(bad);
        ram.page_add_rmap(bad);
        ram.page_remove_rmap(bad);
        ram.set_page_dirty(bad);
        expect(ram.page_count(bad)).toBe(0);
        expect(ram.isFree(bad)).toBe(false);
        expect(ram.frame(bad)).toHaveLength(PAGE_SIZE);
        expect(ram.contiguousRun(bad, 4)).toBe(0);
        ram.copy_page(a, bad);
        ram.release_pages([bad]);
      }).not.toThrow();
    }
    expect(reports.length).toBeGreaterThan(0);
    expect(reports.every((r) => r.kind === 'BUG')).toBe(true);
    expect(counters(ram)).toEqual(before);
    expect(ram.page_count(a)).toBe(1);
    expect(ram.recount()).toEqual(counters(ram));
  });

  it('counts mappings and reports underflow', () => {
    const { ram, reports } = machine(8);
    const a = ram.alloc_page();
    ram.page_add_rmap(a);
    ram.page_dup_rmap(a);
    expect(ram.page_mapcount(a)).toBe(2);
    ram.page_remove_rmap(a);
    ram.page_remove_rmap(a);
    expect(ram.page_mapcount(a)).toBe(0);
    expect(reports).toEqual([]);
    ram.page_remove_rmap(a);
    expect(reports.map((r) => r.kind)).toEqual(['BUG']);
    expect(ram.page_mapcount(a)).toBe(0);
  });

  it('reports freeing a frame that is still mapped', () => {
    const { ram, reports } = machine(8);
    const a = ram.alloc_page();
    ram.page_add_rmap(a);
    ram.put_page(a);
    expect(reports).toHaveLength(1);
    expect(reports[0]!.message).toMatch(/Bad page state.*mapcount 1/);
    expect(ram.isFree(a)).toBe(true);
    expect(ram.page_mapcount(a)).toBe(0);
    expect(ram.recount()).toEqual(counters(ram));
  });

  it('counts pins, and pinned frames rather than pins', () => {
    const { ram, reports } = machine(8);
    const a = ram.alloc_page();
    const b = ram.alloc_page();
    ram.pin(a);
    ram.pin(a);
    ram.pin(b);
    expect(ram.page_pincount(a)).toBe(2);
    expect(ram.pinnedPages).toBe(2);
    ram.unpin(a);
    expect(ram.pinnedPages).toBe(2);
    ram.unpin(a);
    expect(ram.pinnedPages).toBe(1);
    expect(reports).toEqual([]);
    ram.unpin(a);
    expect(reports.map((r) => r.kind)).toEqual(['BUG']);
    expect(ram.page_pincount(a)).toBe(0);
    expect(ram.recount()).toEqual(counters(ram));

    // Freeing a pinned frame: the get_user_pages reference was lost.
    ram.put_page(b);
    expect(reports).toHaveLength(2);
    expect(reports[1]!.message).toMatch(/Bad page state.*pincount 1/);
    expect(ram.pinnedPages).toBe(0);
    expect(ram.recount()).toEqual(counters(ram));
    ram.pin(b);
    expect(reports).toHaveLength(3);
    expect(ram.pinnedPages).toBe(0);
  });

  it('sets and clears PG_dirty, and clears it at free', () => {
    const { ram } = machine(8);
    const a = ram.alloc_page();
    expect(ram.set_page_dirty(a)).toBe(true);
    expect(ram.set_page_dirty(a)).toBe(false);
    expect(ram.PageDirty(a)).toBe(true);
    expect(ram.clear_page_dirty(a)).toBe(true);
    expect(ram.clear_page_dirty(a)).toBe(false);
    expect(ram.PageDirty(a)).toBe(false);
    ram.set_page_dirty(a);
    ram.put_page(a);
    expect(ram.PageDirty(a)).toBe(false);
    expect(ram.alloc_page()).toBe(a);
    expect(ram.PageDirty(a)).toBe(false);
  });
});

describe('PhysicalMemory data', () => {
  it('copies pages', () => {
    const { ram, reports } = machine(8);
    const a = ram.alloc_page();
    const b = ram.alloc_page();
    ram.frame(a).fill(7);
    ram.copy_page(b, a);
    expect(allBytes(ram.frame(b), 7)).toBe(true);
    ram.put_page(a);
    ram.copy_page(b, a);
    expect(reports.map((r) => r.kind)).toEqual(['BUG']);
    expect(allBytes(ram.frame(b), 7)).toBe(true);
  });

  it('gives one view over a run of frames within a chunk', () => {
    const { ram } = machine(CHUNK_PAGES + 4);
    expect(ram.contiguousRun(0, 10)).toBe(10);
    expect(ram.contiguousRun(CHUNK_PAGES - 3, 10)).toBe(3);
    expect(ram.contiguousRun(CHUNK_PAGES + 1, 10)).toBe(3);
    expect(ram.contiguousRun(5, 0)).toBe(0);

    const view = ram.span(CHUNK_PAGES - 3, 3);
    expect(view).toHaveLength(3 * PAGE_SIZE);
    view.fill(9, PAGE_SIZE, 2 * PAGE_SIZE);
    expect(allBytes(ram.frame(CHUNK_PAGES - 2), 9)).toBe(true);
    expect(allBytes(ram.frame(CHUNK_PAGES - 3), 0)).toBe(true);
    expect(ram.span(3, 0)).toHaveLength(0);

    expect(() => ram.span(CHUNK_PAGES - 3, 4)).toThrow(RangeError);
    expect(() => ram.span(CHUNK_PAGES + 1, 4)).toThrow(RangeError);
    expect(() => ram.span(CHUNK_PAGES + 4, 1)).toThrow(RangeError);
    expect(() => ram.span(-1, 1)).toThrow(RangeError);
  });
});

describe('PhysicalMemory device access', () => {
  it('lets the device read and write allocated frames', () => {
    const { ram, reports } = machine(8);
    const a = ram.alloc_page();
    expect(ram.deviceWrite(a, 4000, new Uint8Array([1, 2, 3]))).toBe(true);
    const dst = new Uint8Array(4);
    expect(ram.deviceRead(a, 3999, dst)).toBe(true);
    expect([...dst]).toEqual([0, 1, 2, 3]);
    expect(ram.checkDeviceAccess(a)).toBe(true);
    expect(reports).toEqual([]);
    expect(ram.deviceRead(a, 4094, dst)).toBe(false);
    expect(ram.deviceWrite(a, -1, dst)).toBe(false);
    expect(reports.map((r) => r.kind)).toEqual(['BUG', 'BUG']);
  });

  it('reports GPU access to a freed frame, reads poison and drops writes', () => {
    const { ram, reports } = machine(8);
    const a = ram.alloc_page();
    ram.put_page(a);
    const dst = new Uint8Array(16);
    expect(ram.deviceRead(a, 0, dst)).toBe(false);
    expect(allBytes(dst, POISON_BYTE)).toBe(true);
    expect(ram.deviceWrite(a, 0, new Uint8Array(16).fill(1))).toBe(false);
    expect(ram.checkDeviceAccess(a)).toBe(false);
    expect(reports.map((r) => r.kind)).toEqual(['use-after-free', 'use-after-free', 'use-after-free']);
    expect(reports[0]!.message).toBe(`GPU access to free frame pfn 0x${a.toString(16)}`);
    expect(allBytes(ram.frame(a), POISON_BYTE)).toBe(true);
    // The dropped write left the poison intact: reallocation finds nothing more.
    expect(ram.alloc_page()).toBe(a);
    expect(reports).toHaveLength(3);
  });

  it('reports GPU access to a never-used frame', () => {
    const { ram, reports } = machine(2 * CHUNK_PAGES);
    const dst = new Uint8Array(8);
    expect(ram.deviceRead(CHUNK_PAGES + 5, 0, dst)).toBe(false);
    expect(allBytes(dst, POISON_BYTE)).toBe(true);
    expect(reports.map((r) => r.kind)).toEqual(['use-after-free']);
    expect(ram.chunksAllocated).toBe(0);
  });
});

// ------------------------------------------------------------------------------------------------
// Property: random operation sequences against a Map-based model.

type Op =
  | { op: 'alloc' }
  | { op: 'get' | 'put' | 'pin' | 'unpin' | 'map' | 'unmap'; target: number; live: boolean }
  | { op: 'release'; targets: number[] };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<Op>({ op: 'alloc' }) },
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constantFrom('get', 'put', 'pin', 'unpin', 'map', 'unmap'),
      target: fc.nat(),
      live: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('release'), targets: fc.array(fc.nat(), { maxLength: 6 }) }),
  },
);

interface ModelFrame {
  ref: number;
  pin: number;
  map: number;
}

function check(cond: boolean, message: string): void {
  if (!cond) throw new Error(message);
}

/** Default seed printed in the test name; override with SEED=n. */
const SEED = Number(process.env['SEED'] ?? 0x5eed);

describe('PhysicalMemory model check', () => {
  it(`matches a reference model (seed ${SEED})`, () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1, 3, 17, CHUNK_PAGES + 6),
        fc.nat(),
        fc.array(opArb, { maxLength: 120 }),
        (pages, prefillSeed, ops) => {
          const { ram, reports } = machine(pages);
          const live = new Map<number, ModelFrame>();
          const freed = new Set<number>(); // used before, free now: reused first
          let highWater = 0;
          let expectedBugs = 0;

          const alloc = (): void => {
            const pfn = ram.alloc_page();
            if (live.size === pages) {
              check(pfn === -1, `alloc_page on a full machine returned ${pfn}`);
              return;
            }
            if (freed.size > 0) {
              check(freed.has(pfn), `alloc_page returned ${pfn}, not a freed frame`);
              freed.delete(pfn);
            } else {
              check(pfn === highWater, `alloc_page returned ${pfn}, expected never-used ${highWater}`);
              highWater++;
            }
            check(allBytes(ram.frame(pfn), 0), `frame ${pfn} not zero-filled`);
            ram.frame(pfn).fill(pfn & 0xff || 1);
            live.set(pfn, { ref: 1, pin: 0, map: 0 });
          };
          const dropRef = (pfn: number): void => {
            const f = live.get(pfn);
            if (f === undefined) {
              expectedBugs++;
              return;
            }
            if (--f.ref > 0) return;
            if (f.pin > 0 || f.map > 0) expectedBugs++;
            live.delete(pfn);
            freed.add(pfn);
          };
          /** A live frame, or any pfn from -1 to pages (free, never used or out of range). */
          const pick = (target: number, wantLive: boolean): number => {
            const keys = [...live.keys()];
            if (wantLive && keys.length > 0) return keys[target % keys.length]!;
            return (target % (pages + 2)) - 1;
          };

          const prefill = prefillSeed % (pages + 1);
          for (let k = 0; k < prefill; k++) alloc();

          for (const o of ops) {
            if (o.op === 'alloc') {
              alloc();
            } else if (o.op === 'release') {
              const pfns = o.targets.map((t) => pick(t, true));
              ram.release_pages(pfns);
              for (const pfn of pfns) dropRef(pfn);
            } else {
              const pfn = pick(o.target, o.live);
              const f = live.get(pfn);
              switch (o.op) {
                case 'get':
                  ram.get_page(pfn);
                  if (f) f.ref++;
                  else expectedBugs++;
                  break;
                case 'put':
                  ram.put_page(pfn);
                  dropRef(pfn);
                  if (!f && pfn >= 0 && pfn < pages) {
                    const want = freed.has(pfn) ? POISON_BYTE : 0;
                    check(allBytes(ram.frame(pfn), want), `free frame ${pfn} changed by a bad put_page`);
                  }
                  break;
                case 'pin':
                  ram.pin(pfn);
                  if (f) f.pin++;
                  else expectedBugs++;
                  break;
                case 'unpin':
                  ram.unpin(pfn);
                  if (f && f.pin > 0) f.pin--;
                  else expectedBugs++;
                  break;
                case 'map':
                  ram.page_add_rmap(pfn);
                  if (f) f.map++;
                  else expectedBugs++;
                  break;
                case 'unmap':
                  ram.page_remove_rmap(pfn);
                  if (f && f.map > 0) f.map--;
                  else expectedBugs++;
                  break;
              }
            }
            let pinned = 0;
            for (const f of live.values()) if (f.pin > 0) pinned++;
            const model = { freePages: pages - live.size, usedPages: live.size, pinnedPages: pinned };
            const ok =
              reports.length === expectedBugs &&
              ram.usedPages === model.usedPages &&
              ram.freePages === model.freePages &&
              ram.pinnedPages === model.pinnedPages;
            if (!ok) {
              expect(reports).toHaveLength(expectedBugs);
              expect(counters(ram)).toEqual(model);
            }
          }
          expect(reports.filter((r) => r.kind !== 'BUG')).toEqual([]);

          expect(ram.recount()).toEqual(counters(ram));
          const used: number[] = [];
          ram.forEachUsedFrame((pfn) => used.push(pfn));
          expect(used).toEqual([...live.keys()].sort((a, b) => a - b));
          for (const [pfn, f] of live) {
            const got = {
              ref: ram.page_count(pfn),
              pin: ram.page_pincount(pfn),
              map: ram.page_mapcount(pfn),
            };
            if (got.ref !== f.ref || got.pin !== f.pin || got.map !== f.map) expect(got).toEqual(f);
            check(allBytes(ram.frame(pfn), pfn & 0xff || 1), `frame ${pfn} contents changed`);
          }
          for (const pfn of freed) {
            check(allBytes(ram.frame(pfn), POISON_BYTE), `free frame ${pfn} not poisoned`);
            const fields = [ram.page_count(pfn), ram.page_pincount(pfn), ram.page_mapcount(pfn)];
            check(
              fields.every((v) => v === 0) && ram.isFree(pfn),
              `free frame ${pfn} has ${fields.join('/')}`,
            );
          }
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });
});
