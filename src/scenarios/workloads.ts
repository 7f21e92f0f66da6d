import type { RunContext, Scenario } from '../explore/index.js';
import type { UserApi } from '../kernel/process.js';
import type { KGen } from '../sched/task.js';
import * as uapi from '../uapi/index.js';
import {
  ANON,
  PAGE,
  RW,
  fillExecbuf,
  gemClose,
  gemWait,
  ioctlRetry,
  submitAndWait,
  proc,
  userptr,
} from './common.js';

/**
 * Workloads: several processes creating, using, unmapping, forking and exiting around userptr
 * objects. They run clean on the correct design; the zoo explores them to show it.
 */

const EB = uapi.DRM_IOCTL_I915_GEM_EXECBUFFER2;

/**
 * The standard three-task userptr scenario (the explorer's benchmark): one thread of a process
 * creates a userptr object over its buffer, blits into it, waits and closes it; a second thread
 * of the same process unmaps the buffer; a second process blits into its own userptr object.
 */
export const THREE_TASK: Scenario = {
  name: 'workload/three-task',
  description:
    'a thread blits into a userptr object, waits and closes it while another unmaps its buffer; a second process blits into its own',
  // A small machine: the program needs a few dozen frames, and a boot's first RAM chunk is
  // min(ramBytes, 4 MiB) of zeroed ArrayBuffer (the explorer boots one machine per schedule).
  config: { ramBytes: 512 * 1024 },
  goals: [{ name: 'used' }, { name: 'other-used' }],
  run(m, ctx) {
    const { p: p1, fd: fd1 } = proc(m);
    const { p: p2, fd: fd2 } = proc(m);
    const a = p1.mmap(0, PAGE, RW, ANON);
    p1.write(a, ZERO_PAGE);
    const h1 = userptr(p1, fd1, a, PAGE);
    const eb1 = fillExecbuf(p1, fd1, h1, 1, 0x11111111);
    const b = p2.mmap(0, PAGE, RW, ANON);
    const h2 = userptr(p2, fd2, b, PAGE);
    const eb2 = fillExecbuf(p2, fd2, h2, 1, 0x22222222);
    // Thread bodies are module-level generators (see ioctlAttempt in common.ts for why).
    p1.thread('use', (api) => useThenClose(ctx, api, fd1, eb1, h1));
    p1.thread('munmap', (api) => api.munmap(a, PAGE));
    p2.thread('use', (api) => use(ctx, api, fd2, eb2, h2));
  },
};

/** A page of zeros to store (only read: write(2) copies it). */
const ZERO_PAGE = new Uint8Array(PAGE);

/** THREE_TASK's first thread: blit, wait and mark 'used' when accepted; close the object. */
function* useThenClose(ctx: RunContext, api: UserApi, fd: number, eb: Uint8Array, h: number): KGen {
  const r = yield* ioctlRetry(ctx, api, fd, EB, eb, 'execbuffer2');
  if (r === 0) {
    yield* gemWait(api, fd, h);
    ctx.mark('used');
  }
  yield* gemClose(api, fd, h);
}

/** THREE_TASK's other process: blit, then wait and mark 'other-used' when accepted. */
function* use(ctx: RunContext, api: UserApi, fd: number, eb: Uint8Array, h: number): KGen {
  const r = yield* ioctlRetry(ctx, api, fd, EB, eb, 'execbuffer2');
  if (r !== 0) return;
  yield* gemWait(api, fd, h);
  ctx.mark('other-used');
}

export const WORKLOADS: Scenario[] = [
  THREE_TASK,
  {
    name: 'workload/zero-copy',
    description:
      'two processes each blit into a userptr buffer and read it back, one unmaps while the other forks a child that exits',
    config: {},
    goals: [{ name: 'blit-done' }, { name: 'read-back' }, { name: 'child-exited' }],
    run(m, ctx) {
      const { p: p1, fd: fd1 } = proc(m);
      const { p: p2, fd: fd2 } = proc(m);
      const a = p1.mmap(0, 2 * PAGE, RW, ANON);
      p1.write(a, new Uint8Array(2 * PAGE));
      const h1 = userptr(p1, fd1, a, 2 * PAGE);
      const eb1 = fillExecbuf(p1, fd1, h1, 2, 0x11111111);
      const b = p2.mmap(0, PAGE, RW, ANON);
      const h2 = userptr(p2, fd2, b, PAGE);
      const eb2 = fillExecbuf(p2, fd2, h2, 1, 0x22222222);
      p1.thread('blit', (api) => blitReadUnmap(ctx, api, fd1, eb1, h1, a));
      p1.thread('close', (api) => yieldThenClose(ctx, api, fd1, h1));
      p2.thread('blit', (api) => submitAndWait(ctx, api, fd2, eb2, h2));
      const child = p2.fork();
      child.thread('exit', (api) => touchAndMark(ctx, api, b));
    },
  },
  {
    name: 'workload/churn',
    description:
      'one process creates, uses and closes userptr objects on one range while another thread remaps and drops pages of it',
    config: {},
    goals: [{ name: 'created' }, { name: 'dropped' }],
    run(m, ctx) {
      const { p, fd } = proc(m);
      const a = p.mmap(0, 2 * PAGE, RW, ANON);
      p.write(a, new Uint8Array(2 * PAGE));
      p.thread('churn', (api) => churn(ctx, api, fd, a));
      p.thread('madvise', (api) => dropPages(ctx, api, a));
    },
  },
];

/** zero-copy's blitter: blit, wait, read the result back, unmap. */
function* blitReadUnmap(
  ctx: RunContext,
  api: UserApi,
  fd: number,
  eb: Uint8Array,
  h: number,
  a: number,
): KGen {
  const r = yield* ioctlRetry(ctx, api, fd, EB, eb, 'execbuffer2');
  if (r !== 0) return;
  yield* gemWait(api, fd, h);
  ctx.mark('blit-done');
  const got = yield* api.read(a, 4);
  if (got instanceof Uint8Array && got[0] === 0x11) ctx.mark('read-back');
  yield* api.munmap(a, 2 * PAGE);
}

/** zero-copy's closer: lets the others go first, then closes the object. */
function* yieldThenClose(ctx: RunContext, api: UserApi, fd: number, h: number): KGen {
  yield* ctx.sched_yield();
  yield* gemClose(api, fd, h);
}

/** zero-copy's child: one write (a COW fault), then it exits. */
function* touchAndMark(ctx: RunContext, api: UserApi, b: number): KGen {
  yield* api.write(b, new Uint8Array([7]));
  ctx.mark('child-exited');
}

/** churn's creator: twice, a userptr object over the first page, created and closed. */
function* churn(ctx: RunContext, api: UserApi, fd: number, a: number): KGen {
  for (let i = 0; i < 2; i++) {
    const b = uapi.drm_i915_gem_userptr.encode({ user_ptr: a, user_size: PAGE, flags: 0 });
    const r = yield* ioctlRetry(ctx, api, fd, uapi.DRM_IOCTL_I915_GEM_USERPTR, b, 'userptr');
    if (r !== 0) continue;
    ctx.mark('created');
    const h = uapi.drm_i915_gem_userptr.decode(b).handle;
    yield* gemClose(api, fd, h);
  }
}

/** churn's other thread: drops the second page, touches it again, drops the first. */
function* dropPages(ctx: RunContext, api: UserApi, a: number): KGen {
  yield* api.madvise(a + PAGE, PAGE, uapi.MADV_DONTNEED);
  yield* api.write(a + PAGE, new Uint8Array([1]));
  yield* api.madvise(a, PAGE, uapi.MADV_DONTNEED);
  ctx.mark('dropped');
}
