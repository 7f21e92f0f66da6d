/**
 * Chrome trace event format (the JSON that chrome://tracing and ui.perfetto.dev load): one process,
 * one thread per task. Spans become 'B'/'E' slices, instants 'i' events, and events that share a
 * `flow` id are joined by a flow arrow ('s' at the first, 'f' at each later one). Timestamps are
 * microseconds of virtual time (`time / 1000`). Pure string building: writing is the CLI's job.
 */
import type { TraceEvent, TraceSink } from './events.js';

/** One entry of `traceEvents` (the subset of the format this exporter writes). */
export interface ChromeTraceEvent {
  name: string;
  ph: 'B' | 'E' | 'i' | 'M' | 's' | 'f';
  pid: number;
  tid: number;
  ts?: number;
  cat?: string;
  /** Instant scope: 't' = thread. */
  s?: 't';
  /** Flow id. */
  id?: number;
  /** Flow binding point: 'e' = the enclosing slice. */
  bp?: 'e';
  args?: Record<string, string | number | boolean>;
}

export interface ChromeTrace {
  traceEvents: ChromeTraceEvent[];
  displayTimeUnit: 'ns';
  otherData: { generator: string; unmatchedEnds: number; closedSpans: number };
}

export interface ChromeTraceOptions {
  /**
   * Process id to file the kernel's tasks under (default 1). A simulated process's tasks (named
   * `pid<N>` or `pid<N>/<thread>`) go under pid N, named `pid<N>`.
   */
  pid?: number;
  /** Name of that process (default 'userptr'). */
  processName?: string;
  /**
   * Close spans still open at the end (a task blocked forever by a deadlock, a run cut short) at
   * the last timestamp, with `args.unterminated = true`, so the output is balanced (default true).
   */
  closeOpenSpans?: boolean;
}

/** Incremental converter: feed events, then `toTrace()` / `toString()`. */
export class ChromeSink implements TraceSink {
  private readonly pid: number;
  private readonly processName: string;
  private readonly closeOpenSpans: boolean;
  private readonly body: ChromeTraceEvent[] = [];
  /** Task id → name and the process it is filed under, in order of first appearance. */
  private readonly threads = new Map<number, { name: string; pid: number }>();
  /** Per task, its open 'B' slices (innermost last). */
  private readonly stacks = new Map<number, { name: string; cat: string }[]>();
  private readonly flowsSeen = new Set<number>();
  /** Flows whose end was seen: an arrow from a wake whose task never ran again is left out. */
  private readonly flowsEnded = new Set<number>();
  private lastTs = 0;
  private unmatchedEnds = 0;

  constructor(options: ChromeTraceOptions = {}) {
    this.pid = options.pid ?? 1;
    this.processName = options.processName ?? 'userptr';
    this.closeOpenSpans = options.closeOpenSpans ?? true;
  }

  /** The trace process of a task: its simulated process's pid, or the kernel's. */
  private pidOf(task: string): number {
    const m = /^pid(\d+)(?:\/|$)/.exec(task);
    return m ? Number(m[1]) : this.pid;
  }

  event(e: TraceEvent): void {
    const tid = e.taskId;
    let thread = this.threads.get(tid);
    if (!thread) this.threads.set(tid, (thread = { name: e.task, pid: this.pidOf(e.task) }));
    const { pid } = thread;
    const ts = e.time / 1000;
    if (ts > this.lastTs) this.lastTs = ts;
    const name = e.resource !== undefined && e.resource !== '' ? `${e.op} ${e.resource}` : e.op;
    // Viewers merge an 'E' event's args into its slice's: keep the end's keys distinct.
    const args: Record<string, string | number> =
      e.phase === 'E'
        ? { end_step: e.step }
        : { step: e.step, ...(e.resource !== undefined && { resource: e.resource }) };
    if (e.detail !== undefined) args[e.phase === 'E' ? 'end_detail' : 'detail'] = e.detail;

    let stack = this.stacks.get(tid);
    if (stack === undefined) {
      stack = [];
      this.stacks.set(tid, stack);
    }
    if (e.phase === 'B') {
      stack.push({ name, cat: e.op });
      this.body.push({ name, cat: e.op, ph: 'B', ts, pid, tid, args });
    } else if (e.phase === 'E') {
      if (stack.length === 0) {
        // An end without a begin (trace started mid-span): viewers would mis-nest it.
        this.unmatchedEnds++;
      } else {
        const begun = stack.pop()!;
        this.body.push({ name: begun.name, cat: begun.cat, ph: 'E', ts, pid, tid, args });
      }
    } else {
      this.body.push({ name, cat: e.op, ph: 'i', s: 't', ts, pid, tid, args });
    }

    if (e.flow !== undefined) {
      const first = !this.flowsSeen.has(e.flow);
      this.flowsSeen.add(e.flow);
      if (!first) this.flowsEnded.add(e.flow);
      this.body.push(
        first
          ? { name: 'flow', cat: 'flow', ph: 's', id: e.flow, ts, pid, tid }
          : { name: 'flow', cat: 'flow', ph: 'f', bp: 'e', id: e.flow, ts, pid, tid },
      );
    }
  }

  /** The trace object: metadata first, then the events in stream order. */
  toTrace(): ChromeTrace {
    const meta: ChromeTraceEvent[] = [
      { name: 'process_name', ph: 'M', pid: this.pid, tid: 0, args: { name: this.processName } },
    ];
    const pids = new Set([this.pid]);
    for (const { pid } of this.threads.values()) {
      if (pids.has(pid)) continue;
      pids.add(pid);
      meta.push({ name: 'process_name', ph: 'M', pid, tid: 0, args: { name: `pid${pid}` } });
    }
    // Tasks may share a name (each sync-facade call of a process is a task named after it):
    // a track's name then carries its task id, so every track can be told apart.
    const uses = new Map<string, number>();
    for (const { name } of this.threads.values()) uses.set(name, (uses.get(name) ?? 0) + 1);
    for (const [tid, { name: task, pid }] of this.threads) {
      const name = uses.get(task)! > 1 ? `${task} (task ${tid})` : task;
      meta.push({ name: 'thread_name', ph: 'M', pid, tid, args: { name } });
      meta.push({ name: 'thread_sort_index', ph: 'M', pid, tid, args: { sort_index: tid } });
    }
    const closing: ChromeTraceEvent[] = [];
    let closedSpans = 0;
    if (this.closeOpenSpans) {
      for (const [tid, stack] of this.stacks) {
        for (let i = stack.length - 1; i >= 0; i--) {
          closing.push({
            name: stack[i]!.name,
            cat: stack[i]!.cat,
            ph: 'E',
            ts: this.lastTs,
            pid: this.threads.get(tid)!.pid,
            tid,
            args: { unterminated: true },
          });
          closedSpans++;
        }
      }
    }
    const body = this.body.filter((e) => e.ph !== 's' || this.flowsEnded.has(e.id!));
    return {
      traceEvents: [...meta, ...body, ...closing],
      displayTimeUnit: 'ns',
      otherData: { generator: 'userptr', unmatchedEnds: this.unmatchedEnds, closedSpans },
    };
  }

  /** The JSON text, one trace event per line (diffable), newline-terminated. */
  toString(): string {
    const t = this.toTrace();
    const lines = t.traceEvents.map((e) => JSON.stringify(e));
    return (
      `{"traceEvents":[\n${lines.join(',\n')}\n],` +
      `"displayTimeUnit":${JSON.stringify(t.displayTimeUnit)},"otherData":${JSON.stringify(t.otherData)}}\n`
    );
  }
}

/** Converts a list of events to a Chrome trace object. */
export function toChromeTrace(events: Iterable<TraceEvent>, options: ChromeTraceOptions = {}): ChromeTrace {
  const sink = new ChromeSink(options);
  for (const e of events) sink.event(e);
  return sink.toTrace();
}

/** Converts a list of events to Chrome trace JSON text (loadable by ui.perfetto.dev). */
export function formatChromeTrace(events: Iterable<TraceEvent>, options: ChromeTraceOptions = {}): string {
  const sink = new ChromeSink(options);
  for (const e of events) sink.event(e);
  return sink.toString();
}
