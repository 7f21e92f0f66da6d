/**
 * The explorer's figures (issue 5): schedules per second on the standard three-task userptr
 * scenario, and schedules needed to find each bug per strategy.
 */
import { explore } from '../../explore/index.js';
import { exploreParallel } from '../parallel.js';
import { BUG_SCENARIOS, THREE_TASK, isExpected } from '../../scenarios/index.js';
import { type Measured, medianFigure, timeMs } from './stats.js';

/** Schedules per timed sample of the throughput figure. */
const SAMPLE = 400;
/** Seed and budget of the schedules-to-find figures (the zoo's). */
export const FIND_SEED = 1;
export const FIND_BUDGET = 200;
/** The strategies compared (the portfolio rotates them; the zoo reports it). */
export const FIND_STRATEGIES = ['random', 'pct', 'pos', 'dfs'] as const;

/**
 * `explorer-schedules-per-second`: `explore(THREE_TASK, { strategy: 'random' })` for SAMPLE
 * schedules (boot, run, shutdown, coverage, no shrinking), per repetition; the median.
 */
export function schedulesPerSecond(o: { reps: number }): Measured[] {
  let seed = 1;
  const once = (): number => {
    let n = 0;
    const ms = timeMs(() => {
      const r = explore(THREE_TASK, { seed: seed++, schedules: SAMPLE, strategy: 'random', shrink: false });
      if (r.failure) throw new Error(`${THREE_TASK.name}: ${r.failure.finding.message}`);
      if (r.coverage.some((c) => !c.reached)) throw new Error(`${THREE_TASK.name}: a goal was not reached`);
      n = r.stats.schedules;
    });
    return (n * 1000) / ms;
  };
  once(); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < o.reps; i++) samples.push(once());
  return [{ ...medianFigure('explorer-schedules-per-second', 'schedules/s', samples), target: '>= 5000' }];
}

/**
 * `schedules-to-find-<bug>-<strategy>`: the 1-based index of the first schedule showing the bug
 * scenario's expected finding, seed FIND_SEED, budget FIND_BUDGET; FIND_BUDGET + 1 when not found.
 * Deterministic: measured once.
 */
export function schedulesToFind(): Measured[] {
  const out: Measured[] = [];
  for (const s of BUG_SCENARIOS) {
    for (const strategy of FIND_STRATEGIES) {
      const r = explore(s, {
        seed: FIND_SEED,
        schedules: FIND_BUDGET,
        strategy,
        failOn: (f) => isExpected(s, f),
        shrink: false,
      });
      const found = r.failure !== null;
      out.push({
        name: `schedules-to-find-${s.bug}-${strategy}`,
        value: found ? r.failure!.found.index : FIND_BUDGET + 1,
        unit: 'schedules',
        ...(found ? {} : { note: `not found in ${FIND_BUDGET}` }),
      });
    }
  }
  return out;
}

/** Schedules per sample of the parallel figure (shared among the jobs). */
const PARALLEL_SAMPLE = 6000;

/**
 * `explorer-parallel-speedup-2-jobs`: THREE_TASK explored by `exploreParallel` with one worker
 * thread and with two, the same total of schedules (random strategy); the ratio of their wall
 * times, side by side per repetition; the median. Both pay a worker's start-up. On a machine
 * with two free cores it approaches 2.
 */
export async function parallelSpeedup(o: { reps: number }): Promise<Measured[]> {
  const module = new URL('../../scenarios/index.js', import.meta.url).href;
  const once = async (jobs: number): Promise<number> => {
    const t0 = performance.now();
    const r = await exploreParallel(
      { module, name: THREE_TASK.name },
      { jobs, schedules: PARALLEL_SAMPLE, strategy: 'random', shrink: false },
    );
    if (r.failure) throw new Error(`${THREE_TASK.name}: ${r.failure.finding.message}`);
    return performance.now() - t0;
  };
  await once(2); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < Math.min(o.reps, 3); i++) {
    const one = await once(1);
    const two = await once(2);
    samples.push(one / two);
  }
  return [medianFigure('explorer-parallel-speedup-2-jobs', 'ratio', samples)];
}

/** The whole suite (`--only explore`). */
export function exploreSuite(o: { reps: number }): Measured[] {
  return [...schedulesPerSecond(o), ...schedulesToFind()];
}
