import { describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '../base/page.js';
import { Prng } from '../base/prng.js';
import { GTT_PTE_CHUNK_PAGES, GlobalGtt } from './gtt.js';
import { CHUNK_PAGES, POISON_BYTE, PhysicalMemory, type RamReportKind } from './ram.js';

const SEED = Number(process.env.SEED ?? 1);
const MiB = 1024 * 1024;

interface Reported {
  kind: RamReportKind;
  message: string;
}

interface Rig {
  ram: PhysicalMemory;
  gtt: GlobalGtt;
  reports: Reported[];
}

/** A machine of ramPages frames; the scratch page is allocated after `before` frames. */
function rig(ramPages: number, gttBytes = 64 * MiB, before = 0): Rig {
  const reports: Reported[] = [];
  const report = (kind: RamReportKind, message: string): void => void reports.push({ kind, message });
  const ram = new PhysicalMemory(ramPages * PAGE_SIZE, report);
  for (let k = 0; k < before; k++) ram.alloc_page();
  const scratchPfn = ram.alloc_page();
  const gtt = new GlobalGtt(ram, {
    scratchPfn,
    gttBytes,
    mappableBytes: Math.min(16 * MiB, gttBytes),
    report,
  });
  return { ram, gtt, reports };
}

function allocFrames(ram: PhysicalMemory, n: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < n; k++) {
    const pfn = ram.alloc_page();
    if (pfn < 0) throw new Error('out of frames');
    out.push(pfn);
  }
  return out;
}

function shuffle(prng: Prng, a: number[]): number[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = prng.below(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** First-principles read of one GTT byte: translate, then look at the frame. */
function byteAt(r: Rig, gttAddr: number): number {
  const pfn = r.gtt.translate(gttAddr);
  return r.ram.frame(pfn)[gttAddr % PAGE_SIZE]!;
}

/** Bound entries recomputed from forEachBound. */
function recountBound(gtt: GlobalGtt): number {
  let n = 0;
  gtt.forEachBound(() => n++);
  return n;
}

describe(`GlobalGtt entries (seed ${SEED})`, () => {
  it('allocates no PTE storage at construction, even for a 2^48-byte GTT', () => {
    const { ram, reports } = rig(64);
    for (let k = 0; k < 1000; k++) {
      const g = new GlobalGtt(ram, { scratchPfn: 0, gttBytes: 2 ** 48, report: () => undefined });
      expect(g.chunksAllocated).toBe(0);
    }
    const gtt = new GlobalGtt(ram, { scratchPfn: 0, gttBytes: 2 ** 48, report: () => undefined });
    expect(gtt.totalPages).toBe(2 ** 36);
    expect(gtt.mappableBytes).toBe(256 * MiB);
    expect(gtt.mappablePages).toBe(65536);
    expect(gtt.pte(2 ** 36 - 1)).toBe(0);
    expect(gtt.translate(2 ** 48 - 1)).toBe(0);
    expect(gtt.translate(2 ** 48)).toBe(-1);
    expect(gtt.pte(2 ** 36)).toBe(-1);
    const pfn = ram.alloc_page();
    gtt.insert_entries(2 ** 36 - 1, [pfn]);
    expect(gtt.chunksAllocated).toBe(1);
    expect(gtt.translate(2 ** 48 - 1)).toBe(pfn);
    expect(gtt.entriesPointingAt(pfn)).toEqual([2 ** 36 - 1]);
    expect(gtt.writeDword(2 ** 48 - 4, 0x11223344)).toBe(true);
    expect(gtt.readDword(2 ** 48 - 4)).toBe(0x11223344);
    expect(gtt.readDword(2 ** 48 - 2)).toBe(-1);
    gtt.clear_range(2 ** 36 - 1, 1);
    expect(gtt.chunksAllocated).toBe(0);
    expect(gtt.boundPages).toBe(0);
    expect(reports).toEqual([]);
  });

  it('rejects impossible geometries with a RangeError', () => {
    const { ram } = rig(4);
    const report = (): void => undefined;
    expect(() => new GlobalGtt(ram, { scratchPfn: 0, gttBytes: 4097, report })).toThrow(RangeError);
    expect(() => new GlobalGtt(ram, { scratchPfn: 0, gttBytes: 2 ** 49, report })).toThrow(RangeError);
    expect(
      () => new GlobalGtt(ram, { scratchPfn: 0, gttBytes: MiB, mappableBytes: 2 * MiB, report }),
    ).toThrow(RangeError);
    expect(() => new GlobalGtt(ram, { scratchPfn: 4, report })).toThrow(RangeError);
    expect(new GlobalGtt(ram, { scratchPfn: 0, gttBytes: MiB, report }).mappableBytes).toBe(MiB);
  });

  it('inserts, overwrites and clears entries; counters match a recount', () => {
    const r = rig(4096);
    const { gtt, ram } = r;
    const frames = allocFrames(ram, 3000);
    gtt.insert_entries(1000, frames);
    expect(gtt.boundPages).toBe(3000);
    expect(recountBound(gtt)).toBe(3000);
    expect(gtt.pte(999)).toBe(gtt.scratchPfn);
    expect(gtt.isBound(999)).toBe(false);
    expect(gtt.pte(1000)).toBe(frames[0]);
    expect(gtt.pte(3999)).toBe(frames[2999]);
    expect(gtt.translate(1000 * PAGE_SIZE + 123)).toBe(frames[0]);
    // Overwriting a bound entry does not count it twice.
    gtt.insert_entries(1500, [frames[0]!, frames[0]!]);
    expect(gtt.boundPages).toBe(3000);
    expect(gtt.entriesPointingAt(frames[0]!)).toEqual([1000, 1500, 1501]);
    gtt.clear_range(1200, 1000);
    expect(gtt.boundPages).toBe(2000);
    expect(recountBound(gtt)).toBe(2000);
    expect(gtt.pte(1500)).toBe(gtt.scratchPfn);
    expect(gtt.entriesPointingAt(frames[0]!)).toEqual([1000]);
    // Clearing scratch entries changes nothing.
    gtt.clear_range(0, 1000);
    expect(gtt.boundPages).toBe(2000);
    // forEachBound is ascending and agrees with pte().
    let prev = -1;
    gtt.forEachBound((page, pfn) => {
      expect(page).toBeGreaterThan(prev);
      expect(gtt.pte(page)).toBe(pfn);
      prev = page;
    });
    gtt.clear_range(0, gtt.totalPages);
    expect(gtt.boundPages).toBe(0);
    expect(gtt.chunksAllocated).toBe(0);
    expect(r.reports).toEqual([]);
  });

  it('reports bad insert_entries / clear_range arguments as BUG and changes nothing', () => {
    const r = rig(64, MiB);
    const { gtt, ram } = r;
    const pfn = ram.alloc_page();
    gtt.insert_entries(gtt.totalPages - 1, [pfn, pfn]);
    gtt.insert_entries(-1, [pfn]);
    gtt.insert_entries(0, [pfn, 64]);
    gtt.insert_entries(0, [pfn, 1.5]);
    gtt.clear_range(0, gtt.totalPages + 1);
    gtt.clear_range(0.5, 1);
    expect(r.reports.map((x) => x.kind)).toEqual(['BUG', 'BUG', 'BUG', 'BUG', 'BUG', 'BUG']);
    expect(gtt.boundPages).toBe(0);
    expect(gtt.chunksAllocated).toBe(0);
  });

  it('clear_range points pages back at the scratch page: reads see it, writes land in it', () => {
    const r = rig(64, MiB);
    const { gtt, ram } = r;
    const frames = allocFrames(ram, 4);
    gtt.insert_entries(8, frames);
    expect(gtt.write(8 * PAGE_SIZE, new Uint8Array(4 * PAGE_SIZE).fill(0x5a))).toBe(true);
    gtt.clear_range(8, 4);
    for (const pfn of frames) expect(ram.frame(pfn)[100]).toBe(0x5a);
    const got = new Uint8Array(2 * PAGE_SIZE);
    gtt.resetStats();
    expect(gtt.read(9 * PAGE_SIZE, got)).toBe(true);
    expect(got.every((b) => b === 0)).toBe(true);
    expect(gtt.stats.scratchAccesses).toBe(2);
    // A stale GPU write after the unbind lands in scratch, not in the object's old frames.
    gtt.writeDword(9 * PAGE_SIZE + 16, 0xcafef00d);
    expect(ram.frame(frames[1]!)[16]).toBe(0x5a);
    expect(gtt.readDword(10 * PAGE_SIZE + 16)).toBe(0xcafef00d);
    expect(r.reports).toEqual([]);
  });
});

describe(`GlobalGtt device access (seed ${SEED})`, () => {
  it('read / write / copy of random ranges over shuffled frames match a byte-by-byte model', () => {
    const prng = new Prng(SEED);
    const r = rig(3 * CHUNK_PAGES);
    const { gtt, ram } = r;
    // Half the pages physically contiguous in runs, half shuffled.
    const frames = allocFrames(ram, 2048);
    const mixed = [...frames.slice(0, 1024), ...shuffle(prng, frames.slice(1024))];
    gtt.insert_entries(16, mixed);
    const base = 16 * PAGE_SIZE;
    const span = mixed.length * PAGE_SIZE;
    const init = new Uint8Array(span);
    prng.fill(init);
    expect(gtt.write(base, init)).toBe(true);
    for (let k = 0; k < 40; k++) {
      const len = prng.below(5 * PAGE_SIZE);
      const a = base + prng.below(span - len);
      const b = base + prng.below(span - len);
      // read
      const got = new Uint8Array(len);
      expect(gtt.read(a, got)).toBe(true);
      for (let i = 0; i < len; i += 97) expect(got[i]).toBe(byteAt(r, a + i));
      // write
      const data = new Uint8Array(len);
      prng.fill(data);
      gtt.write(b, data);
      for (let i = 0; i < len; i += 89) expect(byteAt(r, b + i)).toBe(data[i]);
      // copy between disjoint ranges
      const c = base + prng.below(span / 2 - len);
      const d = base + span / 2 + prng.below(span / 2 - len);
      const expected = new Uint8Array(len);
      for (let i = 0; i < len; i++) expected[i] = byteAt(r, c + i);
      gtt.copy(d, c, len);
      for (let i = 0; i < len; i++) if (byteAt(r, d + i) !== expected[i]) throw new Error(`copy byte ${i}`);
    }
    expect(r.reports).toEqual([]);
  });

  it('accesses outside the GTT fail without touching anything', () => {
    const r = rig(64, MiB);
    const { gtt, ram } = r;
    const pfn = ram.alloc_page();
    gtt.insert_entries(gtt.totalPages - 1, [pfn]);
    const end = gtt.totalBytes;
    expect(gtt.write(end - 8, new Uint8Array(16).fill(1))).toBe(false);
    expect(ram.frame(pfn).every((b) => b === 0)).toBe(true);
    expect(gtt.read(end, new Uint8Array(1))).toBe(false);
    expect(gtt.read(-4, new Uint8Array(4))).toBe(false);
    expect(gtt.readDword(end)).toBe(-1);
    expect(gtt.writeDword(end - 2, 1)).toBe(false);
    expect(gtt.copy(end - PAGE_SIZE, 0, PAGE_SIZE + 1)).toBe(false);
    expect(gtt.blit(end - PAGE_SIZE, 64, 0, 64, 64, 65)).toBe(false);
    expect(gtt.blit(0, -64, 64, 64, 64, 2)).toBe(false);
    expect(gtt.fill(end - 64, 64, 64, 2, 0xffffffff)).toBe(false);
    expect(gtt.translate(1.5)).toBe(-1);
    expect(gtt.read(end - 8, new Uint8Array(8))).toBe(true);
    expect(ram.frame(pfn).every((b) => b === 0)).toBe(true);
    expect(r.reports).toEqual([]);
  });

  it('a GPU access to a freed frame is a use-after-free: reads poison, drops writes', () => {
    const r = rig(64, MiB);
    const { gtt, ram } = r;
    const frames = allocFrames(ram, 3);
    gtt.insert_entries(4, frames);
    ram.put_page(frames[1]!); // the driver released the page while it was still bound
    const src = new Uint8Array(3 * PAGE_SIZE).fill(0x11);
    expect(gtt.write(4 * PAGE_SIZE, src)).toBe(true);
    expect(r.reports.map((x) => x.kind)).toEqual(['use-after-free']);
    expect(r.reports[0]!.message).toContain(`pfn 0x${frames[1]!.toString(16)}`);
    expect(ram.frame(frames[0]!)[0]).toBe(0x11);
    expect(ram.frame(frames[1]!).every((b) => b === POISON_BYTE)).toBe(true);
    expect(ram.frame(frames[2]!)[0]).toBe(0x11);
    const got = new Uint8Array(3 * PAGE_SIZE);
    gtt.read(4 * PAGE_SIZE, got);
    expect(got[PAGE_SIZE - 1]).toBe(0x11);
    expect(got.subarray(PAGE_SIZE, 2 * PAGE_SIZE).every((b) => b === POISON_BYTE)).toBe(true);
    expect(got[2 * PAGE_SIZE]).toBe(0x11);
    gtt.writeDword(5 * PAGE_SIZE, 0);
    gtt.readDword(5 * PAGE_SIZE + 8);
    // A blit touching the frame on many rows reports it once.
    gtt.blit(5 * PAGE_SIZE, 256, 4 * PAGE_SIZE, 256, 64, 16);
    expect(r.reports.filter((x) => x.kind === 'use-after-free')).toHaveLength(5);
    expect(ram.frame(frames[1]!).every((b) => b === POISON_BYTE)).toBe(true);
    expect(gtt.stats.freeFrameAccesses).toBeGreaterThanOrEqual(5);
  });

  it('2-D blit with pitches, offsets, negative pitch and write masks matches a plain JS reference', () => {
    const prng = new Prng(SEED + 1);
    const r = rig(1024);
    const { gtt, ram } = r;
    const srcFrames = shuffle(prng, allocFrames(ram, 64));
    const dstFrames = shuffle(prng, allocFrames(ram, 64));
    gtt.insert_entries(0, srcFrames);
    gtt.insert_entries(100, dstFrames);
    const S = 0;
    const D = 100 * PAGE_SIZE;
    const bytes = 64 * PAGE_SIZE;
    const srcInit = new Uint8Array(bytes);
    const dstInit = new Uint8Array(bytes);
    const cases: [number, number, number, number, number, number, number][] = [
      // dstOff, dstPitch, srcOff, srcPitch, widthBytes, height, mask
      [0, 2048, 0, 2048, 2048, 100, 0xf],
      [12, 3000, 40, 2052, 1200, 80, 0xf],
      [4000, 5000, 7, 4099, 4096, 40, 0xf],
      [200000, -3000, 100, 3000, 400, 60, 0xf],
      [8, 1024, 16, 512, 256, 30, 0x7],
      [8, 1024, 16, 512, 256, 30, 0x8],
      [8, 1024, 16, 512, 256, 30, 0x0],
    ];
    for (const [dOff, dp, sOff, sp, wb, h, mask] of cases) {
      prng.fill(srcInit);
      prng.fill(dstInit);
      gtt.write(S, srcInit);
      gtt.write(D, dstInit);
      const want = dstInit.slice();
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < wb; x++) {
          if (((mask >> (x & 3)) & 1) === 0) continue;
          want[dOff + y * dp + x] = srcInit[sOff + y * sp + x]!;
        }
      }
      expect(gtt.blit(D + dOff, dp, S + sOff, sp, wb, h, mask)).toBe(true);
      const got = new Uint8Array(bytes);
      gtt.read(D, got);
      expect(Buffer.compare(got, want), `case ${[dOff, dp, sOff, sp, wb, h, mask].join(',')}`).toBe(0);
    }
    expect(r.reports).toEqual([]);
  });

  it('2-D fill matches a plain JS reference (unaligned starts, odd widths, masks)', () => {
    const prng = new Prng(SEED + 2);
    const r = rig(256);
    const { gtt, ram } = r;
    gtt.insert_entries(3, shuffle(prng, allocFrames(ram, 40)));
    const D = 3 * PAGE_SIZE;
    const bytes = 40 * PAGE_SIZE;
    const cases: [number, number, number, number, number][] = [
      // off, pitch, widthBytes, height, mask
      [0, 4096, 4096, 20, 0xf],
      [1, 1000, 999, 50, 0xf],
      [4, 2048, 1, 3, 0xf],
      [4, 2048, 3, 3, 0xf],
      [100, 700, 640, 100, 0xf],
      [0, 512, 512, 300, 0x7],
      [32, 900, 88, 30, 0x8],
    ];
    for (const [off, pitch, wb, h, mask] of cases) {
      const init = new Uint8Array(bytes);
      prng.fill(init);
      gtt.write(D, init);
      const colour = prng.nextU32();
      const want = init.slice();
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < wb; x++) {
          if (((mask >> (x & 3)) & 1) !== 0) want[off + y * pitch + x] = (colour >>> (8 * (x & 3))) & 0xff;
        }
      }
      expect(gtt.fill(D + off, pitch, wb, h, colour, mask)).toBe(true);
      const got = new Uint8Array(bytes);
      gtt.read(D, got);
      expect(Buffer.compare(got, want), `case ${[off, pitch, wb, h, mask].join(',')}`).toBe(0);
    }
    expect(r.reports).toEqual([]);
  });
});

describe('GlobalGtt coalescing', () => {
  const PAGES = (64 * MiB) / PAGE_SIZE;

  it('moves a 64 MiB blit of physically contiguous surfaces with one set per RAM chunk', () => {
    // Surfaces first, so that both start on a RAM chunk boundary; scratch after them.
    const r = rig(2 * PAGES + 8, 256 * MiB, 2 * PAGES);
    const { gtt } = r;
    const srcFrames = Array.from({ length: PAGES }, (_, k) => k);
    const dstFrames = Array.from({ length: PAGES }, (_, k) => PAGES + k);
    gtt.insert_entries(0, srcFrames);
    gtt.insert_entries(PAGES + 16, dstFrames);
    const S = 0;
    const D = (PAGES + 16) * PAGE_SIZE;
    gtt.writeDword(S + 12345 * 4, 0xabcdef01);
    gtt.resetStats();
    // 4096 x 4096 pixels of 32 bpp, pitch 16 KiB: one contiguous 64 MiB range.
    expect(gtt.blit(D, 16384, S, 16384, 16384, 4096)).toBe(true);
    expect(gtt.stats.copies).toBe(PAGES / CHUNK_PAGES);
    expect(gtt.stats.bytes).toBe(64 * MiB);
    expect(gtt.readDword(D + 12345 * 4)).toBe(0xabcdef01);
    // Misaligned by one page: each piece still spans a whole source or destination run.
    gtt.resetStats();
    gtt.copy(D + PAGE_SIZE, S, 64 * MiB - PAGE_SIZE);
    expect(gtt.stats.copies).toBeLessThanOrEqual(2 * (PAGES / CHUNK_PAGES) + 1);
    expect(gtt.readDword(D + PAGE_SIZE + 12345 * 4)).toBe(0xabcdef01);
    // Rows narrower than the pitch: one set per row (each row lies in one RAM chunk here).
    gtt.resetStats();
    gtt.blit(D, 16384, S, 16384, 8192, 4096);
    expect(gtt.stats.copies).toBe(4096);
    expect(r.reports).toEqual([]);
  });

  it('micro-benchmark: 64 MiB GTT blit against one TypedArray.set (prints, asserts nothing about time)', () => {
    const r = rig(2 * PAGES + 8, 256 * MiB, 2 * PAGES);
    const { gtt } = r;
    gtt.insert_entries(
      0,
      Array.from({ length: PAGES }, (_, k) => k),
    );
    gtt.insert_entries(
      PAGES,
      Array.from({ length: PAGES }, (_, k) => PAGES + k),
    );
    const a = new Uint8Array(64 * MiB);
    const b = new Uint8Array(64 * MiB);
    // A test-only wall clock: the core never reads time (the benchmark proper is `npm run bench`).
    const now = (): number => Number(process.hrtime.bigint()) / 1e6;
    let setMs = Infinity;
    let blitMs = Infinity;
    for (let rep = 0; rep < 5; rep++) {
      let t = now();
      b.set(a);
      setMs = Math.min(setMs, now() - t);
      t = now();
      gtt.blit(PAGES * PAGE_SIZE, 16384, 0, 16384, 16384, 4096);
      blitMs = Math.min(blitMs, now() - t);
    }
    console.log(
      `64 MiB: TypedArray.set ${setMs.toFixed(2)} ms, GTT blit ${blitMs.toFixed(2)} ms, ratio ${(setMs / blitMs).toFixed(2)}`,
    );
    expect(r.reports).toEqual([]);
  });

  it('PTE chunks are dropped when their last entry is cleared', () => {
    const r = rig(4 * CHUNK_PAGES);
    const { gtt, ram } = r;
    gtt.insert_entries(GTT_PTE_CHUNK_PAGES - 2, allocFrames(ram, 4));
    expect(gtt.chunksAllocated).toBe(2);
    gtt.clear_range(GTT_PTE_CHUNK_PAGES - 2, 2);
    expect(gtt.chunksAllocated).toBe(1);
    gtt.clear_range(GTT_PTE_CHUNK_PAGES, 2);
    expect(gtt.chunksAllocated).toBe(0);
  });
});
