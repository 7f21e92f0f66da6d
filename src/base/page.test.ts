import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hex } from './page.js';

describe('hex', () => {
  it('formats like toString(16), cached or not, past the cache size', () => {
    fc.assert(
      fc.property(fc.oneof(fc.maxSafeInteger(), fc.integer({ min: -5, max: 5000 })), (n) => {
        const want = '0x' + n.toString(16);
        expect(hex(n)).toBe(want);
        expect(hex(n)).toBe(want);
      }),
      { numRuns: 10_000 },
    );
    expect([hex(255, 4), hex(0x1234n), hex(-0), hex(Number.NaN)]).toEqual([
      '0x00ff',
      '0x1234',
      '0x0',
      '0xNaN',
    ]);
  });
});
