import { ERRNO } from '../base/errno.js';
import { PAGE_SIZE, hex } from '../base/page.js';
import type { KGen } from '../sched/task.js';
import { type MmStruct, VM_PFNMAP, mk_pte, pte_bits, pte_pfn, pte_special } from './mm_types.js';
import { mmu_notifier_invalidate_page } from './mmu_notifier.js';

/**
 * Page migration of one private anonymous page, as 3.16's compaction does it
 * (isolate_migratepages_range → migrate_pages → unmap_and_move → __unmap_and_move): under the
 * page lock and an LRU-isolation reference, **without mmap_sem**.
 *
 * 1. isolate_lru_page() takes a reference; lock_page().
 * 2. try_to_unmap(TTU_MIGRATION): the PTE becomes a migration entry, the mapping's reference
 *    is dropped, and mmu_notifier_invalidate_page(mm, addr) tells the secondary MMUs — the page
 *    form only: 3.16 has no range call here, so a notifier without invalidate_page (i915's)
 *    hears nothing.
 * 3. migrate_page_move_mapping(): an anonymous page moves only if nobody else holds a reference
 *    (page_count == 1, the isolation reference). A page pinned by get_user_pages — every page a
 *    userptr object holds — fails with -EAGAIN and remove_migration_ptes() puts the old PTE back.
 * 4. Otherwise the contents are copied to a new frame, remove_migration_ptes() maps it, and the
 *    old frame is freed with the isolation reference.
 *
 * Model: there are no migration entries, so steps 2–4 happen between two scheduling points
 * (nobody can observe the entry, as nobody could get past migration_entry_wait()), and the
 * page-form notification is sent once the PTE is final. Pages mapped more than once (shared
 * after fork: the model has no reverse map) and file pages are refused with -EBUSY.
 *
 * Returns 0 (moved), -EAGAIN (extra references: pinned), -EFAULT (nothing mapped there, or a
 * special PTE), -EBUSY (not a private anonymous page mapped once), -ENOMEM.
 */
export function* migrate_page(mm: MmStruct, addr: number): KGen<number> {
  const page = addr - (addr % PAGE_SIZE);
  const vpn = page / PAGE_SIZE;
  yield { op: 'isolate_migratepages', resource: `mm${mm.id} ${hex(page)}` };
  if (!mm.checkAlive('migrate_page')) return -ERRNO.EFAULT;
  const ram = mm.k.ram;
  const pte = mm.pgd.get(vpn);
  if (pte === undefined || pte_special(pte)) return -ERRNO.EFAULT;
  const vma = mm.find_vma(page);
  if (!vma || vma.start > page || vma.vm_flags & VM_PFNMAP) return -ERRNO.EFAULT;
  const old = pte_pfn(pte);
  if (vma.vm_file || ram.page_mapcount(old) !== 1) return -ERRNO.EBUSY;
  // isolate_lru_page() + lock_page().
  ram.get_page(old);
  yield { op: 'lock_page', resource: `pfn ${hex(old)}` };
  let ret: number;
  if (mm.pgd.get(vpn) !== pte) {
    // The mapping changed while we waited for the page lock: try_to_unmap finds nothing here.
    ret = -ERRNO.EAGAIN;
  } else if (ram.page_count(old) !== ram.page_mapcount(old) + 1) {
    // migrate_page_move_mapping(): references beyond the mapping's and ours (a gup pin).
    ret = -ERRNO.EAGAIN;
  } else {
    const copy = ram.alloc_page();
    if (copy < 0) {
      ret = -ERRNO.ENOMEM;
    } else {
      ram.copy_page(copy, old);
      if (ram.PageDirty(old)) ram.set_page_dirty(copy);
      // The allocation's reference becomes the new mapping's; the old mapping's goes.
      mm.pgd.set(vpn, mk_pte(copy, pte_bits(pte)));
      ram.page_add_rmap(copy);
      ram.page_remove_rmap(old);
      ram.put_page(old);
      ret = 0;
    }
  }
  // try_to_unmap_one()'s notification (sent in 3.16 even when the move then fails).
  yield* mmu_notifier_invalidate_page(mm, page);
  // unlock_page() + putback / free with the isolation reference.
  ram.put_page(old);
  return ret;
}
