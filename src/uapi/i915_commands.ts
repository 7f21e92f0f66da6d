/**
 * Command-stream encodings the simulated engines execute and clients write into batch buffers
 * (the subset used by the userptr tests: MI control, the 2D blitter). Names and values as in
 * i915-uapi.md §1, which follows the GPU test suite's intel_reg.h and the kernel's i915_reg.h.
 *
 * A command's first dword carries the client in bits 31:29; MI commands keep their opcode in bits
 * 28:23, blitter (BC) commands in bits 28:22. A multi-dword command stores its length as
 * "dwords - 2" in the low bits.
 */

export const INSTR_CLIENT_SHIFT = 29;
export const INSTR_CLIENT_MASK = 0xe0000000;
export const INSTR_MI_CLIENT = 0x0;
/** 2D blitter client. */
export const INSTR_BC_CLIENT = 0x2;
export const INSTR_RC_CLIENT = 0x3;

/** `MI_INSTR(opcode, flags)` of the kernel's i915_reg.h: `opcode << 23 | flags`. */
export function MI_INSTR(opcode: number, flags: number): number {
  return ((opcode << 23) | flags) >>> 0;
}

/** A blitter command dword without length: `2 << 29 | opcode << 22`. */
export function BLT_INSTR(opcode: number): number {
  return ((INSTR_BC_CLIENT << INSTR_CLIENT_SHIFT) | (opcode << 22)) >>> 0;
}

/** Client of a command dword (INSTR_MI_CLIENT, INSTR_BC_CLIENT, ...). */
export function instr_client(dw: number): number {
  return dw >>> INSTR_CLIENT_SHIFT;
}
/** Opcode of an MI command (bits 28:23). */
export function mi_opcode(dw: number): number {
  return (dw >>> 23) & 0x3f;
}
/** Opcode of a blitter command (bits 28:22). */
export function blt_opcode(dw: number): number {
  return (dw >>> 22) & 0x7f;
}
/** Total dwords of a blitter command: length field (bits 7:0) + 2. */
export function blt_dwords(dw: number): number {
  return (dw & 0xff) + 2;
}

// --- MI -----------------------------------------------------------------------------------------

export const MI_NOOP = 0;
/** `0xA << 23`: ends the batch. */
export const MI_BATCH_BUFFER_END = 0x05000000;
/**
 * `(0x20 << 23) | 2` (the gen4+ form; the reference uses this value under both names): four dwords,
 * `[cmd, address_lo, address_hi, value]` from gen8, `[cmd, 0, address, value]` before.
 */
export const MI_STORE_DWORD_IMM_GEN4 = 0x10000002;
export const MI_STORE_DWORD_IMM = MI_STORE_DWORD_IMM_GEN4;

export const MI_NOOP_OPCODE = 0x00;
export const MI_BATCH_BUFFER_END_OPCODE = 0x0a;
export const MI_STORE_DWORD_IMM_OPCODE = 0x20;

// --- 2D blitter ---------------------------------------------------------------------------------

export const XY_SRC_COPY_BLT_OPCODE = 0x53;
export const XY_FAST_COPY_BLT_OPCODE = 0x42;
export const COLOR_BLT_OPCODE = 0x40;
export const XY_COLOR_BLT_OPCODE = 0x50;

/**
 * `(2 << 29) | (0x53 << 22)`, without length: OR in 6 (8 dwords) before gen8, 8 (10 dwords, 64-bit
 * addresses) from gen8.
 */
export const XY_SRC_COPY_BLT_CMD = 0x54c00000;
export const XY_SRC_COPY_BLT_WRITE_ALPHA = 1 << 21;
export const XY_SRC_COPY_BLT_WRITE_RGB = 1 << 20;
/** Not used by the modelled clients: all their surfaces are linear. */
export const XY_SRC_COPY_BLT_SRC_TILED = 1 << 15;
/** Not used by the modelled clients: all their surfaces are linear. */
export const XY_SRC_COPY_BLT_DST_TILED = 1 << 11;
/** Length field of XY_SRC_COPY_BLT before gen8 (8 dwords). */
export const XY_SRC_COPY_BLT_LEN = 6;
/** Length field of XY_SRC_COPY_BLT from gen8 (10 dwords). */
export const XY_SRC_COPY_BLT_LEN_GEN8 = 8;

/** The same write-enable bits under the generic names used by COLOR_BLT and XY_COLOR_BLT. */
export const BLT_WRITE_ALPHA = XY_SRC_COPY_BLT_WRITE_ALPHA;
export const BLT_WRITE_RGB = XY_SRC_COPY_BLT_WRITE_RGB;
export const BLT_WRITE_RGBA = BLT_WRITE_ALPHA | BLT_WRITE_RGB;
export const BLT_SRC_TILED = XY_SRC_COPY_BLT_SRC_TILED;
export const BLT_DST_TILED = XY_SRC_COPY_BLT_DST_TILED;

/**
 * `(2 << 29) | (0x42 << 22) | 8`, length included: 10 dwords, no ROP, always 64-bit addresses
 * (gen9+, the only copy on gen12+ parts without XY_SRC_COPY).
 */
export const XY_FAST_COPY_BLT = 0x50800008;
/** XY_FAST_COPY_BLT dword 1, bits 25:24: 32 bits per pixel. */
export const XY_FAST_COPY_COLOR_DEPTH_32 = 3 << 24;

/** `(2 << 29) | (0x40 << 22) | 3` (5 dwords). Not used by the modelled clients. */
export const COLOR_BLT_CMD = 0x50000003;
/**
 * `(2 << 29) | (0x50 << 22)` without length: OR in 4 (6 dwords) before gen8, 5 from gen8. Not in
 * i915-uapi.md; from the GPU test suite's intel_reg.h.
 */
export const XY_COLOR_BLT_CMD_NOLEN = 0x54000000;
/** XY_COLOR_BLT with the pre-gen8 length (6 dwords). Not in i915-uapi.md. */
export const XY_COLOR_BLT_CMD = (XY_COLOR_BLT_CMD_NOLEN | 4) >>> 0;

// --- BR13 (dword 1 of the XY blits): colour depth, raster operation, destination pitch -----------

export const BR13_COLOR_DEPTH_SHIFT = 24;
export const BR13_COLOR_DEPTH_MASK = 3 << BR13_COLOR_DEPTH_SHIFT;
export const BR13_8 = 0 << BR13_COLOR_DEPTH_SHIFT;
export const BR13_565 = 1 << BR13_COLOR_DEPTH_SHIFT;
export const BR13_1555 = 2 << BR13_COLOR_DEPTH_SHIFT;
/** 32 bits per pixel: the only depth the modelled clients use. */
export const BR13_8888 = 3 << BR13_COLOR_DEPTH_SHIFT;
export const BR13_ROP_SHIFT = 16;
export const BR13_ROP_MASK = 0xff << BR13_ROP_SHIFT;
/** Destination pitch in bytes (bits 15:0). */
export const BR13_PITCH_MASK = 0xffff;

/** Raster operation SRCCOPY: dst = src. */
export const BLT_ROP_SRC_COPY = 0xcc;
/** Raster operation PATCOPY: dst = pattern (the solid colour of COLOR_BLT/XY_COLOR_BLT). */
export const BLT_ROP_PAT_COPY = 0xf0;
/** BR13 field of a raster operation: `rop << 16`. */
export function BR13_ROP(rop: number): number {
  return (rop & 0xff) << BR13_ROP_SHIFT;
}
