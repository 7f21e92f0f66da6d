import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { exploreParallel, jobBudget, jobStrategy, mergeJobs } from '../src/cli/parallel.js';
import {
  type ExploreProgress,
  type ExploreResult,
  explore,
  makeStrategy,
  replay,
} from '../src/explore/index.js';
import { resolveScenario } from '../src/scenarios/index.js';

/**
 * Parallel exploration runs its jobs in worker threads, which load the built program (a worker
 * cannot load TypeScript): `npm test` builds first.
 */
const DIST = new URL('../dist/', import.meta.url);
const WORKER = new URL('cli/explore_worker.js', DIST);
const SCENARIOS = new URL('scenarios/index.js', DIST).href;
const CLI = fileURLToPath(new URL('cli/main.js', DIST));

/** The newest modification time (ms) of the files under `dir` that the build compiles or emits. */
function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const f = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(f));
    else if (/\.(ts|js)$/.test(e.name) && !e.name.endsWith('.test.ts')) t = Math.max(t, statSync(f).mtimeMs);
  }
  return t;
}

/** The workers run dist/: it must exist and be no older than src/ (a stale build would test old code). */
function built(): void {
  if (!existsSync(WORKER) || !existsSync(CLI))
    throw new Error('dist/ is missing: run `npm run build` (npm test does) before these tests');
  if (newest(fileURLToPath(new URL('../src/', import.meta.url))) > newest(fileURLToPath(DIST)))
    throw new Error('dist/ is older than src/: run `npm run build` (npm test does) before these tests');
}

describe('parallel exploration', () => {
  it('splits a budget and a strategy among jobs', () => {
    expect([0, 1, 2].map((i) => jobBudget(10, i, 3))).toEqual([4, 3, 3]);
    expect([0, 1].map((i) => jobBudget(7, i, 2)).reduce((a, b) => a + b)).toBe(7);
    expect(jobStrategy('portfolio', 0, 4)).toBe('portfolio');
    expect(jobStrategy('portfolio', 1, 4)).toBe('sampling');
    expect(jobStrategy('pct:2', 3, 4)).toBe('pct:2');
    expect(jobStrategy('dfs', 0, 1)).toBe('dfs');
    expect(() => jobStrategy('dfs:2', 0, 2)).toThrow(/does not split across jobs/);
    // What the other jobs run: the portfolio's sampling members, seeded, never exhausted.
    const s = makeStrategy('sampling', 3);
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) {
      expect(s.next()).not.toBeNull();
      seen.add(s.current);
    }
    expect([...seen].sort()).toEqual(['pct:3', 'pos', 'random']);
    expect(s.exhausted).toBe(false);
  });

  it('reports the failure of the lowest job that has one, whatever the timing', async () => {
    built();
    const name = 'bug/v16-worker-race';
    const jobs = 3;
    const total = 120;
    const r = await exploreParallel(
      { module: SCENARIOS, name },
      { jobs, schedules: total, seed: 1, shrink: false, workerUrl: WORKER },
    );
    // The same explorations, one after another in this thread: the first job with a failure.
    const s = resolveScenario(name);
    const alone: ExploreResult[] = [];
    for (let i = 0; i < jobs; i++) {
      alone.push(
        explore(s, {
          strategy: jobStrategy('portfolio', i, jobs),
          seed: 1 + i,
          schedules: jobBudget(total, i, jobs),
          shrink: false,
        }),
      );
    }
    const first = alone.findIndex((x) => x.failure !== null);
    // Seed 1: job 0 finds nothing in its 40, job 1 finds at 18 and job 2 (sooner) at 1.
    expect(first).toBe(1);
    expect(alone[2]!.failure!.found.index).toBeLessThan(alone[1]!.failure!.found.index);
    expect(r.failedJob).toBe(first);
    expect(r.failure!.found.schedule).toBe(alone[first]!.failure!.found.schedule);
    expect(r.failure!.found.index).toBe(alone[first]!.failure!.found.index);
    expect(r.jobs.map((j) => j.strategy)).toEqual(['portfolio', 'sampling', 'sampling']);
    expect(r.jobs.map((j) => j.seed)).toEqual([1, 2, 3]);
    // Jobs before the failing one ran their whole budget.
    for (let i = 0; i < first; i++) expect(r.jobs[i]!.schedules).toBe(jobBudget(total, i, jobs));
    // The schedule a worker wrote down replays here, with the same finding.
    const again = replay(s, r.failure!.schedule);
    expect(again.diverged).toBeNull();
    expect(again.findings.map((f) => f.kind)).toContain(r.failure!.finding.kind);
  });

  it('stops the jobs after a failing one as soon as its run fails, not after it shrank', async () => {
    built();
    // Job 0 finds within a few schedules and then shrinks; job 1 (no failure of its own for a
    // long while) must stop long before its budget.
    const r = await exploreParallel(
      { module: SCENARIOS, name: 'bug/fast-gup-during-invalidate' },
      { jobs: 2, schedules: 4000, seed: 1, workerUrl: WORKER },
    );
    expect(r.failedJob).toBe(0);
    expect(r.jobs[1]!.stopped || r.jobs[1]!.failed).toBe(true);
    expect(r.jobs[1]!.schedules).toBeLessThan(60);
  });

  it('runs the whole budget on a clean workload and merges coverage', async () => {
    built();
    const seen: ExploreProgress[] = [];
    const r = await exploreParallel(
      { module: SCENARIOS, name: 'workload/three-task' },
      {
        jobs: 2,
        schedules: 61,
        seed: 1,
        workerUrl: WORKER,
        now: () => performance.now(),
        progressEvery: 10,
        onProgress: (p) => seen.push(p),
      },
    );
    // The jobs report as they go (every 10 schedules each), then once for the whole.
    expect(seen.length).toBeGreaterThan(6);
    expect(seen.every((p) => p.goalsTotal === 2)).toBe(true);
    expect(seen.at(-1)).toMatchObject({ done: true, schedules: 61, goalsReached: 2, failures: 0 });
    expect(seen.slice(0, -1).every((p) => !p.done)).toBe(true);
    expect(r.failure).toBeNull();
    expect(r.failedJob).toBe(-1);
    expect(r.stats.schedules).toBe(61);
    expect(r.jobs.map((j) => j.schedules)).toEqual([31, 30]);
    expect(r.coverage.every((c) => c.reached)).toBe(true);
    const used = r.coverage.find((c) => c.name === 'other-used')!;
    expect(used.runs).toBe(61);
    expect(Object.values(r.stats.perStrategy).reduce((a, b) => a + b)).toBe(61);
    expect(r.stats.schedulesPerSecond).toBeGreaterThan(0);
  });

  it('applies bug switches in the workers', async () => {
    built();
    const r = await exploreParallel(
      { module: SCENARIOS, name: 'workload/zero-copy', bugs: ['v3-no-invalidate'] },
      { jobs: 2, schedules: 20, workerUrl: WORKER, shrink: false },
    );
    expect(r.failure?.finding.message).toMatch(/I-UNMAP|I-COVER/);
  });

  it('refuses what cannot run in parallel', async () => {
    const ref = { module: SCENARIOS, name: 'workload/three-task' };
    await expect(exploreParallel(ref, { jobs: 0 })).rejects.toThrow(/jobs must be/);
    await expect(exploreParallel(ref, { jobs: 2, strategy: 'dfs' })).rejects.toThrow(/does not split/);
    await expect(exploreParallel(ref, { jobs: 4, schedules: 3 })).rejects.toThrow(/no smaller than jobs/);
  });

  it('a worker that cannot resolve its scenario fails the exploration', async () => {
    built();
    await expect(
      exploreParallel({ module: SCENARIOS, name: 'no-such' }, { jobs: 2, schedules: 4, workerUrl: WORKER }),
    ).rejects.toThrow(/unknown scenario 'no-such'/);
  });

  it('is complete only when job 0 searched everything and nobody failed', () => {
    const base = (complete: boolean, failed: boolean): ExploreResult => ({
      scenario: 's',
      failure: failed ? ({} as ExploreResult['failure']) : null,
      exhausted: complete,
      complete,
      stopped: false,
      coverage: [{ name: 'g', reached: !complete, runs: complete ? 0 : 2, firstSchedule: 'x' }],
      stats: { schedules: 3, steps: 30, perStrategy: { random: 3 }, lockdepEdges: 1, strategy: '' },
    });
    const m = mergeJobs([base(true, false), base(false, false)], ['portfolio', 'sampling'], 1);
    expect(m.complete).toBe(true);
    expect(m.coverage[0]).toMatchObject({ reached: true, runs: 2, firstSchedule: 'x' });
    expect(m.stats).toMatchObject({ schedules: 6, steps: 60, perStrategy: { random: 6 } });
    expect(mergeJobs([base(true, false), base(false, true)], ['portfolio', 'sampling'], 1).complete).toBe(
      false,
    );
    expect(mergeJobs([base(false, false), base(false, false)], ['portfolio', 'sampling'], 1).complete).toBe(
      false,
    );
  });

  it('userptr explore --jobs --json: one document a batch runner can read', () => {
    built();
    let out: string;
    let status = 0;
    try {
      out = execFileSync(
        process.execPath,
        [CLI, 'explore', 'v16-worker-race', '--jobs', '2', '--schedules', '100', '--json'],
        { encoding: 'utf8' },
      );
    } catch (e) {
      const x = e as { status: number; stdout: string };
      status = x.status;
      out = x.stdout;
    }
    expect(status).toBe(1);
    const doc = JSON.parse(out) as {
      scenario: string;
      jobs: number;
      schedules: number;
      failure: {
        kind: string;
        schedule: string;
        found: { job: number; seed: number };
        replayedTwice: boolean;
      };
      perJob: { index: number; seed: number; schedules: number; failed: boolean }[];
    };
    expect(doc.scenario).toBe('bug/v16-worker-race');
    expect(doc.jobs).toBe(2);
    expect(doc.failure.replayedTwice).toBe(true);
    expect(doc.failure.found.seed).toBe(1 + doc.failure.found.job);
    expect(doc.perJob.map((j) => [j.index, j.seed])).toEqual([
      [0, 1],
      [1, 2],
    ]);
    expect(doc.perJob[doc.failure.found.job]!.failed).toBe(true);
    expect(doc.perJob.reduce((n, j) => n + j.schedules, 0)).toBe(doc.schedules);
    const again = replay(resolveScenario('v16-worker-race'), doc.failure.schedule);
    expect(again.findings.map((f) => f.kind)).toContain(doc.failure.kind);
  });
});
