import { describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '../base/page.js';
import { Prng } from '../base/prng.js';
import type { Point } from '../sched/task.js';
import {
  BLT_ROP_PAT_COPY,
  BLT_WRITE_RGBA,
  BR13_8888,
  BR13_ROP,
  MI_BATCH_BUFFER_END,
  MI_NOOP,
  MI_STORE_DWORD_IMM,
  XY_COLOR_BLT_CMD_NOLEN,
} from '../uapi/i915_commands.js';
import {
  Engine,
  GPU_BYTES_PER_NS,
  GPU_CMD_NS,
  INSTDONE_CS,
  INSTDONE_IDLE,
  INSTDONE_MEM,
  type ExecFault,
  type ExecResult,
  type GpuGen,
} from './engine.js';
import { GlobalGtt } from './gtt.js';
import { PhysicalMemory, POISON_BYTE, type RamReportKind } from './ram.js';

const SEED = Number(process.env.SEED ?? 1);
const MiB = 1024 * 1024;
const GTT_BYTES = 64 * MiB;

/** GTT layout of the tests: batch, source surface, destination surface. */
const BATCH = 0x10000;
const SRC = 0x100000;
const DST = 0x400000;

interface Rig {
  ram: PhysicalMemory;
  gtt: GlobalGtt;
  bcs: Engine;
  rcs: Engine;
  reports: { kind: RamReportKind; message: string }[];
  prng: Prng;
}

function rig(gen: GpuGen, seed = SEED): Rig {
  const reports: Rig['reports'] = [];
  const report = (kind: RamReportKind, message: string): void => void reports.push({ kind, message });
  const ram = new PhysicalMemory(32 * MiB, report);
  const gtt = new GlobalGtt(ram, { scratchPfn: ram.alloc_page(), gttBytes: GTT_BYTES, report });
  return {
    ram,
    gtt,
    reports,
    bcs: new Engine(gtt, { id: 'bcs', gen }),
    rcs: new Engine(gtt, { id: 'rcs', gen }),
    prng: new Prng(seed),
  };
}

function shuffle(prng: Prng, a: number[]): number[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = prng.below(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** Binds `bytes` of fresh frames at gttAddr; shuffled frames unless contiguous. Returns the pfns. */
function bind(r: Rig, gttAddr: number, bytes: number, contiguous = false): number[] {
  const frames: number[] = [];
  for (let k = 0; k < bytes / PAGE_SIZE; k++) frames.push(r.ram.alloc_page());
  if (!contiguous) shuffle(r.prng, frames);
  r.gtt.insert_entries(gttAddr / PAGE_SIZE, frames);
  return frames;
}

/** Writes the batch into its own frame, mapped at BATCH. Returns its length in bytes. */
function batch(r: Rig, dwords: readonly number[]): number {
  if (!r.gtt.isBound(BATCH / PAGE_SIZE)) bind(r, BATCH, 2 * PAGE_SIZE);
  const b = new Uint8Array(dwords.length * 4);
  const dv = new DataView(b.buffer);
  dwords.forEach((d, i) => dv.setUint32(4 * i, d >>> 0, true));
  r.gtt.write(BATCH, b);
  return b.length;
}

/** Runs the engine's generator to completion, collecting its scheduling points. */
function run(e: Engine, at: number, len: number): { res: ExecResult; points: Point[] } {
  const g = e.execute(at, len);
  const points: Point[] = [];
  for (;;) {
    const s = g.next();
    if (s.done) return { res: s.value, points };
    points.push(s.value);
  }
}

function fault(res: ExecResult): ExecFault {
  if (res.ok) throw new Error('expected a hang');
  return res;
}

function readBytes(r: Rig, at: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  expect(r.gtt.read(at, b)).toBe(true);
  return b;
}

function randomFill(r: Rig, at: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  r.prng.fill(b);
  r.gtt.write(at, b);
  return b;
}

/** The reference's XY_SRC_COPY_BLT batch (i915-uapi.md §1), relocations applied. */
function copyBatch(gen: GpuGen, dst: number, src: number): number[] {
  const garbage = [0xdeadbeef, 0xfeedface];
  if (gen < 8) return [0x54f00006, 0x03cc0800, 0, 0x02000200, dst, 0, 0x800, src, 0x05000000, 0, ...garbage];
  return [0x54f00008, 0x03cc0800, 0, 0x02000200, dst, 0, 0, 0x800, src, 0, 0x05000000, 0];
}

for (const gen of [7, 8] as const) {
  describe(`Engine gen${gen} (seed ${SEED})`, () => {
    it('executes the reference 512x512 XY_SRC_COPY_BLT: exactly the first 1 MiB is copied', () => {
      const r = rig(gen);
      bind(r, SRC, 2 * MiB);
      bind(r, DST, 2 * MiB);
      const src = randomFill(r, SRC, 2 * MiB);
      const dst = randomFill(r, DST, 2 * MiB);
      const len = batch(r, copyBatch(gen, DST, SRC));
      const { res, points } = run(r.bcs, BATCH, len);
      expect(res).toEqual({ ok: true, dwords: gen < 8 ? 9 : 11, commands: 2, bytes: MiB });
      const got = readBytes(r, DST, 2 * MiB);
      expect(Buffer.compare(got.subarray(0, MiB), src.subarray(0, MiB))).toBe(0);
      expect(Buffer.compare(got.subarray(MiB), dst.subarray(MiB))).toBe(0);
      expect(points.map((p) => p.detail)).toEqual(['XY_SRC_COPY_BLT', 'MI_BATCH_BUFFER_END']);
      expect(points[0]).toMatchObject({
        op: 'gpu_cmd',
        resource: 'bcs',
        cost: GPU_CMD_NS + MiB / GPU_BYTES_PER_NS,
      });
      expect(points[1]!.cost).toBe(GPU_CMD_NS);
      expect(r.bcs.hung).toBe(false);
      expect(r.bcs.busy).toBe(false);
      expect(r.bcs.stats).toMatchObject({ batches: 1, commands: 2, bytes: MiB, hangs: 0 });
      expect(r.reports).toEqual([]);
    });

    it('src == dst is a valid no-op', () => {
      const r = rig(gen);
      bind(r, SRC, MiB);
      const before = randomFill(r, SRC, MiB);
      const { res } = run(r.bcs, BATCH, batch(r, copyBatch(gen, SRC, SRC)));
      expect(res.ok).toBe(true);
      expect(Buffer.compare(readBytes(r, SRC, MiB), before)).toBe(0);
    });

    it('honours pitches and rectangles over non-contiguous frames (checked against plain JS)', () => {
      const r = rig(gen);
      bind(r, SRC, MiB);
      bind(r, DST, MiB);
      const src = randomFill(r, SRC, MiB);
      const dst = randomFill(r, DST, MiB);
      const dstPitch = 3000;
      const srcPitch = 2052;
      const [dx1, dy1, dx2, dy2] = [13, 7, 13 + 301, 7 + 200];
      const [sx1, sy1] = [5, 11];
      const cmd = (0x54c00000 | BLT_WRITE_RGBA | (gen < 8 ? 6 : 8)) >>> 0;
      const br13 = (BR13_8888 | BR13_ROP(0xcc) | dstPitch) >>> 0;
      const dxy1 = (dy1 << 16) | dx1;
      const dxy2 = (dy2 << 16) | dx2;
      const sxy = (sy1 << 16) | sx1;
      const dwords =
        gen < 8
          ? [cmd, br13, dxy1, dxy2, DST, sxy, srcPitch, SRC]
          : [cmd, br13, dxy1, dxy2, DST, 0, sxy, srcPitch, SRC, 0];
      const { res } = run(r.bcs, BATCH, batch(r, [...dwords, MI_BATCH_BUFFER_END, MI_NOOP]));
      expect(res.ok).toBe(true);
      const want = dst.slice();
      for (let y = 0; y < dy2 - dy1; y++) {
        for (let x = 0; x < (dx2 - dx1) * 4; x++) {
          want[(dy1 + y) * dstPitch + dx1 * 4 + x] = src[(sy1 + y) * srcPitch + sx1 * 4 + x]!;
        }
      }
      expect(Buffer.compare(readBytes(r, DST, MiB), want)).toBe(0);
    });

    it('XY_COLOR_BLT fills the rectangle with the colour', () => {
      const r = rig(gen);
      bind(r, DST, MiB);
      const dst = randomFill(r, DST, MiB);
      const pitch = 4100;
      const colour = 0x80ff4020;
      const cmd = (XY_COLOR_BLT_CMD_NOLEN | BLT_WRITE_RGBA | (gen < 8 ? 4 : 5)) >>> 0;
      const br13 = (BR13_8888 | BR13_ROP(BLT_ROP_PAT_COPY) | pitch) >>> 0;
      const [x1, y1, x2, y2] = [3, 2, 103, 52];
      const dwords =
        gen < 8
          ? [cmd, br13, (y1 << 16) | x1, (y2 << 16) | x2, DST, colour]
          : [cmd, br13, (y1 << 16) | x1, (y2 << 16) | x2, DST, 0, colour];
      const { res, points } = run(r.bcs, BATCH, batch(r, [...dwords, MI_BATCH_BUFFER_END]));
      expect(res).toEqual({ ok: true, dwords: dwords.length + 1, commands: 2, bytes: 100 * 50 * 4 });
      expect(points[0]!.detail).toBe('XY_COLOR_BLT');
      const want = dst.slice();
      for (let y = y1; y < y2; y++) {
        for (let x = x1; x < x2; x++) {
          for (let k = 0; k < 4; k++) want[y * pitch + x * 4 + k] = (colour >>> (8 * k)) & 0xff;
        }
      }
      expect(Buffer.compare(readBytes(r, DST, MiB), want)).toBe(0);
    });

    it('a rectangle with x2 <= x1 or y2 <= y1 is a no-op, not a hang', () => {
      const r = rig(gen);
      bind(r, DST, MiB);
      const before = randomFill(r, DST, MiB);
      const b = copyBatch(gen, DST, 0x7fffffff);
      b[3] = 0x02000000; // x2 = 0
      const { res } = run(r.bcs, BATCH, batch(r, b));
      expect(res).toMatchObject({ ok: true, bytes: 0 });
      expect(Buffer.compare(readBytes(r, DST, MiB), before)).toBe(0);
    });

    it('MI_STORE_DWORD_IMM stores a dword (and a qword with length 3)', () => {
      const r = rig(gen);
      bind(r, DST, 2 * PAGE_SIZE);
      const addr = DST + PAGE_SIZE - 4;
      const sdi = (a: number, ...v: number[]): number[] =>
        gen < 8
          ? [MI_STORE_DWORD_IMM + v.length - 1, 0, a, ...v]
          : [MI_STORE_DWORD_IMM + v.length - 1, a, 0, ...v];
      const { res, points } = run(
        r.rcs,
        BATCH,
        batch(r, [...sdi(addr, 0xc0ffee00), ...sdi(addr + 8, 0x11111111, 0x22222222), MI_BATCH_BUFFER_END]),
      );
      expect(res).toEqual({ ok: true, dwords: 4 + 5 + 1, commands: 3, bytes: 12 });
      expect(points.map((p) => p.detail)).toEqual([
        'MI_STORE_DWORD_IMM',
        'MI_STORE_DWORD_IMM',
        'MI_BATCH_BUFFER_END',
      ]);
      expect(r.gtt.readDword(addr)).toBe(0xc0ffee00);
      expect(r.gtt.readDword(addr + 8)).toBe(0x11111111);
      expect(r.gtt.readDword(addr + 12)).toBe(0x22222222);
      // The low two address bits are ignored.
      run(r.rcs, BATCH, batch(r, [...sdi(DST + 2, 0x12345678), MI_BATCH_BUFFER_END]));
      expect(r.gtt.readDword(DST)).toBe(0x12345678);
    });

    it('hangs on an unknown command with head at the command', () => {
      const r = rig(gen);
      const { res, points } = run(
        r.bcs,
        BATCH,
        batch(r, [MI_NOOP, MI_NOOP, 0x0b000000, MI_BATCH_BUFFER_END]),
      );
      expect(fault(res)).toMatchObject({
        reason: 'unknown-command',
        head: BATCH + 8,
        ipehr: 0x0b000000,
        instdone: (INSTDONE_IDLE & ~INSTDONE_CS) >>> 0,
        bbaddr: BATCH,
        faultAddr: -1,
        dwords: 2,
        commands: 2,
      });
      expect(points).toHaveLength(2);
      expect(r.bcs.hung).toBe(true);
      expect(r.bcs.lastFault).toBe(res);
      expect(r.bcs.acthd).toBe(BATCH + 8);
      // A hung engine executes nothing until reset.
      const again = run(r.bcs, BATCH, batch(r, [MI_BATCH_BUFFER_END]));
      expect(fault(again.res).reason).toBe('engine-hung');
      expect(again.points).toHaveLength(0);
      r.bcs.reset();
      expect(run(r.bcs, BATCH, 4).res.ok).toBe(true);
      expect(r.bcs.stats).toMatchObject({ hangs: 1, resets: 1 });
    });

    it('hangs when the batch ends without MI_BATCH_BUFFER_END, or inside a command', () => {
      const r = rig(gen);
      const f1 = fault(run(r.bcs, BATCH, batch(r, [MI_NOOP, MI_NOOP])).res);
      expect(f1).toMatchObject({ reason: 'batch-overrun', head: BATCH + 8, ipehr: 0, dwords: 2 });
      r.bcs.reset();
      // The blit is cut after 4 dwords: the first dword it cannot fetch is the failing one.
      const b = copyBatch(gen, DST, SRC);
      batch(r, b);
      const f2 = fault(run(r.bcs, BATCH, 16).res);
      expect(f2).toMatchObject({ reason: 'batch-overrun', head: BATCH + 16, ipehr: b[0], dwords: 0 });
      r.bcs.reset();
      const f3 = fault(run(r.bcs, BATCH, 0).res);
      expect(f3).toMatchObject({ reason: 'batch-overrun', head: BATCH });
      r.bcs.reset();
      const f4 = fault(run(r.bcs, BATCH, Number.NaN).res);
      expect(f4.reason).toBe('batch-overrun');
    });

    it('hangs on an access outside the GTT, with head at the command and the faulting address', () => {
      const r = rig(gen);
      bind(r, SRC, MiB);
      const out = GTT_BYTES - 0x1000; // the destination's rows run off the end of the GTT
      const { res } = run(r.bcs, BATCH, batch(r, [MI_NOOP, ...copyBatch(gen, out, SRC)]));
      expect(fault(res)).toMatchObject({
        reason: 'gtt-fault',
        head: BATCH + 4,
        ipehr: copyBatch(gen, 0, 0)[0],
        instdone: (INSTDONE_IDLE & ~INSTDONE_MEM) >>> 0,
        faultAddr: out + 511 * 2048,
        dwords: 1,
      });
      r.bcs.reset();
      // Source outside the GTT.
      const f2 = fault(run(r.bcs, BATCH, batch(r, copyBatch(gen, SRC, GTT_BYTES))).res);
      expect(f2).toMatchObject({ reason: 'gtt-fault', head: BATCH, faultAddr: GTT_BYTES });
      expect(f2.message).toContain('source');
      r.bcs.reset();
      // A store outside the GTT.
      const sdi =
        gen < 8
          ? [MI_STORE_DWORD_IMM, 0, GTT_BYTES, 1]
          : [MI_STORE_DWORD_IMM, 0, 1, 1]; /* 2^32: beyond a 64 MiB GTT */
      const f3 = fault(run(r.rcs, BATCH, batch(r, [...sdi, MI_BATCH_BUFFER_END])).res);
      expect(f3).toMatchObject({
        reason: 'gtt-fault',
        head: BATCH,
        faultAddr: gen < 8 ? GTT_BYTES : 2 ** 32,
      });
      // A batch that runs off the end of the GTT.
      // A batch that runs off the end of the GTT: the last page is scratch (zeros, MI_NOOP), then
      // the fetch at the GTT's end faults.
      r.rcs.reset();
      const f4 = fault(run(r.bcs, GTT_BYTES - 4, 64).res);
      expect(f4).toMatchObject({
        reason: 'gtt-fault',
        head: GTT_BYTES,
        faultAddr: GTT_BYTES,
        dwords: 1,
        ipehr: 0,
      });
    });

    it('hangs on unsupported blit fields and on blits sent to the render ring', () => {
      const r = rig(gen);
      bind(r, SRC, MiB);
      bind(r, DST, MiB);
      const cases: [string, (b: number[]) => void][] = [
        ['colour depth', (b) => (b[1] = 0x02cc0800)],
        ['raster operation', (b) => (b[1] = 0x03660800)],
        ['tiled', (b) => (b[0] = (b[0]! | (1 << 11)) >>> 0)],
        ['length', (b) => (b[0] = (b[0]! ^ 0xe) >>> 0)],
      ];
      for (const [what, mutate] of cases) {
        const b = copyBatch(gen, DST, SRC);
        mutate(b);
        const f = fault(run(r.bcs, BATCH, batch(r, b)).res);
        expect(f.reason, what).toBe('bad-command');
        expect(f.head).toBe(BATCH);
        r.bcs.reset();
      }
      // XY_FAST_COPY_BLT (gen9+) is not a command of gen7/8.
      const fast = [0x50800008, 0x03000800, 0, 0x02000200, DST, 0, 0, 0x800, SRC, 0, MI_BATCH_BUFFER_END, 0];
      expect(fault(run(r.bcs, BATCH, batch(r, fast)).res)).toMatchObject({
        reason: 'unknown-command',
        head: BATCH,
      });
      r.bcs.reset();
      const f = fault(run(r.rcs, BATCH, batch(r, copyBatch(gen, DST, SRC))).res);
      expect(f.reason).toBe('unknown-command');
      expect(f.message).toContain('render ring');
      expect(r.reports).toEqual([]);
    });

    it('a blit into a freed frame reports use-after-free and drops the write', () => {
      const r = rig(gen);
      bind(r, SRC, MiB);
      const dstFrames = bind(r, DST, MiB, true);
      randomFill(r, SRC, MiB);
      const victim = dstFrames[100]!;
      const len = batch(r, copyBatch(gen, DST, SRC)); // before the free: it must not reuse the frame
      r.ram.put_page(victim); // released while still bound: the bug the sanitizer exists for
      const { res } = run(r.bcs, BATCH, len);
      expect(res.ok).toBe(true); // the hardware does not notice
      expect(r.reports.map((x) => x.kind)).toEqual(['use-after-free']);
      expect(r.reports[0]!.message).toContain(`0x${victim.toString(16)}`);
      expect(r.ram.frame(victim).every((x) => x === POISON_BYTE)).toBe(true);
      expect(r.gtt.readDword(DST + 99 * PAGE_SIZE)).toBe(r.gtt.readDword(SRC + 99 * PAGE_SIZE));
    });

    it('keeps the breadcrumb the driver writes', () => {
      const r = rig(gen);
      expect(r.bcs.get_seqno()).toBe(0);
      r.bcs.completeSeqno(41);
      r.bcs.completeSeqno(0x1_0000_0002);
      expect(r.bcs.seqno).toBe(2);
      expect(r.bcs.name).toBe('blitter ring');
      expect(r.rcs.name).toBe('render ring');
      expect(r.bcs.gen).toBe(gen);
    });
  });
}

describe('Engine execution model', () => {
  it('refuses a second concurrent batch on one engine, and is idle again after an abandoned one', () => {
    const r = rig(7);
    const len = batch(r, [MI_NOOP, MI_BATCH_BUFFER_END]);
    const g = r.bcs.execute(BATCH, len);
    g.next();
    expect(r.bcs.busy).toBe(true);
    expect(() => r.bcs.execute(BATCH, len).next()).toThrow(/while a batch is executing/);
    g.return({ ok: true, dwords: 0, commands: 0, bytes: 0 });
    expect(r.bcs.busy).toBe(false);
    expect(run(r.bcs, BATCH, len).res.ok).toBe(true);
  });

  it('executes each command after its scheduling point: an unbind at the point is seen', () => {
    const r = rig(7);
    bind(r, SRC, MiB);
    bind(r, DST, MiB);
    randomFill(r, SRC, MiB);
    const g = r.bcs.execute(BATCH, batch(r, copyBatch(7, DST, SRC)));
    expect(g.next().value).toMatchObject({ detail: 'XY_SRC_COPY_BLT' });
    r.gtt.clear_range(DST / PAGE_SIZE, MiB / PAGE_SIZE); // the driver unbinds the destination
    r.gtt.resetStats();
    g.next();
    // Every destination page went to scratch (one access per page), nothing to the old frames.
    expect(r.gtt.stats.scratchAccesses).toBe(MiB / PAGE_SIZE);
    expect(r.gtt.readDword(DST)).toBe(r.gtt.readDword(SRC + MiB - PAGE_SIZE));
  });
});
