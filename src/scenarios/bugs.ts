import type { Machine } from '../kernel/machine.js';
import type { Process, UserApi } from '../kernel/process.js';
import { ERRNO } from '../base/errno.js';
import { ErrnoError } from '../kernel/errors.js';
import { type RunContext, retrying } from '../explore/index.js';
import type { KGen } from '../sched/task.js';
import * as uapi from '../uapi/index.js';
import * as user from '../user/index.js';
import {
  ANON,
  type BugScenario,
  EAGAIN,
  PAGE,
  RW,
  fill,
  fillExecbuf,
  gemClose,
  gemWait,
  ioctlRetry,
  submitAndWait,
  proc,
  residentUserptr,
  tryUserptr,
  unbindableExecbuf,
  userptr,
} from './common.js';

/**
 * One scenario per bug switch: user threads racing over a userptr object, in which the explorer
 * finds the switch's finding (with the switch on) and nothing (with it off). Setup runs through
 * the sync facade (its interleavings are decisions too); the racy part runs in threads.
 */

const EB = uapi.DRM_IOCTL_I915_GEM_EXECBUFFER2;

function bug(
  id: string,
  description: string,
  expect: BugScenario['expect'],
  goals: string[],
  run: (m: Machine, ctx: RunContext) => void,
  config: Omit<BugScenario['config'], 'bugs'> = {},
): BugScenario {
  return {
    name: `bug/${id}`,
    bug: id,
    description,
    config: { ...config, bugs: [id] },
    expect,
    goals: goals.map((name) => ({ name })),
    run,
  };
}

export const BUG_SCENARIOS: BugScenario[] = [
  bug(
    'v3-no-invalidate',
    'a blit fills a userptr object, then one thread unmaps the range while another waits on it',
    { kind: 'coherence', message: 'I-COVER' },
    ['unmapped-with-pages'],
    (m, ctx) => {
      const { p, fd } = proc(m);
      const a = p.mmap(0, 2 * PAGE, RW, ANON);
      p.write(a, new Uint8Array(2 * PAGE));
      const h = userptr(p, fd, a, 2 * PAGE);
      fill(p, fd, h, 2);
      p.thread('wait', (api) => waitThread(api, fd, h));
      p.thread('munmap', (api) => markThenUnmap(ctx, api, 'unmapped-with-pages', a, 2 * PAGE));
    },
  ),
  bug(
    'v15-overlap',
    'an object inside another, both filled, then the range is unmapped',
    { kind: 'coherence', message: 'I-COVER' },
    ['inner-created'],
    (m, ctx) => {
      const { p, fd } = proc(m);
      const a = p.mmap(0, 4 * PAGE, RW, ANON);
      p.write(a, new Uint8Array(4 * PAGE));
      const outer = userptr(p, fd, a, 3 * PAGE);
      const inner = tryUserptr(p, fd, a + PAGE, PAGE);
      fill(p, fd, outer, 3);
      if (inner > 0) {
        ctx.mark('inner-created');
        fill(p, fd, inner, 1);
      }
      p.thread('munmap', (api) => api.munmap(a, 4 * PAGE));
    },
  ),
  bug(
    'v4-invalidate-all',
    'two objects on two buffers; one thread unmaps the first while another blits into the second',
    { kind: 'invariant', message: 'I-LOCAL' },
    ['other-object-busy'],
    (m, ctx) => {
      const { p, fd } = proc(m);
      const a = p.mmap(0, PAGE, RW, ANON);
      const b = p.mmap(0, PAGE, RW, ANON);
      p.write(a, new Uint8Array(PAGE));
      p.write(b, new Uint8Array(PAGE));
      fill(p, fd, userptr(p, fd, a, PAGE), 1);
      const hb = userptr(p, fd, b, PAGE);
      fill(p, fd, hb, 1);
      const eb = fillExecbuf(p, fd, hb, 1);
      p.thread('blit', (api) => markThenExecbuf(ctx, api, fd, eb));
      p.thread('munmap', (api) => api.munmap(a, PAGE));
    },
  ),
  bug(
    'v14-struct-mutex-lookup',
    'a thread maps, touches and unmaps memory no object covers while a userptr object exists',
    { kind: 'invariant', message: 'I-CHEAP' },
    ['unrelated-munmap'],
    (m, ctx) => {
      const { p, fd } = proc(m);
      const a = p.mmap(0, PAGE, RW, ANON);
      userptr(p, fd, a, PAGE);
      p.thread('scratch', (api) => scratchMapping(ctx, api));
    },
  ),
  bug(
    'v11-gup-under-struct-mutex',
    'a thread blits into an untouched userptr buffer (the slow path pins) while another unmaps it',
    { kind: 'lockdep|deadlock', message: '' },
    ['slow-path-and-munmap'],
    (m, ctx) => {
      const { p, fd } = proc(m);
      const a = p.mmap(0, 2 * PAGE, RW, ANON);
      const h = userptr(p, fd, a, 2 * PAGE);
      const eb = fillExecbuf(p, fd, h, 2);
      p.thread('blit', (api) => submitThread(ctx, api, fd, eb, h));
      p.thread('munmap', (api) => markThenUnmap(ctx, api, 'slow-path-and-munmap', a, 2 * PAGE));
    },
  ),
  bug(
    'v12-bare-mm',
    'an UNSYNCHRONIZED object used by a child after its creator exited (a worker pins)',
    { kind: 'use-after-free', message: 'mm' },
    ['child-after-exit'],
    (m, ctx) => {
      const { p, fd } = proc(m, 0);
      const a = p.mmap(0, PAGE, RW, ANON);
      const h = userptr(p, fd, a, PAGE, uapi.I915_USERPTR_UNSYNCHRONIZED);
      const child = p.fork();
      const eb = fillExecbuf(child, fd, h, 1);
      p.exit();
      child.thread('blit', (api) => markThenSubmit(ctx, api, 'child-after-exit', fd, eb, h));
    },
  ),
  bug(
    'v13-sync-unregister',
    "one process closes its only userptr while another process unmaps its own userptr's range",
    { kind: 'deadlock', message: 'srcu' },
    ['close-and-munmap'],
    (m, ctx) => {
      const { p: p1, fd: fd1 } = proc(m);
      const { p: p2, fd: fd2 } = proc(m);
      const a = p1.mmap(0, PAGE, RW, ANON);
      const b = p2.mmap(0, PAGE, RW, ANON);
      const x = userptr(p1, fd1, a, PAGE);
      // P2's object holds pages, so the munmap's callback has to cancel it under struct_mutex.
      // Resident first: the fast path pins them (a setup retrying for a worker could starve).
      p2.write(b, new Uint8Array(PAGE));
      fill(p2, fd2, userptr(p2, fd2, b, PAGE), 1);
      p1.thread('close', (api) => closeThread(api, fd1, x));
      p2.thread('munmap', (api) => markThenUnmap(ctx, api, 'close-and-munmap', b, PAGE));
    },
  ),
  bug(
    'v16-worker-race',
    'a thread blits into an untouched buffer (a worker pins it) while another thread unmaps it',
    { kind: 'coherence', message: 'I-NOSTALE' },
    ['munmap-while-worker-queued'],
    (m, ctx) => {
      const { p, fd } = proc(m);
      const a = p.mmap(0, 2 * PAGE, RW, ANON);
      const h = userptr(p, fd, a, 2 * PAGE);
      const eb = fillExecbuf(p, fd, h, 2);
      const results: number[] = [];
      p.thread('execbuf', (api) => submitThread(ctx, api, fd, eb, h, results));
      p.thread('munmap', (api) => unmapThenCheckWorker(ctx, api, a, 2 * PAGE, results));
    },
  ),
  bug(
    'v17-no-retire',
    'a thread blits into an object and closes it; another creates an object on the same range',
    { kind: 'invariant', message: 'I-NOSPURIOUS' },
    ['created-after-close'],
    (m, ctx) => {
      const { p, fd, a, x } = residentUserptr(m);
      const eb = fillExecbuf(p, fd, x, 1);
      const state = { closed: false };
      p.thread('first', (api) => blitThenClose(ctx, api, fd, eb, x, state));
      p.thread('again', (api) => createAfterClose(ctx, api, fd, a, state));
    },
  ),
  bug(
    'dying-object-ref',
    "a thread closes an object's last handle while another unmaps its range",
    { kind: 'WARN', message: 'kref_get' },
    ['close-and-munmap'],
    (m, ctx) => {
      const { p, fd, a, x } = residentUserptr(m);
      fill(p, fd, x, 1); // X holds pages until free_object puts them: the munmap must cancel it
      p.thread('close', (api) => closeThread(api, fd, x));
      p.thread('munmap', (api) => markThenUnmap(ctx, api, 'close-and-munmap', a, PAGE));
    },
  ),
  bug(
    'serial-zero',
    "a thread creates the process's first userptr while another unmaps an unrelated range",
    { kind: 'BUG', message: 'NULL pointer' },
    ['create-and-munmap'],
    (m, ctx) => {
      const { p, fd } = proc(m);
      const a = p.mmap(0, PAGE, RW, ANON);
      const c = p.mmap(0, PAGE, RW, ANON);
      p.thread('create', (api) => createUserptr(api, fd, a, PAGE));
      p.thread('munmap', (api) => markThenUnmap(ctx, api, 'create-and-munmap', c, PAGE));
    },
  ),
  bug(
    'token-clobber',
    "a child blits into its parent's object (workers pin) while the parent drops the page with MADV_DONTNEED",
    { kind: 'invariant', message: 'I-PROGRESS' },
    ['two-workers'],
    (m, ctx) => {
      const { p, fd } = proc(m);
      const a = p.mmap(0, PAGE, RW, ANON);
      const x = userptr(p, fd, a, PAGE);
      const c = p.fork();
      const eb = fillExecbuf(c, fd, x, 1);
      const results: number[] = [];
      c.thread('execbuf', (api) => execbufCountingWorkers(ctx, api, fd, eb, x, results));
      p.thread('madvise', (api) => api.madvise(a, PAGE, uapi.MADV_DONTNEED));
    },
  ),
  bug(
    'fast-gup-during-invalidate',
    'a thread blits into a resident buffer (the fast path pins) while another unmaps it',
    { kind: 'coherence', message: 'I-NOSTALE' },
    ['blit-during-munmap'],
    (m, ctx) => {
      const { p, fd, a, x } = residentUserptr(m);
      const eb = fillExecbuf(p, fd, x, 1);
      const state = { unmapping: false };
      p.thread('execbuf', (api) => execbufDuringUnmap(ctx, api, fd, eb, x, state));
      p.thread('munmap', (api) => unmapFlagged(api, a, PAGE, state));
    },
  ),
  bug(
    'zero-size',
    'a thread asks for a zero-sized userptr object',
    { kind: 'invariant', message: 'inverted interval' },
    ['asked'],
    (m, ctx) => {
      const { p, fd } = proc(m);
      const a = p.mmap(0, PAGE, RW, ANON);
      p.thread('create', (api) => markThenCreate(ctx, api, 'asked', fd, a, 0));
    },
  ),
  bug(
    'mmu-object-leak',
    'two threads each create and close a userptr object',
    { kind: 'leak', message: 'i915_mmu_object' },
    ['closed'],
    (m, ctx) => {
      const { p, fd } = proc(m);
      for (const t of ['a', 'b']) {
        const a = p.mmap(0, PAGE, RW, ANON);
        p.thread(t, (api) => createThenClose(ctx, api, fd, a));
      }
    },
  ),
  bug(
    'mmput-under-struct-mutex',
    'a process with a userptr object and a GTT mmap exits',
    { kind: 'lockdep|deadlock', message: '' },
    ['exited'],
    (m, ctx) => {
      const { p, fd } = proc(m);
      const a = p.mmap(0, PAGE, RW, ANON);
      userptr(p, fd, a, PAGE);
      const fd2 = p.open('/dev/dri/card0');
      const bo = user.gem_create(p, fd2, PAGE);
      const g = user.gem_mmap__gtt(p, fd2, bo, PAGE, RW);
      p.write(g, [1]);
      user.gem_close(p, fd2, bo);
      ctx.mark('exited');
      p.exit();
    },
  ),
  bug(
    'aliased-gtt-mmap',
    "a userptr object over a GTT mmap (created: nothing is checked until use), then a thread changes the mapped buffer's tiling",
    { kind: 'lockdep|deadlock', message: '' },
    ['retiling'],
    (m, ctx) => {
      const { p, fd } = proc(m);
      const bo = user.gem_create(p, fd, PAGE);
      const g = user.gem_mmap__gtt(p, fd, bo, PAGE, RW);
      p.write(g, [1]);
      userptr(p, fd, g, PAGE);
      p.thread('tiling', (api) => setTilingX(ctx, api, fd, bo));
    },
  ),
  bug(
    'worker-gup-during-invalidate',
    'a thread blits into a resident buffer while another drops its page with MADV_DONTNEED (mmap_sem read only): a worker pins it before the zap',
    { kind: 'coherence', message: 'I-NOSTALE' },
    ['worker-queued-during-madvise'],
    (m, ctx) => {
      const { p, fd, a, x } = residentUserptr(m);
      const eb = fillExecbuf(p, fd, x, 1);
      // Each round is one more chance at the window between invalidate_range_start and the zap.
      const ROUNDS = 2;
      const state = { dropping: false };
      p.thread('execbuf', (api) => execbufRounds(ctx, api, fd, eb, x, ROUNDS, state));
      p.thread('madvise', (api) => dropRounds(api, a, ROUNDS, state));
    },
  ),
  bug(
    'v6-no-recheck',
    'two threads submit an untouched userptr object (it gets pages, then never fits): both populate it while struct_mutex is dropped',
    { kind: 'invariant', message: 'I-ONCE' },
    ['both-submitted'],
    (m, ctx) => {
      const { p, fd } = proc(m);
      const a = p.mmap(0, PAGE, RW, ANON);
      const x = userptr(p, fd, a, PAGE);
      const y = user.gem_create(p, fd, PAGE);
      const eb1 = unbindableExecbuf(p, fd, y, x);
      const eb2 = unbindableExecbuf(p, fd, y, x);
      const state = { done: 0 };
      for (const [t, eb] of [
        ['first', eb1],
        ['second', eb2],
      ] as const) {
        p.thread(t, (api) => execbufThenCount(ctx, api, fd, eb, state));
      }
    },
  ),
  bug(
    'v18-dangling-pages',
    'a thread blits into a resident userptr buffer twice, waits and closes it; st_set_pages may fail',
    { kind: 'invariant', message: 'I-PAGES' },
    ['set-pages-failed'],
    (m, ctx) => {
      const { p, fd, x } = residentUserptr(m);
      const eb = fillExecbuf(p, fd, x, 1);
      p.thread('execbuf', (api) => execbufTwiceWaitClose(ctx, api, fd, eb, x));
    },
    { faults: ['st_set_pages'] },
  ),
  bug(
    'userptr-framebuffer',
    'a process scans out a userptr buffer (ADDFB2 + SETCRTC), then a thread unmaps it: the scanout pin defeats the invalidation',
    { kind: 'coherence', message: 'I-COVER' },
    ['unmapped-while-scanned-out'],
    (m, ctx) => {
      const { p, fd } = proc(m);
      // 1024x768 C8 (one byte a pixel): 192 pages.
      const len = 1024 * 768;
      const a = p.mmap(0, len, RW, ANON);
      p.write(a, new Uint8Array(len));
      const shown = scanoutUserptr(p, fd, userptr(p, fd, a, len));
      p.thread('munmap', (api) =>
        markThenUnmap(ctx, api, shown ? 'unmapped-while-scanned-out' : null, a, len),
      );
    },
  ),
];

/** Known findings of the correct design in bug scenarios (see `BugScenario.knownOff`). */
const KNOWN_OFF: Record<string, BugScenario['knownOff']> = {
  'v17-no-retire': {
    template:
      'invariant: I-NOSPURIOUS: -EINVAL for [<n>, <n>] because of closed, idle userptr object #<n> not yet retired',
    why: 'the I-NOSPURIOUS check judges idleness when it reports, not when the ioctl retired: a request completing between the retire and the overlap check (struct_mutex held) is taken for a spurious -EINVAL',
  },
};
for (const s of BUG_SCENARIOS) {
  const k = KNOWN_OFF[s.bug];
  if (k) s.knownOff = k;
}

/**
 * ADDFB2 of a 1024x768 C8 framebuffer on `handle`, then SETCRTC of it on the first CRTC and
 * connector in the connector's own mode. False if the framebuffer is refused (4.4's fix).
 */
function scanoutUserptr(p: Process, fd: number, handle: number): boolean {
  const fb = uapi.drm_mode_fb_cmd2.encode({
    width: 1024,
    height: 768,
    pixel_format: uapi.DRM_FORMAT_C8,
    handles: [handle],
    pitches: [1024],
  });
  try {
    p.ioctl(fd, uapi.DRM_IOCTL_MODE_ADDFB2, fb);
  } catch (e) {
    if (e instanceof ErrnoError) return false;
    throw e;
  }
  const mem = p.mmap(0, PAGE, RW, ANON);
  p.ioctl(
    fd,
    uapi.DRM_IOCTL_MODE_GETRESOURCES,
    uapi.drm_mode_card_res.encode({
      count_crtcs: 1,
      crtc_id_ptr: mem,
      count_connectors: 1,
      connector_id_ptr: mem + 4,
    }),
  );
  const ids = new DataView(p.read(mem, 8).buffer);
  const connector_id = ids.getUint32(4, true);
  p.ioctl(fd, uapi.DRM_IOCTL_MODE_GETCONNECTOR, uapi.drm_mode_get_connector.encode({ connector_id }));
  p.ioctl(
    fd,
    uapi.DRM_IOCTL_MODE_GETCONNECTOR,
    uapi.drm_mode_get_connector.encode({ connector_id, count_modes: 1, modes_ptr: mem + 64 }),
  );
  const mode = uapi.drm_mode_modeinfo.decode(p.read(mem + 64, 68));
  const crtc = uapi.drm_mode_crtc.encode({
    crtc_id: ids.getUint32(0, true),
    fb_id: uapi.drm_mode_fb_cmd2.decode(fb).fb_id,
    set_connectors_ptr: mem + 4,
    count_connectors: 1,
    mode_valid: 1,
    mode,
  });
  p.drmIoctl(fd, uapi.DRM_IOCTL_MODE_SETCRTC, crtc);
  p.munmap(mem, PAGE);
  return true;
}

// --- thread bodies --------------------------------------------------------------------------------
// Module-level generators, not closures: V8 gives every fresh generator closure it runs a map of
// its own that keeps the closure (and so the whole machine) alive until the next full GC (see
// test/perf-hygiene.test.ts). Shared flags live in small state objects passed along.

/** GEM_WAIT on `h`. */
function* waitThread(api: UserApi, fd: number, h: number): KGen<number> {
  return yield* gemWait(api, fd, h);
}

/** GEM_CLOSE of `h`. */
function* closeThread(api: UserApi, fd: number, h: number): KGen<number> {
  return yield* gemClose(api, fd, h);
}

/** Marks `goal` (if any), then unmaps [a, a + len). */
function* markThenUnmap(ctx: RunContext, api: UserApi, goal: string | null, a: number, len: number): KGen {
  if (goal !== null) ctx.mark(goal);
  yield* api.munmap(a, len);
}

/** v4: marks the other object busy, then blits into it. */
function* markThenExecbuf(ctx: RunContext, api: UserApi, fd: number, eb: Uint8Array): KGen {
  ctx.mark('other-object-busy');
  yield* ioctlRetry(ctx, api, fd, EB, eb, 'execbuffer2');
}

/** v14: maps, touches and unmaps memory no object covers. */
function* scratchMapping(ctx: RunContext, api: UserApi): KGen {
  const o = yield* api.mmap(0, PAGE, RW, ANON);
  yield* api.write(o, new Uint8Array([1]));
  ctx.mark('unrelated-munmap');
  yield* api.munmap(o, PAGE);
}

/** submitAndWait as a thread body. */
function* submitThread(
  ctx: RunContext,
  api: UserApi,
  fd: number,
  eb: Uint8Array,
  h: number,
  results?: number[],
): KGen {
  yield* submitAndWait(ctx, api, fd, eb, h, results);
}

/** Marks `goal`, then submitAndWait. */
function* markThenSubmit(
  ctx: RunContext,
  api: UserApi,
  goal: string,
  fd: number,
  eb: Uint8Array,
  h: number,
): KGen {
  ctx.mark(goal);
  yield* submitAndWait(ctx, api, fd, eb, h);
}

/** v16: unmaps, then notes whether the last execbuffer was waiting for a worker. */
function* unmapThenCheckWorker(
  ctx: RunContext,
  api: UserApi,
  a: number,
  len: number,
  results: number[],
): KGen {
  yield* api.munmap(a, len);
  if (results.length > 0 && results.at(-1) === EAGAIN) ctx.mark('munmap-while-worker-queued');
}

/** v17's first thread: blit into X, close it, say so. */
function* blitThenClose(
  ctx: RunContext,
  api: UserApi,
  fd: number,
  eb: Uint8Array,
  x: number,
  state: { closed: boolean },
): KGen {
  yield* ioctlRetry(ctx, api, fd, EB, eb, 'execbuffer2');
  yield* gemClose(api, fd, x);
  state.closed = true;
}

/** v17's second thread: once the blit landed and X is closed, a new object on the same range. */
function* createAfterClose(
  ctx: RunContext,
  api: UserApi,
  fd: number,
  a: number,
  state: { closed: boolean },
): KGen {
  // Waits, as a program polling its own memory would, until the blit landed and X was
  // closed: only then is an -EINVAL spurious (before, X is legitimately in the way).
  for (;;) {
    const got = yield* api.read(a, 1);
    if (state.closed && got instanceof Uint8Array && got[0] === 0x5a) break;
    yield* ctx.sched_yield('poll');
  }
  ctx.mark('created-after-close');
  const b = uapi.drm_i915_gem_userptr.encode({ user_ptr: a, user_size: PAGE, flags: 0 });
  yield* api.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_USERPTR, b);
}

/** USERPTR of [a, a + size). */
function* createUserptr(api: UserApi, fd: number, a: number, size: number): KGen {
  const b = uapi.drm_i915_gem_userptr.encode({ user_ptr: a, user_size: size, flags: 0 });
  yield* api.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_USERPTR, b);
}

/** Marks `goal`, then USERPTR of [a, a + size). */
function* markThenCreate(
  ctx: RunContext,
  api: UserApi,
  goal: string,
  fd: number,
  a: number,
  size: number,
): KGen {
  ctx.mark(goal);
  yield* createUserptr(api, fd, a, size);
}

/** token-clobber's child: blit (noting every attempt), then wait when accepted. */
function* execbufCountingWorkers(
  ctx: RunContext,
  api: UserApi,
  fd: number,
  eb: Uint8Array,
  x: number,
  results: number[],
): KGen {
  const r = yield* ioctlRetry(ctx, api, fd, EB, eb, 'execbuffer2', results);
  if (results.filter((v) => v === EAGAIN).length >= 2) ctx.mark('two-workers');
  if (r === 0) yield* gemWait(api, fd, x);
}

/**
 * aliased-gtt-mmap's thread: SET_TILING zaps the buffer's GTT mapping under struct_mutex, and the
 * zap's invalidation reaches the userptr object over that mapping.
 */
function* setTilingX(ctx: RunContext, api: UserApi, fd: number, bo: number): KGen {
  const b = uapi.drm_i915_gem_set_tiling.encode({ handle: bo, tiling_mode: uapi.I915_TILING_X, stride: 512 });
  ctx.mark('retiling');
  yield* api.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_SET_TILING, b);
}

/** fast-gup-during-invalidate's blitter. */
function* execbufDuringUnmap(
  ctx: RunContext,
  api: UserApi,
  fd: number,
  eb: Uint8Array,
  x: number,
  state: { unmapping: boolean },
): KGen {
  const r = yield* ioctlRetry(ctx, api, fd, EB, eb, 'execbuffer2');
  if (state.unmapping) ctx.mark('blit-during-munmap');
  if (r === 0) yield* gemWait(api, fd, x);
}

/** fast-gup-during-invalidate's unmapper: the flag is up while munmap runs. */
function* unmapFlagged(api: UserApi, a: number, len: number, state: { unmapping: boolean }): KGen {
  state.unmapping = true;
  yield* api.munmap(a, len);
  state.unmapping = false;
}

/** mmu-object-leak's threads: create an object on [a, a + PAGE) and close it. */
function* createThenClose(ctx: RunContext, api: UserApi, fd: number, a: number): KGen {
  const b = uapi.drm_i915_gem_userptr.encode({ user_ptr: a, user_size: PAGE, flags: 0 });
  if ((yield* api.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_USERPTR, b)) !== 0) return;
  yield* gemClose(api, fd, uapi.drm_i915_gem_userptr.decode(b).handle);
  ctx.mark('closed');
}

/** worker-gup-during-invalidate: one execbuffer attempt, noting a worker queued during the drop. */
function* execbufNotingDrop(
  ctx: RunContext,
  api: UserApi,
  fd: number,
  eb: Uint8Array,
  state: { dropping: boolean },
): KGen<number> {
  const r = yield* api.ioctl(fd, EB, eb);
  if (r === EAGAIN && state.dropping) ctx.mark('worker-queued-during-madvise');
  return r;
}

/** worker-gup-during-invalidate's blitter: `rounds` blits, each waited for when accepted. */
function* execbufRounds(
  ctx: RunContext,
  api: UserApi,
  fd: number,
  eb: Uint8Array,
  x: number,
  rounds: number,
  state: { dropping: boolean },
): KGen {
  for (let i = 0; i < rounds; i++) {
    const r = yield* retrying(ctx, 'execbuffer2', () => execbufNotingDrop(ctx, api, fd, eb, state));
    if (r === 0) yield* gemWait(api, fd, x);
  }
}

/** worker-gup-during-invalidate's dropper: MADV_DONTNEED, then a touch, `rounds` times. */
function* dropRounds(api: UserApi, a: number, rounds: number, state: { dropping: boolean }): KGen {
  for (let i = 0; i < rounds; i++) {
    state.dropping = true;
    yield* api.madvise(a, PAGE, uapi.MADV_DONTNEED);
    state.dropping = false;
    yield* api.write(a, new Uint8Array([i + 1]));
  }
}

/** v6-no-recheck's submitters: the second to finish marks the goal. */
function* execbufThenCount(
  ctx: RunContext,
  api: UserApi,
  fd: number,
  eb: Uint8Array,
  state: { done: number },
): KGen {
  yield* ioctlRetry(ctx, api, fd, EB, eb, 'execbuffer2');
  if (++state.done === 2) ctx.mark('both-submitted');
}

/** v18-dangling-pages: two blits (st_set_pages may fail), then wait and close. */
function* execbufTwiceWaitClose(ctx: RunContext, api: UserApi, fd: number, eb: Uint8Array, x: number): KGen {
  for (let i = 0; i < 2; i++) {
    const r = yield* api.ioctl(fd, EB, eb);
    if (r === -ERRNO.ENOMEM) ctx.mark('set-pages-failed');
  }
  yield* gemWait(api, fd, x);
  yield* gemClose(api, fd, x);
}
