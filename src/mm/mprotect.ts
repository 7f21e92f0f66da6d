import { ERRNO } from '../base/errno.js';
import { PAGE_ALIGN, PAGE_SIZE, isPageAligned } from '../base/page.js';
import type { KGen } from '../sched/task.js';
import * as mman from '../uapi/mman.js';
import { forEachPte, range_has_ptes } from './memory.js';
import {
  type MmStruct,
  PTE_WRITE,
  VM_EXEC,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
  type VmAreaStruct,
  mk_pte,
  pte_bits,
  pte_pfn,
  pte_special,
} from './mm_types.js';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './mmu_notifier.js';
import { calc_vm_prot_bits, split_range, vma_merge } from './mmap.js';

/**
 * change_protection(): rewrites the PTEs of [start, end) for the VMA's new flags, bracketed by an
 * invalidate_range_start/end pair when any page is mapped there (3.16 notifies only where page
 * tables are populated). Private PTEs always become read-only (write faults re-enable them
 * through do_wp_page); shared writable ones become writable.
 */
function* change_protection(vma: VmAreaStruct, start: number, end: number): KGen {
  const mm = vma.vm_mm;
  if (!range_has_ptes(mm, start, end)) return;
  yield* mmu_notifier_invalidate_range_start(mm, start, end);
  const writable = (vma.vm_flags & (VM_SHARED | VM_WRITE)) === (VM_SHARED | VM_WRITE);
  forEachPte(mm, start / PAGE_SIZE, end / PAGE_SIZE, (vpn, pte) => {
    const bits =
      pte_special(pte) || writable ? pte_bits(pte) | (writable ? PTE_WRITE : 0) : pte_bits(pte) & ~PTE_WRITE;
    mm.pgd.set(vpn, mk_pte(pte_pfn(pte), bits));
  });
  yield* mmu_notifier_invalidate_range_end(mm, start, end);
}

/** mprotect_fixup(): one VMA's part of the range gets the new flags. */
function* mprotect_fixup(mm: MmStruct, start: number, end: number, newflags: number): KGen<number> {
  const vmas = split_range(mm, start, end);
  if (typeof vmas === 'number') return vmas;
  for (const vma of vmas) {
    if (vma.vm_flags === newflags) continue;
    vma.vm_flags = newflags;
    yield* change_protection(vma, vma.start, vma.end);
    yield* vma_merge(mm, vma);
  }
  return 0;
}

/** SYSCALL mprotect(2) on `mm`, with 3.16's checks in order. */
export function* sys_mprotect(mm: MmStruct, start: number, len: number, prot: number): KGen<number> {
  const grows = prot & (mman.PROT_GROWSDOWN | mman.PROT_GROWSUP);
  prot &= ~grows;
  if (grows === (mman.PROT_GROWSDOWN | mman.PROT_GROWSUP)) return -ERRNO.EINVAL;
  if (!isPageAligned(start)) return -ERRNO.EINVAL;
  if (len === 0) return 0;
  len = PAGE_ALIGN(len);
  const end = start + len;
  if (end <= start) return -ERRNO.ENOMEM;
  if (prot & ~(mman.PROT_READ | mman.PROT_WRITE | mman.PROT_EXEC | mman.PROT_SEM)) return -ERRNO.EINVAL;
  const vm_flags = calc_vm_prot_bits(prot);
  yield* mm.mmap_sem.down_write();
  const r = yield* mprotect_locked(mm, start, end, vm_flags);
  mm.mmap_sem.up_write();
  return r;
}

function* mprotect_locked(mm: MmStruct, start: number, end: number, vm_flags: number): KGen<number> {
  let vma = mm.find_vma(start);
  if (!vma || vma.start > start) return -ERRNO.ENOMEM;
  let nstart = start;
  for (;;) {
    const newflags = vm_flags | (vma.vm_flags & ~(VM_READ | VM_WRITE | VM_EXEC));
    // Each of VM_READ/WRITE/EXEC needs its VM_MAY* bit (four bits up).
    if (newflags & ~(newflags >> 4) & (VM_READ | VM_WRITE | VM_EXEC)) return -ERRNO.EACCES;
    const tmp = Math.min(vma.end, end);
    const err = yield* mprotect_fixup(mm, nstart, tmp, newflags);
    if (err) return err;
    nstart = tmp;
    if (nstart >= end) return 0;
    const next = mm.find_vma(nstart);
    if (!next || next.start !== nstart) return -ERRNO.ENOMEM;
    vma = next;
  }
}
