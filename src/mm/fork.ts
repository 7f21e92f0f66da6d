import { ERRNO } from '../base/errno.js';
import type { KGen } from '../sched/task.js';
import { copy_page_range } from './memory.js';
import { type MmStruct, VM_DONTCOPY, VM_LOCKED } from './mm_types.js';
import { mm_alloc } from './mm.js';
import { vma_dup } from './mmap.js';

/** SINGLE_DEPTH_NESTING: the child's mmap_sem is taken inside the parent's. */
const SINGLE_DEPTH_NESTING = 1;

/**
 * dup_mm() / dup_mmap(): the child's address space. Both mmap_sems are held for write; VMAs
 * marked VM_DONTCOPY (MADV_DONTFORK) are left out; private pages become copy-on-write in both.
 * Memory locks are not inherited: the child's VMAs lose VM_LOCKED and its locked_vm stays 0.
 */
export function* dup_mm(oldmm: MmStruct): KGen<MmStruct | number> {
  if (!oldmm.checkAlive('dup_mm')) return -ERRNO.EFAULT;
  const mm = mm_alloc(oldmm.k);
  yield* oldmm.mmap_sem.down_write();
  yield* mm.mmap_sem.down_write(SINGLE_DEPTH_NESTING);
  for (const vma of [...oldmm.mm_rb]) {
    if (vma.vm_flags & VM_DONTCOPY) continue;
    const tmp = vma_dup(mm, vma, vma.start, vma.end, vma.vm_pgoff);
    tmp.vm_flags &= ~VM_LOCKED;
    mm.mm_rb.insert(tmp);
    yield* copy_page_range(mm, oldmm, vma);
  }
  mm.mmap_sem.up_write();
  oldmm.mmap_sem.up_write();
  return mm;
}
