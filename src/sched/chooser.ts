import { Prng } from '../base/prng.js';
import type { Task } from './task.js';

/**
 * Policy apart from mechanism: the scheduler asks a Chooser which runnable task runs next. The
 * explorer supplies its own choosers; the machine's default is seeded and deterministic.
 */
export interface Chooser {
  /**
   * Picks one of `runnable` (never empty, ordered by task id). `last` is the task that ran the
   * previous step, if it is still runnable. Returns an index into `runnable`.
   */
  choose(runnable: readonly Task[], last: Task | null, step: number): number;
  /**
   * A nondeterministic choice that is not a task pick (an injected fault, random data): a value
   * in [0, n). Every such choice flows from the same decision stream.
   */
  pick(n: number, what: string): number;
  /**
   * `task` gave the CPU away at the end of the step it just ran (a `sched_yield` point: a
   * busy-wait loop backing off). Optional: a chooser that assumes progress (PCT) moves it aside.
   */
  onYield?(task: Task): void;
}

/**
 * The default chooser: keeps running the current task with probability `stickiness` (a real CPU
 * is not preempted at every instruction), otherwise picks uniformly from the seeded stream.
 */
export class SeededChooser implements Chooser {
  private readonly rng: Prng;
  constructor(
    seed: number | string,
    private readonly stickiness = 0.5,
  ) {
    this.rng = new Prng(seed);
  }
  choose(runnable: readonly Task[], last: Task | null): number {
    if (runnable.length === 1) return 0;
    if (last && this.rng.float() < this.stickiness) {
      const i = runnable.indexOf(last);
      if (i >= 0) return i;
    }
    return this.rng.below(runnable.length);
  }
  pick(n: number): number {
    return this.rng.below(n);
  }
}

/** Runs the lowest-id runnable task: a fixed order handy for tests that script everything. */
export class FirstChooser implements Chooser {
  choose(): number {
    return 0;
  }
  pick(): number {
    return 0;
  }
}

/**
 * A scripted chooser for tests that drive an interleaving by hand: `prefer(name)` runs that task
 * whenever it is runnable; otherwise falls back to the lowest id (or `fallback`).
 */
export class ScriptedChooser implements Chooser {
  private queue: string[] = [];
  constructor(private readonly fallback: Chooser = new FirstChooser()) {}
  /** Run these tasks (by name), one step each, in order, whenever they are runnable. */
  then(...names: string[]): this {
    this.queue.push(...names);
    return this;
  }
  choose(runnable: readonly Task[], last: Task | null, step: number): number {
    while (this.queue.length > 0) {
      const want = this.queue[0]!;
      const i = runnable.findIndex((t) => t.name === want);
      if (i >= 0) {
        this.queue.shift();
        return i;
      }
      break;
    }
    return this.fallback.choose(runnable, last, step);
  }
  pick(n: number, what: string): number {
    return this.fallback.pick(n, what);
  }
}
