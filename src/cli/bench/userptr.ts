/**
 * The userptr figures (issue 4): the create → first blit → close cycle, and the cost of an
 * invalidation (munmap of one page) with 100 against 100 000 userptr objects in one mm.
 *
 * Everything goes through the public ABI: DRM_IOCTL_I915_GEM_USERPTR with its 24-byte struct,
 * execbuffer2 from lists in the process's memory, GEM_WAIT, GEM_CLOSE, mmap/munmap. Every figure
 * runs a discarded warm-up repetition, then `reps` timed ones, and reports the median; each checks
 * through the process's own memory that the GPU wrote where it should (zero copy) and that
 * shutdown() finds nothing.
 */
import { Machine, type Process, uapi, user } from '../../index.js';
import { PreparedExec, bootGpu } from './gpu.js';
import { finish } from './machine.js';
import { type Measured, collectGarbage, median, medianFigure, nowMs } from './stats.js';

export interface UserptrBenchOptions {
  /** Timed repetitions per figure (after the warm-up). */
  reps: number;
}

const PAGE = 4096;
const RW = uapi.PROT_READ | uapi.PROT_WRITE;
const ANON = uapi.MAP_PRIVATE | uapi.MAP_ANONYMOUS;

/** DRM_IOCTL_I915_GEM_USERPTR (synchronized: an MMU notifier watches the range); the handle. */
function userptrIoctl(p: Process, fd: number, arg: Uint8Array, ptr: number, size: number): number {
  uapi.drm_i915_gem_userptr.encode({ user_ptr: ptr, user_size: size, flags: 0 }, arg);
  p.drmIoctl(fd, uapi.DRM_IOCTL_I915_GEM_USERPTR, arg);
  return uapi.drm_i915_gem_userptr.decode(arg).handle;
}

function u32(p: Process, addr: number): number {
  const b = p.read(addr, 4);
  return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
}

const ZERO4 = new Uint8Array(4);

/** A fill blit of `width` × `height` pixels into `dst` (a handle, or a list index with HANDLE_LUT). */
function fillBatch(p: Process, fd: number, dst: number, color: number, width: number, height: number) {
  const b = new user.BlitBatch(7).fill({ dst, color, x2: width, y2: height, pitch: width * 4 }).end();
  const bb = user.gem_create(p, fd, PAGE);
  user.gem_write(p, fd, bb, 0, b.bytes());
  return { bb, b };
}

// -------------------------------------------------------------------------------------------------
// 3. create → first blit → close

/**
 * One cycle: USERPTR over 64 KiB of resident anonymous memory (16 pages), an XY_COLOR_BLT filling
 * all of it on the BLT ring (its first use: the fast path pins the pages, the object is bound into
 * the GTT), GEM_WAIT, GEM_CLOSE (the release unbinds, unpins, leaves the interval tree; the next
 * cycle's overlap check retires the closed object first). The batch is built once with
 * I915_EXEC_HANDLE_LUT, so a cycle only rewrites the new handle into its exec_object2 entry. Before
 * each cycle the CPU clears one dword of the range, after it that dword must hold the colour; after
 * each repetition the whole range must. Four warm-up repetitions.
 */
export function createBlitClose(o: UserptrBenchOptions): Measured[] {
  const cycles = 500;
  const size = 64 * 1024;
  const W = 128;
  const color = 0xc0ffee11;
  const m = bootGpu(256 << 20);
  const p = m.spawn();
  const fd = p.open('/dev/dri/card0');
  const addr = p.mmap(0, size, RW, ANON);
  p.write(addr, new Uint8Array(size).fill(0x5a));
  const { bb, b } = fillBatch(p, fd, 0, color, W, size / (W * 4));
  const exec = new PreparedExec(p, fd, {
    objects: [{ handle: 0 }],
    batch: { handle: bb, relocs: b.relocs, len: b.length },
    ring: 'blt',
    flags: uapi.I915_EXEC_HANDLE_LUT,
  });
  const arg = new Uint8Array(uapi.drm_i915_gem_userptr.size);
  const samples: number[] = [];
  // The path is long (ioctl, notifier, get_pages, bind, GPU, release, workers): the JIT needs a
  // few thousand cycles before the rate settles, so four repetitions are discarded.
  for (let rep = -4; rep < o.reps; rep++) {
    p.write(addr, new Uint8Array(size));
    let ms = 0;
    for (let k = 0; k < cycles; k++) {
      const probe = addr + ((k * 4 * 1031) % size);
      p.write(probe, ZERO4);
      const t0 = nowMs();
      const h = userptrIoctl(p, fd, arg, addr, size);
      exec.setHandle(0, h);
      exec.submit();
      user.gem_wait(p, fd, h);
      user.gem_close(p, fd, h);
      ms += nowMs() - t0;
      const got = u32(p, probe);
      if (got !== color) {
        throw new Error(`userptr cycle ${k}: the process reads 0x${got.toString(16)} after the fill blit`);
      }
    }
    const all = new Uint32Array(p.read(addr, size).slice().buffer);
    if (!all.every((w) => w === color)) throw new Error('userptr cycle: the fill did not cover the range');
    if (rep >= 0) samples.push(cycles / (ms / 1000));
  }
  exec.free();
  user.gem_close(p, fd, bb);
  p.close(fd);
  p.exit(0);
  finish(m, 'userptr create/blit/close');
  return [
    medianFigure(
      'userptr-create-blit-close-per-second',
      'cycles/s',
      samples,
      `64 KiB resident: USERPTR, fill blit, gem_wait, GEM_CLOSE; ${cycles} cycles per sample`,
    ),
  ];
}

// -------------------------------------------------------------------------------------------------
// 4. munmap of one page with 100 vs 100 000 userptr objects

/** A process with `n` one-page userptr objects over consecutive pages of one mapping. */
class ManyObjects {
  readonly p: Process;
  readonly fd: number;
  readonly base: number;
  readonly len: number;
  /** The object the timed munmap hits (the middle one) and its page. */
  readonly target: number;
  readonly page: number;
  private readonly exec: PreparedExec;
  private readonly bb: number;
  private readonly handles: number[] = [];
  readonly color: number;

  constructor(m: Machine, n: number, color: number) {
    this.p = m.spawn();
    const p = this.p;
    this.fd = p.open('/dev/dri/card0');
    this.len = n * PAGE;
    this.base = p.mmap(0, this.len, RW, ANON);
    const arg = new Uint8Array(uapi.drm_i915_gem_userptr.size);
    for (let i = 0; i < n; i++) this.handles.push(userptrIoctl(p, this.fd, arg, this.base + i * PAGE, PAGE));
    const t = n >> 1;
    this.target = this.handles[t]!;
    this.page = this.base + t * PAGE;
    this.color = color;
    const { bb, b } = fillBatch(p, this.fd, this.target, color, PAGE / 4, 1);
    this.bb = bb;
    this.exec = new PreparedExec(p, this.fd, {
      objects: [{ handle: this.target }],
      batch: { handle: bb, relocs: b.relocs, len: b.length },
      ring: 'blt',
    });
    p.write(this.page, ZERO4); // resident: the fast path pins it
  }

  /**
   * Untimed: the GPU fills the target object (it acquires the page now mapped there and is bound);
   * the process must read the colour through its own mapping. Since the page was mapped afresh
   * (zero-filled) after the previous munmap, this also proves that munmap invalidated the object:
   * otherwise the blit would have gone to the old frame.
   */
  fill(): void {
    this.exec.submit();
    user.gem_wait(this.p, this.fd, this.target);
    const got = u32(this.p, this.page);
    if (got !== this.color) {
      throw new Error(`munmap bench: the process reads 0x${got.toString(16)} after the fill blit`);
    }
  }

  /** Timed: munmap of the target's page (it intersects exactly one object). */
  munmap(): number {
    const t0 = nowMs();
    this.p.munmap(this.page, PAGE);
    return nowMs() - t0;
  }

  /** Untimed: the page mapped back (MAP_FIXED, zero-filled) and made resident. */
  remap(): void {
    const a = this.p.mmap(this.page, PAGE, RW, ANON | uapi.MAP_FIXED);
    if (a !== this.page) throw new Error(`munmap bench: MAP_FIXED gave 0x${a.toString(16)}`);
    if (u32(this.p, this.page) !== 0) throw new Error('munmap bench: the page came back non-zero');
    this.p.write(this.page, ZERO4);
  }

  close(): void {
    this.exec.free();
    user.gem_close(this.p, this.fd, this.bb);
    for (const h of this.handles) user.gem_close(this.p, this.fd, h);
    this.p.close(this.fd);
    this.p.munmap(this.base, this.len);
    this.p.exit(0);
  }
}

/**
 * Two processes of one machine: one with 100 one-page userptr objects over consecutive pages of one
 * mapping, one with 100 000 (all in the mm's interval tree; nothing is touched at creation). Each
 * sample is the mean of `cycles` munmaps of the page under the middle object, measured alternately
 * in the two processes. The page intersects exactly one object, which holds its page and a GTT
 * binding at that moment (an untimed fill blit before every munmap), so every timed munmap walks
 * the interval tree to it and cancels it (unbind, put_pages) — the full invalidation path, the
 * same work at both sizes except the walk. Between munmaps the page is mapped back with MAP_FIXED;
 * the object stays (no need to recreate it) and picks the new page up at the next blit.
 */
export function munmapManyObjects(o: UserptrBenchOptions): Measured[] {
  const cycles = 40;
  const small = 100;
  const big = 100_000;
  const m = Machine.boot({ ramBytes: 1 << 30, gpu: { gen: 7 } });
  let t0 = nowMs();
  const few = new ManyObjects(m, small, 0x11223344);
  const many = new ManyObjects(m, big, 0x55667788);
  const createMs = nowMs() - t0;
  const fewMs: number[] = [];
  const manyMs: number[] = [];
  for (let rep = -1; rep < o.reps; rep++) {
    collectGarbage(); // untimed: 100 000 objects make a full GC inside a sample costly
    const a: number[] = [];
    const b: number[] = [];
    for (let k = 0; k < cycles; k++) {
      const order = (rep + k) & 1 ? [few, many] : [many, few];
      for (const s of order) {
        s.fill();
        const ms = s.munmap();
        (s === few ? a : b).push(ms);
        s.remap();
      }
    }
    if (rep >= 0) {
      fewMs.push(median(a));
      manyMs.push(median(b));
    }
  }
  t0 = nowMs();
  few.close();
  many.close();
  const closeMs = nowMs() - t0;
  finish(m, 'munmap with many userptr objects');
  const us = (ms: number): number => ms * 1000;
  return [
    {
      name: 'munmap-1-page-100k-vs-100-userptr',
      value: median(manyMs) / median(fewMs),
      unit: 'ratio',
      target: '<= 2',
      note: 'munmap time with 100 000 objects in the mm / with 100; lower is better',
    },
    medianFigure(
      'munmap-1-page-100-userptr-us',
      'us',
      fewMs.map(us),
      `median of ${cycles} munmaps per sample`,
    ),
    medianFigure(
      'munmap-1-page-100k-userptr-us',
      'us',
      manyMs.map(us),
      `median of ${cycles} munmaps per sample`,
    ),
    {
      name: 'userptr-create-100k-objects-s',
      value: createMs / 1000,
      unit: 's',
      note: `${small + big} USERPTR ioctls, once`,
    },
    {
      name: 'userptr-close-100k-objects-s',
      value: closeMs / 1000,
      unit: 's',
      note: 'GEM_CLOSE of each, once',
    },
  ];
}
