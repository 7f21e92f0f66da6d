import { ERRNO } from '../base/errno.js';
import { type BlockOptions, type Scheduler, removeAt } from './scheduler.js';
import type { KGen, Point, Task, Waitable } from './task.js';

/**
 * A wait queue (wait_queue_head_t). Sleepers loop on their condition: a wake-up only makes them
 * runnable, it promises nothing. `owners` tells deadlock detection who must act to wake them.
 */
export class WaitQueue implements Waitable {
  private readonly waiters: Task[] = [];

  constructor(
    readonly sched: Scheduler,
    readonly name: string,
    private readonly ownersOf: () => readonly Task[] = () => [],
    private readonly what = 'waitqueue',
    readonly lock?: object,
  ) {}

  describe(): string {
    return `${this.what} ${this.name}`;
  }

  owners(): readonly Task[] {
    return this.ownersOf();
  }

  get length(): number {
    return this.waiters.length;
  }

  /** Enqueues the current task and blocks it; the caller yields the returned point. */
  sleep(opts: BlockOptions = {}): Point {
    const t = this.sched.cur();
    this.waiters.push(t);
    return this.sched.block(this, opts);
  }

  /** Removes the current task after it resumed (woken, signalled or timed out). */
  leave(): void {
    const t = this.sched.cur();
    removeAt(this.waiters, this.waiters.indexOf(t));
  }

  /** wake_up_all(): every sleeper becomes runnable. */
  wake_up_all(): number {
    const ws = this.waiters.splice(0);
    for (const t of ws) this.sched.wake(t);
    return ws.length;
  }

  /** wake_up(): the kernel wakes all non-exclusive waiters; ours are all non-exclusive. */
  wake_up(): number {
    return this.wake_up_all();
  }

  /** Wakes the first sleeper only (exclusive wait, lock hand-over). */
  wake_up_one(): Task | null {
    const t = this.waiters.shift() ?? null;
    if (t) this.sched.wake(t);
    return t;
  }

  has(t: Task): boolean {
    return this.waiters.includes(t);
  }
}

/** wait_event(): sleeps uninterruptibly until `cond()` holds. */
export function* wait_event(wq: WaitQueue, cond: () => boolean): KGen {
  while (!cond()) {
    yield wq.sleep();
    wq.leave();
  }
}

/** wait_event_interruptible(): 0, or -ERESTARTSYS when a signal arrived first. */
export function* wait_event_interruptible(wq: WaitQueue, cond: () => boolean): KGen<number> {
  const t = wq.sched.cur();
  while (!cond()) {
    if (t.signalPending) return -ERRNO.ERESTARTSYS;
    yield wq.sleep({ interruptible: true });
    wq.leave();
  }
  return 0;
}

/**
 * wait_event_timeout(): the remaining time (at least 1) when `cond()` became true, 0 on
 * timeout. `interruptible` makes a signal end the wait with -ERESTARTSYS.
 */
export function* wait_event_timeout(
  wq: WaitQueue,
  cond: () => boolean,
  timeoutNs: number,
  interruptible = false,
): KGen<number> {
  const s = wq.sched;
  const t = s.cur();
  const deadline = s.now + timeoutNs;
  while (!cond()) {
    if (interruptible && t.signalPending) return -ERRNO.ERESTARTSYS;
    const left = deadline - s.now;
    if (left <= 0) return cond() ? 1 : 0;
    yield wq.sleep({ interruptible, timeoutNs: left });
    wq.leave();
  }
  return Math.max(1, deadline - s.now);
}
