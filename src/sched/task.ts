/**
 * Tasks: every kernel thread, workqueue worker, GPU engine and user thread is a generator. A
 * function that may sleep is `function*` and callers `yield*` it; each plain `yield` is a
 * scheduling point that names what happens next.
 */

/** A scheduling point: the task is about to do `op` on `resource`. */
export interface Point {
  op: string;
  resource?: string;
  detail?: string;
  /** Virtual nanoseconds this step costs (GPU commands cost in proportion to bytes moved). */
  cost?: number;
}

/** A kernel function that may sleep: a generator yielding scheduling points. */
export type KGen<T = void> = Generator<Point, T, void>;

export type TaskKind = 'user' | 'kthread' | 'worker' | 'engine';

export type TaskState = 'runnable' | 'blocked' | 'done';

/** Something a blocked task waits for: deadlock detection follows `owners`. */
export interface Waitable {
  /** "mutex struct_mutex", "completion gpu_idle", ... */
  describe(): string;
  /** Tasks that must make progress for the waiter to be woken (a lock's holders); may be empty. */
  owners(): readonly Task[];
  /** The lock being acquired, if this is a lock's wait: lockdep already lists it as held. */
  readonly lock?: object;
}

/** A lock as lockdep sees it in a task's held-lock stack. */
export interface HeldLock {
  /** The lock object itself (identity). */
  lock: object;
  /** Lock class key ("&mm->mmap_sem", "struct_mutex"), with "/n" for a nesting subclass. */
  cls: string;
  /** Instance name for reports. */
  name: string;
  read: boolean;
  /** Acquired with trylock: adds no dependency edges. */
  trylock: boolean;
  /** Not part of dependency chains (SRCU read sections). */
  nodeps: boolean;
  step: number;
}

export class Task {
  state: TaskState = 'runnable';
  /** Locks held, outermost first (lockdep's held_locks). */
  readonly held: HeldLock[] = [];
  /** Spinlocks held / preemption disabled: sleeping now is a bug. */
  atomicDepth = 0;
  /** A signal is pending: interruptible sleeps end with -EINTR / -ERESTARTSYS. */
  signalPending = false;
  /** Fatal signal (SIGKILL) pending. */
  fatalSignalPending = false;
  /** The current sleep ends on a signal (TASK_INTERRUPTIBLE). */
  interruptible = false;
  /** What the task is blocked on, while blocked. */
  waitingOn: Waitable | null = null;
  /** Virtual time at which a timed sleep ends; null when untimed. */
  wakeAt: number | null = null;
  /** Set when the last sleep ended by its timeout rather than a wake-up. */
  timedOut = false;
  /** Outcome once done. */
  result: unknown = undefined;
  error: unknown = undefined;
  /** Flow id of the wake-up that made it runnable (trace causality). */
  wakeFlow = 0;
  /** Opaque per-task data of upper layers (the process a user thread belongs to, ...). */
  context: unknown = undefined;
  /**
   * task_work (kernel/task_work.c): callbacks to run when the task returns to user space,
   * allocated at the first one. Kernel threads take none, nor a task past exit_task_work().
   */
  task_works: (() => KGen)[] | null = null;
  /** task_work_add() refuses: a kernel thread, or exit_task_work() ran. */
  task_works_closed: boolean;

  /** `id` is the scheduler's registration number: deterministic, unique within one machine. */
  constructor(
    readonly id: number,
    readonly name: string,
    readonly kind: TaskKind,
    readonly gen: Generator<Point, unknown, void>,
  ) {
    this.task_works_closed = kind !== 'user';
  }

  get done(): boolean {
    return this.state === 'done';
  }

  heldNames(): string[] {
    return this.held.map((h) => h.name + (h.read ? '(read)' : ''));
  }
}

/**
 * Thrown into a user thread that was killed (exit_group, SIGKILL) when it next enters the
 * kernel: the thread ends there, as a killed thread never returns to user space.
 */
export class TaskKilled extends Error {
  constructor(readonly task: string) {
    super(`${task} was killed`);
    this.name = 'TaskKilled';
  }
}
