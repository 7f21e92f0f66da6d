import { ERRNO } from '../base/errno.js';
import { PAGE_SIZE, isPageAligned } from '../base/page.js';
import type { KGen } from '../sched/task.js';
import * as mman from '../uapi/mman.js';
import { forEachPte, populated_pmds } from './memory.js';
import {
  type MmStruct,
  PAGE_ALIGN_UL,
  PMD_SIZE,
  TASK_SIZE,
  VM_DONTEXPAND,
  VM_LOCKED,
  VM_MAYSHARE,
  VM_PFNMAP,
  type VmAreaStruct,
} from './mm_types.js';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './mmu_notifier.js';
import { over_mlock_limit } from './mlock.js';
import { MAX_MAP_COUNT, do_munmap, get_unmapped_area, mm_populate, vma_dup, vma_merge } from './mmap.js';

/** vma_to_resize(): the VMA holding [addr, addr+old_len), or -errno. */
function vma_to_resize(mm: MmStruct, addr: number, old_len: number, new_len: number): VmAreaStruct | number {
  const vma = mm.find_vma(addr);
  if (!vma || vma.start > addr) return -ERRNO.EFAULT;
  // We can't remap across vm area boundaries.
  if (old_len > vma.end - addr) return -ERRNO.EFAULT;
  if (new_len > old_len) {
    if (vma.vm_flags & (VM_DONTEXPAND | VM_PFNMAP)) return -ERRNO.EFAULT;
    if (vma.pgoff_of(addr) + new_len / PAGE_SIZE >= 2 ** 64) return -ERRNO.EINVAL;
  }
  // A locked mapping may grow only within RLIMIT_MEMLOCK (new_len >= old_len here).
  if (vma.vm_flags & VM_LOCKED && over_mlock_limit(mm, (new_len - old_len) / PAGE_SIZE)) return -ERRNO.EAGAIN;
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
 * invalidate_range_start/end on the old range. Page references move with them; every page-table
 * page of the old range gets its counterpart at the new place.
 */
function* move_page_tables(mm: MmStruct, old_addr: number, new_addr: number, len: number): KGen {
  yield* mmu_notifier_invalidate_range_start(mm, old_addr, old_addr + len);
  const delta = new_addr - old_addr;
  for (const i of populated_pmds(mm, old_addr, old_addr + len)) {
    const s = Math.max(old_addr, i * PMD_SIZE) + delta;
    const e = Math.min(old_addr + len, (i + 1) * PMD_SIZE) + delta;
    for (let j = Math.floor(s / PMD_SIZE); j * PMD_SIZE < e; j++) mm.pmds.add(j);
  }
  const moved: [number, number][] = [];
  forEachPte(mm, old_addr / PAGE_SIZE, (old_addr + len) / PAGE_SIZE, (vpn, pte) => {
    mm.pgd.delete(vpn);
    moved.push([vpn + delta / PAGE_SIZE, pte]);
  });
  for (const [vpn, pte] of moved) mm.pgd.set(vpn, pte);
  yield* mmu_notifier_invalidate_range_end(mm, old_addr, old_addr + len);
}

/**
 * copy_vma(): the VMA that will hold the moved range at new_addr, merged with a neighbour where
 * possible. An anonymous VMA never faulted takes the page offset of its new place, to merge more.
 */
function* copy_vma(
  mm: MmStruct,
  vma: VmAreaStruct,
  new_addr: number,
  len: number,
  pgoff: number,
): KGen<VmAreaStruct> {
  if (!vma.vm_file && !vma.anon_vma) pgoff = new_addr / PAGE_SIZE;
  const nv = vma_dup(mm, vma, new_addr, new_addr + len, pgoff);
  mm.mm_rb.insert(nv);
  return yield* vma_merge(mm, nv);
}

/**
 * move_vma(): a copy of the VMA at new_addr takes the pages; the old range is unmapped. A failure
 * of that unmap (a split refused) is ignored: the move has happened. A locked VMA charges its new
 * length to locked_vm (the unmap of the old range gives the old length back) and sets
 * `populate.locked`.
 */
function* move_vma(
  mm: MmStruct,
  vma: VmAreaStruct,
  old_addr: number,
  old_len: number,
  new_len: number,
  new_addr: number,
  populate: { locked: boolean },
): KGen<number> {
  // Avoid failing later in do_munmap, which may split one VMA into three.
  if (mm.map_count >= MAX_MAP_COUNT - 3) return -ERRNO.ENOMEM;
  const vm_flags = vma.vm_flags;
  yield* copy_vma(mm, vma, new_addr, new_len, vma.pgoff_of(old_addr));
  yield* move_page_tables(mm, old_addr, new_addr, old_len);
  yield* do_munmap(mm, old_addr, old_len);
  if (vm_flags & VM_LOCKED) {
    mm.locked_vm += new_len / PAGE_SIZE;
    populate.locked = true;
  }
  return new_addr;
}

function* mremap_to(
  mm: MmStruct,
  addr: number,
  old_len: number,
  new_addr: number,
  new_len: number,
  populate: { locked: boolean },
): KGen<number> {
  if (!isPageAligned(new_addr)) return -ERRNO.EINVAL;
  if (new_len > TASK_SIZE || new_addr > TASK_SIZE - new_len) return -ERRNO.EINVAL;
  // The new place may not overlap the old one.
  if (new_addr <= addr && new_addr + new_len > addr) return -ERRNO.EINVAL;
  if (addr <= new_addr && addr + old_len > new_addr) return -ERRNO.EINVAL;
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
  return yield* move_vma(mm, vma, addr, old_len, new_len, new_addr, populate);
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
  old_len = PAGE_ALIGN_UL(old_len);
  new_len = PAGE_ALIGN_UL(new_len);
  // A zero old_len is allowed (the DOS-emu "duplicate shm area" case); a zero new_len is not.
  if (!new_len) return -ERRNO.EINVAL;
  const populate = { locked: false };
  yield* mm.mmap_sem.down_write();
  const r = yield* mremap_locked(mm, addr, old_len, new_len, flags, new_addr, populate);
  mm.mmap_sem.up_write();
  // A locked mapping that grew has its new part faulted in, as mmap(MAP_LOCKED) does.
  if (r >= 0 && populate.locked && new_len > old_len) yield* mm_populate(mm, r + old_len, new_len - old_len);
  return r;
}

function* mremap_locked(
  mm: MmStruct,
  addr: number,
  old_len: number,
  new_len: number,
  flags: number,
  new_addr: number,
  populate: { locked: boolean },
): KGen<number> {
  if (flags & mman.MREMAP_FIXED) return yield* mremap_to(mm, addr, old_len, new_addr, new_len, populate);
  // Always allow a shrinking remap: that just unmaps the tail.
  if (old_len >= new_len) {
    const ret = yield* do_munmap(mm, addr + new_len, old_len - new_len);
    if (ret && old_len !== new_len) return ret;
    return addr;
  }
  const vma = vma_to_resize(mm, addr, old_len, new_len);
  if (typeof vma === 'number') return vma;
  // Grow in place (vma_adjust): the VMA just gets longer; no merge with the next one.
  if (old_len === vma.end - addr && vma_expandable(mm, vma, new_len - old_len)) {
    mm.mm_rb.adjust(vma, vma.start, addr + new_len);
    if (vma.vm_flags & VM_LOCKED) {
      mm.locked_vm += (new_len - old_len) / PAGE_SIZE;
      populate.locked = true;
    }
    return addr;
  }
  if (!(flags & mman.MREMAP_MAYMOVE)) return -ERRNO.ENOMEM;
  const map_flags = vma.vm_flags & VM_MAYSHARE ? mman.MAP_SHARED : 0;
  const a = get_unmapped_area(mm, 0, new_len, map_flags);
  if (a < 0) return a;
  return yield* move_vma(mm, vma, addr, old_len, new_len, a, populate);
}
