/**
 * explore/: strategies, schedule strings, replay, shrinking. Generic over scenarios: it boots
 * machines, supplies choosers and reads findings; it knows nothing of GPUs or page tables.
 */
export * from './decisions.js';
export * from './schedule.js';
export * from './scenario.js';
export * from './liveness.js';
export * from './replay.js';
export * from './shrink.js';
export * from './strategy.js';
export * from './random.js';
export * from './pct.js';
export * from './pos.js';
export * from './dfs.js';
export * from './portfolio.js';
export * from './strategies.js';
export * from './lockdep_runs.js';
export * from './explorer.js';
