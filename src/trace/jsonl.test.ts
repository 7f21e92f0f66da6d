import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { TraceEvent } from './events.js';
import { JsonlSink, formatJsonLine, parseJsonl, toJsonl } from './jsonl.js';

const event: fc.Arbitrary<TraceEvent> = fc.record(
  {
    step: fc.nat(),
    time: fc.nat(),
    taskId: fc.nat(100),
    task: fc.string(),
    phase: fc.constantFrom('i' as const, 'B' as const, 'E' as const),
    op: fc.string({ minLength: 1 }),
    resource: fc.string(),
    detail: fc.string(),
    flow: fc.nat(),
  },
  { requiredKeys: ['step', 'time', 'taskId', 'task', 'phase', 'op'] },
);

describe('JSON lines', () => {
  it('writes one line per event with a fixed key order', () => {
    const e: TraceEvent = {
      op: 'lock',
      phase: 'B',
      task: 'app',
      taskId: 1,
      time: 10,
      step: 3,
      resource: 'mmap_sem',
    };
    expect(formatJsonLine(e)).toBe(
      '{"step":3,"time":10,"taskId":1,"task":"app","phase":"B","op":"lock","resource":"mmap_sem"}',
    );
    const sink = new JsonlSink();
    sink.event(e);
    sink.event({ ...e, phase: 'E', op: 'unlock', detail: 'a\nb', flow: 2 });
    const text = sink.toString();
    expect(text.split('\n')).toHaveLength(3);
    expect(text.endsWith('\n')).toBe(true);
    expect(new JsonlSink().toString()).toBe('');
  });

  it('round-trips through parseJsonl', () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 20 }), (events) => {
        const text = toJsonl(events);
        expect(text.split('\n').length).toBe(events.length + 1);
        expect(parseJsonl(text)).toEqual(events);
      }),
    );
  });

  it('rejects malformed lines, naming the line', () => {
    expect(() => parseJsonl('\n{"step":1}\n')).toThrow(/line 2/);
    expect(() => parseJsonl('not json')).toThrow(SyntaxError);
    expect(() => parseJsonl('[1]')).toThrow(/not an object/);
    const ok = '{"step":0,"time":0,"taskId":1,"task":"t","phase":"i","op":"x"}';
    expect(parseJsonl(ok + '\n\n' + ok)).toHaveLength(2);
    expect(() => parseJsonl(ok.replace('"i"', '"X"'))).toThrow(/bad phase/);
    expect(() => parseJsonl(ok.replace('"step":0', '"step":"0"'))).toThrow(/'step'/);
  });
});
