import { ERRNO } from '../base/errno.js';
import { PAGE_SIZE } from '../base/page.js';
import { type File, fput } from '../mm/file.js';
import { VM_DONTDUMP, VM_DONTEXPAND, VM_IO, VM_PFNMAP, type VmAreaStruct } from '../mm/mm_types.js';
import { shmem_file_setup } from '../mm/shmem.js';
import type { Mutex } from '../sched/mutex.js';
import { finished, returns } from '../sched/scheduler.js';
import type { KGen } from '../sched/task.js';
import { drm_gem_close, drm_gem_flink, drm_gem_open as drm_gem_open_args } from '../uapi/drm.js';
import { unlink_file_vma, vma_link_file } from './address_space.js';
import { type DmaBuf, type DmaBufAttachment, dma_buf_put } from './dma_buf.js';
import { DRIVER_GEM, DRIVER_PRIME, type DrmDevice, drm_core_check_feature } from './drm_device.js';
import { DrmFile } from './drm_file.js';
import { drm_prime_remove_buf_handle_locked } from './drm_prime.js';
import {
  DrmVmaOffsetNode,
  drm_vma_node_allow,
  drm_vma_node_is_allowed,
  drm_vma_node_reset,
  drm_vma_node_revoke,
  drm_vma_node_size,
  drm_vma_offset_add,
  drm_vma_offset_exact_lookup,
  drm_vma_offset_remove,
} from './drm_vma_manager.js';

/**
 * GEM, the object model of the DRM core (Linux 3.16 drivers/gpu/drm/drm_gem.c): buffer objects
 * with a reference count (kref) and a count of the handles naming them, per-file handles, global
 * flink names, fake mmap offsets, and the mmap path that maps an object through the device file.
 *
 * Lifetimes. `refcount` counts every reference (handles, mappings, dma-bufs, lookups in
 * flight, the driver's own); the last `drm_gem_object_unreference` calls the driver's
 * `gem_free_object` with struct_mutex held. `handle_count` counts handles in all files; when it
 * drops to 0 the flink name is removed and the export cache (`dma_buf`) released, which breaks
 * the object ↔ dma-buf reference cycle.
 */

/** First page of fake mmap offsets: offsets above 4 GiB, as on 64-bit Linux. */
export const DRM_FILE_PAGE_OFFSET_START = Math.floor(0xffffffff / PAGE_SIZE) + 1;
/** Pages of fake mmap offsets (64-bit: 16 × 4 GiB). */
export const DRM_FILE_PAGE_OFFSET_SIZE = Math.floor(0xffffffff / PAGE_SIZE) * 16;
/** Alias: the first fake offset page (0x100000, i.e. byte offset 0x100000000). */
export const DRM_FILE_PAGE_OFFSET = DRM_FILE_PAGE_OFFSET_START;

/**
 * struct drm_gem_object. A driver extends it (i915: `class DrmI915GemObject extends DrmGemObject`
 * with its ops table) and initialises it with `drm_gem_object_init` (shmem-backed) or
 * `drm_gem_private_object_init` (no backing file, e.g. userptr) right after construction.
 */
export class DrmGemObject {
  /** The device; set by drm_gem_private_object_init. */
  dev!: DrmDevice;
  /** Bytes, a multiple of PAGE_SIZE. */
  size = 0;
  /** kref: every reference. 0 = freed (gem_free_object ran). */
  refcount = 0;
  /** Handles naming the object in all files. Protected by dev.object_name_lock. */
  handle_count = 0;
  /** Flink name, 0 if none. Protected by dev.object_name_lock. */
  name = 0;
  /** Backing shmem file (drm_gem_object_init), or null. */
  filp: File | null = null;
  /** Fake mmap offset and the files allowed to map it. */
  readonly vma_node: DrmVmaOffsetNode<DrmGemObject> = new DrmVmaOffsetNode<DrmGemObject>(this);
  /** Memory domains (read by i915). Protected by struct_mutex. */
  read_domains = 0;
  write_domain = 0;
  pending_read_domains = 0;
  pending_write_domain = 0;
  /**
   * The dma-buf this object is exported as (export cache; also set on import of a dma-buf of this
   * device). Holds a dma-buf reference while handle_count > 0. Protected by object_name_lock.
   */
  dma_buf: DmaBuf | null = null;
  /** Attachment when the object wraps another device's dma-buf. */
  import_attach: DmaBufAttachment | null = null;
  /** Model bookkeeping: per-device serial for messages. */
  serial = 0;
  /** Model bookkeeping: gem_free_object ran (any later use is a use-after-free). */
  freed = false;

  toString(): string {
    return `gem object #${this.serial}`;
  }
}

/**
 * drm_gem_private_object_init(): an object without a backing file. BUG if `size` is not a
 * multiple of the page size.
 */
export function drm_gem_private_object_init(dev: DrmDevice, obj: DrmGemObject, size: number): void {
  if (!Number.isSafeInteger(size) || size < 0 || size % PAGE_SIZE !== 0) {
    dev.sched.BUG(`drm_gem_private_object_init: size ${size} is not page aligned`);
  }
  obj.dev = dev;
  obj.filp = null;
  obj.refcount = 1;
  obj.handle_count = 0;
  obj.size = size;
  obj.serial = ++dev.objectSerial;
  drm_vma_node_reset(obj.vma_node);
  dev.objects.add(obj);
}

/** drm_gem_object_init(): an object backed by a fresh shmem file of `size` bytes. 0 or -errno. */
export function drm_gem_object_init(dev: DrmDevice, obj: DrmGemObject, size: number): number {
  drm_gem_private_object_init(dev, obj, size);
  obj.filp = shmem_file_setup(dev.k, 'drm mm object', size);
  return 0;
}

/**
 * drm_gem_object_release(): the core's part of freeing (drivers call it from gem_free_object):
 * drop the shmem file. WARNs if the export cache is still set. May sleep.
 */
export function* drm_gem_object_release(obj: DrmGemObject): KGen {
  obj.dev.sched.WARN_ON(
    obj.dma_buf !== null,
    `drm_gem_object_release: ${obj.toString()} still has a dma_buf`,
  );
  if (obj.filp) yield* fput(obj.filp);
}

// --- references -------------------------------------------------------------------------------

function kref_alive(obj: DrmGemObject, what: string): boolean {
  if (obj.refcount > 0) return true;
  const s = obj.dev.sched;
  if (obj.freed) s.report('use-after-free', `${what} of freed ${obj.toString()}`);
  else s.report('WARN', `${what} of ${obj.toString()} with refcount ${obj.refcount}`);
  return false;
}

/** drm_gem_object_reference(): kref_get. */
export function drm_gem_object_reference(obj: DrmGemObject): void {
  if (!kref_alive(obj, 'drm_gem_object_reference')) return;
  obj.refcount++;
}

/** drm_gem_object_free(): kref release. BUG unless struct_mutex is held. */
export function* drm_gem_object_free(obj: DrmGemObject): KGen {
  const dev = obj.dev;
  if (!dev.struct_mutex.is_locked())
    dev.sched.BUG(`drm_gem_object_free of ${obj.toString()} without struct_mutex`);
  yield* dev.driver.gem_free_object(obj);
  obj.freed = true;
  dev.objects.delete(obj);
}

/**
 * drm_gem_object_unreference(): kref_put; the last reference frees the object. The caller holds
 * struct_mutex. May sleep (the driver's free). A plain function returning the free's generator
 * (or a finished one): most puts are not the last, and the last adds no level to the free.
 */
export function drm_gem_object_unreference(obj: DrmGemObject | null): KGen {
  if (!obj) return finished();
  if (!kref_alive(obj, 'drm_gem_object_unreference')) return finished();
  if (--obj.refcount === 0) return drm_gem_object_free(obj);
  return finished();
}

/**
 * might_lock(): lockdep is told the lock could be taken here (records the dependencies and
 * catches recursion) without taking it.
 */
export function might_lock(m: Mutex): void {
  const s = m.sched;
  if (!s.current) return;
  s.lock_acquire(m, m.cls, m.name);
  s.lock_release(m, m.name);
}

/**
 * drm_gem_object_unreference_unlocked(): kref_put_mutex. A reference that is not the last is
 * dropped without locking (lockdep is told struct_mutex might be taken); the last one takes
 * struct_mutex itself and frees under it. A caller already holding struct_mutex therefore
 * deadlocks on the last reference and draws a recursive-locking report otherwise — as in 3.16.
 */
export function* drm_gem_object_unreference_unlocked(obj: DrmGemObject | null): KGen {
  if (!obj) return;
  if (!kref_alive(obj, 'drm_gem_object_unreference_unlocked')) return;
  const dev = obj.dev;
  if (obj.refcount > 1) {
    obj.refcount--;
    might_lock(dev.struct_mutex);
    return;
  }
  yield* dev.struct_mutex.lock();
  if (!kref_alive(obj, 'drm_gem_object_unreference_unlocked')) {
    dev.struct_mutex.unlock();
    return;
  }
  if (--obj.refcount === 0) yield* drm_gem_object_free(obj);
  dev.struct_mutex.unlock();
}

// --- handles ----------------------------------------------------------------------------------

/** drm_gem_object_handle_free(): the last handle went: drop the flink name. */
function drm_gem_object_handle_free(obj: DrmGemObject): void {
  const dev = obj.dev;
  if (obj.name) {
    dev.object_name_idr.remove(obj.name);
    obj.name = 0;
  }
}

/**
 * drm_gem_object_handle_unreference_unlocked(): one handle less; at 0 the name and the export
 * cache go; then the handle's object reference is dropped. May sleep.
 */
export function* drm_gem_object_handle_unreference_unlocked(obj: DrmGemObject): KGen {
  const dev = obj.dev;
  if (dev.sched.WARN_ON(obj.handle_count === 0, `handle_count underflow on ${obj.toString()}`)) return;
  yield* dev.object_name_lock.lock();
  let cache: DmaBuf | null = null;
  if (--obj.handle_count === 0) {
    drm_gem_object_handle_free(obj);
    // drm_gem_object_exported_dma_buf_free(): break the object <-> dma-buf cycle.
    cache = obj.dma_buf;
    obj.dma_buf = null;
  }
  dev.object_name_lock.unlock();
  yield* drm_gem_object_unreference_unlocked(obj);
  // 3.16 calls dma_buf_put() under object_name_lock, but fput() defers the release to the
  // task's return to user space; dropping it here, with no lock held, keeps lockdep faithful.
  if (cache) yield* dma_buf_put(cache);
}

/**
 * drm_gem_handle_create_tail(): the caller holds dev.object_name_lock, which this releases. The
 * new handle (≥ 1) holds an object reference and a handle count; returns it, or -errno.
 */
export function* drm_gem_handle_create_tail(file_priv: DrmFile, obj: DrmGemObject): KGen<number> {
  const dev = obj.dev;
  dev.sched.WARN_ON(!dev.object_name_lock.is_locked(), 'drm_gem_handle_create_tail without object_name_lock');
  const ret = file_priv.object_idr.alloc(obj);
  drm_gem_object_reference(obj);
  obj.handle_count++;
  dev.object_name_lock.unlock();
  if (ret < 0) {
    yield* drm_gem_object_handle_unreference_unlocked(obj);
    return ret;
  }
  const handle = ret;
  drm_vma_node_allow(obj.vma_node, file_priv.filp);
  if (dev.driver.gem_open_object) {
    const err = yield* dev.driver.gem_open_object(obj, file_priv);
    if (err) {
      yield* drm_gem_handle_delete(file_priv, handle);
      return err;
    }
  }
  return handle;
}

/** drm_gem_handle_create(): a new handle for `obj` in `file_priv`: the handle (≥ 1) or -errno. */
export function* drm_gem_handle_create(file_priv: DrmFile, obj: DrmGemObject): KGen<number> {
  yield* obj.dev.object_name_lock.lock();
  return yield* drm_gem_handle_create_tail(file_priv, obj);
}

/**
 * drm_gem_remove_prime_handles(): forget the file's dma-buf cache entries for `obj`. May sleep.
 *
 * `obj.dma_buf` is read under prime.lock, as 3.16 does: an export that looked the handle up
 * before it left the table holds prime.lock until it has set `obj.dma_buf` and recorded the pair,
 * so waiting for the lock and then reading sees that pair; an export that takes the lock later
 * no longer finds the handle. Read before taking the lock, the check could see `dma_buf` still
 * null while such an export was in flight, and the pair it recorded (with its dma-buf reference,
 * which holds the object) would outlive the handle. The cache cannot go meanwhile: the handle's
 * count is not dropped yet. (Imports set `obj.dma_buf` too, so `import_attach` needs no check.)
 */
function* drm_gem_remove_prime_handles(obj: DrmGemObject, file_priv: DrmFile): KGen {
  const prime = file_priv.prime;
  yield* prime.lock.lock();
  const puts = obj.dma_buf ? drm_prime_remove_buf_handle_locked(prime, obj.dma_buf) : [];
  prime.lock.unlock();
  for (const d of puts) yield* dma_buf_put(d);
}

/** The part of deleting a handle after it left the table (drm_gem_object_release_handle). */
function* drm_gem_object_release_handle(obj: DrmGemObject, file_priv: DrmFile): KGen {
  const dev = obj.dev;
  if (drm_core_check_feature(dev, DRIVER_PRIME)) yield* drm_gem_remove_prime_handles(obj, file_priv);
  drm_vma_node_revoke(obj.vma_node, file_priv.filp);
  if (dev.driver.gem_close_object) yield* dev.driver.gem_close_object(obj, file_priv);
  yield* drm_gem_object_handle_unreference_unlocked(obj);
}

/** drm_gem_handle_delete(): 0, or -EINVAL for a handle the file does not have. May sleep. */
export function* drm_gem_handle_delete(file_priv: DrmFile, handle: number): KGen<number> {
  const obj = file_priv.object_idr.find(handle);
  if (!obj) return -ERRNO.EINVAL;
  file_priv.object_idr.remove(handle);
  yield* drm_gem_object_release_handle(obj, file_priv);
  return 0;
}

/** drm_gem_object_lookup(): the object behind `handle` with a new reference, or null. */
export function drm_gem_object_lookup(
  _dev: DrmDevice,
  file_priv: DrmFile,
  handle: number,
): DrmGemObject | null {
  const obj = file_priv.object_idr.find(handle);
  if (!obj) return null;
  drm_gem_object_reference(obj);
  return obj;
}

/** drm_gem_open(): GEM state of a new file (its handle table is created with the DrmFile). */
export function drm_gem_open(_dev: DrmDevice, _file_priv: DrmFile): void {}

/** drm_gem_release(): the file's last close: every handle is deleted, in handle order. */
export function* drm_gem_release(_dev: DrmDevice, file_priv: DrmFile): KGen {
  for (const [, obj] of file_priv.object_idr.entries()) yield* drm_gem_object_release_handle(obj, file_priv);
  file_priv.object_idr.destroy();
}

// --- ioctls -----------------------------------------------------------------------------------

/** DRM_IOCTL_GEM_CLOSE: unknown handle -EINVAL. */
export function drm_gem_close_ioctl(dev: DrmDevice, data: Uint8Array, file_priv: DrmFile): KGen<number> {
  if (!drm_core_check_feature(dev, DRIVER_GEM)) return returns(-ERRNO.ENODEV);
  const args = drm_gem_close.decode(data);
  return drm_gem_handle_delete(file_priv, args.handle);
}

/** DRM_IOCTL_GEM_FLINK: a global name (≥ 1, kept while any handle exists); -ENOENT if unknown. */
export function* drm_gem_flink_ioctl(dev: DrmDevice, data: Uint8Array, file_priv: DrmFile): KGen<number> {
  if (!drm_core_check_feature(dev, DRIVER_GEM)) return -ERRNO.ENODEV;
  const args = drm_gem_flink.decode(data);
  const obj = drm_gem_object_lookup(dev, file_priv, args.handle);
  if (!obj) return -ERRNO.ENOENT;
  yield* dev.object_name_lock.lock();
  let ret = 0;
  if (obj.handle_count === 0) {
    // A racing GEM_CLOSE took the last handle.
    ret = -ERRNO.ENOENT;
  } else {
    if (!obj.name) {
      const name = dev.object_name_idr.alloc(obj);
      if (name < 0) ret = name;
      else obj.name = name;
    }
    if (ret === 0) drm_gem_flink.encode({ ...args, name: obj.name }, data);
  }
  dev.object_name_lock.unlock();
  yield* drm_gem_object_unreference_unlocked(obj);
  return ret;
}

/** DRM_IOCTL_GEM_OPEN: a new handle (and the size) for a flink name; -ENOENT if unknown. */
export function* drm_gem_open_ioctl(dev: DrmDevice, data: Uint8Array, file_priv: DrmFile): KGen<number> {
  if (!drm_core_check_feature(dev, DRIVER_GEM)) return -ERRNO.ENODEV;
  const args = drm_gem_open_args.decode(data);
  yield* dev.object_name_lock.lock();
  // The kernel looks the name up as an int: names above INT_MAX never match.
  const obj = args.name <= 0x7fffffff ? dev.object_name_idr.find(args.name) : undefined;
  if (!obj) {
    dev.object_name_lock.unlock();
    return -ERRNO.ENOENT;
  }
  drm_gem_object_reference(obj);
  const handle = yield* drm_gem_handle_create_tail(file_priv, obj);
  yield* drm_gem_object_unreference_unlocked(obj);
  if (handle < 0) return handle;
  drm_gem_open_args.encode({ name: args.name, handle, size: obj.size }, data);
  return 0;
}

// --- mmap offsets and mmap ----------------------------------------------------------------------

/** drm_gem_create_mmap_offset_size(): a fake offset covering `size` bytes. 0 or -errno. */
export function drm_gem_create_mmap_offset_size(obj: DrmGemObject, size: number): number {
  const mgr = obj.dev.vma_offset_manager;
  if (!mgr) return -ERRNO.ENODEV;
  return drm_vma_offset_add(mgr, obj.vma_node, Math.floor(size / PAGE_SIZE));
}

/** drm_gem_create_mmap_offset(): a fake offset for the whole object. 0 or -errno (-ENOSPC). */
export function drm_gem_create_mmap_offset(obj: DrmGemObject): number {
  return drm_gem_create_mmap_offset_size(obj, obj.size);
}

/** drm_gem_free_mmap_offset(): drivers call it when freeing (3.16's release does not). */
export function drm_gem_free_mmap_offset(obj: DrmGemObject): void {
  const mgr = obj.dev.vma_offset_manager;
  if (mgr) drm_vma_offset_remove(mgr, obj.vma_node);
}

/**
 * drm_gem_mmap_obj(): set up `vma` over `obj` (caller holds struct_mutex): a VM_IO | VM_PFNMAP
 * mapping whose faults are the driver's, holding an object reference until vm_close.
 */
export function drm_gem_mmap_obj(obj: DrmGemObject, obj_size: number, vma: VmAreaStruct): number {
  const dev = obj.dev;
  dev.sched.lockdep_assert_held(dev.struct_mutex, dev.struct_mutex.name);
  if (obj_size < vma.end - vma.start) return -ERRNO.EINVAL;
  if (!dev.driver.gem_vm_ops) return -ERRNO.EINVAL;
  vma.vm_flags |= VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;
  vma.vm_ops = dev.driver.gem_vm_ops;
  vma.vm_private_data = obj;
  drm_gem_object_reference(obj);
  vma_link_file(dev.dev_mapping, vma);
  return 0;
}

/**
 * drm_gem_mmap(): file_operations.mmap of a DRM file. The VMA's page offset must be exactly the
 * start of an object's fake offset range (-EINVAL otherwise: no legacy maps exist, and -EACCES
 * for an unauthenticated client, as drm_mmap answers), and the file must hold a handle to it
 * (-EACCES).
 */
export function* drm_gem_mmap(filp: File, vma: VmAreaStruct): KGen<number> {
  const priv = filp.private_data;
  if (!(priv instanceof DrmFile)) return -ERRNO.ENODEV;
  const dev = priv.dev;
  const mgr = dev.vma_offset_manager;
  yield* dev.struct_mutex.lock();
  const node = mgr ? drm_vma_offset_exact_lookup(mgr, vma.vm_pgoff, (vma.end - vma.start) / PAGE_SIZE) : null;
  if (!node) {
    dev.struct_mutex.unlock();
    // drm_mmap(): the legacy map path; a GEM-only device has no maps.
    return priv.authenticated ? -ERRNO.EINVAL : -ERRNO.EACCES;
  }
  if (!drm_vma_node_is_allowed(node, filp)) {
    dev.struct_mutex.unlock();
    return -ERRNO.EACCES;
  }
  const obj = node.owner as DrmGemObject;
  const ret = drm_gem_mmap_obj(obj, drm_vma_node_size(node) * PAGE_SIZE, vma);
  dev.struct_mutex.unlock();
  return ret;
}

/**
 * drm_gem_vm_open(): a copy of a GEM mapping appeared (fork, split, mremap): it holds its own
 * object reference. Cannot sleep here, so (unlike 3.16) struct_mutex is not taken around it.
 */
export function drm_gem_vm_open(vma: VmAreaStruct): void {
  const obj = vma.vm_private_data as DrmGemObject;
  drm_gem_object_reference(obj);
  vma_link_file(obj.dev.dev_mapping, vma);
}

/** drm_gem_vm_close(): a GEM mapping went: its object reference is dropped under struct_mutex. */
export function* drm_gem_vm_close(vma: VmAreaStruct): KGen {
  const obj = vma.vm_private_data as DrmGemObject;
  const dev = obj.dev;
  yield* unlink_file_vma(dev.dev_mapping, vma);
  yield* dev.struct_mutex.lock();
  yield* drm_gem_object_unreference(obj);
  dev.struct_mutex.unlock();
}
