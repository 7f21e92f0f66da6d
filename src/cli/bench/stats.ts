/**
 * Timing helpers for the benchmarks: a monotonic clock, medians, and a figure as it is written to
 * bench-results.json.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

/** One line of bench-results.json (CONTRACT.md "Benchmarks"). */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  target?: string;
}

/** A figure plus what the table shows beside it (not written to the JSON file). */
export interface Measured extends Figure {
  /** Spread of the repetitions, in the figure's unit, when the value is a median. */
  min?: number;
  max?: number;
  reps?: number;
  /** Whether `target` holds, when there is one. */
  ok?: boolean;
  note?: string;
}

/** Milliseconds from a monotonic clock, sub-microsecond resolution. */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Milliseconds `fn` takes, once. */
export function timeMs(fn: () => void): number {
  const t0 = nowMs();
  fn();
  return nowMs() - t0;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('median of nothing');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** A median figure over per-repetition values, keeping the spread for the table. */
export function medianFigure(
  name: string,
  unit: string,
  samples: readonly number[],
  note?: string,
): Measured {
  return {
    name,
    value: median(samples),
    unit,
    min: Math.min(...samples),
    max: Math.max(...samples),
    reps: samples.length,
    ...(note !== undefined ? { note } : {}),
  };
}

let gcFn: (() => void) | null | undefined;

/**
 * Runs a full GC between figures, so one figure's garbage is not billed to the next. Works without
 * --expose-gc: the flag is switched on at run time and `gc` taken from a fresh context.
 */
export function collectGarbage(): void {
  if (gcFn === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      const f: unknown = vm.runInNewContext('gc');
      gcFn = typeof f === 'function' ? (f as () => void) : null;
    } catch {
      gcFn = null;
    }
  }
  gcFn?.();
}

/**
 * Whether `value` meets a target written as "<op> <number>" (">= 0.8", "<= 2", "> 5000"); an
 * unreadable target is reported as not met.
 */
export function meetsTarget(value: number, target: string): boolean {
  const m = /^\s*(>=|<=|>|<)\s*(-?[\d.]+(?:e[+-]?\d+)?)\s*$/i.exec(target);
  if (!m) return false;
  const bound = Number(m[2]);
  switch (m[1]) {
    case '>=':
      return value >= bound;
    case '<=':
      return value <= bound;
    case '>':
      return value > bound;
    default:
      return value < bound;
  }
}
