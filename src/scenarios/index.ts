/**
 * scenarios/: concurrent programs over a fresh machine — one per historic bug switch, in which
 * the explorer finds the switch's finding, and workloads that run clean on the correct design.
 */
import { knownBugs } from '../base/bugs.js';
import type { Scenario } from '../explore/index.js';
import { BUG_SCENARIOS } from './bugs.js';
import { type BugScenario, withBugs } from './common.js';
import { WORKLOADS } from './workloads.js';

export * from './common.js';
export { BUG_SCENARIOS } from './bugs.js';
export { THREE_TASK, WORKLOADS } from './workloads.js';

/** Every scenario, bug scenarios first. */
export const SCENARIOS: readonly Scenario[] = [...BUG_SCENARIOS, ...WORKLOADS];

/** A scenario by name (`bug/v16-worker-race`, or just `v16-worker-race`), or undefined. */
export function scenarioByName(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name) ?? SCENARIOS.find((s) => s.name === `bug/${name}`);
}

/**
 * A scenario by name with `bugs` switched on instead of its own (none given: as it is). Throws a
 * RangeError naming the unknown scenario or switch. Parallel explorations resolve their scenario
 * through this in every worker (`exploreParallel`'s scenario module).
 */
export function resolveScenario(name: string, bugs?: readonly string[]): Scenario {
  const s = scenarioByName(name);
  if (!s) throw new RangeError(`unknown scenario '${name}' (see 'userptr list')`);
  if (!bugs) return s;
  const ids = new Set(knownBugs().map((b) => b.id));
  for (const b of bugs)
    if (b !== 'as-merged' && !ids.has(b)) throw new RangeError(`unknown bug id '${b}' (see 'userptr list')`);
  return withBugs(s, bugs);
}

/** The bug scenario of a switch. */
export function scenarioForBug(id: string): BugScenario | undefined {
  return BUG_SCENARIOS.find((s) => s.bug === id);
}

/** The same scenario on the correct design (no switch). */
export function fixed<S extends Scenario>(s: S): S {
  return withBugs(s, []);
}
export * from './zoo.js';
