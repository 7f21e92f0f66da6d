import { LockdepGraph } from '../sched/lockdep.js';
import type { DecisionSource } from './decisions.js';
import {
  type Divergence,
  type ExploreFinding,
  type RunOptions,
  type RunResult,
  type Scenario,
  configHash,
  findingTemplate,
  runOnce,
} from './scenario.js';
import { type Schedule, decodeSchedule } from './schedule.js';

/**
 * Follows a recorded decision stream. With `counts` it also checks that the code still offers
 * the recorded number of options at every decision and remembers the first place it does not
 * (the code changed since the schedule was recorded); it then carries on with the recorded
 * choices taken modulo the options, so the run still ends. Past the end of the stream every
 * decision is the default (0).
 */
export class ReplayChooser implements DecisionSource {
  /** Decisions taken so far. */
  consumed = 0;
  private divergence: Divergence | null = null;
  private step = 0;

  constructor(
    readonly decisions: readonly number[],
    readonly counts: readonly number[] | null = null,
  ) {}

  decide(n: number, _kind: unknown, step: number): number {
    this.step = step;
    const i = this.consumed++;
    if (i >= this.decisions.length) return 0;
    const expected = this.counts?.[i];
    if (expected !== undefined && expected !== n && !this.divergence) {
      this.divergence = {
        index: i,
        step: this.step,
        expected,
        runnable: n,
        message: `diverged at decision ${i} (step ${this.step}): the schedule recorded ${expected} options, the code offers ${n}`,
      };
    }
    return this.decisions[i]! % n;
  }

  /** The first divergence, including a run that ended before the stream did. */
  finish(): Divergence | null {
    if (!this.divergence && this.counts && this.consumed < this.decisions.length) {
      const i = this.consumed;
      this.divergence = {
        index: i,
        step: this.step,
        expected: this.counts[i]!,
        runnable: 0,
        message: `diverged at decision ${i}: the run ended after ${i} of ${this.decisions.length} recorded decisions`,
      };
    }
    return this.divergence;
  }
}

/** A schedule that belongs to another scenario or configuration. */
export class ScheduleMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScheduleMismatchError';
  }
}

/** Decodes `schedule` and checks it was recorded for `scenario` as configured now. */
export function scheduleFor(scenario: Scenario, schedule: string): Schedule {
  const s = decodeSchedule(schedule);
  if (s.scenario !== scenario.name) {
    throw new ScheduleMismatchError(`the schedule is for scenario '${s.scenario}', not '${scenario.name}'`);
  }
  const h = configHash(scenario);
  if (s.configHash !== h) {
    throw new ScheduleMismatchError(
      `the schedule was recorded with config ${s.configHash}, but '${scenario.name}' is now configured as ${h} ` +
        `(different bug switches or machine options)`,
    );
  }
  return s;
}

export interface ReplayOptions extends RunOptions {
  /**
   * Schedules replayed first, in order, into the same lockdep graph: the runs that laid down
   * the other edges of a lockdep cycle found across runs.
   */
  prerequisites?: readonly string[];
}

/**
 * Replays a schedule string (after its prerequisites). The result's `diverged` is the first
 * place where the code no longer matches the schedule, or null.
 */
export function replay(scenario: Scenario, schedule: string, opts: ReplayOptions = {}): RunResult {
  const { prerequisites = [], ...run } = opts;
  const lockdep = run.lockdep ?? (prerequisites.length ? new LockdepGraph() : undefined);
  // Object.assign, not spreads that gain properties: V8's slow path (see runOnce).
  const base: RunOptions = Object.assign({}, run);
  if (lockdep) base.lockdep = lockdep;
  for (const pre of prerequisites) {
    const s = scheduleFor(scenario, pre);
    const o: RunOptions = Object.assign({}, base);
    o.runLabel = pre;
    o.sinks = [];
    runOnce(scenario, new ReplayChooser(s.decisions, s.counts), o);
  }
  const s = scheduleFor(scenario, schedule);
  const chooser = new ReplayChooser(s.decisions, s.counts);
  const o: RunOptions = Object.assign({}, base);
  o.runLabel = schedule;
  const result = runOnce(scenario, chooser, o);
  result.diverged = chooser.finish();
  return result;
}

/** What a finding is, for "the same finding": its kind and message template. */
export interface FindingTarget {
  kind: string;
  template: string;
}

export function targetOf(f: ExploreFinding): FindingTarget {
  return { kind: f.kind, template: findingTemplate(f) };
}

/** The first finding of a run that is `target`. */
export function findTarget(run: RunResult, target: FindingTarget): ExploreFinding | undefined {
  return run.findings.find((f) => f.kind === target.kind && findingTemplate(f) === target.template);
}

/** Everything observable about a run, as one string (two replays must agree on it). */
export function fingerprint(run: RunResult): string {
  const fs = run.findings.map((f) => `${f.kind}|${f.message}|${f.task}|${f.step}|${f.detail ?? ''}`);
  return [`steps ${run.steps}`, `decisions ${run.decisions.join(',')}`, ...fs].join('\n');
}

export interface ReplayCheck {
  /** Both replays showed the finding. */
  reproduced: boolean;
  /** Both replays were identical (findings, steps, decisions). */
  deterministic: boolean;
  /** The first replay did not follow its schedule. */
  diverged: Divergence | null;
  /** The first replay. */
  run: RunResult;
  /** Why the check failed, when it did. */
  problem?: string;
}

/** Replays twice and checks both runs show `target` and are identical: the failure is real. */
export function replayTwice(
  scenario: Scenario,
  schedule: string,
  target: FindingTarget,
  opts: ReplayOptions = {},
): ReplayCheck {
  const a = replay(scenario, schedule, opts);
  const b = replay(scenario, schedule, opts);
  const reproduced = findTarget(a, target) !== undefined && findTarget(b, target) !== undefined;
  const deterministic = fingerprint(a) === fingerprint(b);
  const check: ReplayCheck = { reproduced, deterministic, diverged: a.diverged ?? null, run: a };
  if (!deterministic)
    check.problem = 'two replays of the same schedule differ: the scenario is not deterministic';
  else if (!reproduced) check.problem = `the replay does not show ${target.template}`;
  return check;
}
