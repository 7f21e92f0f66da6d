import { ERRNO } from '../base/errno.js';
import type { AcquireOptions, Scheduler } from './scheduler.js';
import type { KGen, Point, Task, Waitable } from './task.js';
import { WaitQueue } from './waitqueue.js';

const PLAIN: AcquireOptions = {};
const NOBODY: readonly Task[] = [];

/**
 * Acquisitions of one lock per task, indexed by task id (small integers, in creation order): no
 * hashing, and no finished task kept alive (a machine makes a task per syscall).
 */
export class AcquisitionCounts {
  private readonly byId: number[] = [];
  get(t: Task): number | undefined {
    return this.byId[t.id];
  }
  add(t: Task): void {
    const id = t.id;
    this.byId[id] = (this.byId[id] ?? 0) + 1;
  }
}

/** struct mutex: one owner, sleeping waiters, lockdep-checked. */
export class Mutex implements Waitable {
  owner: Task | null = null;
  /** Acquisitions per task (read by sanitizers: "did this task take the lock meanwhile?"). */
  readonly acquisitions = new AcquisitionCounts();
  private readonly waiters: WaitQueue;
  /** The scheduling point of every lock(): the same object each time (the scheduler only reads it). */
  private readonly point: Point;

  constructor(
    readonly sched: Scheduler,
    readonly name: string,
    readonly cls: string = name,
  ) {
    this.waiters = new WaitQueue(sched, name, () => this.owners(), 'mutex', this);
    this.point = { op: 'mutex_lock', resource: name };
  }

  describe(): string {
    return `mutex ${this.name}`;
  }
  owners(): readonly Task[] {
    return this.owner ? [this.owner] : NOBODY;
  }

  private *acquire(interruptible: boolean, subclass: number): KGen<number> {
    const s = this.sched;
    const t = s.cur();
    s.might_sleep();
    s.lock_acquire(this, this.cls, this.name, subclass === 0 ? PLAIN : { subclass });
    yield this.point;
    while (this.owner) {
      if (interruptible && t.signalPending) {
        s.lock_release(this, this.name);
        return -ERRNO.EINTR;
      }
      yield this.waiters.sleep({ interruptible });
      this.waiters.leave();
    }
    this.owner = t;
    this.acquisitions.add(t);
    return 0;
  }

  /** mutex_lock(): uninterruptible. (Its generator is acquire's: one level less on every step.) */
  lock(subclass = 0): KGen {
    return this.acquire(false, subclass) as KGen<unknown> as KGen;
  }

  /** mutex_lock_interruptible(): 0 or -EINTR when a signal arrives while waiting. */
  lock_interruptible(subclass = 0): KGen<number> {
    return this.acquire(true, subclass);
  }

  /** mutex_trylock(): 1 on success, 0 if contended. */
  trylock(): number {
    const s = this.sched;
    const t = s.cur();
    if (this.owner) return 0;
    this.owner = t;
    this.acquisitions.add(t);
    s.lock_acquire(this, this.cls, this.name, { trylock: true });
    return 1;
  }

  /** mutex_unlock(): the owner releases; the first waiter is woken and competes again. */
  unlock(): void {
    const s = this.sched;
    const t = s.cur();
    if (this.owner !== t) {
      s.report('WARN', `mutex_unlock of ${this.name} by ${t.name}, owner ${this.owner?.name ?? 'none'}`);
      return;
    }
    this.owner = null;
    s.lock_release(this, this.name);
    this.waiters.wake_up_one();
  }

  is_locked(): boolean {
    return this.owner !== null;
  }
}

export function mutex_lock(m: Mutex): KGen {
  return m.lock();
}
export function mutex_lock_nested(m: Mutex, subclass: number): KGen {
  return m.lock(subclass);
}
export function mutex_lock_interruptible(m: Mutex): KGen<number> {
  return m.lock_interruptible();
}
export function mutex_trylock(m: Mutex): number {
  return m.trylock();
}
export function mutex_unlock(m: Mutex): void {
  m.unlock();
}
export function mutex_is_locked(m: Mutex): boolean {
  return m.is_locked();
}
