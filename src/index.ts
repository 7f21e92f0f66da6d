/**
 * userptr: a deterministic, executable model of the Linux 3.16 i915 userptr ioctl and the
 * machine around it. This is the package's public face (CONTRACT.md).
 */
import './oracle/index.js';
export { Machine } from './kernel/machine.js';
export type { MachineConfig, GpuConfig, MemInfo } from './kernel/machine.js';
export { Process, UserApi } from './kernel/process.js';
export { ErrnoError, SegfaultError, KernelBugError, DeadlockError } from './kernel/errors.js';
export type { Finding, FindingKind } from './base/findings.js';
export { formatFinding } from './base/findings.js';
export { ERRNO, errnoName } from './base/errno.js';
export type { Chooser } from './sched/chooser.js';
export type { KGen, Point } from './sched/task.js';
export { SeededChooser, FirstChooser, ScriptedChooser } from './sched/chooser.js';
export { LockdepGraph } from './sched/lockdep.js';
export type { TraceEvent, TraceSink } from './trace/events.js';
export { MemorySink } from './trace/events.js';
export * as trace from './trace/index.js';
export * as uapi from './uapi/index.js';
export * as user from './user/index.js';
// The explorer, for programs of one's own: `explore(scenario, { schedules })`, then `replay`.
export {
  explore,
  replay,
  replayTwice,
  makeStrategy,
  decodeSchedule,
  encodeSchedule,
} from './explore/index.js';
export type {
  Scenario,
  RunContext,
  CoverageGoal,
  ExploreOptions,
  ExploreResult,
  ExploreProgress,
  Failure,
  RunResult,
} from './explore/index.js';
export * as explorer from './explore/index.js';
export * as scenarios from './scenarios/index.js';
