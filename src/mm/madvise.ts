import { ERRNO } from '../base/errno.js';
import { PAGE_SIZE, isPageAligned } from '../base/page.js';
import type { KGen } from '../sched/task.js';
import * as mman from '../uapi/mman.js';
import { forEachPte, zap_one, zap_page_range } from './memory.js';
import {
  type MmStruct,
  PAGE_ALIGN_UL,
  ULONG_WRAP,
  VM_DONTCOPY,
  VM_DONTDUMP,
  VM_DONTEXPAND,
  VM_HUGEPAGE,
  VM_HUGETLB,
  VM_IO,
  VM_LOCKED,
  VM_MAYSHARE,
  VM_MERGEABLE,
  VM_MIXEDMAP,
  VM_NOHUGEPAGE,
  VM_NONLINEAR,
  VM_NO_THP,
  VM_PFNMAP,
  VM_RAND_READ,
  VM_SEQ_READ,
  VM_SHARED,
  VM_SPECIAL,
  VM_WRITE,
  type VmAreaStruct,
  pte_pfn,
} from './mm_types.js';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './mmu_notifier.js';
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

/**
 * ksm_madvise(): VM_MERGEABLE on or off. Advice KSM cannot follow (shared or special memory, or
 * already in that state) is ignored. There are no KSM pages to unmerge.
 */
function ksm_madvise(vm_flags: number, behavior: number): number {
  if (behavior === mman.MADV_MERGEABLE) {
    const never =
      VM_MERGEABLE | VM_SHARED | VM_MAYSHARE | VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_HUGETLB | VM_NONLINEAR;
    return vm_flags & (never | VM_MIXEDMAP) ? vm_flags : vm_flags | VM_MERGEABLE;
  }
  return vm_flags & ~VM_MERGEABLE;
}

/** hugepage_madvise(): the new flags, or -EINVAL when THP cannot apply or is already so set. */
function hugepage_madvise(vm_flags: number, behavior: number): number | null {
  if (behavior === mman.MADV_HUGEPAGE) {
    if (vm_flags & (VM_HUGEPAGE | VM_NO_THP)) return null;
    return (vm_flags & ~VM_NOHUGEPAGE) | VM_HUGEPAGE;
  }
  if (vm_flags & (VM_NOHUGEPAGE | VM_NO_THP)) return null;
  return (vm_flags & ~VM_HUGEPAGE) | VM_NOHUGEPAGE;
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
    case mman.MADV_NORMAL:
      newflags &= ~(VM_RAND_READ | VM_SEQ_READ);
      break;
    case mman.MADV_SEQUENTIAL:
      newflags = (newflags & ~VM_RAND_READ) | VM_SEQ_READ;
      break;
    case mman.MADV_RANDOM:
      newflags = (newflags & ~VM_SEQ_READ) | VM_RAND_READ;
      break;
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
      if (newflags & VM_SPECIAL) return -ERRNO.EINVAL;
      newflags &= ~VM_DONTDUMP;
      break;
    case mman.MADV_MERGEABLE:
    case mman.MADV_UNMERGEABLE:
      newflags = ksm_madvise(newflags, behavior);
      break;
    case mman.MADV_HUGEPAGE:
    case mman.MADV_NOHUGEPAGE: {
      const f = hugepage_madvise(newflags, behavior);
      if (f === null) return -ERRNO.EINVAL;
      newflags = f;
      break;
    }
  }
  if (newflags === vma.vm_flags) return 0;
  const vmas = split_range(mm, start, end);
  // A split that fails for want of memory is EAGAIN from madvise.
  if (typeof vmas === 'number') return vmas === -ERRNO.ENOMEM ? -ERRNO.EAGAIN : vmas;
  for (const v of vmas) {
    v.vm_flags = newflags;
    yield* vma_merge(mm, v);
  }
  return 0;
}

/**
 * madvise_remove(): punches a hole in the shared memory object behind [start, end), as
 * fallocate(FALLOC_FL_PUNCH_HOLE) on the file does: unmap_mapping_range() zaps the object's pages
 * from every VMA that maps them, in every mm (private COW copies stay), each with an
 * invalidate_range_start/end pair; then the object drops them.
 */
function* madvise_remove(mm: MmStruct, vma: VmAreaStruct, start: number, end: number): KGen<number> {
  if (vma.vm_flags & (VM_LOCKED | VM_NONLINEAR | VM_HUGETLB)) return -ERRNO.EINVAL;
  const file = vma.vm_file;
  if (!file) return -ERRNO.EINVAL;
  if ((vma.vm_flags & (VM_SHARED | VM_WRITE)) !== (VM_SHARED | VM_WRITE)) return -ERRNO.EACCES;
  const obj = file.private_data;
  // do_fallocate(): only shmem implements ->fallocate among the files that can be mapped here.
  if (!(obj instanceof ShmemObject)) return -ERRNO.EOPNOTSUPP;
  const first = vma.pgoff_of(start);
  const last = vma.pgoff_of(end);
  for (const other of [...mm.k.liveMms]) {
    for (const v of [...other.mm_rb]) {
      if (v.vm_file?.private_data !== obj) continue;
      const lo = Math.max(first, v.vm_pgoff);
      const hi = Math.min(last, v.vm_pgoff + v.pages);
      if (lo >= hi) continue;
      const s = v.start + (lo - v.vm_pgoff) * PAGE_SIZE;
      const e = v.start + (hi - v.vm_pgoff) * PAGE_SIZE;
      // zap_page_range_single() with details->check_mapping: only the object's own pages.
      yield* mmu_notifier_invalidate_range_start(other, s, e);
      forEachPte(other, s / PAGE_SIZE, e / PAGE_SIZE, (vpn, pte) => {
        const a = vpn * PAGE_SIZE;
        if (obj.pages.get(v.pgoff_of(a)) === pte_pfn(pte)) zap_one(other, v, vpn, pte);
      });
      yield* mmu_notifier_invalidate_range_end(other, s, e);
    }
  }
  // shmem_truncate_range().
  for (let idx = first; idx < last; idx++) {
    const pfn = obj.pages.get(idx);
    if (pfn === undefined) continue;
    obj.pages.delete(idx);
    mm.k.ram.put_page(pfn);
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
    case mman.MADV_REMOVE:
      return yield* madvise_remove(mm, vma, start, end);
    case mman.MADV_WILLNEED:
      // Anonymous and shmem memory: swap-in read-ahead, nothing to do without swap.
      return 0;
    case mman.MADV_DONTNEED:
      // madvise_dontneed()
      if (vma.vm_flags & (VM_LOCKED | VM_HUGETLB | VM_PFNMAP)) return -ERRNO.EINVAL;
      yield* zap_page_range(vma, start, end - start);
      return 0;
    default:
      return yield* madvise_behavior(mm, vma, start, end, behavior);
  }
}

/** SYSCALL madvise(2) on `mm`: 3.16's checks, walk and -ENOMEM for holes. */
export function* sys_madvise(mm: MmStruct, start: number, len_in: number, behavior: number): KGen<number> {
  if (!VALID.has(behavior)) return -ERRNO.EINVAL;
  if (!isPageAligned(start)) return -ERRNO.EINVAL;
  const len = PAGE_ALIGN_UL(len_in);
  // A length rounded up from a small negative number to zero.
  if (len_in && !len) return -ERRNO.EINVAL;
  const end = start + len;
  // end < start in unsigned long arithmetic.
  if (end >= ULONG_WRAP) return -ERRNO.EINVAL;
  if (end === start) return 0;
  const write = need_write(behavior);
  if (write) yield* mm.mmap_sem.down_write();
  else yield* mm.mmap_sem.down_read();
  const r = yield* madvise_walk(mm, start, end, behavior);
  if (write) mm.mmap_sem.up_write();
  else mm.mmap_sem.up_read();
  return r;
}

/**
 * The VMA walk of madvise(2): advice applies to every mapped part of the range; holes are skipped
 * but make the result -ENOMEM.
 */
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
