import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Prng, hashString } from './prng.js';

const take = (p: Prng, n: number): number[] => Array.from({ length: n }, () => p.nextU32());

describe('Prng', () => {
  it('golden: the first outputs never change (replay strings depend on them)', () => {
    // Cross-checked against an independent xoshiro128** / splitmix32 implementation.
    expect(take(new Prng(1), 8)).toEqual([
      0x9190299e, 0xc1017b27, 0xe3af522f, 0x7d71fb05, 0x787816c2, 0xfbbe0c00, 0x5a5c175a, 0x89063de1,
    ]);
    expect(take(new Prng('userptr'), 4)).toEqual([0x0ead3c8b, 0x92e54781, 0xaed62d33, 0x40c7970d]);
    expect(hashString('')).toBe(0x811c9dc5);
  });

  it('is deterministic for the same seed', () => {
    fc.assert(
      fc.property(fc.oneof(fc.nat(), fc.string()), (seed) => {
        expect(take(new Prng(seed), 32)).toEqual(take(new Prng(seed), 32));
      }),
    );
  });

  it('gives different streams for different seeds', () => {
    const seen = new Set<string>();
    for (let seed = 0; seed < 1000; seed++) seen.add(take(new Prng(seed), 4).join(','));
    expect(seen.size).toBe(1000);
    expect(take(new Prng('a'), 4)).not.toEqual(take(new Prng('b'), 4));
  });

  it('returns unsigned 32-bit integers', () => {
    const p = new Prng(7);
    for (let i = 0; i < 10_000; i++) {
      const x = p.nextU32();
      expect(Number.isInteger(x) && x >= 0 && x < 2 ** 32).toBe(true);
    }
  });

  it('below(n) stays in range, including the edges', () => {
    const p = new Prng(3);
    for (const n of [1, 2, 3, 7, 1000, 2 ** 31 + 1, 2 ** 32 - 1, 2 ** 32]) {
      for (let i = 0; i < 1000; i++) {
        const x = p.below(n);
        expect(Number.isInteger(x) && x >= 0 && x < n).toBe(true);
      }
    }
    expect(p.below(1)).toBe(0);
    for (const bad of [0, -1, 1.5, 2 ** 32 + 1, NaN, Infinity])
      expect(() => p.below(bad)).toThrow(RangeError);
  });

  it('below(n) is roughly uniform (chi-square, loose bound)', () => {
    for (const n of [2, 10, 37]) {
      const p = new Prng(42 + n);
      const samples = 2000 * n;
      const counts = new Array<number>(n).fill(0);
      for (let i = 0; i < samples; i++) counts[p.below(n)]!++;
      const expected = samples / n;
      const chi2 = counts.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
      // df = n - 1; mean df, sd sqrt(2 df): allow a very generous 6 sd above the mean.
      expect(chi2).toBeLessThan(n - 1 + 6 * Math.sqrt(2 * (n - 1)));
    }
  });

  it('float() is in [0, 1) with a mean near 1/2', () => {
    const p = new Prng(9);
    let sum = 0;
    for (let i = 0; i < 20_000; i++) {
      const f = p.float();
      expect(f >= 0 && f < 1).toBe(true);
      sum += f;
    }
    expect(Math.abs(sum / 20_000 - 0.5)).toBeLessThan(0.02);
  });

  it('fill() writes the same bytes as nextU32 (little-endian), tail included', () => {
    for (const len of [0, 1, 3, 4, 5, 8, 13]) {
      const out = new Uint8Array(len);
      new Prng(5).fill(out);
      const words = take(new Prng(5), Math.ceil(len / 4));
      const expected = new Uint8Array(len);
      for (let i = 0; i < len; i++) expected[i] = (words[Math.floor(i / 4)]! >>> (8 * (i % 4))) & 0xff;
      expect([...out]).toEqual([...expected]);
    }
    // Byte histogram of a large fill is roughly flat.
    const big = new Uint8Array(256 * 400);
    new Prng(11).fill(big);
    const counts = new Array<number>(256).fill(0);
    for (const b of big) counts[b]!++;
    expect(Math.min(...counts)).toBeGreaterThan(300);
    expect(Math.max(...counts)).toBeLessThan(500);
  });

  it('fork() gives a deterministic, independent stream', () => {
    const parent = new Prng(100);
    const child = parent.fork();
    const childOut = take(child, 16);
    const parentOut = take(parent, 16);
    expect(childOut).not.toEqual(parentOut);
    // Same parent state forks the same child.
    const again = new Prng(100).fork();
    expect(take(again, 16)).toEqual(childOut);
    // Interleaving parent and child draws does not change either stream.
    const p2 = new Prng(100);
    const c2 = p2.fork();
    const pc: number[] = [];
    const cc: number[] = [];
    for (let i = 0; i < 16; i++) {
      cc.push(c2.nextU32());
      pc.push(p2.nextU32());
    }
    expect(cc).toEqual(childOut);
    expect(pc).toEqual(parentOut);
    // Successive forks differ from each other.
    const p3 = new Prng(100);
    expect(take(p3.fork(), 8)).not.toEqual(take(p3.fork(), 8));
  });
});
