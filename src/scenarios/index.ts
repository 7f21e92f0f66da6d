/**
 * scenarios/: concurrent programs over a fresh machine — one per historic bug switch, in which
 * the explorer finds the switch's finding, and workloads that run clean on the correct design.
 */
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

/** The bug scenario of a switch. */
export function scenarioForBug(id: string): BugScenario | undefined {
  return BUG_SCENARIOS.find((s) => s.bug === id);
}

/** The same scenario on the correct design (no switch). */
export function fixed<S extends Scenario>(s: S): S {
  return withBugs(s, []);
}
export * from './zoo.js';
