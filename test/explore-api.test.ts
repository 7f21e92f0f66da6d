import { describe, expect, it } from 'vitest';
import {
  type KGen,
  type Process,
  type RunContext,
  type Scenario,
  explore,
  explorer,
  replay,
  uapi,
  user,
} from '../src/index.js';

/**
 * The explorer through the package root, as a driver developer would use it on a program of their
 * own: a thread blits into a userptr object while another unmaps its buffer. With v3's missing
 * invalidation the GPU writes a page the process no longer maps; the merged design is clean.
 */

const PAGE = 4096;
const RW = uapi.PROT_READ | uapi.PROT_WRITE;
const ANON = uapi.MAP_PRIVATE | uapi.MAP_ANONYMOUS;

function* blit(ctx: RunContext, p: Process, fd: number, eb: Uint8Array, h: number): KGen {
  const r = yield* explorer.retrying(ctx, 'execbuffer2', () =>
    p.api.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_EXECBUFFER2, eb),
  );
  if (r === 0) {
    yield* p.api.ioctl(
      fd,
      uapi.DRM_IOCTL_I915_GEM_WAIT,
      uapi.drm_i915_gem_wait.encode({ bo_handle: h, timeout_ns: -1n }),
    );
    ctx.mark('blitted');
  }
}

function blitVersusMunmap(bugs: string[]): Scenario {
  return {
    name: 'my/blit-vs-munmap',
    description: 'a thread blits into a userptr object while another unmaps its buffer',
    config: { ramBytes: 1 << 20, bugs },
    goals: [{ name: 'blitted' }],
    run(m, ctx) {
      const p = m.spawn();
      const fd = p.open('/dev/dri/card0');
      const a = p.mmap(0, PAGE, RW, ANON);
      p.write(a, new Uint8Array(PAGE));
      const arg = uapi.drm_i915_gem_userptr.encode({ user_ptr: a, user_size: PAGE, flags: 0 });
      p.drmIoctl(fd, uapi.DRM_IOCTL_I915_GEM_USERPTR, arg);
      const h = uapi.drm_i915_gem_userptr.decode(arg).handle;
      const b = new user.BlitBatch(7).fill({ dst: h, color: 7, x2: PAGE / 4, y2: 1, pitch: PAGE }).end();
      const bb = user.gem_create(p, fd, PAGE);
      user.gem_write(p, fd, bb, 0, b.bytes());
      const eb = user.build_execbuf(p, {
        objects: [{ handle: h }],
        batch: { handle: bb, len: 0, relocs: b.relocs },
        ring: 'blt',
      }).execbuffer;
      p.thread('gpu', () => blit(ctx, p, fd, eb, h));
      p.thread('cpu', (api) => api.munmap(a, PAGE));
    },
  };
}

describe('the explorer from the package root', () => {
  it('finds the bug in a program of ones own, replays it, and shows the merged design clean', () => {
    const buggy = blitVersusMunmap(['v3-no-invalidate']);
    const r = explore(buggy, { schedules: 100, seed: 1, shrink: false });
    expect(r.failure?.finding.kind).toBe('coherence');
    expect(r.failure!.replay.deterministic).toBe(true);
    const again = replay(buggy, r.failure!.schedule);
    expect(again.findings.map((f) => f.kind)).toContain('coherence');

    const fixed = explore(blitVersusMunmap([]), { schedules: 100, seed: 1 });
    expect(fixed.failure).toBeNull();
    expect(fixed.coverage).toEqual([expect.objectContaining({ name: 'blitted', reached: true })]);
  });
});
