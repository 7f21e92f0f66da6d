import { describe, expect, it } from 'vitest';
import { Faults, attachFaults, knownFaults, registerFault, should_fail } from './faults.js';

registerFault({ id: 'test_point', description: 'a fault point of this test' });

describe('fault points', () => {
  it('refuses unknown ids and registering twice', () => {
    expect(() => new Faults(['no_such_point'])).toThrow(/unknown fault point 'no_such_point'/);
    expect(() => registerFault({ id: 'test_point', description: '' })).toThrow(/registered twice/);
    expect(knownFaults().map((f) => f.id)).toContain('test_point');
  });

  it('a disabled point draws nothing; an enabled one asks pick(2, id) on every call', () => {
    const asked: string[] = [];
    const answers = [1, 0, 1];
    const pick = (n: number, what: string): number => {
      asked.push(`${what}/${n}`);
      return answers.shift() ?? 0;
    };
    const off = new Faults([], pick);
    expect(off.should_fail('test_point')).toBe(false);
    expect(asked).toEqual([]);
    const on = new Faults(['test_point'], pick);
    expect([
      on.should_fail('test_point'),
      on.should_fail('test_point'),
      on.should_fail('test_point'),
    ]).toEqual([true, false, true]);
    expect(asked).toEqual(['test_point/2', 'test_point/2', 'test_point/2']);
    expect(on.drawn.get('test_point')).toBe(3);
    expect(on.injected.get('test_point')).toBe(2);
    expect(() => on.should_fail('unregistered')).toThrow(/never registered/);
  });

  it('should_fail() finds the faults of the calling kernel; a bare kernel never fails', () => {
    const k1 = {};
    const k2 = {};
    attachFaults(k1, new Faults(['test_point'], () => 1));
    expect(should_fail(k1, 'test_point')).toBe(true);
    expect(should_fail(k2, 'test_point')).toBe(false);
  });
});
