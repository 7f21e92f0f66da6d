/** The human-readable table and bench-results.json. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Figure, Measured } from './stats.js';

/** Three significant digits, without exponent notation for ordinary magnitudes. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toPrecision(3);
}

export function formatTable(rows: readonly Measured[]): string {
  const header = ['figure', 'median', 'unit', 'min .. max', 'reps', 'target', 'note'];
  const body = rows.map((r) => [
    r.name,
    fmt(r.value),
    r.unit,
    r.min !== undefined && r.max !== undefined ? `${fmt(r.min)} .. ${fmt(r.max)}` : '',
    r.reps !== undefined ? String(r.reps) : '',
    r.target !== undefined ? `${r.target} ${r.ok === false ? 'MISSED' : 'ok'}` : '',
    r.note ?? '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === 1 || i === 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

/** Writes bench-results.json in `dir` with exactly the contract's fields; returns its path. */
export function writeResults(rows: readonly Measured[], dir: string): string {
  const out: Figure[] = rows.map((r) => ({
    name: r.name,
    value: Number(r.value.toPrecision(6)),
    unit: r.unit,
    ...(r.target !== undefined ? { target: r.target } : {}),
  }));
  const path = join(dir, 'bench-results.json');
  writeFileSync(path, JSON.stringify(out, null, 2) + '\n');
  return path;
}
