import { describe, expect, it } from 'vitest';
import type { TraceEvent } from './events.js';
import { MemorySink } from './events.js';
import { TextSink, formatEvent, formatTime, formatTimeline, renderSwimLanes } from './text.js';
import { TeeSink } from './tee.js';

/** A munmap racing a GPU blit: three tasks, nested spans, one wake-up flow. */
function sample(): TraceEvent[] {
  const out: TraceEvent[] = [];
  let step = 0;
  const ev = (
    taskId: number,
    task: string,
    phase: TraceEvent['phase'],
    op: string,
    rest: Partial<TraceEvent> = {},
  ) => out.push({ step: step++, time: step * 250, taskId, task, phase, op, ...rest });
  ev(1, 'app', 'B', 'syscall', { resource: 'munmap', detail: 'addr=0x10000 len=0x1000' });
  ev(1, 'app', 'B', 'lock', { resource: 'mmap_sem' });
  ev(3, 'gpu-rcs', 'B', 'gpu', { resource: 'blit', detail: '4096 bytes' });
  ev(1, 'app', 'i', 'notifier', { resource: 'invalidate_range_start' });
  ev(1, 'app', 'i', 'block', { resource: 'struct_mutex' });
  ev(2, 'kworker/0:1', 'B', 'lock', { resource: 'struct_mutex' });
  ev(2, 'kworker/0:1', 'E', 'unlock', { resource: 'struct_mutex' });
  ev(2, 'kworker/0:1', 'i', 'wake', { resource: 'app', flow: 1 });
  ev(1, 'app', 'i', 'run', { flow: 1 });
  ev(3, 'gpu-rcs', 'E', 'gpu', { resource: 'blit' });
  ev(1, 'app', 'E', 'unlock', { resource: 'mmap_sem' });
  ev(1, 'app', 'E', 'syscall', { resource: 'munmap', detail: '0' });
  return out;
}

describe('text timeline', () => {
  it('formats time as exact microseconds', () => {
    expect(formatTime(0)).toBe('0.000us');
    expect(formatTime(1234567)).toBe('1234.567us');
  });

  it('writes one line per event with step, time, task, op, resource and detail', () => {
    const events = sample();
    const text = formatTimeline(events);
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(events.length);
    expect(lines[0]).toMatch(/^\s+0\s+0\.250us\s+app#1\s+> syscall munmap: addr=0x10000 len=0x1000$/);
    expect(lines[7]).toContain('kworker/0:1#2');
    expect(lines[7]).toContain('* wake app [flow 1]');
    // Nesting: the lock taken inside the syscall is indented, the closing syscall is not.
    expect(lines[1]).toContain('app#1                > lock mmap_sem');
    expect(lines[11]).toMatch(/app#1\s+< syscall munmap: 0$/);
    expect(formatEvent(events[0]!)).toBe(lines[0]);
  });

  it('is a sink usable alongside others', () => {
    const mem = new MemorySink();
    const text = new TextSink({ indent: false });
    const tee = new TeeSink(mem, text);
    for (const e of sample()) tee.event(e);
    expect(mem.events).toHaveLength(12);
    expect(text.lines).toHaveLength(12);
    expect(text.toString().endsWith('\n')).toBe(true);
    expect(new TextSink().toString()).toBe('');
  });
});

describe('swim lanes', () => {
  it('puts each task in its own column, one row per event', () => {
    const events = sample();
    const out = renderSwimLanes(events, { columnWidth: 30 });
    const lines = out.trimEnd().split('\n');
    expect(lines).toHaveLength(2 + events.length);
    const header = lines[0]!;
    const gutter = header.indexOf('app#1');
    expect(gutter).toBeGreaterThan(0);
    expect(header.indexOf('kworker/0:1#2')).toBe(gutter + 30);
    expect(header.indexOf('gpu-rcs#3')).toBe(gutter + 60);
    // Each event lands in its task's column.
    events.forEach((e, i) => {
      const row = lines[2 + i]!;
      const col = e.taskId - 1;
      const cell = row.slice(gutter + col * 30, gutter + (col + 1) * 30);
      expect(cell.trimEnd()).toMatch(/^[<>*] /);
      expect(cell).toContain(e.op);
    });
    // While app holds spans, its column shows a bar on other tasks' rows.
    expect(lines[2 + 5]!.slice(gutter, gutter + 30).trim()).toBe('|');
    // After the GPU span closes, its column is empty on later rows.
    expect(lines[2 + 10]!.length).toBeLessThanOrEqual(gutter + 30);
  });

  it('fits the requested width and cuts long cells', () => {
    const events = sample();
    const out = renderSwimLanes(events, { width: 80 });
    for (const line of out.trimEnd().split('\n')) expect(line.length).toBeLessThanOrEqual(80);
    expect(out).toContain('…');
    expect(renderSwimLanes([])).toContain('step');
  });
});
