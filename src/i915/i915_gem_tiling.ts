import { ERRNO } from '../base/errno.js';
import type { DrmDevice } from '../drm/drm_device.js';
import type { DrmFile } from '../drm/drm_file.js';
import {
  drm_gem_object_lookup,
  drm_gem_object_unreference,
  drm_gem_object_unreference_unlocked,
} from '../drm/drm_gem.js';
import type { KGen } from '../sched/task.js';
import * as uapi from '../uapi/i915_drm.js';
import { type DrmI915Private, to_i915 } from './i915_drv.js';
import { i915_gem_release_mmap } from './i915_gem.js';
import { i915_gem_obj_is_pinned } from './i915_gem_domain.js';
import { i915_vma_unbind } from './i915_gem_gtt.js';
import { type DrmI915GemObject, to_intel_bo } from './i915_gem_object.js';

/**
 * Tiling (Linux 3.16 i915_gem_tiling.c): SET_TILING / GET_TILING record how the object's pixels
 * are laid out, for the fence registers that detile CPU access through the aperture.
 *
 * Simplifications:
 * - No fence registers are modelled: a GTT mmap of a tiled object is seen linearly, and the
 *   blitter only takes linear surfaces. Tiling is bookkeeping plus its side effects: the object's
 *   GTT mmaps are zapped when the mode or stride changes (3.16 forces the fence to be
 *   reacquired), and the swizzle reported.
 * - Bit-6 swizzling is NONE for X and Y (3.16 detects it from the memory controller's DIMM
 *   layout; this model has none).
 * - Gen 7/8 fences take any 4 KiB-aligned binding, so a change never needs the object unbound
 *   (the code path of 3.16 is kept, it just never triggers).
 */

/** dev_priv->mm.bit_6_swizzle_x / _y of the modelled machines. */
export function bit_6_swizzle(_dp: DrmI915Private, _tiling_mode: number): number {
  return uapi.I915_BIT_6_SWIZZLE_NONE;
}

/** GEN7_FENCE_MAX_PITCH_VAL, I965_FENCE_MAX_PITCH_VAL: the largest stride, in 128-byte units. */
const GEN7_FENCE_MAX_PITCH_VAL = 0x0800;
const I965_FENCE_MAX_PITCH_VAL = 0x0400;

/**
 * i915_tiling_ok(): gen 4+ rules. X tiles are 512 bytes wide, Y tiles 128 (HAS_128_BYTE_Y_TILING);
 * the stride must be a non-zero multiple of the tile width within the fence's pitch field. The
 * stride is C's `int`: a u32 above INT_MAX is negative and refused. A mode above
 * I915_TILING_LAST is refused here too (3.16 itself let mode 3 through the width checks; later
 * kernels reject it, and so does the model).
 */
export function i915_tiling_ok(dp: DrmI915Private, stride_u32: number, tiling_mode: number): boolean {
  if (tiling_mode === uapi.I915_TILING_NONE) return true;
  if (tiling_mode > uapi.I915_TILING_LAST) return false;
  const stride = stride_u32 | 0;
  const tile_width = tiling_mode === uapi.I915_TILING_Y ? 128 : 512;
  const max = dp.info.gen >= 7 ? GEN7_FENCE_MAX_PITCH_VAL : I965_FENCE_MAX_PITCH_VAL;
  if (Math.trunc(stride / 128) > max) return false;
  if (stride < tile_width) return false;
  return (stride & (tile_width - 1)) === 0;
}

/** i915_gem_object_fence_ok(): any placement suits a gen 4+ fence. */
function i915_gem_object_fence_ok(_obj: DrmI915GemObject, _tiling_mode: number): boolean {
  return true;
}

/** i915_gem_get_gtt_alignment(dev, size, tiling, fenced = false): gen 4+ needs only 4 KiB. */
function unfenced_alignment(): number {
  return 4096;
}

/** DRM_IOCTL_I915_GEM_SET_TILING. */
export function* i915_gem_set_tiling(dev: DrmDevice, data: Uint8Array, file: DrmFile): KGen<number> {
  const dp = to_i915(dev);
  const args = uapi.drm_i915_gem_set_tiling.decode(data);
  const gem = drm_gem_object_lookup(dev, file, args.handle);
  if (!gem) return -ERRNO.ENOENT;
  const obj = to_intel_bo(gem);
  if (!i915_tiling_ok(dp, args.stride, args.tiling_mode)) {
    yield* drm_gem_object_unreference_unlocked(obj);
    return -ERRNO.EINVAL;
  }
  // A framebuffer's tiling is fixed for its lifetime (its checks were made against it).
  if (i915_gem_obj_is_pinned(obj) || obj.framebuffer_references) {
    yield* drm_gem_object_unreference_unlocked(obj);
    return -ERRNO.EBUSY;
  }
  if (args.tiling_mode === uapi.I915_TILING_NONE) {
    args.swizzle_mode = uapi.I915_BIT_6_SWIZZLE_NONE;
    args.stride = 0;
  } else {
    args.swizzle_mode = bit_6_swizzle(dp, args.tiling_mode);
    // Bit 17 swizzling is hidden from user space.
    if (args.swizzle_mode === uapi.I915_BIT_6_SWIZZLE_9_17) args.swizzle_mode = uapi.I915_BIT_6_SWIZZLE_9;
    if (args.swizzle_mode === uapi.I915_BIT_6_SWIZZLE_9_10_17)
      args.swizzle_mode = uapi.I915_BIT_6_SWIZZLE_9_10;
    // Swizzling we cannot handle: the object stays untiled.
    if (args.swizzle_mode === uapi.I915_BIT_6_SWIZZLE_UNKNOWN) {
      args.tiling_mode = uapi.I915_TILING_NONE;
      args.swizzle_mode = uapi.I915_BIT_6_SWIZZLE_NONE;
      args.stride = 0;
    }
  }
  yield* dev.struct_mutex.lock();
  let ret = 0;
  if (args.tiling_mode !== obj.tiling_mode || args.stride !== obj.stride) {
    const vma = obj.vma;
    const map_and_fenceable =
      !vma?.bound ||
      (vma.start + obj.size <= dp.mappable_end && i915_gem_object_fence_ok(obj, args.tiling_mode));
    // Rebind if the binding no longer suits the new layout.
    if (!map_and_fenceable && vma && vma.start % unfenced_alignment() !== 0) {
      ret = yield* i915_vma_unbind(vma);
    }
    if (ret === 0) {
      obj.tiling_mode = args.tiling_mode;
      obj.stride = args.stride;
      // Force the fence to be reacquired for GTT access.
      yield* i915_gem_release_mmap(obj);
    }
  }
  // The ABI answers with the object's state, whatever happened.
  args.stride = obj.stride;
  args.tiling_mode = obj.tiling_mode;
  uapi.drm_i915_gem_set_tiling.encode(args, data);
  yield* drm_gem_object_unreference(obj);
  dev.struct_mutex.unlock();
  return ret;
}

/** DRM_IOCTL_I915_GEM_GET_TILING (3.16's 12-byte struct; a 16-byte caller keeps its tail). */
export function* i915_gem_get_tiling(dev: DrmDevice, data: Uint8Array, file: DrmFile): KGen<number> {
  const dp = to_i915(dev);
  const args = uapi.drm_i915_gem_get_tiling_v1.decode(data);
  const gem = drm_gem_object_lookup(dev, file, args.handle);
  if (!gem) return -ERRNO.ENOENT;
  const obj = to_intel_bo(gem);
  yield* dev.struct_mutex.lock();
  args.tiling_mode = obj.tiling_mode;
  switch (obj.tiling_mode) {
    case uapi.I915_TILING_X:
    case uapi.I915_TILING_Y:
      args.swizzle_mode = bit_6_swizzle(dp, obj.tiling_mode);
      break;
    case uapi.I915_TILING_NONE:
      args.swizzle_mode = uapi.I915_BIT_6_SWIZZLE_NONE;
      break;
  }
  if (args.swizzle_mode === uapi.I915_BIT_6_SWIZZLE_9_17) args.swizzle_mode = uapi.I915_BIT_6_SWIZZLE_9;
  if (args.swizzle_mode === uapi.I915_BIT_6_SWIZZLE_9_10_17) args.swizzle_mode = uapi.I915_BIT_6_SWIZZLE_9_10;
  uapi.drm_i915_gem_get_tiling_v1.encode(args, data);
  yield* drm_gem_object_unreference(obj);
  dev.struct_mutex.unlock();
  return 0;
}
