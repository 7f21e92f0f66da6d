/**
 * The command streamer of one GPU engine (the render ring or the blitter ring): hardware only. It
 * executes a batch buffer read through the global GTT, dword by dword, as a generator that yields
 * one scheduling point per command, so that the driver can run it inside an engine task.
 *
 * The engine takes no lock and never sleeps: it only fetches dwords and moves bytes through the
 * GTT's entries. Keeping those entries valid while a batch runs is the driver's job; a frame freed
 * under a running batch is caught by the GTT's use-after-free check.
 *
 * Commands (encodings in uapi/i915_commands.ts and reference/i915-uapi.md §1):
 *
 * | command             | gen 7 dwords                      | gen 8 dwords                                  |
 * |---------------------|-----------------------------------|-----------------------------------------------|
 * | MI_NOOP             | 1                                 | 1                                             |
 * | MI_BATCH_BUFFER_END | 1                                 | 1                                             |
 * | MI_STORE_DWORD_IMM  | [cmd|2, 0, addr, value]           | [cmd|2, addr_lo, addr_hi, value]              |
 * |  (qword form)       | [cmd|3, 0, addr, v_lo, v_hi]      | [cmd|3, addr_lo, addr_hi, v_lo, v_hi]         |
 * | XY_SRC_COPY_BLT     | [cmd|6, BR13, dxy1, dxy2, dst, sxy1, spitch, src] | [cmd|8, BR13, dxy1, dxy2, dst_lo, dst_hi, sxy1, spitch, src_lo, src_hi] |
 * | XY_COLOR_BLT        | [cmd|4, BR13, dxy1, dxy2, dst, colour] | [cmd|5, BR13, dxy1, dxy2, dst_lo, dst_hi, colour] |
 *
 * Anything else hangs the engine (see HangReason); the engine never throws on a bad batch.
 */
import { hex } from '../base/page.js';
import type { Point } from '../sched/task.js';
import {
  BLT_ROP_PAT_COPY,
  BLT_ROP_SRC_COPY,
  BR13_COLOR_DEPTH_SHIFT,
  BR13_PITCH_MASK,
  BR13_ROP_SHIFT,
  INSTR_BC_CLIENT,
  INSTR_MI_CLIENT,
  MI_BATCH_BUFFER_END_OPCODE,
  MI_NOOP_OPCODE,
  MI_STORE_DWORD_IMM_OPCODE,
  XY_COLOR_BLT_OPCODE,
  XY_SRC_COPY_BLT_DST_TILED,
  XY_SRC_COPY_BLT_LEN,
  XY_SRC_COPY_BLT_LEN_GEN8,
  XY_SRC_COPY_BLT_OPCODE,
  XY_SRC_COPY_BLT_SRC_TILED,
  XY_SRC_COPY_BLT_WRITE_ALPHA,
  XY_SRC_COPY_BLT_WRITE_RGB,
  blt_dwords,
  blt_opcode,
  instr_client,
  mi_opcode,
} from '../uapi/i915_commands.js';
import type { GlobalGtt } from './gtt.js';

/** Engine ids as the kernel's ring ids: RCS (render), BCS (blitter). */
export type EngineId = 'rcs' | 'bcs';
/** Hardware generation: 7 (Ivybridge/Haswell, 32-bit addresses) or 8 (Broadwell, 48-bit). */
export type GpuGen = 7 | 8;

/** ring->name in Linux 3.16. */
export const ENGINE_NAMES: Readonly<Record<EngineId, string>> = {
  rcs: 'render ring',
  bcs: 'blitter ring',
};

/** Virtual nanoseconds every command costs, whatever it moves. */
export const GPU_CMD_NS = 50;
/** Bytes a command moves per virtual nanosecond (a 64 MiB blit costs about 4.2 ms). */
export const GPU_BYTES_PER_NS = 16;

/** XY_COLOR_BLT's length field before gen8 (6 dwords) and from gen8 (7 dwords, 64-bit address). */
export const XY_COLOR_BLT_LEN = 4;
export const XY_COLOR_BLT_LEN_GEN8 = 5;

/** INSTDONE of an idle engine: every unit done. */
export const INSTDONE_IDLE = 0xffffffff;
/**
 * INSTDONE bits of this model (an invented, stable encoding, not a real register layout): a cleared
 * bit names the unit that stopped. INSTDONE_CS: the command parser (bad or unknown command, batch
 * overrun, fetch outside the GTT); INSTDONE_MEM: the memory interface (a surface outside the GTT).
 */
export const INSTDONE_CS = 1 << 0;
export const INSTDONE_MEM = 1 << 1;

/**
 * Why an engine hung:
 * - 'unknown-command': a command the engine does not implement (including blitter commands on the
 *   render ring);
 * - 'bad-command': a known command with a wrong length or an unsupported field (colour depth other
 *   than 32 bpp, a raster operation other than the one supported, tiled surfaces);
 * - 'batch-overrun': the batch ended (maxLen) before MI_BATCH_BUFFER_END or inside a command;
 * - 'gtt-fault': a fetch or a surface access outside the GTT;
 * - 'engine-hung': execute() on an engine that is hung and not yet reset.
 */
export type HangReason = 'unknown-command' | 'bad-command' | 'batch-overrun' | 'gtt-fault' | 'engine-hung';

/** A batch that reached MI_BATCH_BUFFER_END. */
export interface ExecOk {
  ok: true;
  /** Dwords executed, MI_BATCH_BUFFER_END included. */
  dwords: number;
  /** Commands executed, MI_BATCH_BUFFER_END included. */
  commands: number;
  /** Bytes written to surfaces and memory by the batch. */
  bytes: number;
}

/** A batch that hung the engine: what the driver's error capture records. */
export interface ExecFault {
  ok: false;
  reason: HangReason;
  /** One line for the error state. */
  message: string;
  /**
   * GTT address of the failing dword (ACTHD): the command being executed, or, when a dword could
   * not be fetched (past the batch's end, outside the GTT), that dword.
   */
  head: number;
  /** Header dword of the failing command (IPEHR); 0 if none was fetched. */
  ipehr: number;
  /** INSTDONE_IDLE with the stopped unit's bit cleared. */
  instdone: number;
  /** GTT address of the batch (BBADDR). */
  bbaddr: number;
  /** The GTT address whose access faulted, or -1 if the fault was not an access. */
  faultAddr: number;
  /** Dwords of completed commands before the failing one. */
  dwords: number;
  /** Commands completed before the failing one. */
  commands: number;
}

export type ExecResult = ExecOk | ExecFault;

export interface EngineOptions {
  id: EngineId;
  gen: GpuGen;
  /**
   * The engine executes 2D blitter (client 2) commands. Default: only the blitter ring, as on gen6+
   * where the blitter has its own ring; on the render ring a blitter command is unknown.
   */
  blitter?: boolean;
}

/** Counters (reset never clears them). */
export interface EngineStats {
  batches: number;
  commands: number;
  bytes: number;
  hangs: number;
  resets: number;
}

/** Signed 16-bit value of the low half of a dword (coordinates and pitches are 2's complement). */
function s16(v: number): number {
  return ((v & 0xffff) << 16) >> 16;
}

export class Engine {
  readonly id: EngineId;
  /** "render ring" / "blitter ring" (ring->name). */
  readonly name: string;
  readonly gen: GpuGen;
  /** Whether 2D blitter commands are executed (see EngineOptions.blitter). */
  readonly blitter: boolean;
  readonly gtt: GlobalGtt;
  /**
   * Last completed breadcrumb, as read from the hardware status page (ring->get_seqno). Written by
   * the driver through completeSeqno() when a request's batch completes (the model of the
   * MI_STORE_DWORD_INDEX + MI_USER_INTERRUPT the kernel emits after each batch).
   */
  seqno = 0;
  /** Set when a batch hangs the engine; execute() refuses to run until reset(). */
  hung = false;
  /** The fault that last hung the engine (kept across reset() for post-mortems). */
  lastFault: ExecFault | null = null;
  /** GTT address of the dword being executed (ACTHD); the last one once idle. */
  acthd = 0;
  /** A batch is being executed (between execute()'s first step and its return). */
  busy = false;
  readonly stats: EngineStats = { batches: 0, commands: 0, bytes: 0, hangs: 0, resets: 0 };

  /** Dwords of the command being decoded. */
  private readonly cmd: number[] = [];

  constructor(gtt: GlobalGtt, opts: EngineOptions) {
    this.gtt = gtt;
    this.id = opts.id;
    this.name = ENGINE_NAMES[opts.id];
    this.gen = opts.gen;
    this.blitter = opts.blitter ?? opts.id === 'bcs';
  }

  /** The breadcrumb in the hardware status page (intel_ring_get_seqno / ring->get_seqno). */
  get_seqno(): number {
    return this.seqno;
  }

  /** The engine wrote breadcrumb n to its status page: requests up to n are complete. */
  completeSeqno(n: number): void {
    this.seqno = n >>> 0;
  }

  /** A GPU reset (intel_gpu_reset) of this engine: it executes again. */
  reset(): void {
    this.hung = false;
    this.busy = false;
    this.stats.resets++;
  }

  /**
   * Executes the batch at batchGtt, at most maxLen bytes long, until MI_BATCH_BUFFER_END. Each
   * command is fetched, then a scheduling point is yielded (with its cost), then the command
   * executes: whatever runs at that point sees the command about to happen. Never throws on a bad
   * batch; throws only if called while another batch is executing on this engine (a driver bug).
   */
  *execute(batchGtt: number, maxLen: number): Generator<Point, ExecResult, void> {
    if (this.busy) throw new Error(`${this.name}: execute() while a batch is executing`);
    this.stats.batches++;
    if (this.hung) {
      const ctx = { batchGtt, fault: -1, dwords: 0, commands: 0 };
      return this.fault('engine-hung', `${this.name} is hung`, this.acthd, 0, INSTDONE_CS, ctx);
    }
    this.busy = true;
    try {
      const gtt = this.gtt;
      const end = batchGtt + (Number.isSafeInteger(maxLen) && maxLen > 0 ? maxLen : 0);
      let head = batchGtt;
      let dwords = 0;
      let commands = 0;
      let bytes = 0;
      for (;;) {
        this.acthd = head;
        if (!(head + 4 <= end)) {
          return this.hang('batch-overrun', 'batch ended without MI_BATCH_BUFFER_END', head, 0, INSTDONE_CS, {
            batchGtt,
            fault: -1,
            dwords,
            commands,
          });
        }
        const dw = gtt.readDword(head);
        if (dw < 0) {
          return this.hang('gtt-fault', `batch fetch at ${hex(head)} outside the GTT`, head, 0, INSTDONE_CS, {
            batchGtt,
            fault: head,
            dwords,
            commands,
          });
        }
        const ctx = { batchGtt, fault: -1, dwords, commands };
        const client = instr_client(dw);
        let n: number;
        let moved = 0;
        if (client === INSTR_MI_CLIENT) {
          const op = mi_opcode(dw);
          if (op === MI_NOOP_OPCODE) {
            yield this.point('MI_NOOP', 0);
            n = 1;
          } else if (op === MI_BATCH_BUFFER_END_OPCODE) {
            yield this.point('MI_BATCH_BUFFER_END', 0);
            this.stats.commands++;
            return { ok: true, dwords: dwords + 1, commands: commands + 1, bytes };
          } else if (op === MI_STORE_DWORD_IMM_OPCODE) {
            const len = dw & 0x3f;
            if (len !== 2 && len !== 3) {
              return this.hang('bad-command', `MI_STORE_DWORD_IMM length ${len}`, head, dw, INSTDONE_CS, ctx);
            }
            n = len + 2;
            const f = this.fetch(head, n, end, dw, ctx);
            if (f !== null) return f;
            const c = this.cmd;
            // The address is dword aligned: bits 1:0 of its low dword are ignored.
            const lo = this.gen >= 8 ? c[1]! : c[2]!;
            const addr = (this.gen >= 8 ? this.addr48(lo, c[2]!) : lo) - (lo & 3);
            const values = n - 3;
            yield this.point('MI_STORE_DWORD_IMM', 4 * values);
            if (!gtt.contains(addr, 4 * values)) {
              return this.hang(
                'gtt-fault',
                `MI_STORE_DWORD_IMM to ${hex(addr)} outside the GTT`,
                head,
                dw,
                INSTDONE_MEM,
                {
                  ...ctx,
                  fault: addr,
                },
              );
            }
            for (let k = 0; k < values; k++) gtt.writeDword(addr + 4 * k, c[3 + k]!);
            moved = 4 * values;
          } else {
            return this.hang(
              'unknown-command',
              `unknown MI command ${hex(dw, 8)}`,
              head,
              dw,
              INSTDONE_CS,
              ctx,
            );
          }
        } else if (client === INSTR_BC_CLIENT && this.blitter) {
          const op = blt_opcode(dw);
          if (op === XY_SRC_COPY_BLT_OPCODE) {
            const want = (this.gen >= 8 ? XY_SRC_COPY_BLT_LEN_GEN8 : XY_SRC_COPY_BLT_LEN) + 2;
            const r = yield* this.srcCopy(dw, head, end, want, ctx);
            if (typeof r !== 'number') return r;
            n = want;
            moved = r;
          } else if (op === XY_COLOR_BLT_OPCODE) {
            const want = (this.gen >= 8 ? XY_COLOR_BLT_LEN_GEN8 : XY_COLOR_BLT_LEN) + 2;
            const r = yield* this.colorBlt(dw, head, end, want, ctx);
            if (typeof r !== 'number') return r;
            n = want;
            moved = r;
          } else {
            return this.hang(
              'unknown-command',
              `unknown blitter command ${hex(dw, 8)}`,
              head,
              dw,
              INSTDONE_CS,
              ctx,
            );
          }
        } else {
          const what = client === INSTR_BC_CLIENT ? `blitter command on the ${this.name}` : 'command';
          return this.hang('unknown-command', `unknown ${what} ${hex(dw, 8)}`, head, dw, INSTDONE_CS, ctx);
        }
        head += 4 * n;
        dwords += n;
        commands++;
        bytes += moved;
        this.stats.commands++;
        this.stats.bytes += moved;
      }
    } finally {
      this.busy = false;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Commands

  /**
   * What every 2-D blit command checks first: its length for this gen, that all its dwords can be
   * fetched (into this.cmd), and its BR13 (depth, raster operation, tiling).
   */
  private bltPrologue(
    name: string,
    rop: number,
    dw: number,
    head: number,
    end: number,
    want: number,
    ctx: FaultCtx,
  ): ExecFault | null {
    if (blt_dwords(dw) !== want) {
      const msg = `${name} of ${blt_dwords(dw)} dwords, gen${this.gen} expects ${want}`;
      return this.hang('bad-command', msg, head, dw, INSTDONE_CS, ctx);
    }
    const f = this.fetch(head, want, end, dw, ctx);
    if (f !== null) return f;
    return this.checkBr13(dw, this.cmd[1]!, rop, name, head, ctx);
  }

  /** XY_SRC_COPY_BLT: returns the bytes written, or the fault that hung the engine. */
  private *srcCopy(
    dw: number,
    head: number,
    end: number,
    want: number,
    ctx: FaultCtx,
  ): Generator<Point, number | ExecFault, void> {
    const bad = this.bltPrologue('XY_SRC_COPY_BLT', BLT_ROP_SRC_COPY, dw, head, end, want, ctx);
    if (bad !== null) return bad;
    const c = this.cmd;
    const g8 = this.gen >= 8;
    const dstPitch = s16(c[1]! & BR13_PITCH_MASK);
    const dx1 = s16(c[2]!);
    const dy1 = s16(c[2]! >>> 16);
    const dx2 = s16(c[3]!);
    const dy2 = s16(c[3]! >>> 16);
    const dst = g8 ? this.addr48(c[4]!, c[5]!) : c[4]!;
    const sxy = c[g8 ? 6 : 5]!;
    const srcPitch = s16(c[g8 ? 7 : 6]!);
    const src = g8 ? this.addr48(c[8]!, c[9]!) : c[7]!;
    const w = dx2 - dx1;
    const h = dy2 - dy1;
    if (w <= 0 || h <= 0) {
      yield this.point('XY_SRC_COPY_BLT', 0);
      return 0;
    }
    const wb = w * 4;
    const d0 = dst + dy1 * dstPitch + dx1 * 4;
    const s0 = src + s16(sxy >>> 16) * srcPitch + s16(sxy) * 4;
    const mask = this.pixelMask(dw);
    const bytes = mask === 0 ? 0 : wb * h;
    yield this.point('XY_SRC_COPY_BLT', bytes);
    const fault = this.surfaceFault(d0, dstPitch, wb, h);
    const sfault = fault < 0 ? this.surfaceFault(s0, srcPitch, wb, h) : -1;
    if (fault >= 0 || sfault >= 0) {
      const which = fault >= 0 ? 'destination' : 'source';
      const at = fault >= 0 ? fault : sfault;
      return this.hang(
        'gtt-fault',
        `XY_SRC_COPY_BLT ${which} at ${hex(at)} outside the GTT`,
        head,
        dw,
        INSTDONE_MEM,
        {
          ...ctx,
          fault: at,
        },
      );
    }
    this.gtt.blit(d0, dstPitch, s0, srcPitch, wb, h, mask);
    return bytes;
  }

  /** XY_COLOR_BLT: returns the bytes written, or the fault that hung the engine. */
  private *colorBlt(
    dw: number,
    head: number,
    end: number,
    want: number,
    ctx: FaultCtx,
  ): Generator<Point, number | ExecFault, void> {
    const bad = this.bltPrologue('XY_COLOR_BLT', BLT_ROP_PAT_COPY, dw, head, end, want, ctx);
    if (bad !== null) return bad;
    const c = this.cmd;
    const g8 = this.gen >= 8;
    const pitch = s16(c[1]! & BR13_PITCH_MASK);
    const x1 = s16(c[2]!);
    const y1 = s16(c[2]! >>> 16);
    const w = s16(c[3]!) - x1;
    const h = s16(c[3]! >>> 16) - y1;
    const dst = g8 ? this.addr48(c[4]!, c[5]!) : c[4]!;
    const colour = c[g8 ? 6 : 5]!;
    if (w <= 0 || h <= 0) {
      yield this.point('XY_COLOR_BLT', 0);
      return 0;
    }
    const wb = w * 4;
    const d0 = dst + y1 * pitch + x1 * 4;
    const mask = this.pixelMask(dw);
    const bytes = mask === 0 ? 0 : wb * h;
    yield this.point('XY_COLOR_BLT', bytes);
    const fault = this.surfaceFault(d0, pitch, wb, h);
    if (fault >= 0) {
      return this.hang(
        'gtt-fault',
        `XY_COLOR_BLT destination at ${hex(fault)} outside the GTT`,
        head,
        dw,
        INSTDONE_MEM,
        {
          ...ctx,
          fault,
        },
      );
    }
    this.gtt.fill(d0, pitch, wb, h, colour, mask);
    return bytes;
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers

  /** Colour depth must be 32 bpp, the raster operation `rop`, the surfaces linear. */
  private checkBr13(
    dw: number,
    br13: number,
    rop: number,
    what: string,
    head: number,
    ctx: FaultCtx,
  ): ExecFault | null {
    const depth = (br13 >>> BR13_COLOR_DEPTH_SHIFT) & 3;
    if (depth !== 3) {
      return this.hang(
        'bad-command',
        `${what}: colour depth ${depth} (only 3, 32 bpp, is modelled)`,
        head,
        dw,
        INSTDONE_CS,
        ctx,
      );
    }
    const r = (br13 >>> BR13_ROP_SHIFT) & 0xff;
    if (r !== rop) {
      return this.hang(
        'bad-command',
        `${what}: raster operation ${hex(r, 2)} (only ${hex(rop, 2)} is modelled)`,
        head,
        dw,
        INSTDONE_CS,
        ctx,
      );
    }
    if ((dw & (XY_SRC_COPY_BLT_SRC_TILED | XY_SRC_COPY_BLT_DST_TILED)) !== 0) {
      return this.hang('bad-command', `${what}: tiled surfaces are not modelled`, head, dw, INSTDONE_CS, ctx);
    }
    return null;
  }

  /** Bytes of each 32-bit pixel written: WRITE_RGB covers bytes 0..2, WRITE_ALPHA byte 3. */
  private pixelMask(dw: number): number {
    return (
      ((dw & XY_SRC_COPY_BLT_WRITE_RGB) !== 0 ? 0x7 : 0) |
      ((dw & XY_SRC_COPY_BLT_WRITE_ALPHA) !== 0 ? 0x8 : 0)
    );
  }

  /** A gen8 48-bit address: bits 47:32 from the high dword, upper bits ignored. */
  private addr48(lo: number, hi: number): number {
    return (hi & 0xffff) * 0x100000000 + lo;
  }

  /** -1 if every row of the surface is inside the GTT, else the start of a row that is not. */
  private surfaceFault(base: number, pitch: number, wb: number, h: number): number {
    if (!this.gtt.contains(base, wb)) return base;
    const last = base + (h - 1) * pitch;
    return this.gtt.contains(last, wb) ? -1 : last;
  }

  /** Fetches the n dwords of the command at head into this.cmd, or hangs. */
  private fetch(head: number, n: number, end: number, dw: number, ctx: FaultCtx): ExecFault | null {
    const c = this.cmd;
    c.length = n;
    c[0] = dw;
    for (let k = 1; k < n; k++) {
      const a = head + 4 * k;
      if (a + 4 > end) {
        this.acthd = a;
        return this.hang(
          'batch-overrun',
          `command ${hex(dw, 8)} runs past the end of the batch`,
          a,
          dw,
          INSTDONE_CS,
          ctx,
        );
      }
      const v = this.gtt.readDword(a);
      if (v < 0) {
        this.acthd = a;
        return this.hang('gtt-fault', `batch fetch at ${hex(a)} outside the GTT`, a, dw, INSTDONE_CS, {
          ...ctx,
          fault: a,
        });
      }
      c[k] = v;
    }
    return null;
  }

  private point(detail: string, bytes: number): Point {
    return {
      op: 'gpu_cmd',
      resource: this.id,
      detail,
      cost: GPU_CMD_NS + Math.ceil(bytes / GPU_BYTES_PER_NS),
    };
  }

  private hang(
    reason: HangReason,
    message: string,
    head: number,
    ipehr: number,
    unit: number,
    ctx: FaultCtx,
  ): ExecFault {
    const f = this.fault(reason, message, head, ipehr, unit, ctx);
    this.hung = true;
    this.lastFault = f;
    this.stats.hangs++;
    return f;
  }

  private fault(
    reason: HangReason,
    message: string,
    head: number,
    ipehr: number,
    unit: number,
    ctx: FaultCtx,
  ): ExecFault {
    return {
      ok: false,
      reason,
      message: `${this.name}: ${message}`,
      head,
      ipehr: ipehr >>> 0,
      instdone: (INSTDONE_IDLE & ~unit) >>> 0,
      bbaddr: ctx.batchGtt,
      faultAddr: ctx.fault,
      dwords: ctx.dwords,
      commands: ctx.commands,
    };
  }
}

/** Where a failing command sits, for its fault record. */
interface FaultCtx {
  batchGtt: number;
  fault: number;
  dwords: number;
  commands: number;
}
