/**
 * Declarative codecs for the C structs of the uapi headers (x86_64, little-endian).
 *
 * A struct is declared once, as its fields with their byte offsets and C types plus its `sizeof`;
 * the codec then reads and writes it through a `DataView`. 64-bit fields are `bigint` at the
 * boundary (decode always returns a `bigint`; encode also takes a safe-integer `number`, since
 * addresses are numbers in the rest of the simulator). Narrower fields are `number`s. A field with
 * a `count` is a C array (a JS array at the boundary); a field whose type is another codec is a
 * struct embedded by value (an object at the boundary).
 *
 * Encoding follows C's integer conversions for values that a C program could have written: a
 * negative value stored into an unsigned field wraps (`user_ptr: -4096` is 0xfffffffffffff000, as
 * `(__u64)-4096` is), and an unsigned value stored into a signed field wraps the other way. A value
 * outside both ranges, a fraction, or an unknown field name is a programming error and throws.
 */

/** C type of a field: `__u8`, `__u16`, `__u32`, `__s32`, `__u64`, `__s64` (pointers are `u64`). */
export type FieldType = 'u8' | 'u16' | 'u32' | 's32' | 'u64' | 's64';

/** What a field holds: a scalar C type, or a struct embedded by value (given by its codec). */
export type FieldKind = FieldType | StructCodec;

export interface FieldSpec<N extends string = string, T extends FieldKind = FieldKind> {
  /** The kernel's field name, exactly as spelled in the header (snake_case). */
  readonly name: N;
  /** Byte offset from the start of the struct (`offsetof`). */
  readonly offset: number;
  readonly type: T;
  /** A C array (`__u32 handles[4]`, `char name[32]`): the number of elements. */
  readonly count?: number;
}

/** Value of one decoded element: 64-bit scalars are `bigint`, embedded structs objects. */
export type FieldValue<T extends FieldKind> =
  T extends StructCodec<infer G> ? StructValue<G> : T extends 'u64' | 's64' ? bigint : number;
/** Value accepted by `encode` for one element. */
export type FieldInput<T extends FieldKind> =
  T extends StructCodec<infer G> ? StructInput<G> : T extends 'u64' | 's64' ? bigint | number : number;

/** A decoded struct: every field present, 64-bit fields as `bigint`, arrays as JS arrays. */
export type StructValue<F extends readonly FieldSpec[]> = {
  -readonly [K in F[number] as K['name']]: 'count' extends keyof K
    ? K extends { readonly count: number }
      ? FieldValue<K['type']>[]
      : FieldValue<K['type']> | FieldValue<K['type']>[]
    : FieldValue<K['type']>;
};

/**
 * What `encode` takes: any subset of the fields (missing ones are written as 0); an array may be
 * shorter than the C array (the rest is 0), an embedded struct may omit fields.
 */
export type StructInput<F extends readonly FieldSpec[]> = {
  [K in F[number] as K['name']]?: 'count' extends keyof K
    ? K extends { readonly count: number }
      ? readonly FieldInput<K['type']>[]
      : FieldInput<K['type']> | readonly FieldInput<K['type']>[]
    : FieldInput<K['type']>;
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

  const check = (bytes: Uint8Array, offset: number, what: string): void => {
    if (!Number.isInteger(offset) || offset < 0 || offset + size > bytes.length) {
      throw new RangeError(
        `${name}.${what}: ${size} bytes at offset ${offset} do not fit in a buffer of ${bytes.length}`,
      );
    }
  };
  // The hot path (every ioctl decodes and encodes structs): a scalar field that is not an array
  // is read and written straight from the bytes, with no DataView and no label per call. Arrays,
  // embedded structs and every value the fast path does not take go the general way below,
  // which also makes every error.
  const codes = fields.map((f) => (f.count === undefined && typeof f.type === 'string' ? CODE[f.type] : -1));

  const decodeField = (dv: DataView, f: F[number]): unknown => {
    if (f.count === undefined) return readElement(dv, f.type, f.offset);
    const w = widthOf(f.type);
    return Array.from({ length: f.count }, (_, i) => readElement(dv, f.type, f.offset + i * w));
  };

  const encodeField = (dv: DataView, f: F[number], v: unknown): void => {
    const label = `${name}.${f.name}`;
    if (f.count === undefined) {
      writeElement(dv, f.type, f.offset, v, label);
      return;
    }
    if (v !== undefined && !Array.isArray(v)) throw new TypeError(`${label}: expected an array`);
    const list = (v ?? []) as readonly unknown[];
    if (list.length > f.count) {
      throw new RangeError(`${label}: ${list.length} elements do not fit in ${f.count}`);
    }
    const w = widthOf(f.type);
    for (let i = 0; i < f.count; i++) writeElement(dv, f.type, f.offset + i * w, list[i], `${label}[${i}]`);
  };

  const decodeAt = (bytes: Uint8Array, offset: number): StructValue<F> => {
    const out: Record<string, unknown> = {};
    let dv: DataView | null = null;
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i]!;
      const c = codes[i]!;
      if (c >= 0) {
        out[f.name] = readFast(bytes, offset + f.offset, c);
      } else {
        dv ??= new DataView(bytes.buffer, bytes.byteOffset + offset, size);
        out[f.name] = decodeField(dv, f);
      }
    }
    return out as StructValue<F>;
  };

  const encodeAt = (bytes: Uint8Array, offset: number, value: StructInput<F>): void => {
    const input = value as Record<string, unknown>;
    for (const key of Object.keys(input)) {
      if (!names.has(key)) throw new TypeError(`${name}: no field named ${key}`);
    }
    let dv: DataView | null = null;
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i]!;
      const v = input[f.name];
      const c = codes[i]!;
      if (c >= 0 && writeFast(bytes, offset + f.offset, c, v)) continue;
      dv ??= new DataView(bytes.buffer, bytes.byteOffset + offset, size);
      encodeField(dv, f, v);
    }
  };

  const codec: StructCodec<F> & { [CODEC]: true } = {
    [CODEC]: true,
    name,
    size,
    fields,
    decode(bytes, offset = 0) {
      check(bytes, offset, 'decode');
      return decodeAt(bytes, offset);
    },
    encode(value, bytes, offset = 0) {
      const out = bytes ?? new Uint8Array(size);
      check(out, offset, 'encode');
      encodeAt(out, offset, value);
      return out;
    },
    decodeArray(bytes, count, offset = 0) {
      if (!Number.isInteger(count) || count < 0) throw new RangeError(`${name}.decodeArray: count ${count}`);
      const out: StructValue<F>[] = [];
      for (let i = 0; i < count; i++) {
        check(bytes, offset + i * size, 'decodeArray');
        out.push(decodeAt(bytes, offset + i * size));
      }
      return out;
    },
    encodeArray(values) {
      const out = new Uint8Array(values.length * size);
      values.forEach((v, i) => {
        check(out, i * size, 'encodeArray');
        encodeAt(out, i * size, v);
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

/** sizeof one element of a field. */
function widthOf(type: FieldKind): number {
  return typeof type === 'string' ? WIDTH[type] : type.size;
}

/** _Alignof one element: a scalar's width, an embedded struct's largest member alignment. */
function alignOf(type: FieldKind): number {
  if (typeof type === 'string') return WIDTH[type];
  let a = 1;
  for (const f of type.fields) a = Math.max(a, alignOf(f.type));
  return a;
}

function checkLayout(name: string, size: number, fields: readonly FieldSpec[]): void {
  if (!Number.isInteger(size) || size <= 0) throw new RangeError(`${name}: bad size ${size}`);
  const used = new Uint8Array(size);
  const seen = new Set<string>();
  let align = 1;
  for (const f of fields) {
    if (typeof f.type !== 'string' && !isStructCodec(f.type)) {
      throw new TypeError(`${name}.${f.name}: type is neither a C scalar type nor a struct codec`);
    }
    if (f.count !== undefined && (!Number.isInteger(f.count) || f.count <= 0)) {
      throw new RangeError(`${name}.${f.name}: bad array length ${f.count}`);
    }
    const a = alignOf(f.type);
    const w = widthOf(f.type) * (f.count ?? 1);
    if (seen.has(f.name)) throw new TypeError(`${name}: duplicate field ${f.name}`);
    seen.add(f.name);
    if (!Number.isInteger(f.offset) || f.offset < 0 || f.offset + w > size) {
      throw new RangeError(`${name}.${f.name}: offset ${f.offset} outside a ${size}-byte struct`);
    }
    if (f.offset % a !== 0) throw new RangeError(`${name}.${f.name}: offset ${f.offset} not ${a}-aligned`);
    for (let i = f.offset; i < f.offset + w; i++) {
      if (used[i]) throw new RangeError(`${name}.${f.name}: overlaps another field`);
      used[i] = 1;
    }
    align = Math.max(align, a);
  }
  if (size % align !== 0) throw new RangeError(`${name}: size ${size} is not a multiple of ${align}`);
}

/** Reads one element (a scalar, or an embedded struct) at `offset` of the struct in `dv`. */
function readElement(dv: DataView, type: FieldKind, offset: number): unknown {
  if (typeof type !== 'string') {
    return type.decode(new Uint8Array(dv.buffer, dv.byteOffset + offset, type.size));
  }
  return readScalar(dv, type, offset);
}

/** Writes one element; `undefined` is 0 (an embedded struct: all its fields 0). */
function writeElement(dv: DataView, type: FieldKind, offset: number, v: unknown, label: string): void {
  if (typeof type !== 'string') {
    if (v !== undefined && (typeof v !== 'object' || v === null || Array.isArray(v))) {
      throw new TypeError(`${label}: expected a ${type.name} object`);
    }
    type.encode(v ?? {}, new Uint8Array(dv.buffer, dv.byteOffset + offset, type.size));
    return;
  }
  if (v !== undefined && typeof v !== 'number' && typeof v !== 'bigint') {
    throw new RangeError(`${label}: a ${typeof v} does not fit ${type}`);
  }
  writeScalar(dv, type, offset, v ?? 0, label);
}
function readScalar(dv: DataView, type: FieldType, offset: number): number | bigint {
  switch (type) {
    case 'u8':
      return dv.getUint8(offset);
    case 'u16':
      return dv.getUint16(offset, true);
    case 'u32':
      return dv.getUint32(offset, true);
    case 's32':
      return dv.getInt32(offset, true);
    case 'u64':
      return dv.getBigUint64(offset, true);
    case 's64':
      return dv.getBigInt64(offset, true);
  }
}

function writeScalar(dv: DataView, type: FieldType, offset: number, v: number | bigint, label: string): void {
  const bad = (): never => {
    throw new RangeError(`${label}: ${String(v)} does not fit ${type}`);
  };
  if (type === 'u64' || type === 's64') {
    let b: bigint;
    if (typeof v === 'bigint') b = v;
    else if (Number.isSafeInteger(v)) b = BigInt(v);
    else return bad();
    if (b < -TWO_63 || b >= TWO_64) return bad();
    if (type === 'u64') dv.setBigUint64(offset, BigInt.asUintN(64, b), true);
    else dv.setBigInt64(offset, BigInt.asIntN(64, b), true);
    return;
  }
  if (typeof v !== 'number' || !Number.isInteger(v)) return bad();
  const bits = WIDTH[type] * 8;
  if (v < -(2 ** (bits - 1)) || v >= 2 ** bits) return bad();
  switch (type) {
    case 'u8':
      dv.setUint8(offset, v & 0xff);
      return;
    case 'u16':
      dv.setUint16(offset, v & 0xffff, true);
      return;
    case 'u32':
      dv.setUint32(offset, v >>> 0, true);
      return;
    case 's32':
      dv.setInt32(offset, v | 0, true);
      return;
  }
}

// --- the hot path: scalars straight from and to the bytes (little-endian, as x86_64) ----------

/** Scalar type codes of the fast path. */
const U8 = 0;
const U16 = 1;
const U32 = 2;
const S32 = 3;
const U64 = 4;
const S64 = 5;
const CODE: Readonly<Record<FieldType, number>> = {
  u8: U8,
  u16: U16,
  u32: U32,
  s32: S32,
  u64: U64,
  s64: S64,
};
const TWO_32 = 2 ** 32;
/** |hi word| below this: hi * 2^32 + lo is a safe integer. */
const HI_SAFE = 2 ** 21;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function readU32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

/** What readScalar reads, from the bytes. */
function readFast(b: Uint8Array, o: number, code: number): number | bigint {
  switch (code) {
    case U8:
      return b[o]!;
    case U16:
      return b[o]! | (b[o + 1]! << 8);
    case U32:
      return readU32(b, o);
    case S32:
      return readU32(b, o) | 0;
    case U64: {
      const lo = readU32(b, o);
      const hi = readU32(b, o + 4);
      return hi < HI_SAFE ? BigInt(hi * TWO_32 + lo) : (BigInt(hi) << 32n) | BigInt(lo);
    }
    default: {
      const lo = readU32(b, o);
      const hi = readU32(b, o + 4) | 0;
      return hi >= -HI_SAFE && hi < HI_SAFE ? BigInt(hi * TWO_32 + lo) : (BigInt(hi) << 32n) + BigInt(lo);
    }
  }
}

function writeU32(b: Uint8Array, o: number, x: number): void {
  b[o] = x;
  b[o + 1] = x >>> 8;
  b[o + 2] = x >>> 16;
  b[o + 3] = x >>> 24;
}

/**
 * Writes what writeScalar writes for the common values (`undefined`, in-range integers,
 * non-negative safe 64-bit values, 64-bit bigints down to -2^63) and returns true; false leaves
 * everything else (negative 64-bit numbers, anything out of range or of the wrong type) to the
 * general path.
 */
function writeFast(b: Uint8Array, o: number, code: number, v: unknown): boolean {
  if (v === undefined) v = 0;
  if (code >= U64) {
    let n: number;
    if (typeof v === 'number') {
      if (!(v >= 0) || !Number.isSafeInteger(v)) return false;
      n = v;
    } else if (typeof v === 'bigint') {
      if (v < 0n && v >= -TWO_63) {
        // Two's complement, as both setBigUint64(asUintN) and setBigInt64(asIntN) store it
        // (`timeout_ns: -1n`): the general path's DataView would move a small array off-heap.
        const u = v + TWO_64;
        writeU32(b, o, Number(u & 0xffffffffn));
        writeU32(b, o + 4, Number(u >> 32n));
        return true;
      }
      if (v < 0n || v > MAX_SAFE) return false;
      n = Number(v);
    } else {
      return false;
    }
    // ToUint32 is n mod 2^32 for an integer below 2^53 (a float `%` would call fmod).
    const lo = n >>> 0;
    writeU32(b, o, lo);
    writeU32(b, o + 4, (n - lo) / TWO_32);
    return true;
  }
  if (typeof v !== 'number' || !Number.isInteger(v)) return false;
  switch (code) {
    case U8:
      if (v < -0x80 || v >= 0x100) return false;
      b[o] = v;
      return true;
    case U16:
      if (v < -0x8000 || v >= 0x10000) return false;
      b[o] = v;
      b[o + 1] = v >> 8;
      return true;
    default:
      if (v < -0x80000000 || v >= TWO_32) return false;
      writeU32(b, o, v >>> 0);
      return true;
  }
}
