import type { Process } from '../kernel/process.js';
import * as uapi from '../uapi/index.js';

/**
 * libdrm / GPU-test-suite style wrappers (IGT lib/ioctl_wrappers.c, libdrm xf86drm.c) over the
 * PUBLIC process interface: every call is a real ioctl with the real request number and the
 * struct bytes of i915_drm.h. Failures throw the `ErrnoError` the process raised; EINTR and
 * EAGAIN are retried as libdrm's drmIoctl() does.
 *
 * Where the kernel wants a user pointer (PREAD/PWRITE data, GETPARAM's value), the helper maps an
 * anonymous bounce buffer in the process for the duration of the call.
 */

const RW = uapi.PROT_READ | uapi.PROT_WRITE;
const PAGE = 4096;

/** drmIoctl(): the ioctl, repeated while it fails with EINTR or EAGAIN. */
export function drmIoctl(p: Process, fd: number, request: number, arg: number | Uint8Array): number {
  return p.drmIoctl(fd, request, arg);
}

/** Runs `fn` with `size` bytes of fresh anonymous memory in the process, unmapped afterwards. */
export function withScratch<T>(p: Process, size: number, fn: (addr: number) => T): T {
  const len = Math.max(PAGE, Math.ceil(size / PAGE) * PAGE);
  const addr = p.mmap(0, len, RW, uapi.MAP_PRIVATE | uapi.MAP_ANONYMOUS);
  try {
    return fn(addr);
  } finally {
    p.munmap(addr, len);
  }
}

// --- objects -----------------------------------------------------------------------------------

/** GEM_CREATE: a new shmem-backed object of at least `size` bytes; its handle. */
export function gem_create(p: Process, fd: number, size: number | bigint): number {
  const arg = uapi.drm_i915_gem_create.encode({ size: BigInt(size) });
  drmIoctl(p, fd, uapi.DRM_IOCTL_I915_GEM_CREATE, arg);
  return uapi.drm_i915_gem_create.decode(arg).handle;
}

/** GEM_CLOSE. */
export function gem_close(p: Process, fd: number, handle: number): void {
  drmIoctl(p, fd, uapi.DRM_IOCTL_GEM_CLOSE, uapi.drm_gem_close.encode({ handle }));
}

/** GEM_FLINK: a global name for the object. */
export function gem_flink(p: Process, fd: number, handle: number): number {
  const arg = uapi.drm_gem_flink.encode({ handle });
  drmIoctl(p, fd, uapi.DRM_IOCTL_GEM_FLINK, arg);
  return uapi.drm_gem_flink.decode(arg).name;
}

/** GEM_OPEN: a handle for a flink name. */
export function gem_open(p: Process, fd: number, name: number): number {
  const arg = uapi.drm_gem_open.encode({ name });
  drmIoctl(p, fd, uapi.DRM_IOCTL_GEM_OPEN, arg);
  return uapi.drm_gem_open.decode(arg).handle;
}

// --- data --------------------------------------------------------------------------------------

/** PREAD into user memory at `data_ptr` (the raw ioctl). */
export function gem_pread(
  p: Process,
  fd: number,
  handle: number,
  offset: number | bigint,
  size: number | bigint,
  data_ptr: number | bigint,
): void {
  const arg = uapi.drm_i915_gem_pread.encode({
    handle,
    offset: BigInt(offset),
    size: BigInt(size),
    data_ptr: BigInt(data_ptr),
  });
  drmIoctl(p, fd, uapi.DRM_IOCTL_I915_GEM_PREAD, arg);
}

/** PWRITE from user memory at `data_ptr` (the raw ioctl). */
export function gem_pwrite(
  p: Process,
  fd: number,
  handle: number,
  offset: number | bigint,
  size: number | bigint,
  data_ptr: number | bigint,
): void {
  const arg = uapi.drm_i915_gem_pwrite.encode({
    handle,
    offset: BigInt(offset),
    size: BigInt(size),
    data_ptr: BigInt(data_ptr),
  });
  drmIoctl(p, fd, uapi.DRM_IOCTL_I915_GEM_PWRITE, arg);
}

/** gem_read(): `length` bytes of the object at `offset`, through a bounce buffer and PREAD. */
export function gem_read(p: Process, fd: number, handle: number, offset: number, length: number): Uint8Array {
  if (length === 0) {
    gem_pread(p, fd, handle, offset, 0, 0);
    return new Uint8Array(0);
  }
  return withScratch(p, length, (buf) => {
    gem_pread(p, fd, handle, offset, length, buf);
    return p.read(buf, length);
  });
}

/** gem_write(): store `bytes` in the object at `offset`, through a bounce buffer and PWRITE. */
export function gem_write(
  p: Process,
  fd: number,
  handle: number,
  offset: number,
  bytes: Uint8Array | ArrayLike<number>,
): void {
  const data = bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes);
  if (data.length === 0) {
    gem_pwrite(p, fd, handle, offset, 0, 0);
    return;
  }
  withScratch(p, data.length, (buf) => {
    p.write(buf, data);
    gem_pwrite(p, fd, handle, offset, data.length, buf);
  });
}

// --- domains, waits ----------------------------------------------------------------------------

/** SET_DOMAIN: wait for the GPU and move the object to the CPU or GTT domain. */
export function gem_set_domain(p: Process, fd: number, handle: number, read: number, write: number): void {
  drmIoctl(
    p,
    fd,
    uapi.DRM_IOCTL_I915_GEM_SET_DOMAIN,
    uapi.drm_i915_gem_set_domain.encode({ handle, read_domains: read, write_domain: write }),
  );
}

/** gem_sync(): wait for all rendering (SET_DOMAIN GTT, GTT), as the GPU test suite does. */
export function gem_sync(p: Process, fd: number, handle: number): void {
  gem_set_domain(p, fd, handle, uapi.I915_GEM_DOMAIN_GTT, uapi.I915_GEM_DOMAIN_GTT);
}

/** SW_FINISH. */
export function gem_sw_finish(p: Process, fd: number, handle: number): void {
  drmIoctl(p, fd, uapi.DRM_IOCTL_I915_GEM_SW_FINISH, uapi.drm_i915_gem_sw_finish.encode({ handle }));
}

/**
 * GEM_WAIT: wait (virtual time) for all rendering; `timeout_ns` < 0 waits forever. Returns the
 * time left; a timeout throws ETIME.
 */
export function gem_wait(p: Process, fd: number, handle: number, timeout_ns: number | bigint = -1n): bigint {
  const arg = uapi.drm_i915_gem_wait.encode({ bo_handle: handle, timeout_ns: BigInt(timeout_ns) });
  drmIoctl(p, fd, uapi.DRM_IOCTL_I915_GEM_WAIT, arg);
  return uapi.drm_i915_gem_wait.decode(arg).timeout_ns;
}

/** GEM_BUSY: the raw `busy` word (bit 0: active; bits 16+: the ring last used). */
export function gem_busy_flags(p: Process, fd: number, handle: number): number {
  const arg = uapi.drm_i915_gem_busy.encode({ handle });
  drmIoctl(p, fd, uapi.DRM_IOCTL_I915_GEM_BUSY, arg);
  return uapi.drm_i915_gem_busy.decode(arg).busy;
}

/** GEM_BUSY: is the GPU still using the object? */
export function gem_busy(p: Process, fd: number, handle: number): boolean {
  return (gem_busy_flags(p, fd, handle) & 0xffff) !== 0;
}

// --- mappings ----------------------------------------------------------------------------------

/**
 * gem_mmap__cpu(): MMAP (the 3.16 32-byte struct) of `size` bytes at `offset` of the object's
 * shmem backing; the CPU address. The kernel maps it read-write whatever `prot` says.
 */
export function gem_mmap__cpu(
  p: Process,
  fd: number,
  handle: number,
  offset: number,
  size: number,
  _prot: number = RW,
): number {
  const arg = uapi.drm_i915_gem_mmap_v1.encode({ handle, offset: BigInt(offset), size: BigInt(size) });
  drmIoctl(p, fd, uapi.DRM_IOCTL_I915_GEM_MMAP_V1, arg);
  return Number(uapi.drm_i915_gem_mmap_v1.decode(arg).addr_ptr);
}

/** gem_mmap__wc(): MMAP with the v2 struct and I915_MMAP_WC. */
export function gem_mmap__wc(p: Process, fd: number, handle: number, offset: number, size: number): number {
  const arg = uapi.drm_i915_gem_mmap.encode({
    handle,
    offset: BigInt(offset),
    size: BigInt(size),
    flags: BigInt(uapi.I915_MMAP_WC),
  });
  drmIoctl(p, fd, uapi.DRM_IOCTL_I915_GEM_MMAP, arg);
  return Number(uapi.drm_i915_gem_mmap.decode(arg).addr_ptr);
}

/** MMAP_GTT: the fake offset to pass to mmap(fd, ...). */
export function gem_mmap_gtt_offset(p: Process, fd: number, handle: number): number {
  const arg = uapi.drm_i915_gem_mmap_gtt.encode({ handle });
  drmIoctl(p, fd, uapi.DRM_IOCTL_I915_GEM_MMAP_GTT, arg);
  return Number(uapi.drm_i915_gem_mmap_gtt.decode(arg).offset);
}

/** gem_mmap__gtt(): MMAP_GTT, then mmap(0, size, prot, MAP_SHARED, fd, offset). */
export function gem_mmap__gtt(
  p: Process,
  fd: number,
  handle: number,
  size: number,
  prot: number = RW,
): number {
  const offset = gem_mmap_gtt_offset(p, fd, handle);
  return p.mmap(0, size, prot, uapi.MAP_SHARED, fd, offset);
}

// --- tiling, caching, madvise, aperture ---------------------------------------------------------

export interface Tiling {
  tiling_mode: number;
  stride: number;
  swizzle_mode: number;
}

/** SET_TILING: the state the kernel settled on. */
export function gem_set_tiling(
  p: Process,
  fd: number,
  handle: number,
  tiling_mode: number,
  stride: number,
): Tiling {
  const arg = uapi.drm_i915_gem_set_tiling.encode({ handle, tiling_mode, stride });
  drmIoctl(p, fd, uapi.DRM_IOCTL_I915_GEM_SET_TILING, arg);
  const r = uapi.drm_i915_gem_set_tiling.decode(arg);
  return { tiling_mode: r.tiling_mode, stride: r.stride, swizzle_mode: r.swizzle_mode };
}

/** GET_TILING (3.16's 12-byte struct). */
export function gem_get_tiling(
  p: Process,
  fd: number,
  handle: number,
): { tiling_mode: number; swizzle_mode: number } {
  const arg = uapi.drm_i915_gem_get_tiling_v1.encode({ handle });
  drmIoctl(p, fd, uapi.DRM_IOCTL_I915_GEM_GET_TILING_V1, arg);
  const r = uapi.drm_i915_gem_get_tiling_v1.decode(arg);
  return { tiling_mode: r.tiling_mode, swizzle_mode: r.swizzle_mode };
}

/** SET_CACHING (I915_CACHING_NONE / CACHED / DISPLAY). */
export function gem_set_caching(p: Process, fd: number, handle: number, caching: number): void {
  drmIoctl(p, fd, uapi.DRM_IOCTL_I915_GEM_SET_CACHING, uapi.drm_i915_gem_caching.encode({ handle, caching }));
}

/** GET_CACHING. */
export function gem_get_caching(p: Process, fd: number, handle: number): number {
  const arg = uapi.drm_i915_gem_caching.encode({ handle });
  drmIoctl(p, fd, uapi.DRM_IOCTL_I915_GEM_GET_CACHING, arg);
  return uapi.drm_i915_gem_caching.decode(arg).caching;
}

/** MADVISE: whether the object's contents still exist. */
export function gem_madvise(p: Process, fd: number, handle: number, madv: number): boolean {
  const arg = uapi.drm_i915_gem_madvise.encode({ handle, madv });
  drmIoctl(p, fd, uapi.DRM_IOCTL_I915_GEM_MADVISE, arg);
  return uapi.drm_i915_gem_madvise.decode(arg).retained !== 0;
}

/** GET_APERTURE: the GTT size and what pinned objects leave of it, in bytes. */
export function gem_get_aperture(p: Process, fd: number): { aper_size: number; aper_available_size: number } {
  const arg = new Uint8Array(uapi.drm_i915_gem_get_aperture.size);
  drmIoctl(p, fd, uapi.DRM_IOCTL_I915_GEM_GET_APERTURE, arg);
  const r = uapi.drm_i915_gem_get_aperture.decode(arg);
  return { aper_size: Number(r.aper_size), aper_available_size: Number(r.aper_available_size) };
}

/** GETPARAM: the int the kernel stores through `value`. */
export function getparam(p: Process, fd: number, param: number): number {
  return withScratch(p, 4, (buf) => {
    drmIoctl(
      p,
      fd,
      uapi.DRM_IOCTL_I915_GETPARAM,
      uapi.drm_i915_getparam.encode({ param, value: BigInt(buf) }),
    );
    const b = p.read(buf, 4);
    return new DataView(b.buffer, b.byteOffset, 4).getInt32(0, true);
  });
}

// --- PRIME ---------------------------------------------------------------------------------------

/** PRIME_HANDLE_TO_FD: a dma-buf fd in the caller's table. */
export function prime_handle_to_fd(p: Process, fd: number, handle: number, flags = 0): number {
  const arg = uapi.drm_prime_handle.encode({ handle, flags });
  drmIoctl(p, fd, uapi.DRM_IOCTL_PRIME_HANDLE_TO_FD, arg);
  return uapi.drm_prime_handle.decode(arg).fd;
}

/** PRIME_FD_TO_HANDLE: the handle of a dma-buf in this file. */
export function prime_fd_to_handle(p: Process, fd: number, dmabuf: number): number {
  const arg = uapi.drm_prime_handle.encode({ fd: dmabuf });
  drmIoctl(p, fd, uapi.DRM_IOCTL_PRIME_FD_TO_HANDLE, arg);
  return uapi.drm_prime_handle.decode(arg).handle;
}

// --- authentication, mastership --------------------------------------------------------------------

/** drmGetMagic(): this file's authentication token. */
export function drm_get_magic(p: Process, fd: number): number {
  const arg = uapi.drm_auth.encode({ magic: 0 });
  drmIoctl(p, fd, uapi.DRM_IOCTL_GET_MAGIC, arg);
  return uapi.drm_auth.decode(arg).magic;
}

/** drmAuthMagic(): the master authenticates the client that showed it `magic`. */
export function drm_auth_magic(p: Process, fd: number, magic: number): void {
  drmIoctl(p, fd, uapi.DRM_IOCTL_AUTH_MAGIC, uapi.drm_auth.encode({ magic }));
}

/** drmSetMaster() (root only). */
export function drm_set_master(p: Process, fd: number): void {
  drmIoctl(p, fd, uapi.DRM_IOCTL_SET_MASTER, 0);
}

/** drmDropMaster() (root only). */
export function drm_drop_master(p: Process, fd: number): void {
  drmIoctl(p, fd, uapi.DRM_IOCTL_DROP_MASTER, 0);
}

// --- throttling, contexts, reset statistics --------------------------------------------------------

/** GEM_THROTTLE: wait for this file's requests older than 20 ms. */
export function gem_throttle(p: Process, fd: number): void {
  drmIoctl(p, fd, uapi.DRM_IOCTL_I915_GEM_THROTTLE, 0);
}

/** GEM_CONTEXT_CREATE: a new context id of this file. */
export function gem_context_create(p: Process, fd: number): number {
  const arg = uapi.drm_i915_gem_context_create.encode({ ctx_id: 0 });
  drmIoctl(p, fd, uapi.DRM_IOCTL_I915_GEM_CONTEXT_CREATE, arg);
  return uapi.drm_i915_gem_context_create.decode(arg).ctx_id;
}

/** GEM_CONTEXT_DESTROY. */
export function gem_context_destroy(p: Process, fd: number, ctx_id: number): void {
  drmIoctl(
    p,
    fd,
    uapi.DRM_IOCTL_I915_GEM_CONTEXT_DESTROY,
    uapi.drm_i915_gem_context_destroy.encode({ ctx_id }),
  );
}

/** I915_GET_RESET_STATS of a context (`flags` and `pad` must be 0; they are here to test that). */
export function gem_reset_stats(
  p: Process,
  fd: number,
  ctx_id: number,
  flags = 0,
  pad = 0,
): { reset_count: number; batch_active: number; batch_pending: number } {
  const arg = uapi.drm_i915_reset_stats.encode({ ctx_id, flags, pad });
  drmIoctl(p, fd, uapi.DRM_IOCTL_I915_GET_RESET_STATS, arg);
  const { reset_count, batch_active, batch_pending } = uapi.drm_i915_reset_stats.decode(arg);
  return { reset_count, batch_active, batch_pending };
}
