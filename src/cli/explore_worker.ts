/**
 * One job of a parallel exploration (parallel.ts), run in a worker thread: resolves its scenario
 * by name, explores, reports progress and its result.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type ExploreOptions, type Scenario, explore } from '../explore/index.js';
import type { WorkerJob, WorkerMessage } from './parallel.js';

const job = workerData as WorkerJob;
const mod = (await import(job.module)) as {
  resolveScenario(name: string, bugs?: readonly string[]): Scenario;
};
const scenario = mod.resolveScenario(job.name, job.bugs);
const stop = new Int32Array(job.stop);
const reached = new Set<string>();
const post = (m: WorkerMessage): void => parentPort!.postMessage(m);

const opts: ExploreOptions = {
  strategy: job.strategy,
  seed: job.seed,
  now: () => performance.now(),
  shrink: job.shrink,
  progressEvery: job.progressEvery,
  shouldStop: () => Atomics.load(stop, job.index) !== 0,
  onRun: (run) => {
    for (const g of run.goalsReached) reached.add(g);
    // Every finding fails the exploration (no failOn here): the jobs after this one are moot
    // from now on, while this one replays and shrinks.
    if (run.findings.length > 0) for (let j = job.index + 1; j < stop.length; j++) Atomics.store(stop, j, 1);
  },
  onProgress: (p) => {
    post({
      type: 'progress',
      index: job.index,
      schedules: p.schedules,
      reached: [...reached],
      goalsTotal: p.goalsTotal,
      failures: p.failures,
    });
  },
};
if (job.schedules !== undefined) opts.schedules = job.schedules;
if (job.seconds !== undefined) opts.seconds = job.seconds;
if (job.maxSteps !== undefined) opts.maxSteps = job.maxSteps;
if (job.livelockRetries !== undefined) opts.livelockRetries = job.livelockRetries;

post({ type: 'done', index: job.index, result: explore(scenario, opts) });
