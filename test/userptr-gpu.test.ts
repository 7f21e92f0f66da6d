import { describe, expect, it } from 'vitest';
import { Machine, uapi } from '../src/index.js';
import { i915_mmu_notifiers } from '../src/i915/i915_gem_userptr.js';
import { ANON, RW, SIZE, blit, code, copyBatch, drmUserptr, fillBatch, words } from './support/userptr.js';

const SEED = Number(process.env.SEED ?? 9);
/** A 128 x 128 32-bpp surface: 64 KiB, 16 pages, pitch 512. */
/** Blits on the BLT ring: fill `dst` with `color`, or copy `src` into `dst`. */
describe.each([7, 8] as const)(`userptr on the GPU, gen %i (seed ${SEED})`, (gen) => {
  it('zero copy: the GPU writes the process memory and reads what the CPU wrote', () => {
    const m = Machine.boot({ seed: SEED, gpu: { gen } });
    const p = m.spawn();
    const fd = p.open('/dev/dri/card0');
    const a = p.mmap(0, SIZE, RW, ANON);
    const b = p.mmap(0, SIZE, RW, ANON);
    p.write(a, new Uint8Array(SIZE).fill(0x11)); // resident: the fast path pins them
    const ha = drmUserptr(p, fd, a, SIZE);
    const hb = drmUserptr(p, fd, b, SIZE); // b untouched: a worker faults it in (-EAGAIN, retried)
    blit(p, fd, fillBatch(gen, ha, 0xdeadbeef), [ha]);
    expect(words(p.read(a, SIZE)).every((w) => w === 0xdeadbeef)).toBe(true);
    const pattern = new Uint8Array(SIZE).map((_, i) => (i * 7) & 0xff);
    p.write(a, pattern);
    blit(p, fd, copyBatch(gen, hb, ha), [hb, ha]);
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
    const hs = drmUserptr(p, fd, a, SIZE);
    const hu = drmUserptr(p, fd, u, SIZE, uapi.I915_USERPTR_UNSYNCHRONIZED);
    blit(p, fd, fillBatch(gen, hs, 1), [hs]);
    blit(p, fd, fillBatch(gen, hu, 2), [hu]);
    const pinnedBefore = m.meminfo().pinnedPages;
    expect(pinnedBefore).toBe(32);
    p.munmap(a, SIZE);
    expect(m.meminfo().pinnedPages).toBe(16); // the synchronized object let go
    expect(code(() => blit(p, fd, fillBatch(gen, hs, 3), [hs]))).toBe('EFAULT');
    p.munmap(u, SIZE);
    expect(m.meminfo().pinnedPages).toBe(16); // the unsynchronized one keeps the orphaned pages
    blit(p, fd, fillBatch(gen, hu, 4), [hu]);
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
    const h = drmUserptr(p, fd, a, SIZE);
    blit(p, fd, fillBatch(gen, h, 0x01010101), [h]);
    const c = p.fork(); // invalidates the parent's object (COW write-protect)
    const mmu = i915_mmu_notifiers(m.i915).get(p.mm!)!;
    const obj = [...mmu.objects][0]?.value.obj;
    expect(obj?.pages).toBeNull();
    blit(c, fd, fillBatch(gen, h, 0x02020202), [h]); // the worker pins the parent's pages
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
    const h = drmUserptr(root, fd, a, SIZE, uapi.I915_USERPTR_UNSYNCHRONIZED);
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
    blit(other, ofd, fillBatch(gen, oh, 0x33333333), [oh]);
    expect(words(root.read(a, 16)).every((w) => w === 0x33333333)).toBe(true);
    other.exit();
    root.exit();
    expect(m.shutdown()).toEqual([]);
  });
  it("dma-buf: a child exporting an unsynchronized object after its creator exited: EFAULT, never a BUG (3.16's mm_users hold: the export works)", () => {
    for (const [bugs, expected] of [
      [[], 'EFAULT'],
      [['mmput-under-struct-mutex'], 'OK'],
    ] as const) {
      const m = Machine.boot({ seed: SEED, gpu: { gen }, bugs: [...bugs] });
      const root = m.spawn({ uid: 0 });
      const fd = root.open('/dev/dri/card0');
      const a = root.mmap(0, SIZE, RW, ANON);
      const h = drmUserptr(root, fd, a, SIZE, uapi.I915_USERPTR_UNSYNCHRONIZED);
      const c = root.fork();
      root.exit();
      const pr = uapi.drm_prime_handle.encode({ handle: h, flags: uapi.DRM_CLOEXEC });
      expect(
        code(() => c.ioctl(fd, uapi.DRM_IOCTL_PRIME_HANDLE_TO_FD, pr)),
        JSON.stringify(bugs),
      ).toBe(expected);
      c.exit();
      expect(m.shutdown(), JSON.stringify(bugs)).toEqual([]);
    }
  });
});
