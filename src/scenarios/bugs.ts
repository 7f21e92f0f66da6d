import type { Machine } from '../kernel/machine.js';
import type { Process } from '../kernel/process.js';
import { ERRNO } from '../base/errno.js';
import { ErrnoError } from '../kernel/errors.js';
import { type RunContext, retrying } from '../explore/index.js';
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
  tryUserptr,
  userptr,
} from './common.js';

/**
 * One scenario per bug switch: user threads racing over a userptr object, in which the explorer
 * finds the switch's finding (with the switch on) and nothing (with it off). Setup runs through
 * the sync facade (its interleavings are decisions too); the racy part runs in threads.
 */

const EB = uapi.DRM_IOCTL_I915_GEM_EXECBUFFER2;

/**
 * An execbuffer whose list is [`first`, `x` aligned to 2 GiB, an empty batch]: `first` takes GTT
 * offset 0, the only 2 GiB-aligned offset of the 2 GiB GTT, so `x` acquires its pages and then
 * never fits (-ENOSPC): the page acquisition is all that happens to `x`.
 */
function unbindableExecbuf(p: Process, fd: number, first: number, x: number): Uint8Array {
  const b = new user.BlitBatch(7).end();
  const batch = user.gem_create(p, fd, PAGE);
  user.gem_write(p, fd, batch, 0, b.bytes());
  return user.build_execbuf(p, {
    objects: [{ handle: first }, { handle: x, alignment: 2 ** 31 }],
    batch: { handle: batch, len: 0, relocs: b.relocs },
    ring: 'blt',
  }).execbuffer;
}

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
      p.thread('wait', (api) => gemWait(api, fd, h));
      p.thread('munmap', function* (api) {
        ctx.mark('unmapped-with-pages');
        yield* api.munmap(a, 2 * PAGE);
      });
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
      p.thread('blit', function* (api) {
        ctx.mark('other-object-busy');
        yield* ioctlRetry(ctx, api, fd, EB, eb, 'execbuffer2');
      });
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
      p.thread('scratch', function* (api) {
        const o = yield* api.mmap(0, PAGE, RW, ANON);
        yield* api.write(o, new Uint8Array([1]));
        ctx.mark('unrelated-munmap');
        yield* api.munmap(o, PAGE);
      });
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
      p.thread('blit', function* (api) {
        yield* submitAndWait(ctx, api, fd, eb, h);
      });
      p.thread('munmap', function* (api) {
        ctx.mark('slow-path-and-munmap');
        yield* api.munmap(a, 2 * PAGE);
      });
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
      child.thread('blit', function* (api) {
        ctx.mark('child-after-exit');
        yield* submitAndWait(ctx, api, fd, eb, h);
      });
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
      userptr(p2, fd2, b, PAGE);
      p1.thread('close', (api) => gemClose(api, fd1, x));
      p2.thread('munmap', function* (api) {
        ctx.mark('close-and-munmap');
        yield* api.munmap(b, PAGE);
      });
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
      p.thread('execbuf', function* (api) {
        yield* submitAndWait(ctx, api, fd, eb, h, results);
      });
      p.thread('munmap', function* (api) {
        yield* api.munmap(a, 2 * PAGE);
        if (results.length > 0 && results.at(-1) === EAGAIN) ctx.mark('munmap-while-worker-queued');
      });
    },
  ),
  bug(
    'v17-no-retire',
    'a thread blits into an object and closes it; another creates an object on the same range',
    { kind: 'invariant', message: 'I-NOSPURIOUS' },
    ['created-after-close'],
    (m, ctx) => {
      const { p, fd } = proc(m);
      const a = p.mmap(0, PAGE, RW, ANON);
      p.write(a, new Uint8Array(PAGE));
      const x = userptr(p, fd, a, PAGE);
      const eb = fillExecbuf(p, fd, x, 1);
      let closed = false;
      p.thread('first', function* (api) {
        yield* ioctlRetry(ctx, api, fd, EB, eb, 'execbuffer2');
        yield* gemClose(api, fd, x);
        closed = true;
      });
      p.thread('again', function* (api) {
        // Waits, as a program polling its own memory would, until the blit landed and X was
        // closed: only then is an -EINVAL spurious (before, X is legitimately in the way).
        for (;;) {
          const got = yield* api.read(a, 1);
          if (closed && got instanceof Uint8Array && got[0] === 0x5a) break;
          yield* ctx.sched_yield('poll');
        }
        ctx.mark('created-after-close');
        const b = uapi.drm_i915_gem_userptr.encode({ user_ptr: a, user_size: PAGE, flags: 0 });
        yield* api.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_USERPTR, b);
      });
    },
  ),
  bug(
    'dying-object-ref',
    "a thread closes an object's last handle while another unmaps its range",
    { kind: 'WARN', message: 'kref_get' },
    ['close-and-munmap'],
    (m, ctx) => {
      const { p, fd } = proc(m);
      const a = p.mmap(0, PAGE, RW, ANON);
      p.write(a, new Uint8Array(PAGE));
      const x = userptr(p, fd, a, PAGE);
      p.thread('close', (api) => gemClose(api, fd, x));
      p.thread('munmap', function* (api) {
        ctx.mark('close-and-munmap');
        yield* api.munmap(a, PAGE);
      });
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
      p.thread('create', function* (api) {
        const b = uapi.drm_i915_gem_userptr.encode({ user_ptr: a, user_size: PAGE, flags: 0 });
        yield* api.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_USERPTR, b);
      });
      p.thread('munmap', function* (api) {
        ctx.mark('create-and-munmap');
        yield* api.munmap(c, PAGE);
      });
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
      c.thread('execbuf', function* (api) {
        const r = yield* ioctlRetry(ctx, api, fd, EB, eb, 'execbuffer2', results);
        if (results.filter((v) => v === EAGAIN).length >= 2) ctx.mark('two-workers');
        if (r === 0) yield* gemWait(api, fd, x);
      });
      p.thread('madvise', (api) => api.madvise(a, PAGE, uapi.MADV_DONTNEED));
    },
  ),
  bug(
    'fast-gup-during-invalidate',
    'a thread blits into a resident buffer (the fast path pins) while another unmaps it',
    { kind: 'coherence', message: 'I-NOSTALE' },
    ['blit-during-munmap'],
    (m, ctx) => {
      const { p, fd } = proc(m);
      const a = p.mmap(0, PAGE, RW, ANON);
      p.write(a, new Uint8Array(PAGE));
      const x = userptr(p, fd, a, PAGE);
      const eb = fillExecbuf(p, fd, x, 1);
      let unmapping = false;
      p.thread('execbuf', function* (api) {
        const r = yield* ioctlRetry(ctx, api, fd, EB, eb, 'execbuffer2');
        if (unmapping) ctx.mark('blit-during-munmap');
        if (r === 0) yield* gemWait(api, fd, x);
      });
      p.thread('munmap', function* (api) {
        unmapping = true;
        yield* api.munmap(a, PAGE);
        unmapping = false;
      });
    },
  ),
  bug(
    'zero-size',
    'a thread asks for a zero-sized userptr object',
    { kind: 'BUG', message: 'inverted interval' },
    ['asked'],
    (m, ctx) => {
      const { p, fd } = proc(m);
      const a = p.mmap(0, PAGE, RW, ANON);
      p.thread('create', function* (api) {
        ctx.mark('asked');
        const b = uapi.drm_i915_gem_userptr.encode({ user_ptr: a, user_size: 0, flags: 0 });
        yield* api.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_USERPTR, b);
      });
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
        p.thread(t, function* (api) {
          const b = uapi.drm_i915_gem_userptr.encode({ user_ptr: a, user_size: PAGE, flags: 0 });
          if ((yield* api.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_USERPTR, b)) !== 0) return;
          yield* gemClose(api, fd, uapi.drm_i915_gem_userptr.decode(b).handle);
          ctx.mark('closed');
        });
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
    'worker-gup-during-invalidate',
    'a thread blits into a resident buffer while another drops its page with MADV_DONTNEED (mmap_sem read only): a worker pins it before the zap',
    { kind: 'coherence', message: 'I-NOSTALE' },
    ['worker-queued-during-madvise'],
    (m, ctx) => {
      const { p, fd } = proc(m);
      const a = p.mmap(0, PAGE, RW, ANON);
      p.write(a, new Uint8Array(PAGE));
      const x = userptr(p, fd, a, PAGE);
      const eb = fillExecbuf(p, fd, x, 1);
      // Each round is one more chance at the window between invalidate_range_start and the zap.
      const ROUNDS = 2;
      let dropping = false;
      p.thread('execbuf', function* (api) {
        for (let i = 0; i < ROUNDS; i++) {
          const r = yield* retrying(ctx, 'execbuffer2', function* () {
            const r = yield* api.ioctl(fd, EB, eb);
            if (r === EAGAIN && dropping) ctx.mark('worker-queued-during-madvise');
            return r;
          });
          if (r === 0) yield* gemWait(api, fd, x);
        }
      });
      p.thread('madvise', function* (api) {
        for (let i = 0; i < ROUNDS; i++) {
          dropping = true;
          yield* api.madvise(a, PAGE, uapi.MADV_DONTNEED);
          dropping = false;
          yield* api.write(a, new Uint8Array([i + 1]));
        }
      });
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
      let done = 0;
      for (const [t, eb] of [
        ['first', eb1],
        ['second', eb2],
      ] as const) {
        p.thread(t, function* (api) {
          yield* ioctlRetry(ctx, api, fd, EB, eb, 'execbuffer2');
          if (++done === 2) ctx.mark('both-submitted');
        });
      }
    },
  ),
  bug(
    'v18-dangling-pages',
    'a thread blits into a resident userptr buffer twice, waits and closes it; st_set_pages may fail',
    { kind: 'invariant', message: 'I-PAGES' },
    ['set-pages-failed'],
    (m, ctx) => {
      const { p, fd } = proc(m);
      const a = p.mmap(0, PAGE, RW, ANON);
      p.write(a, new Uint8Array(PAGE));
      const x = userptr(p, fd, a, PAGE);
      const eb = fillExecbuf(p, fd, x, 1);
      p.thread('execbuf', function* (api) {
        for (let i = 0; i < 2; i++) {
          const r = yield* api.ioctl(fd, EB, eb);
          if (r === -ERRNO.ENOMEM) ctx.mark('set-pages-failed');
        }
        yield* gemWait(api, fd, x);
        yield* gemClose(api, fd, x);
      });
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
      p.thread('munmap', function* (api) {
        if (shown) ctx.mark('unmapped-while-scanned-out');
        yield* api.munmap(a, len);
      });
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
