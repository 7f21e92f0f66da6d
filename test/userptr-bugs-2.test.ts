import { describe, expect, it } from 'vitest';
import { ERRNO, type Finding, Machine, type Process, uapi, user } from '../src/index.js';
import { DrmI915UserptrObject, i915_mmu_notifiers } from '../src/i915/i915_gem_userptr.js';
import { migrate_page } from '../src/mm/migrate.js';
import { MmuNotifier, mmu_notifier_register, mmu_notifier_unregister } from '../src/mm/mmu_notifier.js';
import { pte_pfn } from '../src/mm/mm_types.js';
import type { Task } from '../src/sched/task.js';
import { Hand, both, finished, tokens, userptrAt, wants } from './support/hand.js';
import {
  ANON,
  PAGE,
  RW,
  drmUserptr,
  fillExecbuf,
  gemCloseIn,
  hex,
  kinds,
  retry,
  unbindableExecbuf,
} from './support/userptr.js';

/**
 * The switches added after the first round (v6, v18, §8.8), each driven through its interleaving
 * by hand as in userptr-races.test.ts: with the switch on, the finding it causes; with it off, the
 * same script runs clean. Also §8.8's own examples (page migration without mmap_sem), which 3.16
 * survives because a pinned page is never migrated.
 */

// --- the hand that picks who runs (userptr-races.test.ts's, plus scripted fault decisions) -------

/** The pfn `p` maps at `addr` (-1: nothing). */
function mapped(p: Process, addr: number): number {
  const pte = p.mm!.pgd.get(addr / PAGE);
  return pte === undefined ? -1 : pte_pfn(pte);
}

// --- user side ----------------------------------------------------------------------------------

/** fillExecbuf's default colour. */
const COLOR = 0x5a5a5a5a;

function full(fs: Finding[]): string[] {
  return fs.map((f) => `${f.kind}: ${f.message} (${f.task})`);
}

describe('historic bug switches, second round, interleaved by hand', () => {
  /*
   * v6-no-recheck. X over a page never touched, in an execbuffer whose list makes X acquire its
   * pages and then fail to fit (-ENOSPC), so no binding muddles the picture. Two threads submit it.
   *
   *   P/first                              P/second                          locks
   *   EXECBUFFER2: SM; reserve: get_pages(X)
   *     fast path: nothing mapped
   *     ON: unlock SM; mmap_sem(r); gup
   *         faults in p0, pins it; up_read
   *         mutex_lock(SM) (held)
   *                                        EXECBUFFER2: SM; get_pages(X)     SM: second
   *                                          fast path pins p0: installs [p0]
   *                                          bind -ENOSPC -> -ENOSPC
   *     takes SM: installs its [p0] over
   *     X's list, no recheck -> I-ONCE: the
   *     first list's reference and pin leak
   *     OFF: a worker is queued -> -EAGAIN ... the worker installs once; both end -ENOSPC
   */
  it('v6-no-recheck: two threads populate one object while struct_mutex is dropped; the first page list leaks (I-ONCE)', () => {
    const res = both('v6-no-recheck', ({ m, hand }) => {
      const p = m.spawn();
      const fd = p.open('/dev/dri/card0');
      const a = p.mmap(0, PAGE, RW, ANON);
      const x = drmUserptr(p, fd, a, PAGE);
      const X = userptrAt(m, a);
      const y = user.gem_create(p, fd, PAGE);
      const eb1 = unbindableExecbuf(p, fd, y, x);
      const eb2 = unbindableExecbuf(p, fd, y, x);
      const sm = m.i915.dev.struct_mutex;
      const out = { first: [] as number[], second: [] as number[] };
      const first = p.thread('first', (api) =>
        retry(api, fd, uapi.DRM_IOCTL_I915_GEM_EXECBUFFER2, eb1, out.first),
      );
      const second = p.thread('second', (api) =>
        retry(api, fd, uapi.DRM_IOCTL_I915_GEM_EXECBUFFER2, eb2, out.second),
      );
      // `first` pinned X's page in get_pages and wants struct_mutex back to install it.
      const backFromGup = (t: Task): boolean => wants(t, sm) && X.pages === null && m.ram.pinnedPages > 0;
      hand.hold('first, back from gup, at mutex_lock(SM) until second is done', first, {
        at: backFromGup,
        until: () => second.done,
      });
      return out;
    });
    const ENOSPC = -ERRNO.ENOSPC;
    expect(res.on.seen).toEqual({ first: [ENOSPC], second: [ENOSPC] });
    expect(full(res.on.during)).toEqual([
      'invariant: I-ONCE: userptr object #1 gets a second page list while it holds one (pfn 0x6): ' +
        "the first list's 1 page references leak (pid100/first)",
    ]);
    expect(kinds(res.on.all)).toEqual([
      'invariant: I-ONCE',
      'leak: 1 pages still pinned at shutdown',
      'leak: 1 frames still allocated at shutdown',
    ]);
    expect(res.off.seen).toEqual({ first: [-ERRNO.EAGAIN, ENOSPC], second: [ENOSPC] });
    expect(res.off.all).toEqual([]);
  });

  /*
   * v18-dangling-pages. X over a resident page; the fault point 'st_set_pages' is enabled and the
   * script answers its first decision with "fail".
   *
   *   P/execbuf
   *   EXECBUFFER2: get_pages(X): fast path pins p0; st_set_pages: sg_alloc_table fails
   *     ON: kfree(st) but obj->pages keeps pointing at it (I-PAGES); p0 released -> -ENOMEM
   *     OFF: obj->pages = NULL; p0 released -> -ENOMEM
   *   EXECBUFFER2 again:
   *     ON: obj->pages is not NULL: no get_pages; X is bound with the freed (empty) table: the
   *         blit lands in the scratch page, not in the process's memory -> 0
   *     OFF: get_pages again (no fault this time): the blit fills the page -> 0
   *   GEM_CLOSE X; retirement frees it: put_pages
   *     ON: walks the freed table and frees it again (double free)
   */
  it('v18-dangling-pages: a failed st_set_pages leaves obj->pages at the freed table; put_pages frees it again', () => {
    const res = both(
      'v18-dangling-pages',
      ({ m, hand }) => {
        hand.answer('st_set_pages', 1);
        const p = m.spawn();
        const fd = p.open('/dev/dri/card0');
        const a = p.mmap(0, PAGE, RW, ANON);
        p.write(a, new Uint8Array(PAGE));
        const x = drmUserptr(p, fd, a, PAGE);
        const eb = fillExecbuf(p, fd, x, 1);
        const out = { execbuf: [] as number[], wait: NaN, close: NaN, word: 0 };
        p.thread('execbuf', function* (api) {
          out.execbuf.push(yield* api.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_EXECBUFFER2, eb));
          out.execbuf.push(yield* api.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_EXECBUFFER2, eb));
          const w = uapi.drm_i915_gem_wait.encode({ bo_handle: x, flags: 0, timeout_ns: -1n });
          out.wait = yield* api.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_WAIT, w);
          out.close = yield* gemCloseIn(api, fd, x);
          const r = yield* api.read(a, 4);
          if (r instanceof Uint8Array) out.word = new DataView(r.buffer).getUint32(0, true);
        });
        return out;
      },
      { faults: ['st_set_pages'] },
    );
    expect(res.on.seen).toEqual({ execbuf: [-ERRNO.ENOMEM, 0], wait: 0, close: 0, word: 0 });
    expect(res.on.picked).toEqual(['st_set_pages=1']);
    expect(full(res.on.all)).toEqual([
      'invariant: I-PAGES: st_set_pages of userptr object #1 failed (-ENOMEM) and left obj->pages pointing at the freed sg_table (pid100/execbuf)',
      'use-after-free: put_pages of userptr object #1 walks the freed sg_table and frees it again (double free) (pid100/execbuf)',
    ]);
    expect(res.off.seen).toEqual({ execbuf: [-ERRNO.ENOMEM, 0], wait: 0, close: 0, word: COLOR });
    expect(res.off.picked).toEqual(['st_set_pages=1', 'st_set_pages=0']);
    expect(res.off.all).toEqual([]);
  });

  /*
   * worker-gup-during-invalidate (§8.8). X over a resident page, no pages yet. MADV_DONTNEED holds
   * mmap_sem only for read: it has told the notifiers but not yet zapped the PTE when the
   * creator's execbuffer asks for pages.
   *
   *   P/execbuf                    P/madvise                         W (kworker)         bcs
   *                                madvise(DONTNEED): mmap_sem(r)
   *                                invalidate_range_start: X has
   *                                  nothing to drop; returns
   *                                zap_pte_range (held)
   *   EXECBUFFER2: fast path refused
   *     (range being invalidated):
   *     worker queued -> -EAGAIN
   *                                                                  ON: mmap_sem(r) (shared with
   *                                                                      madvise); gup pins p0 from
   *                                                                      the old PTE; installs it
   *                                                                  OFF: read_begin: waits for
   *                                                                      invalidate_range_end
   *                                zaps p0; invalidate_range_end
   *                                                                  OFF: gup faults in p1, installs
   *   EXECBUFFER2 again -> 0                                                             blit:
   *                                                                      ON: on p0: I-NOSTALE
   */
  it('worker-gup-during-invalidate (§8.8): a worker pins the old page while MADV_DONTNEED, under mmap_sem read, has not zapped it yet (I-NOSTALE)', () => {
    let addr = 0;
    const res = both('worker-gup-during-invalidate', ({ m, hand }) => {
      const p = m.spawn();
      const fd = p.open('/dev/dri/card0');
      const a = (addr = p.mmap(0, PAGE, RW, ANON));
      p.write(a, new Uint8Array(PAGE));
      const x = drmUserptr(p, fd, a, PAGE);
      const X = userptrAt(m, a);
      const mmu = i915_mmu_notifiers(m.i915).get(p.mm!)!;
      const eb = fillExecbuf(p, fd, x, 1);
      const results: number[] = [];
      const out = { execbuf: results, madvise: NaN, workerWaited: false };
      const works = tokens(hand, X);
      const submit = p.thread('execbuf', (api) =>
        retry(api, fd, uapi.DRM_IOCTL_I915_GEM_EXECBUFFER2, eb, results),
      );
      const madv = p.thread('madvise', function* (api) {
        out.madvise = yield* api.madvise(a, PAGE, uapi.MADV_DONTNEED);
      });
      const atZap = (t: Task): boolean => hand.stop(t) === 'zap_pte_range';
      const wWaits = (): boolean =>
        m.sched.tasks.some((t) => works[0]?.running === t && t.state === 'blocked' && t.waitingOn === mmu.wq);
      hand.watch(() => {
        if (wWaits()) out.workerWaited = true;
      });
      hand.hold('execbuf until madvise is between invalidate and zap', submit, { until: () => atZap(madv) });
      hand.hold('madvise before the zap until the worker installed (or waits)', madv, {
        at: atZap,
        until: () => finished(works[0]) || wWaits(),
      });
      hand.hold('the GPU until madvise returned', (t) => t.kind === 'engine', {
        until: () => madv.done,
        guard: true,
      });
      return out;
    });
    expect(res.on.seen).toEqual({ execbuf: [-ERRNO.EAGAIN, 0], madvise: 0, workerWaited: false });
    expect(full(res.on.during)).toEqual([
      `coherence: I-NOSTALE: the GPU runs seqno 1 with userptr object #1 page 0 = pfn 0x1, but mm 1 maps ${hex(addr)} to nothing (bcs)`,
    ]);
    expect(kinds(res.on.all)).toEqual(['coherence: I-NOSTALE']);
    // Off, the worker waited for invalidate_range_end and then faulted in a fresh page.
    expect(res.off.seen).toEqual({ execbuf: [-ERRNO.EAGAIN, 0], madvise: 0, workerWaited: true });
    expect(res.off.all).toEqual([]);
  });
});

describe('§8.8 examples: page migration runs without mmap_sem, and i915 (3.16) does not hear it', () => {
  function setup(m: Machine): { p: Process; fd: number; a: number; x: number; X: DrmI915UserptrObject } {
    const p = m.spawn();
    const fd = p.open('/dev/dri/card0');
    const a = p.mmap(0, PAGE, RW, ANON);
    p.write(a, new Uint8Array(PAGE).fill(0x11));
    const x = drmUserptr(p, fd, a, PAGE);
    return { p, fd, a, x, X: userptrAt(m, a) };
  }

  function fill(p: Process, fd: number, x: number): void {
    const r = p.drmIoctl(fd, uapi.DRM_IOCTL_I915_GEM_EXECBUFFER2, fillExecbuf(p, fd, x, 1));
    expect(r).toBe(0);
    user.gem_wait(p, fd, x);
  }

  it('a page the object holds is pinned: migration fails with -EAGAIN and nothing changes (clean)', () => {
    const m = Machine.boot();
    const { p, fd, a, x, X } = setup(m);
    fill(p, fd, x);
    const before = mapped(p, a);
    expect(X.pages).toEqual([before]);
    expect(m.compact(p, a)).toBe(-ERRNO.EAGAIN);
    expect(mapped(p, a)).toBe(before);
    fill(p, fd, x);
    expect(new DataView(p.read(a, 4).buffer).getUint32(0, true)).toBe(COLOR);
    expect(m.shutdown()).toEqual([]);
  });

  it('a page the object does not hold moves; the next acquisition pins the new frame (clean)', () => {
    const m = Machine.boot();
    const { p, fd, a, x, X } = setup(m);
    // A secondary MMU with an invalidate_page callback hears the migration; i915's range
    // callbacks do not run.
    const heard: string[] = [];
    const kvm = new MmuNotifier(
      {
        invalidate_page: function* (_mn, _mm, address) {
          heard.push(`page ${hex(address)}`);
          yield* [];
        },
        invalidate_range_start: function* (_mn, _mm, start, end) {
          heard.push(`range ${hex(start)}-${hex(end)}`);
          yield* [];
        },
      },
      'kvm',
    );
    const mm = p.mm!;
    const reg = m.sched.spawn('register', 'kthread', mmu_notifier_register(kvm, mm));
    m.sched.runUntil(() => reg.done);
    m.trace({
      event: (e) => {
        if (e.op === 'invalidate_range_start') heard.push(`i915 ${e.resource ?? ''}`);
      },
    });
    const before = mapped(p, a);
    expect(m.compact(p, a)).toBe(0);
    expect(heard).toEqual([`page ${hex(a)}`]);
    const unreg = m.sched.spawn('unregister', 'kthread', mmu_notifier_unregister(kvm, mm));
    m.sched.runUntil(() => unreg.done);
    const after = mapped(p, a);
    expect(after).not.toBe(before);
    expect(m.ram.isFree(before)).toBe(true);
    expect(p.read(a, 4)).toEqual(new Uint8Array(4).fill(0x11));
    fill(p, fd, x);
    expect(X.pages).toEqual([after]);
    expect(new DataView(p.read(a, 4).buffer).getUint32(0, true)).toBe(COLOR);
    expect(m.shutdown()).toEqual([]);
  });

  /*
   *   compact (kthread)                      P/execbuf
   *   isolate: get_page(p0); lock_page (held)
   *                                          EXECBUFFER2: fast path pins p0, installs, blit -> 0
   *   try_to_unmap; count check: pinned ->
   *   -EAGAIN, the PTE stays; invalidate_page
   *   (i915 has no such callback: hears nothing)
   */
  it('a fast path between isolation and unmapping: its pin makes the migration fail (clean)', () => {
    const hand = new Hand();
    const m = Machine.boot({ chooser: hand });
    hand.attach(m);
    const { p, fd, a, x, X } = setup(m);
    const p0 = mapped(p, a);
    const eb = fillExecbuf(p, fd, x, 1);
    const results: number[] = [];
    const out = { compact: NaN };
    const compact = m.sched.spawn(
      'compact',
      'kthread',
      (function* () {
        out.compact = yield* migrate_page(p.mm!, a);
      })(),
    );
    const submit = p.thread('execbuf', (api) =>
      retry(api, fd, uapi.DRM_IOCTL_I915_GEM_EXECBUFFER2, eb, results),
    );
    hand.hold('compaction at lock_page until the execbuffer returned', compact, {
      at: (t) => hand.stop(t) === 'lock_page',
      until: () => submit.done,
    });
    m.run();
    expect(hand.unused()).toEqual([]);
    hand.release();
    expect(results).toEqual([0]);
    expect(out.compact).toBe(-ERRNO.EAGAIN);
    expect(X.pages).toEqual([p0]);
    expect(mapped(p, a)).toBe(p0);
    expect(m.findings()).toEqual([]);
    expect(m.shutdown()).toEqual([]);
  });
});
