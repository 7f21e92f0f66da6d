import { describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '../base/page.js';
import { Engine, type ExecResult } from '../hw/engine.js';
import { GlobalGtt } from '../hw/gtt.js';
import { PhysicalMemory } from '../hw/ram.js';
import * as uapi from '../uapi/index.js';
import { BlitBatch, type Relocation } from './batch.js';

const R = uapi.I915_GEM_DOMAIN_RENDER;
const I = uapi.I915_GEM_DOMAIN_INSTRUCTION;
const DST = 7;
const SRC = 9;

const reloc = (offset: number, target_handle: number, write: boolean, domain = R): Relocation => ({
  offset,
  target_handle,
  delta: 0,
  read_domains: domain,
  write_domain: write ? domain : 0,
  presumed_offset: 0n,
});

describe('BlitBatch: the exact dwords of reference/i915-uapi.md §1', () => {
  it('gen 7 XY_SRC_COPY_BLT (8 dwords, relocations at bytes 16 and 28)', () => {
    const b = new BlitBatch(7).copy({ dst: DST, src: SRC }).end();
    expect(b.dwords).toEqual([
      0x54f00006, 0x03cc0800, 0x00000000, 0x02000200, 0, 0x00000000, 0x00000800, 0, 0x05000000, 0x00000000,
    ]);
    expect(b.relocs).toEqual([reloc(16, DST, true), reloc(28, SRC, false)]);
    expect(b.length).toBe(40);
  });

  it('gen 8 XY_SRC_COPY_BLT (10 dwords, 64-bit addresses, relocations at bytes 16 and 32)', () => {
    const b = new BlitBatch(8).copy({ dst: DST, src: SRC }).end();
    expect(b.dwords).toEqual([0x54f00008, 0x03cc0800, 0, 0x02000200, 0, 0, 0, 0x800, 0, 0, 0x05000000, 0]);
    expect(b.relocs).toEqual([reloc(16, DST, true), reloc(32, SRC, false)]);
    expect(b.length).toBe(48);
  });

  it('writes presumed offset + delta into the address dwords, and little-endian bytes', () => {
    const b = new BlitBatch(8).copy({
      dst: DST,
      src: SRC,
      dst_delta: 0x40,
      dst_presumed: 0x1_2345_0000n,
      src_presumed: 0x8000n,
      width: 16,
      height: 2,
      dst_pitch: 256,
      src_pitch: 512,
      dst_x: 3,
      dst_y: 4,
      src_x: 1,
      src_y: 2,
    });
    expect(b.dwords).toEqual([
      0x54f00008, 0x03cc0100, 0x00040003, 0x00060013, 0x23450040, 0x1, 0x00020001, 0x200, 0x8000, 0,
    ]);
    expect(b.relocs[0]).toMatchObject({ offset: 16, delta: 0x40, presumed_offset: 0x1_2345_0000n });
    const bytes = b.bytes();
    expect([...bytes.subarray(0, 4)]).toEqual([0x08, 0x00, 0xf0, 0x54]);
    expect(new BlitBatch(7).copy({ dst: 1, src: 2, src_delta: 12, src_presumed: 0x1000n }).dwords[7]).toBe(
      0x100c,
    );
  });

  it('XY_COLOR_BLT and MI_STORE_DWORD_IMM per generation', () => {
    const f7 = new BlitBatch(7).fill({ dst: DST, color: 0xff00ff00 }).end();
    expect(f7.dwords).toEqual([0x54300004, 0x03f00800, 0, 0x02000200, 0, 0xff00ff00, 0x05000000, 0]);
    expect(f7.relocs).toEqual([reloc(16, DST, true)]);
    const f8 = new BlitBatch(8).fill({ dst: DST, color: 1, x1: 1, y1: 2, x2: 3, y2: 4, pitch: 64 }).end();
    expect(f8.dwords).toEqual([0x54300005, 0x03f00040, 0x00020001, 0x00040003, 0, 0, 1, 0x05000000]);
    const s7 = new BlitBatch(7).storeDword(DST, 8, 0xcafe).end();
    expect(s7.dwords).toEqual([0x10000002, 0, 8, 0xcafe, 0x05000000, 0]);
    expect(s7.relocs).toEqual([{ ...reloc(8, DST, true, I), delta: 8 }]);
    const s8 = new BlitBatch(8).storeDword(DST, 8, 0xcafe).end();
    expect(s8.dwords).toEqual([0x10000002, 8, 0, 0xcafe, 0x05000000, 0]);
    expect(s8.relocs).toEqual([{ ...reloc(4, DST, true, I), delta: 8 }]);
  });
});

/**
 * The builder's batches run on the hardware model: relocations are applied by hand (what
 * execbuffer2 does), then the blitter executes them through the GTT.
 */
describe('BlitBatch on the engine', () => {
  for (const gen of [7, 8] as const) {
    it(`gen ${gen}: a copy, a fill and a store do what they say`, () => {
      const ram = new PhysicalMemory(8 << 20, (kind, message) => {
        throw new Error(`${kind}: ${message}`);
      });
      const gtt = new GlobalGtt(ram, { scratchPfn: ram.alloc_page(), gttBytes: 16 << 20, report: () => {} });
      const bind = (gttAddr: number, bytes: number): number[] => {
        const pfns = Array.from({ length: bytes / PAGE_SIZE }, () => ram.alloc_page());
        gtt.insert_entries(gttAddr / PAGE_SIZE, pfns);
        return pfns;
      };
      const where: Record<number, number> = { [SRC]: 0x100000, [DST]: 0x300000 };
      bind(where[SRC]!, 1 << 20);
      bind(where[DST]!, 2 << 20);
      const src = new Uint8Array(1 << 20).map((_, i) => (i * 7) & 0xff);
      gtt.write(where[SRC]!, src);
      const b = new BlitBatch(gen)
        .copy({ dst: DST, src: SRC })
        .fill({ dst: DST, color: 0x11223344, x1: 0, y1: 600, x2: 2, y2: 601 })
        .storeDword(DST, 0x80000, 0xdeadbeef)
        .end();
      const bytes = b.bytes();
      const dv = new DataView(bytes.buffer);
      for (const r of b.relocs) {
        const addr = where[r.target_handle]! + r.delta;
        dv.setUint32(r.offset, addr, true);
        if (gen >= 8) dv.setUint32(r.offset + 4, 0, true);
      }
      bind(0x10000, PAGE_SIZE);
      gtt.write(0x10000, bytes);
      const engine = new Engine(gtt, { id: 'bcs', gen });
      const run = engine.execute(0x10000, b.length);
      let step = run.next();
      while (!step.done) step = run.next();
      const res: ExecResult = step.value;
      expect(res.ok).toBe(true);
      const out = new Uint8Array(2 << 20);
      gtt.read(where[DST]!, out);
      expect(out.subarray(0, 2048).every((v, i) => v === src[i])).toBe(true);
      expect(out.subarray(511 * 2048, 512 * 2048).every((v, i) => v === src[511 * 2048 + i])).toBe(true);
      expect([...out.subarray(600 * 2048, 600 * 2048 + 12)]).toEqual([
        0x44, 0x33, 0x22, 0x11, 0x44, 0x33, 0x22, 0x11, 0, 0, 0, 0,
      ]);
      expect(new DataView(out.buffer).getUint32(0x80000, true)).toBe(0xdeadbeef);
    });
  }
});
