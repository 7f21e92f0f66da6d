/**
 * The project's own PRNG: xoshiro128** seeded through splitmix32. Replay strings depend on this
 * exact sequence, so it must never change (no dependency supplies randomness).
 */
export class Prng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number | string) {
    let x = typeof seed === 'number' ? seed >>> 0 : hashString(seed);
    const next = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Next uniformly distributed unsigned 32-bit integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform integer in [0, n) without modulo bias; n in [1, 2^32]. */
  below(n: number): number {
    if (!(n >= 1 && n <= 0x100000000) || !Number.isInteger(n)) throw new RangeError(`Prng.below(${n})`);
    if (n === 1) return 0;
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const r = this.nextU32();
      if (r < limit) return r % n;
    }
  }

  /** Uniform float in [0, 1) with 32 bits of precision. */
  float(): number {
    return this.nextU32() / 0x100000000;
  }

  /** Fills `out` with random bytes. */
  fill(out: Uint8Array): void {
    let i = 0;
    for (; i + 4 <= out.length; i += 4) {
      const r = this.nextU32();
      out[i] = r & 0xff;
      out[i + 1] = (r >>> 8) & 0xff;
      out[i + 2] = (r >>> 16) & 0xff;
      out[i + 3] = r >>> 24;
    }
    if (i < out.length) {
      let r = this.nextU32();
      for (; i < out.length; i++, r >>>= 8) out[i] = r & 0xff;
    }
  }

  /** An independent stream derived from this one (for a sub-component). */
  fork(): Prng {
    return new Prng(this.nextU32() ^ Math.imul(this.nextU32(), 0x9e3779b1));
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** FNV-1a over UTF-16 code units: a stable seed from a string. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
