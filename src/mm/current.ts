import type { KGen } from '../sched/task.js';
import type { File, FileOperations } from './file.js';
import type { MmKernel, MmStruct } from './mm_types.js';

/** CAP_IPC_LOCK (include/uapi/linux/capability.h): locking memory beyond RLIMIT_MEMLOCK. */
export const CAP_IPC_LOCK = 14;
/** CAP_SYS_RAWIO (include/uapi/linux/capability.h): mapping below mmap_min_addr. */
export const CAP_SYS_RAWIO = 17;
/** CAP_SYS_ADMIN (include/uapi/linux/capability.h). */
export const CAP_SYS_ADMIN = 21;

/**
 * What kernel code may ask of `current`: the task_struct fields drivers use. User threads carry
 * one as their task context; kernel threads and workers have none (no mm, full capabilities).
 */
export interface TaskStruct {
  readonly pid: number;
  readonly comm: string;
  /** NULL for kernel threads; the process's mm for user threads. */
  readonly mm: MmStruct | null;
  /** capable(): effective capability check. */
  capable(cap: number): boolean;
}

const KTHREAD: TaskStruct = { pid: 0, comm: 'kthread', mm: null, capable: () => true };

/** `current`: the running task's task_struct view. */
export function current(k: MmKernel): TaskStruct {
  const ctx = k.sched.current?.context;
  return (ctx as TaskStruct | undefined) ?? KTHREAD;
}

/**
 * A character device under /dev: open() sets up the struct file (private_data, ops). Drivers
 * register these with the machine.
 */
export interface CharDevice {
  readonly path: string;
  readonly fops: FileOperations;
  /** file_operations.open: 0 or -errno. */
  open(file: File): KGen<number>;
}
