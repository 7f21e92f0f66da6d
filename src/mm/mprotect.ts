import { ERRNO } from '../base/errno.js';
import { PAGE_SIZE, isPageAligned } from '../base/page.js';
import type { KGen } from '../sched/task.js';
import * as mman from '../uapi/mman.js';
import { forEachPte, populated_pmds } from './memory.js';
import {
  type MmStruct,
  PAGE_ALIGN_UL,
  PMD_SIZE,
  PTE_PROTNONE,
  PTE_WRITE,
  PUD_SIZE,
  ULONG_WRAP,
  VM_ACCOUNT,
  VM_EXEC,
  VM_GROWSDOWN,
  VM_GROWSUP,
  VM_HUGETLB,
  VM_NORESERVE,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
  type VmAreaStruct,
  mk_pte,
  pte_bits,
  pte_pfn,
  vm_page_prot,
} from './mm_types.js';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './mmu_notifier.js';
import { calc_vm_prot_bits, split_range, vma_merge } from './mmap.js';

/**
 * change_protection(): rewrites the PTEs of [start, end) for the VMA's new flags. As 3.16's
 * change_pud_range() / change_pmd_range() do, each 1 GiB region that has page tables gets one
 * invalidate_range_start/end pair, from the first populated 2 MiB region (or `start`) to the
 * end of the 1 GiB region (or `end`); regions without page tables are not notified. Private
 * PTEs always become read-only (write faults re-enable them through do_wp_page); shared
 * writable ones become writable.
 */
function* change_protection(vma: VmAreaStruct, start: number, end: number): KGen {
  const mm = vma.vm_mm;
  const writable = (vma.vm_flags & (VM_SHARED | VM_WRITE)) === (VM_SHARED | VM_WRITE);
  const protnone = vm_page_prot(vma.vm_flags);
  const pmds = populated_pmds(mm, start, end);
  let k = 0;
  while (k < pmds.length) {
    const first = pmds[k]! * PMD_SIZE;
    const pud_end = Math.min(end, (Math.floor(first / PUD_SIZE) + 1) * PUD_SIZE);
    const mni_start = Math.max(start, first);
    yield* mmu_notifier_invalidate_range_start(mm, mni_start, pud_end);
    for (; k < pmds.length && pmds[k]! * PMD_SIZE < pud_end; k++) {
      const a = Math.max(start, pmds[k]! * PMD_SIZE);
      const b = Math.min(end, (pmds[k]! + 1) * PMD_SIZE);
      forEachPte(mm, a / PAGE_SIZE, b / PAGE_SIZE, (vpn, pte) => {
        const bits = (pte_bits(pte) & ~(PTE_WRITE | PTE_PROTNONE)) | (writable ? PTE_WRITE : 0) | protnone;
        mm.pgd.set(vpn, mk_pte(pte_pfn(pte), bits));
      });
    }
    yield* mmu_notifier_invalidate_range_end(mm, mni_start, pud_end);
  }
}

/**
 * mprotect_fixup(): [start, end) of `vma` gets the new flags: split off, merged with neighbours
 * where possible, then the page tables follow. Returns the VMA now holding the range, or -errno.
 */
function* mprotect_fixup(
  mm: MmStruct,
  vma: VmAreaStruct,
  start: number,
  end: number,
  newflags: number,
): KGen<VmAreaStruct | number> {
  const oldflags = vma.vm_flags;
  if (newflags === oldflags) return vma;
  // Making a private mapping writable charges it; making it read-only does not uncharge.
  if (newflags & VM_WRITE && !(oldflags & (VM_ACCOUNT | VM_WRITE | VM_HUGETLB | VM_SHARED | VM_NORESERVE))) {
    newflags |= VM_ACCOUNT;
  }
  const vmas = split_range(mm, start, end);
  if (typeof vmas === 'number') return vmas;
  const piece = vmas[0]!;
  piece.vm_flags = newflags;
  const merged = yield* vma_merge(mm, piece);
  yield* change_protection(merged, start, end);
  return merged;
}

/** SYSCALL mprotect(2) on `mm`, with 3.16's checks in order. */
export function* sys_mprotect(mm: MmStruct, start: number, len: number, prot: number): KGen<number> {
  const grows = prot & (mman.PROT_GROWSDOWN | mman.PROT_GROWSUP);
  prot &= ~grows;
  if (grows === (mman.PROT_GROWSDOWN | mman.PROT_GROWSUP)) return -ERRNO.EINVAL;
  if (!isPageAligned(start)) return -ERRNO.EINVAL;
  if (len === 0) return 0;
  len = PAGE_ALIGN_UL(len);
  const end = start + len;
  // end <= start in unsigned long arithmetic: a length that wraps.
  if (end >= ULONG_WRAP || end <= start) return -ERRNO.ENOMEM;
  if (prot & ~(mman.PROT_READ | mman.PROT_WRITE | mman.PROT_EXEC | mman.PROT_SEM)) return -ERRNO.EINVAL;
  const vm_flags = calc_vm_prot_bits(prot);
  yield* mm.mmap_sem.down_write();
  const r = yield* mprotect_locked(mm, start, end, vm_flags, grows);
  mm.mmap_sem.up_write();
  return r;
}

/**
 * The VMA walk of mprotect(2): each VMA's part of the range in turn; a hole stops the walk with
 * -ENOMEM after the parts before it were changed. PROT_GROWSDOWN moves the start down (or up,
 * past a hole) to the first VMA's start and needs that VMA to be VM_GROWSDOWN; PROT_GROWSUP
 * would move the end to the VMA's end, but no x86 VMA is VM_GROWSUP.
 */
function* mprotect_locked(
  mm: MmStruct,
  start: number,
  end: number,
  vm_flags: number,
  grows: number,
): KGen<number> {
  let vma = mm.find_vma(start);
  if (!vma) return -ERRNO.ENOMEM;
  if (grows & mman.PROT_GROWSDOWN) {
    if (vma.start >= end) return -ERRNO.ENOMEM;
    start = vma.start;
    if (!(vma.vm_flags & VM_GROWSDOWN)) return -ERRNO.EINVAL;
  } else {
    if (vma.start > start) return -ERRNO.ENOMEM;
    if (grows & mman.PROT_GROWSUP) {
      end = vma.end;
      if (!(vma.vm_flags & VM_GROWSUP)) return -ERRNO.EINVAL;
    }
  }
  let nstart = start;
  for (;;) {
    const newflags = vm_flags | (vma.vm_flags & ~(VM_READ | VM_WRITE | VM_EXEC));
    // Each of VM_READ/WRITE/EXEC needs its VM_MAY* bit (four bits up).
    if (newflags & ~(newflags >> 4) & (VM_READ | VM_WRITE | VM_EXEC)) return -ERRNO.EACCES;
    const tmp = Math.min(vma.end, end);
    const prev = yield* mprotect_fixup(mm, vma, nstart, tmp, newflags);
    if (typeof prev === 'number') return prev;
    nstart = tmp;
    // The piece may have merged with the next VMA: carry on after the merged one.
    if (nstart < prev.end) nstart = prev.end;
    if (nstart >= end) return 0;
    const next = mm.mm_rb.next(prev);
    if (!next || next.start !== nstart) return -ERRNO.ENOMEM;
    vma = next;
  }
}
