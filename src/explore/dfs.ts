import { DecisionKind, type DecisionSource } from './decisions.js';
import type { RecordedRun, Strategy } from './strategy.js';

/**
 * Follows a decision prefix, then takes the default (non-preemptive) choice at every later
 * decision. A prefix decision that no longer fits means the scenario is not deterministic.
 */
export class PrefixChooser implements DecisionSource {
  private i = 0;

  constructor(private readonly prefix: readonly number[]) {}

  decide(n: number): number {
    const i = this.i++;
    const d = this.prefix[i] ?? 0;
    if (d >= n) {
      throw new Error(
        `DFS: decision ${i} now has ${n} options, fewer than before: the scenario is not deterministic`,
      );
    }
    return d;
  }
}

/**
 * Exhaustive depth-first search over the decision tree, stateless (every schedule re-runs the
 * scenario from boot), with iterative preemption bounding (CHESS, Musuvathi & Qadeer, PLDI 2007):
 * iteration b runs every schedule with at most b preemptions, b = 0, 1, 2, … A preemption is a
 * task pick that switches away from a task that could have kept running; switching after a task
 * blocked or ended is free, and `pick` values are free.
 *
 * The search is complete when an iteration ends without the bound having cut any branch: then
 * every schedule of the scenario has been run. `distinct` counts each schedule once (iteration b
 * re-runs the schedules of iteration b−1 on its way and counts only those with exactly b).
 */
export class DfsStrategy implements Strategy {
  readonly name: string;
  readonly current: string;
  /** The preemption bound of the current iteration. */
  bound = 0;
  /** Schedules run, and distinct schedules among them. */
  runs = 0;
  distinct = 0;
  private prefix: number[] = [];
  /** The bound cut a branch in this iteration (a larger bound has more to see). */
  private cut = false;
  private done = false;
  private finished = false;

  constructor(readonly maxBound = Number.POSITIVE_INFINITY) {
    if (!(maxBound >= 0)) throw new RangeError(`DFS preemption bound ${maxBound}`);
    this.name = Number.isFinite(maxBound) ? `dfs:${maxBound}` : 'dfs';
    this.current = this.name;
  }

  get exhausted(): boolean {
    return this.done;
  }

  get complete(): boolean {
    return this.finished;
  }

  next(): PrefixChooser | null {
    return this.done ? null : new PrefixChooser(this.prefix);
  }

  observe(run: RecordedRun): void {
    const { decisions: d, counts: c, kinds: k } = run.log;
    this.runs++;
    if (this.bound === 0 || run.preemptions === this.bound) this.distinct++;
    const before: number[] = new Array<number>(d.length);
    let pre = 0;
    for (let i = 0; i < d.length; i++) {
      before[i] = pre;
      if (k[i] === DecisionKind.Preemptible && d[i] !== 0) pre++;
    }
    for (let i = d.length - 1; i >= 0; i--) {
      if (d[i]! + 1 >= c[i]!) continue;
      if (before[i]! + (k[i] === DecisionKind.Preemptible ? 1 : 0) > this.bound) {
        this.cut = true;
        continue;
      }
      this.prefix = d.slice(0, i);
      this.prefix.push(d[i]! + 1);
      return;
    }
    // The iteration is over.
    if (!this.cut) {
      this.done = this.finished = true;
    } else if (this.bound >= this.maxBound) {
      this.done = true;
    } else {
      this.bound++;
      this.cut = false;
      this.prefix = [];
    }
  }

  status(): string {
    const state = this.finished
      ? 'complete'
      : this.done
        ? `bound ${this.bound} exhausted`
        : `bound ${this.bound}`;
    return `${this.name}: ${state}, ${this.distinct} distinct of ${this.runs} schedules`;
  }
}
