import { writeFileSync } from 'node:fs';
import { knownBugs } from '../base/bugs.js';
import {
  type ExploreProgress,
  type ExploreResult,
  type RunResult,
  type Scenario,
  configHash,
  decodeSchedule,
  explore,
  makeStrategy,
  replay,
  replayCommand,
} from '../explore/index.js';
import {
  BUG_SCENARIOS,
  SCENARIOS,
  WORKLOADS,
  formatZoo,
  resolveScenario as resolveBugScenario,
  runZoo,
  scenarioByName,
  setInvariants,
  withBugs,
} from '../scenarios/index.js';
import { MemorySink, type TraceEvent, formatChromeTrace, renderSwimLanes } from '../trace/index.js';
import {
  type JobSummary,
  type ParallelResult,
  type ScenarioRef,
  exploreParallel,
  jobStrategy,
} from './parallel.js';

/** Where a command writes, and whether its stdout is a terminal. */
export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Rewrites the current terminal line (live status); absent when not a TTY. */
  status?: (line: string) => void;
  now: () => number;
}

/** Bad arguments: a one-line message, usage, exit status 2. */
export class UsageError extends Error {}

// --- list -----------------------------------------------------------------------------------------

export function listCommand(io: Io): number {
  io.out('scenarios:');
  const w = Math.max(...SCENARIOS.map((s) => s.name.length));
  for (const s of SCENARIOS) io.out(`  ${s.name.padEnd(w)}  ${s.description}`);
  io.out('');
  io.out('bugs (--bug <id>; * has a scenario):');
  const bugs = knownBugs();
  const bw = Math.max(...bugs.map((b) => b.id.length));
  const iw = Math.max(...bugs.map((b) => b.invariant.length));
  const covered = new Set(BUG_SCENARIOS.map((s) => s.bug));
  for (const b of bugs) {
    io.out(
      `  ${covered.has(b.id) ? '*' : ' '} ${b.id.padEnd(bw)}  ${b.invariant.padEnd(iw)}  ${b.description}`,
    );
  }
  return 0;
}

// --- explore --------------------------------------------------------------------------------------

export interface ExploreArgs {
  bug?: string[];
  strategy?: string;
  schedules?: number;
  seconds?: number;
  seed?: number;
  /** Worker threads (default 1: this thread). */
  jobs?: number;
  /** Print the result as one JSON document instead of the report. */
  json?: boolean;
}

/** How an exploration was asked for, as its report repeats it (`bugs`: explore's --bug flags). */
interface ExploreHow {
  strategy: string;
  seed: number;
  jobs: number;
  bugs?: string[];
}

/** `--bug none`: every switch off (the correct design), whatever the scenario's own. */
const NO_BUGS = 'none';

function resolveScenario(name: string, bugs?: string[]): Scenario {
  try {
    if (bugs?.includes(NO_BUGS)) {
      if (bugs.length > 1) throw new RangeError(`--bug ${NO_BUGS} cannot be combined with other switches`);
      return resolveBugScenario(name, []);
    }
    return resolveBugScenario(name, bugs);
  } catch (e) {
    if (e instanceof RangeError) throw new UsageError(e.message);
    throw e;
  }
}

/** The events of a run worth a swim lane: from the scenario's first thread on, tasks that did something. */
function laneEvents(events: readonly TraceEvent[], until: number): TraceEvent[] {
  const first = events.findIndex((e) => e.op === 'spawn' && e.task.includes('/'));
  const tail = (first < 0 ? events : events.slice(first)).filter((e) => e.step <= until);
  const busy = new Set(tail.filter((e) => e.op !== 'wake' && e.op !== 'spawn').map((e) => e.taskId));
  return tail.filter((e) => busy.has(e.taskId));
}

/** Swim lanes of a replayed run, its findings, and the run. */
export function replayReport(s: Scenario, schedule: string, prerequisites: string[], io: Io): RunResult {
  const sink = new MemorySink();
  const run = replay(s, schedule, { prerequisites, sinks: [sink] });
  const until = run.findings[0]?.step ?? Number.POSITIVE_INFINITY;
  io.out(renderSwimLanes(laneEvents(sink.events, until), { columnWidth: 22 }));
  if (run.diverged) io.out(`replay: ${run.diverged.message}`);
  return run;
}

function findingLines(run: RunResult, io: Io): void {
  if (run.findings.length === 0) io.out('findings: none');
  for (const f of run.findings) {
    io.out(`finding: ${f.kind}: ${f.message} (${f.task}, step ${f.step})`);
    if (f.detail) for (const l of f.detail.split('\n')) io.out(`  ${l}`);
  }
}

export function exploreCommand(name: string, a: ExploreArgs, io: Io): number | Promise<number> {
  const s = resolveScenario(name, a.bug);
  if (a.schedules !== undefined && a.seconds !== undefined)
    throw new UsageError('give --schedules or --seconds, not both');
  const strategy = a.strategy ?? 'portfolio';
  const jobs = a.jobs ?? 1;
  try {
    makeStrategy(strategy, 1);
    for (let i = 0; i < jobs; i++) jobStrategy(strategy, i, jobs);
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  const schedules = a.seconds === undefined ? (a.schedules ?? 1000) : undefined;
  if (schedules !== undefined && schedules < jobs)
    throw new UsageError(`--schedules ${schedules} is fewer than --jobs ${jobs}`);
  const budget = a.seconds !== undefined ? `${a.seconds} s` : `${schedules} schedules`;
  const seed = a.seed ?? 1;
  if (!a.json)
    io.out(
      `exploring ${s.name} [${designOf(s)}] with ${strategy}, seed ${seed}, ${budget}${jobs > 1 ? `, ${jobs} jobs (seeds ${seed}–${seed + jobs - 1})` : ''}`,
    );
  const show = (p: ExploreProgress): void => {
    if (a.json) return;
    const rate = p.schedulesPerSecond !== undefined ? `${p.schedulesPerSecond.toFixed(0)}/s` : '';
    const line = `${p.schedules} schedules ${rate}  coverage ${p.goalsReached}/${p.goalsTotal}  findings ${p.failures}  ${p.status}`;
    if (io.status && !p.done) io.status(line);
    else io.out(line);
  };
  const budgetOpt = schedules !== undefined ? { schedules } : { seconds: a.seconds! };
  const how: ExploreHow = { strategy, seed, jobs };
  if (a.bug) how.bugs = a.bug;
  const options = {
    strategy,
    seed,
    ...budgetOpt,
    now: io.now,
    onProgress: show,
    progressEvery: io.status ? 20 : 200,
  };
  if (jobs === 1) return exploreReport(s, explore(s, options), how, a.json ?? false, io);
  const ref: ScenarioRef = { module: SCENARIOS_MODULE, name: s.name };
  if (a.bug) ref.bugs = (s.config.bugs as string[] | undefined) ?? [];
  return exploreParallel(ref, { ...options, jobs }).then((r) =>
    exploreReport(s, r, how, a.json ?? false, io),
  );
}

/** The module workers resolve scenarios from: this program's own scenarios. */
const SCENARIOS_MODULE = new URL('../scenarios/index.js', import.meta.url).href;

function designOf(s: Scenario): string {
  return (s.config.bugs as string[] | undefined)?.join(', ') || 'correct design';
}

/** The end of an exploration: coverage, then the failure's report (or JSON); the exit status. */
function exploreReport(
  s: Scenario,
  r: ExploreResult | ParallelResult,
  how: ExploreHow,
  json: boolean,
  io: Io,
): number {
  const f = r.failure;
  const job = 'failedJob' in r && r.failedJob >= 0 ? r.jobs[r.failedJob]! : null;
  if (json) {
    io.out(JSON.stringify(exploreJson(s, r, how, job), null, 2));
    return f ? 1 : 0;
  }
  if ('jobs' in r) {
    for (const j of r.jobs) {
      const end = j.failed ? 'found a failure' : j.stopped ? 'stopped' : 'done';
      io.out(`job ${j.index} (${j.strategy}, seed ${j.seed}): ${j.schedules} schedules, ${end}`);
    }
  }
  for (const c of r.coverage)
    io.out(`goal ${c.reached ? 'reached' : 'NOT reached'}: ${c.name}${c.reached ? ` (${c.runs} runs)` : ''}`);
  if (!f) {
    io.out(`no finding in ${r.stats.schedules} schedules${r.complete ? ' (the search is complete)' : ''}`);
    return 0;
  }
  io.out('');
  const where = job ? `${f.found.strategy}, job ${job.index}, seed ${job.seed}` : f.found.strategy;
  io.out(`FOUND after ${f.found.index} schedules (${where}): ${f.finding.kind}: ${f.finding.message}`);
  io.out('');
  const run = replayReport(s, f.schedule, f.prerequisites, io);
  io.out('');
  findingLines(run, io);
  io.out(
    `replayed twice: ${f.replay.reproduced && f.replay.deterministic ? 'identical' : (f.replay.problem ?? 'differ')}`,
  );
  if (f.shrink) io.out(`shrunk: ${f.shrink.summary}`);
  io.out(`schedule: ${f.schedule}`);
  io.out(`replay:   ${replayCommandFor([...f.prerequisites, f.schedule], how.bugs)}`);
  return 1;
}

/** `explore --json`: what a batch runner handing out seeds collects. */
function exploreJson(
  s: Scenario,
  r: ExploreResult | ParallelResult,
  how: ExploreHow,
  job: JobSummary | null,
): unknown {
  const f = r.failure;
  return {
    scenario: s.name,
    configHash: configHash(s),
    bugs: (s.config.bugs as string[] | undefined) ?? [],
    strategy: how.strategy,
    seed: how.seed,
    jobs: how.jobs,
    ...('jobs' in r ? { perJob: r.jobs } : {}),
    schedules: r.stats.schedules,
    steps: r.stats.steps,
    elapsedMs: r.stats.elapsedMs ?? null,
    schedulesPerSecond: r.stats.schedulesPerSecond ?? null,
    exhausted: r.exhausted,
    complete: r.complete,
    coverage: r.coverage.map((c) => ({
      name: c.name,
      reached: c.reached,
      runs: c.runs,
      firstSchedule: c.firstSchedule ?? null,
    })),
    failure: f
      ? {
          kind: f.finding.kind,
          message: f.finding.message,
          template: f.template,
          task: f.finding.task,
          step: f.finding.step,
          schedule: f.schedule,
          prerequisites: f.prerequisites,
          replayCommand: replayCommandFor([...f.prerequisites, f.schedule], how.bugs),
          found: { ...f.found, job: job?.index ?? 0, seed: job?.seed ?? how.seed },
          replayedTwice: f.replay.reproduced && f.replay.deterministic,
          shrunk: f.shrink ? f.shrink.summary : null,
        }
      : null,
  };
}

// --- replay / trace -------------------------------------------------------------------------------

/**
 * The scenario (with the bug switches) a schedule string was recorded with: `bugs` when given
 * (`--bug`, as explore printed it), else found from the config hash among the scenario as it
 * is, every switch off, 'as-merged', and each switch alone.
 */
export function scenarioOfSchedule(text: string, bugs?: string[]): Scenario {
  let sched;
  try {
    sched = decodeSchedule(text);
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  const base = scenarioByName(sched.scenario);
  if (!base) throw new UsageError(`unknown scenario '${sched.scenario}' in the schedule`);
  if (bugs) {
    const s = resolveScenario(base.name, bugs);
    if (configHash(s) !== sched.configHash)
      throw new UsageError(
        `the schedule was recorded with another configuration (hash ${sched.configHash}) than ${base.name} with --bug ${bugs.join(' --bug ')} (hash ${configHash(s)})`,
      );
    return s;
  }
  const candidates = [
    base,
    withBugs(base, []),
    withBugs(base, ['as-merged']),
    ...knownBugs().map((b) => withBugs(base, [b.id])),
  ];
  const s = candidates.find((c) => configHash(c) === sched.configHash);
  if (!s)
    throw new UsageError(
      `no configuration of ${base.name} has hash ${sched.configHash}: give the switches it was explored with (--bug)`,
    );
  return s;
}

/** The replay command of `schedules`, naming the switches when explore was given them. */
function replayCommandFor(schedules: readonly string[], bugs?: string[]): string {
  const cmd = replayCommand(schedules);
  if (!bugs?.length) return cmd;
  return cmd.replace(/^userptr replay /, `userptr replay ${bugs.map((b) => `--bug ${b} `).join('')}`);
}

export function replayCommandRun(schedules: string[], io: Io, bugs?: string[]): number {
  if (schedules.length === 0) throw new UsageError('give a schedule string');
  const last = schedules[schedules.length - 1]!;
  const s = scenarioOfSchedule(last, bugs);
  for (const p of schedules.slice(0, -1)) scenarioOfSchedule(p, bugs);
  io.out(`replaying ${s.name} [${designOf(s)}]`);
  const run = replayReport(s, last, schedules.slice(0, -1), io);
  findingLines(run, io);
  io.out(`steps ${run.steps}, decisions ${run.decisions.length}, preemptions ${run.preemptions}`);
  return run.findings.length > 0 ? 1 : 0;
}

export function traceCommand(schedule: string, outFile: string, io: Io, bugs?: string[]): number {
  const s = scenarioOfSchedule(schedule, bugs);
  const sink = new MemorySink();
  const run = replay(s, schedule, { sinks: [sink] });
  try {
    writeFileSync(outFile, formatChromeTrace(sink.events));
  } catch (e) {
    io.err(`error: cannot write ${outFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    return 1;
  }
  io.out(
    `wrote ${sink.events.length} events of ${s.name} to ${outFile} (open it in https://ui.perfetto.dev)`,
  );
  io.out(
    `findings: ${run.findings.length === 0 ? 'none' : run.findings.map((f) => `${f.kind}: ${f.message}`).join('; ')}`,
  );
  return 0;
}

// --- zoo ------------------------------------------------------------------------------------------

export function zooCommand(
  a: { budget?: number; seed?: number; markdown?: boolean; bugs?: string[] },
  io: Io,
): number {
  setInvariants(knownBugs());
  const budget = a.budget ?? 200;
  io.out(
    `the bug zoo: each switch's scenario explored with portfolio, seed ${a.seed ?? 1}, up to ${budget} schedules on and off`,
  );
  const res = runZoo({
    budget,
    seed: a.seed ?? 1,
    now: io.now,
    ...(a.bugs ? { bugs: a.bugs } : {}),
    onRow: (r) => io.status?.(`${r.name}: ${r.found === false ? 'MISSED' : 'done'}`),
  });
  io.status?.('');
  io.out(formatZoo(res.rows, a.markdown ?? false));
  const covered = new Set(BUG_SCENARIOS.map((s) => s.bug));
  const missing = knownBugs()
    .filter((b) => !covered.has(b.id))
    .map((b) => b.id);
  if (!a.bugs && missing.length) io.out(`\nswitches without a scenario: ${missing.join(', ')}`);
  const cleanSchedules = res.rows.reduce((n, r) => n + (r.clean.finding ? 0 : r.clean.schedules), 0);
  io.out(
    `correct design: ${cleanSchedules} schedules over ${BUG_SCENARIOS.length + WORKLOADS.length} scenarios with no finding`,
  );
  io.out(
    res.ok
      ? 'zoo: every bug found, the correct design clean'
      : 'zoo: FAILED (a bug missed or the correct design has a finding)',
  );
  return res.ok ? 0 : 1;
}

export { replayCommand };
