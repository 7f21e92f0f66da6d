/**
 * The simulated GPU's figures (issue 3): a 64 MiB blit through the GTT against TypedArray.set of
 * the same bytes, and execbuffer2 calls per second for a small batch.
 *
 * Everything goes through the public ABI (`user.*` helpers, real ioctls, byte structs). Every
 * figure runs discarded warm-up repetitions first, then `reps` timed ones on the same machine, and
 * reports the median; each checks the bytes the GPU wrote and that shutdown() finds nothing.
 */
import { Buffer } from 'node:buffer';
import { Machine, type Process, uapi, user } from '../../index.js';
import { finish } from './machine.js';
import { type Measured, median, medianFigure, nowMs, timeMs } from './stats.js';

export interface GpuBenchOptions {
  /** Timed repetitions per figure (after the warm-up). */
  reps: number;
}

const MiB = 1 << 20;

/** A gen 7 machine (32-bit relocations, the blitter on its own ring) with room for 64 MiB surfaces. */
export function bootGpu(ramBytes = 1 << 30): Machine {
  return Machine.boot({ ramBytes, gpu: { gen: 7 } });
}

/**
 * A prepared execbuffer2: the exec_object2 and relocation arrays live in the process's memory for
 * the whole figure, as a client reusing its lists would keep them. After the first call the kernel
 * has written the presumed offsets back, so later calls skip relocation when nothing moved.
 */
export class PreparedExec {
  private readonly layout: user.ExecbufLayout;
  constructor(
    private readonly p: Process,
    private readonly fd: number,
    opts: user.ExecbufOptions,
  ) {
    this.layout = user.build_execbuf(p, opts);
  }

  /** One DRM_IOCTL_I915_GEM_EXECBUFFER2 (the ioctl round trip and nothing else). */
  submit(): void {
    this.p.drmIoctl(this.fd, uapi.DRM_IOCTL_I915_GEM_EXECBUFFER2, this.layout.execbuffer);
  }

  /**
   * Changes the handle of list entry `index` (exec_object2.handle, its first u32) in user memory:
   * a client resubmitting the same lists with a new buffer.
   */
  setHandle(index: number, handle: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, handle, true);
    this.p.write(this.layout.buffers_ptr + index * uapi.drm_i915_gem_exec_object2.size, b);
  }

  /** Unmaps the arrays. */
  free(): void {
    this.p.munmap(this.layout.addr, this.layout.size);
  }
}

/** gem_write() of a large buffer in 4 MiB pieces, so the bounce buffer stays small. */
export function gemWriteChunked(p: Process, fd: number, handle: number, bytes: Uint8Array): void {
  const piece = 4 * MiB;
  for (let off = 0; off < bytes.length; off += piece) {
    user.gem_write(p, fd, handle, off, bytes.subarray(off, Math.min(bytes.length, off + piece)));
  }
}

/** Bytes that differ from pixel to pixel and between the two seeds (an xorshift stream). */
export function pattern(len: number, seed: number): Uint8Array {
  const w = new Uint32Array(len / 4);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < w.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    w[i] = x >>> 0;
  }
  return new Uint8Array(w.buffer);
}

// -------------------------------------------------------------------------------------------------
// 1. 64 MiB blit vs TypedArray.set

/**
 * Untimed warm-up of the execbuffer2 → GPU → GEM_WAIT path with a one-pixel copy between the same
 * two objects, so the 64 MiB blits that follow are timed with the driver's code compiled, as in a
 * long-running client: otherwise the handful of large blits would also time the JIT tiering up
 * the ioctl path (about 1 ms per blit, 6 %). It also binds both objects and acquires their pages.
 */
function warmExecPath(p: Process, fd: number, dst: number, src: number): void {
  const b = new user.BlitBatch(7).copy({ dst, src, width: 1, height: 1 }).end();
  const bb = user.gem_create(p, fd, 4096);
  user.gem_write(p, fd, bb, 0, b.bytes());
  const exec = new PreparedExec(p, fd, {
    objects: [{ handle: dst }, { handle: src }],
    batch: { handle: bb, relocs: b.relocs, len: b.length },
    ring: 'blt',
  });
  for (let i = 0; i < 300; i++) {
    exec.submit();
    user.gem_wait(p, fd, dst);
  }
  exec.free();
  user.gem_close(p, fd, bb);
}

/**
 * One XY_SRC_COPY_BLT on the BLT ring copies a 4096 × 4096 32 bpp surface (pitch 16384: pitches and
 * coordinates are signed 16-bit, so one rectangle reaches 32767 × 32767 and covers the 64 MiB)
 * between two 64 MiB GEM objects. Two source objects with different contents are used in turn, so
 * every repetition rewrites the whole destination and its check is meaningful. Timed: execbuffer2
 * through GEM_WAIT completion, in the steady state (objects bound, pages acquired and presumed
 * offsets right after the warm-up); the alternative is `dst.set(src)` of two 64 MiB Uint8Arrays
 * holding the same bytes, the two run in alternating order. Ratio = median set time / median blit time.
 */
export function blit64MiB(o: GpuBenchOptions): Measured[] {
  const len = 64 * MiB;
  const W = 4096;
  const H = len / (W * 4);
  const pitch = W * 4;
  const m = bootGpu();
  const p = m.spawn();
  const fd = p.open('/dev/dri/card0');
  const dst = user.gem_create(p, fd, len);
  const srcs = [user.gem_create(p, fd, len), user.gem_create(p, fd, len)];
  const want = [pattern(len, 0x9e3779b9), pattern(len, 0x85ebca6b)];
  srcs.forEach((h, i) => gemWriteChunked(p, fd, h, want[i]!));
  const execs = srcs.map((src) => {
    const b = new user.BlitBatch(7)
      .copy({ dst, src, width: W, height: H, dst_pitch: pitch, src_pitch: pitch })
      .end();
    const bb = user.gem_create(p, fd, 4096);
    user.gem_write(p, fd, bb, 0, b.bytes());
    return {
      bb,
      exec: new PreparedExec(p, fd, {
        objects: [{ handle: dst }, { handle: src }],
        batch: { handle: bb, relocs: b.relocs, len: b.length },
        ring: 'blt',
      }),
    };
  });
  warmExecPath(p, fd, dst, srcs[0]!);
  const dstMap = user.gem_mmap__cpu(p, fd, dst, 0, len);
  // The TypedArray.set side: the same bytes, the same alternation.
  const jsDst = new Uint8Array(len);
  const blitMs: number[] = [];
  const setMs: number[] = [];
  const blit = (i: number): number =>
    timeMs(() => {
      execs[i]!.exec.submit();
      user.gem_wait(p, fd, dst);
    });
  const set = (i: number): number => timeMs(() => jsDst.set(want[i]!));
  // Cheap and noisy (memory bandwidth): twice the repetitions of the other figures. The first
  // `warm` are the warm-up: each source's first execution binds it and acquires its pages, and the
  // driver's code paths get compiled, so the timed ones measure the steady state.
  const reps = o.reps * 2 + 1;
  const warm = 6;
  for (let rep = -warm; rep < reps; rep++) {
    const i = (rep + warm) & 1;
    let tb: number;
    let ts: number;
    // The order flips every two repetitions, so each source is timed in both orders.
    if (((rep + warm) >> 1) & 1) {
      tb = blit(i);
      ts = set(i);
    } else {
      ts = set(i);
      tb = blit(i);
    }
    // Untimed: the CPU reads the destination through a CPU mmap of it, as a client would.
    user.gem_set_domain(p, fd, dst, uapi.I915_GEM_DOMAIN_CPU, 0);
    if (Buffer.compare(p.read(dstMap, len), want[i]!) !== 0) {
      throw new Error(`blit: the destination does not hold source ${i} after the blit`);
    }
    if (Buffer.compare(jsDst, want[i]!) !== 0) throw new Error('blit: TypedArray.set copied the wrong bytes');
    if (rep >= 0) {
      blitMs.push(tb);
      setMs.push(ts);
    }
  }
  for (const e of execs) {
    e.exec.free();
    user.gem_close(p, fd, e.bb);
  }
  p.munmap(dstMap, len);
  for (const h of [dst, ...srcs]) user.gem_close(p, fd, h);
  p.close(fd);
  p.exit(0);
  finish(m, 'blit');
  const mibPerSec = (ms: number): number => len / MiB / (ms / 1000);
  return [
    {
      name: 'blit-64MiB-vs-typedarray-set',
      value: median(setMs) / median(blitMs),
      unit: 'ratio',
      target: '>= 0.8',
      note: 'set time / blit time (execbuf .. gem_wait); higher is better',
    },
    medianFigure('blit-64MiB-ms', 'ms', blitMs, 'XY_SRC_COPY_BLT 4096x4096 32bpp, BLT ring, steady state'),
    medianFigure('blit-64MiB-typedarray-set-ms', 'ms', setMs),
    medianFigure('blit-64MiB-throughput', 'MiB/s', blitMs.map(mibPerSec)),
  ];
}

// -------------------------------------------------------------------------------------------------
// 2. execbuffer2 calls per second

/**
 * EXECBUFFER2 of a 4-dword batch (MI_STORE_DWORD_IMM into a 4 KiB object, MI_BATCH_BUFFER_END) on
 * the render ring, with its relocation, from prepared user-space lists: each call is the whole ioctl
 * round trip (copy-in of the lists, lookup, reservation, relocation check, request emission), and
 * the GPU runs the batches as the calls go. A repetition is `calls` submissions and one GEM_WAIT on
 * the target; it then checks that the object holds the value this repetition's batch stores.
 */
export function execbufCalls(o: GpuBenchOptions): Measured[] {
  const calls = 2000;
  const m = bootGpu(256 * MiB);
  const p = m.spawn();
  const fd = p.open('/dev/dri/card0');
  const target = user.gem_create(p, fd, 4096);
  const bb = user.gem_create(p, fd, 4096);
  const batch = (value: number): user.BlitBatch => new user.BlitBatch(7).storeDword(target, 64, value).end();
  const b0 = batch(0);
  user.gem_write(p, fd, bb, 0, b0.bytes());
  const exec = new PreparedExec(p, fd, {
    objects: [{ handle: target }],
    batch: { handle: bb, relocs: b0.relocs, len: b0.length },
    ring: 'render',
  });
  const samples: number[] = [];
  for (let rep = -2; rep < o.reps; rep++) {
    const value = (0x5eed0000 + rep + 2) >>> 0;
    // Untimed: a new value in the batch (same relocation offset), the target cleared.
    user.gem_write(p, fd, bb, 0, batch(value).bytes());
    user.gem_write(p, fd, target, 64, new Uint8Array(4));
    const t0 = nowMs();
    for (let i = 0; i < calls; i++) exec.submit();
    user.gem_wait(p, fd, target);
    const ms = nowMs() - t0;
    const got = new DataView(user.gem_read(p, fd, target, 64, 4).buffer).getUint32(0, true);
    if (got !== value) {
      throw new Error(`execbuf: the target holds 0x${got.toString(16)}, expected 0x${value.toString(16)}`);
    }
    if (rep >= 0) samples.push(calls / (ms / 1000));
  }
  exec.free();
  user.gem_close(p, fd, bb);
  user.gem_close(p, fd, target);
  p.close(fd);
  p.exit(0);
  finish(m, 'execbuf');
  return [
    medianFigure(
      'execbuffer2-calls-per-second',
      'calls/s',
      samples,
      `MI_STORE_DWORD_IMM + BBE, ${calls} calls + 1 gem_wait per sample`,
    ),
  ];
}
