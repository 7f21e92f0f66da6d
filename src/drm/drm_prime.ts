import { ERRNO } from '../base/errno.js';
import type { VmAreaStruct } from '../mm/mm_types.js';
import { Mutex } from '../sched/mutex.js';
import type { Scheduler } from '../sched/scheduler.js';
import type { KGen } from '../sched/task.js';
import { DRM_CLOEXEC, drm_prime_handle } from '../uapi/drm.js';
import {
  type DmaBuf,
  type DmaBufOps,
  dma_buf_export,
  dma_buf_fd,
  dma_buf_get,
  dma_buf_put,
  get_dma_buf,
} from './dma_buf.js';
import { DRIVER_PRIME, type DrmDevice, drm_core_check_feature } from './drm_device.js';
import type { DrmFile } from './drm_file.js';
import {
  type DrmGemObject,
  drm_gem_handle_create_tail,
  drm_gem_handle_delete,
  drm_gem_object_lookup,
  drm_gem_object_reference,
  drm_gem_object_unreference_unlocked,
} from './drm_gem.js';

/**
 * PRIME (Linux 3.16 drivers/gpu/drm/drm_prime.c): GEM objects shared as dma-buf file descriptors.
 *
 * Export (PRIME_HANDLE_TO_FD) wraps the object in a dma-buf once: the object caches it in
 * `obj.dma_buf` (holding a dma-buf reference while any handle exists) and the dma-buf holds an
 * object reference until it is released. Every later export of the object returns a new fd to
 * the same dma-buf. Import (PRIME_FD_TO_HANDLE) of a dma-buf this device exported gives a handle
 * to the same object, not a copy.
 *
 * Each file keeps a cache of dma-buf ↔ handle pairs, newest first: an export records the pair
 * too, so importing a dma-buf back into the file that exported it returns the ORIGINAL handle,
 * and importing the same dma-buf twice into one file returns the same handle.
 *
 * Dma-buf references are dropped after this file's locks are released (Linux's fput defers the
 * release to the return to user space), see dma_buf.ts.
 */

/** One dma-buf ↔ handle pair of a file (drm_prime_member); holds a dma-buf reference. */
export interface DrmPrimeMember {
  readonly dma_buf: DmaBuf;
  readonly handle: number;
}

/** struct drm_prime_file_private. */
export class DrmPrimeFilePrivate {
  /** prime.lock: serialises this file's exports and imports. */
  readonly lock: Mutex;
  /** Newest first (list_add). Protected by `lock`. */
  readonly head: DrmPrimeMember[] = [];

  constructor(sched: Scheduler, name: string) {
    this.lock = new Mutex(sched, `${name}->prime.lock`, '&prime_fpriv->lock');
  }
}

/** drm_prime_destroy_file_private(): WARN if the cache is not empty (every handle is gone). */
export function drm_prime_destroy_file_private(dev: DrmDevice, prime_fpriv: DrmPrimeFilePrivate): void {
  dev.sched.WARN_ON(
    prime_fpriv.head.length > 0,
    `prime cache not empty at release (${prime_fpriv.head.length})`,
  );
}

/** drm_prime_add_buf_handle(): remember the pair (takes a dma-buf reference). Caller holds prime.lock. */
export function drm_prime_add_buf_handle(
  prime_fpriv: DrmPrimeFilePrivate,
  dma_buf: DmaBuf,
  handle: number,
): number {
  get_dma_buf(dma_buf);
  prime_fpriv.head.unshift({ dma_buf, handle });
  return 0;
}

/** drm_prime_lookup_buf_by_handle(): the dma-buf recorded for `handle`, or null. */
export function drm_prime_lookup_buf_by_handle(
  prime_fpriv: DrmPrimeFilePrivate,
  handle: number,
): DmaBuf | null {
  return prime_fpriv.head.find((m) => m.handle === handle)?.dma_buf ?? null;
}

/** drm_prime_lookup_buf_handle(): the handle recorded for `dma_buf` (newest), or -ENOENT. */
export function drm_prime_lookup_buf_handle(prime_fpriv: DrmPrimeFilePrivate, dma_buf: DmaBuf): number {
  return prime_fpriv.head.find((m) => m.dma_buf === dma_buf)?.handle ?? -ERRNO.ENOENT;
}

/**
 * drm_prime_remove_buf_handle_locked(): forget every pair of `dma_buf`; returns the dma-buf
 * references the caller must drop once unlocked.
 */
export function drm_prime_remove_buf_handle_locked(
  prime_fpriv: DrmPrimeFilePrivate,
  dma_buf: DmaBuf,
): DmaBuf[] {
  const puts: DmaBuf[] = [];
  for (let i = prime_fpriv.head.length - 1; i >= 0; i--) {
    if (prime_fpriv.head[i]!.dma_buf === dma_buf) {
      puts.push(dma_buf);
      prime_fpriv.head.splice(i, 1);
    }
  }
  return puts;
}

// --- the generic GEM dma-buf ----------------------------------------------------------------------

/** drm_gem_dmabuf_release(): the dma-buf's object reference goes (drivers reuse it). */
export function* drm_gem_dmabuf_release(dma_buf: DmaBuf): KGen {
  yield* drm_gem_object_unreference_unlocked(dma_buf.priv as DrmGemObject);
}

/** drm_gem_dmabuf_mmap(): the driver's gem_prime_mmap, or -ENOSYS. */
export function* drm_gem_dmabuf_mmap(dma_buf: DmaBuf, vma: VmAreaStruct): KGen<number> {
  const obj = dma_buf.priv as DrmGemObject;
  const mmap = obj.dev.driver.gem_prime_mmap;
  if (!mmap) return -ERRNO.ENOSYS;
  return yield* mmap(obj, vma);
}

/** drm_gem_prime_dmabuf_ops. */
export const drm_gem_prime_dmabuf_ops: DmaBufOps = {
  name: 'drm_gem_prime',
  release: drm_gem_dmabuf_release,
  mmap: drm_gem_dmabuf_mmap,
};

/** drm_gem_prime_export(): the generic gem_prime_export. */
export function* drm_gem_prime_export(
  _dev: DrmDevice,
  obj: DrmGemObject,
  flags: number,
): KGen<DmaBuf | number> {
  return dma_buf_export(obj.dev.sched, obj, drm_gem_prime_dmabuf_ops, obj.size, flags);
}

/**
 * drm_gem_prime_import(): the generic gem_prime_import. A dma-buf this device exported through
 * drm_gem_prime_dmabuf_ops gives its object back with a new reference; foreign dma-bufs would
 * need scatter-gather import, which no device here supports: -EINVAL.
 */
export function* drm_gem_prime_import(dev: DrmDevice, dma_buf: DmaBuf): KGen<DrmGemObject | number> {
  if (dma_buf.ops === drm_gem_prime_dmabuf_ops) {
    const obj = dma_buf.priv as DrmGemObject;
    if (obj.dev === dev) {
      drm_gem_object_reference(obj);
      return obj;
    }
  }
  return -ERRNO.EINVAL;
}

/**
 * export_and_register_object(): the driver exports; the object caches the dma-buf (one dma-buf
 * reference) and the dma-buf holds an object reference. Caller holds object_name_lock.
 */
function* export_and_register_object(
  dev: DrmDevice,
  obj: DrmGemObject,
  flags: number,
): KGen<DmaBuf | number> {
  // A racing GEM_CLOSE removed the last handle: nobody would clean the cache up.
  if (obj.handle_count === 0) return -ERRNO.ENOENT;
  const exp = dev.driver.gem_prime_export;
  if (!exp) return -ERRNO.ENOSYS;
  const dmabuf = yield* exp(dev, obj, flags);
  if (typeof dmabuf === 'number') return dmabuf;
  obj.dma_buf = dmabuf;
  get_dma_buf(dmabuf);
  drm_gem_object_reference(obj);
  return dmabuf;
}

/**
 * drm_gem_prime_handle_to_fd(): the PRIME export of `handle`: a new fd (in the caller's table)
 * for the object's dma-buf, or -ENOENT for an unknown handle, or the export's / fd table's error.
 */
export function* drm_gem_prime_handle_to_fd(
  dev: DrmDevice,
  file_priv: DrmFile,
  handle: number,
  flags: number,
): KGen<number> {
  const prime = file_priv.prime;
  yield* prime.lock.lock();
  const obj = drm_gem_object_lookup(dev, file_priv, handle);
  if (!obj) {
    prime.lock.unlock();
    return -ERRNO.ENOENT;
  }
  let ret: number;
  let put: DmaBuf | null = null;
  out: {
    let dmabuf = drm_prime_lookup_buf_by_handle(prime, handle);
    if (dmabuf) {
      get_dma_buf(dmabuf);
    } else {
      yield* dev.object_name_lock.lock();
      if (obj.import_attach) {
        // Re-export the original imported dma-buf.
        dmabuf = obj.import_attach.dmabuf;
        get_dma_buf(dmabuf);
      } else if (obj.dma_buf) {
        dmabuf = obj.dma_buf;
        get_dma_buf(dmabuf);
      } else {
        const r = yield* export_and_register_object(dev, obj, flags);
        if (typeof r === 'number') {
          dev.object_name_lock.unlock();
          ret = r;
          break out;
        }
        dmabuf = r;
      }
      // Record the pair under object_name_lock so a racing GEM_CLOSE cannot miss it.
      ret = drm_prime_add_buf_handle(prime, dmabuf, handle);
      dev.object_name_lock.unlock();
      if (ret) {
        put = dmabuf;
        break out;
      }
    }
    const fd = dma_buf_fd(dev, dmabuf, flags);
    if (fd < 0) {
      // The pair stays cached: the handle's close cleans it up.
      ret = fd;
      put = dmabuf;
    } else {
      ret = fd;
    }
  }
  yield* drm_gem_object_unreference_unlocked(obj);
  prime.lock.unlock();
  if (put) yield* dma_buf_put(put);
  return ret;
}

/**
 * drm_gem_prime_fd_to_handle(): the PRIME import of `prime_fd`: the file's handle for the
 * object (the cached one if this file exported or imported the dma-buf before), or -EBADF
 * (no such fd), -EINVAL (not a dma-buf, or not importable), or the handle creation's error.
 */
export function* drm_gem_prime_fd_to_handle(
  dev: DrmDevice,
  file_priv: DrmFile,
  prime_fd: number,
): KGen<number> {
  const dma_buf = dma_buf_get(dev, prime_fd);
  if (typeof dma_buf === 'number') return dma_buf;
  const prime = file_priv.prime;
  yield* prime.lock.lock();
  let ret: number;
  out: {
    const cached = drm_prime_lookup_buf_handle(prime, dma_buf);
    if (cached > 0) {
      ret = cached;
      break out;
    }
    // Never seen here: import.
    yield* dev.object_name_lock.lock();
    const imp = dev.driver.gem_prime_import;
    const obj = imp ? yield* imp(dev, dma_buf) : -ERRNO.ENOSYS;
    if (typeof obj === 'number') {
      dev.object_name_lock.unlock();
      ret = obj;
      break out;
    }
    if (obj.dma_buf) {
      dev.sched.WARN_ON(obj.dma_buf !== dma_buf, `${obj.toString()} imported through a different dma-buf`);
    } else {
      obj.dma_buf = dma_buf;
      get_dma_buf(dma_buf);
    }
    // drm_gem_handle_create_tail() releases object_name_lock.
    const handle = yield* drm_gem_handle_create_tail(file_priv, obj);
    yield* drm_gem_object_unreference_unlocked(obj);
    if (handle < 0) {
      ret = handle;
      break out;
    }
    ret = drm_prime_add_buf_handle(prime, dma_buf, handle);
    if (ret) {
      yield* drm_gem_handle_delete(file_priv, handle);
      break out;
    }
    ret = handle;
  }
  prime.lock.unlock();
  yield* dma_buf_put(dma_buf);
  return ret;
}

// --- ioctls -----------------------------------------------------------------------------------

/**
 * Flags PRIME_HANDLE_TO_FD accepts. 3.16 takes DRM_CLOEXEC only; DRM_RDWR arrived in 4.6 and is
 * -EINVAL here.
 */
export const DRM_PRIME_HANDLE_TO_FD_FLAGS = DRM_CLOEXEC;

/** DRM_IOCTL_PRIME_HANDLE_TO_FD. */
export function* drm_prime_handle_to_fd_ioctl(
  dev: DrmDevice,
  data: Uint8Array,
  file_priv: DrmFile,
): KGen<number> {
  const args = drm_prime_handle.decode(data);
  if (!drm_core_check_feature(dev, DRIVER_PRIME)) return -ERRNO.EINVAL;
  const fn = dev.driver.prime_handle_to_fd;
  if (!fn) return -ERRNO.ENOSYS;
  if ((args.flags & ~DRM_PRIME_HANDLE_TO_FD_FLAGS) !== 0) return -ERRNO.EINVAL;
  const flags = args.flags & DRM_CLOEXEC;
  const fd = yield* fn(dev, file_priv, args.handle, flags);
  if (fd < 0) return fd;
  drm_prime_handle.encode({ ...args, fd }, data);
  return 0;
}

/** DRM_IOCTL_PRIME_FD_TO_HANDLE. */
export function* drm_prime_fd_to_handle_ioctl(
  dev: DrmDevice,
  data: Uint8Array,
  file_priv: DrmFile,
): KGen<number> {
  const args = drm_prime_handle.decode(data);
  if (!drm_core_check_feature(dev, DRIVER_PRIME)) return -ERRNO.EINVAL;
  const fn = dev.driver.prime_fd_to_handle;
  if (!fn) return -ERRNO.ENOSYS;
  const handle = yield* fn(dev, file_priv, args.fd);
  if (handle < 0) return handle;
  drm_prime_handle.encode({ ...args, handle }, data);
  return 0;
}
