/**
 * JSON lines: one event per line, keys in a fixed order, absent optional fields omitted, so the
 * same run gives the same bytes (diffable, greppable, `jq`-able). `parseJsonl` reads it back.
 */
import type { TraceEvent, TracePhase, TraceSink } from './events.js';

/** One event as a JSON object on one line (no trailing newline), keys in declaration order. */
export function formatJsonLine(e: TraceEvent): string {
  const o: TraceEvent = {
    step: e.step,
    time: e.time,
    taskId: e.taskId,
    task: e.task,
    phase: e.phase,
    op: e.op,
  };
  if (e.resource !== undefined) o.resource = e.resource;
  if (e.detail !== undefined) o.detail = e.detail;
  if (e.flow !== undefined) o.flow = e.flow;
  return JSON.stringify(o);
}

/** JSON-lines sink: keeps one line per event. */
export class JsonlSink implements TraceSink {
  readonly lines: string[] = [];

  event(e: TraceEvent): void {
    this.lines.push(formatJsonLine(e));
  }

  /** All lines, each newline-terminated (empty string for no events). */
  toString(): string {
    return this.lines.length === 0 ? '' : this.lines.join('\n') + '\n';
  }
}

/** The JSON-lines text of a list of events. */
export function toJsonl(events: Iterable<TraceEvent>): string {
  const sink = new JsonlSink();
  for (const e of events) sink.event(e);
  return sink.toString();
}

const PHASES: readonly TracePhase[] = ['i', 'B', 'E'];

/** Parses JSON-lines text back into events (blank lines skipped). Throws SyntaxError naming the line. */
export function parseJsonl(text: string): TraceEvent[] {
  const out: TraceEvent[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const fail = (why: string): never => {
      throw new SyntaxError(`trace JSONL line ${i + 1}: ${why}`);
    };
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (err) {
      return fail(err instanceof Error ? err.message : 'bad JSON');
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail('not an object');
    const o = v as Record<string, unknown>;
    const num = (k: string): number => {
      const x = o[k];
      return typeof x === 'number' && Number.isFinite(x) ? x : fail(`'${k}' is not a number`);
    };
    const str = (k: string): string => {
      const x = o[k];
      return typeof x === 'string' ? x : fail(`'${k}' is not a string`);
    };
    const phase = o.phase;
    if (!PHASES.includes(phase as TracePhase)) fail(`bad phase ${JSON.stringify(phase)}`);
    const e: TraceEvent = {
      step: num('step'),
      time: num('time'),
      taskId: num('taskId'),
      task: str('task'),
      phase: phase as TracePhase,
      op: str('op'),
    };
    if (o.resource !== undefined) e.resource = str('resource');
    if (o.detail !== undefined) e.detail = str('detail');
    if (o.flow !== undefined) e.flow = num('flow');
    out.push(e);
  }
  return out;
}
