import { ERRNO } from '../base/errno.js';
import type { DrmDevice } from '../drm/drm_device.js';
import type { DrmFile } from '../drm/drm_file.js';
import { DRM_IOCTL_DEF, DRM_RENDER_ALLOW, DRM_UNLOCKED, type DrmIoctlDesc } from '../drm/drm_ioctl.js';
import { CAP_SYS_ADMIN, current } from '../mm/current.js';
import type { KGen } from '../sched/task.js';
import * as uapi from '../uapi/i915_drm.js';
import { type DrmI915Private, to_i915, to_i915_file } from './i915_drv.js';
import { DEFAULT_CONTEXT_ID, i915_gem_context_get } from './i915_gem_context.js';

/**
 * The one ioctl of Linux 3.16 drivers/gpu/drm/i915/intel_uncore.c the model has:
 * DRM_IOCTL_I915_GET_RESET_STATS. (REG_READ, its neighbour, reads registers the model has not.)
 */

/**
 * i915_reset_count(): resets started so far. reset_counter goes odd when a reset starts and even
 * when it ends, so a reset in progress counts already.
 */
export function i915_reset_count(dp: DrmI915Private): number {
  return Math.floor((dp.gpu_error.reset_counter + 1) / 2);
}

/**
 * DRM_IOCTL_I915_GET_RESET_STATS, in 3.16's order: non-zero `flags` or `pad` -EINVAL; the default
 * context (0) without CAP_SYS_ADMIN -EPERM; struct_mutex (interruptibly, -EINTR; a reset or a
 * wedged GPU does not stop it); an id the file does not have -ENOENT. Then `reset_count` (the
 * device's resets, for root only, else 0) and the context's `batch_active` / `batch_pending`
 * (see i915_gpu_error.ts for what a reset charges).
 */
export function* i915_get_reset_stats_ioctl(dev: DrmDevice, data: Uint8Array, file: DrmFile): KGen<number> {
  const dp = to_i915(dev);
  const args = uapi.drm_i915_reset_stats.decode(data);
  if (args.flags || args.pad) return -ERRNO.EINVAL;
  const admin = current(dp.k).capable(CAP_SYS_ADMIN);
  if (args.ctx_id === DEFAULT_CONTEXT_ID && !admin) return -ERRNO.EPERM;
  const ret = yield* dev.struct_mutex.lock_interruptible();
  if (ret) return ret;
  const ctx = i915_gem_context_get(to_i915_file(file), args.ctx_id);
  if (typeof ctx === 'number') {
    dev.struct_mutex.unlock();
    return ctx;
  }
  const hs = ctx.hang_stats;
  args.reset_count = admin ? i915_reset_count(dp) : 0;
  args.batch_active = hs.batch_active;
  args.batch_pending = hs.batch_pending;
  dev.struct_mutex.unlock();
  uapi.drm_i915_reset_stats.encode(args, data);
  return 0;
}

/** The table entry (3.16: DRM_UNLOCKED | DRM_RENDER_ALLOW). */
export const uncore_ioctls: DrmIoctlDesc[] = [
  DRM_IOCTL_DEF(
    uapi.DRM_IOCTL_I915_GET_RESET_STATS,
    i915_get_reset_stats_ioctl,
    DRM_UNLOCKED | DRM_RENDER_ALLOW,
    'I915_GET_RESET_STATS',
  ),
];
