import * as uapi from '../uapi/index.js';

/**
 * A batch-buffer builder for the blitter and MI commands the simulated engines execute, producing
 * the exact dwords of reference/i915-uapi.md §1 (and the GPU test suite's copy / fill / store
 * helpers) for gen 7 (32-bit addresses) and gen 8 (64-bit addresses), together with the
 * relocation entries execbuffer2 needs to patch the addresses in.
 *
 * Address dwords hold `presumed_offset + delta` (0 + delta for a fresh object), so a batch is
 * also valid with I915_EXEC_NO_RELOC once the presumed offsets are right.
 */

/** One drm_i915_gem_relocation_entry of a batch (before it is written to user memory). */
export interface Relocation {
  /** Byte offset in the batch of the address to patch. */
  offset: number;
  /** Handle of the object whose GTT address goes there (an index with I915_EXEC_HANDLE_LUT). */
  target_handle: number;
  /** Added to the target's address. */
  delta: number;
  read_domains: number;
  write_domain: number;
  /** Where user space believes the target is (in/out). */
  presumed_offset: bigint;
}

export interface CopyBlit {
  dst: number;
  src: number;
  /** Rectangle in pixels (32 bpp). Default 512 × 512. */
  width?: number;
  height?: number;
  /** Pitches in bytes. Default 2048. */
  dst_pitch?: number;
  src_pitch?: number;
  dst_x?: number;
  dst_y?: number;
  src_x?: number;
  src_y?: number;
  /** Byte offsets added to the objects' addresses. */
  dst_delta?: number;
  src_delta?: number;
  dst_presumed?: bigint;
  src_presumed?: bigint;
}

export interface FillBlit {
  dst: number;
  /** 32-bit ARGB value written to every pixel. */
  color: number;
  x1?: number;
  y1?: number;
  /** Exclusive bottom-right corner. Default 512 × 512. */
  x2?: number;
  y2?: number;
  pitch?: number;
  dst_delta?: number;
  dst_presumed?: bigint;
}

const u32 = (x: number): number => x >>> 0;
const xy = (x: number, y: number): number => u32(((y & 0xffff) << 16) | (x & 0xffff));

export class BlitBatch {
  /** The commands so far, one unsigned 32-bit value per dword. */
  readonly dwords: number[] = [];
  /** Relocations, in the order their addresses appear in the batch. */
  readonly relocs: Relocation[] = [];

  constructor(readonly gen: 7 | 8) {}

  /** Byte offset of the next dword. */
  get offset(): number {
    return this.dwords.length * 4;
  }

  /** Batch length in bytes (execbuffer2's batch_len). */
  get length(): number {
    return this.dwords.length * 4;
  }

  /** Appends raw dwords. */
  emit(...dw: number[]): this {
    for (const d of dw) this.dwords.push(u32(d));
    return this;
  }

  /** An address of `target` + `delta`: one dword before gen 8, two from gen 8, with its relocation. */
  reloc(
    target_handle: number,
    delta: number,
    read_domains: number,
    write_domain: number,
    presumed_offset = 0n,
  ): this {
    this.relocs.push({
      offset: this.offset,
      target_handle,
      delta,
      read_domains,
      write_domain,
      presumed_offset,
    });
    const addr = BigInt.asUintN(64, presumed_offset + BigInt(delta));
    this.emit(Number(addr & 0xffffffffn));
    if (this.gen >= 8) this.emit(Number(addr >> 32n));
    return this;
  }

  /** XY_SRC_COPY_BLT, 32 bpp, SRCCOPY, linear surfaces. */
  copy(b: CopyBlit): this {
    const width = b.width ?? 512;
    const height = b.height ?? 512;
    const dx = b.dst_x ?? 0;
    const dy = b.dst_y ?? 0;
    const len = this.gen >= 8 ? uapi.XY_SRC_COPY_BLT_LEN_GEN8 : uapi.XY_SRC_COPY_BLT_LEN;
    const R = uapi.I915_GEM_DOMAIN_RENDER;
    this.emit(
      uapi.XY_SRC_COPY_BLT_CMD | uapi.XY_SRC_COPY_BLT_WRITE_ALPHA | uapi.XY_SRC_COPY_BLT_WRITE_RGB | len,
    );
    this.emit(
      uapi.BR13_8888 | uapi.BR13_ROP(uapi.BLT_ROP_SRC_COPY) | ((b.dst_pitch ?? 2048) & uapi.BR13_PITCH_MASK),
    );
    this.emit(xy(dx, dy), xy(dx + width, dy + height));
    this.reloc(b.dst, b.dst_delta ?? 0, R, R, b.dst_presumed);
    this.emit(xy(b.src_x ?? 0, b.src_y ?? 0), (b.src_pitch ?? 2048) & 0xffff);
    this.reloc(b.src, b.src_delta ?? 0, R, 0, b.src_presumed);
    return this;
  }

  /** XY_COLOR_BLT, 32 bpp, PATCOPY of a solid colour. */
  fill(b: FillBlit): this {
    const len = this.gen >= 8 ? 5 : 4;
    const R = uapi.I915_GEM_DOMAIN_RENDER;
    this.emit(
      uapi.XY_COLOR_BLT_CMD_NOLEN | uapi.XY_SRC_COPY_BLT_WRITE_ALPHA | uapi.XY_SRC_COPY_BLT_WRITE_RGB | len,
    );
    this.emit(
      uapi.BR13_8888 | uapi.BR13_ROP(uapi.BLT_ROP_PAT_COPY) | ((b.pitch ?? 2048) & uapi.BR13_PITCH_MASK),
    );
    this.emit(xy(b.x1 ?? 0, b.y1 ?? 0), xy(b.x2 ?? 512, b.y2 ?? 512));
    this.reloc(b.dst, b.dst_delta ?? 0, R, R, b.dst_presumed);
    this.emit(b.color);
    return this;
  }

  /**
   * MI_STORE_DWORD_IMM: write `value` at byte `delta` of `target`. Gen 7: [cmd, 0, addr, value];
   * gen 8: [cmd, addr_lo, addr_hi, value].
   */
  storeDword(target: number, delta: number, value: number, presumed_offset = 0n): this {
    const I = uapi.I915_GEM_DOMAIN_INSTRUCTION;
    this.emit(uapi.MI_STORE_DWORD_IMM);
    if (this.gen < 8) this.emit(0);
    this.reloc(target, delta, I, I, presumed_offset);
    this.emit(value);
    return this;
  }

  /** MI_BATCH_BUFFER_END, padded with MI_NOOP to an even number of dwords (qword aligned). */
  end(): this {
    this.emit(uapi.MI_BATCH_BUFFER_END);
    if (this.dwords.length % 2) this.emit(uapi.MI_NOOP);
    return this;
  }

  /** The batch as little-endian bytes (what gem_write uploads). */
  bytes(): Uint8Array {
    // Byte by byte: a DataView would need `out.buffer`, which moves a small array off V8's heap.
    const dw = this.dwords;
    const out = new Uint8Array(dw.length * 4);
    for (let i = 0; i < dw.length; i++) {
      const d = dw[i]!;
      out[4 * i] = d;
      out[4 * i + 1] = d >>> 8;
      out[4 * i + 2] = d >>> 16;
      out[4 * i + 3] = d >>> 24;
    }
    return out;
  }
}
