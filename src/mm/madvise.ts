import { ERRNO } from '../base/errno.js';
import { PAGE_ALIGN, PAGE_SIZE, isPageAligned } from '../base/page.js';
import type { KGen } from '../sched/task.js';
import * as mman from '../uapi/mman.js';
import { zap_page_range } from './memory.js';
import {
  type MmStruct,
  VM_DONTCOPY,
  VM_DONTDUMP,
  VM_IO,
  VM_LOCKED,
  VM_PFNMAP,
  VM_SHARED,
  VM_WRITE,
  type VmAreaStruct,
} from './mm_types.js';
import { split_range, vma_merge } from './mmap.js';
import { ShmemObject } from './shmem.js';

/** madvise_behavior_valid() of 3.16 (CONFIG_KSM and CONFIG_TRANSPARENT_HUGEPAGE set). */
const VALID = new Set([
  mman.MADV_NORMAL,
  mman.MADV_RANDOM,
  mman.MADV_SEQUENTIAL,
  mman.MADV_WILLNEED,
  mman.MADV_DONTNEED,
  mman.MADV_REMOVE,
  mman.MADV_DONTFORK,
  mman.MADV_DOFORK,
  mman.MADV_MERGEABLE,
  mman.MADV_UNMERGEABLE,
  mman.MADV_HUGEPAGE,
  mman.MADV_NOHUGEPAGE,
  mman.MADV_DONTDUMP,
  mman.MADV_DODUMP,
]);

/** madvise_need_mmap_write(). */
function need_write(behavior: number): boolean {
  return behavior !== mman.MADV_REMOVE && behavior !== mman.MADV_WILLNEED && behavior !== mman.MADV_DONTNEED;
}

/** madvise_behavior(): advice that changes VMA flags, splitting and merging as needed. */
function* madvise_behavior(
  mm: MmStruct,
  vma: VmAreaStruct,
  start: number,
  end: number,
  behavior: number,
): KGen<number> {
  let newflags = vma.vm_flags;
  switch (behavior) {
    case mman.MADV_DONTFORK:
      newflags |= VM_DONTCOPY;
      break;
    case mman.MADV_DOFORK:
      if (vma.vm_flags & VM_IO) return -ERRNO.EINVAL;
      newflags &= ~VM_DONTCOPY;
      break;
    case mman.MADV_DONTDUMP:
      newflags |= VM_DONTDUMP;
      break;
    case mman.MADV_DODUMP:
      newflags &= ~VM_DONTDUMP;
      break;
    default:
      // Read-ahead hints, KSM and THP advice: accepted, no modelled effect.
      return 0;
  }
  if (newflags === vma.vm_flags) return 0;
  const vmas = split_range(mm, start, end);
  if (typeof vmas === 'number') return -ERRNO.EAGAIN;
  for (const v of vmas) {
    v.vm_flags = newflags;
    yield* vma_merge(mm, v);
  }
  return 0;
}

/** madvise_vma(). */
function* madvise_vma(
  mm: MmStruct,
  vma: VmAreaStruct,
  start: number,
  end: number,
  behavior: number,
): KGen<number> {
  switch (behavior) {
    case mman.MADV_DONTNEED:
      if (vma.vm_flags & (VM_LOCKED | VM_PFNMAP)) return -ERRNO.EINVAL;
      yield* zap_page_range(vma, start, end - start);
      return 0;
    case mman.MADV_WILLNEED:
      return 0;
    case mman.MADV_REMOVE: {
      if (vma.vm_flags & VM_LOCKED) return -ERRNO.EINVAL;
      const obj = vma.vm_file?.private_data;
      if (!(obj instanceof ShmemObject)) return -ERRNO.EINVAL;
      if ((vma.vm_flags & (VM_SHARED | VM_WRITE)) !== (VM_SHARED | VM_WRITE)) return -ERRNO.EACCES;
      yield* zap_page_range(vma, start, end - start);
      for (let a = start; a < end; a += PAGE_SIZE) {
        const idx = vma.pgoff_of(a);
        const pfn = obj.pages.get(idx);
        if (pfn === undefined) continue;
        obj.pages.delete(idx);
        mm.k.ram.put_page(pfn);
      }
      return 0;
    }
    default:
      return yield* madvise_behavior(mm, vma, start, end, behavior);
  }
}

/** SYSCALL madvise(2) on `mm`: 3.16's checks, walk and -ENOMEM for holes. */
export function* sys_madvise(mm: MmStruct, start: number, len_in: number, behavior: number): KGen<number> {
  if (!VALID.has(behavior)) return -ERRNO.EINVAL;
  if (!isPageAligned(start)) return -ERRNO.EINVAL;
  const len = PAGE_ALIGN(len_in);
  if (len_in && !len) return -ERRNO.EINVAL;
  const end = start + len;
  if (end < start) return -ERRNO.EINVAL;
  if (end === start) return 0;
  const write = need_write(behavior);
  if (write) yield* mm.mmap_sem.down_write();
  else yield* mm.mmap_sem.down_read();
  const r = yield* madvise_walk(mm, start, end, behavior);
  if (write) mm.mmap_sem.up_write();
  else mm.mmap_sem.up_read();
  return r;
}

function* madvise_walk(mm: MmStruct, start: number, end: number, behavior: number): KGen<number> {
  let unmapped_error = 0;
  let vma = mm.find_vma(start);
  for (;;) {
    if (!vma) return -ERRNO.ENOMEM;
    if (start < vma.start) {
      unmapped_error = -ERRNO.ENOMEM;
      start = vma.start;
      if (start >= end) return unmapped_error;
    }
    const tmp = Math.min(vma.end, end);
    const err = yield* madvise_vma(mm, vma, start, tmp, behavior);
    if (err) return err;
    start = tmp;
    if (start >= end) return unmapped_error;
    vma = mm.find_vma(start);
  }
}
