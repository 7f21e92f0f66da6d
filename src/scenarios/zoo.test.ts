import { describe, expect, it } from 'vitest';
import { knownBugs } from '../base/bugs.js';
import { explore, findingTemplate, replayTwice, targetOf } from '../explore/index.js';
import type { Scenario } from '../explore/index.js';
import { ANON, PAGE, RW, fill, proc, userptr } from './common.js';
import {
  BUG_SCENARIOS,
  SCENARIOS,
  WORKLOADS,
  isExpected,
  scenarioByName,
  scenarioForBug,
  withBugs,
} from './index.js';

/**
 * The bug zoo in small: every bug scenario's finding is found by the explorer within a fixed
 * budget and seed, replays identically and shrinks; the same scenario with the switch off is clean
 * for a smaller budget; the workloads are clean on the correct design.
 */

const SEED = Number(process.env.SEED ?? 1);
/** Schedules allowed to find each bug (the slowest needs ~35 with seed 1). */
const FIND = 80;
/** Schedules each scenario must run clean with its switch off. */
const CLEAN = 40;

describe(`the bug zoo (seed ${SEED})`, () => {
  it('has one scenario per switch it covers, every switch known to the registry', () => {
    const ids = new Set(knownBugs().map((b) => b.id));
    for (const s of BUG_SCENARIOS) {
      expect(ids.has(s.bug), s.bug).toBe(true);
      expect(s.config.bugs).toEqual([s.bug]);
      expect(s.goals?.length).toBeGreaterThan(0);
      expect(scenarioByName(s.name)).toBe(s);
      expect(scenarioByName(s.bug)).toBe(s);
      expect(scenarioForBug(s.bug)).toBe(s);
    }
    expect(new Set(SCENARIOS.map((s) => s.name)).size).toBe(SCENARIOS.length);
  });

  for (const s of BUG_SCENARIOS) {
    it(`${s.bug}: found, replayed identically, shrunk; clean with the switch off`, () => {
      const r = explore(s, {
        seed: SEED,
        schedules: FIND,
        failOn: (f) => isExpected(s, f),
        shrink: { maxRuns: 150 },
      });
      const f = r.failure;
      expect(f, `${s.bug} not found in ${FIND} schedules`).not.toBeNull();
      expect(isExpected(s, f!.finding)).toBe(true);
      expect(f!.replay).toEqual({ reproduced: true, deterministic: true });
      expect(
        r.coverage.every((c) => c.reached),
        'coverage goals',
      ).toBe(true);
      const again = replayTwice(s, f!.schedule, targetOf(f!.finding), { prerequisites: f!.prerequisites });
      expect(again.reproduced && again.deterministic).toBe(true);
      expect(again.diverged).toBeNull();
      const sh = f!.shrink;
      expect(sh, 'shrink').not.toBeNull();
      expect(sh!.after.preemptions).toBeLessThanOrEqual(sh!.before.preemptions);
      expect(sh!.after.steps).toBeLessThanOrEqual(sh!.before.steps + 64);

      const off = explore(withBugs(s, []), { seed: SEED, schedules: CLEAN, shrink: false });
      if (s.knownOff && off.failure) {
        // A known false positive of a check (reported); the note goes once the check is fixed.
        expect(findingTemplate(off.failure.finding)).toBe(s.knownOff.template);
      } else {
        expect(off.failure?.finding.message ?? null).toBeNull();
        expect(off.stats.schedules).toBe(CLEAN);
      }
    });
  }

  for (const w of WORKLOADS) {
    it(`${w.name}: clean on the correct design, its goals reached`, () => {
      const r = explore(w, { seed: SEED, schedules: CLEAN, shrink: false });
      expect(r.failure?.finding.message ?? null).toBeNull();
      expect(r.coverage.filter((c) => !c.reached).map((c) => c.name)).toEqual([]);
    });
  }
});

/**
 * A setup whose fill meets a userptr object with no resident page: execbuffer gets -EAGAIN while
 * the get-pages worker runs, and the sync facade's drmIoctl retries through sched_yield. PCT once
 * starved the worker here (a change point dropped it below every fresh syscall task, and the
 * facade's yield was not seen as one): a correct program hit the step bound.
 */
const FACADE_RETRY: Scenario = {
  name: 'test/facade-retry',
  description: 'setup fills a userptr object over a page that is not resident (EAGAIN, drmIoctl retries)',
  config: { ramBytes: 512 * 1024 },
  run(m) {
    const { p, fd } = proc(m);
    const a = p.mmap(0, PAGE, RW, ANON);
    fill(p, fd, userptr(p, fd, a, PAGE), 1);
  },
};

describe('a setup retrying -EAGAIN through the sync facade', () => {
  for (const strategy of ['pct:2', 'pct:3', 'pos', 'random']) {
    it(`runs clean under ${strategy}: the yield lets the worker run`, () => {
      const r = explore(FACADE_RETRY, { seed: SEED, schedules: 40, strategy, shrink: false });
      expect(r.failure?.finding.message ?? null).toBeNull();
      expect(r.stats.schedules).toBe(40);
    });
  }
});
