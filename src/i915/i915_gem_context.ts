import { ERRNO } from '../base/errno.js';
import type { DrmDevice } from '../drm/drm_device.js';
import type { DrmFile } from '../drm/drm_file.js';
import { DRM_IOCTL_DEF, DRM_RENDER_ALLOW, DRM_UNLOCKED, type DrmIoctlDesc } from '../drm/drm_ioctl.js';
import type { KGen } from '../sched/task.js';
import * as uapi from '../uapi/i915_drm.js';
import { type DrmI915FilePrivate, type DrmI915Private, to_i915, to_i915_file } from './i915_drv.js';
import { i915_mutex_lock_interruptible } from './i915_gem.js';

/**
 * Contexts (Linux 3.16 drivers/gpu/drm/i915/i915_gem_context.c), as far as a client can see them
 * without hardware state: per-file ids, CONTEXT_CREATE / CONTEXT_DESTROY, the lookup execbuffer
 * and GET_RESET_STATS make, and the hang statistics a reset charges to them.
 *
 * Every file has a default context at id 0 (DEFAULT_CONTEXT_ID), made at open; CONTEXT_CREATE
 * adds contexts at the lowest free id from 1. A context holds no GPU state here: no context
 * object, no MI_SET_CONTEXT, no PPGTT (3.16 on gen7/8 without full PPGTT gives every context the
 * global GTT anyway). What remains is its identity and its `hang_stats`.
 */

/** DEFAULT_CONTEXT_ID: the file's own default context. */
export const DEFAULT_CONTEXT_ID = 0;

/**
 * DRM_I915_CTX_BAN_PERIOD, in seconds: DIV_ROUND_UP(8 × DRM_I915_HANGCHECK_PERIOD (1500 ms), 1000).
 * A non-default context guilty of a second hang within it is banned.
 */
export const DRM_I915_CTX_BAN_PERIOD = 12;

/** struct i915_ctx_hang_stats. Protected by struct_mutex. */
export interface I915CtxHangStats {
  /** Batches of this context lost to a reset without being the cause (queued behind the hang). */
  batch_pending: number;
  /** Batches of this context that were executing when the GPU hung (guilty). */
  batch_active: number;
  /**
   * Virtual time of the last guilty hang, in whole seconds (3.16: get_seconds()); null before the
   * first (3.16 starts from 0, which wall-clock seconds make "long ago").
   */
  guilty_ts: number | null;
  /** Execbuffer refuses the context with -EIO. */
  banned: boolean;
}

/** struct intel_context (3.16's name; i915_hw_context before). */
export class I915HwContext {
  /** Its id in the file's context_idr (set right after the allocation). */
  id = -1;
  readonly hang_stats: I915CtxHangStats = {
    batch_pending: 0,
    batch_active: 0,
    guilty_ts: null,
    banned: false,
  };

  constructor(
    /** The file it belongs to. */
    readonly file_priv: DrmI915FilePrivate,
  ) {}
}

/** i915_gem_context_is_default(). */
export function i915_gem_context_is_default(ctx: I915HwContext): boolean {
  return ctx.id === DEFAULT_CONTEXT_ID;
}

/**
 * hw_context_enabled(): the platform has hardware contexts (gen6+; both machines modelled do,
 * with a context image well under 3.16's 1 MiB limit).
 */
export function hw_context_enabled(dp: DrmI915Private): boolean {
  return dp.info.gen >= 6;
}

/**
 * __create_hw_context() for a file: a context at the lowest free id of the file's idr, or -errno
 * (-ENOSPC when the idr is full).
 */
function i915_gem_create_context(file_priv: DrmI915FilePrivate): I915HwContext | number {
  const ctx = new I915HwContext(file_priv);
  const id = file_priv.context_idr.alloc(ctx);
  if (id < 0) return id;
  ctx.id = id;
  return ctx;
}

/** i915_gem_context_open(): the file's default context, at id 0. 0 or -errno. */
export function i915_gem_context_open(file_priv: DrmI915FilePrivate): number {
  const ctx = i915_gem_create_context(file_priv);
  if (typeof ctx === 'number') {
    file_priv.context_idr.destroy();
    return ctx;
  }
  return 0;
}

/** i915_gem_context_close(): every context of the file goes (requests keep what they point at). */
export function i915_gem_context_close(file_priv: DrmI915FilePrivate): void {
  file_priv.context_idr.destroy();
}

/** i915_gem_context_get(): the file's context `id`, or -ENOENT. */
export function i915_gem_context_get(file_priv: DrmI915FilePrivate, id: number): I915HwContext | number {
  return file_priv.context_idr.find(id) ?? -ERRNO.ENOENT;
}

/**
 * DRM_IOCTL_I915_GEM_CONTEXT_CREATE: -ENODEV without hardware contexts; else a new context of the
 * calling file, its id in `ctx_id` (the lowest free from 1). `pad` is not checked (3.16).
 */
export function* i915_gem_context_create_ioctl(
  dev: DrmDevice,
  data: Uint8Array,
  file: DrmFile,
): KGen<number> {
  const dp = to_i915(dev);
  if (!hw_context_enabled(dp)) return -ERRNO.ENODEV;
  const ret = yield* i915_mutex_lock_interruptible(dev, true);
  if (ret) return ret;
  const ctx = i915_gem_create_context(to_i915_file(file));
  dev.struct_mutex.unlock();
  if (typeof ctx === 'number') return ctx;
  const args = uapi.drm_i915_gem_context_create.decode(data);
  uapi.drm_i915_gem_context_create.encode({ ...args, ctx_id: ctx.id }, data);
  return 0;
}

/**
 * DRM_IOCTL_I915_GEM_CONTEXT_DESTROY: the default context (0) is -ENOENT before anything else; an
 * id the file does not have is -ENOENT; otherwise the id is freed (and reused by the next
 * CONTEXT_CREATE). Requests in flight keep the context they ran in. `pad` is not checked (3.16).
 */
export function* i915_gem_context_destroy_ioctl(
  dev: DrmDevice,
  data: Uint8Array,
  file: DrmFile,
): KGen<number> {
  const args = uapi.drm_i915_gem_context_destroy.decode(data);
  if (args.ctx_id === DEFAULT_CONTEXT_ID) return -ERRNO.ENOENT;
  const ret = yield* i915_mutex_lock_interruptible(dev, true);
  if (ret) return ret;
  const file_priv = to_i915_file(file);
  const ctx = i915_gem_context_get(file_priv, args.ctx_id);
  if (typeof ctx === 'number') {
    dev.struct_mutex.unlock();
    return ctx;
  }
  file_priv.context_idr.remove(ctx.id);
  dev.struct_mutex.unlock();
  return 0;
}

/** The table entries (3.16: DRM_UNLOCKED | DRM_RENDER_ALLOW, no DRM_AUTH). */
export const context_ioctls: DrmIoctlDesc[] = [
  DRM_IOCTL_DEF(
    uapi.DRM_IOCTL_I915_GEM_CONTEXT_CREATE,
    i915_gem_context_create_ioctl,
    DRM_UNLOCKED | DRM_RENDER_ALLOW,
    'I915_GEM_CONTEXT_CREATE',
  ),
  DRM_IOCTL_DEF(
    uapi.DRM_IOCTL_I915_GEM_CONTEXT_DESTROY,
    i915_gem_context_destroy_ioctl,
    DRM_UNLOCKED | DRM_RENDER_ALLOW,
    'I915_GEM_CONTEXT_DESTROY',
  ),
];
