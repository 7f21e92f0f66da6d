import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as uapi from './index.js';
import { defineStruct, isStructCodec, type FieldType, type StructCodec } from './struct.js';

/**
 * The codecs read and write scalar fields straight from the bytes (no DataView per call). These
 * tests hold them to what a DataView says, byte for byte, for every exported codec and for the
 * values C code could write: every width, both signs, both halves of a 64-bit field, numbers and
 * bigints, and the values the fast path hands to the general one.
 */

const CODECS: [string, StructCodec][] = Object.entries(uapi as Record<string, unknown>).filter(
  (e): e is [string, StructCodec] => isStructCodec(e[1]),
);

/** What a DataView reads for a scalar. */
function dvRead(dv: DataView, type: FieldType, at: number): number | bigint {
  switch (type) {
    case 'u8':
      return dv.getUint8(at);
    case 'u16':
      return dv.getUint16(at, true);
    case 'u32':
      return dv.getUint32(at, true);
    case 's32':
      return dv.getInt32(at, true);
    case 'u64':
      return dv.getBigUint64(at, true);
    case 's64':
      return dv.getBigInt64(at, true);
  }
}

/** The scalar, non-array fields of a codec. */
const scalars = (c: StructCodec): { name: string; offset: number; type: FieldType }[] =>
  c.fields.flatMap((f) =>
    f.count === undefined && typeof f.type === 'string'
      ? [{ name: f.name, offset: f.offset, type: f.type }]
      : [],
  );

/** Values a field may be given: numbers and bigints, in range, at and around the edges. */
function arbInput(type: FieldType): fc.Arbitrary<number | bigint> {
  switch (type) {
    case 'u8':
      return fc.integer({ min: -0x80, max: 0xff });
    case 'u16':
      return fc.integer({ min: -0x8000, max: 0xffff });
    case 'u32':
    case 's32':
      return fc.oneof(
        fc.constantFrom(-0x80000000, -1, 0, 0x7fffffff, 0x80000000, 0xffffffff),
        fc.integer({ min: -0x80000000, max: 0xffffffff }),
      );
    default:
      return fc.oneof(
        fc.constantFrom(0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -1, -4096, -(2 ** 53) + 1),
        fc.constantFrom(0n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n, -(2n ** 63n), -1n),
        fc.maxSafeInteger(),
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
      );
  }
}

/** The bits C stores for `v` in a field of `type`, as a DataView reads them back. */
function stored(type: FieldType, v: number | bigint): number | bigint {
  const dv = new DataView(new ArrayBuffer(8));
  switch (type) {
    case 'u8':
      dv.setUint8(0, Number(v) & 0xff);
      break;
    case 'u16':
      dv.setUint16(0, Number(v) & 0xffff, true);
      break;
    case 'u32':
    case 's32':
      dv.setUint32(0, Number(v) >>> 0, true);
      break;
    default:
      dv.setBigUint64(0, BigInt.asUintN(64, BigInt(v)), true);
  }
  return dvRead(dv, type, 0);
}

describe('struct codecs against DataView', () => {
  it.each(CODECS)('%s: decode reads what a DataView reads', (_n, codec) => {
    const fields = scalars(codec);
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: codec.size + 8, maxLength: codec.size + 8 }),
        fc.nat(8),
        (raw, at) => {
          const got = codec.decode(raw, at) as Record<string, unknown>;
          const dv = new DataView(raw.buffer, raw.byteOffset + at, codec.size);
          for (const f of fields) expect(got[f.name], f.name).toStrictEqual(dvRead(dv, f.type, f.offset));
        },
      ),
      { numRuns: 60 },
    );
  });

  it.each(CODECS)('%s: encode writes the bits C would, and nothing else', (_n, codec) => {
    const fields = scalars(codec);
    if (fields.length === 0) return;
    const model: Record<string, fc.Arbitrary<number | bigint>> = {};
    for (const f of fields) model[f.name] = arbInput(f.type);
    fc.assert(
      fc.property(fc.record(model, { requiredKeys: [] }), (v) => {
        const buf = new Uint8Array(codec.size + 8).fill(0xcc);
        codec.encode(v, buf, 4);
        const dv = new DataView(buf.buffer, 4, codec.size);
        for (const f of fields) {
          const want = stored(f.type, v[f.name] ?? 0);
          expect(dvRead(dv, f.type, f.offset), f.name).toStrictEqual(want);
        }
        // Bytes outside the struct stay untouched.
        expect([...buf.subarray(0, 4), ...buf.subarray(4 + codec.size)]).toEqual(
          new Array<number>(8).fill(0xcc),
        );
      }),
      { numRuns: 60 },
    );
  });

  it('the fast path refuses what the general path refuses, with the same errors', () => {
    const c = defineStruct('t', 24, [
      { name: 'a', offset: 0, type: 'u8' },
      { name: 'b', offset: 2, type: 'u16' },
      { name: 'c', offset: 4, type: 's32' },
      { name: 'd', offset: 8, type: 'u64' },
      { name: 'e', offset: 16, type: 's64' },
    ]);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ a: 256 }, /^t\.a: 256 does not fit u8$/],
      [{ a: -129 }, /^t\.a: -129 does not fit u8$/],
      [{ b: 0x10000 }, /^t\.b: 65536 does not fit u16$/],
      [{ c: -(2 ** 31) - 1 }, /^t\.c: -2147483649 does not fit s32$/],
      [{ b: -0x8001 }, /^t\.b: -32769 does not fit u16$/],
      [{ c: 2 ** 32 }, /^t\.c: 4294967296 does not fit s32$/],
      [{ c: 0.5 }, /^t\.c: 0\.5 does not fit s32$/],
      [{ d: 2 ** 53 }, /^t\.d: 9007199254740992 does not fit u64$/],
      [{ d: 2n ** 64n }, /^t\.d: 18446744073709551616 does not fit u64$/],
      [{ e: -(2n ** 63n) - 1n }, /does not fit s64$/],
      [{ a: 1n }, /^t\.a: /],
    ];
    for (const [v, re] of cases)
      expect(
        () => c.encode(v as never),
        JSON.stringify(v, (_k, x: unknown) => String(x)),
      ).toThrow(re);
    expect(c.decode(c.encode({ d: -4096, e: -1 }))).toEqual({
      a: 0,
      b: 0,
      c: 0,
      d: 2n ** 64n - 4096n,
      e: -1n,
    });
  });
});
