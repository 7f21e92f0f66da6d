/**
 * The typed event stream. Every scheduling point, lock operation, syscall and finding becomes one
 * event; sinks turn the stream into a text timeline, a Chrome trace (Perfetto) or JSON lines.
 */
export type TracePhase =
  /** An instantaneous event (a scheduling point, a wake-up). */
  | 'i'
  /** Begin / end of a span on the task's track (a syscall, a held lock, a notifier callback). */
  | 'B'
  | 'E';

export interface TraceEvent {
  /** Scheduler step (monotonic, one per resumption of a task). */
  step: number;
  /** Virtual time in nanoseconds. */
  time: number;
  taskId: number;
  task: string;
  phase: TracePhase;
  /** What happens: 'lock', 'unlock', 'syscall', 'notifier', 'fault', 'block', 'wake', ... */
  op: string;
  /** What it happens to: a lock name, a syscall name, an address range. */
  resource?: string;
  /** Free-form detail (arguments, return value). */
  detail?: string;
  /** Causality: a 'wake' event and the resumption it causes share a flow id. */
  flow?: number;
}

export interface TraceSink {
  event(e: TraceEvent): void;
}

/** Collects events in memory (tests, replays, exporters). */
export class MemorySink implements TraceSink {
  readonly events: TraceEvent[] = [];
  event(e: TraceEvent): void {
    this.events.push(e);
  }
}
