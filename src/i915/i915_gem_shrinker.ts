import { PAGE_SIZE } from '../base/page.js';
import { drm_gem_object_reference, drm_gem_object_unreference } from '../drm/drm_gem.js';
import type { KGen } from '../sched/task.js';
import * as uapi from '../uapi/i915_drm.js';
import type { DrmI915Private } from './i915_drv.js';
import { i915_gem_object_put_pages } from './i915_gem.js';
import { i915_vma_unbind } from './i915_gem_gtt.js';
import type { DrmI915GemObject } from './i915_gem_object.js';

/**
 * Giving memory back (Linux 3.16 i915_gem.c __i915_gem_shrink / i915_gem_purge): objects whose
 * owner said MADV_DONTNEED lose their pages — and, being purgeable, their contents for good —
 * when the driver runs out of memory while acquiring pages.
 *
 * 3.16's shrink_all (every object's pages back to shmem, after evicting the whole GTT) is not
 * modelled: without swap the model's shmem keeps those frames anyway, so it could free nothing.
 */

/** i915_gem_object_is_purgeable(). */
export function i915_gem_object_is_purgeable(obj: DrmI915GemObject): boolean {
  return obj.madv === uapi.I915_MADV_DONTNEED;
}

/**
 * __i915_gem_shrink(): put the pages of unbound objects first, then unbind bound ones, oldest
 * first, until `target` pages were released. struct_mutex held. Returns the pages released.
 */
export function* __i915_gem_shrink(
  dp: DrmI915Private,
  target: number,
  purgeable_only: boolean,
): KGen<number> {
  let count = 0;
  for (const obj of [...dp.unbound_list]) {
    if (count >= target) return count;
    if (!dp.unbound_list.has(obj)) continue;
    if (purgeable_only && !i915_gem_object_is_purgeable(obj)) continue;
    drm_gem_object_reference(obj);
    if ((yield* i915_gem_object_put_pages(obj)) === 0) count += obj.size / PAGE_SIZE;
    yield* drm_gem_object_unreference(obj);
  }
  // Unbinding may retire requests and rewrite the bound list: recheck each element.
  for (const obj of [...dp.bound_list]) {
    if (count >= target) break;
    if (!dp.bound_list.has(obj)) continue;
    if (purgeable_only && !i915_gem_object_is_purgeable(obj)) continue;
    drm_gem_object_reference(obj);
    if (!obj.vma || (yield* i915_vma_unbind(obj.vma)) === 0) {
      if ((yield* i915_gem_object_put_pages(obj)) === 0) count += obj.size / PAGE_SIZE;
    }
    yield* drm_gem_object_unreference(obj);
  }
  return count;
}

/** i915_gem_purge(): release purgeable objects' pages (their contents are discarded). */
export function i915_gem_purge(dp: DrmI915Private, target: number): KGen<number> {
  return __i915_gem_shrink(dp, target, true);
}
