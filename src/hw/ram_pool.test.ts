import { describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '../base/page.js';
import { CHUNK_PAGES, PhysicalMemory, pooledChunks } from './ram.js';

/** A disposed machine's chunks come back as new: the next machine must not tell the difference. */
describe('PhysicalMemory chunk pool', () => {
  const sizes = [128, CHUNK_PAGES, CHUNK_PAGES + 37];

  it.each(sizes)('a machine of %i frames reuses the chunks of a disposed one, zeroed', (pages) => {
    const ram = (): PhysicalMemory => new PhysicalMemory(pages * PAGE_SIZE, () => undefined);
    // Dirty every state a frame can be in: in use with data, pinned and mapped (a leak), freed
    // (poisoned), dirty-flagged.
    const a = ram();
    const used: number[] = [];
    for (let i = 0; i < Math.min(pages, 40); i++) used.push(a.alloc_page());
    for (const pfn of used) a.frame(pfn).fill(0xa5);
    a.pin(used[0]!);
    a.page_add_rmap(used[1]!);
    a.set_page_dirty(used[2]!);
    a.pin(used[5]!);
    a.page_add_rmap(used[6]!);
    for (const pfn of used.slice(10)) a.put_page(pfn);
    const before = pooledChunks();
    a.dispose();
    expect(a.disposed).toBe(true);
    expect(pooledChunks()).toBeGreaterThan(before);

    // Fewer frames than `a` used: the others must read as never used (recount scans them all).
    const b = ram();
    const got: number[] = [];
    for (let i = 0; i < 3; i++) got.push(b.alloc_page());
    expect(pooledChunks()).toBeLessThan(before + Math.ceil(pages / CHUNK_PAGES));
    // The same frames as a fresh machine hands out, each zero and with clean metadata.
    expect(got).toEqual(got.map((_, i) => i));
    for (const pfn of got) {
      expect(b.frame(pfn).every((x) => x === 0)).toBe(true);
      expect([b.page_count(pfn), b.page_mapcount(pfn), b.page_pincount(pfn), b.PageDirty(pfn)]).toEqual([
        1,
        0,
        0,
        false,
      ]);
    }
    expect(b.recount()).toEqual({ freePages: pages - got.length, usedPages: got.length, pinnedPages: 0 });
    for (const pfn of got) b.put_page(pfn);
    b.dispose();
  });

  it('dispose twice gives the chunks back once', () => {
    const a = new PhysicalMemory(64 * PAGE_SIZE, () => undefined);
    a.alloc_page();
    a.dispose();
    const n = pooledChunks();
    a.dispose();
    expect(pooledChunks()).toBe(n);
  });
});
