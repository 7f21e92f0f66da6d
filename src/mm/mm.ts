import type { KGen } from '../sched/task.js';
import { unmap_vmas } from './memory.js';
import { type MmKernel, MmStruct, TASK_SIZE } from './mm_types.js';
import { mmu_notifier_release } from './mmu_notifier.js';
import { remove_vma } from './mmap.js';

/** mm_alloc(): an empty address space with one user. */
export function mm_alloc(k: MmKernel): MmStruct {
  return new MmStruct(k);
}

/** atomic_inc(&mm->mm_users) of get_task_mm(): pins the mappings. */
export function mmget(mm: MmStruct): void {
  if (!mm.checkAlive('mmget')) return;
  if (mm.mm_users <= 0) mm.k.sched.report('WARN', `mmget on mm ${mm.id} whose mappings are gone`);
  mm.mm_users++;
}

/** atomic_inc_not_zero(&mm->mm_users). */
export function mmget_not_zero(mm: MmStruct): boolean {
  if (!mm.checkAlive('mmget_not_zero') || mm.mm_users === 0) return false;
  mm.mm_users++;
  return true;
}

/** atomic_inc(&mm->mm_count): pins the struct, not the mappings. */
export function mmgrab(mm: MmStruct): void {
  if (!mm.checkAlive('mmgrab')) return;
  mm.mm_count++;
}

/** mmdrop(): the last reference frees the mm_struct. */
export function mmdrop(mm: MmStruct): void {
  if (!mm.checkAlive('mmdrop')) return;
  if (mm.mm_count <= 0) {
    mm.k.sched.report('BUG', `mmdrop of mm ${mm.id} with mm_count ${mm.mm_count}`);
    return;
  }
  if (--mm.mm_count > 0) return;
  if (mm.mm_users > 0 || mm.pgd.size > 0 || mm.map_count > 0) {
    mm.k.sched.report(
      'BUG',
      `__mmdrop of mm ${mm.id} still in use (users ${mm.mm_users}, vmas ${mm.map_count})`,
    );
  }
  mm.freed = true;
  mm.k.liveMms.delete(mm);
}

/**
 * mmput(): drops a user; the last one tears the address space down (exit_mmap) and drops the
 * users' mm_count reference. May sleep: notifier callbacks and driver vm_close run here.
 */
export function* mmput(mm: MmStruct): KGen {
  if (!mm.checkAlive('mmput')) return;
  if (mm.mm_users <= 0) {
    mm.k.sched.report('BUG', `mmput of mm ${mm.id} with mm_users ${mm.mm_users}`);
    return;
  }
  if (--mm.mm_users > 0) return;
  yield* exit_mmap(mm);
  mmdrop(mm);
}

/**
 * exit_mmap(): the last user is gone. Notifiers are released and unlinked first, then every
 * VMA is unmapped and removed (no mmap_sem: nobody else can reach the mm).
 */
export function* exit_mmap(mm: MmStruct): KGen {
  yield* mmu_notifier_release(mm);
  const vmas = [...mm.mm_rb];
  yield* unmap_vmas(mm, vmas, 0, TASK_SIZE);
  mm.pmds.clear();
  for (const vma of vmas) {
    mm.mm_rb.remove(vma);
    yield* remove_vma(vma);
  }
  mm.exited = true;
}

/** get_task_mm(): the task's mm with an mm_users reference, or null for kernel threads. */
export function get_task_mm(task: { readonly mm: MmStruct | null }): MmStruct | null {
  const mm = task.mm;
  if (!mm || !mmget_not_zero(mm)) return null;
  return mm;
}
