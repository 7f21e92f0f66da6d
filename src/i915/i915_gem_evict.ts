import { ERRNO } from '../base/errno.js';
import { drm_gem_object_reference, drm_gem_object_unreference } from '../drm/drm_gem.js';
import type { KGen } from '../sched/task.js';
import type { DrmI915Private } from './i915_drv.js';
import { i915_gem_retire_requests, i915_gpu_idle } from './i915_gem.js';
import { i915_vma_unbind } from './i915_gem_gtt.js';
import type { I915Vma } from './i915_gem_object.js';

/** Bound vmas of objects still in use by the GPU, oldest first (3.16: vm->active_list). */
function active_vmas(dp: DrmI915Private): I915Vma[] {
  const out: I915Vma[] = [];
  for (const ring of dp.rings) for (const obj of ring.active_list) if (obj.vma?.bound) out.push(obj.vma);
  return out;
}

/**
 * i915_gem_evict_something(): find the cheapest set of neighbouring vmas whose removal leaves a
 * hole of `size` (aligned) in the GTT or its mappable part, using drm_mm's eviction scan: idle
 * vmas first in LRU order, then (unless `nonblocking`) busy ones; unbind exactly those. When
 * nothing fits, wait for the GPU once and search again; then -ENOSPC.
 */
export function* i915_gem_evict_something(
  dp: DrmI915Private,
  size: number,
  alignment: number,
  mappable: boolean,
  nonblocking: boolean,
): KGen<number> {
  const mm = dp.mm;
  for (let pass = 0; ; pass++) {
    if (mappable) mm.init_scan_with_range(size, alignment, 0, 0, dp.mappable_end);
    else mm.init_scan(size, alignment, 0);
    const unwind: I915Vma[] = [];
    const mark_free = (vma: I915Vma): boolean => {
      if (vma.pin_count) return false;
      unwind.push(vma);
      return mm.scan_add_block(vma.node);
    };
    let found = false;
    for (const vma of [...dp.inactive_list]) if ((found = mark_free(vma))) break;
    if (!found && !nonblocking) for (const vma of active_vmas(dp)) if ((found = mark_free(vma))) break;
    // The scan must be unwound in reverse order; the blocks it wants go on the eviction list.
    const evict: I915Vma[] = [];
    for (const vma of unwind.reverse()) if (mm.scan_remove_block(vma.node) && found) evict.push(vma);
    if (found) {
      for (const vma of evict) drm_gem_object_reference(vma.obj);
      let ret = 0;
      for (const vma of evict) {
        if (ret === 0) ret = yield* i915_vma_unbind(vma);
        yield* drm_gem_object_unreference(vma.obj);
      }
      return ret;
    }
    if (nonblocking || pass > 0) return -ERRNO.ENOSPC;
    const ret = yield* i915_gpu_idle(dp);
    if (ret) return ret;
    yield* i915_gem_retire_requests(dp);
  }
}

/** i915_gem_evict_everything(): wait for the GPU, then unbind every unpinned vma. */
export function* i915_gem_evict_everything(dp: DrmI915Private): KGen<number> {
  let ret = yield* i915_gpu_idle(dp);
  if (ret) return ret;
  yield* i915_gem_retire_requests(dp);
  for (const vma of [...dp.inactive_list]) {
    if (vma.pin_count) continue;
    ret = yield* i915_vma_unbind(vma);
    if (ret) return ret;
  }
  return 0;
}
