import { ERRNO } from '../base/errno.js';
import { PAGE_SIZE } from '../base/page.js';
import type { Scheduler } from '../sched/scheduler.js';
import type { KGen } from '../sched/task.js';
import { exit_task_work, task_work_run } from '../sched/task_work.js';
import type { TaskStruct } from '../mm/current.js';
import { File, fput, get_file } from '../mm/file.js';
import type { MmStruct } from '../mm/mm_types.js';
import { dup_mm } from '../mm/fork.js';
import { sys_madvise } from '../mm/madvise.js';
import { mmput } from '../mm/mm.js';
import { vm_mmap_pgoff, vm_munmap } from '../mm/mmap.js';
import { sys_mprotect } from '../mm/mprotect.js';
import { sys_mremap } from '../mm/mremap.js';
import { user_access } from '../mm/uaccess.js';
import * as mman from '../uapi/mman.js';
import type { Process } from './process.js';

/**
 * The system calls, as generators that return a value or -errno (the kernel's convention). They
 * run in a user task whose context is the calling process (`current`). Those that can drop the
 * last reference of a file end in `resume_user_mode`: the deferred releases run there.
 */

/** The return to user space (tracehook_notify_resume): task work queued by the call runs. */
function* resume_user_mode<T>(p: Process, r: T): KGen<T> {
  const t = p.machine.sched.current;
  if (t?.task_works?.length) yield* task_work_run(t);
  return r;
}

/**
 * The mm of the task making the call: a thread keeps the mm it was created with until it dies,
 * so it can finish a syscall that was in flight when another thread called exit.
 */
export function task_mm(p: Process): MmStruct | null {
  const ctx = p.machine.sched.current?.context as TaskStruct | undefined;
  return ctx ? ctx.mm : p.mm;
}

/** Linux limit on open files per process (RLIMIT_NOFILE default). */
export const NR_OPEN_DEFAULT = 1024;

export function fdget(p: Process, fd: number): File | null {
  if (!Number.isInteger(fd) || fd < 0 || fd >= p.files.length) return null;
  return p.files[fd] ?? null;
}

/** get_unused_fd_flags() + fd_install(): lowest free descriptor. */
function fd_install(p: Process, file: File): number {
  let fd = p.files.indexOf(null);
  if (fd < 0) fd = p.files.length;
  if (fd >= NR_OPEN_DEFAULT) return -ERRNO.EMFILE;
  p.files[fd] = file;
  return fd;
}

/** Installs a file the kernel made (dma-buf, ...) in the caller's table; -EMFILE when full. */
export function install_file(p: Process, file: File): number {
  return fd_install(p, file);
}

export function* sys_mmap(
  p: Process,
  addr: number,
  len: number,
  prot: number,
  flags: number,
  fd: number,
  off: number,
): KGen<number> {
  const mm = task_mm(p);
  if (!mm) return -ERRNO.EINVAL;
  if (off % PAGE_SIZE !== 0 || off < 0) return -ERRNO.EINVAL;
  let file: File | null = null;
  if (!(flags & mman.MAP_ANONYMOUS)) {
    file = fdget(p, fd);
    if (!file) return -ERRNO.EBADF;
    get_file(file);
  }
  flags &= ~(mman.MAP_EXECUTABLE | mman.MAP_DENYWRITE);
  const r = yield* vm_mmap_pgoff(mm, file, addr, len, prot, flags, off / PAGE_SIZE);
  if (file) yield* fput(file);
  return yield* resume_user_mode(p, r);
}

export function* sys_munmap(p: Process, addr: number, len: number): KGen<number> {
  const mm = task_mm(p);
  if (!mm) return -ERRNO.EINVAL;
  return yield* resume_user_mode(p, yield* vm_munmap(mm, addr, len));
}

export function* sys_mprotect_(p: Process, addr: number, len: number, prot: number): KGen<number> {
  const mm = task_mm(p);
  if (!mm) return -ERRNO.ENOMEM;
  return yield* resume_user_mode(p, yield* sys_mprotect(mm, addr, len, prot));
}

export function* sys_madvise_(p: Process, addr: number, len: number, advice: number): KGen<number> {
  const mm = task_mm(p);
  if (!mm) return -ERRNO.ENOMEM;
  return yield* sys_madvise(mm, addr, len, advice);
}

export function* sys_mremap_(
  p: Process,
  addr: number,
  oldLen: number,
  newLen: number,
  flags: number,
  newAddr: number,
): KGen<number> {
  const mm = task_mm(p);
  if (!mm) return -ERRNO.EFAULT;
  return yield* resume_user_mode(p, yield* sys_mremap(mm, addr, oldLen, newLen, flags, newAddr));
}

/**
 * A CPU load or store by the process: faults as the MMU would. Returns 0, or the signal and
 * faulting address.
 */
export function* cpu_access(
  p: Process,
  addr: number,
  len: number,
  write: boolean,
  fn: (frame: Uint8Array, done: number) => void,
): KGen<{ signal: 'SIGSEGV' | 'SIGBUS'; addr: number } | null> {
  const mm = task_mm(p);
  if (!mm) return { signal: 'SIGSEGV', addr };
  // A fault can free GEM objects (retiring requests) and so drop files: the return from the
  // exception runs the task work as a system call's return does.
  return yield* resume_user_mode(p, yield* user_access(mm, addr, len, write, fn));
}

export function* sys_open(p: Process, path: string, flags: number): KGen<number> {
  const dev = p.machine.devices.get(path);
  if (!dev) return -ERRNO.ENOENT;
  const file = new File(dev.fops, flags & ~mman.O_CLOEXEC, path, p.machine.sched);
  const err = yield* dev.open(file);
  if (err) return err;
  const fd = fd_install(p, file);
  if (fd < 0) yield* fput(file);
  return yield* resume_user_mode(p, fd);
}

export function* sys_close(p: Process, fd: number): KGen<number> {
  const file = fdget(p, fd);
  if (!file) return -ERRNO.EBADF;
  p.files[fd] = null;
  yield* fput(file);
  return yield* resume_user_mode(p, 0);
}

export function* sys_ioctl(p: Process, fd: number, cmd: number, arg: number | Uint8Array): KGen<number> {
  const file = fdget(p, fd);
  if (!file) return -ERRNO.EBADF;
  if (!file.f_op.unlocked_ioctl) return -ERRNO.ENOTTY;
  const r = yield* file.f_op.unlocked_ioctl(file, cmd >>> 0, arg);
  // -ERESTARTSYS never reaches user space: without SA_RESTART it is EINTR.
  return yield* resume_user_mode(p, r === -ERRNO.ERESTARTSYS ? -ERRNO.EINTR : r);
}

/** fork(): copy the mm, share every open file. Returns the child process or -errno. */
export function* do_fork(p: Process): KGen<Process | number> {
  const oldmm = task_mm(p);
  if (!oldmm) return -ERRNO.EINVAL;
  const mm = yield* dup_mm(oldmm);
  if (typeof mm === 'number') return mm;
  const child = p.machine.newProcess(p.uid, mm, p);
  child.files.push(...p.files.map((f) => (f ? get_file(f) : null)));
  return child;
}

/** do_exit(): exit_mm, exit_files, then exit_task_work (the deferred releases), in Linux's order. */
export function* do_exit(p: Process, status: number): KGen {
  if (p.exited) return;
  p.exited = true;
  p.exitStatus = status;
  // exit_group(): every other thread is killed; each drops its mm reference as it dies, and
  // the last reference tears the address space down.
  for (const t of p.threads) if (!t.done) p.machine.sched.signal(t, true);
  const mm = p.mm;
  p.mm = null;
  if (mm) yield* mmput(mm);
  for (let fd = 0; fd < p.files.length; fd++) {
    const f = p.files[fd];
    if (!f) continue;
    p.files[fd] = null;
    yield* fput(f);
  }
  const t = p.machine.sched.current;
  if (t) yield* exit_task_work(t);
  p.machine.reap(p);
}

/** setuid(2): root may set anything; others only their real or saved uid. */
export function sys_setuid(p: Process, uid: number): number {
  if (!Number.isInteger(uid) || uid < 0 || uid > 0xfffffffe) return -ERRNO.EINVAL;
  if (p.capable(21)) {
    p.ruid = p.uid = p.suid = uid;
    return 0;
  }
  if (uid === p.ruid || uid === p.suid) {
    p.uid = uid;
    return 0;
  }
  return -ERRNO.EPERM;
}

/**
 * A system call as a span of the trace (B/E `syscall` events around it), when someone records:
 * otherwise the call itself, one generator level less on every step.
 */
export function traced_syscall<T>(s: Scheduler, name: string, gen: KGen<T>): KGen<T> {
  return s.tracing ? syscall_span(s, name, gen) : gen;
}

function* syscall_span<T>(s: Scheduler, name: string, gen: KGen<T>): KGen<T> {
  s.traceBegin('syscall', name);
  const r = yield* gen;
  s.traceEnd('syscall', name);
  return r;
}
