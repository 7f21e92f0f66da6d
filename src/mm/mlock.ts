import { PAGE_SIZE } from '../base/page.js';
import { CAP_IPC_LOCK, current } from './current.js';
import type { MmStruct } from './mm_types.js';

/**
 * RLIMIT_MEMLOCK of every task: the boot default MLOCK_LIMIT (64 KiB with 4 KiB pages). The
 * machine has no setrlimit, so this is the soft limit everyone runs with.
 */
export const RLIMIT_MEMLOCK_BYTES = 64 * 1024;

/** Linux 3.16 mm/mlock.c can_do_mlock(): CAP_IPC_LOCK, or a non-zero RLIMIT_MEMLOCK. */
export function can_do_mlock(mm: MmStruct): boolean {
  return current(mm.k).capable(CAP_IPC_LOCK) || RLIMIT_MEMLOCK_BYTES !== 0;
}

/**
 * The RLIMIT_MEMLOCK test shared by do_mmap_pgoff (mlock_future_check) and mremap's
 * vma_to_resize: would `pages` more locked pages put mm->locked_vm over the limit for a task
 * without CAP_IPC_LOCK? All quantities are whole pages, so comparing in pages or bytes agrees.
 */
export function over_mlock_limit(mm: MmStruct, pages: number): boolean {
  const limit = Math.floor(RLIMIT_MEMLOCK_BYTES / PAGE_SIZE);
  return mm.locked_vm + pages > limit && !current(mm.k).capable(CAP_IPC_LOCK);
}
