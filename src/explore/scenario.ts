import { Bugs } from '../base/bugs.js';
import type { Finding, FindingKind } from '../base/findings.js';
import { hashString } from '../base/prng.js';
import { KernelBugError } from '../kernel/errors.js';
import { Machine, type MachineConfig } from '../kernel/machine.js';
import { FirstChooser } from '../sched/chooser.js';
import type { LockdepGraph } from '../sched/lockdep.js';
import type { KGen } from '../sched/task.js';
import { MemorySink, type TraceEvent, type TraceSink } from '../trace/events.js';
import { type AnchorLog, type DecisionLog, Recorder, type RunChooser, StepLimitError } from './decisions.js';
import { Liveness, type RetryHooks } from './liveness.js';
import { type Schedule, encodeSchedule } from './schedule.js';

/**
 * What the explorer runs: a concurrent program over a freshly booted machine. The explorer
 * knows nothing of what the program does; it boots a machine with the scenario's config and its
 * own chooser, lets `run` start the threads, drives the machine to the end, shuts it down and
 * reads the findings.
 */
export interface Scenario {
  /** Identifies the scenario in schedule strings: letters, digits, `.`, `_`, `-`, `/`. */
  name: string;
  description: string;
  /** Machine options and bug switches (part of the schedule's config hash). */
  config: ScenarioConfig;
  /**
   * Sets the program up and starts its threads (`p.thread(...)`, `m.sched.spawn(...)`), then
   * returns; the explorer drives the machine. Setup may use the sync facade (`p.open(...)`):
   * its interleavings are decisions like any other.
   */
  run(m: Machine, ctx: RunContext): void;
  /** The interleavings the scenario is meant to reach; the explorer reports which it did. */
  goals?: CoverageGoal[];
  /** Liveness bound: a run taking more steps than this is a 'step-bound' finding. */
  maxSteps?: number;
  /** Quiet retries in a row that make a livelock (see liveness.ts). */
  livelockRetries?: number;
}

/** The machine options a scenario may set (the explorer owns the chooser and lockdep). */
export type ScenarioConfig = Omit<MachineConfig, 'chooser' | 'lockdep' | 'runLabel'>;

/**
 * An interleaving a scenario means to reach. It is reached in a run when a thread marked its
 * name (`ctx.mark(name)`) or when `reached` holds, evaluated once the run has ended.
 */
export interface CoverageGoal {
  name: string;
  description?: string;
  reached?(m: Machine, run: RunInfo): boolean;
  /** The predicate reads `run.events`: record the trace of every run (slower). */
  trace?: boolean;
}

/** What a goal's predicate may read about the run that just ended. */
export interface RunInfo {
  /** Flags the scenario's threads marked. */
  flags: ReadonlySet<string>;
  findings: readonly ExploreFinding[];
  steps: number;
  /** Every trace event, when a goal asked for them. */
  events?: readonly TraceEvent[];
}

/** What a scenario's threads can tell the explorer, and the run's own nondeterminism. */
export interface RunContext extends RetryHooks {
  readonly machine: Machine;
  /** Marks a fact of this run (a coverage goal's name). */
  mark(flag: string): void;
  has(flag: string): boolean;
  /** A nondeterministic value in [0, n) from the run's decision stream (an injected fault). */
  pick(n: number, what: string): number;
  /** A client's attempt failed and it will retry (-EAGAIN): feeds the livelock detector. */
  retry(what: string): void;
  /** A client's attempt succeeded: ends its retry streak. */
  progress(what?: string): void;
  /**
   * `sched_yield()`: a scheduling point after which the running task lets the others go first
   * (the default decision moves on to the next task; PCT drops the yielder's priority). Busy-wait
   * loops must yield this way, or a non-preemptive schedule never ends.
   */
  sched_yield(what?: string): KGen;
}

/** Findings of the explorer's own, beside the kernel's. */
export type LivenessKind = 'step-bound' | 'livelock' | 'exception';

/** A kernel finding, or a liveness / harness failure in the same shape. */
export interface ExploreFinding extends Omit<Finding, 'kind'> {
  kind: FindingKind | LivenessKind;
}

export interface RunOptions {
  /** One lockdep graph for several runs (the explorer shares it across an exploration). */
  lockdep?: LockdepGraph;
  /** This run's label in lockdep edge origins. */
  runLabel?: string;
  /** Overrides the scenario's step bound. */
  maxSteps?: number;
  /** Steps allowed to the shutdown after the run (default: the step bound). */
  shutdownSteps?: number;
  /** Overrides the scenario's livelock threshold. */
  livelockRetries?: number;
  /** Trace sinks attached for the whole run (a replay's timeline or Chrome trace). */
  sinks?: TraceSink[];
  /** Keep the anchors of every decision (`RunResult.anchors`), as shrinking does. */
  anchors?: boolean;
}

/** Where a replay first departed from its schedule. */
export interface Divergence {
  /** Index of the decision. */
  index: number;
  /** Scheduler step at which it happened. */
  step: number;
  /** Options the schedule recorded at that decision. */
  expected: number;
  /** Options the code offered (0: the run ended before this decision). */
  runnable: number;
  message: string;
}

export interface RunResult {
  scenario: string;
  /** Kernel findings, with liveness ones ('step-bound', 'livelock', 'exception') in order. */
  findings: ExploreFinding[];
  /** Scheduler steps the run took, shutdown included. */
  steps: number;
  /** The decision stream (relative decisions, see decisions.ts) and its companions. */
  decisions: number[];
  log: DecisionLog;
  preemptions: number;
  /** Goals reached in this run. */
  goalsReached: string[];
  /** Retries reported through `ctx.retry`. */
  retries: number;
  /** The run ended by itself (no step bound, no harness exception). */
  completed: boolean;
  /** Set by replay when the run departed from its schedule. */
  diverged?: Divergence | null;
  /** Anchors of the decisions, when asked for. */
  anchors?: AnchorLog;
}

/** Default liveness bound of a run. */
export const DEFAULT_MAX_STEPS = 100_000;
/** Default quiet retries in a row that make a livelock. */
export const DEFAULT_LIVELOCK_RETRIES = 16;

const hashes = new WeakMap<Scenario, string>();

/**
 * A stable hash of the scenario's machine config and the bug switches it turns on ('as-merged'
 * resolved to ids), as 8 hex digits.
 */
export function configHash(scenario: Scenario): string {
  let h = hashes.get(scenario);
  if (h === undefined) {
    const { bugs, ...rest } = scenario.config;
    const ids = new Bugs(bugs ?? []).ids;
    h = hashString(`${stableJson(rest)}|bugs=${ids.join(',')}`)
      .toString(16)
      .padStart(8, '0');
    hashes.set(scenario, h);
  }
  return h;
}

/** JSON with sorted object keys (a config's identity does not depend on key order). */
export function stableJson(v: unknown): string {
  if (v === undefined) return 'null';
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`).join(',')}}`;
}

/** The schedule of a run, ready to encode. */
export function scheduleOf(scenario: Scenario, run: Pick<RunResult, 'log'>): Schedule {
  return {
    scenario: scenario.name,
    configHash: configHash(scenario),
    decisions: run.log.decisions,
    counts: run.log.counts,
  };
}

/** The schedule string of a run. */
export function scheduleString(scenario: Scenario, run: Pick<RunResult, 'log'>): string {
  return encodeSchedule(scheduleOf(scenario, run));
}

class Context implements RunContext {
  readonly flags = new Set<string>();
  constructor(
    readonly machine: Machine,
    readonly liveness: Liveness,
  ) {}
  mark(flag: string): void {
    this.flags.add(flag);
  }
  has(flag: string): boolean {
    return this.flags.has(flag);
  }
  pick(n: number, what: string): number {
    return this.machine.sched.chooser.pick(n, what);
  }
  retry(what: string): void {
    this.liveness.retry(what);
  }
  progress(): void {
    this.liveness.progress();
  }
  *sched_yield(what = 'sched_yield'): KGen {
    // The scheduler tells the chooser (and so the recorder) about the yield.
    yield { op: 'sched_yield', resource: what };
  }
}

/**
 * One schedule: boots a machine for `scenario` (its workers settled deterministically before the
 * first decision), lets `chooser` make every decision of the run — the scenario's setup, its
 * threads, the shutdown — records them, bounds the run by the step limit, shuts the machine down
 * and collects findings and goals.
 */
export function runOnce(scenario: Scenario, chooser: RunChooser, opts: RunOptions = {}): RunResult {
  const maxSteps = opts.maxSteps ?? scenario.maxSteps ?? DEFAULT_MAX_STEPS;
  const rec = new Recorder(chooser, opts.anchors ?? false);
  // Object.assign, not a spread: V8 takes a slow path (microseconds) for a spread with properties
  // of its own, or one that gains properties afterwards.
  const cfg: MachineConfig = Object.assign({}, scenario.config);
  cfg.chooser = new FirstChooser();
  if (opts.lockdep) cfg.lockdep = opts.lockdep;
  if (opts.runLabel) cfg.runLabel = opts.runLabel;
  const m = Machine.boot(cfg);
  const s = m.sched;
  // Boot-time workers take their first step (to sleep on their queues) in id order: part of
  // booting, not a choice of the run.
  s.runIdle();
  s.chooser = rec;
  const liveness = new Liveness(
    s,
    opts.livelockRetries ?? scenario.livelockRetries ?? DEFAULT_LIVELOCK_RETRIES,
  );
  const ctx = new Context(m, liveness);
  const goals = scenario.goals ?? [];
  let memory: MemorySink | null = null;
  if (goals.some((g) => g.trace)) {
    memory = new MemorySink();
    m.trace(memory);
  }
  for (const sink of opts.sinks ?? []) m.trace(sink);
  const extra: { at: number; f: ExploreFinding }[] = [];
  let completed = true;
  const fail = (kind: LivenessKind, message: string, detail: string): void => {
    completed = false;
    const t = s.current;
    extra.push({
      at: s.findings.length,
      f: {
        kind,
        message,
        task: t?.name ?? 'kernel',
        locks: [],
        step: s.step,
        time: s.now,
        fatal: true,
        detail,
      },
    });
  };
  const stuck = (): string =>
    [...s.runnable().map((t) => `  ${t.name} runnable`), ...liveness.describe().map((l) => `  ${l}`)].join(
      '\n',
    );
  const caught = (e: unknown, phase: string): void => {
    if (e instanceof StepLimitError) {
      fail('step-bound', `${phase} did not finish within ${e.limit} steps`, stuck());
    } else if (e instanceof KernelBugError) {
      // A fatal finding the sync facade turned into an exception: already recorded.
    } else {
      const err = e instanceof Error ? e : new Error(String(e));
      fail('exception', `${phase} threw ${err.name}: ${err.message}`, err.stack ?? '');
    }
  };

  rec.limit = maxSteps;
  try {
    scenario.run(m, ctx);
    if (!s.runIdle(Math.max(1, maxSteps - s.step)) && (s.hasRunnable() || s.hasTimers())) {
      fail('step-bound', `the run did not finish within ${maxSteps} steps`, stuck());
    }
  } catch (e) {
    caught(e, 'the run');
  }
  // A run that never ended would not end in shutdown either: its leak checks are moot.
  if (completed) {
    rec.limit = s.step + (opts.shutdownSteps ?? maxSteps);
    try {
      m.shutdown();
    } catch (e) {
      caught(e, 'shutdown');
    }
  }

  for (const l of liveness.events) {
    const { at, ...f } = l;
    extra.push({ at, f: { ...f, fatal: false } });
  }
  const findings = mergeFindings(s.findings, extra);
  const info: RunInfo = { flags: ctx.flags, findings, steps: s.step };
  if (memory) info.events = memory.events;
  const goalsReached: string[] = [];
  for (const g of goals) if (ctx.flags.has(g.name) || g.reached?.(m, info)) goalsReached.push(g.name);

  const result: RunResult = {
    scenario: scenario.name,
    findings,
    steps: s.step,
    decisions: rec.log.decisions,
    log: rec.log,
    preemptions: rec.preemptions,
    goalsReached,
    retries: liveness.retries,
    completed: completed && liveness.events.length === 0,
  };
  if (rec.anchors) result.anchors = rec.anchors;
  // Nothing reads the machine after this: its memory goes back for the next run.
  m.dispose();
  return result;
}

function mergeFindings(
  kernel: readonly Finding[],
  extra: { at: number; f: ExploreFinding }[],
): ExploreFinding[] {
  if (extra.length === 0) return [...kernel];
  extra.sort((a, b) => a.at - b.at);
  const out: ExploreFinding[] = [];
  let j = 0;
  for (let i = 0; i <= kernel.length; i++) {
    while (j < extra.length && extra[j]!.at <= i) out.push(extra[j++]!.f);
    if (i < kernel.length) out.push(kernel[i]!);
  }
  return out;
}

/** A finding's message with numbers and addresses blanked: "the same finding" across runs. */
export function findingTemplate(f: Pick<ExploreFinding, 'kind' | 'message'>): string {
  return `${f.kind}: ${f.message.replace(/0x[0-9a-f]+/gi, '<addr>').replace(/\d+/g, '<n>')}`;
}
