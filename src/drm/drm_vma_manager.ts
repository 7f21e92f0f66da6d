import { ERRNO } from '../base/errno.js';
import { PAGE_SIZE } from '../base/page.js';
import { SegmentSet } from '../base/segment_set.js';
import type { File } from '../mm/file.js';
import type { KGen } from '../sched/task.js';
import { type AddressSpace, unmap_mapping_range } from './address_space.js';
import { DrmMm, DrmMmNode } from './drm_mm.js';

/**
 * drm_vma_offset_manager (Linux 3.16 drivers/gpu/drm/drm_vma_manager.c): the fake mmap offsets of
 * a DRM device. An object that may be mapped through the device file gets a range of page
 * offsets; `mmap(fd, offset)` looks the object up by the VMA's `vm_pgoff`. Offsets are handed out
 * by a drm_mm over [DRM_FILE_PAGE_OFFSET_START, + DRM_FILE_PAGE_OFFSET_SIZE) pages and looked up
 * through an address-ordered tree (the kernel's rbtree).
 *
 * Access management: a file may map an object's offset only if it holds a handle to it
 * (`drm_vma_node_allow` at handle creation, `_revoke` at deletion, counted per struct file).
 *
 * The manager's rwlock `vm_lock` is not modelled: no operation here yields, so each is atomic.
 */

/** drm_vma_offset_node: embedded in a GEM object (`owner`). */
export class DrmVmaOffsetNode<T = unknown> {
  readonly vm_node = new DrmMmNode();
  /** struct file → number of handles it holds (drm_vma_offset_file.vm_count). */
  readonly vm_files = new Map<File, number>();

  constructor(
    /** container_of(): the object the node is embedded in. */
    readonly owner: T,
  ) {}

  /** Offset tree key: first page. */
  get start(): number {
    return this.vm_node.start;
  }
  /** Offset tree key: end page (exclusive). */
  get end(): number {
    return this.vm_node.start + this.vm_node.size;
  }
}

export class DrmVmaOffsetManager {
  readonly vm_addr_space_mm: DrmMm;
  /** Allocated nodes by start page. */
  readonly vm_addr_space_rb = new SegmentSet<DrmVmaOffsetNode>();

  /** drm_vma_offset_manager_init(): offsets [page_offset, page_offset + size) in pages. */
  constructor(page_offset: number, size: number) {
    this.vm_addr_space_mm = new DrmMm(page_offset, size);
  }

  /** drm_vma_offset_manager_destroy(). */
  destroy(): boolean {
    return this.vm_addr_space_mm.takedown();
  }
}

/**
 * drm_vma_offset_lookup(): the node whose range contains [start, start + pages), or null.
 * (The caller then checks the node is the one it wants.)
 */
export function drm_vma_offset_lookup(
  mgr: DrmVmaOffsetManager,
  start: number,
  pages: number,
): DrmVmaOffsetNode | null {
  const node = mgr.vm_addr_space_rb.find(start);
  if (!node) return null;
  return start + pages <= node.end ? node : null;
}

/** drm_vma_offset_exact_lookup(): as lookup, but the range must begin at the node's start. */
export function drm_vma_offset_exact_lookup(
  mgr: DrmVmaOffsetManager,
  start: number,
  pages: number,
): DrmVmaOffsetNode | null {
  const node = drm_vma_offset_lookup(mgr, start, pages);
  return node && node.start === start ? node : null;
}

/**
 * drm_vma_offset_add(): give `node` a range of `pages` offsets (no-op if it has one already).
 * 0, or -ENOSPC when the offset space is full. (A zero-page node is refused with -EINVAL here;
 * the kernel never asks for one: GEM object sizes are at least a page.)
 */
export function drm_vma_offset_add(mgr: DrmVmaOffsetManager, node: DrmVmaOffsetNode, pages: number): number {
  if (node.vm_node.allocated) return 0;
  if (!Number.isSafeInteger(pages) || pages <= 0) return -ERRNO.EINVAL;
  const ret = mgr.vm_addr_space_mm.insert_node(node.vm_node, pages, 0);
  if (ret) return ret;
  mgr.vm_addr_space_rb.insert(node);
  return 0;
}

/** drm_vma_offset_remove(): give the range back (no-op without one). */
export function drm_vma_offset_remove(mgr: DrmVmaOffsetManager, node: DrmVmaOffsetNode): void {
  if (!node.vm_node.allocated) return;
  mgr.vm_addr_space_rb.remove(node);
  mgr.vm_addr_space_mm.remove_node(node.vm_node);
}

/** drm_vma_node_reset(). */
export function drm_vma_node_reset(node: DrmVmaOffsetNode): void {
  node.vm_files.clear();
}

/** drm_vma_node_has_offset(). */
export function drm_vma_node_has_offset(node: DrmVmaOffsetNode): boolean {
  return node.vm_node.allocated;
}

/** drm_vma_node_start(): first page offset (0 without an offset). */
export function drm_vma_node_start(node: DrmVmaOffsetNode): number {
  return node.vm_node.allocated ? node.vm_node.start : 0;
}

/** drm_vma_node_size(): pages. */
export function drm_vma_node_size(node: DrmVmaOffsetNode): number {
  return node.vm_node.allocated ? node.vm_node.size : 0;
}

/** drm_vma_node_offset_addr(): the byte offset user space passes to mmap(). */
export function drm_vma_node_offset_addr(node: DrmVmaOffsetNode): number {
  return drm_vma_node_start(node) * PAGE_SIZE;
}

/** drm_vma_node_allow(): `filp` may map the node (one count per handle it holds). */
export function drm_vma_node_allow(node: DrmVmaOffsetNode, filp: File): number {
  node.vm_files.set(filp, (node.vm_files.get(filp) ?? 0) + 1);
  return 0;
}

/** drm_vma_node_revoke(): drop one count of `filp`. */
export function drm_vma_node_revoke(node: DrmVmaOffsetNode, filp: File): void {
  const n = node.vm_files.get(filp);
  if (n === undefined) return;
  if (n <= 1) node.vm_files.delete(filp);
  else node.vm_files.set(filp, n - 1);
}

/** drm_vma_node_is_allowed(). */
export function drm_vma_node_is_allowed(node: DrmVmaOffsetNode, filp: File): boolean {
  return node.vm_files.has(filp);
}

/**
 * drm_vma_node_unmap(): zap every CPU mapping of the node's offset range in every process
 * (unmap_mapping_range over the device's address_space). May sleep.
 */
export function* drm_vma_node_unmap(node: DrmVmaOffsetNode, file_mapping: AddressSpace): KGen {
  if (!drm_vma_node_has_offset(node)) return;
  yield* unmap_mapping_range(
    file_mapping,
    drm_vma_node_offset_addr(node),
    drm_vma_node_size(node) * PAGE_SIZE,
    true,
  );
}
