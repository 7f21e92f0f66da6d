import { describe, expect, it } from 'vitest';
import type { TraceEvent } from './events.js';
import { ChromeSink, formatChromeTrace, toChromeTrace } from './chrome.js';
import type { ChromeTrace, ChromeTraceEvent } from './chrome.js';

function ev(
  step: number,
  taskId: number,
  phase: TraceEvent['phase'],
  op: string,
  rest: Partial<TraceEvent> = {},
) {
  const task = ['?', 'app', 'kworker/0:1', 'gpu-rcs'][taskId] ?? `t${taskId}`;
  return { step, time: step * 1500, taskId, task, phase, op, ...rest } satisfies TraceEvent;
}

const sample: TraceEvent[] = [
  ev(0, 1, 'B', 'syscall', { resource: 'munmap' }),
  ev(1, 1, 'B', 'lock', { resource: 'mmap_sem' }),
  ev(2, 2, 'B', 'lock', { resource: 'struct_mutex' }),
  ev(3, 2, 'i', 'wake', { resource: 'app', flow: 7 }),
  ev(4, 2, 'E', 'unlock', { resource: 'struct_mutex' }),
  ev(5, 1, 'i', 'run', { flow: 7 }),
  ev(6, 3, 'i', 'gpu', { detail: 'seqno 3' }),
  ev(7, 1, 'E', 'unlock', { resource: 'mmap_sem' }),
  ev(8, 1, 'E', 'syscall', { resource: 'munmap', detail: '0' }),
];

/** Checks that B/E nest properly per thread; returns the depth left open per thread. */
function balance(events: ChromeTraceEvent[]): Map<number, number> {
  const stacks = new Map<number, string[]>();
  for (const e of events) {
    const st = stacks.get(e.tid) ?? [];
    stacks.set(e.tid, st);
    if (e.ph === 'B') st.push(e.name);
    if (e.ph === 'E') expect(st.pop()).toBe(e.name);
  }
  return new Map([...stacks].map(([tid, st]) => [tid, st.length]));
}

describe('Chrome trace', () => {
  it('is JSON with traceEvents, thread names and balanced slices', () => {
    const text = formatChromeTrace(sample);
    const parsed = JSON.parse(text) as ChromeTrace;
    expect(parsed).toEqual(toChromeTrace(sample));
    const evs = parsed.traceEvents;
    const names = evs
      .filter((e) => e.ph === 'M' && e.name === 'thread_name')
      .map((e) => [e.tid, e.args?.name]);
    expect(names).toEqual([
      [1, 'app'],
      [2, 'kworker/0:1'],
      [3, 'gpu-rcs'],
    ]);
    expect(evs.some((e) => e.ph === 'M' && e.name === 'process_name')).toBe(true);
    expect(evs.filter((e) => e.ph === 'B')).toHaveLength(3);
    expect(evs.filter((e) => e.ph === 'E')).toHaveLength(3);
    for (const depth of balance(evs).values()) expect(depth).toBe(0);
    expect(parsed.otherData).toMatchObject({ unmatchedEnds: 0, closedSpans: 0 });
  });

  it('converts virtual ns to microseconds and keeps args', () => {
    const { traceEvents } = toChromeTrace(sample);
    const b = traceEvents.find((e) => e.ph === 'B' && e.name === 'lock mmap_sem')!;
    expect(b).toMatchObject({
      ts: 1.5,
      pid: 1,
      tid: 1,
      cat: 'lock',
      args: { step: 1, resource: 'mmap_sem' },
    });
    const end = traceEvents.find((e) => e.ph === 'E' && e.name === 'syscall munmap')!;
    expect(end).toMatchObject({ cat: 'syscall', ts: 12, args: { end_step: 8, end_detail: '0' } });
    const i = traceEvents.find((e) => e.ph === 'i' && e.tid === 3)!;
    expect(i).toMatchObject({ name: 'gpu', s: 't', ts: 9, args: { detail: 'seqno 3' } });
  });

  it('joins events sharing a flow id with s/f flow events', () => {
    const { traceEvents } = toChromeTrace(sample);
    const flows = traceEvents.filter((e) => e.ph === 's' || e.ph === 'f');
    expect(flows).toEqual([
      { name: 'flow', cat: 'flow', ph: 's', id: 7, ts: 4.5, pid: 1, tid: 2 },
      { name: 'flow', cat: 'flow', ph: 'f', bp: 'e', id: 7, ts: 7.5, pid: 1, tid: 1 },
    ]);
  });

  it('leaves out a flow that never ends (a wake whose task never ran again)', () => {
    const sink = new ChromeSink();
    sink.event(ev(0, 1, 'i', 'wake', { flow: 3 }));
    sink.event(ev(1, 1, 'i', 'wake', { flow: 4 }));
    sink.event(ev(2, 2, 'i', 'run', { flow: 4 }));
    const flows = sink.toTrace().traceEvents.filter((e) => e.ph === 's' || e.ph === 'f');
    expect(flows.map((e) => [e.ph, e.id])).toEqual([
      ['s', 4],
      ['f', 4],
    ]);
  });

  it('closes spans left open and drops unmatched ends', () => {
    const sink = new ChromeSink({ pid: 42, processName: 'deadlock' });
    sink.event(ev(0, 1, 'E', 'unlock', { resource: 'x' }));
    sink.event(ev(1, 1, 'B', 'syscall', { resource: 'ioctl' }));
    sink.event(ev(2, 1, 'B', 'lock', { resource: 'struct_mutex' }));
    sink.event(ev(3, 2, 'B', 'lock', { resource: 'mmap_sem' }));
    const t = sink.toTrace();
    expect(t.otherData).toMatchObject({ unmatchedEnds: 1, closedSpans: 3 });
    for (const depth of balance(t.traceEvents).values()) expect(depth).toBe(0);
    const ends = t.traceEvents.filter((e) => e.ph === 'E');
    expect(ends.map((e) => e.name)).toEqual(['lock struct_mutex', 'syscall ioctl', 'lock mmap_sem']);
    expect(ends.every((e) => e.ts === 4.5 && e.args?.unterminated === true && e.pid === 42)).toBe(true);
    expect(t.traceEvents[0]).toMatchObject({ ph: 'M', name: 'process_name', args: { name: 'deadlock' } });
    const open = toChromeTrace([ev(0, 1, 'B', 'lock')], { closeOpenSpans: false });
    expect(open.traceEvents.filter((e) => e.ph === 'E')).toHaveLength(0);
  });

  it('renders an empty stream as valid JSON', () => {
    const t = JSON.parse(formatChromeTrace([])) as ChromeTrace;
    expect(t.traceEvents).toHaveLength(1);
  });
});
