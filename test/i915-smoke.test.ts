import { describe, expect, it } from 'vitest';
import { Machine, uapi } from '../src/index.js';

describe('i915 skeleton', () => {
  it('opens card0, creates, busy, waits, closes; shutdown is clean', () => {
    const m = Machine.boot({ seed: 1 });
    const p = m.spawn();
    const fd = p.open('/dev/dri/card0');
    const create = uapi.drm_i915_gem_create.encode({ size: 4096n * 3n - 5n });
    p.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_CREATE, create);
    const handle = uapi.drm_i915_gem_create.decode(create).handle;
    expect(handle).toBe(1);
    const busy = uapi.drm_i915_gem_busy.encode({ handle });
    p.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_BUSY, busy);
    expect(uapi.drm_i915_gem_busy.decode(busy).busy).toBe(0);
    p.ioctl(
      fd,
      uapi.DRM_IOCTL_I915_GEM_WAIT,
      uapi.drm_i915_gem_wait.encode({ bo_handle: handle, timeout_ns: 0n }),
    );
    expect(() =>
      p.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_BUSY, uapi.drm_i915_gem_busy.encode({ handle: 9 })),
    ).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() =>
      p.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_CREATE, uapi.drm_i915_gem_create.encode({ size: 0n })),
    ).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    // GETPARAM writes an int through the user pointer.
    const v = p.mmap(0, 4096, uapi.PROT_READ | uapi.PROT_WRITE, uapi.MAP_PRIVATE | uapi.MAP_ANONYMOUS);
    p.ioctl(
      fd,
      uapi.DRM_IOCTL_I915_GETPARAM,
      uapi.drm_i915_getparam.encode({ param: uapi.I915_PARAM_CHIPSET_ID, value: v }),
    );
    expect(new DataView(p.read(v, 4).buffer).getInt32(0, true)).toBe(0x0166);
    expect(() =>
      p.ioctl(fd, uapi.DRM_IOCTL_I915_GETPARAM, uapi.drm_i915_getparam.encode({ param: 999, value: v })),
    ).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    p.close(fd);
    expect(m.shutdown()).toEqual([]);
    expect(m.meminfo().freePages).toBe(m.meminfo().totalPages);
  });
});
