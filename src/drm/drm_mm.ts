import { ERRNO } from '../base/errno.js';

/**
 * drm_mm: the DRM range allocator (Linux 3.16 drivers/gpu/drm/drm_mm.c), used by the mmap offset
 * manager (fake offsets, in pages) and by drivers for GPU address spaces (the GTT, in bytes).
 *
 * The structure is the kernel's: allocated nodes on an address-ordered list that starts and ends
 * at a sentinel `head_node` (whose start is the end of the managed range and whose size is
 * negative, so "the hole after the head" is the first gap); every node that has free space after
 * it is on the `hole_stack`, most recently created hole first. A default search takes the first
 * hole on that stack that fits — so allocation order is "most recently freed space first", not
 * lowest address, exactly as 3.16 behaves. `DRM_MM_SEARCH_BEST` keeps 3.16's comparison of the
 * hole node's own size (not the hole's size), as 3.16 did (fixed upstream later).
 *
 * Two placement APIs: the kernel's (`insert_node`, `insert_node_generic`,
 * `insert_node_in_range_generic` with DRM_MM_SEARCH_* / DRM_MM_CREATE_* flags: hole-stack order,
 * for fidelity) and an address-ordered convenience (`insert_node_in_range(..., 'bottom-up' |
 * 'top-down')`: lowest / highest fitting address, for callers that want predictable placement).
 * `reserve_node`, `remove_node`, `used` and `largestHole()` serve both.
 *
 * Eviction scanning (`init_scan` / `scan_add_block` / `scan_remove_block`) temporarily unlinks
 * the scanned nodes, as the kernel does: blocks must be removed in the reverse order of adding,
 * and nothing may be inserted or removed while a scan is in progress.
 *
 * Addresses are plain numbers (GTT offsets up to 2^48): no 32-bit bitwise operators touch them.
 * No locking: the owner serialises (struct_mutex for the GTT, the manager's lock for offsets).
 */

export const DRM_MM_SEARCH_DEFAULT = 0;
/** Smallest fitting hole (by 3.16's measure, see above). */
export const DRM_MM_SEARCH_BEST = 1 << 0;
/** Walk the hole stack from its oldest end. */
export const DRM_MM_SEARCH_BELOW = 1 << 1;

export const DRM_MM_CREATE_DEFAULT = 0;
/** Place the node at the top of the hole. */
export const DRM_MM_CREATE_TOP = 1 << 0;

/** A range, adjusted in place by `color_adjust`. */
export interface DrmMmRange {
  start: number;
  end: number;
}

/** struct drm_mm_node: embed one in whatever owns the range. */
export class DrmMmNode {
  start = 0;
  size = 0;
  /** Driver's colour (i915: cache level), seen by `color_adjust`. */
  color = 0;
  allocated = false;
  /** There is free space between this node and the next one. */
  hole_follows = false;
  scanned_block = false;
  scanned_preceeds_hole = false;
  mm: DrmMm | null = null;
  /** @internal address-ordered node list (the head node closes the ring). */
  node_prev: DrmMmNode | null = null;
  /** @internal */
  node_next: DrmMmNode | null = null;
  /** @internal hole stack links. */
  hole_prev: DrmMmNode | null = null;
  /** @internal */
  hole_next: DrmMmNode | null = null;

  /** Exclusive end of the allocation. */
  get end(): number {
    return this.start + this.size;
  }
}

/** drm_mm_node_allocated(). */
export function drm_mm_node_allocated(node: DrmMmNode): boolean {
  return node.allocated;
}

/** check_free_hole(): `size` bytes fit in [start, end) once `start` is aligned up. */
function check_free_hole(start: number, end: number, size: number, alignment: number): boolean {
  if (end - start < size) return false;
  if (alignment) {
    const tmp = start % alignment;
    if (tmp) start += alignment - tmp;
  }
  return end >= start + size;
}

export class DrmMm {
  /** Sentinel: start = end of the range, size = -(range size); its hole is the initial gap. */
  readonly head_node = new DrmMmNode();
  /** Sentinel of the hole stack. */
  private readonly holeStack = new DrmMmNode();
  /**
   * Optional hook narrowing a hole for a node of `color` next to `hole` (i915 keeps a guard page
   * between objects of different cache levels on non-LLC parts).
   */
  color_adjust: ((hole: DrmMmNode, color: number, range: DrmMmRange) => void) | null = null;

  /** Bytes allocated (sum of node sizes). */
  used = 0;
  scanned_blocks = 0;
  private scan_size = 0;
  private scan_alignment = 0;
  private scan_color = 0;
  private scan_check_range = false;
  private scan_start = 0;
  private scan_end = 0;
  private scan_hit_start = 0;
  private scan_hit_end = 0;
  private prev_scanned_node: DrmMmNode | null = null;

  /** drm_mm_init(): manage [start, start + size). */
  constructor(start: number, size: number) {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(size) || start < 0 || size < 0) {
      throw new RangeError(`drm_mm_init: bad range ${start}+${size}`);
    }
    const h = this.head_node;
    h.node_next = h.node_prev = h;
    h.start = start + size;
    h.size = start - h.start;
    h.allocated = false;
    h.mm = this;
    const s = this.holeStack;
    s.hole_next = s.hole_prev = s;
    h.hole_follows = size > 0;
    if (h.hole_follows) this.holePush(h);
  }

  /** Start of the managed range. */
  get start(): number {
    return this.head_node.start + this.head_node.size;
  }
  /** End (exclusive) of the managed range. */
  get end(): number {
    return this.head_node.start;
  }

  /** drm_mm_hole_node_start(). */
  hole_start(node: DrmMmNode): number {
    return node.start + node.size;
  }
  /** drm_mm_hole_node_end(): the next node's start (the range end after the last node). */
  hole_end(node: DrmMmNode): number {
    return node.node_next!.start;
  }

  /** The next allocated node in address order, or null after the last. */
  next_node(node: DrmMmNode): DrmMmNode | null {
    const n = node.node_next;
    return n === null || n === this.head_node ? null : n;
  }
  /** The previous allocated node in address order, or null before the first. */
  prev_node(node: DrmMmNode): DrmMmNode | null {
    const p = node.node_prev;
    return p === null || p === this.head_node ? null : p;
  }

  /** drm_mm_for_each_node(): allocated nodes in address order. */
  *nodes(): IterableIterator<DrmMmNode> {
    for (let n = this.head_node.node_next!; n !== this.head_node;) {
      const next = n.node_next!;
      yield n;
      n = next;
    }
  }

  /** drm_mm_for_each_hole(): [node before the hole, hole start, hole end], hole-stack order. */
  *holes(backwards = false): IterableIterator<[DrmMmNode, number, number]> {
    const s = this.holeStack;
    for (
      let n = backwards ? s.hole_prev! : s.hole_next!;
      n !== s;
      n = backwards ? n.hole_prev! : n.hole_next!
    ) {
      yield [n, this.hole_start(n), this.hole_end(n)];
    }
  }

  /** drm_mm_clean(): nothing allocated. */
  clean(): boolean {
    return this.head_node.node_next === this.head_node;
  }

  /** drm_mm_takedown(): false (the kernel WARNs) if nodes are still allocated. */
  takedown(): boolean {
    return this.clean();
  }

  // ---- allocation -------------------------------------------------------------------------------

  /** drm_mm_insert_node(): anywhere in the range. 0 or -ENOSPC. */
  insert_node(node: DrmMmNode, size: number, alignment = 0, flags = DRM_MM_SEARCH_DEFAULT): number {
    return this.insert_node_in_range_generic(node, size, alignment, 0, this.start, this.end, flags, 0);
  }

  /** drm_mm_insert_node_generic(). */
  insert_node_generic(
    node: DrmMmNode,
    size: number,
    alignment: number,
    color: number,
    sflags: number,
    aflags: number,
  ): number {
    return this.insert_node_in_range_generic(
      node,
      size,
      alignment,
      color,
      this.start,
      this.end,
      sflags,
      aflags,
    );
  }

  /** drm_mm_insert_node_in_range_generic(): [start, end) bounds the node. 0 or -ENOSPC. */
  insert_node_in_range_generic(
    node: DrmMmNode,
    size: number,
    alignment: number,
    color: number,
    start: number,
    end: number,
    sflags: number,
    aflags: number,
  ): number {
    if (node.allocated) throw new Error('drm_mm: inserting an allocated node');
    if (this.scanned_blocks) throw new Error('drm_mm: insert during an eviction scan');
    if (!Number.isSafeInteger(size) || size < 0 || !Number.isSafeInteger(alignment) || alignment < 0) {
      throw new RangeError(`drm_mm: bad size ${size} / alignment ${alignment}`);
    }
    const hole = this.search_free(size, alignment, color, start, end, sflags);
    if (!hole) return -ERRNO.ENOSPC;
    this.insert_helper(hole, node, size, alignment, color, start, end, aflags);
    return 0;
  }

  /**
   * Address-ordered placement (a convenience for allocators that want predictable addresses, not
   * 3.16's hole-stack order): the lowest fitting address in [start, end) for 'bottom-up', the
   * highest for 'top-down'. 0 or -ENOSPC.
   */
  insert_node_in_range(
    node: DrmMmNode,
    size: number,
    alignment = 0,
    start = this.start,
    end = this.end,
    mode: 'bottom-up' | 'top-down' = 'bottom-up',
    color = 0,
  ): number {
    if (node.allocated) throw new Error('drm_mm: inserting an allocated node');
    if (this.scanned_blocks) throw new Error('drm_mm: insert during an eviction scan');
    if (!Number.isSafeInteger(size) || size < 0 || !Number.isSafeInteger(alignment) || alignment < 0) {
      throw new RangeError(`drm_mm: bad size ${size} / alignment ${alignment}`);
    }
    const top = mode === 'top-down';
    const h = this.head_node;
    for (let n = top ? h.node_prev! : h; ; n = top ? n.node_prev! : n.node_next!) {
      if (n.hole_follows) {
        const r: DrmMmRange = {
          start: Math.max(this.hole_start(n), start),
          end: Math.min(this.hole_end(n), end),
        };
        if (this.color_adjust) this.color_adjust(n, color, r);
        if (r.end > r.start && check_free_hole(r.start, r.end, size, alignment)) {
          this.insert_helper(n, node, size, alignment, color, start, end, top ? DRM_MM_CREATE_TOP : 0);
          return 0;
        }
      }
      if (top ? n === h : n.node_next === h) return -ERRNO.ENOSPC;
    }
  }

  /** Size of the largest hole (0 when full). */
  largestHole(): number {
    let m = 0;
    for (const [, hs, he] of this.holes()) m = Math.max(m, he - hs);
    return m;
  }

  /** drm_mm_search_free_in_range_generic(). */
  private search_free(
    size: number,
    alignment: number,
    color: number,
    start: number,
    end: number,
    flags: number,
  ): DrmMmNode | null {
    let best: DrmMmNode | null = null;
    let best_size = Number.POSITIVE_INFINITY;
    for (const [entry, hs, he] of this.holes((flags & DRM_MM_SEARCH_BELOW) !== 0)) {
      const r: DrmMmRange = { start: Math.max(hs, start), end: Math.min(he, end) };
      if (this.color_adjust) {
        this.color_adjust(entry, color, r);
        if (r.end <= r.start) continue;
      }
      if (!check_free_hole(r.start, r.end, size, alignment)) continue;
      if (!(flags & DRM_MM_SEARCH_BEST)) return entry;
      // 3.16 compares the size of the node before the hole, not the hole.
      if (entry.size < best_size) {
        best = entry;
        best_size = entry.size;
      }
    }
    return best;
  }

  /** drm_mm_insert_helper_range(): carve `node` out of the hole after `hole`. */
  private insert_helper(
    hole: DrmMmNode,
    node: DrmMmNode,
    size: number,
    alignment: number,
    color: number,
    start: number,
    end: number,
    flags: number,
  ): void {
    const hole_start = this.hole_start(hole);
    const hole_end = this.hole_end(hole);
    const r: DrmMmRange = { start: Math.max(hole_start, start), end: Math.min(hole_end, end) };
    if (this.color_adjust) this.color_adjust(hole, color, r);
    if (flags & DRM_MM_CREATE_TOP) r.start = r.end - size;
    if (alignment) {
      const tmp = r.start % alignment;
      if (tmp) r.start += flags & DRM_MM_CREATE_TOP ? -tmp : alignment - tmp;
    }
    if (r.start < hole_start || r.start + size > r.end) {
      throw new Error(`drm_mm: node [${r.start}, +${size}) does not fit hole [${hole_start}, ${hole_end})`);
    }
    if (r.start === hole_start) {
      hole.hole_follows = false;
      this.holeDel(hole);
    }
    node.start = r.start;
    node.size = size;
    node.mm = this;
    node.color = color;
    node.allocated = true;
    this.used += size;
    this.linkAfter(hole, node);
    node.hole_follows = false;
    if (this.hole_start(node) < hole_end) {
      this.holePush(node);
      node.hole_follows = true;
    }
  }

  /**
   * drm_mm_reserve_node(): place `node` at its preset start/size (or at `start`/`size` when
   * given). 0 or -ENOSPC.
   */
  reserve_node(node: DrmMmNode, start?: number, size?: number): number {
    if (node.allocated) throw new Error('drm_mm: reserving an allocated node');
    if (start !== undefined) node.start = start;
    if (size !== undefined) node.size = size;
    if (this.scanned_blocks) throw new Error('drm_mm: reserve during an eviction scan');
    const end = node.start + node.size;
    for (const [hole, hs, he] of this.holes()) {
      if (hs > node.start || he < end) continue;
      node.mm = this;
      node.allocated = true;
      this.used += node.size;
      this.linkAfter(hole, node);
      if (node.start === hs) {
        hole.hole_follows = false;
        this.holeDel(hole);
      }
      node.hole_follows = false;
      if (end !== he) {
        this.holePush(node);
        node.hole_follows = true;
      }
      return 0;
    }
    return -ERRNO.ENOSPC;
  }

  /** drm_mm_remove_node(): the space joins the hole before it, which moves to the stack's top. */
  remove_node(node: DrmMmNode): void {
    if (!node.allocated || node.mm !== this) throw new Error('drm_mm: removing a node not allocated here');
    if (node.scanned_block) throw new Error('drm_mm: removing a node in an eviction scan');
    const prev = node.node_prev!;
    if (node.hole_follows) this.holeDel(node);
    if (prev.hole_follows) {
      this.holeDel(prev);
      this.holePush(prev);
    } else {
      prev.hole_follows = true;
      this.holePush(prev);
    }
    prev.node_next = node.node_next;
    node.node_next!.node_prev = prev;
    node.node_prev = node.node_next = null;
    node.allocated = false;
    node.hole_follows = false;
    this.used -= node.size;
  }

  // ---- eviction scan ----------------------------------------------------------------------------

  /** drm_mm_init_scan(): look for room for `size` bytes anywhere. */
  init_scan(size: number, alignment: number, color: number): void {
    this.scan_color = color;
    this.scan_alignment = alignment;
    this.scan_size = size;
    this.scanned_blocks = 0;
    this.scan_hit_start = 0;
    this.scan_hit_end = 0;
    this.scan_check_range = false;
    this.prev_scanned_node = null;
  }

  /** drm_mm_init_scan_with_range(): the room must lie in [start, end). */
  init_scan_with_range(size: number, alignment: number, color: number, start: number, end: number): void {
    this.init_scan(size, alignment, color);
    this.scan_start = start;
    this.scan_end = end;
    this.scan_check_range = true;
  }

  /**
   * drm_mm_scan_add_block(): pretend `node` is free. True once the hole it leaves (merged with
   * its neighbours' holes) fits the scan's request.
   */
  scan_add_block(node: DrmMmNode): boolean {
    if (node.scanned_block) throw new Error('drm_mm: block scanned twice');
    this.scanned_blocks++;
    node.scanned_block = true;
    const prev = node.node_prev!;
    node.scanned_preceeds_hole = prev.hole_follows;
    prev.hole_follows = true;
    // Unlink from the address list; remember prev, chain the scanned nodes through node_next.
    prev.node_next = node.node_next;
    node.node_next!.node_prev = prev;
    node.node_next = this.prev_scanned_node;
    this.prev_scanned_node = node;

    const hole_start = this.hole_start(prev);
    const hole_end = this.hole_end(prev);
    const r: DrmMmRange = { start: hole_start, end: hole_end };
    if (this.scan_check_range) {
      r.start = Math.max(r.start, this.scan_start);
      r.end = Math.min(r.end, this.scan_end);
    }
    if (this.color_adjust) this.color_adjust(prev, this.scan_color, r);
    if (check_free_hole(r.start, r.end, this.scan_size, this.scan_alignment)) {
      this.scan_hit_start = hole_start;
      this.scan_hit_end = hole_end;
      return true;
    }
    return false;
  }

  /**
   * drm_mm_scan_remove_block(): undo scan_add_block (in reverse order of adding). True if the
   * node overlaps the hole found, i.e. must really be evicted.
   */
  scan_remove_block(node: DrmMmNode): boolean {
    if (!node.scanned_block) throw new Error('drm_mm: removing a block that was not scanned');
    if (node !== this.prev_scanned_node) throw new Error('drm_mm: scan blocks removed out of order');
    this.scanned_blocks--;
    node.scanned_block = false;
    this.prev_scanned_node = node.node_next;
    const prev = node.node_prev!;
    prev.hole_follows = node.scanned_preceeds_hole;
    this.linkAfter(prev, node);
    return this.hole_end(node) > this.scan_hit_start && node.start < this.scan_hit_end;
  }

  // ---- lists ------------------------------------------------------------------------------------

  private linkAfter(prev: DrmMmNode, node: DrmMmNode): void {
    const next = prev.node_next!;
    node.node_prev = prev;
    node.node_next = next;
    prev.node_next = node;
    next.node_prev = node;
  }

  private holePush(node: DrmMmNode): void {
    const s = this.holeStack;
    const first = s.hole_next!;
    node.hole_prev = s;
    node.hole_next = first;
    first.hole_prev = node;
    s.hole_next = node;
  }

  private holeDel(node: DrmMmNode): void {
    if (!node.hole_next || !node.hole_prev) return;
    node.hole_prev.hole_next = node.hole_next;
    node.hole_next.hole_prev = node.hole_prev;
    node.hole_prev = node.hole_next = null;
  }

  /** Allocations and holes in address order, one per line (drm_mm_dump_table). */
  dump(): string {
    const lines: string[] = [];
    const h = this.head_node;
    if (h.hole_follows) lines.push(`hole [${this.hole_start(h)}, ${this.hole_end(h)}) free`);
    for (const n of this.nodes()) {
      lines.push(`node [${n.start}, ${n.end}) used color ${n.color}`);
      if (n.hole_follows) lines.push(`hole [${this.hole_start(n)}, ${this.hole_end(n)}) free`);
    }
    return lines.join('\n');
  }
}
