import { describe, expect, it } from 'vitest';
import { ERRNO } from '../base/errno.js';
import { PAGE_SIZE } from '../base/page.js';
import type { DrmDevice } from '../drm/drm_device.js';
import { DrmFile } from '../drm/drm_file.js';
import {
  drm_gem_handle_create,
  drm_gem_object_unreference_unlocked,
  drm_gem_private_object_init,
} from '../drm/drm_gem.js';
import { DRM_RENDER_ALLOW, DRM_UNLOCKED } from '../drm/drm_ioctl.js';
import { drm_vma_node_has_offset } from '../drm/drm_vma_manager.js';
import { Machine } from '../kernel/machine.js';
import type { Process } from '../kernel/process.js';
import { pagemap } from '../kernel/procfs.js';
import type { KGen } from '../sched/task.js';
import * as uapi from '../uapi/index.js';
import * as user from '../user/index.js';
import { i915_gem_object_init } from './i915_gem.js';
import { i915_gem_object_ggtt_unpin, i915_gem_object_pin } from './i915_gem_gtt.js';
import { gem_ioctls } from './i915_gem_ioctls.js';
import { DrmI915GemObject, type I915GemObjectOps } from './i915_gem_object.js';
import { _IOC_NR } from '../uapi/ioctl.js';

/**
 * What the public ABI cannot reach yet: objects without a shmem file (as userptr objects will
 * be), pinned objects, a wedged GPU, and the ioctl table's flags.
 */

const SEED = Number(process.env.SEED ?? 1);
const PAGE = PAGE_SIZE;
const errno = (code: string): unknown => expect.objectContaining({ code });

/** An object kind with no shmem file: its pages are fresh frames, given back on put_pages. */
const private_ops: I915GemObjectOps = {
  name: 'private',
  *get_pages(obj: DrmI915GemObject): KGen<number> {
    const ram = obj.dev.k.ram;
    const pages: number[] = [];
    for (let i = 0; i < obj.size / PAGE; i++) {
      const pfn = ram.alloc_page();
      if (pfn < 0) {
        ram.release_pages(pages);
        return -ERRNO.ENOMEM;
      }
      ram.frame(pfn).fill(0x5a);
      pages.push(pfn);
    }
    yield { op: 'private_get_pages', resource: obj.toString() };
    obj.pages = pages;
    return 0;
  },
  *put_pages(obj: DrmI915GemObject): KGen {
    obj.dev.k.ram.release_pages(obj.pages ?? []);
  },
};

function* create_private(dev: DrmDevice, file: DrmFile, size: number): KGen<number> {
  const obj = new DrmI915GemObject(private_ops);
  drm_gem_private_object_init(dev, obj, size);
  i915_gem_object_init(obj);
  const handle = yield* drm_gem_handle_create(file, obj);
  yield* drm_gem_object_unreference_unlocked(obj);
  return handle;
}

function setup(): { m: Machine; p: Process; fd: number; file: DrmFile; dev: DrmDevice } {
  const m = Machine.boot({ seed: SEED });
  const p = m.spawn();
  const fd = p.open('/dev/dri/card0');
  const file = p.files[fd]!.private_data;
  if (!(file instanceof DrmFile)) throw new Error('not a DRM file');
  return { m, p, fd, file, dev: m.i915.dev };
}

function objectOf(file: DrmFile, handle: number): DrmI915GemObject {
  const obj = file.object_idr.find(handle);
  if (!(obj instanceof DrmI915GemObject)) throw new Error(`no object ${handle}`);
  return obj;
}

describe('the ioctl table', () => {
  it('registers every GEM ioctl of this file with DRM_UNLOCKED | DRM_RENDER_ALLOW', () => {
    const { m, dev } = setup();
    const nrs = [
      uapi.DRM_I915_GEM_PREAD,
      uapi.DRM_I915_GEM_PWRITE,
      uapi.DRM_I915_GEM_MMAP,
      uapi.DRM_I915_GEM_MMAP_GTT,
      uapi.DRM_I915_GEM_SET_DOMAIN,
      uapi.DRM_I915_GEM_SW_FINISH,
      uapi.DRM_I915_GEM_SET_TILING,
      uapi.DRM_I915_GEM_GET_TILING,
      uapi.DRM_I915_GEM_GET_APERTURE,
      uapi.DRM_I915_GEM_MADVISE,
      uapi.DRM_I915_GEM_SET_CACHING,
      uapi.DRM_I915_GEM_GET_CACHING,
    ].map((n) => n + uapi.DRM_COMMAND_BASE);
    expect(gem_ioctls.map((d) => _IOC_NR(d.cmd)).sort()).toEqual([...nrs].sort());
    for (const nr of nrs) expect(dev.driver.ioctls.get(nr)?.flags).toBe(DRM_UNLOCKED | DRM_RENDER_ALLOW);
    expect(m.shutdown()).toEqual([]);
  });
});

describe('objects without a shmem file (userptr-like)', () => {
  it('PREAD, PWRITE and MMAP are EINVAL after the usual checks; GTT mmaps and the rest work', () => {
    const { m, p, fd, file, dev } = setup();
    const h = m.syscall(p, 'create_private', create_private(dev, file, 2 * PAGE));
    const buf = p.mmap(0, 2 * PAGE, uapi.PROT_READ | uapi.PROT_WRITE, uapi.MAP_PRIVATE | uapi.MAP_ANONYMOUS);
    expect(() => user.gem_pread(p, fd, h, 0, 1, buf)).toThrow(errno('EINVAL'));
    expect(() => user.gem_pwrite(p, fd, h, 0, 1, buf)).toThrow(errno('EINVAL'));
    // Bounds are checked before the missing file.
    expect(() => user.gem_pread(p, fd, h, 2 * PAGE, 1, buf)).toThrow(errno('EINVAL'));
    expect(() => user.gem_pread(p, fd, h, 0, 1, 2 ** 47)).toThrow(errno('EFAULT'));
    expect(() => user.gem_mmap__cpu(p, fd, h, 0, PAGE)).toThrow(errno('EINVAL'));
    expect(() => user.gem_mmap__wc(p, fd, h, 0, PAGE)).toThrow(errno('EINVAL'));
    // Size 0 still answers 0 first.
    user.gem_pread(p, fd, h, 0, 0, buf);
    // The GTT mmap faults the ops' pages in.
    const g = user.gem_mmap__gtt(p, fd, h, 2 * PAGE);
    expect([...p.read(g + PAGE, 2)]).toEqual([0x5a, 0x5a]);
    p.write(g, [1, 2]);
    const obj = objectOf(file, h);
    expect(pagemap(p, g, g + 2 * PAGE).map((e) => e.pfn)).toEqual(obj.pages);
    expect([...m.ram.frame(obj.pages![0]!).subarray(0, 2)]).toEqual([1, 2]);
    user.gem_set_domain(p, fd, h, uapi.I915_GEM_DOMAIN_CPU, uapi.I915_GEM_DOMAIN_CPU);
    user.gem_set_tiling(p, fd, h, uapi.I915_TILING_X, 512);
    user.gem_set_caching(p, fd, h, uapi.I915_CACHING_NONE);
    p.munmap(g, 2 * PAGE);
    user.gem_close(p, fd, h);
    expect(m.shutdown()).toEqual([]);
  });

  it('MADVISE(DONTNEED) without pages drops the mmap offset but cannot purge: still retained', () => {
    const { m, p, fd, file, dev } = setup();
    const h = m.syscall(p, 'create_private', create_private(dev, file, PAGE));
    const off = user.gem_mmap_gtt_offset(p, fd, h);
    const obj = objectOf(file, h);
    expect(drm_vma_node_has_offset(obj.vma_node)).toBe(true);
    expect(user.gem_madvise(p, fd, h, uapi.I915_MADV_DONTNEED)).toBe(true);
    expect(drm_vma_node_has_offset(obj.vma_node)).toBe(false);
    expect(() => user.gem_mmap_gtt_offset(p, fd, h)).toThrow(errno('EFAULT'));
    expect(user.gem_madvise(p, fd, h, uapi.I915_MADV_WILLNEED)).toBe(true);
    // A new offset (the old one was given back).
    const off2 = user.gem_mmap_gtt_offset(p, fd, h);
    expect(off2 % PAGE).toBe(0);
    expect(typeof off).toBe('number');
    const g = p.mmap(0, PAGE, uapi.PROT_READ, uapi.MAP_SHARED, fd, off2);
    expect([...p.read(g, 1)]).toEqual([0x5a]);
    expect(m.shutdown()).toEqual([]);
  });
});

describe('pinned objects', () => {
  it('MADVISE is EINVAL, SET_TILING and SET_CACHING EBUSY, GET_APERTURE subtracts them', () => {
    const { m, p, fd, file } = setup();
    const h = user.gem_create(p, fd, 16 * PAGE);
    const other = user.gem_create(p, fd, 4 * PAGE);
    const obj = objectOf(file, h);
    const dev = obj.dev;
    m.syscall(
      p,
      'pin',
      (function* (): KGen<number> {
        yield* dev.struct_mutex.lock();
        const r = yield* i915_gem_object_pin(obj, 0, { mappable: true });
        dev.struct_mutex.unlock();
        return r;
      })(),
    );
    const total = m.i915.gtt_total;
    expect(user.gem_get_aperture(p, fd)).toEqual({
      aper_size: total,
      aper_available_size: total - 16 * PAGE,
    });
    expect(() => user.gem_madvise(p, fd, h, uapi.I915_MADV_DONTNEED)).toThrow(errno('EINVAL'));
    expect(() => user.gem_set_tiling(p, fd, h, uapi.I915_TILING_X, 512)).toThrow(errno('EBUSY'));
    expect(() => user.gem_set_caching(p, fd, h, uapi.I915_CACHING_NONE)).toThrow(errno('EBUSY'));
    // Same level: nothing to change, no error. Tiling checks come before the pin check.
    user.gem_set_caching(p, fd, h, uapi.I915_CACHING_CACHED);
    expect(() => user.gem_set_tiling(p, fd, h, uapi.I915_TILING_X, 100)).toThrow(errno('EINVAL'));
    // A GTT mmap of a pinned object works and keeps the pin.
    const g = user.gem_mmap__gtt(p, fd, h, 16 * PAGE);
    p.write(g, [9]);
    expect(obj.vma?.pin_count).toBe(1);
    user.gem_madvise(p, fd, other, uapi.I915_MADV_DONTNEED);
    m.syscall(
      p,
      'unpin',
      (function* (): KGen {
        yield* dev.struct_mutex.lock();
        i915_gem_object_ggtt_unpin(obj);
        dev.struct_mutex.unlock();
      })(),
    );
    expect(user.gem_get_aperture(p, fd).aper_available_size).toBe(total);
    expect(user.gem_madvise(p, fd, h, uapi.I915_MADV_DONTNEED)).toBe(true);
    expect(m.shutdown()).toEqual([]);
  });
});

describe('GTT faults and the GPU error state', () => {
  it('a terminally wedged GPU turns a GTT fault into SIGBUS', () => {
    const { m, p, fd } = setup();
    const h = user.gem_create(p, fd, PAGE);
    const g = user.gem_mmap__gtt(p, fd, h, PAGE);
    m.i915.gpu_error.wedged = true;
    expect(() => p.read(g, 1)).toThrow(expect.objectContaining({ signal: 'SIGBUS' }));
    // Every struct_mutex ioctl answers EIO meanwhile.
    expect(() => user.gem_set_domain(p, fd, h, uapi.I915_GEM_DOMAIN_CPU, 0)).toThrow(errno('EIO'));
    m.i915.gpu_error.wedged = false;
    expect([...p.read(g, 1)]).toEqual([0]);
    expect(m.shutdown()).toEqual([]);
  });
});
