import { Prng } from '../base/prng.js';
import type { Chooser } from '../sched/chooser.js';
import type { Task } from '../sched/task.js';
import type { Strategy } from './strategy.js';

/** Uniform over the runnable tasks at every decision; uniform `pick`s. */
export class RandomChooser implements Chooser {
  constructor(private readonly rng: Prng) {}
  choose(runnable: readonly Task[]): number {
    return this.rng.below(runnable.length);
  }
  pick(n: number): number {
    return this.rng.below(n);
  }
}

/** Seeded random walk: every schedule draws each decision uniformly from its own stream. */
export class RandomStrategy implements Strategy {
  readonly name = 'random';
  readonly current = 'random';
  readonly exhausted = false;
  readonly complete = false;
  private readonly rng: Prng;
  private runs = 0;

  constructor(seed: number) {
    this.rng = new Prng(seed);
  }

  next(): Chooser {
    this.runs++;
    return new RandomChooser(this.rng.fork());
  }

  observe(): void {}

  status(): string {
    return `random, ${this.runs} schedules`;
  }
}
