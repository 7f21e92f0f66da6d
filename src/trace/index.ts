/** The trace layer: the typed event stream and its sinks. */
export * from './events.js';
export * from './text.js';
export * from './chrome.js';
export * from './jsonl.js';
export * from './tee.js';
