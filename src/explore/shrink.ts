import { LockdepGraph } from '../sched/lockdep.js';
import {
  type Anchor,
  DecisionKind,
  type DecisionSource,
  type RunChooser,
  toRelative,
  trimmedLength,
} from './decisions.js';
import { type FindingTarget, ReplayChooser, findTarget, scheduleFor } from './replay.js';
import {
  type ExploreFinding,
  type RunOptions,
  type RunResult,
  type Scenario,
  runOnce,
  scheduleString,
} from './scenario.js';

/**
 * Shrinking: makes a failing schedule as simple as it can while the same finding (kind and
 * message template) still occurs.
 *
 * The schedule is first turned into a *plan*: its non-default decisions, each named by its
 * anchor (the task that ran just before and how many steps it had run, see decisions.ts) and
 * what it chose (a task name, a value). Removing a preemption is removing its entry: that task
 * simply keeps running, and every other planned switch still happens when its own task reaches
 * its own step, so one removal does not scramble the rest of the schedule (as removing a
 * decision by index would). Truncating is dropping the plan's tail: past it, every decision is
 * the default. A preemption may become a free switch at an earlier point, a switch may go to
 * another task, or move a few steps of its task. What each
 * candidate run actually decided becomes the next plan.
 *
 * Order of preference: fewer preemptions, then the finding earlier (fewer steps), then fewer
 * decisions, then fewer non-default decisions.
 *
 * A failure found across runs (a lockdep cycle whose edges came from earlier schedules) is shrunk
 * as a group: the prerequisite runs are replayed first into one lockdep graph, each member is
 * shrunk in turn, and prerequisites that are not needed are dropped.
 */

export interface ShrinkOptions extends RunOptions {
  /** Schedules replayed before the failing one, into the same lockdep graph. */
  prerequisites?: readonly string[];
  /** Replays allowed in all (default 2000). */
  maxRuns?: number;
}

export interface ShrinkFigures {
  preemptions: number;
  /** Step at which the finding occurs. */
  steps: number;
  /** Decisions in the schedule string (trailing defaults dropped). */
  decisions: number;
}

export interface ShrinkResult {
  /** The shrunk failing schedule. */
  schedule: string;
  /** The prerequisites still needed (shrunk too). */
  prerequisites: string[];
  /** The shrunk schedule's run and its finding. */
  run: RunResult;
  finding: ExploreFinding;
  before: ShrinkFigures;
  after: ShrinkFigures;
  /** Runs spent shrinking. */
  runs: number;
  /** "preemptions 7 → 2, steps 412 → 57". */
  summary: string;
}

/** Earlier free switch points tried for a preemption. */
const MAX_FREE_POINTS = 8;
/** Planned switches tried with another target. */
const MAX_RETARGET_PLAN = 16;
/** Plans up to this many switches are tried with one switch removed and another moved. */
const MAX_SHIFT_PLAN = 6;
/** …by up to this many steps of its task, either way. */
const MAX_SHIFT = 16;

/** A schedule as anchored choices: only the non-default decisions, keyed by their anchors. */
type Plan = [key: string, target: string | number][];

/** Follows a plan: at an anchored decision it takes the planned task (or value), else the default. */
export class PlanFollower implements DecisionSource {
  private readonly plan: Map<string, string | number>;

  constructor(plan: readonly (readonly [string, string | number])[]) {
    this.plan = new Map(plan);
  }

  decide(n: number, _kind: DecisionKind, _step: number, at?: Anchor): number {
    const want = at ? this.plan.get(at.key) : undefined;
    if (want === undefined) return 0;
    if (typeof want === 'number') return want % n;
    const i = at!.runnable?.findIndex((t) => t.name === want) ?? -1;
    return i < 0 ? 0 : toRelative(i, at!.def, n);
  }
}

/** The plan of a run: its non-default decisions by anchor, in order. */
function planOf(run: RunResult): Plan {
  const a = run.anchors!;
  const plan: Plan = [];
  run.log.decisions.forEach((d, i) => {
    if (d !== 0) plan.push([a.keys[i]!, a.targets[i]!]);
  });
  return plan;
}

interface Member {
  plan: Plan;
  preemptions: number;
  /** Decisions in the schedule string. */
  length: number;
}

interface Outcome {
  members: Member[];
  runs: RunResult[];
  finding: ExploreFinding;
}

function memberOf(run: RunResult): Member {
  return { plan: planOf(run), preemptions: run.preemptions, length: trimmedLength(run.log.decisions) };
}

function score(o: Outcome, k: number): number[] {
  const m = o.members[k]!;
  return [m.preemptions, o.finding.step, m.length, m.plan.length];
}

function less(a: number[], b: number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
}

/**
 * Shrinks `schedule` (with its prerequisites) keeping `target`. Returns null when the schedule
 * does not show the finding in the first place.
 */
export function shrink(
  scenario: Scenario,
  schedule: string,
  target: FindingTarget,
  opts: ShrinkOptions = {},
): ShrinkResult | null {
  const { prerequisites = [], maxRuns = 2000, ...runOpts } = opts;
  let runs = 0;

  const runGroup = (choosers: RunChooser[]): Outcome | null => {
    if (runs + choosers.length > maxRuns) return null;
    runs += choosers.length;
    const lockdep = choosers.length > 1 ? new LockdepGraph() : undefined;
    const results = choosers.map((c) => {
      // Object.assign, not a spread with more properties: V8's slow path (see runOnce).
      const o: RunOptions = Object.assign({}, runOpts);
      if (lockdep) o.lockdep = lockdep;
      o.sinks = [];
      o.anchors = true;
      return runOnce(scenario, c, o);
    });
    const finding = findTarget(results[results.length - 1]!, target);
    return finding ? { members: results.map(memberOf), runs: results, finding } : null;
  };
  const evaluate = (plans: readonly Plan[]): Outcome | null =>
    runGroup(plans.map((p) => new PlanFollower(p)));

  const first = runGroup(
    [...prerequisites, schedule].map((text) => {
      const s = scheduleFor(scenario, text);
      return new ReplayChooser(s.decisions);
    }),
  );
  if (!first) return null;
  let best: Outcome = first;
  const beforeFig = figures(best);

  const groupWith = (k: number, plan: Plan): Plan[] => best.members.map((m, i) => (i === k ? plan : m.plan));

  /** Tries a candidate plan for member k; keeps it if it scores better. */
  const consider = (k: number, plan: Plan): boolean => {
    const o = evaluate(groupWith(k, plan));
    if (!o || !less(score(o, k), score(best, k))) return false;
    best = o;
    return true;
  };

  /** Drops the tail of the plan: the shortest prefix that still fails (binary search). */
  const truncate = (k: number): boolean => {
    const base = best.members[k]!.plan;
    let lo = 0;
    let hi = base.length;
    let improved = false;
    while (lo < hi && runs < maxRuns) {
      const mid = (lo + hi) >> 1;
      const o = evaluate(groupWith(k, base.slice(0, mid)));
      if (o) {
        hi = mid;
        if (less(score(o, k), score(best, k))) {
          best = o;
          improved = true;
        }
      } else {
        lo = mid + 1;
      }
    }
    return improved;
  };

  /** Removes planned switches in chunks of halving size (delta debugging). */
  const removeSwitches = (k: number): boolean => {
    let improved = false;
    const initial = best.members[k]!.plan.length;
    for (let size = 1 << Math.floor(Math.log2(Math.max(1, initial))); size >= 1; size >>= 1) {
      for (let at = 0; at < best.members[k]!.plan.length && runs < maxRuns;) {
        const plan = best.members[k]!.plan;
        if (consider(k, [...plan.slice(0, at), ...plan.slice(at + size)])) improved = true;
        else at += size;
      }
    }
    return improved;
  };

  /**
   * Turns a preemption into a free switch: the same task chosen instead at an earlier decision
   * where the previous task had blocked, ended or yielded (or at the very first decision).
   */
  const toFreePoint = (k: number): boolean => {
    const run = best.runs[k]!;
    const keys = run.anchors!.keys;
    const kinds = run.log.kinds;
    const plan = best.members[k]!.plan;
    for (let e = 0; e < plan.length; e++) {
      const [key, to] = plan[e]!;
      const i = keys.indexOf(key);
      if (i < 0 || kinds[i] !== DecisionKind.Preemptible || typeof to !== 'string') continue;
      let tried = 0;
      for (let j = i - 1; j >= 0 && tried < MAX_FREE_POINTS; j--) {
        if (kinds[j] !== DecisionKind.Switch) continue;
        tried++;
        if (runs >= maxRuns) return false;
        const cand: Plan = plan.filter((x, y) => y !== e && x[0] !== keys[j]);
        cand.push([keys[j]!, to]);
        if (consider(k, cand)) return true;
      }
    }
    return false;
  };

  /** Switches to another task at a planned switch: the task that matters may be another. */
  const retarget = (k: number): boolean => {
    const names = [...new Set(best.runs[k]!.anchors!.targets.filter((t) => typeof t === 'string'))];
    for (let i = 0; i < best.members[k]!.plan.length && i < MAX_RETARGET_PLAN; i++) {
      const [key, to] = best.members[k]!.plan[i]!;
      if (typeof to !== 'string') continue;
      for (const name of names) {
        if (name === to) continue;
        if (runs >= maxRuns) return false;
        const plan = best.members[k]!.plan;
        if (
          consider(
            k,
            plan.map((e, x) => (x === i ? [key, name] : e)),
          )
        )
          return true;
      }
    }
    return false;
  };

  /**
   * Removes one planned switch while moving another a few steps of its task earlier or later:
   * a schedule with two switches often hides one with a single switch at a slightly different
   * place (the preemption that matters, moved into the window it must hit).
   */
  const removeWithShift = (k: number): boolean => {
    const plan = best.members[k]!.plan;
    if (plan.length < 2 || plan.length > MAX_SHIFT_PLAN) return false;
    for (let j = 0; j < plan.length; j++) {
      for (let i = 0; i < plan.length; i++) {
        const [key, to] = plan[i]!;
        const hash = key.lastIndexOf('#');
        if (i === j || typeof to !== 'string' || hash <= 0) continue;
        const name = key.slice(0, hash);
        const count = Number(key.slice(hash + 1));
        for (let delta = 1; delta <= MAX_SHIFT; delta = delta > 0 ? -delta : 1 - delta) {
          if (count + delta < 1) continue;
          if (runs >= maxRuns) return false;
          const cand: Plan = [];
          plan.forEach((e, x) => {
            if (x === i) cand.push([`${name}#${count + delta}`, to]);
            else if (x !== j) cand.push(e);
          });
          if (consider(k, cand)) return true;
        }
      }
    }
    return false;
  };

  /** Drops prerequisites the finding does not need. */
  const dropPrerequisites = (): boolean => {
    let improved = false;
    for (let i = best.members.length - 2; i >= 0 && runs < maxRuns; i--) {
      const o = evaluate(best.members.filter((_, j) => j !== i).map((m) => m.plan));
      if (o) {
        best = o;
        improved = true;
      }
    }
    return improved;
  };

  for (let round = 0; round < 8 && runs < maxRuns; round++) {
    let changed = dropPrerequisites();
    for (let k = best.members.length - 1; k >= 0; k--) {
      if (truncate(k)) changed = true;
      if (removeSwitches(k)) changed = true;
      if (!changed && toFreePoint(k)) changed = true;
      if (!changed && retarget(k)) changed = true;
      if (!changed && removeWithShift(k)) changed = true;
    }
    if (!changed) break;
  }

  const afterFig = figures(best);
  const strings = best.runs.map((r) => scheduleString(scenario, r));
  return {
    schedule: strings[strings.length - 1]!,
    prerequisites: strings.slice(0, -1),
    run: best.runs[best.runs.length - 1]!,
    finding: best.finding,
    before: beforeFig,
    after: afterFig,
    runs,
    summary: shrinkSummary(beforeFig, afterFig),
  };
}

function figures(o: Outcome): ShrinkFigures {
  const m = o.members[o.members.length - 1]!;
  return { preemptions: m.preemptions, steps: o.finding.step, decisions: m.length };
}

/** "preemptions 7 → 2, steps 412 → 57". */
export function shrinkSummary(before: ShrinkFigures, after: ShrinkFigures): string {
  return `preemptions ${before.preemptions} → ${after.preemptions}, steps ${before.steps} → ${after.steps}`;
}
