import { ERRNO, type Finding, type Process, type UserApi, uapi, user } from '../../src/index.js';
import { fill, fillExecbuf, unbindableExecbuf } from '../../src/scenarios/common.js';
import type { KGen } from '../../src/sched/task.js';

/**
 * What the userptr tests do as a client would: create objects, lay out and submit blits, wait,
 * read back. Everything goes through the public ABI (byte structs, real request numbers).
 */

export const RW = uapi.PROT_READ | uapi.PROT_WRITE;
export const ANON = uapi.MAP_PRIVATE | uapi.MAP_ANONYMOUS;
export const PAGE = 4096;
/** A 128 x 128 32-bpp surface: 64 KiB, 16 pages, pitch 512. */
export const W = 128;
export const SIZE = W * W * 4;

/** DRM_IOCTL_I915_GEM_USERPTR, raw: the handle, or the ErrnoError thrown. */
export function userptr(p: Process, fd: number, ptr: number, size: number, flags = 0): number {
  const b = uapi.drm_i915_gem_userptr.encode({ user_ptr: ptr, user_size: size, flags });
  p.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_USERPTR, b);
  return uapi.drm_i915_gem_userptr.decode(b).handle;
}

/** The same through libdrm's drmIoctl (EAGAIN while an old object's workers drain is retried). */
export function drmUserptr(p: Process, fd: number, ptr: number, size: number, flags = 0): number {
  const b = uapi.drm_i915_gem_userptr.encode({ user_ptr: ptr, user_size: size, flags });
  p.drmIoctl(fd, uapi.DRM_IOCTL_I915_GEM_USERPTR, b);
  return uapi.drm_i915_gem_userptr.decode(b).handle;
}

/** 'OK', or the errno name (or text) of what `f` threw. */
export function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
  return 'OK';
}

export function gemClose(p: Process, fd: number, handle: number): void {
  p.ioctl(fd, uapi.DRM_IOCTL_GEM_CLOSE, uapi.drm_gem_close.encode({ handle }));
}

export function words(bytes: Uint8Array): Uint32Array {
  return new Uint32Array(bytes.slice().buffer);
}

export function allWords(bytes: Uint8Array, value: number): boolean {
  return words(bytes).every((w) => w === value >>> 0);
}

export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** Findings as `kind: message head` (the message up to its first colon). */
export function kinds(fs: Finding[]): string[] {
  return fs.map((f) => `${f.kind}: ${f.message.split(':')[0]!}`);
}

// --- blits --------------------------------------------------------------------------------------

/** A solid fill of a W x W surface. */
export function fillBatch(gen: 7 | 8, dst: number, color: number): user.BlitBatch {
  return new user.BlitBatch(gen).fill({ dst, color, x2: W, y2: W, pitch: W * 4 }).end();
}

/** A copy of one W x W surface into another. */
export function copyBatch(gen: 7 | 8, dst: number, src: number): user.BlitBatch {
  return new user.BlitBatch(gen)
    .copy({ dst, src, width: W, height: W, dst_pitch: W * 4, src_pitch: W * 4 })
    .end();
}

/** Uploads a batch into a fresh GEM object; its handle. */
export function upload(p: Process, fd: number, b: user.BlitBatch): number {
  const bb = user.gem_create(p, fd, Math.max(PAGE, b.length));
  user.gem_write(p, fd, bb, 0, b.bytes());
  return bb;
}

/** EXECBUFFER2 on the blitter with libdrm's retry (EAGAIN from a get-pages worker included). */
export function exec(
  p: Process,
  fd: number,
  b: user.BlitBatch,
  bb: number,
  objects: readonly number[],
): void {
  user.execbuf(p, fd, {
    objects: objects.map((handle) => ({ handle })),
    batch: { handle: bb, len: 0, relocs: b.relocs },
    ring: 'blt',
  });
}

/** Uploads, executes (retrying EAGAIN), waits for `objects[0]` and frees the batch. */
export function blit(p: Process, fd: number, b: user.BlitBatch, objects: readonly number[]): void {
  const bb = upload(p, fd, b);
  try {
    exec(p, fd, b, bb, objects);
    user.gem_wait(p, fd, objects[0]!);
  } finally {
    user.gem_close(p, fd, bb);
  }
}

/** Submits without waiting; the batch handle is closed at once (the request keeps it alive). */
export function submit(p: Process, fd: number, b: user.BlitBatch, objects: readonly number[]): void {
  const bb = upload(p, fd, b);
  exec(p, fd, b, bb, objects);
  user.gem_close(p, fd, bb);
}

// --- threads driven by a chooser (the race tests) -------------------------------------------------

/** An execbuffer filling `pages` pages of `dst` on the blitter, laid out in the process. */
export { fillExecbuf };

/** Fill `pages` pages of `dst` on the blitter and wait: the object gets its pages. */
export { fill };

/** An execbuffer in which `x` acquires its pages and then never fits (-ENOSPC). */
export { unbindableExecbuf };

/**
 * A blit into `h`, waited for: the object then holds its pages (and is bound), which is what an
 * invalidation has to cancel since 4.2 (an object holding nothing is skipped).
 */
export function fillAndWait(p: Process, fd: number, h: number): void {
  p.drmIoctl(fd, uapi.DRM_IOCTL_I915_GEM_EXECBUFFER2, fillExecbuf(p, fd, h, 1));
  user.gem_wait(p, fd, h);
}

/** drmIoctl() in a thread: repeats on -EAGAIN, backing off with sched_yield; every result kept. */
export function* retry(
  api: UserApi,
  fd: number,
  request: number,
  arg: Uint8Array,
  results: number[],
): KGen<number> {
  for (;;) {
    const r = yield* api.ioctl(fd, request, arg);
    results.push(r);
    if (r !== -ERRNO.EAGAIN) return r;
    yield { op: 'sched_yield' };
  }
}

/** GEM_CLOSE from a thread. */
export function* gemCloseIn(api: UserApi, fd: number, handle: number): KGen<number> {
  return yield* api.ioctl(fd, uapi.DRM_IOCTL_GEM_CLOSE, uapi.drm_gem_close.encode({ handle }));
}
