import type { KGen, Task } from './task.js';

/**
 * kernel/task_work.c: work a task runs on its way back to user space, with no lock held. Linux
 * uses it for the last fput() of a file, so that a release never runs inside whatever locked
 * context dropped the reference (munmap's mmap_sem, a driver's mutex).
 */

/** task_work_add(): false when the task takes no more work (a kernel thread, or past exit). */
export function task_work_add(t: Task, work: () => KGen): boolean {
  if (t.task_works_closed) return false;
  (t.task_works ??= []).push(work);
  return true;
}

/** task_work_run(): the queued work, oldest first, including work queued meanwhile. */
export function* task_work_run(t: Task): KGen {
  const q = t.task_works;
  if (!q) return;
  for (let w = q.shift(); w; w = q.shift()) yield* w();
}

/** exit_task_work(): the last run; afterwards task_work_add() refuses. */
export function* exit_task_work(t: Task): KGen {
  yield* task_work_run(t);
  t.task_works_closed = true;
}
