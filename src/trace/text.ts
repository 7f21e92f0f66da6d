/**
 * Text renderings of the event stream: a timeline (one line per event) and swim lanes (one column
 * per task, so an interleaving reads top to bottom). Pure string building: writing is the CLI's job.
 */
import type { TraceEvent, TraceSink } from './events.js';

/** Virtual nanoseconds as microseconds with three decimals (exact for integer ns): `12.345us`. */
export function formatTime(ns: number): string {
  return `${(ns / 1000).toFixed(3)}us`;
}

/** `name#id`, the way a task is named in every text rendering. */
export function taskLabel(e: Pick<TraceEvent, 'task' | 'taskId'>): string {
  return `${e.task}#${e.taskId}`;
}

/** One-character phase mark: `>` begin, `<` end, `*` instant. */
export function phaseMark(phase: TraceEvent['phase']): string {
  return phase === 'B' ? '>' : phase === 'E' ? '<' : '*';
}

/** `op resource: detail [flow N]`, without step, time or task. */
export function describeEvent(e: TraceEvent): string {
  let s = e.op;
  if (e.resource !== undefined && e.resource !== '') s += ` ${e.resource}`;
  if (e.detail !== undefined && e.detail !== '') s += `: ${e.detail}`;
  if (e.flow !== undefined) s += ` [flow ${e.flow}]`;
  return s;
}

export interface TimelineOptions {
  /** Indent each event by the number of spans open on its task (default true). */
  indent?: boolean;
}

/**
 * One timeline line: step, virtual time, task, phase mark, op, resource, detail. `depth` indents the
 * description (the number of spans open on the task).
 */
export function formatEvent(e: TraceEvent, depth = 0): string {
  const step = String(e.step).padStart(6);
  const time = formatTime(e.time).padStart(14);
  const task = taskLabel(e).padEnd(18);
  return `${step} ${time}  ${task} ${'  '.repeat(depth)}${phaseMark(e.phase)} ${describeEvent(e)}`;
}

/** Text timeline sink: keeps one formatted line per event, nested spans indented per task. */
export class TextSink implements TraceSink {
  readonly lines: string[] = [];
  private readonly depth = new Map<number, number>();
  private readonly indent: boolean;

  constructor(options: TimelineOptions = {}) {
    this.indent = options.indent ?? true;
  }

  event(e: TraceEvent): void {
    let d = this.depth.get(e.taskId) ?? 0;
    if (e.phase === 'E' && d > 0) d--;
    this.lines.push(formatEvent(e, this.indent ? d : 0));
    if (e.phase === 'B') d++;
    this.depth.set(e.taskId, d);
  }

  /** The whole timeline, newline-terminated (empty string for no events). */
  toString(): string {
    return this.lines.length === 0 ? '' : this.lines.join('\n') + '\n';
  }
}

/** The text timeline of a list of events. */
export function formatTimeline(events: Iterable<TraceEvent>, options: TimelineOptions = {}): string {
  const sink = new TextSink(options);
  for (const e of events) sink.event(e);
  return sink.toString();
}

export interface SwimLaneOptions {
  /** Total line width to fit the columns into (default 120); ignored if `columnWidth` is given. */
  width?: number;
  /** Width of each task column in characters (at least 8). */
  columnWidth?: number;
}

/**
 * Renders events as swim lanes: a gutter with step and virtual time, then one column per task
 * (ordered by task id), one row per event, the event written in its task's column. A `|` in a
 * column marks a task that has a span open (holding a lock, inside a syscall) while others run.
 * Cells too long for the column are cut with `…`.
 */
export function renderSwimLanes(events: Iterable<TraceEvent>, options: SwimLaneOptions = {}): string {
  const list = [...events];
  const names = new Map<number, string>();
  for (const e of list) if (!names.has(e.taskId)) names.set(e.taskId, taskLabel(e));
  const ids = [...names.keys()].sort((a, b) => a - b);
  const column = new Map<number, number>(ids.map((id, i) => [id, i]));

  const stepWidth = Math.max(4, ...list.map((e) => String(e.step).length));
  const timeWidth = Math.max(4, ...list.map((e) => formatTime(e.time).length));
  const gutterWidth = stepWidth + 1 + timeWidth + 1;
  const width = options.width ?? 120;
  const colWidth = Math.max(
    8,
    Math.floor(options.columnWidth ?? (ids.length === 0 ? width : (width - gutterWidth) / ids.length)),
  );

  const fit = (s: string): string => {
    const room = colWidth - 1; // keep one space between columns
    return (s.length > room ? s.slice(0, room - 1) + '…' : s).padEnd(colWidth);
  };
  const line = (gutter: string, cells: string[]): string => (gutter + cells.join('')).trimEnd();

  const out: string[] = [];
  out.push(
    line(
      'step'.padStart(stepWidth) + ' ' + 'time'.padStart(timeWidth) + ' ',
      ids.map((id) => fit(names.get(id)!)),
    ),
  );
  out.push(
    line(
      '-'.repeat(gutterWidth - 1) + ' ',
      ids.map(() => fit('-'.repeat(colWidth - 1))),
    ),
  );

  const open = new Array<number>(ids.length).fill(0);
  for (const e of list) {
    const col = column.get(e.taskId)!;
    if (e.phase === 'E' && open[col]! > 0) open[col]!--;
    const cells = ids.map((_, i) =>
      i === col ? fit(`${phaseMark(e.phase)} ${describeEvent(e)}`) : fit(open[i]! > 0 ? '|' : ''),
    );
    if (e.phase === 'B') open[col]!++;
    out.push(
      line(String(e.step).padStart(stepWidth) + ' ' + formatTime(e.time).padStart(timeWidth) + ' ', cells),
    );
  }
  return out.join('\n') + '\n';
}
