import type { TraceEvent, TraceSink } from './events.js';

/** Fans one event stream out to several sinks, in order (e.g. a MemorySink and a TextSink). */
export class TeeSink implements TraceSink {
  readonly sinks: readonly TraceSink[];

  constructor(...sinks: TraceSink[]) {
    this.sinks = sinks;
  }

  event(e: TraceEvent): void {
    for (const s of this.sinks) s.event(e);
  }
}
