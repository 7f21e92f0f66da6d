import type { Scheduler } from './scheduler.js';
import type { KGen, Point, Task, Waitable } from './task.js';
import { WaitQueue } from './waitqueue.js';

/**
 * spinlock_t. Holding one puts the task in atomic context: sleeping is then a finding. A
 * contended acquirer waits (it spins on a real CPU); that wait is not a sleep.
 */
export class Spinlock implements Waitable {
  owner: Task | null = null;
  private readonly spinners: WaitQueue;
  /** The scheduling point of every lock(): the same object each time (the scheduler only reads it). */
  private readonly point: Point;

  constructor(
    readonly sched: Scheduler,
    readonly name: string,
    readonly cls: string = name,
  ) {
    this.spinners = new WaitQueue(sched, name, () => (this.owner ? [this.owner] : []), 'spinlock', this);
    this.point = { op: 'spin_lock', resource: name };
  }

  describe(): string {
    return `spinlock ${this.name}`;
  }
  owners(): readonly Task[] {
    return this.owner ? [this.owner] : [];
  }

  /** Acquires without a scheduling point; returns false if held (the caller must wait). */
  tryAcquire(t: Task): boolean {
    if (this.owner) return false;
    this.owner = t;
    t.atomicDepth++;
    return true;
  }

  /** spin_lock(): a scheduling point, then spin until free. */
  *lock(): KGen {
    const s = this.sched;
    const t = s.cur();
    s.lock_acquire(this, this.cls, this.name);
    yield this.point;
    while (!this.tryAcquire(t)) {
      // Spinning is not sleeping: atomic callers may spin too.
      yield this.spinners.sleep({ spin: true });
      this.spinners.leave();
    }
  }

  /** spin_trylock(). */
  trylock(): boolean {
    const t = this.sched.cur();
    if (!this.tryAcquire(t)) return false;
    this.sched.lock_acquire(this, this.cls, this.name, { trylock: true });
    return true;
  }

  /** spin_unlock(). */
  unlock(): void {
    const s = this.sched;
    const t = s.cur();
    if (this.owner !== t) {
      s.report('BUG', `spin_unlock of ${this.name} not held by ${t.name}`);
      return;
    }
    this.owner = null;
    t.atomicDepth--;
    s.lock_release(this, this.name);
    this.spinners.wake_up_one();
  }

  is_locked(): boolean {
    return this.owner !== null;
  }
}

export function spin_lock(l: Spinlock): KGen {
  return l.lock();
}
export function spin_unlock(l: Spinlock): void {
  l.unlock();
}
export function spin_trylock(l: Spinlock): boolean {
  return l.trylock();
}
export function assert_spin_locked(l: Spinlock): void {
  if (l.owner !== l.sched.current) l.sched.report('BUG', `assert_spin_locked(${l.name}) failed`);
}
