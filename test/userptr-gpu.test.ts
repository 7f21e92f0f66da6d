import { describe, expect, it } from 'vitest';
import { Machine, type Process, uapi, user } from '../src/index.js';
import { i915_mmu_notifiers } from '../src/i915/i915_gem_userptr.js';

const SEED = Number(process.env.SEED ?? 9);
const RW = uapi.PROT_READ | uapi.PROT_WRITE;
const ANON = uapi.MAP_PRIVATE | uapi.MAP_ANONYMOUS;
/** A 128 x 128 32-bpp surface: 64 KiB, 16 pages, pitch 512. */
const W = 128;
const SIZE = W * W * 4;

function userptr(p: Process, fd: number, ptr: number, size: number, flags = 0): number {
  const b = uapi.drm_i915_gem_userptr.encode({ user_ptr: ptr, user_size: size, flags });
  p.drmIoctl(fd, uapi.DRM_IOCTL_I915_GEM_USERPTR, b);
  return uapi.drm_i915_gem_userptr.decode(b).handle;
}

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
  return 'OK';
}

/** Blits on the BLT ring: fill `dst` with `color`, or copy `src` into `dst`. */
function blit(
  p: Process,
  fd: number,
  gen: 7 | 8,
  op: { fill: number; color: number } | { dst: number; src: number },
): void {
  const b = new user.BlitBatch(gen);
  const objects: number[] = [];
  if ('fill' in op) {
    b.fill({ dst: op.fill, color: op.color, x2: W, y2: W, pitch: W * 4 });
    objects.push(op.fill);
  } else {
    b.copy({ dst: op.dst, src: op.src, width: W, height: W, dst_pitch: W * 4, src_pitch: W * 4 });
    objects.push(op.dst, op.src);
  }
  b.end();
  const batch = user.gem_create(p, fd, 4096);
  user.gem_write(p, fd, batch, 0, b.bytes());
  try {
    user.execbuf(p, fd, {
      objects: objects.map((handle) => ({ handle })),
      batch: { handle: batch, len: 0, relocs: b.relocs },
      ring: 'blt',
    });
    user.gem_wait(p, fd, objects[0]!);
  } finally {
    user.gem_close(p, fd, batch);
  }
}

function words(bytes: Uint8Array): Uint32Array {
  return new Uint32Array(bytes.slice().buffer);
}

describe.each([7, 8] as const)(`userptr on the GPU, gen %i (seed ${SEED})`, (gen) => {
  it('zero copy: the GPU writes the process memory and reads what the CPU wrote', () => {
    const m = Machine.boot({ seed: SEED, gpu: { gen } });
    const p = m.spawn();
    const fd = p.open('/dev/dri/card0');
    const a = p.mmap(0, SIZE, RW, ANON);
    const b = p.mmap(0, SIZE, RW, ANON);
    p.write(a, new Uint8Array(SIZE).fill(0x11)); // resident: the fast path pins them
    const ha = userptr(p, fd, a, SIZE);
    const hb = userptr(p, fd, b, SIZE); // b untouched: a worker faults it in (-EAGAIN, retried)
    blit(p, fd, gen, { fill: ha, color: 0xdeadbeef });
    expect(words(p.read(a, SIZE)).every((w) => w === 0xdeadbeef)).toBe(true);
    const pattern = new Uint8Array(SIZE).map((_, i) => (i * 7) & 0xff);
    p.write(a, pattern);
    blit(p, fd, gen, { dst: hb, src: ha });
    expect(p.read(b, SIZE)).toEqual(pattern);
    // No copy anywhere: the object's pages are the process's frames.
    const obj = [...m.i915.dev.objects].find((o) => o.size === SIZE && (o as { userptr?: unknown }).userptr)!;
    expect(obj).toBeDefined();
    p.close(fd);
    expect(m.shutdown()).toEqual([]);
  });

  it('munmap then blit: -EFAULT for a synchronized object, success for an unsynchronized one', () => {
    const m = Machine.boot({ seed: SEED, gpu: { gen } });
    const p = m.spawn({ uid: 0 });
    const fd = p.open('/dev/dri/card0');
    const a = p.mmap(0, SIZE, RW, ANON);
    const u = p.mmap(0, SIZE, RW, ANON);
    p.write(a, new Uint8Array(SIZE).fill(1));
    p.write(u, new Uint8Array(SIZE).fill(1));
    const hs = userptr(p, fd, a, SIZE);
    const hu = userptr(p, fd, u, SIZE, uapi.I915_USERPTR_UNSYNCHRONIZED);
    blit(p, fd, gen, { fill: hs, color: 1 });
    blit(p, fd, gen, { fill: hu, color: 2 });
    const pinnedBefore = m.meminfo().pinnedPages;
    expect(pinnedBefore).toBe(32);
    p.munmap(a, SIZE);
    expect(m.meminfo().pinnedPages).toBe(16); // the synchronized object let go
    expect(code(() => blit(p, fd, gen, { fill: hs, color: 3 }))).toBe('EFAULT');
    p.munmap(u, SIZE);
    expect(m.meminfo().pinnedPages).toBe(16); // the unsynchronized one keeps the orphaned pages
    blit(p, fd, gen, { fill: hu, color: 4 });
    p.close(fd);
    expect(m.meminfo().pinnedPages).toBe(0);
    expect(m.shutdown()).toEqual([]);
  });

  it("fork: the child blits with the parent handle; COW breaks in the parent's favour", () => {
    const m = Machine.boot({ seed: SEED, gpu: { gen } });
    const p = m.spawn();
    const fd = p.open('/dev/dri/card0');
    const a = p.mmap(0, SIZE, RW, ANON);
    p.write(a, new Uint8Array(SIZE).fill(5));
    const h = userptr(p, fd, a, SIZE);
    blit(p, fd, gen, { fill: h, color: 0x01010101 });
    const c = p.fork(); // invalidates the parent's object (COW write-protect)
    const mmu = i915_mmu_notifiers(m.i915).get(p.mm!)!;
    const obj = [...mmu.objects][0]?.value.obj;
    expect(obj?.pages).toBeNull();
    blit(c, fd, gen, { fill: h, color: 0x02020202 }); // the worker pins the parent's pages
    expect(words(p.read(a, 64)).every((w) => w === 0x02020202)).toBe(true);
    expect(words(c.read(a, 64)).every((w) => w === 0x01010101)).toBe(true);
    c.exit();
    p.exit();
    expect(m.shutdown()).toEqual([]);
  });

  it('dma-buf: exporting an unsynchronized object attaches a notifier; another process imports it', () => {
    const m = Machine.boot({ seed: SEED, gpu: { gen } });
    const root = m.spawn({ uid: 0 });
    const other = m.spawn();
    const fd = root.open('/dev/dri/card0');
    const ofd = other.open('/dev/dri/card0');
    const a = root.mmap(0, SIZE, RW, ANON);
    root.write(a, new Uint8Array(SIZE).fill(9));
    const h = userptr(root, fd, a, SIZE, uapi.I915_USERPTR_UNSYNCHRONIZED);
    expect(i915_mmu_notifiers(m.i915).get(root.mm!)).toBeUndefined();
    const pr = uapi.drm_prime_handle.encode({ handle: h, flags: uapi.DRM_CLOEXEC });
    root.ioctl(fd, uapi.DRM_IOCTL_PRIME_HANDLE_TO_FD, pr);
    const dmafd = uapi.drm_prime_handle.decode(pr).fd;
    expect(i915_mmu_notifiers(m.i915).get(root.mm!)?.count).toBe(1);
    // The fd travels (as over a socket): install the same file in the other process.
    const file = root.files[dmafd]!;
    file.f_count++;
    other.files.push(file);
    const ofdIndex = other.files.length - 1;
    const imp = uapi.drm_prime_handle.encode({ fd: ofdIndex });
    other.ioctl(ofd, uapi.DRM_IOCTL_PRIME_FD_TO_HANDLE, imp);
    const oh = uapi.drm_prime_handle.decode(imp).handle;
    blit(other, ofd, gen, { fill: oh, color: 0x33333333 });
    expect(words(root.read(a, 16)).every((w) => w === 0x33333333)).toBe(true);
    other.exit();
    root.exit();
    expect(m.shutdown()).toEqual([]);
  });
});
