import { describe, expect, it } from 'vitest';
import { ERRNO, type Finding, uapi } from '../src/index.js';
import { i915_mmu_notifiers } from '../src/i915/i915_gem_userptr.js';
import { i915_seqno_passed } from '../src/i915/intel_ringbuffer.js';
import type { Task } from '../src/sched/task.js';
import { both, finished, tokens, userptrAt, wants } from './support/hand.js';
import {
  ANON,
  PAGE,
  RW,
  drmUserptr,
  fillAndWait,
  fillExecbuf,
  gemCloseIn,
  hex,
  kinds,
  retry,
} from './support/userptr.js';

/**
 * The bug switches whose hazard is a race, each driven through its interleaving by hand: a
 * chooser written here holds tasks back until the script says they may go on. With the switch on
 * the interleaving produces the switch's finding; with it off, the same chooser gives a clean run.
 */

// --- the hand that picks who runs ---------------------------------------------------------------

function blockedOn(t: Task, lock: object): boolean {
  return t.state === 'blocked' && t.waitingOn?.lock === lock;
}

// --- user side ----------------------------------------------------------------------------------

/** Findings of a deadlocked machine's shutdown: only more deadlock reports and what it leaks. */
function onlyDeadlockAftermath(fs: Finding[]): void {
  expect(fs.filter((f) => f.kind !== 'deadlock' && f.kind !== 'leak')).toEqual([]);
}

describe('historic bug switches that need a race, interleaved by hand', () => {
  /*
   * v13-sync-unregister. Two processes; P1's only userptr X, P2's userptr Y holding pages (so the
   * munmap's callback must cancel it under SM). The notifier SRCU is
   * global, so P1's unregister waits for P2's callback:
   *
   *   P1/close                           P2/munmap                       locks
   *   GEM_CLOSE X: last ref, takes SM                                    SM: close
   *   free_object -> release -> notifier_del
   *     (held at its spin_lock)
   *                                      munmap(Y): mmap_sem(w)          srcu read: munmap
   *                                      invalidate_range_start(Y)
   *                                      cancel_userptr: mutex_lock(SM)  munmap sleeps on SM
   *   ... count 0 -> destroy notifier
   *   ON:  mmu_notifier_unregister -> synchronize_srcu: waits for munmap's read section
   *        -> deadlock (close waits for munmap, munmap waits for close)
   *   OFF: queue the unregister on a worker, unlock SM -> munmap goes on
   */
  it('v13-sync-unregister: closing the last object unregisters under struct_mutex while a callback waits for it (deadlock)', () => {
    const res = both('v13-sync-unregister', ({ m, hand }) => {
      const p1 = m.spawn();
      const p2 = m.spawn();
      const fd1 = p1.open('/dev/dri/card0');
      const fd2 = p2.open('/dev/dri/card0');
      const a = p1.mmap(0, PAGE, RW, ANON);
      const b = p2.mmap(0, PAGE, RW, ANON);
      const x = drmUserptr(p1, fd1, a, PAGE);
      fillAndWait(p2, fd2, drmUserptr(p2, fd2, b, PAGE)); // Y holds pages: munmap must cancel it
      const X = userptrAt(m, a);
      const sm = m.i915.dev.struct_mutex;
      const out: Record<string, unknown> = {};
      const close = p1.thread('close', function* (api) {
        out.close = yield* gemCloseIn(api, fd1, x);
      });
      const unmap = p2.thread('munmap', function* (api) {
        out.munmap = yield* api.munmap(b, PAGE);
      });
      const freeing = (): boolean => sm.owner === close && X.refcount === 0;
      hand.hold('munmap until close frees X', unmap, { until: freeing });
      hand.hold('close in free_object until munmap sleeps on SM', close, {
        at: freeing,
        until: () => blockedOn(unmap, sm),
      });
      return out;
    });
    expect(res.on.during.map((f) => f.message)).toEqual([
      'deadlock: pid100/close waits for srcu grace period mmu_notifier srcu; pid101/munmap waits for mutex struct_mutex',
    ]);
    expect(res.on.during[0]!.locks).toEqual(['struct_mutex', 'mmu_notifier srcu.mutex']);
    expect(res.on.seen).toEqual({});
    onlyDeadlockAftermath(res.on.all);
    expect(res.off.seen).toEqual({ close: 0, munmap: 0 });
    expect(res.off.all).toEqual([]);
  });

  /*
   * v16-worker-race. X over two pages never touched, so the first execbuffer queues a worker W.
   *
   *   P/execbuf              W (kworker)                    P/munmap                 locks
   *   EXECBUFFER2 -> -EAGAIN
   *                          down_read(mmap_sem)
   *                          gup: faults in, pins p0, p1
   *                          up_read; mutex_lock(SM) (held)
   *                                                         munmap(X): mmap_sem(w)
   *                                                         invalidate_range_start:
   *                                                         cancel_userptr under SM:
   *                                                           ON: token left alone
   *                                                           OFF: token cleared
   *                                                         zap p0, p1; returns
   *                          takes SM:
   *                            ON: installs p0, p1 (no longer mapped)
   *                            OFF: token lost, drops them
   *   EXECBUFFER2 again
   *     ON: X has pages -> the blit runs on p0, p1: I-NOSTALE
   *     OFF: a new worker finds nothing mapped -> -EFAULT
   */
  it('v16-worker-race: a worker installs pages pinned before a munmap it did not hear about (I-NOSTALE)', () => {
    let addr = 0;
    const res = both('v16-worker-race', ({ m, hand }) => {
      const p = m.spawn();
      const fd = p.open('/dev/dri/card0');
      const a = (addr = p.mmap(0, 2 * PAGE, RW, ANON));
      const x = drmUserptr(p, fd, a, 2 * PAGE);
      const X = userptrAt(m, a);
      const eb = fillExecbuf(p, fd, x, 2);
      const sm = m.i915.dev.struct_mutex;
      const results: number[] = [];
      const out = { execbuf: results, munmap: NaN };
      const works = tokens(hand, X);
      p.thread('execbuf', (api) => retry(api, fd, uapi.DRM_IOCTL_I915_GEM_EXECBUFFER2, eb, results));
      const unmap = p.thread('munmap', function* (api) {
        out.munmap = yield* api.munmap(a, 2 * PAGE);
      });
      const isW = (t: Task): boolean => works[0]?.running === t;
      const wPinned = (): boolean => m.sched.tasks.some((t) => isW(t) && wants(t, sm));
      hand.hold('munmap until W pinned', unmap, { until: wPinned });
      hand.hold('W at mutex_lock(SM) until munmap returned', isW, {
        at: (t) => wants(t, sm),
        until: () => unmap.done,
      });
      return out;
    });
    expect(res.on.seen).toEqual({ execbuf: [-ERRNO.EAGAIN, 0], munmap: 0 });
    expect(res.on.during.map((f) => `${f.kind}: ${f.message} (${f.task})`)).toEqual([
      `coherence: I-NOSTALE: the GPU runs seqno 1 with userptr object #1 page 0 = pfn 0x3, but mm 1 maps ${hex(addr)} to nothing (bcs)`,
    ]);
    expect(kinds(res.on.all)).toEqual(['coherence: I-NOSTALE']);
    expect(res.off.seen).toEqual({ execbuf: [-ERRNO.EAGAIN, -ERRNO.EAGAIN, -ERRNO.EFAULT], munmap: 0 });
    expect(res.off.all).toEqual([]);
  });

  /*
   * v17-no-retire. X over a resident page; one blit into it; X closed while its request is still
   * unretired (the active list holds the last reference); then Y on the same range.
   *
   *   P/first                    bcs (GPU)          kworker/i915:0 (retire)    P/again
   *   EXECBUFFER2 (X) -> 0
   *   GEM_CLOSE X: handle gone;
   *     X lives on (active ref)
   *                              runs the blit,
   *                              breadcrumb passes  (held: not retiring)
   *                                                                            USERPTR Y = X's range
   *                                                                            notifier_add:
   *                                                                              ON: overlap check sees X
   *                                                                                  -> -EINVAL
   *                                                                              OFF: retire first: X freed
   *                                                                                  -> Y created
   */
  it('v17-no-retire: a closed, idle object not yet retired blocks a new one on its range (I-NOSPURIOUS)', () => {
    const res = both('v17-no-retire', ({ m, hand }) => {
      const p = m.spawn();
      const fd = p.open('/dev/dri/card0');
      const a = p.mmap(0, PAGE, RW, ANON);
      p.write(a, new Uint8Array(PAGE));
      const x = drmUserptr(p, fd, a, PAGE);
      const X = userptrAt(m, a);
      const eb = fillExecbuf(p, fd, x, 1);
      const out = { execbuf: NaN, close: NaN, again: NaN };
      const first = p.thread('first', function* (api) {
        out.execbuf = yield* api.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_EXECBUFFER2, eb);
        out.close = yield* gemCloseIn(api, fd, x);
      });
      const again = p.thread('again', function* (api) {
        const b = uapi.drm_i915_gem_userptr.encode({ user_ptr: a, user_size: PAGE, flags: 0 });
        out.again = yield* api.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_USERPTR, b);
      });
      const idle = (): boolean =>
        first.done && X.ring !== null && i915_seqno_passed(X.ring.get_seqno(), X.last_read_seqno);
      hand.hold('again until X is closed and its blit done', again, { until: idle });
      hand.hold('the retire worker until Y was asked for', (t) => t.name === 'kworker/i915:0', {
        until: () => again.done,
      });
      return out;
    });
    expect(res.on.seen).toEqual({ execbuf: 0, close: 0, again: -ERRNO.EINVAL });
    expect(kinds(res.on.all)).toEqual(['invariant: I-NOSPURIOUS']);
    expect(res.on.all[0]!.task).toBe('pid100/again');
    expect(res.off.seen).toEqual({ execbuf: 0, close: 0, again: 0 });
    expect(res.off.all).toEqual([]);
  });

  /*
   * dying-object-ref (§8.1). X is P's only userptr; its last handle goes while a munmap of its
   * range runs. X stays in the interval tree until its release, after the refcount reached 0, and
   * stays active (an invalidation must cancel it) until free_object puts its pages.
   *
   *   P/close                                 P/munmap                            locks
   *   GEM_CLOSE X: refcount 1 -> 0 under SM                                       SM: close
   *   free_object: X still holds the pages of
   *   an earlier blit (active) (held)
   *                                           invalidate_range_start(X):
   *                                           spin_lock; X active, refcount 0       mmu->lock: munmap
   *                                             ON: kref_get: 0 -> 1
   *                                                 cancel_userptr: mutex_lock(SM) (sleeps)
   *                                             OFF: kref_get_unless_zero fails: skip X
   *   unbind, put_pages, release, notifier_del:
   *   X leaves the tree; free ends
   *   unlock SM
   *                                           ON: cancel_userptr on the freed X; its put
   *                                               frees X a second time
   */
  it('dying-object-ref (§8.1): invalidate resurrects an object being freed (use-after-free, double free)', () => {
    const res = both('dying-object-ref', ({ m, hand }) => {
      const p = m.spawn();
      const fd = p.open('/dev/dri/card0');
      const a = p.mmap(0, PAGE, RW, ANON);
      p.write(a, new Uint8Array(PAGE));
      const x = drmUserptr(p, fd, a, PAGE);
      fillAndWait(p, fd, x); // X holds pages (active) until free_object puts them
      const X = userptrAt(m, a);
      const sm = m.i915.dev.struct_mutex;
      const out = { close: NaN, munmap: NaN };
      const close = p.thread('close', function* (api) {
        out.close = yield* gemCloseIn(api, fd, x);
      });
      const unmap = p.thread('munmap', function* (api) {
        out.munmap = yield* api.munmap(a, PAGE);
      });
      const releasing = (): boolean => X.refcount === 0 && X.pages !== null && !close.done;
      hand.hold('munmap until X is being freed, its pages still held', unmap, { until: releasing });
      hand.hold('close in free_object until munmap looked X up', close, {
        at: releasing,
        until: () => unmap.done || blockedOn(unmap, sm),
      });
      return out;
    });
    expect(res.on.seen).toEqual({ close: 0, munmap: 0 });
    expect(res.on.all.map((f) => `${f.kind}: ${f.message} (${f.task})`)).toEqual([
      'WARN: kref_get of userptr object #1 with refcount 0 in invalidate_range_start (pid100/munmap)',
      'use-after-free: cancel_userptr of freed userptr object #1 (pid100/munmap)',
      'use-after-free: double free of userptr object #1 (pid100/munmap)',
    ]);
    expect(res.off.seen).toEqual({ close: 0, munmap: 0 });
    expect(res.off.all).toEqual([]);
  });

  /*
   * serial-zero (§8.2). P creates its first userptr: the notifier is registered under mmap_sem,
   * which is dropped before the object is inserted. Another thread unmaps an unrelated range.
   *
   *   P/create                                    P/munmap                    locks
   *   USERPTR: mmap_sem(w), SM: notifier
   *     registered (serial ON: 0, OFF: 1)
   *   unlock both; notifier_add: mutex_lock(SM)
   *     (held: the tree is still empty)
   *                                               munmap(c): mmap_sem(w)      mmap_sem: munmap
   *                                               invalidate_range_start:
   *                                               spin_lock; serial == 0 == local serial
   *                                                 ON: iter_next(NULL) -> BUG (oops)
   *                                                 OFF: iter_first finds nothing: return
   *   insert X
   */
  it('serial-zero (§8.2): an invalidation before the first insertion follows a NULL iterator (BUG)', () => {
    const res = both('serial-zero', ({ m, hand }) => {
      const p = m.spawn();
      const fd = p.open('/dev/dri/card0');
      const a = p.mmap(0, PAGE, RW, ANON);
      const c = p.mmap(0, PAGE, RW, ANON);
      const sm = m.i915.dev.struct_mutex;
      const mm = p.mm!;
      const out = { create: NaN, munmap: NaN };
      const create = p.thread('create', function* (api) {
        const b = uapi.drm_i915_gem_userptr.encode({ user_ptr: a, user_size: PAGE, flags: 0 });
        out.create = yield* api.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_USERPTR, b);
      });
      const unmap = p.thread('munmap', function* (api) {
        out.munmap = yield* api.munmap(c, PAGE);
      });
      const window = (): boolean => {
        const mmu = i915_mmu_notifiers(m.i915).get(mm);
        return !!mmu && mmu.objects.empty && wants(create, sm) && mm.mmap_sem.writer !== create;
      };
      hand.hold('munmap until the notifier is registered and empty', unmap, { until: window });
      hand.hold('create before the insertion until munmap is over', create, {
        at: window,
        until: () => unmap.done,
      });
      return out;
    });
    expect(res.on.seen).toEqual({ create: NaN, munmap: NaN });
    expect(res.on.during.map((f) => `${f.kind}: ${f.message} (${f.task})`)).toEqual([
      'BUG: NULL pointer dereference: interval_tree_iter_next(NULL) in invalidate_range_start (mm1) (pid100/munmap)',
    ]);
    // The oops left mmap_sem, the SRCU section and the notifier lock held: the rest of the run
    // cannot finish.
    onlyDeadlockAftermath(res.on.all.slice(1));
    expect(res.off.seen).toEqual({ create: 0, munmap: 0 });
    expect(res.off.all).toEqual([]);
  });

  /*
   * token-clobber (§8.3). P's X over a page never touched; P's child C (same DRM file) submits
   * with X, so every population goes through a worker (C's mm is not X's). W1's token is
   * cancelled by an invalidation (P's MADV_DONTNEED) after it pinned; C's next execbuffer queues
   * W2; then W1 finishes.
   *
   *   C/execbuf            W1 (kworker)              P/madvise              W2 (kworker)
   *   EXECBUFFER2 -EAGAIN  token = W1
   *                        gup pins p0
   *                        mutex_lock(SM) (held)
   *                                                  DONTNEED: cancel_userptr
   *                                                  token = NULL; zap p0
   *   EXECBUFFER2 -EAGAIN  token = W2                                       (waits for W1)
   *                        takes SM, the token is not W1's:
   *                          ON: work = NULL: W2's token erased (I-PROGRESS)
   *                          OFF: leaves it alone
   *                                                                         gup pins p0'
   *                                                                         ON: token lost: drops p0'
   *                                                                         OFF: installs p0'
   *   EXECBUFFER2: ON: -EAGAIN, W3 pins and installs; again -> 0    OFF: 0
   */
  it('token-clobber (§8.3): a superseded worker erases the token of a newer one (I-PROGRESS)', () => {
    const res = both('token-clobber', ({ m, hand }) => {
      const p = m.spawn();
      const fd = p.open('/dev/dri/card0');
      const a = p.mmap(0, PAGE, RW, ANON);
      const x = drmUserptr(p, fd, a, PAGE);
      const X = userptrAt(m, a);
      const c = p.fork();
      const eb = fillExecbuf(c, fd, x, 1);
      const sm = m.i915.dev.struct_mutex;
      const results: number[] = [];
      const out = { execbuf: results, madvise: NaN, pagesAfterW2: null as boolean | null };
      const works = tokens(hand, X);
      hand.watch(() => {
        if (out.pagesAfterW2 === null && finished(works[1])) out.pagesAfterW2 = X.pages !== null;
      });
      c.thread('execbuf', (api) => retry(api, fd, uapi.DRM_IOCTL_I915_GEM_EXECBUFFER2, eb, results));
      const madvise = p.thread('madvise', function* (api) {
        out.madvise = yield* api.madvise(a, PAGE, uapi.MADV_DONTNEED);
      });
      const runs = (i: number) => (t: Task) => works[i]?.running === t;
      const w1Pinned = (): boolean => m.sched.tasks.some((t) => runs(0)(t) && wants(t, sm));
      hand.hold('madvise until W1 pinned', madvise, { until: w1Pinned });
      hand.hold('W1 at mutex_lock(SM) until W2 is queued', runs(0), {
        at: (t) => wants(t, sm),
        until: () => works.length > 1,
      });
      hand.hold('W2 until W1 is over', runs(1), { until: () => finished(works[0]), guard: true });
      return out;
    });
    const EAGAIN = -ERRNO.EAGAIN;
    expect(res.on.seen).toEqual({ execbuf: [EAGAIN, EAGAIN, EAGAIN, 0], madvise: 0, pagesAfterW2: false });
    expect(res.on.during.map((f) => `${f.kind}: ${f.message} (${f.task})`)).toEqual([
      'invariant: I-PROGRESS: a superseded get-pages worker of userptr object #1 cleared the token of a newer worker (kworker/events:0)',
    ]);
    expect(kinds(res.on.all)).toEqual(['invariant: I-PROGRESS']);
    expect(res.off.seen).toEqual({ execbuf: [EAGAIN, EAGAIN, 0], madvise: 0, pagesAfterW2: true });
    expect(res.off.all).toEqual([]);
  });

  /*
   * fast-gup-during-invalidate (§8.8/§8.9). X over a resident page, no pages yet. munmap has
   * told the notifiers but not yet zapped the PTE when the creator's own execbuffer runs.
   *
   *   P/execbuf                         P/munmap                           bcs (GPU)
   *                                     munmap(X): mmap_sem(w)
   *                                     invalidate_range_start: X has
   *                                       nothing to drop; returns
   *                                     zap_pte_range (held: PTE still there)
   *   EXECBUFFER2: get_pages, fast path
   *     ON: __get_user_pages_fast pins p0
   *         from the old PTE -> installs,
   *         binds, submits -> 0
   *     OFF: the range is being invalidated:
   *         no fast path; worker queued -> -EAGAIN
   *                                     zaps p0; invalidate_range_end
   *                                                                        (held until munmap returned)
   *                                                                        ON: runs the blit on p0: I-NOSTALE
   *   OFF: the worker takes mmap_sem after munmap: nothing mapped -> -EFAULT
   */
  it('fast-gup-during-invalidate (§8.8/§8.9): the fast path re-pins a page between invalidate and zap (I-NOSTALE)', () => {
    let addr = 0;
    const res = both('fast-gup-during-invalidate', ({ m, hand }) => {
      const p = m.spawn();
      const fd = p.open('/dev/dri/card0');
      const a = (addr = p.mmap(0, PAGE, RW, ANON));
      p.write(a, new Uint8Array(PAGE));
      const x = drmUserptr(p, fd, a, PAGE);
      const eb = fillExecbuf(p, fd, x, 1);
      const results: number[] = [];
      const out = { execbuf: results, munmap: NaN };
      const submit = p.thread('execbuf', (api) =>
        retry(api, fd, uapi.DRM_IOCTL_I915_GEM_EXECBUFFER2, eb, results),
      );
      const unmap = p.thread('munmap', function* (api) {
        out.munmap = yield* api.munmap(a, PAGE);
      });
      const atZap = (t: Task): boolean => hand.stop(t) === 'zap_pte_range';
      hand.hold('execbuf until munmap is between invalidate and zap', submit, { until: () => atZap(unmap) });
      hand.hold('munmap before the zap until execbuf returned', unmap, {
        at: atZap,
        until: () => results.length > 0,
      });
      hand.hold('the GPU until munmap returned', (t) => t.kind === 'engine', { until: () => unmap.done });
      return out;
    });
    expect(res.on.seen).toEqual({ execbuf: [0], munmap: 0 });
    expect(res.on.during.map((f) => `${f.kind}: ${f.message} (${f.task})`)).toEqual([
      `coherence: I-NOSTALE: the GPU runs seqno 1 with userptr object #1 page 0 = pfn 0x1, but mm 1 maps ${hex(addr)} to nothing (bcs)`,
    ]);
    expect(kinds(res.on.all)).toEqual(['coherence: I-NOSTALE']);
    expect(res.off.seen).toEqual({ execbuf: [-ERRNO.EAGAIN, -ERRNO.EFAULT], munmap: 0 });
    expect(res.off.all).toEqual([]);
  });
});
