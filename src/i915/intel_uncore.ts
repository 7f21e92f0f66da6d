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
 * The ioctls of Linux 3.16 drivers/gpu/drm/i915/intel_uncore.c: DRM_IOCTL_I915_GET_RESET_STATS,
 * and DRM_IOCTL_I915_REG_READ of its one whitelisted register, the render ring's timestamp.
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

/** RING_TIMESTAMP(RENDER_RING_BASE): the render ring's 64-bit timestamp counter. */
export const RCS_TIMESTAMP = 0x2358;
/** Nanoseconds per timestamp tick on gen6-8 (a 12.5 MHz counter: what Mesa multiplies by). */
export const TIMESTAMP_NS = 80;

/** 3.16's whitelist: the offset, the size of the read, and the gens (bit n = gen n) it is for. */
const reg_read_whitelist: readonly { offset: bigint; size: number; gen_bitmask: number }[] = [
  { offset: BigInt(RCS_TIMESTAMP), size: 8, gen_bitmask: 0x1f0 },
];

/**
 * DRM_IOCTL_I915_REG_READ: `offset` must be a whitelisted register of this gen exactly [EINVAL];
 * the timestamp reads as the virtual clock in 80 ns ticks.
 */
export function* i915_reg_read_ioctl(dev: DrmDevice, data: Uint8Array, _file: DrmFile): KGen<number> {
  const dp = to_i915(dev);
  const reg = uapi.drm_i915_reg_read.decode(data);
  const entry = reg_read_whitelist.find(
    (e) => e.offset === reg.offset && ((1 << dp.info.gen) & e.gen_bitmask) !== 0,
  );
  if (!entry) return -ERRNO.EINVAL;
  reg.val = BigInt(Math.floor(dp.k.sched.now / TIMESTAMP_NS));
  uapi.drm_i915_reg_read.encode(reg, data);
  yield* [];
  return 0;
}

/** The table entries (3.16: both DRM_UNLOCKED | DRM_RENDER_ALLOW). */
export const uncore_ioctls: DrmIoctlDesc[] = [
  DRM_IOCTL_DEF(
    uapi.DRM_IOCTL_I915_REG_READ,
    i915_reg_read_ioctl,
    DRM_UNLOCKED | DRM_RENDER_ALLOW,
    'I915_REG_READ',
  ),
  DRM_IOCTL_DEF(
    uapi.DRM_IOCTL_I915_GET_RESET_STATS,
    i915_get_reset_stats_ioctl,
    DRM_UNLOCKED | DRM_RENDER_ALLOW,
    'I915_GET_RESET_STATS',
  ),
];
