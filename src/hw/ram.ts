/**
 * Physical RAM: the machine's 4 KiB page frames and their `struct page` metadata, with a simplified
 * page allocator standing in for the buddy allocator (order-0 pages only).
 *
 * Frames live in large ArrayBuffer chunks (CHUNK_PAGES frames each) so that a run of physically
 * contiguous frames can be copied with one TypedArray.set. Chunks and their metadata are allocated
 * lazily, the first time a frame of the chunk is handed out or looked at: constructing a 512 MiB
 * machine allocates nothing but a few empty arrays.
 *
 * No method yields, so each one is atomic with respect to the scheduler; see README.md for which
 * kernel lock each operation stands for.
 */
import type { FindingKind } from '../base/findings.js';
import { PAGE_SHIFT, PAGE_SIZE, hex } from '../base/page.js';

/** The findings physical memory can raise. */
export type RamReportKind = Extract<FindingKind, 'use-after-free' | 'BUG' | 'WARN'>;
/** Receives findings. It may throw (a fatal finding unwinds the caller): state is consistent by then. */
export type RamReport = (kind: RamReportKind, message: string) => void;

/** log2 of the frames per chunk. */
export const CHUNK_SHIFT = 10;
/** Frames per ArrayBuffer chunk (4 MiB); the last chunk of a machine may be shorter. */
export const CHUNK_PAGES = 1 << CHUNK_SHIFT;
const CHUNK_MASK = CHUNK_PAGES - 1;

/** Byte a freed frame is filled with (slab's POISON_FREE, the well-known use-after-free pattern). */
export const POISON_BYTE = 0x6b;
const POISON_WORD = 0x6b6b6b6b;

/** A chunk's storage with its views and metadata, pooled together so reuse allocates nothing. */
interface PooledChunk {
  buf: ArrayBuffer;
  bytes: Uint8Array;
  words: Int32Array;
  qwords: Float64Array;
  meta: Int32Array;
}
/**
 * Zeroed chunks (frames and metadata) given back by disposed machines, by frame count: the
 * explorer boots a small machine per schedule, and a fresh zeroed ArrayBuffer per boot costs more
 * than the rest of the boot. Module-wide; the content is all zeros, so reuse is deterministic.
 */
const chunkPool = new Map<number, PooledChunk[]>();
/** Chunks kept per size, and bytes kept in all. */
const CHUNK_POOL_MAX = 16;
const CHUNK_POOL_BYTES = 128 * 1024 * 1024;
let pooledBytes = 0;

/** Chunks waiting in the pool (tests). */
export function pooledChunks(): number {
  let n = 0;
  for (const l of chunkPool.values()) n += l.length;
  return n;
}
/** Eight poison bytes read as one double (finite and non-zero, so === compares the bits). */
const POISON_QWORD = new Float64Array(new Int32Array([POISON_WORD, POISON_WORD]).buffer)[0]!;
const WORDS_PER_PAGE = PAGE_SIZE >>> 2;

/* Per-frame metadata: META_STRIDE int32s per frame in one Int32Array per chunk. */
const META_SHIFT = 2;
const META_STRIDE = 1 << META_SHIFT;
/** struct page._count: references; 0 means the frame is free. */
const M_COUNT = 0;
/** struct page._mapcount + 1: page-table entries mapping the frame. */
const M_MAPCOUNT = 1;
/** get_user_pages references (a sanitizer's view; each is also counted in M_COUNT). */
const M_PINCOUNT = 2;
/** Page flags. */
const M_FLAGS = 3;
const PG_dirty = 1;

/** Counters as kept by PhysicalMemory, or as recomputed by recount(). */
export interface RamCounts {
  freePages: number;
  usedPages: number;
  pinnedPages: number;
}

export class PhysicalMemory {
  /** Frames in the machine; valid pfns are 0 .. totalPages - 1. */
  readonly totalPages: number;

  private readonly report: RamReport;
  /** Frame storage per chunk (undefined until the chunk is first used). */
  private readonly buffers: (ArrayBuffer | undefined)[] = [];
  /** The same buffers as bytes. */
  private readonly bytes: (Uint8Array | undefined)[] = [];
  /** The same buffers as int32 words, for filling and checking poison a word at a time. */
  private readonly words: (Int32Array | undefined)[] = [];
  /** The same buffers as doubles: the poison check compares eight bytes at a time. */
  private readonly qwords: (Float64Array | undefined)[] = [];
  /** Per-frame metadata per chunk, META_STRIDE int32s per frame. */
  private readonly meta: (Int32Array | undefined)[] = [];
  private chunks = 0;
  /** dispose() ran: the chunks went back to the pool. */
  disposed = false;
  /** Devices' hooks run at dispose (the GTT gives its PTE arrays back). */
  private disposers: (() => void)[] | null = null;

  /** Runs `fn` when the machine's memory is disposed (a device giving back what it pooled). */
  onDispose(fn: () => void): void {
    (this.disposers ??= []).push(fn);
  }
  /** Frames >= nextUnused have never been allocated (bump pointer). */
  private nextUnused = 0;
  /**
   * Free frames that have been used before, as a stack of extents: pairs (first pfn, length).
   * alloc_page pops the first frame of the top extent, so frames freed in either ascending or
   * descending order come back ascending and physically contiguous. Every listed frame has
   * refcount 0 and is poisoned; no frame is listed twice.
   */
  private readonly freeList: number[] = [];
  /** Frames with refcount > 0. */
  private used = 0;
  /** Frames with pincount > 0. */
  private pinned = 0;

  constructor(totalBytes: number, report: RamReport) {
    if (!Number.isSafeInteger(totalBytes) || totalBytes < 0 || totalBytes % PAGE_SIZE !== 0) {
      throw new RangeError(`PhysicalMemory: totalBytes ${totalBytes} is not a multiple of ${PAGE_SIZE}`);
    }
    const pages = totalBytes / PAGE_SIZE;
    if (pages > 0x7fffffff) throw new RangeError(`PhysicalMemory: ${totalBytes} bytes is too much RAM`);
    this.totalPages = pages;
    this.report = report;
  }

  /** Frames on the free list or never used. O(1). */
  get freePages(): number {
    return this.totalPages - this.used;
  }
  /** Frames with refcount > 0. O(1). */
  get usedPages(): number {
    return this.used;
  }
  /** Frames with pincount > 0. O(1). */
  get pinnedPages(): number {
    return this.pinned;
  }
  /** ArrayBuffer chunks allocated so far (0 right after boot). */
  get chunksAllocated(): number {
    return this.chunks;
  }

  // ---------------------------------------------------------------------------------------------
  // Allocation

  /**
   * Allocates one zero-filled frame with refcount 1: the most recently freed frame first, else the
   * lowest never-used one. Returns its pfn, or -1 when memory is exhausted (no finding: the caller
   * turns it into -ENOMEM).
   */
  alloc_page(): number {
    const fl = this.freeList;
    const n = fl.length;
    let pfn: number;
    if (n > 0) {
      pfn = fl[n - 2]!;
      // Before taking it: a finding raised here may unwind the caller with the frame still free.
      this.checkPoison(pfn);
      const len = fl[n - 1]!;
      if (len === 1) {
        fl.length = n - 2;
      } else {
        fl[n - 2] = pfn + 1;
        fl[n - 1] = len - 1;
      }
      const w = (pfn & CHUNK_MASK) * WORDS_PER_PAGE;
      this.words[pfn >>> CHUNK_SHIFT]!.fill(0, w, w + WORDS_PER_PAGE);
    } else if (this.nextUnused < this.totalPages) {
      // Never used: a fresh ArrayBuffer is already zero.
      pfn = this.nextUnused++;
      this.ensureChunk(pfn >>> CHUNK_SHIFT);
    } else {
      return -1;
    }
    const m = this.meta[pfn >>> CHUNK_SHIFT]!;
    const i = (pfn & CHUNK_MASK) << META_SHIFT;
    m[i + M_COUNT] = 1;
    m[i + M_MAPCOUNT] = 0;
    m[i + M_PINCOUNT] = 0;
    m[i + M_FLAGS] = 0;
    this.used++;
    return pfn;
  }

  /** Takes a reference on an allocated frame. */
  get_page(pfn: number): void {
    const m = this.liveMeta(pfn, 'get_page');
    if (m === undefined) return;
    m[((pfn & CHUNK_MASK) << META_SHIFT) + M_COUNT]!++;
  }

  /** Drops a reference; the last one frees the frame (poisoned, back on the free list). */
  put_page(pfn: number): void {
    const m = this.liveMeta(pfn, 'put_page');
    if (m === undefined) return;
    this.dropRef(pfn, m, null);
  }

  /**
   * put_page on each frame in turn, then returns the freed frames to the free list highest first,
   * so that they are allocated again lowest first (Linux's release_pages()).
   */
  release_pages(pfns: ArrayLike<number>): void {
    const freed: number[] = [];
    try {
      for (let k = 0; k < pfns.length; k++) {
        const pfn = pfns[k]!;
        const m = this.liveMeta(pfn, 'release_pages');
        if (m !== undefined) this.dropRef(pfn, m, freed);
      }
    } finally {
      if (freed.length > 0) {
        freed.sort((a, b) => b - a);
        for (const pfn of freed) this.pushFree(pfn);
      }
    }
  }

  /** References to the frame (0 if free). */
  page_count(pfn: number): number {
    return this.query(pfn, 'page_count', M_COUNT);
  }

  /** True if the frame is free (never used, or its last reference was dropped). */
  isFree(pfn: number): boolean {
    if (!this.inRange(pfn, 'isFree')) return false;
    return this.field(pfn, M_COUNT) === 0;
  }

  // ---------------------------------------------------------------------------------------------
  // Reverse mapping count, pins, flags

  /** Page-table entries mapping the frame (Linux's page_mapcount(), 0-based). */
  page_mapcount(pfn: number): number {
    return this.query(pfn, 'page_mapcount', M_MAPCOUNT);
  }
  /** A new page-table entry maps the frame. */
  page_add_rmap(pfn: number): void {
    this.incMapcount(pfn, 'page_add_rmap');
  }
  /** A page-table entry mapping the frame was duplicated (fork). */
  page_dup_rmap(pfn: number): void {
    this.incMapcount(pfn, 'page_dup_rmap');
  }
  /** A page-table entry mapping the frame was removed. */
  page_remove_rmap(pfn: number): void {
    const m = this.liveMeta(pfn, 'page_remove_rmap');
    if (m === undefined) return;
    const i = ((pfn & CHUNK_MASK) << META_SHIFT) + M_MAPCOUNT;
    if (m[i] === 0) {
      this.report('BUG', `page_remove_rmap: mapcount underflow on pfn ${hex(pfn)}`);
      return;
    }
    m[i]!--;
  }

  /** Records a get_user_pages reference (the caller also holds a page reference for it). */
  pin(pfn: number): void {
    const m = this.liveMeta(pfn, 'pin');
    if (m === undefined) return;
    const i = ((pfn & CHUNK_MASK) << META_SHIFT) + M_PINCOUNT;
    if (m[i]!++ === 0) this.pinned++;
  }
  /** Forgets a get_user_pages reference (before the matching put_page). */
  unpin(pfn: number): void {
    const m = this.liveMeta(pfn, 'unpin');
    if (m === undefined) return;
    const i = ((pfn & CHUNK_MASK) << META_SHIFT) + M_PINCOUNT;
    if (m[i] === 0) {
      this.report('BUG', `unpin: pfn ${hex(pfn)} is not pinned`);
      return;
    }
    if (--m[i]! === 0) this.pinned--;
  }
  /** get_user_pages references recorded on the frame (0 if free). */
  page_pincount(pfn: number): number {
    return this.query(pfn, 'page_pincount', M_PINCOUNT);
  }

  /** Sets PG_dirty; returns true if the frame was clean. */
  set_page_dirty(pfn: number): boolean {
    const m = this.liveMeta(pfn, 'set_page_dirty');
    if (m === undefined) return false;
    const i = ((pfn & CHUNK_MASK) << META_SHIFT) + M_FLAGS;
    const was = m[i]!;
    m[i] = was | PG_dirty;
    return (was & PG_dirty) === 0;
  }
  /** Clears PG_dirty; returns true if the frame was dirty. */
  clear_page_dirty(pfn: number): boolean {
    const m = this.liveMeta(pfn, 'clear_page_dirty');
    if (m === undefined) return false;
    const i = ((pfn & CHUNK_MASK) << META_SHIFT) + M_FLAGS;
    const was = m[i]!;
    m[i] = was & ~PG_dirty;
    return (was & PG_dirty) !== 0;
  }
  /** PG_dirty (false if free). */
  PageDirty(pfn: number): boolean {
    return (this.query(pfn, 'PageDirty', M_FLAGS) & PG_dirty) !== 0;
  }

  // ---------------------------------------------------------------------------------------------
  // Data

  /**
   * A 4096-byte view of the frame. Free frames may be looked at (a stale pointer does not fault
   * in the kernel either); a CPU write to a free frame is caught when the frame is reallocated
   * and its poison is found overwritten.
   */
  frame(pfn: number): Uint8Array {
    if (!this.inRange(pfn, 'frame')) return new Uint8Array(PAGE_SIZE).fill(POISON_BYTE);
    const ci = pfn >>> CHUNK_SHIFT;
    // A new view over the buffer is markedly cheaper than subarray().
    return new Uint8Array(
      this.buffers[ci] ?? this.ensureChunk(ci),
      (pfn & CHUNK_MASK) << PAGE_SHIFT,
      PAGE_SIZE,
    );
  }

  /** How many frames from pfn on (at most maxPages) lie in pfn's chunk, i.e. can share one view. */
  contiguousRun(pfn: number, maxPages: number): number {
    if (!this.inRange(pfn, 'contiguousRun')) return 0;
    if (!(maxPages >= 0) || !Number.isInteger(maxPages)) {
      this.report('BUG', `contiguousRun: invalid page count ${String(maxPages)}`);
      return 0;
    }
    const chunkEnd = Math.min(((pfn >>> CHUNK_SHIFT) + 1) * CHUNK_PAGES, this.totalPages);
    return Math.min(maxPages, chunkEnd - pfn);
  }

  /** One view over npages frames from pfn on; they must lie in one chunk (see contiguousRun). */
  span(pfn: number, npages: number): Uint8Array {
    if (pfn >>> 0 !== pfn || pfn >= this.totalPages) {
      throw new RangeError(`span: pfn ${String(pfn)} out of range`);
    }
    if (!(npages >= 0) || !Number.isInteger(npages)) throw new RangeError(`span: npages ${String(npages)}`);
    const ci = pfn >>> CHUNK_SHIFT;
    const first = pfn & CHUNK_MASK;
    const chunkLen = Math.min(CHUNK_PAGES, this.totalPages - ci * CHUNK_PAGES);
    if (first + npages > chunkLen) {
      throw new RangeError(`span: ${npages} frames from pfn ${hex(pfn)} cross a chunk boundary`);
    }
    return new Uint8Array(
      this.buffers[ci] ?? this.ensureChunk(ci),
      first << PAGE_SHIFT,
      npages << PAGE_SHIFT,
    );
  }

  /** Copies a whole frame (both must be allocated). */
  copy_page(dstPfn: number, srcPfn: number): void {
    if (this.liveMeta(dstPfn, 'copy_page') === undefined) return;
    if (this.liveMeta(srcPfn, 'copy_page') === undefined) return;
    if (dstPfn === srcPfn) return;
    this.frame(dstPfn).set(this.frame(srcPfn));
  }

  // ---------------------------------------------------------------------------------------------
  // Device (GPU) access

  /**
   * Checks a device access to the frame: a free frame is a use-after-free finding and false (the
   * access must then read poison and drop writes). An out-of-range pfn is a BUG and false.
   */
  checkDeviceAccess(pfn: number): boolean {
    if (!this.inRange(pfn, 'GPU access')) return false;
    if (this.field(pfn, M_COUNT) !== 0) return true;
    this.report('use-after-free', `GPU access to free frame pfn ${hex(pfn)}`);
    return false;
  }

  /** The device reads dst.length bytes at offset in the frame; returns false if the access was bad. */
  deviceRead(pfn: number, offset: number, dst: Uint8Array): boolean {
    if (!this.deviceArgs(pfn, offset, dst.length, 'deviceRead')) return false;
    if (!this.checkDeviceAccess(pfn)) {
      dst.fill(POISON_BYTE);
      return false;
    }
    const off = ((pfn & CHUNK_MASK) << PAGE_SHIFT) + offset;
    dst.set(new Uint8Array(this.buffers[pfn >>> CHUNK_SHIFT]!, off, dst.length));
    return true;
  }

  /** The device writes src at offset in the frame; dropped (false) if the access was bad. */
  deviceWrite(pfn: number, offset: number, src: Uint8Array): boolean {
    if (!this.deviceArgs(pfn, offset, src.length, 'deviceWrite')) return false;
    if (!this.checkDeviceAccess(pfn)) return false;
    this.bytes[pfn >>> CHUNK_SHIFT]!.set(src, ((pfn & CHUNK_MASK) << PAGE_SHIFT) + offset);
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // Checking

  /**
   * Recomputes the counters from first principles: usedPages and pinnedPages by scanning every
   * frame's metadata, freePages by walking the free list (counting listed frames whose refcount is
   * 0) plus the never-used frames. freePages + usedPages === totalPages holds only if the free
   * list and the metadata agree.
   */
  recount(): RamCounts {
    let used = 0;
    let pinned = 0;
    for (const m of this.meta) {
      if (m === undefined) continue;
      for (let i = 0; i < m.length; i += META_STRIDE) {
        if (m[i + M_COUNT]! > 0) used++;
        if (m[i + M_PINCOUNT]! > 0) pinned++;
      }
    }
    let free = this.totalPages - this.nextUnused;
    const fl = this.freeList;
    for (let k = 0; k < fl.length; k += 2) {
      const start = fl[k]!;
      const end = start + fl[k + 1]!;
      for (let pfn = start; pfn < end; pfn++) if (this.field(pfn, M_COUNT) === 0) free++;
    }
    return { freePages: free, usedPages: used, pinnedPages: pinned };
  }

  /** Calls cb for every allocated frame, in ascending pfn order. */
  forEachUsedFrame(cb: (pfn: number) => void): void {
    const meta = this.meta;
    for (let ci = 0; ci < meta.length; ci++) {
      const m = meta[ci];
      if (m === undefined) continue;
      const base = ci << CHUNK_SHIFT;
      for (let i = 0; i < m.length; i += META_STRIDE) {
        if (m[i + M_COUNT]! > 0) cb(base + (i >>> META_SHIFT));
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Internals

  private ensureChunk(ci: number): ArrayBuffer {
    const have = this.buffers[ci];
    if (have !== undefined) return have;
    const pages = Math.min(CHUNK_PAGES, this.totalPages - ci * CHUNK_PAGES);
    // A chunk a disposed machine gave back is as good as new: it was zeroed there.
    const pooled = chunkPool.get(pages)?.pop();
    let buf: ArrayBuffer;
    if (pooled !== undefined) {
      buf = pooled.buf;
      pooledBytes -= buf.byteLength;
      this.bytes[ci] = pooled.bytes;
      this.words[ci] = pooled.words;
      this.qwords[ci] = pooled.qwords;
      this.meta[ci] = pooled.meta;
    } else {
      buf = new ArrayBuffer(pages * PAGE_SIZE);
      this.bytes[ci] = new Uint8Array(buf);
      this.words[ci] = new Int32Array(buf);
      this.qwords[ci] = new Float64Array(buf);
      this.meta[ci] = new Int32Array(pages * META_STRIDE);
    }
    this.buffers[ci] = buf;
    this.chunks++;
    return buf;
  }

  /**
   * The machine is gone for good (the explorer discards one per schedule): its chunks are zeroed
   * where frames were ever handed out (bytes and metadata) and kept for the next machine, which
   * saves allocating and collecting them per run. The memory must not be used afterwards.
   */
  dispose(): void {
    if (this.disposed) return;
    if (this.disposers) for (const d of this.disposers) d();
    for (let ci = 0; ci < this.buffers.length; ci++) {
      const buf = this.buffers[ci];
      if (buf === undefined) continue;
      const pages = buf.byteLength / PAGE_SIZE;
      const used = Math.min(pages, Math.max(0, this.nextUnused - ci * CHUNK_PAGES));
      let list = chunkPool.get(pages);
      if (list === undefined) {
        list = [];
        chunkPool.set(pages, list);
      }
      if (list.length < CHUNK_POOL_MAX && pooledBytes + buf.byteLength <= CHUNK_POOL_BYTES) {
        const bytes = this.bytes[ci]!;
        const meta = this.meta[ci]!;
        bytes.fill(0, 0, used * PAGE_SIZE);
        meta.fill(0, 0, used * META_STRIDE);
        list.push({ buf, bytes, words: this.words[ci]!, qwords: this.qwords[ci]!, meta });
        pooledBytes += buf.byteLength;
      }
      this.buffers[ci] = undefined;
      this.bytes[ci] = undefined;
      this.words[ci] = undefined;
      this.qwords[ci] = undefined;
      this.meta[ci] = undefined;
    }
    this.disposed = true;
  }

  /** pfn is an integer frame number of this machine; otherwise a BUG. */
  private inRange(pfn: number, op: string): boolean {
    if (pfn >>> 0 === pfn && pfn < this.totalPages) return true;
    const what = Number.isInteger(pfn) ? hex(pfn) : String(pfn);
    this.report('BUG', `${op}: pfn ${what} out of range (${this.totalPages} frames)`);
    return false;
  }

  /** The metadata array of an allocated frame; otherwise a BUG and undefined. */
  private liveMeta(pfn: number, op: string): Int32Array | undefined {
    if (!this.inRange(pfn, op)) return undefined;
    const m = this.meta[pfn >>> CHUNK_SHIFT];
    if (m !== undefined && m[((pfn & CHUNK_MASK) << META_SHIFT) + M_COUNT]! > 0) return m;
    this.report('BUG', `${op}: pfn ${hex(pfn)} is a free frame`);
    return undefined;
  }

  /** A metadata field of an in-range frame (0 for a frame of a chunk not yet allocated). */
  private field(pfn: number, f: number): number {
    const m = this.meta[pfn >>> CHUNK_SHIFT];
    return m === undefined ? 0 : m[((pfn & CHUNK_MASK) << META_SHIFT) + f]!;
  }

  private query(pfn: number, op: string, f: number): number {
    return this.inRange(pfn, op) ? this.field(pfn, f) : 0;
  }

  private incMapcount(pfn: number, op: string): void {
    const m = this.liveMeta(pfn, op);
    if (m === undefined) return;
    m[((pfn & CHUNK_MASK) << META_SHIFT) + M_MAPCOUNT]!++;
  }

  /**
   * Drops one reference of an allocated frame. At zero the frame is freed: metadata cleared,
   * poisoned, and pushed on the free list (or appended to `deferred`, which the caller pushes).
   * Freeing a frame still mapped or pinned is "Bad page state", reported once the state is
   * consistent.
   */
  private dropRef(pfn: number, m: Int32Array, deferred: number[] | null): void {
    const i = (pfn & CHUNK_MASK) << META_SHIFT;
    const count = m[i + M_COUNT]! - 1;
    m[i + M_COUNT] = count;
    if (count > 0) return;
    const mapcount = m[i + M_MAPCOUNT]!;
    const pincount = m[i + M_PINCOUNT]!;
    m[i + M_MAPCOUNT] = 0;
    m[i + M_PINCOUNT] = 0;
    m[i + M_FLAGS] = 0;
    if (pincount > 0) this.pinned--;
    this.used--;
    const w = (pfn & CHUNK_MASK) * WORDS_PER_PAGE;
    this.words[pfn >>> CHUNK_SHIFT]!.fill(POISON_WORD, w, w + WORDS_PER_PAGE);
    if (deferred === null) this.pushFree(pfn);
    else deferred.push(pfn);
    if (mapcount !== 0 || pincount !== 0) {
      this.report(
        'BUG',
        `Bad page state: pfn ${hex(pfn)} freed with mapcount ${mapcount} pincount ${pincount}`,
      );
    }
  }

  /** Pushes a freed frame, growing the top extent when the frame is adjacent to it. */
  private pushFree(pfn: number): void {
    const fl = this.freeList;
    const n = fl.length;
    if (n > 0) {
      const start = fl[n - 2]!;
      const len = fl[n - 1]!;
      if (pfn === start - 1) {
        fl[n - 2] = pfn;
        fl[n - 1] = len + 1;
        return;
      }
      if (pfn === start + len) {
        fl[n - 1] = len + 1;
        return;
      }
    }
    fl.push(pfn, 1);
  }

  /**
   * CONFIG_PAGE_POISONING's check on allocation: a free frame whose poison was overwritten was
   * written after it was freed. The poison is restored and the write reported.
   */
  private checkPoison(pfn: number): void {
    const q = this.qwords[pfn >>> CHUNK_SHIFT]!;
    const qbase = (pfn & CHUNK_MASK) * (WORDS_PER_PAGE / 2);
    const qend = qbase + WORDS_PER_PAGE / 2;
    let j = qbase;
    while (j < qend && q[j] === POISON_QWORD) j++;
    if (j === qend) return;
    const w = this.words[pfn >>> CHUNK_SHIFT]!;
    const base = (pfn & CHUNK_MASK) * WORDS_PER_PAGE;
    const end = base + WORDS_PER_PAGE;
    let k = base;
    while (k < end && w[k] === POISON_WORD) k++;
    const b = this.bytes[pfn >>> CHUNK_SHIFT]!;
    const off = (pfn & CHUNK_MASK) << PAGE_SHIFT;
    let at = k * 4;
    while (b[at] === POISON_BYTE) at++;
    w.fill(POISON_WORD, base, end);
    this.report(
      'use-after-free',
      `write to free frame pfn ${hex(pfn)} found at reallocation: poison overwritten at offset ${hex(at - off)}`,
    );
  }

  /** offset/len lie within one frame and pfn is in range; otherwise a BUG. */
  private deviceArgs(pfn: number, offset: number, len: number, op: string): boolean {
    if (!this.inRange(pfn, op)) return false;
    if (offset >>> 0 === offset && offset + len <= PAGE_SIZE) return true;
    this.report('BUG', `${op}: ${len} bytes at offset ${String(offset)} overrun frame ${hex(pfn)}`);
    return false;
  }
}
