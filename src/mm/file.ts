import type { Scheduler } from '../sched/scheduler.js';
import type { KGen } from '../sched/task.js';
import { task_work_add } from '../sched/task_work.js';
import type { VmAreaStruct } from './mm_types.js';

/**
 * struct file and file_operations: what a file descriptor refers to. mm needs it for file-backed
 * mappings (shmem, device mmaps); the kernel's fd tables and drivers build on it.
 */
export interface FileOperations {
  /** file_operations.mmap: set up a VMA over this file (flags, ops, private data). */
  mmap?(file: File, vma: VmAreaStruct): KGen<number>;
  /** file_operations.unlocked_ioctl. `arg` is a user address or the caller's struct bytes. */
  unlocked_ioctl?(file: File, cmd: number, arg: number | Uint8Array): KGen<number>;
  /** file_operations.release: the last reference went. */
  release?(file: File): KGen;
  /** Name for messages. */
  name: string;
}

export class File {
  /** f_count: fds and mappings referencing this file. */
  f_count = 1;
  /** Driver state (drm_file, dma-buf, shmem object). */
  private_data: unknown = null;

  constructor(
    readonly f_op: FileOperations,
    /** O_RDWR etc. */
    readonly f_flags: number,
    readonly path: string,
    /** The machine whose tasks hold it (fput asks which task drops the last reference). */
    readonly sched: Scheduler,
  ) {}

  get readable(): boolean {
    return (this.f_flags & 3) !== 1;
  }
  get writable(): boolean {
    return (this.f_flags & 3) !== 0;
  }
}

/** get_file(). */
export function get_file(f: File): File {
  f.f_count++;
  return f;
}

/**
 * fput(): drops a reference. A user task's last reference queues ->release as task work, run on
 * its return to user space with no lock held: munmap of a device mapping never releases the
 * file under mmap_sem, a driver never inside its own locks. Kernel threads (and exiting tasks
 * past exit_task_work) release at once; Linux hands those to a delayed_fput worker.
 */
export function* fput(f: File): KGen {
  if (f.f_count <= 0) return;
  if (--f.f_count > 0 || !f.f_op.release) return;
  const t = f.sched.current;
  if (t && task_work_add(t, () => ____fput(f))) return;
  yield* ____fput(f);
}

/** ____fput(): the release itself. */
function ____fput(f: File): KGen {
  return f.f_op.release!(f);
}
