import { describe, expect, it } from 'vitest';
import * as c from './i915_commands.js';

describe('command encodings (i915-uapi.md §1)', () => {
  it('constants', () => {
    expect(c.XY_SRC_COPY_BLT_CMD).toBe(0x54c00000);
    expect(c.XY_SRC_COPY_BLT_CMD).toBe(c.BLT_INSTR(0x53));
    expect(c.XY_SRC_COPY_BLT_WRITE_ALPHA).toBe(0x00200000);
    expect(c.XY_SRC_COPY_BLT_WRITE_RGB).toBe(0x00100000);
    expect(c.XY_SRC_COPY_BLT_SRC_TILED).toBe(1 << 15);
    expect(c.XY_SRC_COPY_BLT_DST_TILED).toBe(1 << 11);
    expect(c.XY_FAST_COPY_BLT).toBe(0x50800008);
    expect(c.XY_FAST_COPY_BLT).toBe(c.BLT_INSTR(0x42) | 8);
    expect(c.XY_FAST_COPY_COLOR_DEPTH_32).toBe(3 << 24);
    expect(c.MI_BATCH_BUFFER_END).toBe(0x05000000);
    expect(c.MI_BATCH_BUFFER_END).toBe(c.MI_INSTR(0xa, 0));
    expect(c.MI_NOOP).toBe(0);
    expect(c.MI_STORE_DWORD_IMM).toBe(0x10000002);
    expect(c.MI_STORE_DWORD_IMM_GEN4).toBe(c.MI_INSTR(0x20, 2));
    expect(c.COLOR_BLT_CMD).toBe(((2 << 29) | (0x40 << 22) | 3) >>> 0);
    expect(c.XY_COLOR_BLT_CMD).toBe(0x54000004);
    expect(c.BLT_WRITE_RGBA).toBe(0x00300000);
  });

  it('builds the gen < 8 XY_SRC_COPY batch dword for dword', () => {
    const dw0 = c.XY_SRC_COPY_BLT_CMD | c.BLT_WRITE_ALPHA | c.BLT_WRITE_RGB | c.XY_SRC_COPY_BLT_LEN;
    expect(dw0 >>> 0).toBe(0x54f00006);
    const br13 = c.BR13_8888 | c.BR13_ROP(c.BLT_ROP_SRC_COPY) | 2048;
    expect(br13).toBe(0x03cc0800);
    expect((512 << 16) | 512).toBe(0x02000200);
    expect(c.blt_dwords(dw0)).toBe(8);
    expect(c.instr_client(dw0)).toBe(c.INSTR_BC_CLIENT);
    expect(c.blt_opcode(dw0)).toBe(c.XY_SRC_COPY_BLT_OPCODE);
  });

  it('builds the gen >= 8 and fast-copy first dwords', () => {
    const dw0 = c.XY_SRC_COPY_BLT_CMD | c.BLT_WRITE_ALPHA | c.BLT_WRITE_RGB | c.XY_SRC_COPY_BLT_LEN_GEN8;
    expect(dw0 >>> 0).toBe(0x54f00008);
    expect(c.blt_dwords(dw0)).toBe(10);
    expect(c.blt_dwords(c.XY_FAST_COPY_BLT)).toBe(10);
    expect(c.blt_opcode(c.XY_FAST_COPY_BLT)).toBe(c.XY_FAST_COPY_BLT_OPCODE);
    expect(c.XY_FAST_COPY_COLOR_DEPTH_32 | 0x800).toBe(0x03000800);
  });

  it('decodes MI commands', () => {
    expect(c.instr_client(c.MI_BATCH_BUFFER_END)).toBe(c.INSTR_MI_CLIENT);
    expect(c.mi_opcode(c.MI_BATCH_BUFFER_END)).toBe(c.MI_BATCH_BUFFER_END_OPCODE);
    expect(c.mi_opcode(c.MI_STORE_DWORD_IMM)).toBe(c.MI_STORE_DWORD_IMM_OPCODE);
    expect(c.mi_opcode(c.MI_NOOP)).toBe(c.MI_NOOP_OPCODE);
    expect(c.BR13_ROP_MASK >>> 0).toBe(0x00ff0000);
    expect(c.INSTR_CLIENT_MASK).toBe(0xe0000000);
  });
});
