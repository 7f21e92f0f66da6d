import fc from 'fast-check';
import { describe, expect, expectTypeOf, it } from 'vitest';
import * as uapi from './index.js';
import {
  defineStruct,
  isStructCodec,
  type Decoded,
  type Encodable,
  type FieldKind,
  type FieldSpec,
  type FieldType,
  type StructCodec,
} from './struct.js';

const U64_MAX = (1n << 64n) - 1n;
const S64_MIN = -(1n << 63n);
const S64_MAX = (1n << 63n) - 1n;

/** Every codec the uapi layer exports. */
const CODECS: [string, StructCodec][] = Object.entries(uapi as Record<string, unknown>).filter(
  (e): e is [string, StructCodec] => isStructCodec(e[1]),
);

/** Values for one field, biased towards the extremes of its type. */
function arbField(type: FieldType): fc.Arbitrary<number | bigint> {
  switch (type) {
    case 'u8':
      return fc.integer({ min: 0, max: 0xff });
    case 'u16':
      return fc.integer({ min: 0, max: 0xffff });
    case 'u32':
      return fc.oneof(fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xffffffff), fc.nat({ max: 0xffffffff }));
    case 's32':
      return fc.oneof(
        fc.constantFrom(-0x80000000, -1, 0, 0x7fffffff),
        fc.integer({ min: -0x80000000, max: 0x7fffffff }),
      );
    case 'u64':
      return fc.oneof(
        fc.constantFrom(0n, 1n, 0xffffffffn, 1n << 32n, 1n << 63n, U64_MAX - 4095n, U64_MAX),
        fc.bigInt({ min: 0n, max: U64_MAX }),
      );
    case 's64':
      return fc.oneof(fc.constantFrom(S64_MIN, -1n, 0n, S64_MAX), fc.bigInt({ min: S64_MIN, max: S64_MAX }));
  }
}

/** One element of a field: a scalar, or an embedded struct's fields. */
function arbElement(type: FieldKind): fc.Arbitrary<unknown> {
  return typeof type === 'string' ? arbField(type) : arbStruct(type);
}

function arbStruct(codec: StructCodec): fc.Arbitrary<Record<string, unknown>> {
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of codec.fields) {
    model[f.name] =
      f.count === undefined
        ? arbElement(f.type)
        : fc.array(arbElement(f.type), { minLength: f.count, maxLength: f.count });
  }
  return fc.record(model);
}

/** Marks the bytes a codec's fields cover (recursively: an embedded struct's padding is padding). */
function cover(codec: StructCodec, covered: Uint8Array, base = 0): void {
  for (const f of codec.fields) {
    for (let i = 0; i < (f.count ?? 1); i++) {
      if (typeof f.type === 'string') {
        const w = f.type === 'u64' || f.type === 's64' ? 8 : f.type === 'u8' ? 1 : f.type === 'u16' ? 2 : 4;
        covered.fill(1, base + f.offset + i * w, base + f.offset + (i + 1) * w);
      } else {
        cover(f.type, covered, base + f.offset + i * f.type.size);
      }
    }
  }
}

describe('defineStruct', () => {
  const demo = defineStruct('demo', 32, [
    { name: 'a8', offset: 0, type: 'u8' },
    { name: 'a16', offset: 2, type: 'u16' },
    { name: 'a32', offset: 4, type: 'u32' },
    { name: 's32', offset: 8, type: 's32' },
    { name: 'u64', offset: 16, type: 'u64' },
    { name: 's64', offset: 24, type: 's64' },
  ]);

  it('types decoded objects: 64-bit fields are bigint, the rest number', () => {
    expectTypeOf(demo.decode(new Uint8Array(32))).toEqualTypeOf<{
      a8: number;
      a16: number;
      a32: number;
      s32: number;
      u64: bigint;
      s64: bigint;
    }>();
    expectTypeOf<Decoded<typeof uapi.drm_i915_gem_userptr>>().toEqualTypeOf<uapi.drm_i915_gem_userptr>();
    expectTypeOf<uapi.drm_i915_gem_userptr['user_ptr']>().toEqualTypeOf<bigint>();
    expectTypeOf<uapi.drm_i915_gem_userptr['handle']>().toEqualTypeOf<number>();
    expectTypeOf<Encodable<typeof uapi.drm_i915_gem_userptr>['user_ptr']>().toEqualTypeOf<
      bigint | number | undefined
    >();
  });

  it('is little-endian at the declared offsets, and leaves padding alone', () => {
    const buf = new Uint8Array(32).fill(0xee);
    demo.encode({ a8: 0x12, a16: 0x3456, a32: 0x789abcde, s32: -2, u64: 0x0102030405060708n, s64: -1n }, buf);
    expect([...buf]).toEqual([
      0x12, 0xee, 0x56, 0x34, 0xde, 0xbc, 0x9a, 0x78, 0xfe, 0xff, 0xff, 0xff, 0xee, 0xee, 0xee, 0xee, 0x08,
      0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ]);
  });

  it('encodes missing fields as 0, in a fresh buffer or over old bytes', () => {
    expect([...demo.encode({})]).toEqual(new Array<number>(32).fill(0));
    const buf = new Uint8Array(32).fill(0xff);
    demo.encode({ a32: 1 }, buf);
    expect(demo.decode(buf)).toEqual({ a8: 0, a16: 0, a32: 1, s32: 0, u64: 0n, s64: 0n });
  });

  it('works at an offset inside a larger buffer, and on subarrays', () => {
    const big = new Uint8Array(100).fill(0xaa);
    demo.encode({ u64: U64_MAX, a8: 1 }, big, 40);
    expect(big.slice(0, 40).every((b) => b === 0xaa)).toBe(true);
    expect(big.slice(72).every((b) => b === 0xaa)).toBe(true);
    expect(demo.decode(big, 40).u64).toBe(U64_MAX);
    expect(demo.decode(big.subarray(40)).a8).toBe(1);
  });

  it('wraps values the way a C assignment does', () => {
    const out = demo.decode(
      demo.encode({ a8: -1, a16: -1, a32: -1, s32: 0xffffffff, u64: -4096, s64: U64_MAX }),
    );
    expect(out).toEqual({ a8: 0xff, a16: 0xffff, a32: 0xffffffff, s32: -1, u64: U64_MAX - 4095n, s64: -1n });
    expect(demo.decode(demo.encode({ u64: S64_MIN })).u64).toBe(1n << 63n);
    expect(demo.decode(demo.encode({ u64: Number.MAX_SAFE_INTEGER })).u64).toBe(
      BigInt(Number.MAX_SAFE_INTEGER),
    );
  });

  it('rejects values that fit neither the signed nor the unsigned range, fractions and unknown names', () => {
    expect(() => demo.encode({ a32: 2 ** 32 })).toThrow(RangeError);
    expect(() => demo.encode({ a32: -(2 ** 31) - 1 })).toThrow(RangeError);
    expect(() => demo.encode({ a8: 256 })).toThrow(RangeError);
    expect(() => demo.encode({ a16: 1.5 })).toThrow(RangeError);
    expect(() => demo.encode({ a32: Number.NaN })).toThrow(RangeError);
    expect(() => demo.encode({ u64: 1n << 64n })).toThrow(RangeError);
    expect(() => demo.encode({ s64: S64_MIN - 1n })).toThrow(RangeError);
    expect(() => demo.encode({ u64: 2 ** 53 })).toThrow(RangeError);
    expect(() => demo.encode({ a32: 1n as unknown as number })).toThrow(RangeError);
    expect(() => demo.encode({ nope: 1 } as never)).toThrow(TypeError);
  });

  it('rejects buffers that are too small and bad offsets', () => {
    expect(() => demo.decode(new Uint8Array(31))).toThrow(RangeError);
    expect(() => demo.decode(new Uint8Array(40), 9)).toThrow(RangeError);
    expect(() => demo.decode(new Uint8Array(40), -1)).toThrow(RangeError);
    expect(() => demo.encode({}, new Uint8Array(16))).toThrow(RangeError);
  });

  it('reports offsetof', () => {
    expect(demo.offsetOf('s64')).toBe(24);
    expect(uapi.drm_i915_gem_relocation_entry.offsetOf('presumed_offset')).toBe(16);
    expect(() => demo.offsetOf('x' as never)).toThrow(TypeError);
  });

  it('encodes and decodes C arrays', () => {
    const relocs = uapi.drm_i915_gem_relocation_entry.encodeArray([
      { target_handle: 1, offset: 16 },
      { target_handle: 2, offset: 28, delta: 4 },
    ]);
    expect(relocs.length).toBe(64);
    const back = uapi.drm_i915_gem_relocation_entry.decodeArray(relocs, 2);
    expect(back.map((r) => [r.target_handle, r.offset, r.delta])).toEqual([
      [1, 16n, 0],
      [2, 28n, 4],
    ]);
    expect(() => uapi.drm_i915_gem_relocation_entry.decodeArray(relocs, 3)).toThrow(RangeError);
  });

  it('has C array fields and structs embedded by value', () => {
    const inner = defineStruct('inner', 16, [
      { name: 'a', offset: 0, type: 'u32' },
      { name: 'b', offset: 8, type: 'u64' },
    ]);
    const outer = defineStruct('outer', 40, [
      { name: 'tag', offset: 0, type: 'u16', count: 3 },
      { name: 'in', offset: 8, type: inner },
      { name: 'more', offset: 24, type: 'u32', count: 4 },
    ]);
    expectTypeOf(outer.decode(new Uint8Array(40))).toEqualTypeOf<{
      tag: number[];
      in: { a: number; b: bigint };
      more: number[];
    }>();
    const buf = new Uint8Array(40).fill(0xee);
    outer.encode({ tag: [1, 2], in: { b: 7n }, more: [9] }, buf);
    expect(outer.decode(buf)).toEqual({ tag: [1, 2, 0], in: { a: 0, b: 7n }, more: [9, 0, 0, 0] });
    // The padding of the outer struct (6..8) and of the embedded one (12..16) stays untouched.
    expect([...buf.slice(6, 8), ...buf.slice(12, 16)]).toEqual(new Array<number>(6).fill(0xee));
    expect(() => outer.encode({ more: [1, 2, 3, 4, 5] })).toThrow(RangeError);
    expect(() => outer.encode({ more: 1 } as never)).toThrow(TypeError);
    expect(() => outer.encode({ in: 1 } as never)).toThrow(TypeError);
    expect(() => outer.encode({ in: { c: 1 } } as never)).toThrow(TypeError);
    expect(() => outer.encode({ tag: [0x10000] })).toThrow(RangeError);
    // An embedded struct is aligned like its widest member; arrays need a positive length.
    expect(() => defineStruct('bad', 24, [{ name: 'in', offset: 4, type: inner }])).toThrow(/aligned/);
    expect(() => defineStruct('bad', 8, [{ name: 'x', offset: 0, type: 'u32', count: 0 }])).toThrow(/length/);
    expect(() => defineStruct('bad', 8, [{ name: 'x', offset: 0, type: 'u32', count: 3 }])).toThrow(
      /outside/,
    );
  });

  it('checks layouts when the struct is declared', () => {
    const f = (size: number, fields: FieldSpec[]) => () => defineStruct('bad', size, fields);
    expect(f(8, [{ name: 'x', offset: 4, type: 'u64' }])).toThrow(/outside|aligned/);
    expect(f(8, [{ name: 'x', offset: 2, type: 'u32' }])).toThrow(/aligned/);
    expect(f(16, [{ name: 'x', offset: 4, type: 'u64' }])).toThrow(/aligned/);
    expect(
      f(8, [
        { name: 'x', offset: 0, type: 'u64' },
        { name: 'y', offset: 4, type: 'u32' },
      ]),
    ).toThrow(/overlaps/);
    expect(
      f(8, [
        { name: 'x', offset: 0, type: 'u32' },
        { name: 'x', offset: 4, type: 'u32' },
      ]),
    ).toThrow(/duplicate/);
    // sizeof includes tail padding up to the largest alignment.
    expect(f(12, [{ name: 'x', offset: 0, type: 'u64' }])).toThrow(/multiple/);
    expect(f(0, [])).toThrow(/size/);
  });
});

describe('every exported codec', () => {
  it('is found (sanity check of the property tests below)', () => {
    const names = CODECS.map(([n]) => n);
    expect(names).toContain('drm_i915_gem_userptr');
    expect(names).toContain('drm_i915_gem_execbuffer2');
    expect(names).toContain('drm_prime_handle');
    expect(CODECS.length).toBeGreaterThanOrEqual(30);
    for (const [, c] of CODECS) expect(Object.isFrozen(c)).toBe(true);
  });

  it.each(CODECS)('%s: decode(encode(v)) = v, including u64 extremes', (_name, codec) => {
    fc.assert(
      fc.property(arbStruct(codec), (v) => {
        const bytes = codec.encode(v as never);
        expect(bytes.length).toBe(codec.size);
        expect(codec.decode(bytes)).toEqual(v);
      }),
      { numRuns: 200 },
    );
  });

  it.each(CODECS)('%s: encode(decode(bytes)) = bytes, except implicit padding', (_name, codec) => {
    const covered = new Uint8Array(codec.size);
    cover(codec, covered);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: codec.size, maxLength: codec.size }), (raw) => {
        const again = codec.encode(codec.decode(raw));
        expect([...again]).toEqual([...raw].map((b, i) => (covered[i] ? b : 0)));
      }),
      { numRuns: 100 },
    );
  });
});
