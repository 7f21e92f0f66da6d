import '../oracle/index.js';
import { ExplorationLockdep } from './lockdep_runs.js';
import { type ReplayCheck, replayTwice, targetOf } from './replay.js';
import {
  type ExploreFinding,
  type RunResult,
  type Scenario,
  findingTemplate,
  runOnce,
  scheduleString,
} from './scenario.js';
import { replayCommand } from './schedule.js';
import { type ShrinkResult, shrink } from './shrink.js';
import { makeStrategy } from './strategies.js';
import type { Strategy } from './strategy.js';

/**
 * The explorer: runs a scenario under one schedule after another, as a strategy chooses them,
 * until a run has a finding or the budget is spent. Every run boots a fresh machine (stateless
 * model checking); only the lockdep graph lives across runs. A failure is written down as a
 * schedule string, replayed twice to prove it deterministic, and shrunk.
 *
 * No timers: a time budget needs `now()` (milliseconds; the CLI passes `performance.now`).
 */

export interface ExploreOptions {
  /** A strategy name (`random`, `pct:3`, `pos`, `dfs`, `portfolio`, …) or a strategy. Default: portfolio. */
  strategy?: string | Strategy;
  /** Seed of the strategy's stream (default 1). */
  seed?: number;
  /** Budget: schedules to run. Default 1000 unless `seconds` is given. */
  schedules?: number;
  /** Budget: seconds of exploration (needs `now`). */
  seconds?: number;
  /** Milliseconds from some origin: the time budget and schedules/s come from it. */
  now?: () => number;
  /** Called every `progressEvery` schedules and once at the end. */
  onProgress?: (p: ExploreProgress) => void;
  progressEvery?: number;
  /** Called after every run (`scheduleString(scenario, run)` writes it down). */
  onRun?: (run: RunResult, index: number, strategy: string) => void;
  /** Overrides the scenario's step bound and livelock threshold. */
  maxSteps?: number;
  livelockRetries?: number;
  /** Which findings stop the exploration (default: every finding). */
  failOn?: (f: ExploreFinding) => boolean;
  /** Shrink the failure (default true); `maxRuns` bounds the replays spent on it. */
  shrink?: boolean | { maxRuns: number };
  /** Asked before every schedule: true ends the exploration there (another job found a bug). */
  shouldStop?: () => boolean;
}

export interface ExploreProgress {
  schedules: number;
  elapsedMs?: number;
  schedulesPerSecond?: number;
  goalsReached: number;
  goalsTotal: number;
  /** 1 once a failure was found. */
  failures: number;
  lockdepEdges: number;
  /** The strategy's own status line. */
  status: string;
  done: boolean;
}

export interface GoalCoverage {
  name: string;
  description?: string;
  reached: boolean;
  /** Runs that reached it. */
  runs: number;
  /** The first schedule that reached it. */
  firstSchedule?: string;
}

export interface ExploreStats {
  schedules: number;
  /** Exploration time (the failure's replays and shrinking not included). */
  elapsedMs?: number;
  schedulesPerSecond?: number;
  /** Scheduler steps over all runs. */
  steps: number;
  /** Schedules run by each strategy (a portfolio's members). */
  perStrategy: Record<string, number>;
  lockdepEdges: number;
  /** The strategy's status line at the end. */
  strategy: string;
}

export interface Failure {
  /** The finding as the exploration saw it, and its template ("the same finding"). */
  finding: ExploreFinding;
  template: string;
  /** The schedule to replay (shrunk, when shrinking succeeded). */
  schedule: string;
  /** Schedules to replay first into the same lockdep graph (an inversion seen across runs). */
  prerequisites: string[];
  /** `userptr replay '<prerequisites>…' '<schedule>'`. */
  replayCommand: string;
  /** How it was found. */
  found: { schedule: string; prerequisites: string[]; index: number; strategy: string };
  /** Replayed twice, before and after shrinking: both times identical and showing the finding. */
  replay: { reproduced: boolean; deterministic: boolean; problem?: string };
  shrink: ShrinkResult | null;
  /** The final schedule's replay (for reports: findings, steps, decisions). */
  run: RunResult;
}

export interface ExploreResult {
  scenario: string;
  failure: Failure | null;
  /** The strategy had no schedule left. */
  exhausted: boolean;
  /** …because every schedule of the scenario was run (exhaustive search, no finding). */
  complete: boolean;
  /** Ended early because `shouldStop` said so. */
  stopped: boolean;
  coverage: GoalCoverage[];
  stats: ExploreStats;
}

/** Schedules run when no budget is given. */
export const DEFAULT_SCHEDULES = 1000;

export function explore(scenario: Scenario, opts: ExploreOptions = {}): ExploreResult {
  const seed = opts.seed ?? 1;
  if (!Number.isInteger(seed) || seed < 0)
    throw new RangeError(`seed must be a non-negative integer, got ${seed}`);
  if (opts.schedules !== undefined && !(Number.isInteger(opts.schedules) && opts.schedules > 0)) {
    throw new RangeError(`schedules must be a positive integer, got ${opts.schedules}`);
  }
  if (opts.seconds !== undefined) {
    if (!(opts.seconds > 0)) throw new RangeError(`seconds must be positive, got ${opts.seconds}`);
    if (!opts.now) throw new RangeError('a time budget needs a clock: pass now()');
  }
  const strategy =
    typeof opts.strategy === 'object' ? opts.strategy : makeStrategy(opts.strategy ?? 'portfolio', seed);
  const limit = opts.schedules ?? (opts.seconds === undefined ? DEFAULT_SCHEDULES : Number.POSITIVE_INFINITY);
  const budgetMs = opts.seconds === undefined ? Number.POSITIVE_INFINITY : opts.seconds * 1000;
  const now = opts.now;
  const t0 = now?.() ?? 0;
  const failOn = opts.failOn ?? (() => true);
  const progressEvery = Math.max(1, opts.progressEvery ?? 100);
  const runOpts = {
    ...(opts.maxSteps !== undefined ? { maxSteps: opts.maxSteps } : {}),
    ...(opts.livelockRetries !== undefined ? { livelockRetries: opts.livelockRetries } : {}),
  };

  const graph = new ExplorationLockdep();
  const coverage: GoalCoverage[] = (scenario.goals ?? []).map((g) => ({
    name: g.name,
    ...(g.description !== undefined ? { description: g.description } : {}),
    reached: false,
    runs: 0,
  }));
  const byName = new Map(coverage.map((c) => [c.name, c]));
  const perStrategy: Record<string, number> = {};
  let schedules = 0;
  let steps = 0;
  let exhausted = false;
  let stopped = false;
  let found: {
    run: RunResult;
    finding: ExploreFinding;
    schedule: string;
    prerequisites: string[];
    by: string;
  } | null = null;

  const progress = (done: boolean, elapsedMs?: number): void => {
    if (!opts.onProgress) return;
    const p: ExploreProgress = {
      schedules,
      goalsReached: coverage.filter((c) => c.reached).length,
      goalsTotal: coverage.length,
      failures: found ? 1 : 0,
      lockdepEdges: graph.edgeCount,
      status: strategy.status(),
      done,
    };
    if (elapsedMs !== undefined) {
      p.elapsedMs = elapsedMs;
      if (elapsedMs > 0) p.schedulesPerSecond = (schedules * 1000) / elapsedMs;
    }
    opts.onProgress(p);
  };

  while (schedules < limit) {
    if (now && now() - t0 >= budgetMs) break;
    if (opts.shouldStop?.()) {
      stopped = true;
      break;
    }
    const chooser = strategy.next();
    if (!chooser) {
      exhausted = true;
      break;
    }
    const by = strategy.current;
    const token = `(run ${schedules + 1})`;
    // Object.assign, not a spread with more properties: V8's slow path (see runOnce).
    const run = runOnce(scenario, chooser, Object.assign({ lockdep: graph, runLabel: token }, runOpts));
    schedules++;
    steps += run.steps;
    perStrategy[by] = (perStrategy[by] ?? 0) + 1;
    strategy.observe(run);

    let label: string | null = null;
    const str = (): string => (label ??= scheduleString(scenario, run));
    const cycles = graph.addedEdges ? graph.endRun(str()) : [];
    if (cycles.length > 0) {
      for (const f of run.findings) {
        f.message = f.message.replaceAll(token, str());
        if (f.detail !== undefined) f.detail = f.detail.replaceAll(token, str());
      }
    }
    for (const name of run.goalsReached) {
      const c = byName.get(name);
      if (!c) continue;
      c.runs++;
      if (!c.reached) {
        c.reached = true;
        c.firstSchedule = str();
      }
    }
    opts.onRun?.(run, schedules, by);

    const bad = run.findings.find(failOn);
    if (bad) {
      const prerequisites =
        bad.kind === 'lockdep' ? (cycles.find((c) => c.message === bad.message)?.runs ?? []) : [];
      found = { run, finding: bad, schedule: str(), prerequisites, by };
      break;
    }
    if (schedules % progressEvery === 0) progress(false, now ? now() - t0 : undefined);
    if (strategy.exhausted) {
      exhausted = true;
      break;
    }
  }
  const elapsedMs = now ? now() - t0 : undefined;

  const failure = found ? investigate(scenario, found, schedules, runOpts, opts.shrink ?? true) : null;
  const stats: ExploreStats = {
    schedules,
    steps,
    perStrategy,
    lockdepEdges: graph.edgeCount,
    strategy: strategy.status(),
  };
  if (elapsedMs !== undefined) {
    stats.elapsedMs = elapsedMs;
    if (elapsedMs > 0) stats.schedulesPerSecond = (schedules * 1000) / elapsedMs;
  }
  progress(true, elapsedMs);
  return {
    scenario: scenario.name,
    failure,
    exhausted,
    complete: exhausted && strategy.complete && !failure,
    stopped,
    coverage,
    stats,
  };
}

/** Replays the failure twice, shrinks it, and replays the shrunk schedule twice. */
function investigate(
  scenario: Scenario,
  found: { finding: ExploreFinding; schedule: string; prerequisites: string[]; by: string },
  index: number,
  runOpts: { maxSteps?: number; livelockRetries?: number },
  shrinkOpt: boolean | { maxRuns: number },
): Failure {
  const target = targetOf(found.finding);
  const first = replayTwice(scenario, found.schedule, target, {
    ...runOpts,
    prerequisites: found.prerequisites,
  });
  let schedule = found.schedule;
  let prerequisites = found.prerequisites;
  let shrunk: ShrinkResult | null = null;
  let last: ReplayCheck = first;
  if (shrinkOpt !== false && first.reproduced && first.deterministic) {
    shrunk = shrink(scenario, found.schedule, target, {
      ...runOpts,
      prerequisites: found.prerequisites,
      ...(typeof shrinkOpt === 'object' ? { maxRuns: shrinkOpt.maxRuns } : {}),
    });
    if (shrunk) {
      const again = replayTwice(scenario, shrunk.schedule, target, {
        ...runOpts,
        prerequisites: shrunk.prerequisites,
      });
      if (again.reproduced && again.deterministic) {
        schedule = shrunk.schedule;
        prerequisites = shrunk.prerequisites;
        last = again;
      } else {
        shrunk = null;
      }
    }
  }
  const replay: Failure['replay'] = { reproduced: first.reproduced, deterministic: first.deterministic };
  const problem = first.problem ?? first.diverged?.message;
  if (problem !== undefined) replay.problem = problem;
  return {
    finding: found.finding,
    template: findingTemplate(found.finding),
    schedule,
    prerequisites,
    replayCommand: replayCommand([...prerequisites, schedule]),
    found: { schedule: found.schedule, prerequisites: found.prerequisites, index, strategy: found.by },
    replay,
    shrink: shrunk,
    run: last.run,
  };
}
