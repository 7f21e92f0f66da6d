import { describe, expect, it } from 'vitest';
import { Machine, type MachineConfig, type Process, SegfaultError, uapi, user } from '../src/index.js';
import { pagemap } from '../src/kernel/procfs.js';

/**
 * The GEM ioctls other than execbuffer, through the public ABI only: real request numbers, struct
 * bytes, user pointers into the process's memory. Every test ends with a clean shutdown.
 */

const SEED = Number(process.env.SEED ?? 1);
const RW = uapi.PROT_READ | uapi.PROT_WRITE;
const ANON = uapi.MAP_PRIVATE | uapi.MAP_ANONYMOUS;
const PAGE = 4096;
const TASK_SIZE = 0x7ffffffff000;

const errno = (code: string): unknown => expect.objectContaining({ code });

function boot(cfg: MachineConfig = {}, node = '/dev/dri/card0'): { m: Machine; p: Process; fd: number } {
  const m = Machine.boot({ seed: SEED, ...cfg });
  const p = m.spawn();
  const fd = p.open(node);
  return { m, p, fd };
}

function pattern(len: number, seed = 1): Uint8Array {
  const out = new Uint8Array(len);
  let x = seed * 2654435761;
  for (let i = 0; i < len; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

function pread(p: Process, fd: number, handle: number, offset: bigint, size: bigint, data_ptr: bigint): void {
  p.ioctl(
    fd,
    uapi.DRM_IOCTL_I915_GEM_PREAD,
    uapi.drm_i915_gem_pread.encode({ handle, offset, size, data_ptr }),
  );
}

function pwrite(
  p: Process,
  fd: number,
  handle: number,
  offset: bigint,
  size: bigint,
  data_ptr: bigint,
): void {
  p.ioctl(
    fd,
    uapi.DRM_IOCTL_I915_GEM_PWRITE,
    uapi.drm_i915_gem_pwrite.encode({ handle, offset, size, data_ptr }),
  );
}

function setDomain(p: Process, fd: number, handle: number, read_domains: number, write_domain: number): void {
  p.ioctl(
    fd,
    uapi.DRM_IOCTL_I915_GEM_SET_DOMAIN,
    uapi.drm_i915_gem_set_domain.encode({ handle, read_domains, write_domain }),
  );
}

/** Byte equality, fast for large buffers; a mismatch shows the first differing 16 bytes. */
function expectBytes(actual: Uint8Array, expected: Uint8Array | ArrayLike<number>): void {
  const e = expected instanceof Uint8Array ? expected : Uint8Array.from(expected);
  expect(actual.length, 'length').toBe(e.length);
  const i = actual.findIndex((v, k) => v !== e[k]);
  if (i >= 0) {
    expect([...actual.subarray(i, i + 16)], `bytes from offset ${i}`).toEqual([...e.subarray(i, i + 16)]);
  }
}

/** How many pages of [addr, addr + len) have a PTE (/proc/<pid>/pagemap). */
function present(p: Process, addr: number, len: number): number {
  return pagemap(p, addr, addr + len).filter((e) => e.present).length;
}

function usedPages(m: Machine): number {
  const i = m.meminfo();
  return i.totalPages - i.freePages;
}

describe('GEM_CREATE', () => {
  it('rounds up to a page in 64 bits: 0 and a size that wraps are EINVAL; one shmem cannot back, ENOMEM', () => {
    const { m, p, fd } = boot();
    const create = (size: bigint): string => {
      const arg = uapi.drm_i915_gem_create.encode({ size });
      try {
        p.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_CREATE, arg);
      } catch (e) {
        return (e as { code: string }).code;
      }
      return `handle ${uapi.drm_i915_gem_create.decode(arg).handle}`;
    };
    expect(create(0n)).toBe('EINVAL');
    expect(create(2n ** 64n - 1n)).toBe('EINVAL');
    expect(create(2n ** 64n - 4096n)).toBe('ENOMEM');
    expect(create(2n ** 63n)).toBe('ENOMEM');
    expect(create(1n)).toBe('handle 1');
    expect(create(4097n)).toBe('handle 2');
    expect(m.shutdown()).toEqual([]);
  });
});

describe('PREAD / PWRITE', () => {
  it('round-trips bytes at any offset and length, on card0 and renderD128', () => {
    for (const node of ['/dev/dri/card0', '/dev/dri/renderD128']) {
      const { m, p, fd } = boot({}, node);
      const h = user.gem_create(p, fd, 5 * PAGE);
      const buf = p.mmap(0, 8 * PAGE, RW, ANON);
      const data = pattern(5 * PAGE);
      p.write(buf, data);
      pwrite(p, fd, h, 0n, BigInt(5 * PAGE), BigInt(buf));
      // A fresh destination: never touched, so every page faults in the slow path.
      const dst = p.mmap(0, 8 * PAGE, RW, ANON);
      for (const [off, len] of [
        [0, 5 * PAGE],
        [1, 1],
        [PAGE - 3, 7],
        [3 * PAGE + 17, 2 * PAGE - 17],
        [5 * PAGE - 1, 1],
      ] as const) {
        pread(p, fd, h, BigInt(off), BigInt(len), BigInt(dst + 5));
        expectBytes(p.read(dst + 5, len), data.subarray(off, off + len));
      }
      // Overwrite a range crossing two pages from an unaligned source.
      const patch = pattern(PAGE + 100, 7);
      p.write(buf + 33, patch);
      pwrite(p, fd, h, BigInt(2 * PAGE - 50), BigInt(patch.length), BigInt(buf + 33));
      const expected = data.slice();
      expected.set(patch, 2 * PAGE - 50);
      expectBytes(user.gem_read(p, fd, h, 0, 5 * PAGE), expected);
      p.close(fd);
      expect(m.shutdown()).toEqual([]);
    }
  });

  it('PWRITE from unmapped memory is EFAULT at the first page; its prefault size is an int, as in 3.16', () => {
    const { m, p, fd } = boot();
    const h = user.gem_create(p, fd, PAGE);
    // PWRITE's source, 1 GiB from an address nothing maps: the prefault stops at the first page.
    expect(() => pwrite(p, fd, h, 0n, 1n << 30n, 0x100000000n)).toThrow(errno('EFAULT'));
    // 3.16's prefault takes an int: 1 TiB is 0 (nothing to touch) and 3 GiB negative (nothing
    // either), so the object's bounds answer, as they do first for PREAD.
    for (const size of [1n << 40n, 3n << 30n]) {
      expect(() => pwrite(p, fd, h, 0n, size, 0x100000000n)).toThrow(errno('EINVAL'));
      expect(() => pread(p, fd, h, 0n, size, 0x100000000n)).toThrow(errno('EINVAL'));
    }
    expect(m.shutdown()).toEqual([]);
  });

  it('answers 0 for size 0 before any other check', () => {
    const { m, p, fd } = boot();
    pread(p, fd, 99, 1n << 60n, 0n, BigInt(TASK_SIZE) + 4096n);
    pwrite(p, fd, 99, 1n << 60n, 0n, BigInt(TASK_SIZE) + 4096n);
    expect(m.shutdown()).toEqual([]);
  });

  it('checks the pointer range (EFAULT), then the handle (ENOENT), then the bounds (EINVAL)', () => {
    const { m, p, fd } = boot();
    const h = user.gem_create(p, fd, 2 * PAGE);
    const buf = p.mmap(0, 4 * PAGE, RW, ANON);
    for (const io of [pread, pwrite]) {
      // Beyond the end of user space, or wrapping: access_ok fails first, whatever the handle.
      expect(() => io(p, fd, 99, 0n, 16n, BigInt(TASK_SIZE - 8))).toThrow(errno('EFAULT'));
      expect(() => io(p, fd, h, 0n, 2n ** 64n - 1n, BigInt(buf))).toThrow(errno('EFAULT'));
      expect(() => io(p, fd, 99, 0n, 16n, BigInt(buf))).toThrow(errno('ENOENT'));
      expect(() => io(p, fd, 0, 0n, 16n, BigInt(buf))).toThrow(errno('ENOENT'));
      expect(() => io(p, fd, h, BigInt(2 * PAGE + 1), 0n + 1n, BigInt(buf))).toThrow(errno('EINVAL'));
      expect(() => io(p, fd, h, BigInt(2 * PAGE), 1n, BigInt(buf))).toThrow(errno('EINVAL'));
      expect(() => io(p, fd, h, 1n, BigInt(2 * PAGE), BigInt(buf))).toThrow(errno('EINVAL'));
      // offset + size wrapping 64 bits is caught, not overflowed.
      expect(() => io(p, fd, h, 2n ** 64n - 1n, 2n, BigInt(buf))).toThrow(errno('EINVAL'));
      io(p, fd, h, 0n, BigInt(2 * PAGE), BigInt(buf));
    }
    expect(m.shutdown()).toEqual([]);
  });

  it('pwrite prefaults its source before the lookup (EFAULT beats ENOENT); pread does not', () => {
    const { m, p, fd } = boot();
    const h = user.gem_create(p, fd, PAGE);
    const hole = p.mmap(0, 2 * PAGE, RW, ANON);
    p.munmap(hole, 2 * PAGE);
    expect(() => pwrite(p, fd, 99, 0n, 16n, BigInt(hole))).toThrow(errno('EFAULT'));
    expect(() => pread(p, fd, 99, 0n, 16n, BigInt(hole))).toThrow(errno('ENOENT'));
    expect(() => pread(p, fd, h, 0n, 16n, BigInt(hole))).toThrow(errno('EFAULT'));
    expect(() => pwrite(p, fd, h, 0n, 16n, BigInt(hole))).toThrow(errno('EFAULT'));
    // A read-only destination cannot be written by pread; it is a fine pwrite source.
    const ro = p.mmap(0, PAGE, uapi.PROT_READ, ANON);
    expect(() => pread(p, fd, h, 0n, 16n, BigInt(ro))).toThrow(errno('EFAULT'));
    pwrite(p, fd, h, 0n, 16n, BigInt(ro));
    expectBytes(user.gem_read(p, fd, h, 0, 16), new Uint8Array(16));
    expect(m.shutdown()).toEqual([]);
  });

  it('a source that is half mapped copies nothing past the hole and fails', () => {
    const { m, p, fd } = boot();
    const h = user.gem_create(p, fd, 2 * PAGE);
    const buf = p.mmap(0, 2 * PAGE, RW, ANON);
    p.write(buf, pattern(PAGE));
    // Second page PROT_NONE: the prefault fails, nothing is written.
    p.mprotect(buf + PAGE, PAGE, uapi.PROT_NONE);
    expect(() => pwrite(p, fd, h, 0n, BigInt(2 * PAGE), BigInt(buf))).toThrow(errno('EFAULT'));
    expectBytes(user.gem_read(p, fd, h, 0, 2 * PAGE), new Uint8Array(2 * PAGE));
    expect(m.shutdown()).toEqual([]);
  });

  it('copies to and from CPU and GTT mmaps of objects, the same one included, without lock inversion', () => {
    const { m, p, fd } = boot();
    const a = user.gem_create(p, fd, 4 * PAGE);
    const b = user.gem_create(p, fd, 4 * PAGE);
    const data = pattern(4 * PAGE, 3);
    user.gem_write(p, fd, a, 0, data);
    // pread of A into a GTT mmap of B that has never been faulted: the copy faults B into the
    // aperture with struct_mutex dropped.
    const gttB = user.gem_mmap__gtt(p, fd, b, 4 * PAGE);
    pread(p, fd, a, 0n, BigInt(4 * PAGE), BigInt(gttB));
    expectBytes(user.gem_read(p, fd, b, 0, 4 * PAGE), data);
    // pwrite of A from its own GTT mmap (shifted by a page), and pread of A into its CPU mmap.
    const gttA = user.gem_mmap__gtt(p, fd, a, 4 * PAGE);
    pwrite(p, fd, a, 0n, BigInt(PAGE), BigInt(gttA + 3 * PAGE));
    const cpuA = user.gem_mmap__cpu(p, fd, a, 0, 4 * PAGE);
    pread(p, fd, a, BigInt(PAGE), BigInt(PAGE), BigInt(cpuA + 2 * PAGE));
    const expected = data.slice();
    expected.set(data.subarray(3 * PAGE), 0);
    expected.set(data.subarray(PAGE, 2 * PAGE), 2 * PAGE);
    expectBytes(p.read(cpuA, 4 * PAGE), expected);
    expectBytes(p.read(gttA, 4 * PAGE), expected);
    expect(m.shutdown()).toEqual([]);
  });
});

describe('MMAP (CPU)', () => {
  it('maps the shmem backing, v1 and v2 structs, at an offset', () => {
    const { m, p, fd } = boot();
    const h = user.gem_create(p, fd, 4 * PAGE);
    const data = pattern(4 * PAGE, 5);
    user.gem_write(p, fd, h, 0, data);
    const v1 = uapi.drm_i915_gem_mmap_v1.encode({ handle: h, offset: 0n, size: BigInt(4 * PAGE) });
    p.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_MMAP_V1, v1);
    const a1 = Number(uapi.drm_i915_gem_mmap_v1.decode(v1).addr_ptr);
    expect(a1 % PAGE).toBe(0);
    expectBytes(p.read(a1, 4 * PAGE), data);
    const v2 = uapi.drm_i915_gem_mmap.encode({ handle: h, offset: BigInt(2 * PAGE), size: BigInt(2 * PAGE) });
    p.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_MMAP, v2);
    const a2 = Number(uapi.drm_i915_gem_mmap.decode(v2).addr_ptr);
    expectBytes(p.read(a2, 2 * PAGE), data.subarray(2 * PAGE));
    const wc = user.gem_mmap__wc(p, fd, h, PAGE, PAGE);
    expectBytes(p.read(wc, PAGE), data.subarray(PAGE, 2 * PAGE));
    // CPU stores are the object's bytes: pread sees them, and other mappings too.
    p.write(a2 + 10, [1, 2, 3]);
    expectBytes(user.gem_read(p, fd, h, 2 * PAGE + 10, 3), new Uint8Array([1, 2, 3]));
    expectBytes(p.read(a1 + 2 * PAGE + 10, 3), new Uint8Array([1, 2, 3]));
    user.gem_write(p, fd, h, PAGE + 1, [7, 7]);
    expectBytes(p.read(wc + 1, 2), new Uint8Array([7, 7]));
    expect(m.shutdown()).toEqual([]);
  });

  it('checks flags first, then the handle; mmap errors come from the mm', () => {
    const { m, p, fd } = boot();
    const h = user.gem_create(p, fd, PAGE);
    const mm = (handle: number, flags: bigint, offset = 0n, size = BigInt(PAGE)): void => {
      p.ioctl(
        fd,
        uapi.DRM_IOCTL_I915_GEM_MMAP,
        uapi.drm_i915_gem_mmap.encode({ handle, offset, size, flags }),
      );
    };
    expect(() => mm(99, 2n)).toThrow(errno('EINVAL'));
    expect(() => mm(h, 1n << 40n)).toThrow(errno('EINVAL'));
    expect(() => mm(99, 1n)).toThrow(errno('ENOENT'));
    expect(() => mm(h, 0n, 100n)).toThrow(errno('EINVAL'));
    expect(() => mm(h, 0n, 0n, 0n)).toThrow(errno('EINVAL'));
    mm(h, 0n);
    expect(m.shutdown()).toEqual([]);
  });

  it('stays valid after the handle is closed; the pages go with the mapping', () => {
    const { m, p, fd } = boot();
    const base = usedPages(m);
    const h = user.gem_create(p, fd, 3 * PAGE);
    const data = pattern(3 * PAGE, 9);
    user.gem_write(p, fd, h, 0, data);
    const a = user.gem_mmap__cpu(p, fd, h, 0, 3 * PAGE);
    user.gem_close(p, fd, h);
    expectBytes(p.read(a, 3 * PAGE), data);
    p.write(a, [42]);
    expectBytes(p.read(a, 1), new Uint8Array([42]));
    expect(usedPages(m)).toBeGreaterThanOrEqual(base + 3);
    p.munmap(a, 3 * PAGE);
    expect(usedPages(m)).toBe(base);
    expect(m.shutdown()).toEqual([]);
  });

  it('a fault beyond the object is SIGBUS', () => {
    const { m, p, fd } = boot();
    const h = user.gem_create(p, fd, PAGE);
    const a = user.gem_mmap__cpu(p, fd, h, 0, 2 * PAGE);
    p.write(a, [1]);
    expect(() => p.read(a + PAGE, 1)).toThrow(SegfaultError);
    expect(() => p.read(a + PAGE, 1)).toThrow(expect.objectContaining({ signal: 'SIGBUS' }));
    expect(m.shutdown()).toEqual([]);
  });
});

describe('MMAP_GTT and GTT faults', () => {
  it('hands out one page-aligned fake offset per object; checks the handle, size and madv', () => {
    const { m, p, fd } = boot({ gpu: { mappableBytes: 1 << 20 } });
    const h = user.gem_create(p, fd, 2 * PAGE);
    const off = user.gem_mmap_gtt_offset(p, fd, h);
    expect(off % PAGE).toBe(0);
    expect(off).toBeGreaterThanOrEqual(2 ** 32);
    expect(user.gem_mmap_gtt_offset(p, fd, h)).toBe(off);
    const h2 = user.gem_create(p, fd, PAGE);
    expect(user.gem_mmap_gtt_offset(p, fd, h2)).not.toBe(off);
    const gtt = (handle: number): void => {
      p.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_MMAP_GTT, uapi.drm_i915_gem_mmap_gtt.encode({ handle }));
    };
    expect(() => gtt(99)).toThrow(errno('ENOENT'));
    const big = user.gem_create(p, fd, (1 << 20) + PAGE);
    expect(() => gtt(big)).toThrow(errno('E2BIG'));
    user.gem_madvise(p, fd, h2, uapi.I915_MADV_DONTNEED);
    expect(() => gtt(h2)).toThrow(errno('EFAULT'));
    // The mmap itself: a mapping larger than the object, or at a wrong offset, is refused.
    expect(() => p.mmap(0, 3 * PAGE, RW, uapi.MAP_SHARED, fd, off)).toThrow(errno('EINVAL'));
    expect(() => p.mmap(0, PAGE, RW, uapi.MAP_SHARED, fd, off + PAGE)).toThrow(errno('EINVAL'));
    expect(m.shutdown()).toEqual([]);
  });

  it('writes through the aperture are seen by pread, CPU mmaps and other GTT mmaps, and back', () => {
    for (const gen of [7, 8] as const) {
      const { m, p, fd } = boot({ gpu: { gen } });
      const h = user.gem_create(p, fd, 3 * PAGE);
      const data = pattern(3 * PAGE, gen);
      user.gem_write(p, fd, h, 0, data);
      const g1 = user.gem_mmap__gtt(p, fd, h, 3 * PAGE);
      expectBytes(p.read(g1, 3 * PAGE), data);
      p.write(g1 + PAGE + 5, [0xde, 0xad]);
      expectBytes(user.gem_read(p, fd, h, PAGE + 5, 2), new Uint8Array([0xde, 0xad]));
      const cpu = user.gem_mmap__cpu(p, fd, h, 0, 3 * PAGE);
      p.read(cpu, 3 * PAGE);
      // The aperture PTEs are PFN mappings of the very frames behind the object's pages.
      const viaGtt = pagemap(p, g1, g1 + 3 * PAGE);
      const viaCpu = pagemap(p, cpu, cpu + 3 * PAGE);
      expect(viaGtt.map((e) => e.special)).toEqual([true, true, true]);
      expect(viaCpu.map((e) => e.special)).toEqual([false, false, false]);
      expect(viaGtt.map((e) => e.pfn)).toEqual(viaCpu.map((e) => e.pfn));
      expectBytes(p.read(cpu + PAGE + 5, 2), new Uint8Array([0xde, 0xad]));
      user.gem_write(p, fd, h, 2 * PAGE, [1, 2, 3, 4]);
      const g2 = user.gem_mmap__gtt(p, fd, h, 3 * PAGE);
      expectBytes(p.read(g1 + 2 * PAGE, 4), new Uint8Array([1, 2, 3, 4]));
      expectBytes(p.read(g2 + 2 * PAGE, 4), new Uint8Array([1, 2, 3, 4]));
      p.write(cpu + 9, [77]);
      expectBytes(p.read(g2 + 9, 1), new Uint8Array([77]));
      expect(m.shutdown()).toEqual([]);
    }
  });

  it('a mapping of part of the object (split by munmap) still maps the right pages', () => {
    const { m, p, fd } = boot();
    const h = user.gem_create(p, fd, 4 * PAGE);
    const data = pattern(4 * PAGE, 11);
    user.gem_write(p, fd, h, 0, data);
    const g = user.gem_mmap__gtt(p, fd, h, 4 * PAGE);
    p.munmap(g + PAGE, PAGE);
    expectBytes(p.read(g + 3 * PAGE, PAGE), data.subarray(3 * PAGE));
    expectBytes(p.read(g, PAGE), data.subarray(0, PAGE));
    expect(() => p.read(g + PAGE, 1)).toThrow(expect.objectContaining({ signal: 'SIGSEGV' }));
    expect(m.shutdown()).toEqual([]);
  });

  it('an object evicted from a small aperture is faulted back with its contents', () => {
    const { m, p, fd } = boot({ gpu: { mappableBytes: 64 * 1024 } });
    const size = 64 * 1024;
    const handles = [0, 1, 2].map(() => user.gem_create(p, fd, size));
    const maps = handles.map((h) => user.gem_mmap__gtt(p, fd, h, size));
    const data = handles.map((_, i) => pattern(size, 20 + i));
    // Each write faults its object into the aperture (every page at once: special PTEs),
    // evicting the previous one, whose PTEs are zapped.
    maps.forEach((a, i) => {
      p.write(a, data[i]!);
      expect(pagemap(p, a, a + size).every((e) => e.present && e.special && e.writable)).toBe(true);
      if (i > 0) expect(present(p, maps[i - 1]!, size)).toBe(0);
    });
    for (let round = 0; round < 2; round++) {
      maps.forEach((a, i) => expectBytes(p.read(a, size), data[i]!));
    }
    handles.forEach((h, i) => expectBytes(user.gem_read(p, fd, h, 0, size), data[i]!));
    expect(m.shutdown()).toEqual([]);
  });

  it('an object that cannot fit next to a bigger one still works, one at a time', () => {
    const { m, p, fd } = boot({ gpu: { mappableBytes: 96 * 1024 } });
    const a = user.gem_create(p, fd, 64 * 1024);
    const b = user.gem_create(p, fd, 64 * 1024);
    const ga = user.gem_mmap__gtt(p, fd, a, 64 * 1024);
    const gb = user.gem_mmap__gtt(p, fd, b, 64 * 1024);
    for (let i = 0; i < 4; i++) {
      p.write(ga + i * 100, [i + 1]);
      p.write(gb + i * 100, [i + 101]);
    }
    for (let i = 0; i < 4; i++) {
      expect(p.read(ga + i * 100, 1)[0]).toBe(i + 1);
      expect(p.read(gb + i * 100, 1)[0]).toBe(i + 101);
    }
    expect(m.shutdown()).toEqual([]);
  });

  it('munmap drops the mapping’s object reference: close the handle, then munmap, and it is freed', () => {
    const { m, p, fd } = boot();
    const base = usedPages(m);
    const h = user.gem_create(p, fd, 4 * PAGE);
    const g = user.gem_mmap__gtt(p, fd, h, 4 * PAGE);
    p.write(g, pattern(4 * PAGE));
    user.gem_close(p, fd, h);
    // The mapping keeps the object (and its pages) alive.
    expectBytes(p.read(g, 4), pattern(4 * PAGE).subarray(0, 4));
    expect(usedPages(m)).toBeGreaterThanOrEqual(base + 4);
    p.munmap(g, 4 * PAGE);
    expect(usedPages(m)).toBe(base);
    // Never faulted: same.
    const h2 = user.gem_create(p, fd, PAGE);
    const g2 = user.gem_mmap__gtt(p, fd, h2, PAGE);
    user.gem_close(p, fd, h2);
    p.munmap(g2, PAGE);
    expect(usedPages(m)).toBe(base);
    expect(m.shutdown()).toEqual([]);
  });

  it('a forked child shares the GTT mapping; both see each other’s stores', () => {
    const { m, p, fd } = boot();
    const h = user.gem_create(p, fd, 2 * PAGE);
    const g = user.gem_mmap__gtt(p, fd, h, 2 * PAGE);
    p.write(g, [1, 2, 3]);
    const child = p.fork();
    // fork copies the PFN mappings as they are.
    expect(pagemap(child, g, g + 2 * PAGE)).toEqual(pagemap(p, g, g + 2 * PAGE));
    expectBytes(child.read(g, 3), new Uint8Array([1, 2, 3]));
    child.write(g + PAGE, [9, 8]);
    expectBytes(p.read(g + PAGE, 2), new Uint8Array([9, 8]));
    expectBytes(user.gem_read(child, fd, h, PAGE, 2), new Uint8Array([9, 8]));
    // The parent lets go first: the child's mapping still holds the object.
    user.gem_close(p, fd, h);
    p.munmap(g, 2 * PAGE);
    expectBytes(child.read(g, 3), new Uint8Array([1, 2, 3]));
    child.exit();
    expect(m.shutdown()).toEqual([]);
  });

  it('a read-only GTT mapping refuses stores (SIGSEGV)', () => {
    const { m, p, fd } = boot();
    const h = user.gem_create(p, fd, PAGE);
    const g = user.gem_mmap__gtt(p, fd, h, PAGE, uapi.PROT_READ);
    expectBytes(p.read(g, 4), new Uint8Array(4));
    expect(() => p.write(g, [1])).toThrow(expect.objectContaining({ signal: 'SIGSEGV' }));
    expect(m.shutdown()).toEqual([]);
  });

  it('a fault on an object whose storage was discarded is SIGBUS', () => {
    const { m, p, fd } = boot();
    const h = user.gem_create(p, fd, PAGE);
    const g = user.gem_mmap__gtt(p, fd, h, PAGE);
    // No pages yet: DONTNEED discards the storage at once.
    expect(user.gem_madvise(p, fd, h, uapi.I915_MADV_DONTNEED)).toBe(false);
    expect(() => p.read(g, 1)).toThrow(expect.objectContaining({ signal: 'SIGBUS' }));
    expect(m.shutdown()).toEqual([]);
  });

  it('mapping an object of another file is refused (EACCES) until it holds a handle', () => {
    const { m, p, fd } = boot();
    const h = user.gem_create(p, fd, PAGE);
    const off = user.gem_mmap_gtt_offset(p, fd, h);
    const fd2 = p.open('/dev/dri/card0');
    expect(() => p.mmap(0, PAGE, RW, uapi.MAP_SHARED, fd2, off)).toThrow(errno('EACCES'));
    const h2 = user.gem_open(p, fd2, user.gem_flink(p, fd, h));
    expect(user.gem_mmap_gtt_offset(p, fd2, h2)).toBe(off);
    const g = p.mmap(0, PAGE, RW, uapi.MAP_SHARED, fd2, off);
    p.write(g, [5]);
    expectBytes(user.gem_read(p, fd, h, 0, 1), new Uint8Array([5]));
    expect(m.shutdown()).toEqual([]);
  });
});

describe('SET_DOMAIN and SW_FINISH', () => {
  it('accepts only CPU-side domains and a write domain equal to the read domains', () => {
    const { m, p, fd } = boot();
    const h = user.gem_create(p, fd, PAGE);
    const D = uapi;
    for (const gpu of [
      D.I915_GEM_DOMAIN_RENDER,
      D.I915_GEM_DOMAIN_SAMPLER,
      D.I915_GEM_DOMAIN_COMMAND,
      D.I915_GEM_DOMAIN_INSTRUCTION,
      D.I915_GEM_DOMAIN_VERTEX,
    ]) {
      // Argument checks come before the lookup: an unknown handle still gets EINVAL.
      expect(() => setDomain(p, fd, 99, gpu, 0)).toThrow(errno('EINVAL'));
      expect(() => setDomain(p, fd, h, D.I915_GEM_DOMAIN_CPU | gpu, 0)).toThrow(errno('EINVAL'));
      expect(() => setDomain(p, fd, h, D.I915_GEM_DOMAIN_CPU, gpu)).toThrow(errno('EINVAL'));
    }
    expect(() => setDomain(p, fd, 99, D.I915_GEM_DOMAIN_GTT, D.I915_GEM_DOMAIN_CPU)).toThrow(errno('EINVAL'));
    expect(() => setDomain(p, fd, h, 0, D.I915_GEM_DOMAIN_CPU)).toThrow(errno('EINVAL'));
    expect(() =>
      setDomain(p, fd, h, D.I915_GEM_DOMAIN_CPU | D.I915_GEM_DOMAIN_GTT, D.I915_GEM_DOMAIN_CPU),
    ).toThrow(errno('EINVAL'));
    expect(() => setDomain(p, fd, 99, D.I915_GEM_DOMAIN_CPU, 0)).toThrow(errno('ENOENT'));
    // Valid requests (3.16 does not know the WC domain: it is not a GPU domain, so it passes).
    setDomain(p, fd, h, D.I915_GEM_DOMAIN_CPU, 0);
    setDomain(p, fd, h, D.I915_GEM_DOMAIN_CPU, D.I915_GEM_DOMAIN_CPU);
    setDomain(p, fd, h, D.I915_GEM_DOMAIN_GTT, 0);
    setDomain(p, fd, h, D.I915_GEM_DOMAIN_GTT, D.I915_GEM_DOMAIN_GTT);
    setDomain(p, fd, h, D.I915_GEM_DOMAIN_WC, D.I915_GEM_DOMAIN_WC);
    setDomain(p, fd, h, 0, 0);
    expect(m.shutdown()).toEqual([]);
  });

  it('does not acquire pages (unbound GTT requests silently succeed)', () => {
    const { m, p, fd } = boot();
    const h = user.gem_create(p, fd, 16 * PAGE);
    const before = usedPages(m);
    setDomain(p, fd, h, uapi.I915_GEM_DOMAIN_GTT, uapi.I915_GEM_DOMAIN_GTT);
    setDomain(p, fd, h, uapi.I915_GEM_DOMAIN_CPU, uapi.I915_GEM_DOMAIN_CPU);
    expect(usedPages(m)).toBe(before);
    // Bound through a GTT fault, both directions keep the bytes.
    const g = user.gem_mmap__gtt(p, fd, h, 16 * PAGE);
    p.write(g, [3]);
    setDomain(p, fd, h, uapi.I915_GEM_DOMAIN_GTT, uapi.I915_GEM_DOMAIN_GTT);
    setDomain(p, fd, h, uapi.I915_GEM_DOMAIN_CPU, 0);
    expectBytes(user.gem_read(p, fd, h, 0, 1), new Uint8Array([3]));
    expect(m.shutdown()).toEqual([]);
  });

  it('SW_FINISH: ENOENT for an unknown handle, else nothing to do', () => {
    const { m, p, fd } = boot();
    const h = user.gem_create(p, fd, PAGE);
    expect(() =>
      p.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_SW_FINISH, uapi.drm_i915_gem_sw_finish.encode({ handle: 7 })),
    ).toThrow(errno('ENOENT'));
    user.gem_sw_finish(p, fd, h);
    expect(m.shutdown()).toEqual([]);
  });
});

describe('SET_TILING / GET_TILING', () => {
  it('checks the stride per tiling mode (gen 7 and 8)', () => {
    for (const gen of [7, 8] as const) {
      const { m, p, fd } = boot({ gpu: { gen } });
      const h = user.gem_create(p, fd, 64 * PAGE);
      const set = (tiling: number, stride: number): user.Tiling =>
        user.gem_set_tiling(p, fd, h, tiling, stride);
      const X = uapi.I915_TILING_X;
      const Y = uapi.I915_TILING_Y;
      for (const [tiling, stride] of [
        [X, 512],
        [X, 1024],
        [X, 8192],
        [X, 0x800 * 128],
        [Y, 128],
        [Y, 384],
        [Y, 0x800 * 128],
      ] as const) {
        expect(set(tiling, stride)).toEqual({
          tiling_mode: tiling,
          stride,
          swizzle_mode: uapi.I915_BIT_6_SWIZZLE_NONE,
        });
        expect(user.gem_get_tiling(p, fd, h)).toEqual({
          tiling_mode: tiling,
          swizzle_mode: uapi.I915_BIT_6_SWIZZLE_NONE,
        });
      }
      for (const [tiling, stride] of [
        [X, 0],
        [X, 256],
        [X, 768],
        [X, 513],
        [X, 0x800 * 128 + 512],
        [X, 0x80000000],
        [Y, 0],
        [Y, 64],
        [Y, 192],
        [3, 512],
        [0xffffffff, 512],
      ] as const) {
        expect(() => set(tiling, stride)).toThrow(errno('EINVAL'));
      }
      // Linear ignores the stride and reports 0.
      expect(set(uapi.I915_TILING_NONE, 12345)).toEqual({
        tiling_mode: uapi.I915_TILING_NONE,
        stride: 0,
        swizzle_mode: uapi.I915_BIT_6_SWIZZLE_NONE,
      });
      expect(() => user.gem_set_tiling(p, fd, 99, X, 512)).toThrow(errno('ENOENT'));
      expect(() => user.gem_get_tiling(p, fd, 99)).toThrow(errno('ENOENT'));
      expect(m.shutdown()).toEqual([]);
    }
  });

  it('GET_TILING answers the 3.16 12-byte struct; a 16-byte caller keeps its last field', () => {
    const { m, p, fd } = boot();
    const h = user.gem_create(p, fd, 16 * PAGE);
    user.gem_set_tiling(p, fd, h, uapi.I915_TILING_X, 4096);
    const arg = uapi.drm_i915_gem_get_tiling.encode({ handle: h, phys_swizzle_mode: 0xabcd });
    p.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_GET_TILING, arg);
    expect(uapi.drm_i915_gem_get_tiling.decode(arg)).toEqual({
      handle: h,
      tiling_mode: uapi.I915_TILING_X,
      swizzle_mode: uapi.I915_BIT_6_SWIZZLE_NONE,
      phys_swizzle_mode: 0xabcd,
    });
    expect(m.shutdown()).toEqual([]);
  });

  it('a tiling change leaves GTT-mapped objects usable (their PTEs are refaulted)', () => {
    const { m, p, fd } = boot();
    const h = user.gem_create(p, fd, 8 * PAGE);
    const g = user.gem_mmap__gtt(p, fd, h, 8 * PAGE);
    const data = pattern(8 * PAGE, 4);
    p.write(g, data);
    expect(present(p, g, 8 * PAGE)).toBe(8);
    user.gem_set_tiling(p, fd, h, uapi.I915_TILING_X, 4096);
    expect(present(p, g, 8 * PAGE)).toBe(0);
    expectBytes(p.read(g, 8 * PAGE), data);
    // The same layout again changes nothing: the PTEs stay.
    user.gem_set_tiling(p, fd, h, uapi.I915_TILING_X, 4096);
    expect(present(p, g, 8 * PAGE)).toBe(8);
    user.gem_set_tiling(p, fd, h, uapi.I915_TILING_Y, 4096);
    user.gem_set_tiling(p, fd, h, uapi.I915_TILING_NONE, 0);
    expectBytes(user.gem_read(p, fd, h, 0, 8 * PAGE), data);
    expect(m.shutdown()).toEqual([]);
  });
});

describe('SET_CACHING / GET_CACHING', () => {
  it('round-trips the levels; DISPLAY is NONE without write-through; unknown EINVAL first', () => {
    for (const gen of [7, 8] as const) {
      const { m, p, fd } = boot({ gpu: { gen } });
      const h = user.gem_create(p, fd, PAGE);
      expect(user.gem_get_caching(p, fd, h)).toBe(uapi.I915_CACHING_CACHED);
      user.gem_set_caching(p, fd, h, uapi.I915_CACHING_NONE);
      expect(user.gem_get_caching(p, fd, h)).toBe(uapi.I915_CACHING_NONE);
      user.gem_set_caching(p, fd, h, uapi.I915_CACHING_CACHED);
      expect(user.gem_get_caching(p, fd, h)).toBe(uapi.I915_CACHING_CACHED);
      user.gem_set_caching(p, fd, h, uapi.I915_CACHING_DISPLAY);
      expect(user.gem_get_caching(p, fd, h)).toBe(uapi.I915_CACHING_NONE);
      expect(() => user.gem_set_caching(p, fd, 99, 3)).toThrow(errno('EINVAL'));
      expect(() => user.gem_set_caching(p, fd, h, 0xffffffff)).toThrow(errno('EINVAL'));
      expect(() => user.gem_set_caching(p, fd, 99, uapi.I915_CACHING_NONE)).toThrow(errno('ENOENT'));
      expect(() => user.gem_get_caching(p, fd, 99)).toThrow(errno('ENOENT'));
      expect(m.shutdown()).toEqual([]);
    }
  });

  it('changing the level of a bound, GTT-mapped object rebinds it with its contents', () => {
    const { m, p, fd } = boot();
    const h = user.gem_create(p, fd, 4 * PAGE);
    const g = user.gem_mmap__gtt(p, fd, h, 4 * PAGE);
    const data = pattern(4 * PAGE, 8);
    p.write(g, data);
    user.gem_set_caching(p, fd, h, uapi.I915_CACHING_NONE);
    expect(present(p, g, 4 * PAGE)).toBe(0);
    expectBytes(p.read(g, 4 * PAGE), data);
    p.write(g + 3 * PAGE, [1]);
    user.gem_set_caching(p, fd, h, uapi.I915_CACHING_CACHED);
    expectBytes(user.gem_read(p, fd, h, 3 * PAGE, 1), new Uint8Array([1]));
    expect(m.shutdown()).toEqual([]);
  });
});

describe('MADVISE', () => {
  it('checks madv first, then the handle; reports whether the contents are retained', () => {
    const { m, p, fd } = boot();
    const h = user.gem_create(p, fd, PAGE);
    const madv = (handle: number, v: number): number => {
      const arg = uapi.drm_i915_gem_madvise.encode({ handle, madv: v, retained: 0xdead });
      p.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_MADVISE, arg);
      return uapi.drm_i915_gem_madvise.decode(arg).retained;
    };
    expect(() => madv(99, 2)).toThrow(errno('EINVAL'));
    expect(() => madv(h, 0xffffffff)).toThrow(errno('EINVAL'));
    expect(() => madv(99, uapi.I915_MADV_WILLNEED)).toThrow(errno('ENOENT'));
    expect(madv(h, uapi.I915_MADV_WILLNEED)).toBe(1);
    // With pages, DONTNEED only marks the object; WILLNEED takes it back intact.
    user.gem_write(p, fd, h, 0, [1, 2, 3]);
    expect(madv(h, uapi.I915_MADV_DONTNEED)).toBe(1);
    expect(madv(h, uapi.I915_MADV_WILLNEED)).toBe(1);
    expectBytes(user.gem_read(p, fd, h, 0, 3), new Uint8Array([1, 2, 3]));
    expect(m.shutdown()).toEqual([]);
  });

  it('an object without pages is purged at once, for good', () => {
    const { m, p, fd } = boot();
    const h = user.gem_create(p, fd, 2 * PAGE);
    expect(user.gem_madvise(p, fd, h, uapi.I915_MADV_DONTNEED)).toBe(false);
    expect(user.gem_madvise(p, fd, h, uapi.I915_MADV_WILLNEED)).toBe(false);
    const buf = p.mmap(0, 2 * PAGE, RW, ANON);
    // Asking for the pages of a purged object: EFAULT.
    expect(() => pread(p, fd, h, 0n, 1n, BigInt(buf))).toThrow(errno('EFAULT'));
    expect(() => pwrite(p, fd, h, 0n, 1n, BigInt(buf))).toThrow(errno('EFAULT'));
    expect(() => user.gem_mmap_gtt_offset(p, fd, h)).toThrow(errno('EFAULT'));
    // Domains and the CPU mapping of the (now empty) shmem file still answer.
    setDomain(p, fd, h, uapi.I915_GEM_DOMAIN_CPU, uapi.I915_GEM_DOMAIN_CPU);
    expect(m.shutdown()).toEqual([]);
  });

  it('purgeable objects lose their pages under memory pressure, bound or not', () => {
    // 512 frames: the scratch page, two 1 MiB objects and a few bounce pages do not fit.
    const { m, p, fd } = boot({ ramBytes: 2 << 20, gpu: { mappableBytes: 4 << 20, gttBytes: 16 << 20 } });
    const MiB = 1 << 20;
    const a = user.gem_create(p, fd, MiB);
    const b = user.gem_create(p, fd, MiB);
    const buf = p.mmap(0, PAGE, RW, ANON);
    p.write(buf, [0xaa]);
    // A gets all its pages (pwrite of its last byte) and is bound through a GTT fault.
    pwrite(p, fd, a, BigInt(MiB - 1), 1n, BigInt(buf));
    const ga = user.gem_mmap__gtt(p, fd, a, MiB);
    expectBytes(p.read(ga + MiB - 1, 1), new Uint8Array([0xaa]));
    expect(user.gem_madvise(p, fd, a, uapi.I915_MADV_DONTNEED)).toBe(true);
    // B needs as many frames: A is unbound and purged to make room.
    pwrite(p, fd, b, BigInt(MiB - 1), 1n, BigInt(buf));
    expectBytes(user.gem_read(p, fd, b, MiB - 1, 1), new Uint8Array([0xaa]));
    expect(user.gem_madvise(p, fd, a, uapi.I915_MADV_WILLNEED)).toBe(false);
    expect(() => p.read(ga, 1)).toThrow(expect.objectContaining({ signal: 'SIGBUS' }));
    expect(() => pread(p, fd, a, 0n, 1n, BigInt(buf))).toThrow(errno('EFAULT'));
    // Without anything purgeable, memory simply runs out.
    const c = user.gem_create(p, fd, MiB);
    expect(() => pwrite(p, fd, c, 0n, 1n, BigInt(buf))).toThrow(errno('ENOMEM'));
    expect(m.shutdown()).toEqual([]);
  });
});

describe('GET_APERTURE and GETPARAM', () => {
  it('reports the GTT size and, with nothing pinned, all of it available', () => {
    for (const gttBytes of [2 ** 31, 64 << 20]) {
      const { m, p, fd } = boot({ gpu: { gttBytes, mappableBytes: 32 << 20 } }, '/dev/dri/renderD128');
      const h = user.gem_create(p, fd, PAGE);
      const g = user.gem_mmap__gtt(p, fd, h, PAGE);
      p.write(g, [1]);
      // _IOR: nothing is read from the caller's struct.
      const arg = new Uint8Array(16).fill(0xff);
      p.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_GET_APERTURE, arg);
      expect(uapi.drm_i915_gem_get_aperture.decode(arg)).toEqual({
        aper_size: BigInt(gttBytes),
        aper_available_size: BigInt(gttBytes),
      });
      expect(user.gem_get_aperture(p, fd)).toEqual({ aper_size: gttBytes, aper_available_size: gttBytes });
      expect(m.shutdown()).toEqual([]);
    }
  });

  it('getparam reads the int the kernel stores', () => {
    for (const [gen, id] of [
      [7, 0x0166],
      [8, 0x1616],
    ] as const) {
      const { m, p, fd } = boot({ gpu: { gen } });
      expect(user.getparam(p, fd, uapi.I915_PARAM_CHIPSET_ID)).toBe(id);
      expect(user.getparam(p, fd, uapi.I915_PARAM_HAS_LLC)).toBe(1);
      expect(user.getparam(p, fd, uapi.I915_PARAM_MMAP_VERSION)).toBe(1);
      expect(() => user.getparam(p, fd, 9999)).toThrow(errno('EINVAL'));
      expect(m.shutdown()).toEqual([]);
    }
  });
});

describe('process lifetimes', () => {
  it('exiting with CPU and GTT mappings and open handles leaks nothing', () => {
    const { m, p, fd } = boot();
    for (let i = 0; i < 3; i++) {
      const h = user.gem_create(p, fd, 4 * PAGE);
      user.gem_write(p, fd, h, 0, pattern(4 * PAGE, i));
      p.write(user.gem_mmap__gtt(p, fd, h, 4 * PAGE), [i]);
      p.write(user.gem_mmap__cpu(p, fd, h, 0, 4 * PAGE) + PAGE, [i]);
    }
    const child = p.fork();
    child.write(user.gem_mmap__gtt(child, fd, 1, 4 * PAGE), [5]);
    p.exit();
    expectBytes(user.gem_read(child, fd, 1, 0, 1), new Uint8Array([5]));
    child.exit();
    expect(m.shutdown()).toEqual([]);
    expect(m.meminfo().freePages).toBe(m.meminfo().totalPages);
  });
});

describe('coherency with the GPU (EXECBUFFER2)', () => {
  const MiB = 1 << 20;
  const ROWS = 256;

  /** A batch of ROWS row-sized commands, so that the GPU is still at work when the CPU looks. */
  function rows(gen: 7 | 8, op: 'copy' | 'fill', dst: number, src: number): user.BlitBatch {
    const b = new user.BlitBatch(gen);
    for (let y = 0; y < ROWS; y++) {
      if (op === 'copy') b.copy({ dst, src, height: 1, dst_y: y, src_y: y });
      else b.fill({ dst, color: 0x01020304 + y, y1: y, y2: y + 1 });
    }
    return b.end();
  }

  function submit(p: Process, fd: number, b: user.BlitBatch, objects: number[]): void {
    const bb = user.gem_create(p, fd, b.length);
    user.gem_write(p, fd, bb, 0, b.bytes());
    user.execbuf(p, fd, {
      objects: objects.map((handle) => ({ handle })),
      batch: { handle: bb, relocs: b.relocs, len: b.length },
      ring: 'blt',
    });
    user.gem_close(p, fd, bb);
  }

  function filled(): Uint8Array {
    const out = new Uint8Array(ROWS * 2048);
    const dv = new DataView(out.buffer);
    for (let y = 0; y < ROWS; y++)
      for (let x = 0; x < 512; x++) dv.setUint32(y * 2048 + x * 4, 0x01020304 + y, true);
    return out;
  }

  const cases = [7, 8].flatMap((gen) => [1, 2, 3].map((seed) => [gen as 7 | 8, seed] as const));

  it.each(cases)(
    'gen %i seed %i: PREAD, a GTT fault and SET_DOMAIN wait for the GPU’s writes',
    (gen, seed) => {
      const { m, p, fd } = boot({ seed, gpu: { gen } });
      const want = filled();
      // pread right after the execbuffer.
      const a = user.gem_create(p, fd, MiB);
      submit(p, fd, rows(gen, 'fill', a, 0), [a]);
      expectBytes(user.gem_read(p, fd, a, 0, want.length), want);
      // A GTT mmap faulted right after the execbuffer.
      const b = user.gem_create(p, fd, MiB);
      const gb = user.gem_mmap__gtt(p, fd, b, MiB);
      submit(p, fd, rows(gen, 'fill', b, 0), [b]);
      expectBytes(p.read(gb, want.length), want);
      // A CPU mmap after SET_DOMAIN(CPU, 0).
      const c = user.gem_create(p, fd, MiB);
      const cc = user.gem_mmap__cpu(p, fd, c, 0, MiB);
      submit(p, fd, rows(gen, 'fill', c, 0), [c]);
      user.gem_set_domain(p, fd, c, uapi.I915_GEM_DOMAIN_CPU, 0);
      expect(user.gem_busy(p, fd, c)).toBe(false);
      expectBytes(p.read(cc, want.length), want);
      expect(m.shutdown()).toEqual([]);
    },
  );

  it.each(cases)('gen %i seed %i: PWRITE and SET_DOMAIN(write) wait for the GPU’s reads', (gen, seed) => {
    const { m, p, fd } = boot({ seed, gpu: { gen } });
    const old = pattern(ROWS * 2048, seed);
    const src = user.gem_create(p, fd, MiB);
    const dst = user.gem_create(p, fd, MiB);
    user.gem_write(p, fd, src, 0, old);
    submit(p, fd, rows(gen, 'copy', dst, src), [dst, src]);
    // The GPU still reads src: the new bytes must not reach the copy.
    user.gem_write(p, fd, src, 0, new Uint8Array(ROWS * 2048).fill(0xee));
    expectBytes(user.gem_read(p, fd, dst, 0, old.length), old);
    // The same through a CPU mmap made writable with SET_DOMAIN(CPU, CPU).
    const cs = user.gem_mmap__cpu(p, fd, src, 0, MiB);
    user.gem_write(p, fd, src, 0, old);
    submit(p, fd, rows(gen, 'copy', dst, src), [dst, src]);
    user.gem_set_domain(p, fd, src, uapi.I915_GEM_DOMAIN_CPU, uapi.I915_GEM_DOMAIN_CPU);
    p.write(cs, new Uint8Array(ROWS * 2048).fill(0x11));
    expectBytes(user.gem_read(p, fd, dst, 0, old.length), old);
    expect(m.shutdown()).toEqual([]);
  });
});
