import { ERRNO } from '../base/errno.js';
import type { Scheduler } from '../sched/scheduler.js';
import { type KGen, type Task, TaskKilled } from '../sched/task.js';

/**
 * Liveness: a client that retries an operation forever (drmIoctl getting -EAGAIN every time)
 * never reaches the step bound quickly and never deadlocks, so it gets a detector of its own.
 *
 * Scenario threads report each failed attempt (`retry`) and each success (`progress`). A retry is
 * *quiet* when nothing else in the machine could change the outcome: every other runnable task is
 * itself retrying and no timer is pending. A task that retries `threshold` times in a row quietly
 * is livelocked: that is a 'livelock' finding, and the thread ends there as if killed (its exit
 * path runs, so the machine still shuts down cleanly). A fair chance to progress is not enough to
 * pass: a worker that is runnable but never chosen keeps the retries loud, so an unlucky
 * schedule is not mistaken for a livelock.
 */

/** A liveness violation, in the order it happened among the kernel's findings. */
export interface LivenessEvent {
  kind: 'livelock';
  message: string;
  detail: string;
  task: string;
  locks: string[];
  step: number;
  time: number;
  /** Index in the scheduler's findings at the time (for ordering). */
  at: number;
}

interface Streak {
  what: string;
  count: number;
  quiet: number;
}

export class Liveness {
  private readonly streaks = new Map<Task, Streak>();
  /** Failed attempts reported in this run. */
  retries = 0;
  readonly events: LivenessEvent[] = [];

  constructor(
    private readonly sched: Scheduler,
    readonly threshold: number,
  ) {}

  retry(what: string): void {
    this.retries++;
    const s = this.sched;
    const t = s.current;
    if (!t) return;
    let st = this.streaks.get(t);
    if (!st) {
      st = { what, count: 0, quiet: 0 };
      this.streaks.set(t, st);
    }
    st.what = what;
    st.count++;
    const quiet =
      !s.hasTimers() && s.runnableNow().every((r) => r === t || (this.streaks.get(r)?.count ?? 0) > 0);
    st.quiet = quiet ? st.quiet + 1 : 0;
    if (st.quiet < this.threshold) return;
    this.streaks.delete(t);
    this.events.push({
      kind: 'livelock',
      message: `livelock: ${t.name} retried ${what} ${st.count} times without progress`,
      detail: `  the last ${st.quiet} retries found no other task able to change the outcome`,
      task: t.name,
      locks: t.heldNames(),
      step: s.step,
      time: s.now,
      at: s.findings.length,
    });
    throw new TaskKilled(t.name);
  }

  progress(): void {
    const t = this.sched.current;
    if (t) this.streaks.delete(t);
  }

  /** Tasks in a retry streak now: "pid100/t retried ioctl 812 times". */
  describe(): string[] {
    return [...this.streaks].map(
      ([t, st]) => `${t.name} retried ${st.what} ${st.count} times without progress`,
    );
  }
}

/** What a retry loop needs from the run (a `RunContext` provides it). */
export interface RetryHooks {
  retry(what: string): void;
  progress(what?: string): void;
  /** Gives the CPU away: a scheduling point after which the default is another task. */
  sched_yield(what?: string): KGen;
}

/** The errors libdrm's drmIoctl() retries on. */
export const RETRY_ERRNOS: readonly number[] = [-ERRNO.EINTR, -ERRNO.EAGAIN];

/**
 * A retry loop for scenario threads, like drmIoctl(): repeats `attempt` while it returns one of
 * `retryOn`, yielding the CPU between attempts, and tells the liveness detector about each try.
 */
export function* retrying(
  hooks: RetryHooks,
  what: string,
  attempt: () => KGen<number>,
  retryOn: readonly number[] = RETRY_ERRNOS,
): KGen<number> {
  for (;;) {
    const r = yield* attempt();
    if (!retryOn.includes(r)) {
      hooks.progress(what);
      return r;
    }
    hooks.retry(what);
    yield* hooks.sched_yield(what);
  }
}
