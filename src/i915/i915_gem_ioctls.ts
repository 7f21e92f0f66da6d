import { ERRNO } from '../base/errno.js';
import { PAGE_SIZE } from '../base/page.js';
import type { DrmDevice } from '../drm/drm_device.js';
import type { DrmFile } from '../drm/drm_file.js';
import {
  drm_gem_create_mmap_offset,
  drm_gem_object_lookup,
  drm_gem_object_unreference,
  drm_gem_object_unreference_unlocked,
} from '../drm/drm_gem.js';
import { DRM_IOCTL_DEF, DRM_RENDER_ALLOW, DRM_UNLOCKED, type DrmIoctlDesc } from '../drm/drm_ioctl.js';
import { drm_vma_node_has_offset, drm_vma_node_offset_addr } from '../drm/drm_vma_manager.js';
import { current } from '../mm/current.js';
import { File, type FileOperations, fput, get_file } from '../mm/file.js';
import { pte_allows } from '../mm/memory.js';
import { type MmStruct, TASK_SIZE, type VmAreaStruct, pte_pfn } from '../mm/mm_types.js';
import { vm_mmap_pgoff } from '../mm/mmap.js';
import { shmem_vm_ops } from '../mm/shmem.js';
import {
  copy_from_user,
  copy_to_user,
  fault_in_multipages_readable,
  fault_in_multipages_writeable,
  user_pages_readable,
} from '../mm/uaccess.js';
import type { KGen } from '../sched/task.js';
import * as mman from '../uapi/mman.js';
import * as uapi from '../uapi/i915_drm.js';
import { to_i915 } from './i915_drv.js';
import {
  i915_gem_object_get_pages,
  i915_gem_object_pin_pages,
  i915_gem_object_truncate,
  i915_gem_object_unpin_pages,
  i915_gem_object_wait_rendering,
  i915_mutex_lock_interruptible,
  i915_gem_object_lookup_locked,
} from './i915_gem.js';
import {
  I915_CACHE_L3_LLC,
  I915_CACHE_LLC,
  I915_CACHE_NONE,
  I915_CACHE_WT,
  I915_GEM_GPU_DOMAINS,
  i915_gem_obj_is_pinned,
  i915_gem_object_flush_cpu_write_domain,
  i915_gem_object_set_cache_level,
  i915_gem_object_set_to_cpu_domain,
  i915_gem_object_set_to_gtt_domain,
  i915_gem_object_wait_rendering__nonblocking,
} from './i915_gem_domain.js';
import { type DrmI915GemObject, ObjectPoint, to_intel_bo } from './i915_gem_object.js';
import { i915_gem_object_is_purgeable, i915_gem_purge } from './i915_gem_shrinker.js';
import { i915_gem_get_tiling, i915_gem_set_tiling } from './i915_gem_tiling.js';

/**
 * The GEM ioctls of Linux 3.16 i915_gem.c other than CREATE, BUSY, WAIT and EXECBUFFER2: PREAD,
 * PWRITE, MMAP (CPU), MMAP_GTT, SET_DOMAIN, SW_FINISH, SET/GET_CACHING, MADVISE, GET_APERTURE,
 * and (from i915_gem_tiling.ts) SET/GET_TILING. Check order and errno are 3.16's.
 *
 * Objects without a shmem file (`filp` null: userptr, imports) get -EINVAL from PREAD, PWRITE
 * and MMAP, exactly as 3.16 answers them; MMAP_GTT and the rest work on any object.
 *
 * Copying to and from user memory under struct_mutex. A GTT-mmap fault takes struct_mutex under
 * mmap_sem, so PREAD/PWRITE may not fault while holding struct_mutex. As 3.16 does, they first
 * copy without faulting (only through PTEs that are present — `__copy_*_user_inatomic`), and
 * when that fails drop struct_mutex for a faulting copy, the object's pages pinned meanwhile.
 */

/** access_ok() of a u64 pointer and length: inside user space, no wrap. */
function access_ok_u64(addr: bigint, size: bigint): boolean {
  return addr + size <= BigInt(TASK_SIZE);
}

/**
 * __copy_to_user_inatomic() / __copy_from_user_inatomic(): copy through present PTEs only (no
 * fault, no sleep; writes need a writable PTE). Returns the bytes NOT copied.
 */
function copy_user_inatomic(mm: MmStruct, uaddr: number, buf: Uint8Array, to_user: boolean): number {
  if (mm.freed) return buf.length;
  const ram = mm.k.ram;
  let done = 0;
  while (done < buf.length) {
    const a = uaddr + done;
    const off = a % PAGE_SIZE;
    const n = Math.min(PAGE_SIZE - off, buf.length - done);
    const pte = mm.pgd.get(Math.floor(a / PAGE_SIZE));
    if (!pte_allows(pte, to_user)) return buf.length - done;
    const frame = ram.frame(pte_pfn(pte));
    if (to_user) frame.set(buf.subarray(done, done + n), off);
    else buf.set(frame.subarray(off, off + n), done);
    done += n;
  }
  return 0;
}

/**
 * The page loop of i915_gem_shmem_pread / _pwrite: copies object bytes [offset, offset + size)
 * to (pread) or from user memory at `user`, a run of physically contiguous frames at a time.
 * The caller holds struct_mutex and a pin on the pages. 0 or -EFAULT.
 */
function* shmem_copy(
  obj: DrmI915GemObject,
  mm: MmStruct,
  offset: number,
  size: number,
  user: number,
  to_user: boolean,
): KGen<number> {
  const dev = obj.dev;
  const ram = dev.k.ram;
  const pages = obj.pages!;
  let prefaulted = false;
  let remain = size;
  yield new ObjectPoint(to_user ? 'shmem_pread' : 'shmem_pwrite', obj, -1, Math.ceil(size / PAGE_SIZE));
  while (remain > 0) {
    const idx = Math.floor(offset / PAGE_SIZE);
    const page_off = offset % PAGE_SIZE;
    const first = pages[idx]!;
    const run = ram.contiguousRun(first, Math.ceil((page_off + remain) / PAGE_SIZE));
    let n = 1;
    while (n < run && pages[idx + n] === first + n) n++;
    const len = Math.min(n * PAGE_SIZE - page_off, remain);
    const kbuf = ram.span(first, n).subarray(page_off, page_off + len);
    const left = copy_user_inatomic(mm, user, kbuf, to_user);
    if (left) {
      // The slow path: the user pages must be faulted in, which may not happen under
      // struct_mutex. The pages stay pinned while it is dropped.
      const done = len - left;
      dev.struct_mutex.unlock();
      let unwritten: number;
      if (to_user) {
        // 3.16 prefaults (and so clobbers) the rest of the destination once, ignoring errors.
        if (!prefaulted) yield* fault_in_multipages_writeable(mm, user + done, remain - done);
        prefaulted = true;
        unwritten = yield* copy_to_user(mm, user + done, kbuf.subarray(done));
      } else {
        const tmp = new Uint8Array(left);
        unwritten = yield* copy_from_user(mm, tmp, user + done);
        kbuf.set(tmp.subarray(0, left - unwritten), done);
      }
      yield* dev.struct_mutex.lock();
      if (unwritten) return -ERRNO.EFAULT;
    }
    remain -= len;
    user += len;
    offset += len;
  }
  return 0;
}

// --- PREAD / PWRITE ------------------------------------------------------------------------------

/**
 * i915_gem_shmem_pread() with i915_gem_obj_prepare_shmem_read(): outside the CPU read domain,
 * wait for the GPU's writes first; then acquire and pin the pages and copy out.
 */
function* i915_gem_shmem_pread(
  obj: DrmI915GemObject,
  offset: number,
  size: number,
  user: number,
): KGen<number> {
  const mm = current(obj.dev.k).mm;
  if (!mm) return -ERRNO.EFAULT;
  if (!obj.filp) return -ERRNO.EINVAL;
  // A GPU write always leaves the object outside the CPU read domain (execbuffer's move_to_gpu).
  if (!(obj.read_domains & uapi.I915_GEM_DOMAIN_CPU)) {
    const ret = yield* i915_gem_object_wait_rendering(obj, true);
    if (ret) return ret;
  }
  let ret = yield* i915_gem_object_get_pages(obj);
  if (ret) return ret;
  i915_gem_object_pin_pages(obj);
  ret = yield* shmem_copy(obj, mm, offset, size, user, true);
  i915_gem_object_unpin_pages(obj);
  return ret;
}

/** DRM_IOCTL_I915_GEM_PREAD. */
export function* i915_gem_pread_ioctl(dev: DrmDevice, data: Uint8Array, file: DrmFile): KGen<number> {
  const args = uapi.drm_i915_gem_pread.decode(data);
  if (args.size === 0n) return 0;
  if (!access_ok_u64(args.data_ptr, args.size)) return -ERRNO.EFAULT;
  const obj = yield* i915_gem_object_lookup_locked(dev, file, args.handle);
  if (typeof obj === 'number') return obj;
  let ret: number;
  const size = BigInt(obj.size);
  if (args.offset > size || args.size > size - args.offset) ret = -ERRNO.EINVAL;
  else if (!obj.filp) ret = -ERRNO.EINVAL;
  else ret = yield* i915_gem_shmem_pread(obj, Number(args.offset), Number(args.size), Number(args.data_ptr));
  yield* drm_gem_object_unreference(obj);
  dev.struct_mutex.unlock();
  return ret;
}

/**
 * i915_gem_shmem_pwrite(): outside the CPU write domain, wait for every GPU use; then acquire and
 * pin the pages and copy in. (3.16's GTT pwrite path is taken only when a CPU write would need a
 * clflush, never on an LLC part.)
 */
function* i915_gem_shmem_pwrite(
  obj: DrmI915GemObject,
  offset: number,
  size: number,
  user: number,
): KGen<number> {
  const mm = current(obj.dev.k).mm;
  if (!mm) return -ERRNO.EFAULT;
  // Any GPU use takes the object out of the CPU write domain.
  if (obj.write_domain !== uapi.I915_GEM_DOMAIN_CPU) {
    const ret = yield* i915_gem_object_wait_rendering(obj, false);
    if (ret) return ret;
  }
  let ret = yield* i915_gem_object_get_pages(obj);
  if (ret) return ret;
  i915_gem_object_pin_pages(obj);
  obj.dirty = true;
  ret = yield* shmem_copy(obj, mm, offset, size, user, false);
  i915_gem_object_unpin_pages(obj);
  return ret;
}

/** DRM_IOCTL_I915_GEM_PWRITE. */
export function* i915_gem_pwrite_ioctl(dev: DrmDevice, data: Uint8Array, file: DrmFile): KGen<number> {
  const args = uapi.drm_i915_gem_pwrite.decode(data);
  if (args.size === 0n) return 0;
  if (!access_ok_u64(args.data_ptr, args.size)) return -ERRNO.EFAULT;
  const mm = current(dev.k).mm;
  // Prefault the source before taking any lock (i915.prefault_disable is off).
  if (!mm) return -ERRNO.EFAULT;
  const data_ptr = Number(args.data_ptr);
  const len = Number(args.size);
  if (!user_pages_readable(mm, data_ptr, len) && (yield* fault_in_multipages_readable(mm, data_ptr, len))) {
    return -ERRNO.EFAULT;
  }
  const obj = yield* i915_gem_object_lookup_locked(dev, file, args.handle);
  if (typeof obj === 'number') return obj;
  let ret: number;
  const size = BigInt(obj.size);
  if (args.offset > size || args.size > size - args.offset) ret = -ERRNO.EINVAL;
  else if (!obj.filp) ret = -ERRNO.EINVAL;
  else ret = yield* i915_gem_shmem_pwrite(obj, Number(args.offset), Number(args.size), Number(args.data_ptr));
  yield* drm_gem_object_unreference(obj);
  dev.struct_mutex.unlock();
  return ret;
}

// --- MMAP (CPU) ----------------------------------------------------------------------------------

/**
 * A second struct file for a shmem file whose file_operations have no ->mmap (the mm layer's
 * shmem files are not mmap-able yet): its mmap installs shmem's fault handler over the same
 * shmem object, and it holds a reference on the real file until the last mapping goes. With a
 * shmem ->mmap in place the real file is mapped directly (see shmem_file_for_mmap).
 */
const ALIAS_OF = Symbol('shmem mmap alias of');
/** An alias file carries the real file as a symbol-keyed property (a WeakMap would keep it alive). */
type AliasFile = File & { [ALIAS_OF]?: File | undefined };
const shmem_mmap_alias_fops: FileOperations = {
  name: 'shmem',
  *mmap(_file: File, vma: VmAreaStruct): KGen<number> {
    vma.vm_ops = shmem_vm_ops;
    return 0;
  },
  *release(file: File): KGen {
    const alias = file as AliasFile;
    const target = alias[ALIAS_OF];
    alias[ALIAS_OF] = undefined;
    if (target) yield* fput(target);
  },
};

/** The file vm_mmap maps for `filp`, with a reference the caller drops with fput(). */
function shmem_file_for_mmap(filp: File): File {
  if (filp.f_op.mmap) return get_file(filp);
  const alias = new File(shmem_mmap_alias_fops, filp.f_flags, filp.path, filp.sched);
  alias.private_data = filp.private_data;
  (alias as AliasFile)[ALIAS_OF] = get_file(filp);
  return alias;
}

/**
 * vm_mmap(): offset checks, then vm_mmap_pgoff in the caller's mm. Returns the address or -errno.
 */
function* vm_mmap(
  mm: MmStruct,
  file: File,
  addr: number,
  len: bigint,
  prot: number,
  flags: number,
  offset: bigint,
): KGen<number> {
  const aligned = (len + BigInt(PAGE_SIZE - 1)) & ~BigInt(PAGE_SIZE - 1);
  if (BigInt.asUintN(64, offset + aligned) < offset) return -ERRNO.EINVAL;
  if (offset % BigInt(PAGE_SIZE) !== 0n) return -ERRNO.EINVAL;
  // A length that wraps when page-aligned is -ENOMEM in do_mmap_pgoff.
  if (len > BigInt(Number.MAX_SAFE_INTEGER - PAGE_SIZE)) return -ERRNO.ENOMEM;
  return yield* vm_mmap_pgoff(mm, file, addr, Number(len), prot, flags, Number(offset / BigInt(PAGE_SIZE)));
}

/**
 * DRM_IOCTL_I915_GEM_MMAP: map the object's shmem file MAP_SHARED into the caller. The mapping
 * holds the file, not the object: it stays valid after the handle is closed. `flags` (the v2
 * struct) takes I915_MMAP_WC only; a v1 caller's struct is zero-extended, so flags read 0. Write
 * combining is accepted (every modelled CPU has PAT) and maps the same pages: caching
 * attributes are not modelled.
 */
export function* i915_gem_mmap_ioctl(dev: DrmDevice, data: Uint8Array, file: DrmFile): KGen<number> {
  const args = uapi.drm_i915_gem_mmap.decode(data);
  if (args.flags & ~BigInt(uapi.I915_MMAP_WC)) return -ERRNO.EINVAL;
  const gem = drm_gem_object_lookup(dev, file, args.handle);
  if (!gem) return -ERRNO.ENOENT;
  // Objects without a shmem file (userptr, imports) have nothing to map.
  if (!gem.filp) {
    yield* drm_gem_object_unreference_unlocked(gem);
    return -ERRNO.EINVAL;
  }
  const mm = current(dev.k).mm;
  let addr = -ERRNO.EINVAL;
  if (mm) {
    const f = shmem_file_for_mmap(gem.filp);
    addr = yield* vm_mmap(
      mm,
      f,
      0,
      args.size,
      mman.PROT_READ | mman.PROT_WRITE,
      mman.MAP_SHARED,
      args.offset,
    );
    yield* fput(f);
  }
  yield* drm_gem_object_unreference_unlocked(gem);
  if (addr < 0) return addr;
  uapi.drm_i915_gem_mmap.encode({ ...args, addr_ptr: BigInt(addr) }, data);
  return 0;
}

// --- MMAP_GTT ------------------------------------------------------------------------------------

/**
 * i915_gem_object_create_mmap_offset(): a fake offset for the object; when the offset space is
 * full, purge and try again.
 */
function* i915_gem_object_create_mmap_offset(obj: DrmI915GemObject): KGen<number> {
  if (drm_vma_node_has_offset(obj.vma_node)) return 0;
  let ret = drm_gem_create_mmap_offset(obj);
  if (ret !== -ERRNO.ENOSPC) return ret;
  yield* i915_gem_purge(to_i915(obj.dev), obj.size / PAGE_SIZE);
  ret = drm_gem_create_mmap_offset(obj);
  return ret;
}

/**
 * DRM_IOCTL_I915_GEM_MMAP_GTT: the fake offset to pass to mmap(drm_fd, offset). -E2BIG when the
 * object can never fit the aperture, -EFAULT for a purgeable object.
 */
export function* i915_gem_mmap_gtt_ioctl(dev: DrmDevice, data: Uint8Array, file: DrmFile): KGen<number> {
  const dp = to_i915(dev);
  const args = uapi.drm_i915_gem_mmap_gtt.decode(data);
  const obj = yield* i915_gem_object_lookup_locked(dev, file, args.handle);
  if (typeof obj === 'number') return obj;
  let ret: number;
  if (obj.size > dp.mappable_end) ret = -ERRNO.E2BIG;
  else if (obj.madv !== uapi.I915_MADV_WILLNEED) ret = -ERRNO.EFAULT;
  else ret = yield* i915_gem_object_create_mmap_offset(obj);
  if (ret === 0) {
    uapi.drm_i915_gem_mmap_gtt.encode(
      { ...args, offset: BigInt(drm_vma_node_offset_addr(obj.vma_node)) },
      data,
    );
  }
  yield* drm_gem_object_unreference(obj);
  dev.struct_mutex.unlock();
  return ret;
}

// --- SET_DOMAIN / SW_FINISH ------------------------------------------------------------------------

/**
 * DRM_IOCTL_I915_GEM_SET_DOMAIN: only CPU-side domains; a write domain must equal the read
 * domains. Waits for the GPU (its writes only when write_domain is 0) and moves the object to
 * the GTT domain (silently nothing when unbound) or the CPU domain. Pages are NOT acquired.
 */
export function* i915_gem_set_domain_ioctl(dev: DrmDevice, data: Uint8Array, file: DrmFile): KGen<number> {
  const args = uapi.drm_i915_gem_set_domain.decode(data);
  const { read_domains, write_domain } = args;
  if (write_domain & I915_GEM_GPU_DOMAINS) return -ERRNO.EINVAL;
  if (read_domains & I915_GEM_GPU_DOMAINS) return -ERRNO.EINVAL;
  if (write_domain !== 0 && read_domains !== write_domain) return -ERRNO.EINVAL;
  const obj = yield* i915_gem_object_lookup_locked(dev, file, args.handle);
  if (typeof obj === 'number') return obj;
  let ret = yield* i915_gem_object_wait_rendering__nonblocking(obj, write_domain === 0);
  if (ret === 0) {
    if (read_domains & uapi.I915_GEM_DOMAIN_GTT) {
      ret = yield* i915_gem_object_set_to_gtt_domain(obj, write_domain !== 0);
      // "Not bound, nothing to do" is success: the client only wanted the GPU done.
      if (ret === -ERRNO.EINVAL) ret = 0;
    } else {
      ret = yield* i915_gem_object_set_to_cpu_domain(obj, write_domain !== 0);
    }
  }
  yield* drm_gem_object_unreference(obj);
  dev.struct_mutex.unlock();
  return ret;
}

/** DRM_IOCTL_I915_GEM_SW_FINISH: a scanout buffer's CPU writes are flushed for the display. */
export function* i915_gem_sw_finish_ioctl(dev: DrmDevice, data: Uint8Array, file: DrmFile): KGen<number> {
  const args = uapi.drm_i915_gem_sw_finish.decode(data);
  const ret = yield* i915_mutex_lock_interruptible(dev);
  if (ret) return ret;
  const gem = drm_gem_object_lookup(dev, file, args.handle);
  if (!gem) {
    dev.struct_mutex.unlock();
    return -ERRNO.ENOENT;
  }
  // Pinned buffers may be scanout: flush the CPU cache (nothing to clflush on LLC parts).
  const obj = to_intel_bo(gem);
  if (obj.pin_display) i915_gem_object_flush_cpu_write_domain(obj);
  yield* drm_gem_object_unreference(gem);
  dev.struct_mutex.unlock();
  return 0;
}

// --- SET_CACHING / GET_CACHING ---------------------------------------------------------------------

/** HAS_WT(): write-through caching exists only on Haswell with eDRAM, neither modelled part. */
const HAS_WT = false;

/** DRM_IOCTL_I915_GEM_SET_CACHING: NONE, CACHED, or DISPLAY (WT where it exists, else NONE). */
export function* i915_gem_set_caching_ioctl(dev: DrmDevice, data: Uint8Array, file: DrmFile): KGen<number> {
  const args = uapi.drm_i915_gem_caching.decode(data);
  let level: number;
  switch (args.caching) {
    case uapi.I915_CACHING_NONE:
      level = I915_CACHE_NONE;
      break;
    case uapi.I915_CACHING_CACHED:
      level = I915_CACHE_LLC;
      break;
    case uapi.I915_CACHING_DISPLAY:
      level = HAS_WT ? I915_CACHE_WT : I915_CACHE_NONE;
      break;
    default:
      return -ERRNO.EINVAL;
  }
  const obj = yield* i915_gem_object_lookup_locked(dev, file, args.handle);
  if (typeof obj === 'number') return obj;
  const ret = yield* i915_gem_object_set_cache_level(obj, level);
  yield* drm_gem_object_unreference(obj);
  dev.struct_mutex.unlock();
  return ret;
}

/** DRM_IOCTL_I915_GEM_GET_CACHING. */
export function* i915_gem_get_caching_ioctl(dev: DrmDevice, data: Uint8Array, file: DrmFile): KGen<number> {
  const args = uapi.drm_i915_gem_caching.decode(data);
  const obj = yield* i915_gem_object_lookup_locked(dev, file, args.handle);
  if (typeof obj === 'number') return obj;
  let caching: number;
  switch (obj.cache_level) {
    case I915_CACHE_LLC:
    case I915_CACHE_L3_LLC:
      caching = uapi.I915_CACHING_CACHED;
      break;
    case I915_CACHE_WT:
      caching = uapi.I915_CACHING_DISPLAY;
      break;
    default:
      caching = uapi.I915_CACHING_NONE;
  }
  uapi.drm_i915_gem_caching.encode({ handle: args.handle, caching }, data);
  yield* drm_gem_object_unreference(obj);
  dev.struct_mutex.unlock();
  return 0;
}

// --- MADVISE ---------------------------------------------------------------------------------------

/**
 * DRM_IOCTL_I915_GEM_MADVISE: WILLNEED or DONTNEED (-EINVAL otherwise, and for a pinned object).
 * A purged object stays purged. A purgeable object without pages is truncated at once;
 * `retained` says whether the contents still exist.
 */
export function* i915_gem_madvise_ioctl(dev: DrmDevice, data: Uint8Array, file: DrmFile): KGen<number> {
  const args = uapi.drm_i915_gem_madvise.decode(data);
  if (args.madv !== uapi.I915_MADV_DONTNEED && args.madv !== uapi.I915_MADV_WILLNEED) return -ERRNO.EINVAL;
  const obj = yield* i915_gem_object_lookup_locked(dev, file, args.handle);
  if (typeof obj === 'number') return obj;
  let ret = 0;
  if (i915_gem_obj_is_pinned(obj)) {
    ret = -ERRNO.EINVAL;
  } else {
    if (obj.madv !== uapi.__I915_MADV_PURGED) obj.madv = args.madv;
    // No longer attached to any pages: discard the backing storage now.
    if (i915_gem_object_is_purgeable(obj) && !obj.pages) i915_gem_object_truncate(obj);
    const retained = obj.madv !== uapi.__I915_MADV_PURGED ? 1 : 0;
    uapi.drm_i915_gem_madvise.encode({ ...args, retained }, data);
  }
  yield* drm_gem_object_unreference(obj);
  dev.struct_mutex.unlock();
  return ret;
}

// --- GET_APERTURE ----------------------------------------------------------------------------------

/** DRM_IOCTL_I915_GEM_GET_APERTURE: the GTT's size, and what pinned objects leave of it. */
export function* i915_gem_get_aperture_ioctl(dev: DrmDevice, data: Uint8Array, _file: DrmFile): KGen<number> {
  const dp = to_i915(dev);
  let pinned = 0;
  yield* dev.struct_mutex.lock();
  for (const obj of dp.bound_list) if (i915_gem_obj_is_pinned(obj)) pinned += obj.vma!.node.size;
  dev.struct_mutex.unlock();
  const aper_size = BigInt(dp.gtt_total);
  uapi.drm_i915_gem_get_aperture.encode({ aper_size, aper_available_size: aper_size - BigInt(pinned) }, data);
  return 0;
}

// --- the table -------------------------------------------------------------------------------------

const FLAGS = DRM_UNLOCKED | DRM_RENDER_ALLOW;

/** The GEM ioctls other than create/busy/wait/execbuffer, with 3.16's flags. */
export const gem_ioctls: DrmIoctlDesc[] = [
  DRM_IOCTL_DEF(uapi.DRM_IOCTL_I915_GEM_PREAD, i915_gem_pread_ioctl, FLAGS, 'I915_GEM_PREAD'),
  DRM_IOCTL_DEF(uapi.DRM_IOCTL_I915_GEM_PWRITE, i915_gem_pwrite_ioctl, FLAGS, 'I915_GEM_PWRITE'),
  DRM_IOCTL_DEF(uapi.DRM_IOCTL_I915_GEM_MMAP, i915_gem_mmap_ioctl, FLAGS, 'I915_GEM_MMAP'),
  DRM_IOCTL_DEF(uapi.DRM_IOCTL_I915_GEM_MMAP_GTT, i915_gem_mmap_gtt_ioctl, FLAGS, 'I915_GEM_MMAP_GTT'),
  DRM_IOCTL_DEF(uapi.DRM_IOCTL_I915_GEM_SET_DOMAIN, i915_gem_set_domain_ioctl, FLAGS, 'I915_GEM_SET_DOMAIN'),
  DRM_IOCTL_DEF(uapi.DRM_IOCTL_I915_GEM_SW_FINISH, i915_gem_sw_finish_ioctl, FLAGS, 'I915_GEM_SW_FINISH'),
  DRM_IOCTL_DEF(uapi.DRM_IOCTL_I915_GEM_SET_TILING, i915_gem_set_tiling, FLAGS, 'I915_GEM_SET_TILING'),
  DRM_IOCTL_DEF(uapi.DRM_IOCTL_I915_GEM_GET_TILING_V1, i915_gem_get_tiling, FLAGS, 'I915_GEM_GET_TILING'),
  DRM_IOCTL_DEF(
    uapi.DRM_IOCTL_I915_GEM_GET_APERTURE,
    i915_gem_get_aperture_ioctl,
    FLAGS,
    'I915_GEM_GET_APERTURE',
  ),
  DRM_IOCTL_DEF(uapi.DRM_IOCTL_I915_GEM_MADVISE, i915_gem_madvise_ioctl, FLAGS, 'I915_GEM_MADVISE'),
  DRM_IOCTL_DEF(
    uapi.DRM_IOCTL_I915_GEM_SET_CACHING,
    i915_gem_set_caching_ioctl,
    FLAGS,
    'I915_GEM_SET_CACHING',
  ),
  DRM_IOCTL_DEF(
    uapi.DRM_IOCTL_I915_GEM_GET_CACHING,
    i915_gem_get_caching_ioctl,
    FLAGS,
    'I915_GEM_GET_CACHING',
  ),
];
