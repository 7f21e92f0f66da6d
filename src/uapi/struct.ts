/**
 * Declarative codecs for the C structs of the uapi headers (x86_64, little-endian).
 *
 * A struct is declared once, as its fields with their byte offsets and C types plus its `sizeof`;
 * the codec then reads and writes it through a `DataView`. 64-bit fields are `bigint` at the
 * boundary (decode always returns a `bigint`; encode also takes a safe-integer `number`, since
 * addresses are numbers in the rest of the simulator). Narrower fields are `number`s.
 *
 * Encoding follows C's integer conversions for values that a C program could have written: a
 * negative value stored into an unsigned field wraps (`user_ptr: -4096` is 0xfffffffffffff000, as
 * `(__u64)-4096` is), and an unsigned value stored into a signed field wraps the other way. A value
 * outside both ranges, a fraction, or an unknown field name is a programming error and throws.
 */

/** C type of a field: `__u8`, `__u16`, `__u32`, `__s32`, `__u64`, `__s64` (pointers are `u64`). */
export type FieldType = 'u8' | 'u16' | 'u32' | 's32' | 'u64' | 's64';

export interface FieldSpec<N extends string = string, T extends FieldType = FieldType> {
  /** The kernel's field name, exactly as spelled in the header (snake_case). */
  readonly name: N;
  /** Byte offset from the start of the struct (`offsetof`). */
  readonly offset: number;
  readonly type: T;
}

/** Value of a decoded field. */
export type FieldValue<T extends FieldType> = T extends 'u64' | 's64' ? bigint : number;
/** Value accepted by `encode` for a field. */
export type FieldInput<T extends FieldType> = T extends 'u64' | 's64' ? bigint | number : number;

/** A decoded struct: every field present, 64-bit fields as `bigint`. */
export type StructValue<F extends readonly FieldSpec[]> = {
  -readonly [K in F[number] as K['name']]: FieldValue<K['type']>;
};

/** What `encode` takes: any subset of the fields (missing ones are written as 0). */
export type StructInput<F extends readonly FieldSpec[]> = {
  [K in F[number] as K['name']]?: FieldInput<K['type']>;
};

export interface StructCodec<F extends readonly FieldSpec[] = readonly FieldSpec[]> {
  /** The C struct name, e.g. `drm_i915_gem_userptr`. */
  readonly name: string;
  /** `sizeof(struct ...)` on x86_64, including tail padding. */
  readonly size: number;
  readonly fields: F;
  /** Reads the struct at `offset` in `bytes`. Throws RangeError if it does not fit. */
  decode(bytes: Uint8Array, offset?: number): StructValue<F>;
  /**
   * Writes `value` into `bytes` at `offset` (every field is written; missing fields as 0; padding
   * bytes are left untouched) and returns `bytes`. Without `bytes`, returns a fresh zeroed buffer
   * of `size` bytes.
   */
  encode(value: StructInput<F>, bytes?: Uint8Array, offset?: number): Uint8Array;
  /** Decodes `count` consecutive structs (a C array) starting at `offset`. */
  decodeArray(bytes: Uint8Array, count: number, offset?: number): StructValue<F>[];
  /** Encodes a C array of structs into a fresh buffer of `values.length * size` bytes. */
  encodeArray(values: readonly StructInput<F>[]): Uint8Array;
  /** `offsetof(struct, field)`. */
  offsetOf(field: F[number]['name']): number;
}

/** Decoded-object type of a codec: `Decoded<typeof drm_i915_gem_userptr>`. */
export type Decoded<C> = C extends StructCodec<infer F> ? StructValue<F> : never;
/** Input type of a codec's `encode`. */
export type Encodable<C> = C extends StructCodec<infer F> ? StructInput<F> : never;

const WIDTH: Readonly<Record<FieldType, number>> = { u8: 1, u16: 2, u32: 4, s32: 4, u64: 8, s64: 8 };

const TWO_63 = 1n << 63n;
const TWO_64 = 1n << 64n;

const CODEC = Symbol('uapi.StructCodec');

/** True for an object built by `defineStruct`. */
export function isStructCodec(x: unknown): x is StructCodec {
  return typeof x === 'object' && x !== null && (x as { [CODEC]?: boolean })[CODEC] === true;
}

/**
 * Declares a struct. The layout is checked now: every field naturally aligned, inside `size`,
 * not overlapping another, names unique, and `size` a multiple of the largest alignment (as the C
 * compiler pads it). A layout that breaks these is a typo, so it throws.
 */
export function defineStruct<const F extends readonly FieldSpec[]>(
  name: string,
  size: number,
  fields: F,
): StructCodec<F> {
  checkLayout(name, size, fields);
  const names = new Set<string>(fields.map((f) => f.name));
  const offsets = new Map<string, number>(fields.map((f) => [f.name, f.offset]));

  const view = (bytes: Uint8Array, offset: number, what: string): DataView => {
    if (!Number.isInteger(offset) || offset < 0 || offset + size > bytes.length) {
      throw new RangeError(
        `${name}.${what}: ${size} bytes at offset ${offset} do not fit in a buffer of ${bytes.length}`,
      );
    }
    return new DataView(bytes.buffer, bytes.byteOffset + offset, size);
  };

  const decodeAt = (dv: DataView): StructValue<F> => {
    const out: Record<string, number | bigint> = {};
    for (const f of fields) out[f.name] = readField(dv, f);
    return out as StructValue<F>;
  };

  const encodeAt = (dv: DataView, value: StructInput<F>): void => {
    const input = value as Record<string, number | bigint | undefined>;
    for (const key of Object.keys(input)) {
      if (!names.has(key)) throw new TypeError(`${name}: no field named ${key}`);
    }
    for (const f of fields) writeField(dv, f, input[f.name] ?? 0, name);
  };

  const codec: StructCodec<F> & { [CODEC]: true } = {
    [CODEC]: true,
    name,
    size,
    fields,
    decode(bytes, offset = 0) {
      return decodeAt(view(bytes, offset, 'decode'));
    },
    encode(value, bytes, offset = 0) {
      const out = bytes ?? new Uint8Array(size);
      encodeAt(view(out, offset, 'encode'), value);
      return out;
    },
    decodeArray(bytes, count, offset = 0) {
      if (!Number.isInteger(count) || count < 0) throw new RangeError(`${name}.decodeArray: count ${count}`);
      const out: StructValue<F>[] = [];
      for (let i = 0; i < count; i++) out.push(decodeAt(view(bytes, offset + i * size, 'decodeArray')));
      return out;
    },
    encodeArray(values) {
      const out = new Uint8Array(values.length * size);
      values.forEach((v, i) => {
        encodeAt(view(out, i * size, 'encodeArray'), v);
      });
      return out;
    },
    offsetOf(field) {
      const off = offsets.get(field);
      if (off === undefined) throw new TypeError(`${name}: no field named ${field}`);
      return off;
    },
  };
  return Object.freeze(codec);
}

function checkLayout(name: string, size: number, fields: readonly FieldSpec[]): void {
  if (!Number.isInteger(size) || size <= 0) throw new RangeError(`${name}: bad size ${size}`);
  const used = new Uint8Array(size);
  const seen = new Set<string>();
  let align = 1;
  for (const f of fields) {
    const w = WIDTH[f.type];
    if (seen.has(f.name)) throw new TypeError(`${name}: duplicate field ${f.name}`);
    seen.add(f.name);
    if (!Number.isInteger(f.offset) || f.offset < 0 || f.offset + w > size) {
      throw new RangeError(`${name}.${f.name}: offset ${f.offset} outside a ${size}-byte struct`);
    }
    if (f.offset % w !== 0) throw new RangeError(`${name}.${f.name}: offset ${f.offset} not ${w}-aligned`);
    for (let i = f.offset; i < f.offset + w; i++) {
      if (used[i]) throw new RangeError(`${name}.${f.name}: overlaps another field`);
      used[i] = 1;
    }
    align = Math.max(align, w);
  }
  if (size % align !== 0) throw new RangeError(`${name}: size ${size} is not a multiple of ${align}`);
}

function readField(dv: DataView, f: FieldSpec): number | bigint {
  switch (f.type) {
    case 'u8':
      return dv.getUint8(f.offset);
    case 'u16':
      return dv.getUint16(f.offset, true);
    case 'u32':
      return dv.getUint32(f.offset, true);
    case 's32':
      return dv.getInt32(f.offset, true);
    case 'u64':
      return dv.getBigUint64(f.offset, true);
    case 's64':
      return dv.getBigInt64(f.offset, true);
  }
}

function writeField(dv: DataView, f: FieldSpec, v: number | bigint, struct: string): void {
  const bad = (): never => {
    throw new RangeError(`${struct}.${f.name}: ${String(v)} does not fit ${f.type}`);
  };
  if (f.type === 'u64' || f.type === 's64') {
    let b: bigint;
    if (typeof v === 'bigint') b = v;
    else if (Number.isSafeInteger(v)) b = BigInt(v);
    else return bad();
    if (b < -TWO_63 || b >= TWO_64) return bad();
    if (f.type === 'u64') dv.setBigUint64(f.offset, BigInt.asUintN(64, b), true);
    else dv.setBigInt64(f.offset, BigInt.asIntN(64, b), true);
    return;
  }
  if (typeof v !== 'number' || !Number.isInteger(v)) return bad();
  const bits = WIDTH[f.type] * 8;
  if (v < -(2 ** (bits - 1)) || v >= 2 ** bits) return bad();
  switch (f.type) {
    case 'u8':
      dv.setUint8(f.offset, v & 0xff);
      return;
    case 'u16':
      dv.setUint16(f.offset, v & 0xffff, true);
      return;
    case 'u32':
      dv.setUint32(f.offset, v >>> 0, true);
      return;
    case 's32':
      dv.setInt32(f.offset, v | 0, true);
      return;
  }
}
