import { ERRNO } from '../base/errno.js';
import { PAGE_ALIGN, PAGE_SIZE, isPageAligned } from '../base/page.js';
import type { KGen } from '../sched/task.js';
import * as mman from '../uapi/mman.js';
import { forEachPte } from './memory.js';
import {
  type MmStruct,
  TASK_SIZE,
  VM_DONTEXPAND,
  VM_MAYSHARE,
  VM_PFNMAP,
  type VmAreaStruct,
} from './mm_types.js';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './mmu_notifier.js';
import { MAX_MAP_COUNT, do_munmap, get_unmapped_area, vma_dup, vma_merge } from './mmap.js';

/** vma_to_resize(): the VMA holding [addr, addr+old_len), or -errno. */
function vma_to_resize(mm: MmStruct, addr: number, old_len: number, new_len: number): VmAreaStruct | number {
  const vma = mm.find_vma(addr);
  if (!vma || vma.start > addr) return -ERRNO.EFAULT;
  if (old_len > vma.end - addr) return -ERRNO.EFAULT;
  if (new_len > old_len && vma.vm_flags & (VM_DONTEXPAND | VM_PFNMAP)) return -ERRNO.EFAULT;
  return vma;
}

/** vma_expandable(): room after the VMA to grow in place. */
function vma_expandable(mm: MmStruct, vma: VmAreaStruct, delta: number): boolean {
  const end = vma.end + delta;
  const next = mm.mm_rb.next(vma);
  if (next && next.start < end) return false;
  return get_unmapped_area(mm, vma.start, end - vma.start, mman.MAP_FIXED) >= 0;
}

/**
 * move_page_tables(): the PTEs of [old_addr, old_addr+len) move to new_addr, bracketed by an
 * invalidate_range_start/end on the old range. Page references move with them.
 */
function* move_page_tables(mm: MmStruct, old_addr: number, new_addr: number, len: number): KGen {
  yield* mmu_notifier_invalidate_range_start(mm, old_addr, old_addr + len);
  const moved: [number, number][] = [];
  forEachPte(mm, old_addr / PAGE_SIZE, (old_addr + len) / PAGE_SIZE, (vpn, pte) => {
    mm.pgd.delete(vpn);
    moved.push([vpn + (new_addr - old_addr) / PAGE_SIZE, pte]);
  });
  for (const [vpn, pte] of moved) mm.pgd.set(vpn, pte);
  yield* mmu_notifier_invalidate_range_end(mm, old_addr, old_addr + len);
}

/** move_vma(): a copy of the VMA at new_addr takes the pages; the old range is unmapped. */
function* move_vma(
  mm: MmStruct,
  vma: VmAreaStruct,
  old_addr: number,
  old_len: number,
  new_len: number,
  new_addr: number,
): KGen<number> {
  if (mm.map_count >= MAX_MAP_COUNT - 3) return -ERRNO.ENOMEM;
  const nv = vma_dup(mm, vma, new_addr, new_addr + new_len, vma.pgoff_of(old_addr));
  mm.mm_rb.insert(nv);
  yield* move_page_tables(mm, old_addr, new_addr, old_len);
  yield* vma_merge(mm, nv);
  const err = yield* do_munmap(mm, old_addr, old_len);
  if (err) return err;
  return new_addr;
}

function* mremap_to(
  mm: MmStruct,
  addr: number,
  old_len: number,
  new_addr: number,
  new_len: number,
): KGen<number> {
  if (!isPageAligned(new_addr)) return -ERRNO.EINVAL;
  if (new_len > TASK_SIZE || new_addr > TASK_SIZE - new_len) return -ERRNO.EINVAL;
  if (addr + old_len > new_addr && new_addr + new_len > addr) return -ERRNO.EINVAL;
  let ret = yield* do_munmap(mm, new_addr, new_len);
  if (ret) return ret;
  if (old_len >= new_len) {
    ret = yield* do_munmap(mm, addr + new_len, old_len - new_len);
    if (ret && old_len !== new_len) return ret;
    old_len = new_len;
  }
  const vma = vma_to_resize(mm, addr, old_len, new_len);
  if (typeof vma === 'number') return vma;
  const flags = mman.MAP_FIXED | (vma.vm_flags & VM_MAYSHARE ? mman.MAP_SHARED : 0);
  const a = get_unmapped_area(mm, new_addr, new_len, flags);
  if (a < 0) return a;
  return yield* move_vma(mm, vma, addr, old_len, new_len, new_addr);
}

/** SYSCALL mremap(2) on `mm`, with 3.16's checks in order. */
export function* sys_mremap(
  mm: MmStruct,
  addr: number,
  old_len: number,
  new_len: number,
  flags: number,
  new_addr: number,
): KGen<number> {
  if (flags & ~(mman.MREMAP_FIXED | mman.MREMAP_MAYMOVE)) return -ERRNO.EINVAL;
  if (flags & mman.MREMAP_FIXED && !(flags & mman.MREMAP_MAYMOVE)) return -ERRNO.EINVAL;
  if (!isPageAligned(addr)) return -ERRNO.EINVAL;
  old_len = PAGE_ALIGN(old_len);
  new_len = PAGE_ALIGN(new_len);
  if (!new_len) return -ERRNO.EINVAL;
  yield* mm.mmap_sem.down_write();
  const r = yield* mremap_locked(mm, addr, old_len, new_len, flags, new_addr);
  mm.mmap_sem.up_write();
  return r;
}

function* mremap_locked(
  mm: MmStruct,
  addr: number,
  old_len: number,
  new_len: number,
  flags: number,
  new_addr: number,
): KGen<number> {
  if (flags & mman.MREMAP_FIXED) return yield* mremap_to(mm, addr, old_len, new_addr, new_len);
  if (old_len >= new_len) {
    const ret = yield* do_munmap(mm, addr + new_len, old_len - new_len);
    if (ret && old_len !== new_len) return ret;
    return addr;
  }
  const vma = vma_to_resize(mm, addr, old_len, new_len);
  if (typeof vma === 'number') return vma;
  if (old_len === vma.end - addr && vma_expandable(mm, vma, new_len - old_len)) {
    mm.mm_rb.adjust(vma, vma.start, addr + new_len);
    yield* vma_merge(mm, vma);
    return addr;
  }
  if (!(flags & mman.MREMAP_MAYMOVE)) return -ERRNO.ENOMEM;
  const map_flags = vma.vm_flags & VM_MAYSHARE ? mman.MAP_SHARED : 0;
  const a = get_unmapped_area(mm, 0, new_len, map_flags);
  if (a < 0) return a;
  return yield* move_vma(mm, vma, addr, old_len, new_len, a);
}
