import { ERRNO } from '../base/errno.js';
import { type KGen, type Point, type Task, TaskKilled } from '../sched/task.js';
import { mmget, mmput } from '../mm/mm.js';
import { exit_task_work } from '../sched/task_work.js';
import { CAP_SYS_ADMIN, type TaskStruct } from '../mm/current.js';
import type { File } from '../mm/file.js';
import type { MmStruct } from '../mm/mm_types.js';
import { ErrnoError, SegfaultError } from './errors.js';
import type { Machine } from './machine.js';
import * as sys from './syscalls.js';

/**
 * The raw system-call interface of one process, for user threads written as generators:
 * every call returns the kernel's value or -errno, and may be interleaved with other tasks.
 */
export class UserApi {
  constructor(readonly proc: Process) {}

  /**
   * A killed thread dies on its next entry into the kernel. The system calls below are plain
   * functions returning the kernel's generator (one generator level less on every step of every
   * call), so this check runs when the call is made, which for `yield* api.call(...)` is the
   * same step as the call's first one.
   */
  private enter(): void {
    const t = this.proc.machine.sched.current;
    if (t && t.kind === 'user' && t.fatalSignalPending) throw new TaskKilled(t.name);
  }
  /** A system call, as a span of the trace when someone records. */
  private traced<T>(name: string, gen: KGen<T>): KGen<T> {
    return sys.traced_syscall(this.proc.machine.sched, name, gen);
  }
  mmap(addr: number, length: number, prot: number, flags: number, fd = -1, offset = 0): KGen<number> {
    this.enter();
    return this.traced('mmap', sys.sys_mmap(this.proc, addr, length, prot, flags, fd, offset));
  }
  munmap(addr: number, length: number): KGen<number> {
    this.enter();
    return this.traced('munmap', sys.sys_munmap(this.proc, addr, length));
  }
  mprotect(addr: number, length: number, prot: number): KGen<number> {
    this.enter();
    return this.traced('mprotect', sys.sys_mprotect_(this.proc, addr, length, prot));
  }
  madvise(addr: number, length: number, advice: number): KGen<number> {
    this.enter();
    return this.traced('madvise', sys.sys_madvise_(this.proc, addr, length, advice));
  }
  mremap(oldAddr: number, oldSize: number, newSize: number, flags: number, newAddr = 0): KGen<number> {
    this.enter();
    return this.traced('mremap', sys.sys_mremap_(this.proc, oldAddr, oldSize, newSize, flags, newAddr));
  }
  ioctl(fd: number, request: number, arg: number | Uint8Array): KGen<number> {
    this.enter();
    return this.traced('ioctl', sys.sys_ioctl(this.proc, fd, request, arg));
  }
  open(path: string, flags = 2): KGen<number> {
    this.enter();
    return this.traced('open', sys.sys_open(this.proc, path, flags));
  }
  close(fd: number): KGen<number> {
    this.enter();
    return this.traced('close', sys.sys_close(this.proc, fd));
  }
  /** A CPU load; null result means the access faulted (signal in `fault`). */
  *read(addr: number, length: number): KGen<Uint8Array | SegfaultError> {
    this.enter();
    // A user-mode access is an instruction other CPUs interleave with.
    yield new AccessPoint('load', addr, length);
    const out = new Uint8Array(length);
    const f = yield* sys.cpu_access(this.proc, addr, length, false, (frame, done) => out.set(frame, done));
    return f ? new SegfaultError(f.signal, f.addr, false) : out;
  }
  /** A CPU load whose bytes nobody keeps: where it would fault, or null. */
  *probe(addr: number, length: number): KGen<SegfaultError | null> {
    this.enter();
    yield new AccessPoint('load', addr, length);
    const f = yield* sys.cpu_access(this.proc, addr, length, false, noop);
    return f ? new SegfaultError(f.signal, f.addr, false) : null;
  }
  /** A CPU store; returns the signal error instead of throwing. */
  *write(addr: number, bytes: Uint8Array): KGen<SegfaultError | null> {
    this.enter();
    yield new AccessPoint('store', addr, bytes.length);
    const f = yield* sys.cpu_access(this.proc, addr, bytes.length, true, (frame, done) =>
      frame.set(bytes.subarray(done, done + frame.length)),
    );
    return f ? new SegfaultError(f.signal, f.addr, true) : null;
  }
}

function noop(): void {}

/** A user-mode load or store as a scheduling point; its address is only formatted when traced. */
class AccessPoint implements Point {
  constructor(
    readonly op: 'load' | 'store',
    private readonly addr: number,
    private readonly length: number,
  ) {}
  get resource(): string {
    return `0x${this.addr.toString(16)}+${this.length}`;
  }
}

/** A user process: credentials, an address space, a file table, threads. */
export class Process implements TaskStruct {
  /** Real, effective and saved uid. */
  ruid: number;
  uid: number;
  suid: number;
  mm: MmStruct | null;
  /** fd → file. */
  readonly files: (File | null)[] = [];
  exited = false;
  exitStatus = 0;
  readonly threads: Task[] = [];
  readonly api: UserApi;
  /** Task name of the process (`pid100`), made once: every syscall task is named after it. */
  readonly comm: string;

  constructor(
    readonly machine: Machine,
    readonly pid: number,
    uid: number,
    mm: MmStruct,
    readonly parent: Process | null,
  ) {
    this.ruid = this.uid = this.suid = uid;
    this.mm = mm;
    this.api = new UserApi(this);
    this.comm = `pid${pid}`;
  }

  /** capable(): uid 0 has every capability (CAP_SYS_ADMIN included). */
  capable(_cap: number): boolean {
    return this.uid === 0;
  }

  get hasSysAdmin(): boolean {
    return this.capable(CAP_SYS_ADMIN);
  }

  private call(name: string, gen: KGen<number>): number {
    const r = this.machine.syscall(this, name, gen);
    if (r < 0) throw new ErrnoError(-r, name);
    return r;
  }

  private alive(name: string): void {
    if (this.exited) throw new ErrnoError(ERRNO.ESRCH, name);
  }

  mmap(addr: number, length: number, prot: number, flags: number, fd = -1, offset = 0): number {
    this.alive('mmap');
    checkNumbers('mmap', addr, length, prot, flags, fd, offset);
    return this.call('mmap', this.api.mmap(ulong(addr), ulong(length), prot, flags, fd, ulong(offset)));
  }
  munmap(addr: number, length: number): void {
    this.alive('munmap');
    checkNumbers('munmap', addr, length);
    this.call('munmap', this.api.munmap(ulong(addr), ulong(length)));
  }
  mprotect(addr: number, length: number, prot: number): void {
    this.alive('mprotect');
    checkNumbers('mprotect', addr, length, prot);
    this.call('mprotect', this.api.mprotect(ulong(addr), ulong(length), prot));
  }
  madvise(addr: number, length: number, advice: number): void {
    this.alive('madvise');
    checkNumbers('madvise', addr, length, advice);
    this.call('madvise', this.api.madvise(ulong(addr), ulong(length), advice));
  }
  mremap(oldAddr: number, oldSize: number, newSize: number, flags: number, newAddr = 0): number {
    this.alive('mremap');
    checkNumbers('mremap', oldAddr, oldSize, newSize, flags, newAddr);
    return this.call(
      'mremap',
      this.api.mremap(ulong(oldAddr), ulong(oldSize), ulong(newSize), flags, ulong(newAddr)),
    );
  }

  /** CPU loads through the page tables; throws SegfaultError on a bad access. */
  read(addr: number, length: number): Uint8Array {
    this.alive('read');
    checkNumbers('read', addr, length);
    if (length < 0) throw new ErrnoError(ERRNO.EINVAL, 'read');
    if (length > MAX_READ) {
      // No JS buffer holds the result: the load still runs (faulting pages in, so running out of
      // frames faults too: there is no OOM killer) and faults where the CPU's would.
      const f = this.machine.syscall(this, 'read', this.api.probe(ulong(addr), length));
      if (f) throw f;
      throw new ErrnoError(ERRNO.ENOMEM, 'read');
    }
    const r = this.machine.syscall(this, 'read', this.api.read(ulong(addr), length));
    if (r instanceof SegfaultError) throw r;
    return r;
  }

  /** CPU stores through the page tables (breaking COW); throws SegfaultError on a bad access. */
  write(addr: number, bytes: Uint8Array | ArrayBufferView | ArrayLike<number>): void {
    this.alive('write');
    checkNumbers('write', addr);
    const data = storeBytes(bytes);
    if (!data) throw new ErrnoError(ERRNO.EFAULT, 'write');
    const r = this.machine.syscall(this, 'write', this.api.write(ulong(addr), data));
    if (r) throw r;
  }

  fork(): Process {
    this.alive('fork');
    const r = this.machine.syscall(
      this,
      'fork',
      sys.traced_syscall(this.machine.sched, 'fork', sys.do_fork(this)),
    );
    if (typeof r === 'number') throw new ErrnoError(-r, 'fork');
    return r;
  }

  exit(status = 0): void {
    if (this.exited) return;
    this.machine.syscall(
      this,
      'exit',
      sys.traced_syscall(this.machine.sched, 'exit', sys.do_exit(this, status)),
    );
  }

  setuid(uid: number): void {
    this.alive('setuid');
    const r = sys.sys_setuid(this, uid);
    if (r < 0) throw new ErrnoError(-r, 'setuid');
  }

  open(path: string, flags = 2): number {
    this.alive('open');
    if (typeof path !== 'string') throw new ErrnoError(ERRNO.EFAULT, 'open');
    return this.call('open', this.api.open(path, flags));
  }

  close(fd: number): void {
    this.alive('close');
    this.call('close', this.api.close(fd));
  }

  ioctl(fd: number, request: number, arg: number | Uint8Array): number {
    this.alive('ioctl');
    checkNumbers('ioctl', fd, request);
    if (typeof arg !== 'number' && !(arg instanceof Uint8Array)) throw new ErrnoError(ERRNO.EFAULT, 'ioctl');
    return this.call('ioctl', this.api.ioctl(fd, request, arg));
  }

  /** libdrm's drmIoctl(): retries while the call fails with EINTR or EAGAIN. */
  drmIoctl(fd: number, request: number, arg: number | Uint8Array): number {
    for (;;) {
      try {
        return this.ioctl(fd, request, arg);
      } catch (e) {
        if (!(e instanceof ErrnoError) || (e.errno !== ERRNO.EINTR && e.errno !== ERRNO.EAGAIN)) throw e;
        this.machine.yieldToOthers(this);
      }
    }
  }

  /**
   * Starts a user thread of this process: a generator over the raw syscall interface, run as a
   * task that interleaves with everything else (the explorer's unit of concurrency).
   */
  thread(name: string, body: (api: UserApi) => Generator<Point, unknown, void>): Task {
    if (this.exited) throw new ErrnoError(ERRNO.ESRCH, 'clone');
    // A thread shares the mm and holds a user reference on it until it exits.
    const mm = this.mm;
    if (mm) mmget(mm);
    const ctx = new ThreadStruct(this, mm);
    const t = this.machine.sched.spawn(`${this.comm}/${name}`, 'user', userThread(body(this.api), ctx));
    t.context = ctx;
    this.threads.push(t);
    return t;
  }
}

/**
 * Addresses and lengths are unsigned longs: a negative number is what C would see after the
 * conversion, a value above 2^63 (precision beyond 2^53 does not matter: all such values are
 * rejected the same way).
 */
function ulong(a: number): number {
  return a < 0 ? 2 ** 64 + a : a;
}

/** The largest load `read` returns (a JS buffer's practical limit, 2 GiB - 1). */
const MAX_READ = 0x7fffffff;

/**
 * What a store writes: a typed array's (or DataView's) own bytes, or an array(-like) of byte values;
 * null for anything else (the caller answers EFAULT, as for a bad buffer pointer).
 */
function storeBytes(bytes: unknown): Uint8Array | null {
  if (bytes instanceof Uint8Array) return bytes;
  if (ArrayBuffer.isView(bytes)) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (typeof bytes === 'object' && bytes !== null && typeof (bytes as ArrayLike<number>).length === 'number')
    return Uint8Array.from(bytes as ArrayLike<number>);
  return null;
}

/** Arguments from a JS caller must be integers: anything else is -EINVAL. */
function checkNumbers(name: string, ...args: unknown[]): void {
  for (const a of args) {
    if (typeof a !== 'number' || !Number.isFinite(a) || !Number.isInteger(a)) {
      throw new ErrnoError(ERRNO.EINVAL, name);
    }
  }
}

/** A thread of a process as `current`: the process's identity, the thread's own mm pointer. */
export class ThreadStruct implements TaskStruct {
  constructor(
    readonly proc: Process,
    public mm: MmStruct | null,
  ) {}
  get pid(): number {
    return this.proc.pid;
  }
  get comm(): string {
    return this.proc.comm;
  }
  capable(cap: number): boolean {
    return this.proc.capable(cap);
  }
}

/**
 * A user thread's life: its body, then (also when killed) exit_mm, dropping its mm reference, and
 * exit_task_work, running the releases that left queued.
 */
function* userThread(
  body: Generator<Point, unknown, void>,
  ctx: ThreadStruct,
): Generator<Point, unknown, void> {
  let killed: TaskKilled | null = null;
  let result: unknown;
  try {
    result = yield* body;
  } catch (e) {
    if (!(e instanceof TaskKilled)) throw e;
    killed = e;
  }
  const mm = ctx.mm;
  ctx.mm = null;
  if (mm) yield* mmput(mm);
  const t = ctx.proc.machine.sched.current;
  if (t) yield* exit_task_work(t);
  if (killed) throw killed;
  return result;
}
