import { ERRNO } from '../base/errno.js';
import { PAGE_SIZE } from '../base/page.js';
import { File, type FileOperations, fput, get_file } from '../mm/file.js';
import type { VmAreaStruct } from '../mm/mm_types.js';
import type { Scheduler } from '../sched/scheduler.js';
import type { KGen } from '../sched/task.js';
import { O_ACCMODE, O_NONBLOCK } from '../uapi/mman.js';

/**
 * dma-buf (Linux 3.16 drivers/dma-buf/dma-buf.c): a buffer shared between drivers and processes
 * as a file. The exporter wraps its buffer (`priv`) with its `DmaBufOps`; the dma-buf's `File`
 * is what file descriptors refer to, and the last `fput` of it runs the exporter's `release`.
 *
 * Linux defers the `->release` of a file whose last reference a task drops (task_work at return
 * to user space); `fput` here runs it at once. Callers therefore drop dma-buf references after
 * releasing their own locks, so that lockdep sees the dependencies Linux has.
 */

/** struct dma_buf_ops: what 3.16 requires of an exporter that this model can observe. */
export interface DmaBufOps {
  readonly name: string;
  /** The last reference to the dma-buf went: drop the exporter's hold on `priv`. May sleep. */
  readonly release: (dmabuf: DmaBuf) => KGen;
  /** mmap() of the dma-buf fd (3.16 requires the op; i915's returns -EINVAL). May sleep. */
  readonly mmap: (dmabuf: DmaBuf, vma: VmAreaStruct) => KGen<number>;
}

/** struct dma_buf_attachment: an importing device's attachment (`obj->import_attach`). */
export interface DmaBufAttachment {
  readonly dmabuf: DmaBuf;
  /** The importing device. */
  readonly dev: unknown;
}

/** struct dma_buf. */
export class DmaBuf {
  /** The anon-inode file fds refer to (f_count counts every reference to the dma-buf). */
  readonly file: File;

  constructor(
    readonly priv: unknown,
    readonly ops: DmaBufOps,
    /** Bytes. */
    readonly size: number,
    /** Name of the exporter, for messages (dma_buf->exp_name). */
    readonly exp_name: string,
    f_flags: number,
    sched: Scheduler,
  ) {
    this.file = new File(dma_buf_fops, f_flags, 'anon_inode:dmabuf', sched);
    this.file.private_data = this;
  }
}

/**
 * The fd-table services dma-buf needs from the caller's process (`current->files`): the machine
 * supplies them (the DRM device carries them, see DrmDevice.fdInstall / fdLookup).
 */
export interface FdTableHooks {
  /** get_unused_fd_flags() + fd_install(): the file now has an fd (taking over the caller's
   * reference); the fd or -EMFILE. */
  fdInstall(file: File, flags: number): number;
  /** fcheck(): the file behind `fd` in the current process, or null (no reference taken). */
  fdLookup(fd: number): File | null;
}

function* dma_buf_release(file: File): KGen {
  if (!is_dma_buf_file(file)) return;
  const dmabuf = file.private_data as DmaBuf;
  yield* dmabuf.ops.release(dmabuf);
}

/** dma_buf_mmap_internal(): bounds check, then the exporter's mmap. */
function* dma_buf_mmap_internal(file: File, vma: VmAreaStruct): KGen<number> {
  if (!is_dma_buf_file(file)) return -ERRNO.EINVAL;
  const dmabuf = file.private_data as DmaBuf;
  if (vma.vm_pgoff + (vma.end - vma.start) / PAGE_SIZE > Math.floor(dmabuf.size / PAGE_SIZE)) {
    return -ERRNO.EINVAL;
  }
  return yield* dmabuf.ops.mmap(dmabuf, vma);
}

/** dma_buf_fops. */
export const dma_buf_fops: FileOperations = {
  name: 'dmabuf',
  release: dma_buf_release,
  mmap: dma_buf_mmap_internal,
};

/** is_dma_buf_file(). */
export function is_dma_buf_file(file: File): boolean {
  return file.f_op === dma_buf_fops;
}

/**
 * dma_buf_export(): wrap `priv`. `flags` are open(2) flags; as anon_inode_getfile() does, only
 * the access mode and O_NONBLOCK reach the file, so a dma-buf exported with DRM_CLOEXEC alone is
 * O_RDONLY (3.16 has no DRM_RDWR). Returns the dma-buf (one reference, the caller's) or -EINVAL.
 */
export function dma_buf_export(
  sched: Scheduler,
  priv: unknown,
  ops: DmaBufOps,
  size: number,
  flags: number,
  exp_name = ops.name,
): DmaBuf | number {
  if (priv === null || priv === undefined || !ops || typeof ops.release !== 'function') return -ERRNO.EINVAL;
  if (typeof ops.mmap !== 'function') return -ERRNO.EINVAL;
  return new DmaBuf(priv, ops, size, exp_name, flags & (O_ACCMODE | O_NONBLOCK), sched);
}

/** get_dma_buf(): one more reference. */
export function get_dma_buf(dmabuf: DmaBuf): void {
  get_file(dmabuf.file);
}

/** dma_buf_put(): drop a reference; the last one releases the buffer (may sleep). */
export function* dma_buf_put(dmabuf: DmaBuf): KGen {
  yield* fput(dmabuf.file);
}

/** dma_buf_fd(): install the dma-buf in the caller's fd table, consuming the caller's reference. */
export function dma_buf_fd(files: FdTableHooks, dmabuf: DmaBuf | null, flags: number): number {
  if (!dmabuf) return -ERRNO.EINVAL;
  return files.fdInstall(dmabuf.file, flags);
}

/** dma_buf_get(): the dma-buf behind `fd` with a new reference; -EBADF or -EINVAL (not a dma-buf). */
export function dma_buf_get(files: FdTableHooks, fd: number): DmaBuf | number {
  const file = files.fdLookup(fd);
  if (!file) return -ERRNO.EBADF;
  if (!is_dma_buf_file(file)) return -ERRNO.EINVAL;
  get_file(file);
  return file.private_data as DmaBuf;
}

/** dma_buf_attach(): an importing device attaches (no scatterlists are modelled). */
export function dma_buf_attach(dmabuf: DmaBuf, dev: unknown): DmaBufAttachment {
  return { dmabuf, dev };
}
