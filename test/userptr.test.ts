import { describe, expect, it } from 'vitest';
import { Machine, type Process, uapi } from '../src/index.js';
import { i915_mmu_notifiers } from '../src/i915/i915_gem_userptr.js';
import { ANON, RW, code, userptr } from './support/userptr.js';

const SEED = Number(process.env.SEED ?? 4);
describe(`userptr ioctl (seed ${SEED})`, () => {
  it('checks arguments in 3.16 order with 3.16 errno', () => {
    const m = Machine.boot({ seed: SEED });
    const p = m.spawn();
    const fd = p.open('/dev/dri/card0');
    const a = p.mmap(0, 64 * 4096, RW, ANON);
    expect(code(() => userptr(p, fd, a, 4096, 0x4))).toBe('EINVAL'); // unknown flag
    expect(code(() => userptr(p, fd, a + 1, 4096))).toBe('EINVAL'); // alignment
    expect(code(() => userptr(p, fd, a, 4095))).toBe('EINVAL');
    expect(code(() => userptr(p, fd, a, 0))).toBe('EINVAL'); // zero size (fixed §8.6)
    expect(code(() => userptr(p, fd, 0, 2 ** 31 + 4096))).toBe('E2BIG'); // > GTT
    expect(code(() => userptr(p, fd, -4096, 8192))).toBe('EFAULT'); // access_ok
    expect(code(() => userptr(p, fd, -4096, 8192, uapi.I915_USERPTR_READ_ONLY))).toBe('EFAULT');
    expect(code(() => userptr(p, fd, a, 4096, uapi.I915_USERPTR_READ_ONLY))).toBe('ENODEV');
    expect(code(() => userptr(p, fd, a, 4096, uapi.I915_USERPTR_UNSYNCHRONIZED))).toBe('EPERM');
    // Nothing is touched at creation: NULL and holes are fine.
    expect(userptr(p, fd, 0, 4096)).toBeGreaterThan(0);
    expect(userptr(p, fd, 0x10000000, 8192)).toBeGreaterThan(0);
    p.close(fd);
    expect(m.shutdown()).toEqual([]);
  });

  it('refuses overlapping synchronized ranges; adjacent ones and unsynchronized are fine', () => {
    const m = Machine.boot({ seed: SEED });
    const root = m.spawn({ uid: 0 });
    const fd = root.open('/dev/dri/card0');
    const a = root.mmap(0, 16 * 4096, RW, ANON);
    const h = userptr(root, fd, a + 4 * 4096, 4 * 4096);
    expect(h).toBe(1);
    for (const [off, len] of [
      [4, 4], // exact
      [2, 4], // start
      [6, 4], // end
      [5, 1], // inside
      [0, 16], // subsuming
    ] as const) {
      expect(
        code(() => userptr(root, fd, a + off * 4096, len * 4096)),
        `${off},${len}`,
      ).toBe('EINVAL');
    }
    expect(userptr(root, fd, a, 4 * 4096)).toBeGreaterThan(0); // adjacent below
    expect(userptr(root, fd, a + 8 * 4096, 4 * 4096)).toBeGreaterThan(0); // adjacent above
    expect(userptr(root, fd, a + 4 * 4096, 4 * 4096, uapi.I915_USERPTR_UNSYNCHRONIZED)).toBeGreaterThan(0);
    const mmu = i915_mmu_notifiers(m.i915).get(root.mm!)!;
    expect(mmu.count).toBe(3);
    expect(mmu.objects.size).toBe(3);
    // Closing the object frees its range for a new one.
    root.ioctl(fd, uapi.DRM_IOCTL_GEM_CLOSE, uapi.drm_gem_close.encode({ handle: h }));
    expect(userptr(root, fd, a + 5 * 4096, 4096)).toBeGreaterThan(0);
    root.close(fd);
    m.run();
    expect(i915_mmu_notifiers(m.i915).size).toBe(0);
    expect(mmu.freed).toBe(true);
    expect(m.shutdown()).toEqual([]);
  });

  it('without CONFIG_MMU_NOTIFIER only root may create unsynchronized objects', () => {
    const m = Machine.boot({ seed: SEED, mmuNotifier: false });
    const p = m.spawn();
    const root = m.spawn({ uid: 0 });
    const fd = p.open('/dev/dri/card0');
    const rfd = root.open('/dev/dri/card0');
    expect(code(() => userptr(p, fd, 0x100000, 4096))).toBe('ENODEV');
    expect(code(() => userptr(p, fd, 0x100000, 4096, uapi.I915_USERPTR_UNSYNCHRONIZED))).toBe('EPERM');
    expect(code(() => userptr(root, rfd, 0x100000, 4096))).toBe('ENODEV');
    expect(userptr(root, rfd, 0x100000, 4096, uapi.I915_USERPTR_UNSYNCHRONIZED)).toBe(1);
    expect(m.shutdown()).toEqual([]);
  });

  /** A userptr object, a child sharing the DRM file, and the creator's exit: its mm. */
  function exitWithLiveObject(m: Machine): { mm: NonNullable<Process['mm']>; c: Process } {
    const p = m.spawn();
    const fd = p.open('/dev/dri/card0');
    const a = p.mmap(0, 4 * 4096, RW, ANON);
    p.write(a, new Uint8Array(4 * 4096).fill(1));
    userptr(p, fd, a, 4 * 4096);
    const c = p.fork(); // shares the DRM file
    const mm = p.mm!;
    p.exit();
    return { mm, c };
  }

  it('the object pins the mm struct, not the address space: exit unmaps at once', () => {
    const m = Machine.boot({ seed: SEED });
    const { mm, c } = exitWithLiveObject(m);
    expect(mm.mm_users).toBe(0);
    expect(mm.exited).toBe(true);
    expect(mm.freed).toBe(false); // the object's mm_count reference
    c.exit();
    m.run();
    expect(mm.freed).toBe(true);
    expect(m.shutdown()).toEqual([]);
    expect(m.meminfo().freePages).toBe(m.meminfo().totalPages);
  });

  it('as merged, the object keeps the address space alive after exit until it is closed', () => {
    const m = Machine.boot({ seed: SEED, bugs: ['mmput-under-struct-mutex'] });
    const { mm, c } = exitWithLiveObject(m);
    expect(mm.freed).toBe(false);
    expect(mm.exited).toBe(false);
    expect(mm.mm_users).toBe(1); // the object's reference
    c.exit();
    m.run();
    expect(mm.freed).toBe(true);
    expect(m.shutdown()).toEqual([]);
    expect(m.meminfo().freePages).toBe(m.meminfo().totalPages);
  });

  it('as-merged: the last mmput runs under struct_mutex; a GTT mmap then deadlocks exit (§5.6)', () => {
    const m = Machine.boot({ seed: SEED, bugs: ['mmput-under-struct-mutex'] });
    const p = m.spawn();
    const fd = p.open('/dev/dri/card0');
    const a = p.mmap(0, 4096, RW, ANON);
    userptr(p, fd, a, 4096);
    // Without a GTT mmap exit_mmap has nothing to close: still clean.
    p.exit();
    m.run();
    expect(m.findings()).toEqual([]);
  });
});
