import { Prng } from '../base/prng.js';
import type { Chooser } from '../sched/chooser.js';
import type { Task } from '../sched/task.js';
import { ForkedStreamStrategy } from './random.js';
import { highest } from './strategy.js';

/**
 * POS (partial order sampling, Yuan et al., CAV 2018), in its basic form: every task holds a
 * random priority, the highest-priority runnable task runs, and a task's priority is drawn again
 * after it ran (its next step is a new event). Unlike a uniform random walk, a task tends to run
 * several steps in a row and then yield for a while, which samples interleavings of the tasks'
 * steps far more evenly.
 */
export class PosChooser implements Chooser {
  private readonly prio = new Map<number, number>();
  private ran = -1;

  constructor(private readonly rng: Prng) {}

  choose(runnable: readonly Task[]): number {
    if (this.ran >= 0) this.prio.set(this.ran, this.rng.float());
    for (const t of runnable) if (!this.prio.has(t.id)) this.prio.set(t.id, this.rng.float());
    const best = highest(runnable, this.prio);
    this.ran = runnable[best]!.id;
    return best;
  }

  /** A task that yields gets a priority below every fresh one (it is redrawn once it runs). */
  onYield(task: Task): void {
    this.prio.set(task.id, this.rng.float() - 1);
    if (this.ran === task.id) this.ran = -1;
  }

  pick(n: number): number {
    return this.rng.below(n);
  }
}

export class PosStrategy extends ForkedStreamStrategy {
  constructor(seed: number) {
    super('pos', seed, (rng) => new PosChooser(rng));
  }
}
