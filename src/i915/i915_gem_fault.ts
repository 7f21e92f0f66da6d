import { ERRNO } from '../base/errno.js';
import { PAGE_SIZE } from '../base/page.js';
import type { DrmGemObject } from '../drm/drm_gem.js';
import { drm_vma_node_has_offset, drm_vma_node_start } from '../drm/drm_vma_manager.js';
import { vm_insert_pfn } from '../mm/memory.js';
import {
  FAULT_FLAG_WRITE,
  VM_FAULT_NOPAGE,
  VM_FAULT_OOM,
  VM_FAULT_SIGBUS,
  type VmAreaStruct,
  type VmOperations,
} from '../mm/mm_types.js';
import type { KGen } from '../sched/task.js';
import { to_i915 } from './i915_drv.js';
import { i915_mutex_lock_interruptible } from './i915_gem.js';
import {
  I915_CACHE_NONE,
  i915_gem_object_set_to_gtt_domain,
  i915_gem_object_wait_rendering__nonblocking,
} from './i915_gem_domain.js';
import { i915_gem_object_ggtt_unpin, i915_gem_object_pin } from './i915_gem_gtt.js';
import { type DrmI915GemObject, to_intel_bo } from './i915_gem_object.js';

/**
 * The GTT mmap fault handler (Linux 3.16 i915_gem.c i915_gem_fault, with 3.17's prefault of the
 * whole object): a CPU access to a `mmap(drm_fd, fake_offset)` mapping binds the object into the
 * CPU-visible aperture and points the process's PTEs at the aperture pages. In the model an
 * aperture page is the frame the GTT entry points at, so the PTE gets `gtt.translate(addr)`.
 *
 * Runs with the faulting mm's mmap_sem held for read and takes struct_mutex: the lock order
 * mmap_sem → struct_mutex is why every ioctl that copies to or from user memory under
 * struct_mutex must never fault there (see i915_gem_ioctls.ts, pread/pwrite).
 */

/**
 * The object page that user address `addr` of `vma` maps. 3.16 counts from vm_start, which is
 * wrong for a VMA that was split or partially unmapped; the model counts from the fake offset the
 * VMA maps (vm_pgoff), falling back to vm_start when the offset is gone (a truncated object).
 */
function object_page(obj: DrmI915GemObject, vma: VmAreaStruct, addr: number): number {
  const rel = Math.floor((addr - vma.start) / PAGE_SIZE);
  if (!drm_vma_node_has_offset(obj.vma_node)) return rel;
  return vma.vm_pgoff - drm_vma_node_start(obj.vma_node) + rel;
}

/** The part of i915_gem_fault under struct_mutex: 0 or -errno. */
function* i915_gem_fault_locked(
  obj: DrmI915GemObject,
  vma: VmAreaStruct,
  vaddr: number,
  write: boolean,
): KGen<number> {
  const dp = to_i915(obj.dev);
  // Flush the GPU off the object without holding the lock; set_to_gtt_domain repeats it locked.
  let ret = yield* i915_gem_object_wait_rendering__nonblocking(obj, !write);
  if (ret) return ret;
  // Access to snoopable pages through the GTT is incoherent.
  if (obj.cache_level !== I915_CACHE_NONE && !dp.info.has_llc) return -ERRNO.EFAULT;
  ret = yield* i915_gem_object_pin(obj, 0, { mappable: true });
  if (ret) return ret;
  ret = yield* i915_gem_object_set_to_gtt_domain(obj, write);
  // i915_gem_object_get_fence(): fence registers are not modelled (tiled objects are accessed
  // linearly through the aperture).
  if (ret === 0) {
    const npages = obj.size / PAGE_SIZE;
    const base = obj.vma!.start;
    const pfn_of = (addr: number): number => {
      const page = object_page(obj, vma, addr);
      return page >= 0 && page < npages ? dp.gtt.translate(base + page * PAGE_SIZE) : -1;
    };
    if (!obj.fault_mappable) {
      // Prefault every page of the VMA the object backs; stop at the first PTE already there.
      for (let addr = vma.start; addr < vma.end; addr += PAGE_SIZE) {
        const pfn = pfn_of(addr);
        if (pfn < 0) continue;
        ret = vm_insert_pfn(vma, addr, pfn);
        if (ret) break;
      }
      obj.fault_mappable = true;
    } else {
      const pfn = pfn_of(vaddr);
      ret = pfn < 0 ? -ERRNO.EFAULT : vm_insert_pfn(vma, vaddr, pfn);
    }
  }
  i915_gem_object_ggtt_unpin(obj);
  return ret;
}

/** i915_gem_fault(): vm_operations_struct.fault of GTT mmaps. Returns VM_FAULT_* bits. */
export function* i915_gem_fault(vma: VmAreaStruct, vaddr: number, flags: number): KGen<number> {
  const obj = to_intel_bo(vma.vm_private_data as DrmGemObject);
  const dev = obj.dev;
  const dp = to_i915(dev);
  const write = (flags & FAULT_FLAG_WRITE) !== 0;
  yield {
    op: 'i915_gem_fault',
    resource: obj.toString(),
    detail: `0x${vaddr.toString(16)}${write ? ' W' : ''}`,
  };
  let ret = yield* i915_mutex_lock_interruptible(dev);
  if (ret === 0) {
    ret = yield* i915_gem_fault_locked(obj, vma, vaddr, write);
    dev.struct_mutex.unlock();
  }
  switch (ret) {
    case -ERRNO.EIO:
      // A hang: let the reset clean up and fault again, unless the GPU is gone for good.
      if (dp.gpu_error.wedged) return VM_FAULT_SIGBUS;
      return VM_FAULT_NOPAGE;
    case -ERRNO.EAGAIN: // a reset is pending: retry once it is done
    case 0:
    case -ERRNO.ERESTARTSYS:
    case -ERRNO.EINTR:
    case -ERRNO.EBUSY: // another thread inserted the PTE first
      return VM_FAULT_NOPAGE;
    case -ERRNO.ENOMEM:
      return VM_FAULT_OOM;
    case -ERRNO.ENOSPC:
    case -ERRNO.EFAULT:
      return VM_FAULT_SIGBUS;
    default:
      dp.k.sched.report('WARN', `unhandled error in i915_gem_fault: ${ret}`);
      return VM_FAULT_SIGBUS;
  }
}

/** i915_gem_vm_ops (the DRM core adds drm_gem_vm_open/close). */
export const i915_gem_vm_ops: VmOperations = { name: 'i915_gem_vm_ops', fault: i915_gem_fault };
