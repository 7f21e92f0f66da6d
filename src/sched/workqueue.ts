import type { Scheduler } from './scheduler.js';
import type { KGen, Task } from './task.js';
import { WaitQueue, wait_event } from './waitqueue.js';

/**
 * struct work_struct. Generations make flush_work exact: it waits for the instance that was
 * queued (or running) when it was called, not for later requeues.
 */
export class WorkStruct {
  pending = false;
  /** The worker running it, if any. A work item never runs on two workers at once. */
  running: Task | null = null;
  /** Generation of the latest queueing, and of the latest finished execution. */
  queuedGen = 0;
  runningGen = 0;
  doneGen = 0;
  wq: Workqueue | null = null;
  /** Lockdep's name for the item (made once: the worker takes and drops it on every run). */
  readonly lockName: string;

  constructor(
    readonly name: string,
    readonly func: (work: WorkStruct) => KGen,
  ) {
    this.lockName = `(work)${name}`;
  }
}

/** INIT_WORK(). */
export function INIT_WORK(name: string, func: (work: WorkStruct) => KGen): WorkStruct {
  return new WorkStruct(name, func);
}

/**
 * A workqueue with a fixed pool of worker tasks, so several items really run concurrently. Each
 * worker is a task that sleeps while the queue is empty.
 */
export class Workqueue {
  private readonly items: WorkStruct[] = [];
  readonly workers: Task[] = [];
  /** Workers sleep here for work. */
  readonly more: WaitQueue;
  /** Flushers sleep here for executions to finish. */
  readonly finished: WaitQueue;
  /** Items executing now. */
  readonly running = new Set<WorkStruct>();
  destroyed = false;

  constructor(
    readonly sched: Scheduler,
    readonly name: string,
    nrWorkers: number,
  ) {
    this.more = new WaitQueue(sched, `${name} work`, () => [], 'workqueue');
    this.finished = new WaitQueue(
      sched,
      `${name} flush`,
      () => [...this.running].map((w) => w.running!),
      'work',
    );
    for (let i = 0; i < nrWorkers; i++) {
      this.workers.push(sched.spawn(`kworker/${name}:${i}`, 'worker', this.worker()));
    }
  }

  get pendingCount(): number {
    return this.items.length;
  }

  /** Queued items, oldest first (sanitizers and tests look; they never change it). */
  get queued(): readonly WorkStruct[] {
    return this.items;
  }

  private *worker(): KGen {
    const s = this.sched;
    for (;;) {
      const i = this.items.findIndex((w) => w.running === null);
      if (i < 0) {
        if (this.destroyed) return;
        yield this.more.sleep();
        this.more.leave();
        continue;
      }
      const w = this.items.splice(i, 1)[0]!;
      const me = s.cur();
      w.pending = false;
      w.running = me;
      w.runningGen = w.queuedGen;
      this.running.add(w);
      // Lockdep sees the work item as a lock held while it runs, so flushing it under a lock
      // that it takes is an inversion.
      s.lock_acquire(w, w.lockName, w.lockName);
      yield { op: 'work', resource: w.name };
      // An oops in the item kills this worker with the item still "running", as on Linux.
      yield* w.func(w);
      s.lock_release(w, w.lockName);
      w.running = null;
      w.doneGen = w.runningGen;
      this.running.delete(w);
      this.finished.wake_up_all();
    }
  }

  enqueue(w: WorkStruct): boolean {
    if (w.pending || this.destroyed) return false;
    w.pending = true;
    w.wq = this;
    w.queuedGen++;
    this.items.push(w);
    this.more.wake_up_one();
    return true;
  }

  /** Removes a pending, not yet started instance. */
  dequeue(w: WorkStruct): boolean {
    const i = this.items.indexOf(w);
    if (i < 0) return false;
    this.items.splice(i, 1);
    w.pending = false;
    w.queuedGen = w.doneGen;
    return true;
  }
}

/** alloc_workqueue(). */
export function alloc_workqueue(sched: Scheduler, name: string, nrWorkers = 4): Workqueue {
  return new Workqueue(sched, name, nrWorkers);
}

/** queue_work(): false if already pending. */
export function queue_work(wq: Workqueue, w: WorkStruct): boolean {
  return wq.enqueue(w);
}

/**
 * Waiting for a work item may sleep, and lockdep sees it as taking the item's lock: flushing a
 * work under a lock the work takes is an inversion.
 */
function lockdep_wait_for_work(wq: Workqueue, w: WorkStruct): void {
  const s = wq.sched;
  s.might_sleep();
  s.lock_acquire(w, w.lockName, w.lockName);
  s.lock_release(w, w.lockName);
}

/** flush_work(): waits for the last queued instance to finish. True if it had to wait. */
export function* flush_work(w: WorkStruct): KGen<boolean> {
  const wq = w.wq;
  if (!wq) return false;
  lockdep_wait_for_work(wq, w);
  const target = w.pending ? w.queuedGen : w.running ? w.runningGen : w.doneGen;
  if (w.doneGen >= target) return false;
  yield* wait_event(wq.finished, () => w.doneGen >= target);
  return true;
}

/**
 * cancel_work_sync(): removes a pending instance and waits for a running one. True if it was
 * pending.
 */
export function* cancel_work_sync(w: WorkStruct): KGen<boolean> {
  const wq = w.wq;
  if (!wq) return false;
  lockdep_wait_for_work(wq, w);
  const was = wq.dequeue(w);
  yield* wait_event(wq.finished, () => w.running === null);
  return was;
}

/** flush_workqueue(): waits until nothing queued before the call has finished running. */
export function* flush_workqueue(wq: Workqueue): KGen {
  wq.sched.might_sleep();
  const targets: [WorkStruct, number][] = wq.queued.map((w) => [w, w.queuedGen]);
  for (const w of wq.running) targets.push([w, w.runningGen]);
  yield* wait_event(wq.finished, () => targets.every(([w, g]) => w.doneGen >= g));
}

/** destroy_workqueue(): drains, then lets the workers exit. */
export function* destroy_workqueue(wq: Workqueue): KGen {
  yield* flush_workqueue(wq);
  wq.destroyed = true;
  wq.more.wake_up_all();
}
