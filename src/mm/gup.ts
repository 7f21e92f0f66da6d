import { ERRNO } from '../base/errno.js';
import { PAGE_SIZE, hex } from '../base/page.js';
import type { PhysicalMemory } from '../hw/ram.js';
import type { KGen } from '../sched/task.js';
import { follow_page, handle_mm_fault } from './memory.js';
import {
  FAULT_FLAG_WRITE,
  type MmStruct,
  VM_FAULT_ERROR,
  VM_FAULT_OOM,
  VM_IO,
  VM_MAYREAD,
  VM_MAYWRITE,
  VM_PFNMAP,
  VM_READ,
  VM_WRITE,
  pte_pfn,
  pte_protnone,
  pte_special,
  pte_write,
} from './mm_types.js';
import { access_ok } from './uaccess.js';

/**
 * get_user_pages(): pins `nr_pages` pages from `start`, faulting them in (breaking COW for
 * `write`). The caller holds mm->mmap_sem for read, as in 3.16. Returns how many pages were
 * pinned, or -errno if none. Each pinned page holds a reference and a pin; release with
 * release_user_pages().
 */
export function* get_user_pages(
  mm: MmStruct,
  start: number,
  nr_pages: number,
  write: boolean,
  force: boolean,
  pages: number[] | null,
): KGen<number> {
  const s = mm.k.sched;
  if (nr_pages <= 0) return 0;
  if (!mm.checkAlive('get_user_pages')) return -ERRNO.EFAULT;
  if (!mm.mmap_sem.is_held_by_current()) s.report('WARN', `get_user_pages on mm ${mm.id} without mmap_sem`);
  let vm_flags = write ? VM_WRITE | VM_MAYWRITE : VM_READ | VM_MAYREAD;
  vm_flags &= force ? VM_MAYREAD | VM_MAYWRITE : VM_READ | VM_WRITE;
  const ram = mm.k.ram;
  let i = 0;
  start -= start % PAGE_SIZE;
  while (nr_pages > 0) {
    const vma = mm.find_vma(start);
    if (!vma || start < vma.start) return i || -ERRNO.EFAULT;
    if (vma.vm_flags & (VM_IO | VM_PFNMAP) || !(vm_flags & vma.vm_flags)) return i || -ERRNO.EFAULT;
    // A forced write to a read-only mapping settles for the COW copy it made (FOLL_WRITE dropped).
    let foll_write = write;
    do {
      yield { op: 'cond_resched', resource: `gup ${hex(start)}` };
      if (s.cur().fatalSignalPending) return i || -ERRNO.ERESTARTSYS;
      let pfn = follow_page(mm, start, foll_write);
      for (let tries = 0; pfn < 0; tries++) {
        if (tries > 64) return i || -ERRNO.EFAULT;
        const ret = yield* handle_mm_fault(mm, vma, start, write ? FAULT_FLAG_WRITE : 0);
        if (ret & VM_FAULT_ERROR) {
          if (ret & VM_FAULT_OOM) return i || -ERRNO.ENOMEM;
          return i || -ERRNO.EFAULT;
        }
        if (write && !(vma.vm_flags & VM_WRITE)) foll_write = false;
        pfn = follow_page(mm, start, foll_write);
      }
      if (pages) {
        ram.get_page(pfn);
        ram.pin(pfn);
        pages.push(pfn);
      }
      i++;
      start += PAGE_SIZE;
      nr_pages--;
    } while (nr_pages > 0 && start < vma.end);
  }
  return i;
}

/**
 * __get_user_pages_fast(): the lockless walk of x86's gup_pte_range(): no mmap_sem, no faults,
 * no VMA lookup — only the PTEs. Stops at the first page that is absent, special (PFN-mapped),
 * PROT_NONE, or read-only when `write`. Returns the number pinned into `pages`. Because it reads
 * only the page table, it still finds pages whose VMA munmap has already detached while the
 * invalidation is in flight, as on Linux.
 */
export function __get_user_pages_fast(
  mm: MmStruct,
  start: number,
  nr_pages: number,
  write: boolean,
  pages: number[],
): number {
  start -= start % PAGE_SIZE;
  const len = nr_pages * PAGE_SIZE;
  if (!access_ok(start, len) || mm.freed) return 0;
  const ram = mm.k.ram;
  let nr = 0;
  for (; nr < nr_pages; nr++) {
    const pte = mm.pgd.get(start / PAGE_SIZE + nr);
    if (pte === undefined || pte_special(pte) || pte_protnone(pte) || (write && !pte_write(pte))) break;
    const pfn = pte_pfn(pte);
    ram.get_page(pfn);
    ram.pin(pfn);
    pages.push(pfn);
  }
  return nr;
}

/**
 * Releases pages obtained from get_user_pages: set_page_dirty() when the device wrote them,
 * then page_cache_release(). The pin count is the sanitizers' ledger of gup references.
 */
export function release_user_pages(ram: PhysicalMemory, pfns: readonly number[], dirty: boolean): void {
  for (const pfn of pfns) {
    if (dirty) ram.set_page_dirty(pfn);
    ram.unpin(pfn);
    ram.put_page(pfn);
  }
}

/** get_user_pages with mmap_sem taken for read around it (later kernels' _unlocked variant). */
export function* get_user_pages_unlocked(
  mm: MmStruct,
  start: number,
  nr_pages: number,
  write: boolean,
  pages: number[],
): KGen<number> {
  yield* mm.mmap_sem.down_read();
  const r = yield* get_user_pages(mm, start, nr_pages, write, false, pages);
  mm.mmap_sem.up_read();
  return r;
}
