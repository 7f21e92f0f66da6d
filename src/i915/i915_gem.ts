import { ERRNO } from '../base/errno.js';
import { PAGE_SIZE } from '../base/page.js';
import type { DrmDevice } from '../drm/drm_device.js';
import type { DrmFile } from '../drm/drm_file.js';
import {
  type DrmGemObject,
  drm_gem_free_mmap_offset,
  drm_gem_handle_create,
  drm_gem_object_init,
  drm_gem_object_lookup,
  drm_gem_object_reference,
  drm_gem_object_release,
  drm_gem_object_unreference,
  drm_gem_object_unreference_unlocked,
} from '../drm/drm_gem.js';
import { drm_vma_node_unmap } from '../drm/drm_vma_manager.js';
import { ShmemObject } from '../mm/shmem.js';
import type { KGen } from '../sched/task.js';
import { finished, returns } from '../sched/scheduler.js';
import { wait_event_timeout } from '../sched/waitqueue.js';
import { queue_work } from '../sched/workqueue.js';
import * as uapi from '../uapi/i915_drm.js';
import { DrmI915FilePrivate, type DrmI915Private, to_i915, to_i915_file } from './i915_drv.js';
import { type I915HwContext, i915_gem_context_close, i915_gem_context_open } from './i915_gem_context.js';
import {
  DrmI915GemObject,
  type I915GemObjectOps,
  ObjectPoint,
  i915_gem_obj_bound,
  to_intel_bo,
} from './i915_gem_object.js';
import { DrmI915GemRequest, type IntelRing, i915_seqno_passed } from './intel_ringbuffer.js';
import { i915_vma_unbind } from './i915_gem_gtt.js';
import { i915_gem_purge } from './i915_gem_shrinker.js';

// --- pages ------------------------------------------------------------------------------------

/** i915_gem_object_shmem_ops: pages come from the object's shmem file. */
export const i915_gem_object_ops: I915GemObjectOps = {
  name: 'shmem',
  *get_pages(obj: DrmI915GemObject): KGen<number> {
    const shmem = obj.filp?.private_data;
    if (!(shmem instanceof ShmemObject)) return -ERRNO.EINVAL;
    const ram = obj.dev.k.ram;
    const pages: number[] = [];
    const n = obj.size / PAGE_SIZE;
    for (let i = 0; i < n; i++) {
      let pfn = shmem.shmem_getpage(i);
      if (pfn === -ERRNO.ENOMEM) {
        // Out of memory: reap our own purgeable objects and try once more (3.16 get_pages_gtt).
        yield* i915_gem_purge(to_i915(obj.dev), n);
        pfn = shmem.shmem_getpage(i);
      }
      if (pfn < 0) {
        for (const p of pages) ram.put_page(p);
        return -ERRNO.ENOMEM;
      }
      ram.get_page(pfn);
      pages.push(pfn);
    }
    yield new ObjectPoint('shmem_get_pages', obj, -1, n);
    obj.pages = pages;
    return 0;
  },
  put_pages(obj: DrmI915GemObject): KGen {
    const ram = obj.dev.k.ram;
    if (obj.madv === uapi.I915_MADV_DONTNEED) obj.dirty = false;
    for (const pfn of obj.pages ?? []) {
      if (obj.dirty) ram.set_page_dirty(pfn);
      ram.put_page(pfn);
    }
    obj.dirty = false;
    return finished();
  },
};

/** i915_gem_object_get_pages(): acquire the backing pages once. */
export function* i915_gem_object_get_pages(obj: DrmI915GemObject): KGen<number> {
  if (obj.pages) return 0;
  const dp = to_i915(obj.dev);
  if (obj.madv !== uapi.I915_MADV_WILLNEED) return -ERRNO.EFAULT;
  if (obj.pages_pin_count) dp.k.sched.BUG(`get_pages of ${obj.toString()} with pinned pages but none`);
  const ret = yield* obj.ops.get_pages(obj);
  if (ret) return ret;
  if (!obj.pages) return -ERRNO.EFAULT;
  list_move(dp, obj, false);
  return 0;
}

/** i915_gem_object_put_pages(): drop the pages unless pinned or bound. 0 or -EBUSY. */
export function* i915_gem_object_put_pages(obj: DrmI915GemObject): KGen<number> {
  if (!obj.pages) return 0;
  if (obj.pages_pin_count) return -ERRNO.EBUSY;
  const dp = to_i915(obj.dev);
  if (i915_gem_obj_bound(obj)) dp.k.sched.BUG(`put_pages of bound ${obj.toString()}`);
  list_del(dp, obj);
  yield* obj.ops.put_pages(obj);
  obj.pages = null;
  if (obj.madv === uapi.I915_MADV_DONTNEED) i915_gem_object_truncate(obj);
  return 0;
}

/**
 * i915_gem_object_truncate(): a purgeable object loses its mmap offset and its backing storage
 * for good; only an object with a shmem file becomes PURGED (3.16).
 */
export function i915_gem_object_truncate(obj: DrmI915GemObject): void {
  drm_gem_free_mmap_offset(obj);
  if (!obj.filp) return;
  const shmem = obj.filp.private_data;
  if (shmem instanceof ShmemObject) shmem.truncate();
  obj.madv = uapi.__I915_MADV_PURGED;
}

export function i915_gem_object_pin_pages(obj: DrmI915GemObject): void {
  if (!obj.pages) obj.dev.sched.BUG(`pin_pages of ${obj.toString()} without pages`);
  obj.pages_pin_count++;
}

export function i915_gem_object_unpin_pages(obj: DrmI915GemObject): void {
  if (obj.pages_pin_count === 0) obj.dev.sched.BUG(`unpin_pages of ${obj.toString()} underflow`);
  obj.pages_pin_count--;
}

/** Moves the object to the tail of the bound or unbound list (LRU order). */
export function list_move(dp: DrmI915Private, obj: DrmI915GemObject, bound: boolean): void {
  list_del(dp, obj);
  (bound ? dp.bound_list : dp.unbound_list).add(obj);
  obj.onBoundList = bound;
}

function list_del(dp: DrmI915Private, obj: DrmI915GemObject): void {
  dp.bound_list.delete(obj);
  dp.unbound_list.delete(obj);
  obj.onBoundList = null;
}

// --- objects ----------------------------------------------------------------------------------

/** i915_gem_object_init(): common initialisation of a driver object. */
export function i915_gem_object_init(obj: DrmI915GemObject): void {
  obj.read_domains = uapi.I915_GEM_DOMAIN_CPU;
  obj.write_domain = uapi.I915_GEM_DOMAIN_CPU;
}

/** i915_gem_alloc_object(): a shmem-backed object (LLC: cached, CPU domain). */
export function i915_gem_alloc_object(dev: DrmDevice, size: number): DrmI915GemObject | null {
  const obj = new DrmI915GemObject(i915_gem_object_ops);
  if (drm_gem_object_init(dev, obj, size) !== 0) return null;
  i915_gem_object_init(obj);
  return obj;
}

/**
 * i915_gem_create(): 3.16 rounds the u64 size up to a page, wrapping in 64 bits, and refuses 0
 * (-EINVAL). An object shmem will not back (beyond MAX_LFS_FILESIZE) comes back NULL from
 * i915_gem_alloc_object, i.e. -ENOMEM; so does one above 2^53 here, which 3.16 would create
 * lazily but this model cannot size.
 */
export function* i915_gem_create(file: DrmFile, dev: DrmDevice, size: bigint): KGen<number> {
  const rounded = BigInt.asUintN(64, size + BigInt(PAGE_SIZE - 1)) & ~BigInt(PAGE_SIZE - 1);
  if (rounded === 0n) return -ERRNO.EINVAL;
  if (rounded > BigInt(Number.MAX_SAFE_INTEGER)) return -ERRNO.ENOMEM;
  const obj = i915_gem_alloc_object(dev, Number(rounded));
  if (!obj) return -ERRNO.ENOMEM;
  const handle = yield* drm_gem_handle_create(file, obj);
  // The handle holds the reference now.
  yield* drm_gem_object_unreference_unlocked(obj);
  return handle;
}

/** DRM_IOCTL_I915_GEM_CREATE. */
export function* i915_gem_create_ioctl(dev: DrmDevice, data: Uint8Array, file: DrmFile): KGen<number> {
  const args = uapi.drm_i915_gem_create.decode(data);
  const handle = yield* i915_gem_create(file, dev, args.size);
  if (handle < 0) return handle;
  uapi.drm_i915_gem_create.encode({ ...args, handle }, data);
  return 0;
}

/**
 * i915_gem_free_object(): the last reference went (struct_mutex held): unbind (waiting for the
 * GPU uninterruptibly if it must), release pages, mmap offset, then the ops' release.
 */
export function* i915_gem_free_object(gem: DrmGemObject): KGen {
  const obj = to_intel_bo(gem);
  const dp = to_i915(obj.dev);
  const s = dp.k.sched;
  if (obj.vma) {
    let ret = yield* i915_vma_unbind(obj.vma);
    if (ret === -ERRNO.ERESTARTSYS || ret === -ERRNO.EINTR || ret === -ERRNO.EAGAIN) {
      const was = dp.interruptible;
      dp.interruptible = false;
      ret = yield* i915_vma_unbind(obj.vma);
      s.WARN_ON(ret !== 0, `i915_gem_free_object: unbind of ${obj.toString()} failed: ${ret}`);
      dp.interruptible = was;
    }
  }
  if (s.WARN_ON(obj.pages_pin_count > 0, `i915_gem_free_object: ${obj.toString()} pages still pinned`)) {
    obj.pages_pin_count = 0;
  }
  yield* i915_gem_object_put_pages(obj);
  list_del(dp, obj);
  drm_gem_free_mmap_offset(obj);
  if (obj.ops.release) yield* obj.ops.release(obj);
  yield* drm_gem_object_release(obj);
  obj.freed = true;
  obj.dev.objects.delete(obj);
}

/** i915_gem_release_mmap(): zap every CPU PTE of the object's GTT mmaps. */
export function* i915_gem_release_mmap(obj: DrmI915GemObject): KGen {
  if (!obj.fault_mappable) return;
  yield* drm_vma_node_unmap(obj.vma_node, obj.dev.dev_mapping);
  obj.fault_mappable = false;
}

// --- requests, activity, waiting -------------------------------------------------------------

/** i915_gem_get_seqno(): the seqno the request being built will carry. */
export function i915_gem_request_seqno(dp: DrmI915Private, ring: IntelRing): number {
  if (ring.outstanding_lazy_seqno === 0) ring.outstanding_lazy_seqno = ++dp.next_seqno;
  return ring.outstanding_lazy_seqno;
}

/**
 * i915_vma_move_to_active(): the object is in use by the request being built on `ring`; the
 * active list holds a reference until retirement.
 */
export function i915_gem_object_move_to_active(obj: DrmI915GemObject, ring: IntelRing, write: boolean): void {
  const dp = to_i915(obj.dev);
  const seqno = i915_gem_request_seqno(dp, ring);
  if (obj.ring && obj.ring !== ring) obj.ring.active_list.delete(obj);
  if (!obj.active) {
    drm_gem_object_reference(obj);
    obj.active = true;
  }
  obj.ring = ring;
  ring.active_list.delete(obj);
  ring.active_list.add(obj);
  obj.last_read_seqno = seqno;
  if (write) {
    obj.last_write_seqno = seqno;
    obj.dirty = true;
  }
  obj.last_error = 0;
  if (obj.vma) dp.inactive_list.delete(obj.vma);
}

/**
 * i915_add_request(): hands the request to the ring's command streamer, noting when it was
 * emitted, its context and, for a file's request, the file's request list (THROTTLE).
 */
export function i915_add_request(
  dp: DrmI915Private,
  ring: IntelRing,
  batch_start: number,
  batch_len: number,
  batch_obj: DrmI915GemObject | null,
  objects: readonly DrmI915GemObject[],
  pid: number,
  file_priv: DrmI915FilePrivate | null = null,
  ctx: I915HwContext | null = null,
): DrmI915GemRequest {
  const seqno = i915_gem_request_seqno(dp, ring);
  ring.outstanding_lazy_seqno = 0;
  const req = new DrmI915GemRequest(ring, seqno, batch_start, batch_len, batch_obj, objects, pid);
  req.emitted_ns = dp.k.sched.now;
  req.ctx = ctx;
  if (file_priv) {
    req.file_priv = file_priv;
    file_priv.request_list.add(req);
  }
  ring.request_list.push(req);
  ring.queue.push(req);
  ring.last_submitted_seqno = seqno;
  ring.doorbell.wake_up_all();
  return req;
}

/** i915_gem_object_move_to_inactive(): the GPU is done with it; drop the active reference. */
function i915_gem_object_move_to_inactive(obj: DrmI915GemObject): KGen {
  const dp = to_i915(obj.dev);
  obj.ring?.active_list.delete(obj);
  if (obj.vma?.bound) {
    dp.inactive_list.delete(obj.vma);
    dp.inactive_list.add(obj.vma);
  }
  obj.ring = null;
  obj.last_read_seqno = 0;
  obj.last_write_seqno = 0;
  obj.write_domain = 0;
  obj.active = false;
  return drm_gem_object_unreference(obj);
}

/**
 * i915_gem_retire_requests_ring(): objects whose last use has completed become inactive
 * (possibly freeing them); completed requests leave the list. struct_mutex held.
 */
export function* i915_gem_retire_requests_ring(ring: IntelRing): KGen {
  const seqno = ring.get_seqno();
  for (const obj of [...ring.active_list]) {
    if (!i915_seqno_passed(seqno, obj.last_read_seqno)) break;
    const req = ring.request(obj.last_read_seqno);
    if (req?.error) obj.last_error = req.error;
    yield* i915_gem_object_move_to_inactive(obj);
  }
  while (ring.request_list.length > 0 && i915_seqno_passed(seqno, ring.request_list[0]!.seqno)) {
    i915_gem_request_remove_from_client(ring.request_list.shift()!);
  }
}

/** i915_gem_request_remove_from_client(): a retired request leaves its file's list. */
function i915_gem_request_remove_from_client(req: DrmI915GemRequest): void {
  const file_priv = req.file_priv;
  if (!file_priv) return;
  file_priv.request_list.delete(req);
  req.file_priv = null;
}

/** i915_gem_retire_requests(): every ring; true when the GPU is idle. */
export function* i915_gem_retire_requests(dp: DrmI915Private): KGen<boolean> {
  let idle = true;
  for (const ring of dp.rings) {
    yield* i915_gem_retire_requests_ring(ring);
    idle &&= ring.request_list.length === 0;
  }
  return idle;
}

/** The retire worker (3.16 uses a delayed work and trylock; here it is queued per interrupt). */
export function* i915_gem_retire_work_handler(dp: DrmI915Private): KGen {
  yield* dp.dev.struct_mutex.lock();
  yield* i915_gem_retire_requests(dp);
  dp.dev.struct_mutex.unlock();
}

/** Called by the command streamer after each breadcrumb. */
export function i915_queue_retire(dp: DrmI915Private): void {
  queue_work(dp.config.wq, dp.retire_work);
}

/** i915_gem_check_wedge(): -EIO when wedged, -EAGAIN while a reset is pending. */
export function i915_gem_check_wedge(dp: DrmI915Private, interruptible: boolean): number {
  if (dp.gpu_error.wedged) return -ERRNO.EIO;
  if (dp.gpu_error.reset_counter & 1 || dp.hungRings.size > 0) {
    // A non-interruptible waiter cannot back off and retry; it just waits for the reset.
    return interruptible ? -ERRNO.EAGAIN : 0;
  }
  return 0;
}

/**
 * __wait_seqno(): sleep until the ring's breadcrumb passes `seqno`. -ETIME on timeout,
 * -ERESTARTSYS on a signal (interruptible waits), -EAGAIN when a reset started meanwhile, and
 * -EIO when the request it waited for hung the GPU. `timeout` carries the remaining time back.
 */
export function* __wait_seqno(
  ring: IntelRing,
  seqno: number,
  reset_counter: number,
  interruptible: boolean,
  timeout: { ns: number } | null,
): KGen<number> {
  const dp = to_i915(ring.dev);
  const s = ring.sched;
  const done = (): boolean => i915_seqno_passed(ring.get_seqno(), seqno);
  const failed = (): number => ring.request(seqno)?.error ?? 0;
  if (done()) return failed();
  const t = s.cur();
  const start = s.now;
  const deadline = timeout ? start + Math.max(0, timeout.ns) : Number.POSITIVE_INFINITY;
  let ret = 0;
  for (;;) {
    if (dp.gpu_error.reset_counter !== reset_counter || dp.gpu_error.wedged) {
      ret = i915_gem_check_wedge(dp, interruptible) || -ERRNO.EAGAIN;
      break;
    }
    if (done()) break;
    const req = ring.request(seqno);
    if (req?.error) break;
    if (interruptible && t.signalPending) {
      ret = -ERRNO.ERESTARTSYS;
      break;
    }
    const left = deadline - s.now;
    if (left <= 0) {
      ret = -ERRNO.ETIME;
      break;
    }
    const r = yield* wait_event_timeout(
      ring.irq_queue,
      () => done() || (ring.request(seqno)?.error ?? 0) !== 0 || dp.gpu_error.reset_counter !== reset_counter,
      left === Number.POSITIVE_INFINITY ? Number.MAX_SAFE_INTEGER : left,
      interruptible,
    );
    if (r < 0) {
      ret = r;
      break;
    }
  }
  if (timeout) timeout.ns = Math.max(0, deadline - s.now);
  if (ret) return ret;
  return failed();
}

/** i915_wait_seqno(): wait under struct_mutex with the device's interruptibility. */
export function i915_wait_seqno(ring: IntelRing, seqno: number): KGen<number> {
  const dp = to_i915(ring.dev);
  const ret = i915_gem_check_wedge(dp, dp.interruptible);
  if (ret) return returns(ret);
  return __wait_seqno(ring, seqno, dp.gpu_error.reset_counter, dp.interruptible, null);
}

/**
 * i915_gem_object_wait_rendering(): wait for the GPU's last write (readonly) or any use, then
 * retire so the object leaves the active list.
 */
export function* i915_gem_object_wait_rendering(obj: DrmI915GemObject, readonly: boolean): KGen<number> {
  const seqno = readonly ? obj.last_write_seqno : obj.last_read_seqno;
  if (!seqno || !obj.ring) return 0;
  const ring = obj.ring;
  const ret = yield* i915_wait_seqno(ring, seqno);
  if (ret && ret !== -ERRNO.EIO) return ret;
  yield* i915_gem_retire_requests_ring(ring);
  if (obj.active && i915_seqno_passed(ring.get_seqno(), obj.last_read_seqno)) {
    yield* i915_gem_retire_requests_ring(ring);
  }
  return ret;
}

/** i915_gem_object_finish_gpu(): nothing of the GPU may touch it any more. */
export function i915_gem_object_finish_gpu(obj: DrmI915GemObject): KGen<number> {
  return i915_gem_object_wait_rendering(obj, false);
}

/** i915_gpu_idle(): wait for every ring. */
export function* i915_gpu_idle(dp: DrmI915Private): KGen<number> {
  for (const ring of dp.rings) {
    if (ring.last_submitted_seqno === 0) continue;
    const ret = yield* i915_wait_seqno(ring, ring.last_submitted_seqno);
    if (ret && ret !== -ERRNO.EIO) return ret;
  }
  return 0;
}

/**
 * i915_mutex_lock_interruptible(): -EAGAIN during a reset (the model's stand-in for 3.16's sleep
 * until it is over), -EINTR; and -EIO when wedged, which most callers would meet later in 3.16
 * (i915_gem_wait_for_error itself lets a terminally wedged GPU through: `wedgedPasses`, for the
 * callers that never meet it, like context creation). A plain function returning the lock's
 * generator: one level less on every step that waits for it.
 */
export function i915_mutex_lock_interruptible(dev: DrmDevice, wedgedPasses = false): KGen<number> {
  const dp = to_i915(dev);
  if (!(wedgedPasses && dp.gpu_error.wedged)) {
    const ret = i915_gem_check_wedge(dp, true);
    if (ret) return returns(ret);
  }
  return dev.struct_mutex.lock_interruptible();
}

/**
 * The opening of most GEM ioctls: struct_mutex (interruptibly), then the handle's object with a
 * reference. Returns the object with the lock held, or -errno (-ENOENT) with it released.
 */
export function* i915_gem_object_lookup_locked(
  dev: DrmDevice,
  file: DrmFile,
  handle: number,
): KGen<DrmI915GemObject | number> {
  const ret = yield* i915_mutex_lock_interruptible(dev);
  if (ret) return ret;
  const gem = drm_gem_object_lookup(dev, file, handle);
  if (!gem) {
    dev.struct_mutex.unlock();
    return -ERRNO.ENOENT;
  }
  return to_intel_bo(gem);
}

/** i915_gem_object_flush_active(): retire what has completed so `active` is current. */
export function* i915_gem_object_flush_active(obj: DrmI915GemObject): KGen<number> {
  if (obj.active && obj.ring) yield* i915_gem_retire_requests_ring(obj.ring);
  return 0;
}

// --- per-file state ----------------------------------------------------------------------------

/**
 * i915_gem_open(): the file's driver state (drm_i915_file_private) and its default context. 3.16
 * creates the context under struct_mutex; here a context owns nothing that lock protects, so the
 * open takes no lock (and adds no scheduling point).
 */
export function i915_gem_open(dp: DrmI915Private, file: DrmFile): number {
  const file_priv = new DrmI915FilePrivate(dp, file);
  file.driver_priv = file_priv;
  const ret = i915_gem_context_open(file_priv);
  if (ret) file.driver_priv = null;
  return ret;
}

/**
 * i915_driver_preclose(): i915_gem_context_close() (the file's contexts go) and
 * i915_gem_release() (its requests still in flight forget the file, so retiring them later does
 * not touch it). 3.16 does both under struct_mutex; neither touches anything that lock protects
 * here, so no lock is taken.
 */
export function i915_gem_release(file: DrmFile): void {
  const file_priv = file.driver_priv;
  if (!(file_priv instanceof DrmI915FilePrivate)) return;
  i915_gem_context_close(file_priv);
  for (const req of file_priv.request_list) req.file_priv = null;
  file_priv.request_list.clear();
}

// --- THROTTLE -------------------------------------------------------------------------------------

/** How old a request must be for THROTTLE to wait for it: 3.16's msecs_to_jiffies(20), in ns. */
export const I915_THROTTLE_NS = 20_000_000;

/**
 * DRM_IOCTL_I915_GEM_THROTTLE (3.16 i915_gem_ring_throttle): wait until the GPU has completed the
 * newest of this file's requests emitted more than 20 ms (virtual) ago; younger requests, and
 * other files' requests, are not waited for. -EIO when the GPU is wedged; during a reset the
 * model's -EAGAIN (3.16 sleeps until the reset is over; libdrm's drmIoctl retries). A request
 * the GPU hung on does not fail the call (3.16 answers 0 once the reset is done; the model's
 * per-request -EIO is for waits on objects).
 */
export function* i915_gem_throttle_ioctl(dev: DrmDevice, _data: Uint8Array, file: DrmFile): KGen<number> {
  const dp = to_i915(dev);
  const file_priv = to_i915_file(file);
  const recent_enough = dp.k.sched.now - I915_THROTTLE_NS;
  let ret = i915_gem_check_wedge(dp, true);
  if (ret) return ret;
  let ring: IntelRing | null = null;
  let seqno = 0;
  for (const req of file_priv.request_list) {
    if (req.emitted_ns >= recent_enough) break;
    ring = req.ring;
    seqno = req.seqno;
  }
  const reset_counter = dp.gpu_error.reset_counter;
  if (seqno === 0 || !ring) return 0;
  ret = yield* __wait_seqno(ring, seqno, reset_counter, true, null);
  if (ret === -ERRNO.EIO && !dp.gpu_error.wedged) ret = 0;
  if (ret === 0) i915_queue_retire(dp);
  return ret;
}

// --- BUSY and WAIT ------------------------------------------------------------------------------

/** DRM_IOCTL_I915_GEM_BUSY. */
export function* i915_gem_busy_ioctl(dev: DrmDevice, data: Uint8Array, file: DrmFile): KGen<number> {
  const args = uapi.drm_i915_gem_busy.decode(data);
  const obj = yield* i915_gem_object_lookup_locked(dev, file, args.handle);
  if (typeof obj === 'number') return obj;
  const ret = yield* i915_gem_object_flush_active(obj);
  let busy = obj.active ? 1 : 0;
  if (obj.ring) busy |= obj.ring.flag << 16;
  uapi.drm_i915_gem_busy.encode({ ...args, busy }, data);
  yield* drm_gem_object_unreference(obj);
  dev.struct_mutex.unlock();
  return ret;
}

/** DRM_IOCTL_I915_GEM_WAIT: timeout_ns < 0 waits forever; 0 polls (-ETIME when busy). */
export function* i915_gem_wait_ioctl(dev: DrmDevice, data: Uint8Array, file: DrmFile): KGen<number> {
  const args = uapi.drm_i915_gem_wait.decode(data);
  if (args.flags !== 0) return -ERRNO.EINVAL;
  const dp = to_i915(dev);
  const obj = yield* i915_gem_object_lookup_locked(dev, file, args.bo_handle);
  if (typeof obj === 'number') return obj;
  let ret = yield* i915_gem_object_flush_active(obj);
  const seqno = obj.active ? obj.last_read_seqno : 0;
  const ring = obj.ring;
  const lastError = obj.last_error;
  if (ret || seqno === 0 || !ring) {
    yield* drm_gem_object_unreference(obj);
    dev.struct_mutex.unlock();
    return ret || lastError;
  }
  const timeout_ns = Number(args.timeout_ns);
  if (timeout_ns === 0) {
    yield* drm_gem_object_unreference(obj);
    dev.struct_mutex.unlock();
    return -ERRNO.ETIME;
  }
  yield* drm_gem_object_unreference(obj);
  const reset_counter = dp.gpu_error.reset_counter;
  dev.struct_mutex.unlock();
  const timeout = timeout_ns > 0 ? { ns: timeout_ns } : null;
  ret = yield* __wait_seqno(ring, seqno, reset_counter, true, timeout);
  if (timeout) uapi.drm_i915_gem_wait.encode({ ...args, timeout_ns: BigInt(timeout.ns) }, data);
  return ret;
}
