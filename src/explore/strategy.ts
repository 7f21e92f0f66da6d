import type { Task } from '../sched/task.js';
import type { DecisionLog, RunChooser } from './decisions.js';

/**
 * A search strategy: a factory of choosers, one per schedule. A chooser is fed by the strategy's
 * own seeded stream (or, for DFS, is a `DecisionSource` following the decision prefix it is
 * exploring); the explorer wraps it
 * in a recorder, so every decision it takes — task picks and `pick(n)` values — lands in the
 * run's one decision stream, whatever the strategy.
 *
 * The strategy only sees tasks as ids in a runnable list: it knows nothing of what they do.
 */
export interface Strategy {
  /** "random", "pct:3", "pos", "dfs", "portfolio". */
  readonly name: string;
  /** The chooser for the next schedule; null when the strategy has no schedule left. */
  next(): RunChooser | null;
  /** The strategy that made the last chooser (a portfolio names its member). */
  readonly current: string;
  /** The run the last chooser produced: PCT learns its length, DFS backtracks from it. */
  observe(run: RecordedRun): void;
  /** No schedule left (an exhaustive search ended). */
  readonly exhausted: boolean;
  /** Exhausted, and every schedule of the scenario was run: the search was complete. */
  readonly complete: boolean;
  /** One line about the search so far ("bound 2, 140 schedules"). */
  status(): string;
}

/** What a strategy learns from a run. */
export interface RecordedRun {
  log: DecisionLog;
  preemptions: number;
  steps: number;
}

/** Index of the runnable task with the highest priority (ties: lowest id). */
export function highest(runnable: readonly Task[], prio: Map<number, number>): number {
  let best = 0;
  let bp = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < runnable.length; i++) {
    const p = prio.get(runnable[i]!.id)!;
    if (p > bp) {
      bp = p;
      best = i;
    }
  }
  return best;
}
