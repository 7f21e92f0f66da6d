import { Worker } from 'node:worker_threads';
import type {
  ExploreOptions,
  ExploreProgress,
  ExploreResult,
  ExploreStats,
  GoalCoverage,
} from '../explore/index.js';

/**
 * Parallel exploration: schedules are independent, so `jobs` worker threads explore at once,
 * each booting its own machines (DESIGN, "Scale"; here in cli/, the one folder that may use
 * node:worker_threads). Job 0 runs the strategy asked for with the seed asked for; job i > 0
 * runs it with seed + i, except that the systematic search (DFS, which has no seed) runs in job 0
 * only: beside a portfolio the other jobs run `sampling`, the portfolio's randomized members, and
 * `dfs` itself does not split (refused with jobs > 1).
 *
 * The outcome does not depend on timing when the budget is a number of schedules: when job i
 * finds a failure, only jobs after i are stopped; the failure reported is that of the lowest job
 * that has one, and each job's own exploration is deterministic. (A time budget is not.) Lockdep
 * inversions across runs are seen within a job: each job keeps its own graph.
 *
 * It pays with cores to spare: one exploration already keeps ~1.3 CPUs busy (V8's concurrent GC
 * and compiler threads), so two jobs on two vCPUs take about the wall time of one.
 *
 * Workers cannot receive a scenario (it holds code), so they resolve it by name: `scenario.module`
 * is the URL of a module exporting `resolveScenario(name, bugs?)`.
 */

export interface ScenarioRef {
  /** URL of a module that exports `resolveScenario(name: string, bugs?: string[]): Scenario`. */
  module: string;
  name: string;
  /** Bug switches instead of the scenario's own. */
  bugs?: string[];
}

export interface ParallelOptions extends Pick<
  ExploreOptions,
  'seed' | 'schedules' | 'seconds' | 'maxSteps' | 'livelockRetries' | 'shrink'
> {
  /** Worker threads (≥ 1). */
  jobs: number;
  /** A strategy name (see `makeStrategy`); default portfolio. */
  strategy?: string;
  /** Milliseconds from some origin: the exploration's wall-clock time. */
  now?: () => number;
  /** Called as the jobs report (every `progressEvery` schedules of each) and once at the end. */
  onProgress?: (p: ExploreProgress) => void;
  progressEvery?: number;
  /** The worker's script (default: `explore_worker.js` beside this module). */
  workerUrl?: URL;
}

/** One job of a parallel exploration. */
export interface JobSummary {
  index: number;
  strategy: string;
  seed: number;
  schedules: number;
  /** It found a failure. */
  failed: boolean;
  /** It was stopped early (a lower job found a failure, or job 0's search was complete). */
  stopped: boolean;
}

export interface ParallelResult extends ExploreResult {
  jobs: JobSummary[];
  /** The job whose failure is reported (-1 when none). */
  failedJob: number;
}

/** What a worker is given. */
export interface WorkerJob {
  module: string;
  name: string;
  bugs?: string[];
  index: number;
  strategy: string;
  seed: number;
  schedules?: number;
  seconds?: number;
  maxSteps?: number;
  livelockRetries?: number;
  shrink: boolean | { maxRuns: number };
  progressEvery: number;
  /** One Int32 per job: non-zero asks it to stop. */
  stop: SharedArrayBuffer;
}

/** What a worker reports. */
export type WorkerMessage =
  | {
      type: 'progress';
      index: number;
      schedules: number;
      reached: string[];
      goalsTotal: number;
      failures: number;
    }
  | { type: 'done'; index: number; result: ExploreResult };

/** The strategy of job `index` for the strategy asked for; throws for one that cannot split. */
export function jobStrategy(strategy: string, index: number, jobs: number): string {
  if (jobs > 1 && strategy.split(':')[0] === 'dfs') {
    throw new RangeError(
      `${strategy} is one systematic search and does not split across jobs: run it with one job`,
    );
  }
  return index > 0 && strategy === 'portfolio' ? 'sampling' : strategy;
}

/** The schedules of job `index` when `total` are shared among `jobs`. */
export function jobBudget(total: number, index: number, jobs: number): number {
  return Math.floor(total / jobs) + (index < total % jobs ? 1 : 0);
}

/** Explores `ref` on `opts.jobs` worker threads; see the module comment. */
export async function exploreParallel(ref: ScenarioRef, opts: ParallelOptions): Promise<ParallelResult> {
  const jobs = opts.jobs;
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 256)
    throw new RangeError(`jobs must be an integer in [1, 256], got ${jobs}`);
  const seed = opts.seed ?? 1;
  if (!Number.isInteger(seed) || seed < 0)
    throw new RangeError(`seed must be a non-negative integer, got ${seed}`);
  if (opts.schedules !== undefined && opts.seconds !== undefined)
    throw new RangeError('give schedules or seconds, not both');
  const strategy = opts.strategy ?? 'portfolio';
  const total = opts.seconds === undefined ? (opts.schedules ?? 1000) : undefined;
  if (total !== undefined && (!Number.isInteger(total) || total < jobs))
    throw new RangeError(`schedules must be an integer no smaller than jobs (${jobs}), got ${total}`);
  const specs = Array.from({ length: jobs }, (_, i) => jobStrategy(strategy, i, jobs));

  const t0 = opts.now?.() ?? 0;
  const stop = new SharedArrayBuffer(4 * jobs);
  const flags = new Int32Array(stop);
  const url = opts.workerUrl ?? new URL('./explore_worker.js', import.meta.url);
  const progress = Array.from({ length: jobs }, () => ({
    schedules: 0,
    reached: new Set<string>(),
    failures: 0,
  }));
  let goalsTotal = 0;
  const report = (done: boolean): void => {
    if (!opts.onProgress) return;
    const reached = new Set(progress.flatMap((p) => [...p.reached]));
    const schedules = progress.reduce((n, p) => n + p.schedules, 0);
    const p: ExploreProgress = {
      schedules,
      goalsReached: reached.size,
      goalsTotal,
      failures: progress.reduce((n, q) => n + q.failures, 0),
      lockdepEdges: 0,
      status: `${jobs} jobs`,
      done,
    };
    if (opts.now) {
      p.elapsedMs = opts.now() - t0;
      if (p.elapsedMs > 0) p.schedulesPerSecond = (schedules * 1000) / p.elapsedMs;
    }
    opts.onProgress(p);
  };

  const results: (ExploreResult | null)[] = new Array<ExploreResult | null>(jobs).fill(null);
  const onDone = (i: number, r: ExploreResult): void => {
    results[i] = r;
    goalsTotal = r.coverage.length;
    // A failure stops the jobs after it; job 0's complete search makes every other job moot.
    const from = r.failure ? i + 1 : i === 0 && r.complete ? 1 : jobs;
    for (let j = from; j < jobs; j++) Atomics.store(flags, j, 1);
  };
  const workers: Worker[] = [];
  // Any failure of the whole: every job stops at once, and its thread goes.
  const abandon = (): void => {
    for (let j = 0; j < jobs; j++) Atomics.store(flags, j, 1);
    for (const w of workers) void w.terminate();
  };
  try {
    await Promise.all(
      specs.map(
        (spec, i) =>
          new Promise<void>((resolve, reject) => {
            const job: WorkerJob = {
              module: ref.module,
              name: ref.name,
              index: i,
              strategy: spec,
              seed: seed + i,
              shrink: opts.shrink ?? true,
              progressEvery: Math.max(1, opts.progressEvery ?? 100),
              stop,
            };
            if (ref.bugs) job.bugs = ref.bugs;
            if (total !== undefined) job.schedules = jobBudget(total, i, jobs);
            else job.seconds = opts.seconds!;
            if (opts.maxSteps !== undefined) job.maxSteps = opts.maxSteps;
            if (opts.livelockRetries !== undefined) job.livelockRetries = opts.livelockRetries;
            const w = new Worker(url, { workerData: job });
            workers.push(w);
            let settled = false;
            w.on('message', (m: WorkerMessage) => {
              if (m.type === 'progress') {
                const p = progress[m.index]!;
                p.schedules = m.schedules;
                for (const g of m.reached) p.reached.add(g);
                p.failures = m.failures;
                goalsTotal = m.goalsTotal;
                report(false);
              } else {
                onDone(m.index, m.result);
                settled = true;
                resolve();
              }
            });
            w.on('error', (e) => {
              settled = true;
              reject(e);
            });
            w.on('exit', (code) => {
              if (!settled)
                reject(new Error(`exploration job ${i} exited with status ${code} before reporting`));
            });
          }),
      ),
    );
  } catch (e) {
    abandon();
    throw e;
  }
  const elapsedMs = opts.now ? opts.now() - t0 : undefined;
  const merged = mergeJobs(results as ExploreResult[], specs, seed, elapsedMs);
  report(true);
  return merged;
}

/** The jobs' results as one exploration's. Exported for tests. */
export function mergeJobs(
  results: readonly ExploreResult[],
  specs: readonly string[],
  seed: number,
  elapsedMs?: number,
): ParallelResult {
  const first = results[0]!;
  const failedJob = results.findIndex((r) => r.failure !== null);
  const coverage: GoalCoverage[] = first.coverage.map((c) => {
    const all = results.map((r) => r.coverage.find((x) => x.name === c.name)!);
    const by = all.find((x) => x.reached);
    const g: GoalCoverage = {
      name: c.name,
      reached: by !== undefined,
      runs: all.reduce((n, x) => n + x.runs, 0),
    };
    if (c.description !== undefined) g.description = c.description;
    if (by?.firstSchedule !== undefined) g.firstSchedule = by.firstSchedule;
    return g;
  });
  const perStrategy: Record<string, number> = {};
  for (const r of results)
    for (const [k, v] of Object.entries(r.stats.perStrategy)) perStrategy[k] = (perStrategy[k] ?? 0) + v;
  const schedules = results.reduce((n, r) => n + r.stats.schedules, 0);
  const stats: ExploreStats = {
    schedules,
    steps: results.reduce((n, r) => n + r.stats.steps, 0),
    perStrategy,
    lockdepEdges: Math.max(...results.map((r) => r.stats.lockdepEdges)),
    strategy: results
      .map((r, i) => `job ${i} (${specs[i]}, seed ${seed + i}): ${r.stats.strategy}`)
      .join(' | '),
  };
  if (elapsedMs !== undefined) {
    stats.elapsedMs = elapsedMs;
    if (elapsedMs > 0) stats.schedulesPerSecond = (schedules * 1000) / elapsedMs;
  }
  const complete = first.complete && failedJob < 0;
  return {
    scenario: first.scenario,
    failure: failedJob >= 0 ? results[failedJob]!.failure : null,
    exhausted: complete || results.every((r) => r.exhausted),
    complete,
    stopped: false,
    coverage,
    stats,
    jobs: results.map((r, i) => ({
      index: i,
      strategy: specs[i]!,
      seed: seed + i,
      schedules: r.stats.schedules,
      failed: r.failure !== null,
      stopped: r.stopped,
    })),
    failedJob,
  };
}
