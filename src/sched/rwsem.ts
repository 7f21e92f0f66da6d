import type { AcquireOptions, Scheduler } from './scheduler.js';
import type { KGen, Point, Task, Waitable } from './task.js';
import { WaitQueue } from './waitqueue.js';

/** lock_acquire's options of a plain down_write / down_read (shared: never written). */
const WRITE: AcquireOptions = { read: false, subclass: 0 };
const READ: AcquireOptions = { read: true, subclass: 0 };

interface RwWaiter {
  task: Task;
  write: boolean;
  granted: boolean;
}

/**
 * struct rw_semaphore (mmap_sem). FIFO fairness as in 3.16: once anyone is queued, new readers
 * queue too, so a reader that recurses while a writer waits deadlocks, as on Linux. Release
 * hands the lock to the waiters at the head of the queue.
 */
export class RwSemaphore implements Waitable {
  writer: Task | null = null;
  /** Read holders (a task appears once per read acquisition). */
  readonly readers: Task[] = [];
  private readonly queue: RwWaiter[] = [];
  private readonly wq: WaitQueue;
  /** The scheduling points of down_write / down_read: the same objects each time. */
  private readonly writePoint: Point;
  private readonly readPoint: Point;

  constructor(
    readonly sched: Scheduler,
    readonly name: string,
    readonly cls: string = name,
  ) {
    this.wq = new WaitQueue(sched, name, () => this.owners(), 'rwsem', this);
    this.writePoint = { op: 'down_write', resource: name };
    this.readPoint = { op: 'down_read', resource: name };
  }

  describe(): string {
    return `rwsem ${this.name}`;
  }
  owners(): readonly Task[] {
    return this.writer ? [this.writer] : this.readers;
  }

  private *acquire(write: boolean, subclass: number): KGen {
    const s = this.sched;
    const t = s.cur();
    s.might_sleep();
    s.lock_acquire(
      this,
      this.cls,
      this.name,
      subclass === 0 ? (write ? WRITE : READ) : { read: !write, subclass },
    );
    yield write ? this.writePoint : this.readPoint;
    if (this.queue.length === 0 && this.canGrant(write)) {
      this.take(t, write);
      return;
    }
    const w: RwWaiter = { task: t, write, granted: false };
    this.queue.push(w);
    while (!w.granted) {
      yield this.wq.sleep();
      this.wq.leave();
    }
  }

  private canGrant(write: boolean): boolean {
    return write ? !this.writer && this.readers.length === 0 : !this.writer;
  }

  private take(t: Task, write: boolean): void {
    if (write) this.writer = t;
    else this.readers.push(t);
  }

  /** Hands the lock to the head of the queue: one writer, or the run of readers before one. */
  private grant(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      if (!this.canGrant(head.write)) return;
      this.queue.shift();
      this.take(head.task, head.write);
      head.granted = true;
      this.sched.wake(head.task);
      if (head.write) return;
    }
  }

  down_read(subclass = 0): KGen {
    return this.acquire(false, subclass);
  }
  down_write(subclass = 0): KGen {
    return this.acquire(true, subclass);
  }

  down_read_trylock(): boolean {
    const t = this.sched.cur();
    if (this.queue.length > 0 || !this.canGrant(false)) return false;
    this.take(t, false);
    this.sched.lock_acquire(this, this.cls, this.name, { read: true, trylock: true });
    return true;
  }

  down_write_trylock(): boolean {
    const t = this.sched.cur();
    if (this.queue.length > 0 || !this.canGrant(true)) return false;
    this.take(t, true);
    this.sched.lock_acquire(this, this.cls, this.name, { trylock: true });
    return true;
  }

  up_read(): void {
    const s = this.sched;
    const t = s.cur();
    const i = this.readers.indexOf(t);
    if (i < 0) {
      s.report('BUG', `up_read of ${this.name} by ${t.name}, which does not hold it for read`);
      return;
    }
    this.readers.splice(i, 1);
    s.lock_release(this, this.name);
    this.grant();
  }

  up_write(): void {
    const s = this.sched;
    const t = s.cur();
    if (this.writer !== t) {
      s.report('BUG', `up_write of ${this.name} by ${t.name}, owner ${this.writer?.name ?? 'none'}`);
      return;
    }
    this.writer = null;
    s.lock_release(this, this.name);
    this.grant();
  }

  /** downgrade_write(): keep holding for read, let queued readers in. */
  downgrade_write(): void {
    const s = this.sched;
    const t = s.cur();
    if (this.writer !== t) {
      s.report('BUG', `downgrade_write of ${this.name} not held for write by ${t.name}`);
      return;
    }
    this.writer = null;
    this.readers.push(t);
    const h = t.held.find((x) => x.lock === this);
    if (h) h.read = true;
    this.grant();
  }

  /** Held for write by the current task (lockdep_assert_held_write). */
  is_write_held_by_current(): boolean {
    return this.writer !== null && this.writer === this.sched.current;
  }

  /** Held in any mode by the current task. */
  is_held_by_current(): boolean {
    const t = this.sched.current;
    return t !== null && (this.writer === t || this.readers.includes(t));
  }

  get queued(): number {
    return this.queue.length;
  }
}

export function down_read(s: RwSemaphore): KGen {
  return s.down_read();
}
export function down_write(s: RwSemaphore): KGen {
  return s.down_write();
}
export function down_write_nested(s: RwSemaphore, subclass: number): KGen {
  return s.down_write(subclass);
}
export function up_read(s: RwSemaphore): void {
  s.up_read();
}
export function up_write(s: RwSemaphore): void {
  s.up_write();
}
