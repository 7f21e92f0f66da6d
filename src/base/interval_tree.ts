/**
 * Interval tree with the API shape of the Linux kernel's (include/linux/interval_tree.h,
 * lib/interval_tree.c, include/linux/interval_tree_generic.h).
 *
 * Intervals are closed: a node covers `[start, last]`, `last` INCLUSIVE, exactly as in the kernel
 * (the i915 userptr code stores `[userptr, userptr + size - 1]`). Overlapping intervals and equal
 * starts are allowed; nodes with equal `start` are ordered by insertion (a later insertion goes to
 * the right, as `INTERVAL_TREE_DEFINE`'s insert does).
 *
 * The kernel's tree is a red-black tree augmented with `__subtree_last`; ours is an AVL tree with
 * the same augmentation (the largest `last` in a node's subtree) and parent pointers, so that
 * `interval_tree_iter_next` walks exactly like the kernel's. Every operation is O(log n), a query
 * O(log n + k) for k results. The node is owned by the caller (embedded in its object in the
 * kernel): insert it once, remove it before inserting it again, and do not change `start`/`last`
 * while it is in a tree.
 */

/** `struct interval_tree_node`, with a payload in place of `container_of`. */
export class IntervalTreeNode<T> {
  /** First address covered. Must not change while the node is in a tree. */
  start: number;
  /** Last address covered, INCLUSIVE. Must not change while the node is in a tree. */
  last: number;
  /** The object this node is embedded in (what `container_of` would give in the kernel). */
  value: T;

  // Tree linkage below: maintained by the tree, read-only for everyone else.
  /** Largest `last` in this node's subtree (`__subtree_last`). */
  __subtree_last = 0;
  /** @internal */ _left: IntervalTreeNode<T> | null = null;
  /** @internal */ _right: IntervalTreeNode<T> | null = null;
  /** @internal */ _parent: IntervalTreeNode<T> | null = null;
  /** @internal AVL height of this node's subtree (a leaf is 1). */
  _height = 0;
  /** @internal The tree this node is linked into, or null. */
  _tree: IntervalTreeRoot<T> | null = null;

  constructor(start: number, last: number, value: T) {
    this.start = start;
    this.last = last;
    this.value = value;
  }

  /** Whether the node is currently linked into a tree. */
  get inTree(): boolean {
    return this._tree !== null;
  }
}

/** `struct rb_root` of an interval tree. */
export class IntervalTreeRoot<T> implements Iterable<IntervalTreeNode<T>> {
  /** @internal */ _node: IntervalTreeNode<T> | null = null;
  /** @internal */ _size = 0;

  /** Number of nodes in the tree. */
  get size(): number {
    return this._size;
  }

  /** `RB_EMPTY_ROOT()`. */
  get empty(): boolean {
    return this._node === null;
  }

  /** All nodes in (start, insertion) order. The caller must not insert or remove while iterating. */
  *[Symbol.iterator](): Iterator<IntervalTreeNode<T>> {
    let n = this._node === null ? null : leftmost(this._node);
    while (n !== null) {
      yield n;
      n = successor(n);
    }
  }

  /**
   * Every node overlapping `[start, last]` (inclusive) in start order: the kernel's
   * `for (n = interval_tree_iter_first(..); n; n = interval_tree_iter_next(..))`. The caller must not
   * insert or remove nodes while iterating (collect first, as the kernel's callers do).
   */
  *overlapping(start: number, last: number): Generator<IntervalTreeNode<T>, void, undefined> {
    for (
      let n = interval_tree_iter_first(this, start, last);
      n !== null;
      n = interval_tree_iter_next(n, start, last)
    ) {
      yield n;
    }
  }

  /**
   * Debug check of every structural invariant: parent links, start order, AVL balance and heights,
   * `__subtree_last`, node ownership and size. Throws an Error describing the first violation.
   */
  checkInvariants(): void {
    const root = this._node;
    if (root !== null && root._parent !== null) throw new Error('interval tree: root has a parent');
    let count = 0;
    let prevStart = -Infinity;
    const visit = (n: IntervalTreeNode<T>): void => {
      const l = n._left;
      const r = n._right;
      if (l !== null) {
        if (l._parent !== n) throw new Error(`interval tree: bad parent link at [${l.start}, ${l.last}]`);
        visit(l);
      }
      count++;
      if (n._tree !== this)
        throw new Error(`interval tree: node [${n.start}, ${n.last}] not owned by this tree`);
      if (!(n.start <= n.last))
        throw new Error(`interval tree: node [${n.start}, ${n.last}] has start > last`);
      if (n.start < prevStart) throw new Error(`interval tree: start order broken at ${n.start}`);
      prevStart = n.start;
      if (r !== null) {
        if (r._parent !== n) throw new Error(`interval tree: bad parent link at [${r.start}, ${r.last}]`);
        visit(r);
      }
      const hl = height(l);
      const hr = height(r);
      if (n._height !== 1 + Math.max(hl, hr)) throw new Error(`interval tree: bad height at ${n.start}`);
      if (Math.abs(hl - hr) > 1) throw new Error(`interval tree: unbalanced at ${n.start}`);
      let sub = n.last;
      if (l !== null && l.__subtree_last > sub) sub = l.__subtree_last;
      if (r !== null && r.__subtree_last > sub) sub = r.__subtree_last;
      if (n.__subtree_last !== sub) {
        throw new Error(`interval tree: __subtree_last ${n.__subtree_last} != ${sub} at ${n.start}`);
      }
    };
    if (root !== null) visit(root);
    if (count !== this._size) throw new Error(`interval tree: size ${this._size} but ${count} nodes`);
  }
}

type Node<T> = IntervalTreeNode<T>;

function height<T>(n: Node<T> | null): number {
  return n === null ? 0 : n._height;
}

/** Recomputes height and `__subtree_last` of `n` from its children. */
function update<T>(n: Node<T>): void {
  const l = n._left;
  const r = n._right;
  let h = 0;
  let sub = n.last;
  if (l !== null) {
    h = l._height;
    if (l.__subtree_last > sub) sub = l.__subtree_last;
  }
  if (r !== null) {
    if (r._height > h) h = r._height;
    if (r.__subtree_last > sub) sub = r.__subtree_last;
  }
  n._height = h + 1;
  n.__subtree_last = sub;
}

/** Puts `v` where `u` hangs (parent's child pointer or root); does not touch u's children. */
function replaceChild<T>(root: IntervalTreeRoot<T>, u: Node<T>, v: Node<T> | null): void {
  const p = u._parent;
  if (p === null) root._node = v;
  else if (p._left === u) p._left = v;
  else p._right = v;
  if (v !== null) v._parent = p;
}

function rotateLeft<T>(root: IntervalTreeRoot<T>, x: Node<T>): Node<T> {
  const y = x._right!;
  const b = y._left;
  replaceChild(root, x, y);
  x._right = b;
  if (b !== null) b._parent = x;
  y._left = x;
  x._parent = y;
  update(x);
  update(y);
  return y;
}

function rotateRight<T>(root: IntervalTreeRoot<T>, x: Node<T>): Node<T> {
  const y = x._left!;
  const b = y._right;
  replaceChild(root, x, y);
  x._left = b;
  if (b !== null) b._parent = x;
  y._right = x;
  x._parent = y;
  update(x);
  update(y);
  return y;
}

/**
 * Walks from `n` towards the root, restoring heights, augmentation and AVL balance. Stops early at
 * the first node whose height and `__subtree_last` did not change (nothing above it can change),
 * but never before it has processed `dirty` (a node whose own interval changed: the successor
 * spliced into a removed node's place).
 */
function retrace<T>(root: IntervalTreeRoot<T>, n: Node<T> | null, dirty: Node<T> | null): void {
  let forced = dirty !== null;
  while (n !== null) {
    const h0 = n._height;
    const s0 = n.__subtree_last;
    if (n === dirty) forced = false;
    update(n);
    const bf = height(n._left) - height(n._right);
    if (bf > 1) {
      const l = n._left!;
      if (height(l._left) < height(l._right)) rotateLeft(root, l);
      n = rotateRight(root, n);
    } else if (bf < -1) {
      const r = n._right!;
      if (height(r._right) < height(r._left)) rotateRight(root, r);
      n = rotateLeft(root, n);
    } else if (!forced && n._height === h0 && n.__subtree_last === s0) {
      return;
    }
    n = n._parent;
  }
}

function leftmost<T>(n: Node<T>): Node<T> {
  while (n._left !== null) n = n._left;
  return n;
}

function successor<T>(n: Node<T>): Node<T> | null {
  if (n._right !== null) return leftmost(n._right);
  let p = n._parent;
  while (p !== null && n === p._right) {
    n = p;
    p = p._parent;
  }
  return p;
}

/** Linux lib/interval_tree.c (INTERVAL_TREE_DEFINE): interval_tree_insert */
export function interval_tree_insert<T>(node: IntervalTreeNode<T>, root: IntervalTreeRoot<T>): void {
  if (node._tree !== null)
    throw new Error(`interval_tree_insert: node [${node.start}, ${node.last}] already in a tree`);
  const { start, last } = node;
  // An inverted interval (last < start) goes in as it does in the kernel (a zero-sized userptr
  // object's [ptr, ptr - 1]): ordered by start, returned only by a query covering last and start.
  if (!Number.isFinite(start) || !Number.isFinite(last)) {
    throw new RangeError(`interval_tree_insert: bad interval [${start}, ${last}]`);
  }
  node._left = null;
  node._right = null;
  node._height = 1;
  node.__subtree_last = last;
  node._tree = root;
  root._size++;
  let p = root._node;
  if (p === null) {
    node._parent = null;
    root._node = node;
    return;
  }
  for (;;) {
    if (start < p.start) {
      if (p._left === null) {
        p._left = node;
        break;
      }
      p = p._left;
    } else {
      if (p._right === null) {
        p._right = node;
        break;
      }
      p = p._right;
    }
  }
  node._parent = p;
  retrace(root, p, null);
}

/** Linux lib/interval_tree.c (INTERVAL_TREE_DEFINE): interval_tree_remove */
export function interval_tree_remove<T>(node: IntervalTreeNode<T>, root: IntervalTreeRoot<T>): void {
  if (node._tree !== root)
    throw new Error(`interval_tree_remove: node [${node.start}, ${node.last}] not in this tree`);
  const l = node._left;
  const r = node._right;
  let from: Node<T> | null;
  let dirty: Node<T> | null = null;
  if (l === null || r === null) {
    from = node._parent;
    replaceChild(root, node, l ?? r);
  } else {
    // Two children: splice the in-order successor y into node's place. y takes over node's cached
    // height and __subtree_last, which is what node's ancestors were computed from.
    const y = leftmost(r);
    dirty = y;
    if (y === r) {
      from = y;
    } else {
      from = y._parent;
      replaceChild(root, y, y._right);
      y._right = r;
      r._parent = y;
    }
    y._left = l;
    l._parent = y;
    y._height = node._height;
    y.__subtree_last = node.__subtree_last;
    replaceChild(root, node, y);
  }
  retrace(root, from, dirty);
  node._left = null;
  node._right = null;
  node._parent = null;
  node._height = 0;
  node._tree = null;
  root._size--;
}

/** Linux lib/interval_tree.c: interval_tree_subtree_search — leftmost node of the subtree overlapping. */
function subtree_search<T>(node: Node<T>, start: number, last: number): Node<T> | null {
  for (;;) {
    const left = node._left;
    if (left !== null && start <= left.__subtree_last) {
      // Some node on the left satisfies last >= start: the leftmost such node is the only candidate.
      node = left;
      continue;
    }
    if (node.start <= last) {
      if (start <= node.last) return node;
      const right = node._right;
      if (right !== null && start <= right.__subtree_last) {
        node = right;
        continue;
      }
    }
    return null;
  }
}

/**
 * Linux lib/interval_tree.c: interval_tree_iter_first — the node overlapping `[start, last]`
 * (inclusive) with the lowest start (first inserted among equal starts), or null.
 */
export function interval_tree_iter_first<T>(
  root: IntervalTreeRoot<T>,
  start: number,
  last: number,
): IntervalTreeNode<T> | null {
  const node = root._node;
  if (node === null || node.__subtree_last < start) return null;
  return subtree_search(node, start, last);
}

/**
 * Linux lib/interval_tree.c: interval_tree_iter_next — the next node after `node` (in start order)
 * overlapping `[start, last]`, or null. `node` must be a result of the same query.
 */
export function interval_tree_iter_next<T>(
  node: IntervalTreeNode<T>,
  start: number,
  last: number,
): IntervalTreeNode<T> | null {
  let rb = node._right;
  for (;;) {
    // Invariant: node.start <= last, rb === node._right.
    if (rb !== null && start <= rb.__subtree_last) return subtree_search(rb, start, last);
    // Move up until we come from a node's left child.
    let prev: Node<T>;
    do {
      const parent = node._parent;
      if (parent === null) return null;
      prev = node;
      node = parent;
      rb = node._right;
    } while (prev === rb);
    if (last < node.start) return null;
    if (start <= node.last) return node;
  }
}
