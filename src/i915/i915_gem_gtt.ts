import { ERRNO } from '../base/errno.js';
import { PAGE_SIZE } from '../base/page.js';
import type { KGen } from '../sched/task.js';
import { to_i915 } from './i915_drv.js';
import {
  i915_gem_object_finish_gpu,
  i915_gem_object_get_pages,
  i915_gem_object_pin_pages,
  i915_gem_object_unpin_pages,
  i915_gem_release_mmap,
  list_move,
} from './i915_gem.js';
import { i915_gem_evict_something } from './i915_gem_evict.js';
import { type DrmI915GemObject, I915Vma, ObjectPoint } from './i915_gem_object.js';

export interface PinFlags {
  /** Must lie in the CPU-visible aperture (GTT mmap, relocations through the aperture). */
  mappable?: boolean;
  /** Do not wait for the GPU to make room (execbuffer's first pass). */
  nonblocking?: boolean;
}

/** i915_gem_obj_ggtt_offset() alignment check: does the binding satisfy the request? */
function vma_misplaced(vma: I915Vma, alignment: number, mappable: boolean, mappable_end: number): boolean {
  if (alignment && vma.start % alignment !== 0) return true;
  return mappable && vma.start + vma.node.size > mappable_end;
}

/**
 * i915_gem_object_bind_to_vm(): acquire and pin the pages, find room in the GTT (evicting if
 * needed), write the PTEs.
 */
function* i915_gem_object_bind_to_vm(
  obj: DrmI915GemObject,
  alignment: number,
  flags: PinFlags,
): KGen<number> {
  const dp = to_i915(obj.dev);
  const end = flags.mappable ? dp.mappable_end : dp.gtt_total;
  if (obj.size > end) return -ERRNO.E2BIG;
  let ret = yield* i915_gem_object_get_pages(obj);
  if (ret) return ret;
  i915_gem_object_pin_pages(obj);
  const vma = obj.vma ?? new I915Vma(obj);
  obj.vma = vma;
  const align = Math.max(alignment, PAGE_SIZE);
  for (;;) {
    ret = dp.mm.insert_node_in_range_generic(vma.node, obj.size, align, obj.cache_level, 0, end, 0, 0);
    if (ret === 0) break;
    ret = yield* i915_gem_evict_something(
      dp,
      obj.size,
      align,
      flags.mappable ?? false,
      flags.nonblocking ?? false,
    );
    if (ret) {
      i915_gem_object_unpin_pages(obj);
      obj.vma = null;
      return ret;
    }
  }
  yield new ObjectPoint('gtt_bind', obj, vma.start, obj.size / PAGE_SIZE);
  dp.gtt.insert_entries(vma.start / PAGE_SIZE, obj.pages!);
  list_move(dp, obj, true);
  dp.inactive_list.add(vma);
  if (obj.active) dp.inactive_list.delete(vma);
  return 0;
}

/**
 * i915_gem_object_pin(): bind (or rebind when misplaced) and take a pin. 0 or -errno (-ENOSPC
 * when nothing can be evicted, -E2BIG when it can never fit, -EBUSY when pinned elsewhere).
 */
export function* i915_gem_object_pin(
  obj: DrmI915GemObject,
  alignment: number,
  flags: PinFlags = {},
): KGen<number> {
  const dp = to_i915(obj.dev);
  let vma = obj.vma;
  if (vma?.bound && vma_misplaced(vma, alignment, flags.mappable ?? false, dp.mappable_end)) {
    if (vma.pin_count) {
      dp.k.sched.report('WARN', `${obj.toString()} is pinned with the wrong alignment or placement`);
      return -ERRNO.EBUSY;
    }
    const ret = yield* i915_vma_unbind(vma);
    if (ret) return ret;
    vma = obj.vma;
  }
  if (!vma?.bound) {
    const ret = yield* i915_gem_object_bind_to_vm(obj, alignment, flags);
    if (ret) return ret;
  }
  obj.vma!.pin_count++;
  return 0;
}

/** i915_gem_object_ggtt_unpin(). */
export function i915_gem_object_ggtt_unpin(obj: DrmI915GemObject): void {
  const vma = obj.vma;
  if (!vma || vma.pin_count === 0) {
    obj.dev.sched.BUG(`ggtt_unpin of ${obj.toString()} that is not pinned`);
  }
  vma.pin_count--;
}

/**
 * i915_vma_unbind(): wait for the GPU, zap GTT mmaps, clear the PTEs (to the scratch page),
 * release the range and unpin the pages. -EBUSY when pinned.
 */
export function* i915_vma_unbind(vma: I915Vma): KGen<number> {
  const obj = vma.obj;
  const dp = to_i915(obj.dev);
  if (!vma.bound) {
    obj.vma = null;
    return 0;
  }
  if (vma.pin_count) return -ERRNO.EBUSY;
  const ret = yield* i915_gem_object_finish_gpu(obj);
  if (ret && ret !== -ERRNO.EIO) return ret;
  // Waiting may have let someone else unbind or pin it.
  if (!vma.bound) return 0;
  if (vma.pin_count) return -ERRNO.EBUSY;
  yield* i915_gem_release_mmap(obj);
  yield new ObjectPoint('gtt_unbind', obj, vma.start, undefined);
  dp.gtt.clear_range(vma.start / PAGE_SIZE, vma.node.size / PAGE_SIZE);
  dp.inactive_list.delete(vma);
  dp.mm.remove_node(vma.node);
  obj.vma = null;
  if (obj.pages) list_move(dp, obj, false);
  i915_gem_object_unpin_pages(obj);
  return 0;
}
