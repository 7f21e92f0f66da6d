import type { Chooser } from '../sched/chooser.js';
import type { Task } from '../sched/task.js';

/**
 * The decision stream of one run. Every nondeterministic choice with more than one option — a
 * task pick (`Chooser.choose` with two or more runnable tasks) or a `Chooser.pick(n)` with n ≥ 2 —
 * is one decision. Choices with a single option are not decisions and are not recorded.
 *
 * Decisions are stored *relative to the default*: 0 means "what a non-preemptive scheduler would
 * do" (keep running the previous task if it is still runnable; after it blocked or ended, the
 * lowest task id; after it yielded the CPU, the next task in id order; for a `pick`, the value
 * 0), and d > 0 means "the d-th task after the default, in id order, wrapping".
 * So a schedule with few preemptions is mostly zeros, removing a preemption is setting a decision
 * to 0, and a schedule may be truncated: past its end every decision is 0.
 */

/** What a decision chose between. */
export const DecisionKind = {
  /** `pick(n, what)`: a fault, a value; never a preemption. */
  Pick: 0,
  /** A task pick after the previous task blocked or ended: switching is free. */
  Switch: 1,
  /** A task pick while the previous task is still runnable: d ≠ 0 is a preemption. */
  Preemptible: 2,
} as const;
export type DecisionKind = (typeof DecisionKind)[keyof typeof DecisionKind];

/** The recorded decisions of a run, index by index. */
export interface DecisionLog {
  /** The chosen option, relative to the default (see above). */
  readonly decisions: number[];
  /** How many options there were (runnable tasks, or `n` of a pick). */
  readonly counts: number[];
  /** `DecisionKind` of each decision. */
  readonly kinds: DecisionKind[];
  /** Scheduler step at which each decision was taken (for picks: the step in progress). */
  readonly steps: number[];
}

export function emptyLog(): DecisionLog {
  return { decisions: [], counts: [], kinds: [], steps: [] };
}

/** A raw index into `runnable` as a decision relative to the default `def`. */
export function toRelative(raw: number, def: number, n: number): number {
  const d = raw - def;
  return d < 0 ? d + n : d;
}

/** A relative decision (< n) as a raw index. */
export function fromRelative(d: number, def: number, n: number): number {
  const r = def + d;
  return r >= n ? r - n : r;
}

/** Preemptions in a log: task picks that switched away from a still-runnable task. */
export function countPreemptions(log: Pick<DecisionLog, 'decisions' | 'kinds'>): number {
  let n = 0;
  for (let i = 0; i < log.decisions.length; i++) {
    if (log.kinds[i] === DecisionKind.Preemptible && log.decisions[i] !== 0) n++;
  }
  return n;
}

/** Length of the decision list once trailing defaults (zeros) are dropped. */
export function trimmedLength(decisions: readonly number[]): number {
  let n = decisions.length;
  while (n > 0 && decisions[n - 1] === 0) n--;
  return n;
}

/** Thrown by the recorder when a run passes its step limit; `runOnce` turns it into a finding. */
export class StepLimitError extends Error {
  constructor(readonly limit: number) {
    super(`step limit ${limit} reached`);
    this.name = 'StepLimitError';
  }
}

/**
 * A source of relative decisions (DFS's prefix, a replay): says which option to take counting
 * from the default, so it needs no notion of tasks at all.
 */
export interface DecisionSource {
  /**
   * The decision among `n` options, relative to the default (0 = the default). `at` describes
   * the decision in terms of tasks when the recorder keeps anchors; `runnable` lists the tasks
   * of a task pick (in id order), always.
   */
  decide(n: number, kind: DecisionKind, step: number, at?: Anchor, runnable?: readonly Task[]): number;
}

/**
 * A decision named by what happened before it rather than by its index: `key` is the task that
 * ran the previous step and how many steps it had run ("pid100/a#7"; a pick adds "#pick0", …).
 * Keys survive changes elsewhere in the schedule, which is what shrinking needs.
 */
export interface Anchor {
  key: string;
  /** The runnable tasks (null for a pick). */
  runnable: readonly Task[] | null;
  /** Index of the default choice in `runnable`. */
  def: number;
}

/** The anchors of a run's decisions, index by index: key and what was chosen (task name or value). */
export interface AnchorLog {
  keys: string[];
  targets: (string | number)[];
}

/** What a strategy hands the explorer for one schedule. */
export type RunChooser = Chooser | DecisionSource;

function isSource(c: RunChooser): c is DecisionSource {
  return typeof (c as Partial<DecisionSource>).decide === 'function';
}

/**
 * Wraps the chooser a strategy supplies: records every decision it takes, counts preemptions,
 * and stops a run that passes `limit` steps (the liveness bound, which must also hold while the
 * machine shuts down).
 *
 * A task that yields the CPU (a `sched_yield` point: `RunContext.sched_yield`, the sync facade's
 * drmIoctl backing off, any retry loop) changes the
 * default of the next decision: the next task in id order, not the yielder, and switching is
 * then free. A busy-waiting client therefore lets the others run under the default schedule.
 */
export class Recorder implements Chooser {
  readonly log: DecisionLog = emptyLog();
  preemptions = 0;
  /** The run stops with a `StepLimitError` when the scheduler reaches this step. */
  limit = Number.POSITIVE_INFINITY;
  /** Scheduler step last seen (picks are stamped with it). */
  private step = 0;
  /** The task that yielded the CPU at the end of the current step. */
  private yielder: Task | null = null;
  /** Anchors of every decision, when kept (shrinking). */
  readonly anchors: AnchorLog | null;
  /** Steps run by each task id, and the task that ran the last step (for anchors). */
  private readonly taskSteps: number[] = [];
  private prev: Task | null = null;
  private picks = 0;

  constructor(
    readonly inner: RunChooser,
    keepAnchors = false,
  ) {
    this.anchors = keepAnchors ? { keys: [], targets: [] } : null;
  }

  private ran(t: Task): void {
    this.taskSteps[t.id] = (this.taskSteps[t.id] ?? 0) + 1;
    this.prev = t;
    this.picks = 0;
  }

  private anchorKey(): string {
    const p = this.prev;
    return p ? `${p.name}#${this.taskSteps[p.id]!}` : '#0';
  }

  /** `task` gave the CPU away at the end of its step (the scheduler saw a sched_yield point). */
  onYield(task: Task): void {
    this.yielder = task;
    const inner = this.inner;
    if (!isSource(inner)) inner.onYield?.(task);
  }

  choose(runnable: readonly Task[], last: Task | null, step: number): number {
    if (step >= this.limit) throw new StepLimitError(this.limit);
    this.step = step;
    const yielded = last !== null && last === this.yielder;
    this.yielder = null;
    const n = runnable.length;
    if (n === 1) {
      if (this.anchors) this.ran(runnable[0]!);
      return 0;
    }
    let def = 0;
    let kind: DecisionKind = DecisionKind.Switch;
    if (last) {
      const i = runnable.indexOf(last);
      if (yielded) {
        def = i + 1 === n ? 0 : i + 1;
      } else {
        def = i;
        kind = DecisionKind.Preemptible;
      }
    }
    const inner = this.inner;
    let raw: number;
    let d: number;
    const anchors = this.anchors;
    const at: Anchor | undefined = anchors ? { key: this.anchorKey(), runnable, def } : undefined;
    if (isSource(inner)) {
      d = inner.decide(n, kind, step, at, runnable);
      if (!Number.isInteger(d) || d < 0 || d >= n) throw new RangeError(`decision ${d} of ${n} options`);
      raw = fromRelative(d, def, n);
    } else {
      raw = inner.choose(runnable, last, step);
      if (!Number.isInteger(raw) || raw < 0 || raw >= n) {
        throw new RangeError(`chooser returned ${raw} for ${n} runnable tasks`);
      }
      d = toRelative(raw, def, n);
    }
    const log = this.log;
    log.decisions.push(d);
    log.counts.push(n);
    log.kinds.push(kind);
    log.steps.push(step);
    if (kind === DecisionKind.Preemptible && d !== 0) this.preemptions++;
    if (anchors) {
      const t = runnable[raw]!;
      anchors.keys.push(at!.key);
      anchors.targets.push(t.name);
      this.ran(t);
    }
    return raw;
  }

  pick(n: number, what: string): number {
    if (!Number.isInteger(n) || n < 1)
      throw new RangeError(`pick(${n}, ${what}): n must be a positive integer`);
    if (n === 1) return 0;
    const inner = this.inner;
    const anchors = this.anchors;
    const at: Anchor | undefined = anchors
      ? { key: `${this.anchorKey()}#pick${this.picks++}`, runnable: null, def: 0 }
      : undefined;
    const v = isSource(inner) ? inner.decide(n, DecisionKind.Pick, this.step, at) : inner.pick(n, what);
    if (!Number.isInteger(v) || v < 0 || v >= n)
      throw new RangeError(`chooser picked ${v} of ${n} (${what})`);
    const log = this.log;
    log.decisions.push(v);
    log.counts.push(n);
    log.kinds.push(DecisionKind.Pick);
    log.steps.push(this.step);
    if (anchors) {
      anchors.keys.push(at!.key);
      anchors.targets.push(v);
    }
    return v;
  }
}
