import { ERRNO } from '../base/errno.js';
import type { Scheduler } from './scheduler.js';
import type { KGen } from './task.js';
import { WaitQueue, wait_event, wait_event_timeout } from './waitqueue.js';

const ALL = Number.MAX_SAFE_INTEGER;

/** struct completion: a counted event; complete_all() releases every present and future waiter. */
export class Completion {
  done = 0;
  readonly wq: WaitQueue;

  constructor(
    readonly sched: Scheduler,
    readonly name: string,
  ) {
    this.wq = new WaitQueue(sched, name, () => [], 'completion');
  }

  complete(): void {
    if (this.done !== ALL) this.done++;
    this.wq.wake_up_one();
  }

  complete_all(): void {
    this.done = ALL;
    this.wq.wake_up_all();
  }

  reinit_completion(): void {
    this.done = 0;
  }

  completion_done(): boolean {
    return this.done > 0;
  }

  try_wait_for_completion(): boolean {
    if (this.done === 0) return false;
    this.consume();
    return true;
  }

  private consume(): void {
    if (this.done !== ALL) this.done--;
  }

  *wait_for_completion(): KGen {
    yield* wait_event(this.wq, () => this.done > 0);
    this.consume();
  }

  /** 0 or -ERESTARTSYS. */
  *wait_for_completion_interruptible(): KGen<number> {
    const t = this.sched.cur();
    while (this.done === 0) {
      if (t.signalPending) return -ERRNO.ERESTARTSYS;
      yield this.wq.sleep({ interruptible: true });
      this.wq.leave();
    }
    this.consume();
    return 0;
  }

  /** Remaining time (≥ 1) when completed, 0 on timeout. */
  *wait_for_completion_timeout(timeoutNs: number): KGen<number> {
    const left = yield* wait_event_timeout(this.wq, () => this.done > 0, timeoutNs);
    if (left > 0) this.consume();
    return left;
  }
}
