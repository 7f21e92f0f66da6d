/**
 * An ordered set of NON-overlapping half-open segments `[start, end)`, keyed by start: the model's
 * counterpart of the kernel's VMA rbtree (`mm->mm_rb`, `find_vma`, `vm_prev`/`vm_next`,
 * `rb_subtree_gap` and `unmapped_area_topdown`).
 *
 * A balanced (AVL) tree of internal nodes, each holding one caller object. The segment's own
 * `start`/`end` are the keys (not copied), so the caller must not change them while the segment
 * is in the set except through `adjust()`; to move a segment, remove it, change it, insert it.
 * Each node is augmented with its subtree's lowest start, highest end and largest gap between
 * consecutive segments, which makes the top-down gap search O(log n) in practice.
 *
 * Addresses are plain numbers (up to 2^47 for user space, any safe integer works): no 32-bit
 * bitwise operators touch them.
 */

export interface Segment {
  start: number;
  /** Exclusive. */
  end: number;
}

interface SNode<T> {
  seg: T;
  left: SNode<T> | null;
  right: SNode<T> | null;
  parent: SNode<T> | null;
  height: number;
  /** Lowest start in the subtree (the leftmost segment's). */
  minStart: number;
  /** Highest end in the subtree (the rightmost segment's). */
  maxEnd: number;
  /** Largest gap between consecutive segments inside the subtree (0 if none). */
  maxGap: number;
}

export class SegmentSet<T extends Segment> implements Iterable<T> {
  private root: SNode<T> | null = null;
  private readonly nodes = new Map<T, SNode<T>>();
  /** Bumped on every insert/remove/adjust: lets iterators notice mutation and re-seek. */
  private version = 0;

  /** Number of segments. */
  get size(): number {
    return this.nodes.size;
  }

  /** Whether this exact segment object is in the set. */
  has(seg: T): boolean {
    return this.nodes.has(seg);
  }

  /**
   * Adds `seg`. Throws (a programming error) if it is empty, not finite, already present, or
   * overlaps a segment of the set. Linux: vma_link / __vma_link_rb.
   */
  insert(seg: T): void {
    const { start, end } = seg;
    if (!(start < end) || !Number.isFinite(start) || !Number.isFinite(end)) {
      throw new RangeError(`SegmentSet.insert: bad segment [${start}, ${end})`);
    }
    if (this.nodes.has(seg)) throw new Error(`SegmentSet.insert: [${start}, ${end}) already in the set`);
    const hit = this.findVmaNode(start);
    if (hit !== null && hit.seg.start < end) {
      throw new Error(`SegmentSet.insert: [${start}, ${end}) overlaps [${hit.seg.start}, ${hit.seg.end})`);
    }
    const node: SNode<T> = {
      seg,
      left: null,
      right: null,
      parent: null,
      height: 1,
      minStart: start,
      maxEnd: end,
      maxGap: 0,
    };
    this.nodes.set(seg, node);
    this.version++;
    let p = this.root;
    if (p === null) {
      this.root = node;
      return;
    }
    for (;;) {
      if (start < p.seg.start) {
        if (p.left === null) {
          p.left = node;
          break;
        }
        p = p.left;
      } else {
        if (p.right === null) {
          p.right = node;
          break;
        }
        p = p.right;
      }
    }
    node.parent = p;
    this.retrace(p, null);
  }

  /** Removes `seg` (by identity). Returns false if it was not in the set. Linux: vma_rb_erase. */
  remove(seg: T): boolean {
    const node = this.nodes.get(seg);
    if (node === undefined) return false;
    this.nodes.delete(seg);
    this.version++;
    const l = node.left;
    const r = node.right;
    let from: SNode<T> | null;
    let dirty: SNode<T> | null = null;
    if (l === null || r === null) {
      from = node.parent;
      this.replaceChild(node, l ?? r);
    } else {
      // Splice the successor y into node's place; y takes over node's cached values, which are
      // what node's ancestors were computed from.
      const y = leftmostNode(r);
      dirty = y;
      if (y === r) {
        from = y;
      } else {
        from = y.parent;
        this.replaceChild(y, y.right);
        y.right = r;
        r.parent = y;
      }
      y.left = l;
      l.parent = y;
      y.height = node.height;
      y.minStart = node.minStart;
      y.maxEnd = node.maxEnd;
      y.maxGap = node.maxGap;
      this.replaceChild(node, y);
    }
    this.retrace(from, dirty);
    node.left = node.right = node.parent = null;
    return true;
  }

  /**
   * Changes the bounds of `seg` in place (Linux: vma_adjust without a tree relink), keeping its
   * position: the new bounds must stay between its neighbours. Throws if `seg` is not in the set,
   * the segment would be empty, or it would overlap a neighbour.
   */
  adjust(seg: T, start: number, end: number): void {
    const node = this.mustNode(seg, 'adjust');
    if (!(start < end) || !Number.isFinite(start) || !Number.isFinite(end)) {
      throw new RangeError(`SegmentSet.adjust: bad bounds [${start}, ${end})`);
    }
    const p = predecessorNode(node);
    const n = successorNode(node);
    if ((p !== null && p.seg.end > start) || (n !== null && n.seg.start < end)) {
      throw new Error(
        `SegmentSet.adjust: [${start}, ${end}) would overlap a neighbour of [${seg.start}, ${seg.end})`,
      );
    }
    seg.start = start;
    seg.end = end;
    this.version++;
    for (let a: SNode<T> | null = node; a !== null; a = a.parent) update(a);
  }

  /** The segment containing `addr` (start <= addr < end), or undefined. */
  find(addr: number): T | undefined {
    const n = this.findVmaNode(addr);
    return n !== null && n.seg.start <= addr ? n.seg : undefined;
  }

  /**
   * Linux mm/mmap.c: find_vma — the first segment with `end > addr`, which may start above `addr`
   * (callers check `start <= addr` themselves), or undefined.
   */
  find_vma(addr: number): T | undefined {
    return this.findVmaNode(addr)?.seg;
  }

  /** The segment before `seg` (`vm_prev`), or undefined. Throws if `seg` is not in the set. */
  prev(seg: T): T | undefined {
    return predecessorNode(this.mustNode(seg, 'prev'))?.seg;
  }

  /** The segment after `seg` (`vm_next`), or undefined. Throws if `seg` is not in the set. */
  next(seg: T): T | undefined {
    return successorNode(this.mustNode(seg, 'next'))?.seg;
  }

  /** The lowest segment, or undefined. */
  first(): T | undefined {
    return this.root === null ? undefined : leftmostNode(this.root).seg;
  }

  /** The highest segment, or undefined. */
  last(): T | undefined {
    let n = this.root;
    if (n === null) return undefined;
    while (n.right !== null) n = n.right;
    return n.seg;
  }

  /**
   * Segments intersecting `[start, end)`, in ascending order.
   *
   * Mutation during iteration: while the caller does not change the set, each step is O(1)
   * amortized. If the caller does insert, remove or adjust segments between steps (munmap removing
   * the segment it was just given, say), the iterator notices and re-seeks in O(log n): it resumes at
   * the first segment whose end is above the end the previously yielded segment had when it was
   * yielded. So segments inserted below that point are not visited, segments at or above it are,
   * and nothing is visited twice.
   */
  *range(start: number, end: number): Generator<T, void, undefined> {
    if (!(start < end)) return;
    let version = this.version;
    let node = this.findVmaNode(start);
    while (node !== null && node.seg.start < end) {
      const seg = node.seg;
      const segEnd = seg.end;
      yield seg;
      if (this.version === version) {
        node = successorNode(node);
      } else {
        version = this.version;
        node = this.findVmaNode(segEnd);
      }
    }
  }

  /** All segments in ascending order; same mutation rules as `range()`. */
  [Symbol.iterator](): Iterator<T> {
    return this.range(-Infinity, Infinity);
  }

  /**
   * Top-down allocator gap search (Linux mm/mmap.c: unmapped_area_topdown): the highest `start`,
   * a multiple of `align`, such that `[start, start + length)` lies inside `[low, high)` and
   * intersects no segment; undefined if there is none. O(log n) unless many gaps are long enough
   * but fail only because of alignment or the bounds (worst case O(n)).
   */
  findGapTopDown(length: number, low: number, high: number, align = 4096): number | undefined {
    if (!(length > 0) || !Number.isFinite(length))
      throw new RangeError(`findGapTopDown: bad length ${length}`);
    if (!(align >= 1) || !Number.isInteger(align)) throw new RangeError(`findGapTopDown: bad align ${align}`);
    if (!Number.isFinite(low) || !Number.isFinite(high)) throw new RangeError(`findGapTopDown: bad bounds`);
    if (high - low < length) return undefined;
    const tryGap = (gapStart: number, gapEnd: number): number | undefined => {
      const lo = gapStart > low ? gapStart : low;
      const hi = gapEnd < high ? gapEnd : high;
      if (hi - lo < length) return undefined;
      const s = alignDown(hi - length, align);
      return s >= lo ? s : undefined;
    };
    const root = this.root;
    if (root === null) return tryGap(-Infinity, Infinity);
    // Above every segment.
    const top = tryGap(root.maxEnd, Infinity);
    if (top !== undefined) return top;
    // Between segments, highest gap first.
    const search = (n: SNode<T> | null): number | undefined => {
      if (n === null || n.maxGap < length) return undefined;
      // Every internal gap of this subtree lies in [minStart, maxEnd].
      const lo = n.minStart > low ? n.minStart : low;
      const hi = n.maxEnd < high ? n.maxEnd : high;
      if (hi - lo < length) return undefined;
      let r = search(n.right);
      if (r !== undefined) return r;
      if (n.right !== null) {
        r = tryGap(n.seg.end, n.right.minStart);
        if (r !== undefined) return r;
      }
      if (n.left !== null) {
        r = tryGap(n.left.maxEnd, n.seg.start);
        if (r !== undefined) return r;
      }
      return search(n.left);
    };
    const mid = search(root);
    if (mid !== undefined) return mid;
    // Below every segment.
    return tryGap(-Infinity, root.minStart);
  }

  /**
   * Debug check of every invariant: parent links, ascending non-overlapping non-empty segments,
   * AVL balance and heights, the augmentation, and the identity map. Throws on the first violation.
   */
  checkInvariants(): void {
    if (this.root !== null && this.root.parent !== null) throw new Error('SegmentSet: root has a parent');
    let count = 0;
    let prevEnd = -Infinity;
    const visit = (n: SNode<T>): void => {
      const { left: l, right: r, seg } = n;
      if (l !== null) {
        if (l.parent !== n) throw new Error('SegmentSet: bad parent link');
        visit(l);
      }
      count++;
      if (this.nodes.get(seg) !== n)
        throw new Error(`SegmentSet: [${seg.start}, ${seg.end}) missing from the map`);
      if (!(seg.start < seg.end)) throw new Error(`SegmentSet: empty segment [${seg.start}, ${seg.end})`);
      if (seg.start < prevEnd) throw new Error(`SegmentSet: order/overlap broken at ${seg.start}`);
      prevEnd = seg.end;
      if (r !== null) {
        if (r.parent !== n) throw new Error('SegmentSet: bad parent link');
        visit(r);
      }
      const hl = l === null ? 0 : l.height;
      const hr = r === null ? 0 : r.height;
      if (n.height !== 1 + Math.max(hl, hr)) throw new Error(`SegmentSet: bad height at ${seg.start}`);
      if (Math.abs(hl - hr) > 1) throw new Error(`SegmentSet: unbalanced at ${seg.start}`);
      const minStart = n.minStart;
      const maxEnd = n.maxEnd;
      const maxGap = n.maxGap;
      update(n);
      if (n.minStart !== minStart || n.maxEnd !== maxEnd || n.maxGap !== maxGap) {
        throw new Error(`SegmentSet: stale augmentation at ${seg.start}`);
      }
    };
    if (this.root !== null) visit(this.root);
    if (count !== this.nodes.size)
      throw new Error(`SegmentSet: map has ${this.nodes.size} entries, tree ${count}`);
  }

  // ---- internals ----

  private mustNode(seg: T, what: string): SNode<T> {
    const node = this.nodes.get(seg);
    if (node === undefined)
      throw new Error(`SegmentSet.${what}: [${seg.start}, ${seg.end}) is not in the set`);
    return node;
  }

  /** First node with end > addr (ends ascend with starts, since segments do not overlap). */
  private findVmaNode(addr: number): SNode<T> | null {
    let n = this.root;
    let best: SNode<T> | null = null;
    while (n !== null) {
      if (n.seg.end > addr) {
        best = n;
        n = n.left;
      } else {
        n = n.right;
      }
    }
    return best;
  }

  private replaceChild(u: SNode<T>, v: SNode<T> | null): void {
    const p = u.parent;
    if (p === null) this.root = v;
    else if (p.left === u) p.left = v;
    else p.right = v;
    if (v !== null) v.parent = p;
  }

  private rotateLeft(x: SNode<T>): SNode<T> {
    const y = x.right!;
    const b = y.left;
    this.replaceChild(x, y);
    x.right = b;
    if (b !== null) b.parent = x;
    y.left = x;
    x.parent = y;
    update(x);
    update(y);
    return y;
  }

  private rotateRight(x: SNode<T>): SNode<T> {
    const y = x.left!;
    const b = y.right;
    this.replaceChild(x, y);
    x.left = b;
    if (b !== null) b.parent = x;
    y.right = x;
    x.parent = y;
    update(x);
    update(y);
    return y;
  }

  /**
   * Walks from `n` towards the root restoring heights, augmentation and balance; stops at the first
   * node whose cached values did not change, but never before it has processed `dirty` (a node whose
   * own segment changed position: the successor spliced into a removed node's place).
   */
  private retrace(n: SNode<T> | null, dirty: SNode<T> | null): void {
    let forced = dirty !== null;
    while (n !== null) {
      const { height: h0, minStart: s0, maxEnd: e0, maxGap: g0 } = n;
      if (n === dirty) forced = false;
      update(n);
      const bf = heightOf(n.left) - heightOf(n.right);
      if (bf > 1) {
        const l = n.left!;
        if (heightOf(l.left) < heightOf(l.right)) this.rotateLeft(l);
        n = this.rotateRight(n);
      } else if (bf < -1) {
        const r = n.right!;
        if (heightOf(r.right) < heightOf(r.left)) this.rotateRight(r);
        n = this.rotateLeft(n);
      } else if (!forced && n.height === h0 && n.minStart === s0 && n.maxEnd === e0 && n.maxGap === g0) {
        return;
      }
      n = n.parent;
    }
  }
}

function heightOf<T>(n: SNode<T> | null): number {
  return n === null ? 0 : n.height;
}

function update<T extends Segment>(n: SNode<T>): void {
  const { left: l, right: r, seg } = n;
  let h = 0;
  let gap = 0;
  if (l !== null) {
    h = l.height;
    n.minStart = l.minStart;
    gap = Math.max(l.maxGap, seg.start - l.maxEnd);
  } else {
    n.minStart = seg.start;
  }
  if (r !== null) {
    if (r.height > h) h = r.height;
    n.maxEnd = r.maxEnd;
    gap = Math.max(gap, r.maxGap, r.minStart - seg.end);
  } else {
    n.maxEnd = seg.end;
  }
  n.height = h + 1;
  n.maxGap = gap;
}

function leftmostNode<T>(n: SNode<T>): SNode<T> {
  while (n.left !== null) n = n.left;
  return n;
}

function successorNode<T>(n: SNode<T>): SNode<T> | null {
  if (n.right !== null) return leftmostNode(n.right);
  let p = n.parent;
  while (p !== null && n === p.right) {
    n = p;
    p = p.parent;
  }
  return p;
}

function predecessorNode<T>(n: SNode<T>): SNode<T> | null {
  if (n.left !== null) {
    n = n.left;
    while (n.right !== null) n = n.right;
    return n;
  }
  let p = n.parent;
  while (p !== null && n === p.left) {
    n = p;
    p = p.parent;
  }
  return p;
}

/** Largest multiple of `align` <= x, exact for any safe integer (no bitwise operators). */
function alignDown(x: number, align: number): number {
  const r = x % align;
  return r === 0 ? x : r > 0 ? x - r : x - r - align;
}
