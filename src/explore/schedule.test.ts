import { describe, expect, it } from 'vitest';
import { Prng } from '../base/prng.js';
import {
  MAX_OPTIONS,
  ScheduleFormatError,
  decisionCode,
  decodeDecision,
  decodeSchedule,
  encodeSchedule,
  replayCommand,
} from './schedule.js';

const SEED = Number(process.env.SEED ?? 7);

describe(`schedule strings (seed ${SEED})`, () => {
  it('decision codes are a bijection between (n ≥ 2, d < n) and the naturals', () => {
    let next = 0;
    for (let n = 2; n <= 40; n++) {
      for (let d = 0; d < n; d++) {
        expect(decisionCode(n, d)).toBe(next++);
        expect(decodeDecision(decisionCode(n, d))).toEqual([n, d]);
      }
    }
    // Up to 15 options a decision is one varint byte.
    expect(decisionCode(15, 14)).toBeLessThan(128);
    expect(decodeDecision(decisionCode(MAX_OPTIONS, MAX_OPTIONS - 1))).toEqual([
      MAX_OPTIONS,
      MAX_OPTIONS - 1,
    ]);
    expect(() => decisionCode(1, 0)).toThrow(RangeError);
    expect(() => decisionCode(3, 3)).toThrow(RangeError);
    expect(() => decisionCode(MAX_OPTIONS + 1, 0)).toThrow(RangeError);
  });

  it('round-trips random schedules (trailing defaults are dropped)', () => {
    const rng = new Prng(SEED);
    for (let k = 0; k < 300; k++) {
      const len = rng.below(200);
      const counts: number[] = [];
      const decisions: number[] = [];
      for (let i = 0; i < len; i++) {
        const big = rng.below(10) === 0;
        const n = 2 + (big ? rng.below(5000) : rng.below(6));
        counts.push(n);
        decisions.push(rng.below(3) === 0 ? rng.below(n) : 0);
      }
      const text = encodeSchedule({ scenario: 'a-b_c.d/e', configHash: '0123abcd', decisions, counts });
      expect(text).toMatch(/^up1:a-b_c\.d\/e:0123abcd:[A-Za-z0-9_-]*$/);
      const back = decodeSchedule(text);
      let keep = decisions.length;
      while (keep > 0 && decisions[keep - 1] === 0) keep--;
      expect(back).toEqual({
        scenario: 'a-b_c.d/e',
        configHash: '0123abcd',
        decisions: decisions.slice(0, keep),
        counts: counts.slice(0, keep),
      });
    }
  });

  it('is compact: one byte per decision among few tasks', () => {
    const decisions = Array.from({ length: 300 }, (_, i) => (i % 7 === 0 ? 1 : 0));
    const counts = decisions.map(() => 3);
    const text = encodeSchedule({ scenario: 's', configHash: '00000000', decisions, counts });
    const data = text.split(':')[3]!;
    expect(data.length).toBe(Math.ceil((295 * 4) / 3)); // 295 bytes after trimming, base64
  });

  it('rejects what it cannot read, saying why', () => {
    const bad: [string, RegExp][] = [
      ['', /not a schedule string/],
      ['hello', /not a schedule string/],
      ['up2:s:00000000:', /format 'up2' is not supported/],
      ['up1:s:00000000', /4 ':'-separated parts/],
      ['up1:s:00000000:AA:x', /4 ':'-separated parts/],
      ['up1:s p:00000000:', /bad scenario name/],
      ['up1:s:0000000g:', /bad config hash/],
      ['up1:s:00000000:A', /length/],
      ['up1:s:00000000:AB', /padding bits/],
      ['up1:s:00000000:A*', /not base64url/],
      ['up1:s:00000000:gA', /end inside a varint/],
    ];
    for (const [text, why] of bad) {
      expect(() => decodeSchedule(text), text).toThrow(ScheduleFormatError);
      expect(() => decodeSchedule(text), text).toThrow(why);
    }
    expect(() =>
      encodeSchedule({ scenario: 'a:b', configHash: '00000000', decisions: [], counts: [] }),
    ).toThrow(/cannot appear/);
    expect(() => encodeSchedule({ scenario: 'a', configHash: 'xyz', decisions: [], counts: [] })).toThrow(
      /hex/,
    );
  });

  it('prints a ready replay command', () => {
    expect(replayCommand('up1:s:00000000:AQ')).toBe(`userptr replay 'up1:s:00000000:AQ'`);
    expect(replayCommand(['up1:s:00000000:', 'up1:s:00000000:AQ'])).toBe(
      `userptr replay 'up1:s:00000000:' 'up1:s:00000000:AQ'`,
    );
  });
});
