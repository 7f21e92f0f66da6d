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

/**
 * A strategy whose every schedule is a fresh chooser over its own forked stream of the one seed
 * (random walk, POS): no state carries from one schedule to the next.
 */
export class ForkedStreamStrategy implements Strategy {
  readonly current: string;
  readonly exhausted = false;
  readonly complete = false;
  private readonly rng: Prng;
  private runs = 0;

  constructor(
    readonly name: string,
    seed: number,
    private readonly make: (rng: Prng) => Chooser,
  ) {
    this.current = name;
    this.rng = new Prng(seed);
  }

  next(): Chooser {
    this.runs++;
    return this.make(this.rng.fork());
  }

  observe(): void {}

  status(): string {
    return `${this.name}, ${this.runs} schedules`;
  }
}

/** Seeded random walk: every schedule draws each decision uniformly from its own stream. */
export class RandomStrategy extends ForkedStreamStrategy {
  constructor(seed: number) {
    super('random', seed, (rng) => new RandomChooser(rng));
  }
}
