import { Mutex } from './mutex.js';
import type { AcquireOptions, Scheduler } from './scheduler.js';
import type { KGen, Task } from './task.js';
import { WaitQueue, wait_event } from './waitqueue.js';

/** lock_acquire's options of a read section (shared: never written). */
const READ_NODEPS: AcquireOptions = { read: true, nodeps: true };

/**
 * struct srcu_struct: sleepable RCU. Readers enter one of two epochs; synchronize_srcu() flips
 * the epoch and waits for the readers of the old one (serialized by an internal mutex, so one
 * flip per grace period suffices).
 */
export class SrcuStruct {
  private idx = 0;
  private readonly readers: [Task[], Task[]] = [[], []];
  private readonly drained: WaitQueue;
  private readonly gpMutex: Mutex;
  private waitingIdx = -1;
  /** Completed grace periods. */
  completed = 0;

  constructor(
    readonly sched: Scheduler,
    readonly name: string,
  ) {
    this.drained = new WaitQueue(
      sched,
      name,
      () => (this.waitingIdx < 0 ? [] : this.readers[this.waitingIdx as 0 | 1]),
      'srcu grace period',
    );
    this.gpMutex = new Mutex(sched, `${name}.mutex`);
  }

  /** srcu_read_lock(): returns the epoch index to pass to srcu_read_unlock(). */
  read_lock(): number {
    const s = this.sched;
    const t = s.cur();
    const i = this.idx;
    this.readers[i as 0 | 1].push(t);
    s.lock_acquire(this, this.name, this.name, READ_NODEPS);
    return i;
  }

  srcu_read_unlock(idx: number): void {
    const s = this.sched;
    const t = s.cur();
    const list = this.readers[idx as 0 | 1];
    const k = list.indexOf(t);
    if (k < 0) {
      s.report('BUG', `srcu_read_unlock(${this.name}, ${idx}) without a matching read lock`);
      return;
    }
    list.splice(k, 1);
    s.lock_release(this, this.name);
    if (list.length === 0) this.drained.wake_up_all();
  }

  /** synchronize_srcu(): waits for every reader that started before the call. */
  *synchronize_srcu(): KGen {
    const s = this.sched;
    s.might_sleep();
    if (s.holds(this)) {
      s.report('lockdep', `Illegal synchronize_srcu() in same-type SRCU critical section (${this.name})`);
    }
    yield* this.gpMutex.lock();
    const old = this.idx;
    this.idx ^= 1;
    yield { op: 'synchronize_srcu', resource: this.name };
    this.waitingIdx = old;
    yield* wait_event(this.drained, () => this.readers[old as 0 | 1].length === 0);
    this.waitingIdx = -1;
    this.completed++;
    this.gpMutex.unlock();
  }

  /** Readers currently inside a read section. */
  get readerCount(): number {
    return this.readers[0].length + this.readers[1].length;
  }
}

export function srcu_read_lock(s: SrcuStruct): number {
  return s.read_lock();
}
export function srcu_read_unlock(s: SrcuStruct, idx: number): void {
  s.srcu_read_unlock(idx);
}
export function synchronize_srcu(s: SrcuStruct): KGen {
  return s.synchronize_srcu();
}
