import { ERRNO } from '../base/errno.js';
import { ErrnoError } from '../kernel/errors.js';
import type { Machine } from '../kernel/machine.js';
import type { Process, UserApi } from '../kernel/process.js';
import { type RunContext, type Scenario, retrying } from '../explore/index.js';
import type { KGen } from '../sched/task.js';
import * as uapi from '../uapi/index.js';
import * as user from '../user/index.js';

/** Helpers shared by the scenarios: the user side of a userptr program. */

export const PAGE = 4096;
export const RW = uapi.PROT_READ | uapi.PROT_WRITE;
export const ANON = uapi.MAP_PRIVATE | uapi.MAP_ANONYMOUS;
export const CARD = '/dev/dri/card0';

/** A scenario that shows one bug switch: the switch it is for and the finding it expects. */
export interface BugScenario extends Scenario {
  /** The bug switch this scenario shows. */
  bug: string;
  /** The finding's kind, and a piece of its message. */
  expect: { kind: string; message: string };
  /**
   * A finding the correct design (switch off) is known to show in this scenario, not a bug of
   * the design but of a check, reported to its owners: its template. The zoo shows it and does
   * not count it; a test fails once it is gone, so the note is removed.
   */
  knownOff?: { template: string; why: string };
}

/** The finding is the one `s` expects. */
export function isExpected(s: BugScenario, f: { kind: string; message: string }): boolean {
  return s.expect.kind.split('|').includes(f.kind) && f.message.includes(s.expect.message);
}

/** `scenario` with another set of bug switches (the same name: the config hash tells them apart). */
export function withBugs<S extends Scenario>(scenario: S, bugs: readonly string[]): S {
  return { ...scenario, config: { ...scenario.config, bugs: [...bugs] } };
}

/** DRM_IOCTL_I915_GEM_USERPTR through the sync facade, retried like drmIoctl; the handle. */
export function userptr(p: Process, fd: number, ptr: number, size: number, flags = 0): number {
  const b = uapi.drm_i915_gem_userptr.encode({ user_ptr: ptr, user_size: size, flags });
  p.drmIoctl(fd, uapi.DRM_IOCTL_I915_GEM_USERPTR, b);
  return uapi.drm_i915_gem_userptr.decode(b).handle;
}

/** USERPTR without throwing: the handle, or -errno. */
export function tryUserptr(p: Process, fd: number, ptr: number, size: number, flags = 0): number {
  try {
    return userptr(p, fd, ptr, size, flags);
  } catch (e) {
    if (e instanceof ErrnoError) return -e.errno;
    throw e;
  }
}

/** An execbuffer filling `pages` pages of `dst` on the blitter (pitch one page), laid out in `p`. */
export function fillExecbuf(
  p: Process,
  fd: number,
  dst: number,
  pages: number,
  color = 0x5a5a5a5a,
): Uint8Array {
  const b = new user.BlitBatch(7).fill({ dst, color, x2: PAGE / 4, y2: pages, pitch: PAGE }).end();
  const batch = user.gem_create(p, fd, PAGE);
  user.gem_write(p, fd, batch, 0, b.bytes());
  return user.build_execbuf(p, {
    objects: [{ handle: dst }],
    batch: { handle: batch, len: 0, relocs: b.relocs },
    ring: 'blt',
  }).execbuffer;
}

/**
 * An execbuffer whose list is [`first`, `x` aligned to 2 GiB, an empty batch]: `first` takes GTT
 * offset 0, the only 2 GiB-aligned offset of the 2 GiB GTT, so `x` acquires its pages and then
 * never fits (-ENOSPC): the page acquisition is all that happens to `x`.
 */
export function unbindableExecbuf(p: Process, fd: number, first: number, x: number): Uint8Array {
  const b = new user.BlitBatch(7).end();
  const batch = user.gem_create(p, fd, PAGE);
  user.gem_write(p, fd, batch, 0, b.bytes());
  return user.build_execbuf(p, {
    objects: [{ handle: first }, { handle: x, alignment: 2 ** 31 }],
    batch: { handle: batch, len: 0, relocs: b.relocs },
    ring: 'blt',
  }).execbuffer;
}

/** Fills `pages` pages of `dst` and waits (sync facade): the object gets pages. */
export function fill(p: Process, fd: number, dst: number, pages: number, color = 0x5a5a5a5a): void {
  const b = new user.BlitBatch(7).fill({ dst, color, x2: PAGE / 4, y2: pages, pitch: PAGE }).end();
  const batch = user.gem_create(p, fd, PAGE);
  user.gem_write(p, fd, batch, 0, b.bytes());
  user.execbuf(p, fd, {
    objects: [{ handle: dst }],
    batch: { handle: batch, len: 0, relocs: b.relocs },
    ring: 'blt',
  });
  user.gem_wait(p, fd, dst);
  user.gem_close(p, fd, batch);
}

/**
 * An ioctl in a thread, retried on -EAGAIN/-EINTR through the explorer's liveness hooks. Plain
 * functions returning generators, not generators delegating: every step of the ioctl runs through
 * one generator level less.
 */
export function ioctlRetry(
  ctx: RunContext,
  api: UserApi,
  fd: number,
  request: number,
  arg: Uint8Array,
  what: string,
  results?: number[],
): KGen<number> {
  return retrying(
    ctx,
    what,
    results ? () => ioctlRecorded(api, fd, request, arg, results) : () => api.ioctl(fd, request, arg),
  );
}

/**
 * One attempt of `ioctlRetry` that records its result. A module-level generator, not a closure:
 * V8 gives every fresh generator closure it runs a map of its own that keeps the closure (and so
 * the whole machine) alive until the next full GC — see `test/perf-hygiene.test.ts`.
 */
function* ioctlRecorded(
  api: UserApi,
  fd: number,
  request: number,
  arg: Uint8Array,
  results: number[],
): KGen<number> {
  const r = yield* api.ioctl(fd, request, arg);
  results.push(r);
  return r;
}

/** GEM_CLOSE in a thread. (Like ioctlRetry, a plain function: the ioctl's generator is returned.) */
export function gemClose(api: UserApi, fd: number, handle: number): KGen<number> {
  return api.ioctl(fd, uapi.DRM_IOCTL_GEM_CLOSE, uapi.drm_gem_close.encode({ handle }));
}

/** GEM_WAIT in a thread (forever). */
export function gemWait(api: UserApi, fd: number, handle: number): KGen<number> {
  const b = uapi.drm_i915_gem_wait.encode({ bo_handle: handle, flags: 0, timeout_ns: -1n });
  return api.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_WAIT, b);
}

/**
 * EXECBUFFER2 retried as drmIoctl does, then GEM_WAIT on `handle` when it was accepted: a
 * program that blits and waits for the result. Returns the execbuffer's result.
 */
export function* submitAndWait(
  ctx: RunContext,
  api: UserApi,
  fd: number,
  execbuffer: Uint8Array,
  handle: number,
  results?: number[],
): KGen<number> {
  const r = yield* ioctlRetry(
    ctx,
    api,
    fd,
    uapi.DRM_IOCTL_I915_GEM_EXECBUFFER2,
    execbuffer,
    'execbuffer2',
    results,
  );
  if (r === 0) yield* gemWait(api, fd, handle);
  return r;
}

/** Runs `fn`, swallowing the errno a racing program may legitimately get (-EFAULT, -EINVAL…). */
export function tolerate(fn: () => void, ...errnos: number[]): number {
  try {
    fn();
    return 0;
  } catch (e) {
    if (e instanceof ErrnoError && (errnos.length === 0 || errnos.includes(e.errno))) return -e.errno;
    throw e;
  }
}

export const EAGAIN = -ERRNO.EAGAIN;

/** Spawns a process with the card open. */
export function proc(m: Machine, uid = 1000): { p: Process; fd: number } {
  const p = m.spawn({ uid });
  return { p, fd: p.open(CARD) };
}

/** A process with one resident page `a` wrapped in a userptr object `x` (the fast path can pin it). */
export function residentUserptr(m: Machine): { p: Process; fd: number; a: number; x: number } {
  const { p, fd } = proc(m);
  const a = p.mmap(0, PAGE, RW, ANON);
  p.write(a, new Uint8Array(PAGE));
  return { p, fd, a, x: userptr(p, fd, a, PAGE) };
}
