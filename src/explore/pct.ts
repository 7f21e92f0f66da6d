import { Prng } from '../base/prng.js';
import type { Chooser } from '../sched/chooser.js';
import type { Task } from '../sched/task.js';
import { type RecordedRun, type Strategy, highest } from './strategy.js';

/**
 * PCT (probabilistic concurrency testing, Burckhardt et al., ASPLOS 2010) with depth d: every
 * task gets a random priority above d when first seen, the highest-priority runnable task runs,
 * and at d−1 random change points the running task drops to priority d−i. A bug of depth d is
 * found with probability at least 1/(n·k^(d−1)) per schedule (n tasks, k steps).
 *
 * Change points are chosen among the run's decisions, k being the most decisions a run of the
 * scenario has taken so far (learned from the first run, which has no change point).
 */
export class PctChooser implements Chooser {
  private readonly prio = new Map<number, number>();
  private decision = 0;
  private changed = 0;
  private yields = 0;

  constructor(
    private readonly rng: Prng,
    private readonly depth: number,
    /** Decision indices at which the running task's priority drops, ascending. */
    private readonly changePoints: readonly number[],
  ) {}

  choose(runnable: readonly Task[]): number {
    const i = this.decision++;
    for (const t of runnable) if (!this.prio.has(t.id)) this.prio.set(t.id, this.depth + this.rng.float());
    let best = highest(runnable, this.prio);
    while (this.changed < this.changePoints.length && this.changePoints[this.changed]! <= i) {
      this.changed++;
      this.prio.set(runnable[best]!.id, this.depth - this.changed);
      best = highest(runnable, this.prio);
    }
    return best;
  }

  /** A task that yields (a busy-wait loop) drops below every other: PCT assumes progress. */
  onYield(task: Task): void {
    this.prio.set(task.id, -++this.yields);
  }

  pick(n: number): number {
    this.decision++;
    return this.rng.below(n);
  }
}

export class PctStrategy implements Strategy {
  readonly name: string;
  readonly exhausted = false;
  readonly complete = false;
  private readonly rng: Prng;
  /** Most decisions seen in a run (PCT's k); 0 before the first run. */
  private k = 0;
  private runs = 0;

  constructor(
    seed: number,
    readonly depth = 3,
  ) {
    if (!Number.isInteger(depth) || depth < 1 || depth > 32)
      throw new RangeError(`PCT depth ${depth}: 1..32`);
    this.name = `pct:${depth}`;
    this.rng = new Prng(seed);
  }

  get current(): string {
    return this.name;
  }

  next(): Chooser {
    this.runs++;
    const rng = this.rng.fork();
    const points: number[] = [];
    if (this.k > 0) for (let i = 1; i < this.depth; i++) points.push(rng.below(this.k));
    points.sort((a, b) => a - b);
    return new PctChooser(rng, this.depth, points);
  }

  observe(run: RecordedRun): void {
    if (run.log.decisions.length > this.k) this.k = run.log.decisions.length;
  }

  status(): string {
    return `${this.name}, k=${this.k}, ${this.runs} schedules`;
  }
}
