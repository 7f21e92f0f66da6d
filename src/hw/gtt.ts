/**
 * The global GTT (graphics translation table) of a gen6+ Intel GPU: one page-table entry per 4 KiB
 * page of the GPU's global address space, each pointing at a RAM frame or at the scratch page. The
 * first `mappableBytes` of the space are the CPU-visible aperture.
 *
 * This is hardware only: it stores entries and moves bytes through them. Allocating GTT ranges,
 * binding objects and deciding when entries may change is the driver's business (i915/).
 *
 * Entries are stored lazily, in chunks of GTT_PTE_CHUNK_PAGES entries, so constructing even a 2^48
 * byte GTT allocates nothing. A chunk whose entries all point at scratch again is dropped.
 *
 * Every device access reaches memory through PhysicalMemory: a frame that is free when the GPU
 * touches it is a 'use-after-free' finding (reported through ram's callback), reads of it return
 * poison and writes to it are dropped. Runs of GTT pages backed by physically consecutive frames
 * of one RAM chunk are moved with a single TypedArray.set.
 *
 * No method yields: each is atomic with respect to the scheduler.
 */
import { PAGE_SIZE } from '../base/page.js';
import { CHUNK_SHIFT, POISON_BYTE, type PhysicalMemory, type RamReport } from './ram.js';

/** Entries per lazily allocated chunk: one 4 KiB page of gen6 4-byte PTEs, i.e. 4 MiB of GTT. */
export const GTT_PTE_CHUNK_PAGES = 1024;
/** Default size of the global GTT (gen6/7: 2 GiB). */
export const DEFAULT_GTT_BYTES = 2 ** 31;
/** Default size of the CPU-visible aperture at the start of the GTT. */
export const DEFAULT_MAPPABLE_BYTES = 256 * 1024 * 1024;
/** Largest GTT modelled: 48-bit GPU addresses (gen8 full PPGTT range). */
export const MAX_GTT_BYTES = 2 ** 48;

const CP = GTT_PTE_CHUNK_PAGES;

export interface GttOptions {
  /** The frame unbound entries point at (the driver allocates it: i915's scratch page). */
  scratchPfn: number;
  /** Size of the GTT in bytes: a positive multiple of 4096, at most 2^48 (default 2 GiB). */
  gttBytes?: number;
  /** CPU-visible aperture at the start of the GTT (default min(256 MiB, gttBytes)). */
  mappableBytes?: number;
  /** Receives BUG findings for bad arguments to insert_entries / clear_range. */
  report: RamReport;
}

/** Counters of device traffic through the GTT (reset with resetStats()). */
export interface GttStats {
  /** TypedArray.set calls that moved data (read, write, copy, blit): one per coalesced run. */
  copies: number;
  /** Pattern fills of a coalesced run (fill). */
  fills: number;
  /** Bytes the device read or wrote through the GTT (a copy counts its destination bytes). */
  bytes: number;
  /** Page accesses that went through a scratch entry. */
  scratchAccesses: number;
  /** Page accesses that hit a free frame (read poison, write dropped). */
  freeFrameAccesses: number;
}

/** Run kinds in the run lists built by collect(). */
const RUN_LIVE = 0;
const RUN_FREE = 1;
/** Numbers per run in a run list: pfn, offset of the first byte in that frame, bytes, kind. */
const RUN_STRIDE = 4;

/**
 * Zeroed PTE arrays no GTT uses any more (a chunk whose entries all went back to scratch, the
 * chunks of a disposed machine's GTT): any GTT takes them before allocating, since V8 allocates
 * a 4 KiB typed array outside its heap, at a cost.
 */
const ptesPool: Int32Array[] = [];
const PTES_POOL_MAX = 16;

function alloc_ptes(): Int32Array {
  return ptesPool.pop() ?? new Int32Array(CP);
}

/** `ptes` is all zero and nothing refers to it any more. */
function free_ptes(ptes: Int32Array): void {
  if (ptesPool.length < PTES_POOL_MAX) ptesPool.push(ptes);
}

/** The dword scratch of readDword / writeDword: every use is synchronous, so one serves all GTTs. */
const tmp4 = new Uint8Array(new ArrayBuffer(4));
const tmp4View = new DataView(tmp4.buffer);

/** One chunk of PTEs. Entry value: pfn + 1, or 0 for "points at the scratch page". */
interface PteChunk {
  readonly ptes: Int32Array;
  /** Non-zero entries in ptes. */
  bound: number;
}

export class GlobalGtt {
  /** Size of the GTT in bytes and in pages. */
  readonly totalBytes: number;
  readonly totalPages: number;
  /** The CPU-visible aperture: GTT addresses [0, mappableBytes). */
  readonly mappableBytes: number;
  readonly mappablePages: number;
  /** The frame every unbound entry points at. */
  readonly scratchPfn: number;
  /** Device traffic counters. */
  readonly stats: GttStats = { copies: 0, fills: 0, bytes: 0, scratchAccesses: 0, freeFrameAccesses: 0 };

  private readonly ram: PhysicalMemory;
  private readonly report: RamReport;
  /** PTE chunks by chunk index (page / GTT_PTE_CHUNK_PAGES); absent = all scratch. */
  private readonly chunks = new Map<number, PteChunk>();
  /** Entries not pointing at scratch (set by insert_entries). */
  private bound = 0;
  /** Reusable run lists for collect(). */
  private readonly runsA: number[] = [];
  private readonly runsB: number[] = [];
  /** Free frames already reported during the current access (lazily created). */
  private reported: Set<number> | null = null;

  constructor(ram: PhysicalMemory, opts: GttOptions) {
    const gttBytes = opts.gttBytes ?? DEFAULT_GTT_BYTES;
    if (
      !Number.isSafeInteger(gttBytes) ||
      gttBytes <= 0 ||
      gttBytes % PAGE_SIZE !== 0 ||
      gttBytes > MAX_GTT_BYTES
    ) {
      throw new RangeError(`GlobalGtt: gttBytes ${gttBytes} is not a multiple of ${PAGE_SIZE} in (0, 2^48]`);
    }
    const mappable = opts.mappableBytes ?? Math.min(DEFAULT_MAPPABLE_BYTES, gttBytes);
    if (
      !Number.isSafeInteger(mappable) ||
      mappable < 0 ||
      mappable % PAGE_SIZE !== 0 ||
      mappable > gttBytes
    ) {
      throw new RangeError(
        `GlobalGtt: mappableBytes ${mappable} is not a multiple of ${PAGE_SIZE} <= gttBytes`,
      );
    }
    const s = opts.scratchPfn;
    if (s >>> 0 !== s || s >= ram.totalPages) {
      throw new RangeError(`GlobalGtt: scratchPfn ${String(s)} is not a frame of this machine`);
    }
    this.ram = ram;
    this.report = opts.report;
    this.totalBytes = gttBytes;
    this.totalPages = gttBytes / PAGE_SIZE;
    this.mappableBytes = mappable;
    this.mappablePages = mappable / PAGE_SIZE;
    this.scratchPfn = s;
    ram.onDispose(() => {
      this.dispose();
    });
  }

  /** The machine is gone: the PTE arrays go back to the pool, zeroed. */
  private dispose(): void {
    for (const chunk of this.chunks.values()) {
      chunk.ptes.fill(0);
      free_ptes(chunk.ptes);
    }
    this.chunks.clear();
    this.bound = 0;
  }

  /** Entries that do not point at the scratch page (written by insert_entries). O(1). */
  get boundPages(): number {
    return this.bound;
  }
  /** PTE chunks currently allocated (0 right after construction). */
  get chunksAllocated(): number {
    return this.chunks.size;
  }

  resetStats(): void {
    const st = this.stats;
    st.copies = st.fills = st.bytes = st.scratchAccesses = st.freeFrameAccesses = 0;
  }

  // ---------------------------------------------------------------------------------------------
  // Page-table entries

  /**
   * Points GTT pages firstPage .. firstPage + pfns.length - 1 at the given frames
   * (gen6_ggtt_insert_entries). Out-of-range pages or pfns are a BUG finding and change nothing.
   */
  insert_entries(firstPage: number, pfns: ArrayLike<number>): void {
    const n = pfns.length;
    if (!this.pageRangeOk(firstPage, n, 'insert_entries')) return;
    const ramPages = this.ram.totalPages;
    for (let k = 0; k < n; k++) {
      const pfn = pfns[k]!;
      if (pfn >>> 0 !== pfn || pfn >= ramPages) {
        this.report('BUG', `insert_entries: pfn ${String(pfn)} (entry ${k}) is not a frame of this machine`);
        return;
      }
    }
    let k = 0;
    while (k < n) {
      const page = firstPage + k;
      const ci = Math.floor(page / CP);
      let chunk = this.chunks.get(ci);
      if (chunk === undefined) {
        chunk = { ptes: alloc_ptes(), bound: 0 };
        this.chunks.set(ci, chunk);
      }
      const ptes = chunk.ptes;
      const first = page - ci * CP;
      const stop = Math.min(CP, first + (n - k));
      for (let i = first; i < stop; i++, k++) {
        if (ptes[i] === 0) {
          chunk.bound++;
          this.bound++;
        }
        ptes[i] = pfns[k]! + 1;
      }
    }
  }

  /** Points GTT pages firstPage .. firstPage + nrPages - 1 back at the scratch page (gen6_ggtt_clear_range). */
  clear_range(firstPage: number, nrPages: number): void {
    if (!this.pageRangeOk(firstPage, nrPages, 'clear_range')) return;
    const end = firstPage + nrPages;
    let page = firstPage;
    while (page < end) {
      const ci = Math.floor(page / CP);
      const first = page - ci * CP;
      const stop = Math.min(CP, first + (end - page));
      page += stop - first;
      const chunk = this.chunks.get(ci);
      if (chunk === undefined) continue;
      const ptes = chunk.ptes;
      for (let i = first; i < stop; i++) {
        if (ptes[i] !== 0) {
          ptes[i] = 0;
          chunk.bound--;
          this.bound--;
        }
      }
      if (chunk.bound === 0) {
        this.chunks.delete(ci);
        free_ptes(ptes);
      }
    }
  }

  /** The frame GTT page `page` points at (scratchPfn when unbound), or -1 outside the GTT. */
  pte(page: number): number {
    if (!Number.isSafeInteger(page) || page < 0 || page >= this.totalPages) return -1;
    const e = this.entry(page);
    return e === 0 ? this.scratchPfn : e - 1;
  }

  /** True if GTT page `page` was set by insert_entries and not cleared since. */
  isBound(page: number): boolean {
    if (!Number.isSafeInteger(page) || page < 0 || page >= this.totalPages) return false;
    return this.entry(page) !== 0;
  }

  /** The frame holding GTT address gttAddr (scratchPfn when unbound), or -1 outside the GTT. */
  translate(gttAddr: number): number {
    if (!Number.isSafeInteger(gttAddr) || gttAddr < 0 || gttAddr >= this.totalBytes) return -1;
    return this.pte(Math.floor(gttAddr / PAGE_SIZE));
  }

  /** True if [gttAddr, gttAddr + len) lies inside the GTT. */
  contains(gttAddr: number, len: number): boolean {
    return (
      Number.isSafeInteger(gttAddr) &&
      Number.isSafeInteger(len) &&
      gttAddr >= 0 &&
      len >= 0 &&
      gttAddr + len <= this.totalBytes
    );
  }

  /** True if [gttAddr, gttAddr + len) lies inside the CPU-visible aperture. */
  isMappable(gttAddr: number, len = 1): boolean {
    return this.contains(gttAddr, len) && gttAddr + len <= this.mappableBytes;
  }

  /** Calls cb(page, pfn) for every bound entry, in ascending page order. O(bound chunks × 1024). */
  forEachBound(cb: (page: number, pfn: number) => void): void {
    const keys = [...this.chunks.keys()].sort((a, b) => a - b);
    for (const ci of keys) {
      const ptes = this.chunks.get(ci)!.ptes;
      const base = ci * CP;
      for (let i = 0; i < CP; i++) {
        const e = ptes[i]!;
        if (e !== 0) cb(base + i, e - 1);
      }
    }
  }

  /** GTT pages whose entry points at frame pfn (bound entries only), ascending. */
  entriesPointingAt(pfn: number): number[] {
    const out: number[] = [];
    const want = pfn + 1;
    const keys = [...this.chunks.keys()].sort((a, b) => a - b);
    for (const ci of keys) {
      const ptes = this.chunks.get(ci)!.ptes;
      for (let i = ptes.indexOf(want); i >= 0; i = ptes.indexOf(want, i + 1)) out.push(ci * CP + i);
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------------
  // Device access. Each returns false (and touches nothing) if any byte lies outside the GTT: the
  // engine turns that into a hang. An access to a free frame is reported and otherwise ignored.

  /** The device reads dst.length bytes at gttAddr. Free frames read as poison. */
  read(gttAddr: number, dst: Uint8Array): boolean {
    if (!this.contains(gttAddr, dst.length)) return false;
    this.reported = null;
    this.readRange(gttAddr, dst);
    return true;
  }

  /** The device writes src at gttAddr. Writes to free frames are dropped. */
  write(gttAddr: number, src: Uint8Array): boolean {
    if (!this.contains(gttAddr, src.length)) return false;
    this.reported = null;
    this.writeRange(gttAddr, src);
    return true;
  }

  /** The device reads the little-endian dword at gttAddr: a u32, or -1 outside the GTT. */
  readDword(gttAddr: number): number {
    if (!this.contains(gttAddr, 4)) return -1;
    const off = gttAddr % PAGE_SIZE;
    if (off <= PAGE_SIZE - 4) {
      const pfn = this.pageFrame(Math.floor(gttAddr / PAGE_SIZE));
      if (!this.ram.deviceRead(pfn, off, tmp4)) this.stats.freeFrameAccesses++;
      this.stats.bytes += 4;
    } else {
      this.reported = null;
      this.readRange(gttAddr, tmp4);
    }
    return tmp4View.getUint32(0, true);
  }

  /** The device writes a little-endian dword at gttAddr; false outside the GTT. */
  writeDword(gttAddr: number, value: number): boolean {
    if (!this.contains(gttAddr, 4)) return false;
    tmp4View.setUint32(0, value >>> 0, true);
    const off = gttAddr % PAGE_SIZE;
    if (off <= PAGE_SIZE - 4) {
      const pfn = this.pageFrame(Math.floor(gttAddr / PAGE_SIZE));
      if (!this.ram.deviceWrite(pfn, off, tmp4)) this.stats.freeFrameAccesses++;
      this.stats.bytes += 4;
    } else {
      this.reported = null;
      this.writeRange(gttAddr, tmp4);
    }
    return true;
  }

  /**
   * Copies len bytes from srcGtt to dstGtt, one TypedArray.set per pair of coalesced runs. Ranges
   * that overlap other than exactly (src === dst) give memcpy's result, not memmove's, as the
   * blitter does.
   */
  copy(dstGtt: number, srcGtt: number, len: number): boolean {
    if (!this.contains(dstGtt, len) || !this.contains(srcGtt, len)) return false;
    this.reported = null;
    this.copyRange(dstGtt, srcGtt, len);
    return true;
  }

  /**
   * A 2-D copy: `height` rows of `widthBytes` bytes, row y from src + y·srcPitch to dst + y·dstPitch
   * (pitches may be negative). When both pitches equal the width the rows are one contiguous range,
   * copied as such. `pixelMask` (bit k = byte k of each 4-byte pixel, default 0xf) restricts which
   * bytes are written (the blitter's WRITE_ALPHA / WRITE_RGB), row by row read-modify-write.
   * Returns false, touching nothing, if any row lies outside the GTT.
   */
  blit(
    dstGtt: number,
    dstPitch: number,
    srcGtt: number,
    srcPitch: number,
    widthBytes: number,
    height: number,
    pixelMask = 0xf,
  ): boolean {
    if (!Number.isSafeInteger(widthBytes) || !Number.isSafeInteger(height) || widthBytes < 0 || height < 0) {
      return false;
    }
    if (widthBytes === 0 || height === 0) return true;
    if (!this.rowsInside(dstGtt, dstPitch, widthBytes, height)) return false;
    if (!this.rowsInside(srcGtt, srcPitch, widthBytes, height)) return false;
    this.reported = null;
    const mask = pixelMask & 0xf;
    if (mask === 0) return true;
    if (mask === 0xf && dstPitch === widthBytes && srcPitch === widthBytes) {
      this.copyRange(dstGtt, srcGtt, widthBytes * height);
      return true;
    }
    let rowS: Uint8Array | null = null;
    let rowD: Uint8Array | null = null;
    if (mask !== 0xf) {
      rowS = new Uint8Array(widthBytes);
      rowD = new Uint8Array(widthBytes);
    }
    for (let y = 0; y < height; y++) {
      const d = dstGtt + y * dstPitch;
      const s = srcGtt + y * srcPitch;
      if (rowS === null || rowD === null) {
        this.copyRange(d, s, widthBytes);
      } else {
        this.readRange(s, rowS);
        this.readRange(d, rowD);
        for (let k = 0; k < widthBytes; k++) if (((mask >>> (k & 3)) & 1) !== 0) rowD[k] = rowS[k]!;
        this.writeRange(d, rowD);
      }
    }
    return true;
  }

  /**
   * A 2-D fill: `height` rows of `widthBytes` bytes at dst + y·dstPitch, each filled with the
   * little-endian 32-bit `value` repeated from the row's first byte. `pixelMask` as for blit().
   * Returns false, touching nothing, if any row lies outside the GTT.
   */
  fill(
    dstGtt: number,
    dstPitch: number,
    widthBytes: number,
    height: number,
    value: number,
    pixelMask = 0xf,
  ): boolean {
    if (!Number.isSafeInteger(widthBytes) || !Number.isSafeInteger(height) || widthBytes < 0 || height < 0) {
      return false;
    }
    if (widthBytes === 0 || height === 0) return true;
    if (!this.rowsInside(dstGtt, dstPitch, widthBytes, height)) return false;
    this.reported = null;
    const mask = pixelMask & 0xf;
    if (mask === 0) return true;
    const v = value >>> 0;
    const pat = [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
    if (mask === 0xf) {
      if (dstPitch === widthBytes && widthBytes % 4 === 0) {
        this.fillRange(dstGtt, widthBytes * height, pat);
      } else {
        for (let y = 0; y < height; y++) this.fillRange(dstGtt + y * dstPitch, widthBytes, pat);
      }
      return true;
    }
    const row = new Uint8Array(widthBytes);
    for (let y = 0; y < height; y++) {
      const d = dstGtt + y * dstPitch;
      this.readRange(d, row);
      for (let k = 0; k < widthBytes; k++) if (((mask >>> (k & 3)) & 1) !== 0) row[k] = pat[k & 3]!;
      this.writeRange(d, row);
    }
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // Internals

  private pageRangeOk(firstPage: number, n: number, op: string): boolean {
    if (
      Number.isSafeInteger(firstPage) &&
      Number.isSafeInteger(n) &&
      firstPage >= 0 &&
      n >= 0 &&
      firstPage + n <= this.totalPages
    ) {
      return true;
    }
    this.report(
      'BUG',
      `${op}: pages [${String(firstPage)}, +${String(n)}) outside the GTT (${this.totalPages} pages)`,
    );
    return false;
  }

  /** Raw entry of an in-range page (0 = scratch). */
  private entry(page: number): number {
    const ci = Math.floor(page / CP);
    const chunk = this.chunks.get(ci);
    return chunk === undefined ? 0 : chunk.ptes[page - ci * CP]!;
  }

  /** The frame of an in-range page, counting scratch accesses. */
  private pageFrame(page: number): number {
    const e = this.entry(page);
    if (e !== 0) return e - 1;
    this.stats.scratchAccesses++;
    return this.scratchPfn;
  }

  /** Every row of a 2-D surface lies inside the GTT (rows are monotonic: check the first and last). */
  private rowsInside(base: number, pitch: number, widthBytes: number, height: number): boolean {
    if (!Number.isSafeInteger(pitch)) return false;
    return this.contains(base, widthBytes) && this.contains(base + (height - 1) * pitch, widthBytes);
  }

  /** A free frame touched by the device: reported once per access, counted every time. */
  private touchFree(pfn: number): void {
    this.stats.freeFrameAccesses++;
    let seen = this.reported;
    if (seen === null) seen = this.reported = new Set();
    if (seen.has(pfn)) return;
    seen.add(pfn);
    this.ram.checkDeviceAccess(pfn);
  }

  /**
   * Splits [addr, addr + len) (inside the GTT) into runs, appended to `out` as RUN_STRIDE numbers
   * each: pfn, offset of the first byte in that frame, bytes, kind. A live run covers GTT pages
   * backed by physically consecutive allocated frames of one RAM chunk; a free frame is a run of
   * its own (reported here, before any byte moves). Returns the number of runs.
   */
  private collect(addr: number, len: number, out: number[]): number {
    out.length = 0;
    const ram = this.ram;
    const scratch = this.scratchPfn;
    const chunks = this.chunks;
    let page = Math.floor(addr / PAGE_SIZE);
    let off = addr - page * PAGE_SIZE;
    let left = len;
    let n = 0;
    let ci = -1;
    let ptes: Int32Array | undefined;
    while (left > 0) {
      let c = Math.floor(page / CP);
      if (c !== ci) {
        ci = c;
        ptes = chunks.get(c)?.ptes;
      }
      let e = ptes === undefined ? 0 : ptes[page - c * CP]!;
      if (e === 0) this.stats.scratchAccesses++;
      const pfn = e === 0 ? scratch : e - 1;
      let bytes = Math.min(PAGE_SIZE - off, left);
      if (ram.isFree(pfn)) {
        this.touchFree(pfn);
        out.push(pfn, off, bytes, RUN_FREE);
      } else {
        const ramChunk = pfn >>> CHUNK_SHIFT;
        let last = pfn;
        while (bytes < left) {
          const np = page + 1;
          c = Math.floor(np / CP);
          if (c !== ci) {
            ci = c;
            ptes = chunks.get(c)?.ptes;
          }
          e = ptes === undefined ? 0 : ptes[np - c * CP]!;
          const next = e === 0 ? scratch : e - 1;
          if (next !== last + 1 || next >>> CHUNK_SHIFT !== ramChunk || ram.isFree(next)) break;
          if (e === 0) this.stats.scratchAccesses++;
          last = next;
          page = np;
          bytes += Math.min(PAGE_SIZE, left - bytes);
        }
        out.push(pfn, off, bytes, RUN_LIVE);
      }
      n++;
      left -= bytes;
      page++;
      off = 0;
    }
    return n;
  }

  /** A view over `bytes` bytes of a live run starting `off` bytes into frame pfn. */
  private view(pfn: number, off: number, bytes: number): Uint8Array {
    const first = pfn + Math.floor(off / PAGE_SIZE);
    const o = off % PAGE_SIZE;
    return this.ram.span(first, Math.ceil((o + bytes) / PAGE_SIZE)).subarray(o, o + bytes);
  }

  private readRange(addr: number, dst: Uint8Array): void {
    const runs = this.runsA;
    const n = this.collect(addr, dst.length, runs);
    let pos = 0;
    for (let r = 0; r < n * RUN_STRIDE; r += RUN_STRIDE) {
      const bytes = runs[r + 2]!;
      if (runs[r + 3] === RUN_LIVE) {
        dst.set(this.view(runs[r]!, runs[r + 1]!, bytes), pos);
        this.stats.copies++;
      } else {
        dst.fill(POISON_BYTE, pos, pos + bytes);
      }
      pos += bytes;
    }
    this.stats.bytes += dst.length;
  }

  private writeRange(addr: number, src: Uint8Array): void {
    const runs = this.runsA;
    const n = this.collect(addr, src.length, runs);
    let pos = 0;
    for (let r = 0; r < n * RUN_STRIDE; r += RUN_STRIDE) {
      const bytes = runs[r + 2]!;
      if (runs[r + 3] === RUN_LIVE) {
        this.view(runs[r]!, runs[r + 1]!, bytes).set(src.subarray(pos, pos + bytes));
        this.stats.copies++;
      }
      pos += bytes;
    }
    this.stats.bytes += src.length;
  }

  /** Merges the source and destination run lists: one set per overlapping pair of live runs. */
  private copyRange(dst: number, src: number, len: number): void {
    const sr = this.runsA;
    const dr = this.runsB;
    const ns = this.collect(src, len, sr) * RUN_STRIDE;
    const nd = this.collect(dst, len, dr) * RUN_STRIDE;
    let i = 0;
    let j = 0;
    let si = 0;
    let dj = 0;
    while (i < ns && j < nd) {
      const sb = sr[i + 2]! - si;
      const db = dr[j + 2]! - dj;
      const n = sb < db ? sb : db;
      if (dr[j + 3] === RUN_LIVE) {
        const d = this.view(dr[j]!, dr[j + 1]! + dj, n);
        if (sr[i + 3] === RUN_LIVE) {
          d.set(this.view(sr[i]!, sr[i + 1]! + si, n));
          this.stats.copies++;
        } else {
          d.fill(POISON_BYTE);
          this.stats.fills++;
        }
      }
      si += n;
      dj += n;
      if (si === sr[i + 2]) {
        i += RUN_STRIDE;
        si = 0;
      }
      if (dj === dr[j + 2]) {
        j += RUN_STRIDE;
        dj = 0;
      }
    }
    this.stats.bytes += len;
  }

  /** Fills [addr, addr + len) with the 4-byte pattern, phase 0 at addr. */
  private fillRange(addr: number, len: number, pat: readonly number[]): void {
    const runs = this.runsA;
    const n = this.collect(addr, len, runs);
    let pos = 0;
    for (let r = 0; r < n * RUN_STRIDE; r += RUN_STRIDE) {
      const bytes = runs[r + 2]!;
      if (runs[r + 3] === RUN_LIVE) {
        const v = this.view(runs[r]!, runs[r + 1]!, bytes);
        const m = Math.min(4, bytes);
        for (let k = 0; k < m; k++) v[k] = pat[(pos + k) & 3]!;
        // Doubling keeps the period: the filled prefix is always a multiple of 4 bytes long.
        for (let have = m; have < bytes; have *= 2) v.copyWithin(have, 0, Math.min(have, bytes - have));
        this.stats.fills++;
      }
      pos += bytes;
    }
    this.stats.bytes += len;
  }
}
