import { describe, expect, it } from 'vitest';
import { type Finding, KernelBugError, Machine, type Process, uapi, user } from '../src/index.js';
import { ANON, PAGE, RW, code, drmUserptr, fill, kinds } from './support/userptr.js';

/**
 * Each historic bug switch, driven through its scenario: with the switch on, the finding it
 * causes; with it off, the same program runs clean.
 */

const SEED = Number(process.env.SEED ?? 2);
interface Rig {
  m: Machine;
  p: Process;
  fd: number;
}

function rig(bugs: string[], uid = 1000): Rig {
  const m = Machine.boot({ seed: SEED, bugs });
  const p = m.spawn({ uid });
  return { m, p, fd: p.open('/dev/dri/card0') };
}

/** Runs `scenario` with and without `id`; returns the findings of each. */
function both(id: string, scenario: (r: Rig) => void, uid = 1000): { on: Finding[]; off: Finding[] } {
  const run = (bugs: string[]): Finding[] => {
    const r = rig(bugs, uid);
    try {
      scenario(r);
    } catch (e) {
      if (!(e instanceof KernelBugError)) throw e;
    }
    return r.m.shutdown();
  };
  return { on: run([id]), off: run([]) };
}

describe(`historic bug switches (seed ${SEED})`, () => {
  it('v3-no-invalidate: munmap returns while the object still holds the pages (I-COVER)', () => {
    const { on, off } = both('v3-no-invalidate', ({ p, fd }) => {
      const a = p.mmap(0, 4 * PAGE, RW, ANON);
      p.write(a, new Uint8Array(4 * PAGE));
      fill(p, fd, drmUserptr(p, fd, a, 4 * PAGE), 4);
      p.munmap(a, 4 * PAGE);
    });
    expect(kinds(on)).toContain('coherence: I-COVER');
    expect(off).toEqual([]);
  });

  it('v15-overlap: an object inside another keeps its pages after munmap (I-COVER)', () => {
    let created = 0;
    const { on, off } = both('v15-overlap', ({ p, fd }) => {
      const a = p.mmap(0, 4 * PAGE, RW, ANON);
      p.write(a, new Uint8Array(4 * PAGE));
      const outer = drmUserptr(p, fd, a, 3 * PAGE);
      let inner = 0;
      try {
        inner = drmUserptr(p, fd, a + PAGE, PAGE);
        created++;
      } catch (e) {
        expect((e as { code: string }).code).toBe('EINVAL');
      }
      fill(p, fd, outer, 3);
      if (inner) fill(p, fd, inner, 1);
      p.munmap(a, 4 * PAGE);
    });
    expect(created).toBe(1); // only with the switch on
    expect(kinds(on)).toContain('coherence: I-COVER');
    expect(off).toEqual([]);
  });

  it('v4-invalidate-all: unmapping one buffer drops the pages of another (I-LOCAL)', () => {
    const { on, off } = both('v4-invalidate-all', ({ p, fd }) => {
      const a = p.mmap(0, PAGE, RW, ANON);
      const b = p.mmap(0, PAGE, RW, ANON);
      p.write(a, new Uint8Array(PAGE));
      p.write(b, new Uint8Array(PAGE));
      fill(p, fd, drmUserptr(p, fd, a, PAGE), 1);
      fill(p, fd, drmUserptr(p, fd, b, PAGE), 1);
      p.munmap(a, PAGE);
    });
    expect(kinds(on)).toContain('invariant: I-LOCAL');
    expect(off).toEqual([]);
  });

  it('v14-struct-mutex-lookup: an unrelated munmap takes struct_mutex (I-CHEAP)', () => {
    const { on, off } = both('v14-struct-mutex-lookup', ({ p, fd }) => {
      const a = p.mmap(0, PAGE, RW, ANON);
      drmUserptr(p, fd, a, PAGE);
      const other = p.mmap(0, PAGE, RW, ANON);
      p.write(other, [1]);
      p.munmap(other, PAGE);
    });
    expect(kinds(on)).toContain('invariant: I-CHEAP');
    expect(off).toEqual([]);
  });

  it('v11-gup-under-struct-mutex: pinning under struct_mutex inverts the lock order (lockdep)', () => {
    const { on, off } = both('v11-gup-under-struct-mutex', ({ p, fd }) => {
      const a = p.mmap(0, 2 * PAGE, RW, ANON); // not resident: the slow path pins
      const h = drmUserptr(p, fd, a, 2 * PAGE);
      fill(p, fd, h, 2);
      p.munmap(a, 2 * PAGE); // mmap_sem -> struct_mutex in the callback
    });
    expect(kinds(on).some((k) => k.startsWith('lockdep: possible circular locking dependency'))).toBe(true);
    expect(off).toEqual([]);
  });

  it("v12-bare-mm: a worker uses the creator's mm after the creator exited (use-after-free)", () => {
    const { on, off } = both(
      'v12-bare-mm',
      ({ p, fd }) => {
        const a = p.mmap(0, PAGE, RW, ANON);
        const h = drmUserptr(p, fd, a, PAGE, uapi.I915_USERPTR_UNSYNCHRONIZED);
        const child = p.fork(); // shares the DRM file and the handle
        p.exit();
        try {
          fill(child, fd, h, 1); // not the creator's mm: a worker does the gup
        } catch (e) {
          expect((e as { code?: string }).code).toBe('EFAULT');
        }
        child.exit();
      },
      0,
    );
    expect(kinds(on)).toContain('use-after-free: get_user_pages on freed mm 1');
    expect(off).toEqual([]);
  });

  it('mmput-under-struct-mutex (§8.5): exit with a GTT mmap self-deadlocks on struct_mutex', () => {
    const { on, off } = both('mmput-under-struct-mutex', ({ p, fd }) => {
      const a = p.mmap(0, PAGE, RW, ANON);
      drmUserptr(p, fd, a, PAGE);
      // A GTT mmap through a second file, holding the last reference of its object.
      const fd2 = p.open('/dev/dri/card0');
      const bo = user.gem_create(p, fd2, PAGE);
      const g = user.gem_mmap__gtt(p, fd2, bo, PAGE, RW);
      p.write(g, [1]);
      user.gem_close(p, fd2, bo);
      p.exit(); // closing fd frees the userptr under struct_mutex; its mmput unmaps the GTT mmap
    });
    expect(kinds(on)).toContain('deadlock: deadlock');
    expect(off).toEqual([]);
  });

  it('aliased-gtt-mmap: a userptr over a GTT mmap, then SET_TILING of the mapped buffer recurses on struct_mutex', () => {
    const results: string[] = [];
    const { on, off } = both('aliased-gtt-mmap', ({ p, fd }) => {
      const bo = user.gem_create(p, fd, 2 * PAGE);
      const g = user.gem_mmap__gtt(p, fd, bo, 2 * PAGE, RW);
      p.write(g, [1]); // the GTT PTEs exist: changing the tiling must zap them
      drmUserptr(p, fd, g, 2 * PAGE); // created: nothing is looked at before first use
      const b = uapi.drm_i915_gem_set_tiling.encode({
        handle: bo,
        tiling_mode: uapi.I915_TILING_X,
        stride: 512,
      });
      try {
        p.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_SET_TILING, b);
        results.push(`tiling ${uapi.drm_i915_gem_set_tiling.decode(b).tiling_mode}`);
      } catch (e) {
        results.push((e as Error).constructor.name);
        throw e;
      }
    });
    // On: the zap under struct_mutex invalidates the aliased range, and the callback takes
    // struct_mutex for an object that holds nothing. Off (4.2): that object is skipped.
    expect(results).toEqual(['DeadlockError', `tiling ${uapi.I915_TILING_X}`]);
    expect(kinds(on)).toContain('lockdep: possible recursive locking detected');
    expect(kinds(on)).toContain('deadlock: deadlock');
    expect(off).toEqual([]);
  });

  it('zero-size (§8.6): a zero-sized object inserts an inverted interval, and gets a handle', () => {
    const got: string[] = [];
    const { on, off } = both('zero-size', ({ p, fd }) => {
      const a = p.mmap(0, PAGE, RW, ANON);
      got.push(code(() => user.gem_close(p, fd, drmUserptr(p, fd, a, 0))));
    });
    // 3.16 accepts it (the object lives and closes); the fix answers EINVAL.
    expect(got).toEqual(['OK', 'EINVAL']);
    expect(kinds(on)).toEqual(['invariant: obj.size > 0']);
    expect(on[0]!.message).toMatch(/interval_tree_insert of the inverted interval \[\d+, \d+\]/);
    expect(off).toEqual([]);
  });

  it('mmu-object-leak (§8.4): the i915_mmu_object outlives its object', () => {
    const { on, off } = both('mmu-object-leak', ({ p, fd }) => {
      const a = p.mmap(0, PAGE, RW, ANON);
      user.gem_close(p, fd, drmUserptr(p, fd, a, PAGE));
    });
    expect(kinds(on)).toContain('leak: 1 i915_mmu_object allocations never freed');
    expect(off).toEqual([]);
  });
});
