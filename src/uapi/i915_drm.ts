/**
 * i915 uapi (include/uapi/drm/i915_drm.h), x86_64: driver ioctl numbers, the GEM argument structs
 * and their flag values.
 *
 * The modelled kernel is 3.16, but a client may have been built against a later header: where a
 * struct grew (GEM_MMAP gained `flags`, GET_TILING gained `phys_swizzle_mode`), the plain name is
 * the current layout and request number and `_v1` / `_V1` is the 3.16 one. drm_ioctl() dispatches
 * on nr only, so both requests reach the same handler. Items marked "(after 3.16)" did not exist in
 * 3.16; they are here because later clients send them and the model has to refuse them faithfully.
 */
import { DRM_COMMAND_BASE, DRM_IO, DRM_IOR, DRM_IOW, DRM_IOWR } from './ioctl.js';
import { defineStruct, type Decoded } from './struct.js';

// --- driver ioctl numbers (nr = DRM_COMMAND_BASE + DRM_I915_x) ----------------------------------

export const DRM_I915_GETPARAM = 0x06;
export const DRM_I915_SETPARAM = 0x07;
export const DRM_I915_GEM_BUSY = 0x17;
export const DRM_I915_GEM_THROTTLE = 0x18;
export const DRM_I915_GEM_CREATE = 0x1b;
export const DRM_I915_GEM_PREAD = 0x1c;
export const DRM_I915_GEM_PWRITE = 0x1d;
export const DRM_I915_GEM_MMAP = 0x1e;
export const DRM_I915_GEM_SET_DOMAIN = 0x1f;
export const DRM_I915_GEM_SW_FINISH = 0x20;
export const DRM_I915_GEM_SET_TILING = 0x21;
export const DRM_I915_GEM_GET_TILING = 0x22;
export const DRM_I915_GEM_GET_APERTURE = 0x23;
export const DRM_I915_GEM_MMAP_GTT = 0x24;
/** (after 3.16: 5.5) Same nr as MMAP_GTT, larger struct. */
export const DRM_I915_GEM_MMAP_OFFSET = DRM_I915_GEM_MMAP_GTT;
export const DRM_I915_GEM_MADVISE = 0x26;
export const DRM_I915_GEM_EXECBUFFER2 = 0x29;
/** (after 3.16: 4.12) Same nr as EXECBUFFER2, but _IOWR so rsvd2 (the out-fence) is copied back. */
export const DRM_I915_GEM_EXECBUFFER2_WR = DRM_I915_GEM_EXECBUFFER2;
export const DRM_I915_GEM_WAIT = 0x2c;
export const DRM_I915_GEM_CONTEXT_CREATE = 0x2d;
export const DRM_I915_GEM_CONTEXT_DESTROY = 0x2e;
export const DRM_I915_GEM_SET_CACHING = 0x2f;
export const DRM_I915_GEM_GET_CACHING = 0x30;
export const DRM_I915_REG_READ = 0x31;
export const DRM_I915_GET_RESET_STATS = 0x32;
/** New in 3.16. (A 2014-04 pre-merge posting used 0x34, now CONTEXT_GETPARAM.) */
export const DRM_I915_GEM_USERPTR = 0x33;
/** (after 3.16: 4.1) */
export const DRM_I915_GEM_CONTEXT_GETPARAM = 0x34;
/** (after 3.16: 4.1) */
export const DRM_I915_GEM_CONTEXT_SETPARAM = 0x35;

// --- GETPARAM -----------------------------------------------------------------------------------

/**
 * DRM_IOCTL_I915_GETPARAM. `value` is a user pointer to an `int` that the kernel writes (4
 * bytes); an unknown `param` gives EINVAL.
 */
export const drm_i915_getparam = defineStruct('drm_i915_getparam', 16, [
  { name: 'param', offset: 0, type: 's32' },
  // 4 bytes of implicit padding
  { name: 'value', offset: 8, type: 'u64' },
]);
export type drm_i915_getparam = Decoded<typeof drm_i915_getparam>;

export const I915_PARAM_IRQ_ACTIVE = 1;
export const I915_PARAM_ALLOW_BATCHBUFFER = 2;
export const I915_PARAM_LAST_DISPATCH = 3;
export const I915_PARAM_CHIPSET_ID = 4;
export const I915_PARAM_HAS_GEM = 5;
export const I915_PARAM_NUM_FENCES_AVAIL = 6;
export const I915_PARAM_HAS_OVERLAY = 7;
export const I915_PARAM_HAS_PAGEFLIPPING = 8;
export const I915_PARAM_HAS_EXECBUF2 = 9;
export const I915_PARAM_HAS_BSD = 10;
export const I915_PARAM_HAS_BLT = 11;
export const I915_PARAM_HAS_RELAXED_FENCING = 12;
export const I915_PARAM_HAS_COHERENT_RINGS = 13;
export const I915_PARAM_HAS_EXEC_CONSTANTS = 14;
export const I915_PARAM_HAS_RELAXED_DELTA = 15;
export const I915_PARAM_HAS_GEN7_SOL_RESET = 16;
export const I915_PARAM_HAS_LLC = 17;
export const I915_PARAM_HAS_ALIASING_PPGTT = 18;
export const I915_PARAM_HAS_WAIT_TIMEOUT = 19;
export const I915_PARAM_HAS_SEMAPHORES = 20;
export const I915_PARAM_HAS_PRIME_VMAP_FLUSH = 21;
export const I915_PARAM_HAS_VEBOX = 22;
export const I915_PARAM_HAS_SECURE_BATCHES = 23;
export const I915_PARAM_HAS_PINNED_BATCHES = 24;
export const I915_PARAM_HAS_EXEC_NO_RELOC = 25;
export const I915_PARAM_HAS_EXEC_HANDLE_LUT = 26;
export const I915_PARAM_HAS_WT = 27;
/** The last param of 3.16. */
export const I915_PARAM_CMD_PARSER_VERSION = 28;
/** (after 3.16) */
export const I915_PARAM_HAS_COHERENT_PHYS_GTT = 29;
/** (after 3.16) Version of GEM_MMAP: 1 = has `flags` (I915_MMAP_WC). */
export const I915_PARAM_MMAP_VERSION = 30;
/** (after 3.16) */
export const I915_PARAM_HAS_BSD2 = 31;
/** (after 3.16) */
export const I915_PARAM_REVISION = 32;
/** (after 3.16) */
export const I915_PARAM_SUBSLICE_TOTAL = 33;
/** (after 3.16) */
export const I915_PARAM_EU_TOTAL = 34;
/** (after 3.16) */
export const I915_PARAM_HAS_GPU_RESET = 35;
/** (after 3.16) */
export const I915_PARAM_HAS_RESOURCE_STREAMER = 36;
/** (after 3.16) */
export const I915_PARAM_HAS_EXEC_SOFTPIN = 37;
/** (after 3.16) */
export const I915_PARAM_HAS_POOLED_EU = 38;
/** (after 3.16) */
export const I915_PARAM_MIN_EU_IN_POOL = 39;
/** (after 3.16) */
export const I915_PARAM_MMAP_GTT_VERSION = 40;
/** (after 3.16) */
export const I915_PARAM_HAS_SCHEDULER = 41;
/** (after 3.16) */
export const I915_PARAM_HUC_STATUS = 42;
/** (after 3.16) */
export const I915_PARAM_HAS_EXEC_ASYNC = 43;
/** (after 3.16) */
export const I915_PARAM_HAS_EXEC_FENCE = 44;
/** (after 3.16) */
export const I915_PARAM_HAS_EXEC_CAPTURE = 45;
/** (after 3.16) */
export const I915_PARAM_SLICE_MASK = 46;
/** (after 3.16) */
export const I915_PARAM_SUBSLICE_MASK = 47;
/** (after 3.16) */
export const I915_PARAM_HAS_EXEC_BATCH_FIRST = 48;
/** (after 3.16) */
export const I915_PARAM_HAS_EXEC_FENCE_ARRAY = 49;
/** (after 3.16) */
export const I915_PARAM_HAS_CONTEXT_ISOLATION = 50;
/** (after 3.16) */
export const I915_PARAM_CS_TIMESTAMP_FREQUENCY = 51;
/** (after 3.16) */
export const I915_PARAM_MMAP_GTT_COHERENT = 52;
/** (after 3.16) */
export const I915_PARAM_HAS_EXEC_SUBMIT_FENCE = 53;
/** (after 3.16) */
export const I915_PARAM_PERF_REVISION = 54;
/** (after 3.16) */
export const I915_PARAM_HAS_EXEC_TIMELINE_FENCES = 55;
/** (after 3.16: 5.15) 1 when USERPTR accepts I915_USERPTR_PROBE. */
export const I915_PARAM_HAS_USERPTR_PROBE = 56;

// --- GEM object creation and CPU access ---------------------------------------------------------

/** DRM_IOCTL_I915_GEM_CREATE. `size` in (rounded up to a page), `handle` out. Size 0 gives EINVAL. */
export const drm_i915_gem_create = defineStruct('drm_i915_gem_create', 16, [
  { name: 'size', offset: 0, type: 'u64' },
  { name: 'handle', offset: 8, type: 'u32' },
  { name: 'pad', offset: 12, type: 'u32' },
]);
export type drm_i915_gem_create = Decoded<typeof drm_i915_gem_create>;

/** DRM_IOCTL_I915_GEM_PREAD: copy `size` bytes at `offset` of the object to `data_ptr`. */
export const drm_i915_gem_pread = defineStruct('drm_i915_gem_pread', 32, [
  { name: 'handle', offset: 0, type: 'u32' },
  { name: 'pad', offset: 4, type: 'u32' },
  { name: 'offset', offset: 8, type: 'u64' },
  { name: 'size', offset: 16, type: 'u64' },
  { name: 'data_ptr', offset: 24, type: 'u64' },
]);
export type drm_i915_gem_pread = Decoded<typeof drm_i915_gem_pread>;

/** DRM_IOCTL_I915_GEM_PWRITE: copy `size` bytes from `data_ptr` to `offset` of the object. */
export const drm_i915_gem_pwrite = defineStruct('drm_i915_gem_pwrite', 32, [
  { name: 'handle', offset: 0, type: 'u32' },
  { name: 'pad', offset: 4, type: 'u32' },
  { name: 'offset', offset: 8, type: 'u64' },
  { name: 'size', offset: 16, type: 'u64' },
  { name: 'data_ptr', offset: 24, type: 'u64' },
]);
export type drm_i915_gem_pwrite = Decoded<typeof drm_i915_gem_pwrite>;

/**
 * DRM_IOCTL_I915_GEM_MMAP (CPU mmap of the shmem backing), current layout: `addr_ptr` (out) is
 * the address in the caller; `flags` (after 3.16: 4.0) takes I915_MMAP_WC. A v1 request (32
 * bytes) is zero-extended by drm_ioctl, so `flags` reads 0.
 */
export const drm_i915_gem_mmap = defineStruct('drm_i915_gem_mmap', 40, [
  { name: 'handle', offset: 0, type: 'u32' },
  { name: 'pad', offset: 4, type: 'u32' },
  { name: 'offset', offset: 8, type: 'u64' },
  { name: 'size', offset: 16, type: 'u64' },
  { name: 'addr_ptr', offset: 24, type: 'u64' },
  { name: 'flags', offset: 32, type: 'u64' },
]);
export type drm_i915_gem_mmap = Decoded<typeof drm_i915_gem_mmap>;

/** The 3.16 layout of drm_i915_gem_mmap (no `flags`). */
export const drm_i915_gem_mmap_v1 = defineStruct('drm_i915_gem_mmap', 32, [
  { name: 'handle', offset: 0, type: 'u32' },
  { name: 'pad', offset: 4, type: 'u32' },
  { name: 'offset', offset: 8, type: 'u64' },
  { name: 'size', offset: 16, type: 'u64' },
  { name: 'addr_ptr', offset: 24, type: 'u64' },
]);
export type drm_i915_gem_mmap_v1 = Decoded<typeof drm_i915_gem_mmap_v1>;

/** drm_i915_gem_mmap.flags: write-combined CPU mapping (after 3.16). */
export const I915_MMAP_WC = 0x1;

/**
 * DRM_IOCTL_I915_GEM_MMAP_GTT: `offset` (out) is a fake offset to pass to mmap(drm_fd, ...)
 * for a mapping through the GTT aperture.
 */
export const drm_i915_gem_mmap_gtt = defineStruct('drm_i915_gem_mmap_gtt', 16, [
  { name: 'handle', offset: 0, type: 'u32' },
  { name: 'pad', offset: 4, type: 'u32' },
  { name: 'offset', offset: 8, type: 'u64' },
]);
export type drm_i915_gem_mmap_gtt = Decoded<typeof drm_i915_gem_mmap_gtt>;

/** DRM_IOCTL_I915_GEM_MMAP_OFFSET (after 3.16: 5.5). */
export const drm_i915_gem_mmap_offset = defineStruct('drm_i915_gem_mmap_offset', 32, [
  { name: 'handle', offset: 0, type: 'u32' },
  { name: 'pad', offset: 4, type: 'u32' },
  { name: 'offset', offset: 8, type: 'u64' },
  { name: 'flags', offset: 16, type: 'u64' },
  { name: 'extensions', offset: 24, type: 'u64' },
]);
export type drm_i915_gem_mmap_offset = Decoded<typeof drm_i915_gem_mmap_offset>;

export const I915_MMAP_OFFSET_GTT = 0;
export const I915_MMAP_OFFSET_WC = 1;
export const I915_MMAP_OFFSET_WB = 2;
export const I915_MMAP_OFFSET_UC = 3;
export const I915_MMAP_OFFSET_FIXED = 4;

// --- domains, busy, wait ------------------------------------------------------------------------

/** CPU cache. */
export const I915_GEM_DOMAIN_CPU = 0x00000001;
/** Render cache, used by 2D and 3D drawing. */
export const I915_GEM_DOMAIN_RENDER = 0x00000002;
/** Sampler cache, used by texture engine. */
export const I915_GEM_DOMAIN_SAMPLER = 0x00000004;
/** Command queue, used to load batch buffers. */
export const I915_GEM_DOMAIN_COMMAND = 0x00000008;
/** Instruction cache, used by shader programs. */
export const I915_GEM_DOMAIN_INSTRUCTION = 0x00000010;
/** Vertex address cache. */
export const I915_GEM_DOMAIN_VERTEX = 0x00000020;
/** GTT domain: aperture and scanout. */
export const I915_GEM_DOMAIN_GTT = 0x00000040;
/** Write-combined CPU mapping (after 3.16). */
export const I915_GEM_DOMAIN_WC = 0x00000080;

/** DRM_IOCTL_I915_GEM_SET_DOMAIN: move the object to the CPU/GTT domains, waiting for the GPU. */
export const drm_i915_gem_set_domain = defineStruct('drm_i915_gem_set_domain', 12, [
  { name: 'handle', offset: 0, type: 'u32' },
  { name: 'read_domains', offset: 4, type: 'u32' },
  { name: 'write_domain', offset: 8, type: 'u32' },
]);
export type drm_i915_gem_set_domain = Decoded<typeof drm_i915_gem_set_domain>;

/** DRM_IOCTL_I915_GEM_SW_FINISH: CPU rendering through a mapping is done (flush for scanout). */
export const drm_i915_gem_sw_finish = defineStruct('drm_i915_gem_sw_finish', 4, [
  { name: 'handle', offset: 0, type: 'u32' },
]);
export type drm_i915_gem_sw_finish = Decoded<typeof drm_i915_gem_sw_finish>;

/** DRM_IOCTL_I915_GEM_BUSY: `busy` (out) is nonzero while the GPU still uses the object. */
export const drm_i915_gem_busy = defineStruct('drm_i915_gem_busy', 8, [
  { name: 'handle', offset: 0, type: 'u32' },
  { name: 'busy', offset: 4, type: 'u32' },
]);
export type drm_i915_gem_busy = Decoded<typeof drm_i915_gem_busy>;

/**
 * DRM_IOCTL_I915_GEM_WAIT: wait for all rendering to the object. `timeout_ns` is in/out (the time
 * left); negative waits forever. A timeout gives ETIME. `flags` must be 0.
 */
export const drm_i915_gem_wait = defineStruct('drm_i915_gem_wait', 16, [
  { name: 'bo_handle', offset: 0, type: 'u32' },
  { name: 'flags', offset: 4, type: 'u32' },
  { name: 'timeout_ns', offset: 8, type: 's64' },
]);
export type drm_i915_gem_wait = Decoded<typeof drm_i915_gem_wait>;

// --- tiling, caching, madvise, aperture ---------------------------------------------------------

export const I915_TILING_NONE = 0;
export const I915_TILING_X = 1;
export const I915_TILING_Y = 2;
export const I915_TILING_LAST = I915_TILING_Y;

export const I915_BIT_6_SWIZZLE_NONE = 0;
export const I915_BIT_6_SWIZZLE_9 = 1;
export const I915_BIT_6_SWIZZLE_9_10 = 2;
export const I915_BIT_6_SWIZZLE_9_11 = 3;
export const I915_BIT_6_SWIZZLE_9_10_11 = 4;
/** Not seen by userland. */
export const I915_BIT_6_SWIZZLE_UNKNOWN = 5;
/** Seen by userland. */
export const I915_BIT_6_SWIZZLE_9_17 = 6;
export const I915_BIT_6_SWIZZLE_9_10_17 = 7;

/** DRM_IOCTL_I915_GEM_SET_TILING: `tiling_mode` and `stride` in/out, `swizzle_mode` out. */
export const drm_i915_gem_set_tiling = defineStruct('drm_i915_gem_set_tiling', 16, [
  { name: 'handle', offset: 0, type: 'u32' },
  { name: 'tiling_mode', offset: 4, type: 'u32' },
  { name: 'stride', offset: 8, type: 'u32' },
  { name: 'swizzle_mode', offset: 12, type: 'u32' },
]);
export type drm_i915_gem_set_tiling = Decoded<typeof drm_i915_gem_set_tiling>;

/** DRM_IOCTL_I915_GEM_GET_TILING, current layout (`phys_swizzle_mode` after 3.16: 4.11). */
export const drm_i915_gem_get_tiling = defineStruct('drm_i915_gem_get_tiling', 16, [
  { name: 'handle', offset: 0, type: 'u32' },
  { name: 'tiling_mode', offset: 4, type: 'u32' },
  { name: 'swizzle_mode', offset: 8, type: 'u32' },
  { name: 'phys_swizzle_mode', offset: 12, type: 'u32' },
]);
export type drm_i915_gem_get_tiling = Decoded<typeof drm_i915_gem_get_tiling>;

/** The 3.16 layout of drm_i915_gem_get_tiling (12 bytes). */
export const drm_i915_gem_get_tiling_v1 = defineStruct('drm_i915_gem_get_tiling', 12, [
  { name: 'handle', offset: 0, type: 'u32' },
  { name: 'tiling_mode', offset: 4, type: 'u32' },
  { name: 'swizzle_mode', offset: 8, type: 'u32' },
]);
export type drm_i915_gem_get_tiling_v1 = Decoded<typeof drm_i915_gem_get_tiling_v1>;

/** GPU access is not coherent with the CPU caches (default on non-LLC parts). */
export const I915_CACHING_NONE = 0;
/** Snooped (non-LLC) or LLC-cached: coherent with the CPU. */
export const I915_CACHING_CACHED = 1;
/** Write-through where supported, for scanout. */
export const I915_CACHING_DISPLAY = 2;

/** DRM_IOCTL_I915_GEM_SET_CACHING / GET_CACHING. */
export const drm_i915_gem_caching = defineStruct('drm_i915_gem_caching', 8, [
  { name: 'handle', offset: 0, type: 'u32' },
  { name: 'caching', offset: 4, type: 'u32' },
]);
export type drm_i915_gem_caching = Decoded<typeof drm_i915_gem_caching>;

export const I915_MADV_WILLNEED = 0;
export const I915_MADV_DONTNEED = 1;
/** Internal state: the backing store was discarded. */
export const __I915_MADV_PURGED = 2;

/** DRM_IOCTL_I915_GEM_MADVISE: `retained` (out) is 0 once the backing store was purged. */
export const drm_i915_gem_madvise = defineStruct('drm_i915_gem_madvise', 12, [
  { name: 'handle', offset: 0, type: 'u32' },
  { name: 'madv', offset: 4, type: 'u32' },
  { name: 'retained', offset: 8, type: 'u32' },
]);
export type drm_i915_gem_madvise = Decoded<typeof drm_i915_gem_madvise>;

/** DRM_IOCTL_I915_GEM_GET_APERTURE (both out). */
export const drm_i915_gem_get_aperture = defineStruct('drm_i915_gem_get_aperture', 16, [
  { name: 'aper_size', offset: 0, type: 'u64' },
  { name: 'aper_available_size', offset: 8, type: 'u64' },
]);
export type drm_i915_gem_get_aperture = Decoded<typeof drm_i915_gem_get_aperture>;

// --- contexts, register read, reset stats -------------------------------------------------------

/** DRM_IOCTL_I915_GEM_CONTEXT_CREATE: `ctx_id` out. */
export const drm_i915_gem_context_create = defineStruct('drm_i915_gem_context_create', 8, [
  { name: 'ctx_id', offset: 0, type: 'u32' },
  { name: 'pad', offset: 4, type: 'u32' },
]);
export type drm_i915_gem_context_create = Decoded<typeof drm_i915_gem_context_create>;

/** DRM_IOCTL_I915_GEM_CONTEXT_DESTROY. */
export const drm_i915_gem_context_destroy = defineStruct('drm_i915_gem_context_destroy', 8, [
  { name: 'ctx_id', offset: 0, type: 'u32' },
  { name: 'pad', offset: 4, type: 'u32' },
]);
export type drm_i915_gem_context_destroy = Decoded<typeof drm_i915_gem_context_destroy>;

/** DRM_IOCTL_I915_GEM_CONTEXT_GETPARAM / SETPARAM (after 3.16: 4.1). */
export const drm_i915_gem_context_param = defineStruct('drm_i915_gem_context_param', 24, [
  { name: 'ctx_id', offset: 0, type: 'u32' },
  { name: 'size', offset: 4, type: 'u32' },
  { name: 'param', offset: 8, type: 'u64' },
  { name: 'value', offset: 16, type: 'u64' },
]);
export type drm_i915_gem_context_param = Decoded<typeof drm_i915_gem_context_param>;

export const I915_CONTEXT_PARAM_BAN_PERIOD = 0x1;
export const I915_CONTEXT_PARAM_NO_ZEROMAP = 0x2;
/** Size of the context's GTT address space. */
export const I915_CONTEXT_PARAM_GTT_SIZE = 0x3;

/** DRM_IOCTL_I915_REG_READ: read a whitelisted register (`val` out). Not in i915-uapi.md. */
export const drm_i915_reg_read = defineStruct('drm_i915_reg_read', 16, [
  { name: 'offset', offset: 0, type: 'u64' },
  { name: 'val', offset: 8, type: 'u64' },
]);
export type drm_i915_reg_read = Decoded<typeof drm_i915_reg_read>;

/** DRM_IOCTL_I915_GET_RESET_STATS: GPU hang counters of a context. Not in i915-uapi.md. */
export const drm_i915_reset_stats = defineStruct('drm_i915_reset_stats', 24, [
  { name: 'ctx_id', offset: 0, type: 'u32' },
  { name: 'flags', offset: 4, type: 'u32' },
  { name: 'reset_count', offset: 8, type: 'u32' },
  { name: 'batch_active', offset: 12, type: 'u32' },
  { name: 'batch_pending', offset: 16, type: 'u32' },
  { name: 'pad', offset: 20, type: 'u32' },
]);
export type drm_i915_reset_stats = Decoded<typeof drm_i915_reset_stats>;

// --- userptr ------------------------------------------------------------------------------------

/**
 * DRM_IOCTL_I915_GEM_USERPTR: wrap `user_size` bytes of the caller's memory at `user_ptr` (both
 * page-aligned) in a GEM object; `handle` (out) is never 0 on success. The layout is the one fixed
 * by v7 of the patch: 24 bytes, no implicit padding on 32- or 64-bit.
 */
export const drm_i915_gem_userptr = defineStruct('drm_i915_gem_userptr', 24, [
  { name: 'user_ptr', offset: 0, type: 'u64' },
  { name: 'user_size', offset: 8, type: 'u64' },
  { name: 'flags', offset: 16, type: 'u32' },
  { name: 'handle', offset: 20, type: 'u32' },
]);
export type drm_i915_gem_userptr = Decoded<typeof drm_i915_gem_userptr>;

/** GPU access is read-only. 3.16 rejects it with ENODEV (after access_ok); gen8+ from 4.19. */
export const I915_USERPTR_READ_ONLY = 0x1;
/**
 * (after 3.16: 5.15) Check at creation that the range is backed by VMAs and contains no
 * VM_IO/VM_PFNMAP mapping (EFAULT otherwise), then create no object: it only probes. Announced by
 * I915_PARAM_HAS_USERPTR_PROBE.
 */
export const I915_USERPTR_PROBE = 0x2;
/**
 * No MMU notifier: the pages stay pinned until the object releases them, even after munmap.
 * Needs CAP_SYS_ADMIN in 3.16 (EPERM otherwise); ENODEV from 5.13.
 */
export const I915_USERPTR_UNSYNCHRONIZED = 0x80000000;

// --- execbuffer2 --------------------------------------------------------------------------------

/**
 * One relocation: write `target` object's GTT offset + `delta` at byte `offset` of the object that
 * owns the list. `presumed_offset` is in/out.
 */
export const drm_i915_gem_relocation_entry = defineStruct('drm_i915_gem_relocation_entry', 32, [
  { name: 'target_handle', offset: 0, type: 'u32' },
  { name: 'delta', offset: 4, type: 'u32' },
  { name: 'offset', offset: 8, type: 'u64' },
  { name: 'presumed_offset', offset: 16, type: 'u64' },
  { name: 'read_domains', offset: 24, type: 'u32' },
  { name: 'write_domain', offset: 28, type: 'u32' },
]);
export type drm_i915_gem_relocation_entry = Decoded<typeof drm_i915_gem_relocation_entry>;

/**
 * One entry of the execbuffer2 object list. `offset` is in (presumed, or pinned with
 * EXEC_OBJECT_PINNED) and out (actual). `rsvd1` is `pad_to_size` in later headers (a union).
 */
export const drm_i915_gem_exec_object2 = defineStruct('drm_i915_gem_exec_object2', 56, [
  { name: 'handle', offset: 0, type: 'u32' },
  { name: 'relocation_count', offset: 4, type: 'u32' },
  { name: 'relocs_ptr', offset: 8, type: 'u64' },
  { name: 'alignment', offset: 16, type: 'u64' },
  { name: 'offset', offset: 24, type: 'u64' },
  { name: 'flags', offset: 32, type: 'u64' },
  { name: 'rsvd1', offset: 40, type: 'u64' },
  { name: 'rsvd2', offset: 48, type: 'u64' },
]);
export type drm_i915_gem_exec_object2 = Decoded<typeof drm_i915_gem_exec_object2>;

export const EXEC_OBJECT_NEEDS_FENCE = 1 << 0;
export const EXEC_OBJECT_NEEDS_GTT = 1 << 1;
export const EXEC_OBJECT_WRITE = 1 << 2;
/** (after 3.16) */
export const EXEC_OBJECT_SUPPORTS_48B_ADDRESS = 1 << 3;
/** (after 3.16) Softpin: `offset` is where the object must go. */
export const EXEC_OBJECT_PINNED = 1 << 4;
/** (after 3.16) */
export const EXEC_OBJECT_PAD_TO_SIZE = 1 << 5;
/** (after 3.16) */
export const EXEC_OBJECT_ASYNC = 1 << 6;
/** (after 3.16) */
export const EXEC_OBJECT_CAPTURE = 1 << 7;
/** Every exec_object2.flags bit the current header does not define: any gives EINVAL. */
export const __EXEC_OBJECT_UNKNOWN_FLAGS = BigInt.asUintN(64, -BigInt(EXEC_OBJECT_CAPTURE << 1));
/**
 * The same mask in 3.16, whose header ended at EXEC_OBJECT_WRITE. From the 3.16 header as
 * remembered; not stated in the reference files.
 */
export const __EXEC_OBJECT_UNKNOWN_FLAGS_3_16 = BigInt.asUintN(64, -BigInt(EXEC_OBJECT_WRITE << 1));

/** DRM_IOCTL_I915_GEM_EXECBUFFER2. */
export const drm_i915_gem_execbuffer2 = defineStruct('drm_i915_gem_execbuffer2', 64, [
  /** Pointer to an array of drm_i915_gem_exec_object2. */
  { name: 'buffers_ptr', offset: 0, type: 'u64' },
  { name: 'buffer_count', offset: 8, type: 'u32' },
  /** Offset in the batch to start execution from. */
  { name: 'batch_start_offset', offset: 12, type: 'u32' },
  /** Bytes used in the batch, starting from batch_start_offset. */
  { name: 'batch_len', offset: 16, type: 'u32' },
  { name: 'DR1', offset: 20, type: 'u32' },
  { name: 'DR4', offset: 24, type: 'u32' },
  { name: 'num_cliprects', offset: 28, type: 'u32' },
  { name: 'cliprects_ptr', offset: 32, type: 'u64' },
  { name: 'flags', offset: 40, type: 'u64' },
  /** Low 32 bits: context id. */
  { name: 'rsvd1', offset: 48, type: 'u64' },
  /** Low 32 bits: in-fence fd; high 32 bits: out-fence fd (returned by the _WR request). */
  { name: 'rsvd2', offset: 56, type: 'u64' },
]);
export type drm_i915_gem_execbuffer2 = Decoded<typeof drm_i915_gem_execbuffer2>;

export const I915_EXEC_RING_MASK = 0x3f;
/** The ring mask of 3.16 (`7 << 0`), before engine maps widened it. Not in the reference files. */
export const I915_EXEC_RING_MASK_3_16 = 0x7;
export const I915_EXEC_DEFAULT = 0 << 0;
export const I915_EXEC_RENDER = 1 << 0;
export const I915_EXEC_BSD = 2 << 0;
export const I915_EXEC_BLT = 3 << 0;
export const I915_EXEC_VEBOX = 4 << 0;

/** Gen4-5 only: how the INSTPM constants addressing mode is set. */
export const I915_EXEC_CONSTANTS_MASK = 3 << 6;
export const I915_EXEC_CONSTANTS_REL_GENERAL = 0 << 6;
export const I915_EXEC_CONSTANTS_ABSOLUTE = 1 << 6;
export const I915_EXEC_CONSTANTS_REL_SURFACE = 2 << 6;
/** Reset the SO write offset registers (gen7). */
export const I915_EXEC_GEN7_SOL_RESET = 1 << 8;
/** Privileged batch (root/master only). */
export const I915_EXEC_SECURE = 1 << 9;
/** The batch is pinned: skip the pinning and relocation dance (gen2 workaround). */
export const I915_EXEC_IS_PINNED = 1 << 10;
/** Trust presumed offsets: relocations whose target did not move may be skipped. */
export const I915_EXEC_NO_RELOC = 1 << 11;
/** Reloc target_handle is an index into the exec list rather than a handle. */
export const I915_EXEC_HANDLE_LUT = 1 << 12;
/** (after 3.16) Selects the BSD engine on parts with two. */
export const I915_EXEC_BSD_SHIFT = 13;
export const I915_EXEC_BSD_MASK = 3 << I915_EXEC_BSD_SHIFT;
export const I915_EXEC_BSD_DEFAULT = 0 << I915_EXEC_BSD_SHIFT;
export const I915_EXEC_BSD_RING1 = 1 << I915_EXEC_BSD_SHIFT;
export const I915_EXEC_BSD_RING2 = 2 << I915_EXEC_BSD_SHIFT;
/** (after 3.16) */
export const I915_EXEC_RESOURCE_STREAMER = 1 << 15;
/** (after 3.16) Wait on the sync_file fd in the low half of rsvd2. */
export const I915_EXEC_FENCE_IN = 1 << 16;
/** (after 3.16) Return a sync_file fd in the high half of rsvd2 (needs EXECBUFFER2_WR). */
export const I915_EXEC_FENCE_OUT = 1 << 17;
/** (after 3.16) The batch is the first object of the list, not the last. */
export const I915_EXEC_BATCH_FIRST = 1 << 18;
/** (after 3.16) */
export const I915_EXEC_FENCE_ARRAY = 1 << 19;
/** (after 3.16) */
export const I915_EXEC_FENCE_SUBMIT = 1 << 20;
/** (after 3.16) */
export const I915_EXEC_USE_EXTENSIONS = 1 << 21;
/** Every execbuffer2.flags bit the current header does not define: any gives EINVAL. */
export const __I915_EXEC_UNKNOWN_FLAGS = BigInt.asUintN(64, -BigInt(I915_EXEC_USE_EXTENSIONS << 1));
/**
 * The same mask in 3.16, whose header ended at I915_EXEC_HANDLE_LUT. From the 3.16 header as
 * remembered; not stated in the reference files.
 */
export const __I915_EXEC_UNKNOWN_FLAGS_3_16 = BigInt.asUintN(64, -BigInt(I915_EXEC_HANDLE_LUT << 1));

export const I915_EXEC_CONTEXT_ID_MASK = 0xffffffff;

/** `i915_execbuffer2_set_context_id(eb2, context)`: the context id lives in rsvd1. */
export function i915_execbuffer2_set_context_id(eb2: { rsvd1?: bigint | number }, context: number): void {
  eb2.rsvd1 = BigInt((context & I915_EXEC_CONTEXT_ID_MASK) >>> 0);
}

/** `i915_execbuffer2_get_context_id(eb2)`. */
export function i915_execbuffer2_get_context_id(eb2: { rsvd1: bigint }): number {
  return Number(eb2.rsvd1 & BigInt(I915_EXEC_CONTEXT_ID_MASK));
}

// --- request numbers ----------------------------------------------------------------------------

export const DRM_IOCTL_I915_GETPARAM = DRM_IOWR(DRM_COMMAND_BASE + DRM_I915_GETPARAM, drm_i915_getparam);
export const DRM_IOCTL_I915_GEM_BUSY = DRM_IOWR(DRM_COMMAND_BASE + DRM_I915_GEM_BUSY, drm_i915_gem_busy);
export const DRM_IOCTL_I915_GEM_THROTTLE = DRM_IO(DRM_COMMAND_BASE + DRM_I915_GEM_THROTTLE);
export const DRM_IOCTL_I915_GEM_CREATE = DRM_IOWR(
  DRM_COMMAND_BASE + DRM_I915_GEM_CREATE,
  drm_i915_gem_create,
);
export const DRM_IOCTL_I915_GEM_PREAD = DRM_IOW(DRM_COMMAND_BASE + DRM_I915_GEM_PREAD, drm_i915_gem_pread);
export const DRM_IOCTL_I915_GEM_PWRITE = DRM_IOW(DRM_COMMAND_BASE + DRM_I915_GEM_PWRITE, drm_i915_gem_pwrite);
/** Current header: the 40-byte struct with `flags`. */
export const DRM_IOCTL_I915_GEM_MMAP = DRM_IOWR(DRM_COMMAND_BASE + DRM_I915_GEM_MMAP, drm_i915_gem_mmap);
/** What a client built against the 3.16 header sends: the 32-byte struct. */
export const DRM_IOCTL_I915_GEM_MMAP_V1 = DRM_IOWR(
  DRM_COMMAND_BASE + DRM_I915_GEM_MMAP,
  drm_i915_gem_mmap_v1,
);
export const DRM_IOCTL_I915_GEM_MMAP_GTT = DRM_IOWR(
  DRM_COMMAND_BASE + DRM_I915_GEM_MMAP_GTT,
  drm_i915_gem_mmap_gtt,
);
export const DRM_IOCTL_I915_GEM_MMAP_OFFSET = DRM_IOWR(
  DRM_COMMAND_BASE + DRM_I915_GEM_MMAP_OFFSET,
  drm_i915_gem_mmap_offset,
);
export const DRM_IOCTL_I915_GEM_SET_DOMAIN = DRM_IOW(
  DRM_COMMAND_BASE + DRM_I915_GEM_SET_DOMAIN,
  drm_i915_gem_set_domain,
);
export const DRM_IOCTL_I915_GEM_SW_FINISH = DRM_IOW(
  DRM_COMMAND_BASE + DRM_I915_GEM_SW_FINISH,
  drm_i915_gem_sw_finish,
);
export const DRM_IOCTL_I915_GEM_SET_TILING = DRM_IOWR(
  DRM_COMMAND_BASE + DRM_I915_GEM_SET_TILING,
  drm_i915_gem_set_tiling,
);
/** Current header: the 16-byte struct with `phys_swizzle_mode`. */
export const DRM_IOCTL_I915_GEM_GET_TILING = DRM_IOWR(
  DRM_COMMAND_BASE + DRM_I915_GEM_GET_TILING,
  drm_i915_gem_get_tiling,
);
/** What a client built against the 3.16 header sends: the 12-byte struct. */
export const DRM_IOCTL_I915_GEM_GET_TILING_V1 = DRM_IOWR(
  DRM_COMMAND_BASE + DRM_I915_GEM_GET_TILING,
  drm_i915_gem_get_tiling_v1,
);
export const DRM_IOCTL_I915_GEM_GET_APERTURE = DRM_IOR(
  DRM_COMMAND_BASE + DRM_I915_GEM_GET_APERTURE,
  drm_i915_gem_get_aperture,
);
export const DRM_IOCTL_I915_GEM_MADVISE = DRM_IOWR(
  DRM_COMMAND_BASE + DRM_I915_GEM_MADVISE,
  drm_i915_gem_madvise,
);
/** _IOW: nothing of the struct itself is copied back (offsets are written through the pointers). */
export const DRM_IOCTL_I915_GEM_EXECBUFFER2 = DRM_IOW(
  DRM_COMMAND_BASE + DRM_I915_GEM_EXECBUFFER2,
  drm_i915_gem_execbuffer2,
);
export const DRM_IOCTL_I915_GEM_EXECBUFFER2_WR = DRM_IOWR(
  DRM_COMMAND_BASE + DRM_I915_GEM_EXECBUFFER2_WR,
  drm_i915_gem_execbuffer2,
);
export const DRM_IOCTL_I915_GEM_WAIT = DRM_IOWR(DRM_COMMAND_BASE + DRM_I915_GEM_WAIT, drm_i915_gem_wait);
export const DRM_IOCTL_I915_GEM_CONTEXT_CREATE = DRM_IOWR(
  DRM_COMMAND_BASE + DRM_I915_GEM_CONTEXT_CREATE,
  drm_i915_gem_context_create,
);
export const DRM_IOCTL_I915_GEM_CONTEXT_DESTROY = DRM_IOW(
  DRM_COMMAND_BASE + DRM_I915_GEM_CONTEXT_DESTROY,
  drm_i915_gem_context_destroy,
);
export const DRM_IOCTL_I915_GEM_SET_CACHING = DRM_IOW(
  DRM_COMMAND_BASE + DRM_I915_GEM_SET_CACHING,
  drm_i915_gem_caching,
);
export const DRM_IOCTL_I915_GEM_GET_CACHING = DRM_IOWR(
  DRM_COMMAND_BASE + DRM_I915_GEM_GET_CACHING,
  drm_i915_gem_caching,
);
export const DRM_IOCTL_I915_REG_READ = DRM_IOWR(DRM_COMMAND_BASE + DRM_I915_REG_READ, drm_i915_reg_read);
export const DRM_IOCTL_I915_GET_RESET_STATS = DRM_IOWR(
  DRM_COMMAND_BASE + DRM_I915_GET_RESET_STATS,
  drm_i915_reset_stats,
);
/** 0xC0186473. */
export const DRM_IOCTL_I915_GEM_USERPTR = DRM_IOWR(
  DRM_COMMAND_BASE + DRM_I915_GEM_USERPTR,
  drm_i915_gem_userptr,
);
export const DRM_IOCTL_I915_GEM_CONTEXT_GETPARAM = DRM_IOWR(
  DRM_COMMAND_BASE + DRM_I915_GEM_CONTEXT_GETPARAM,
  drm_i915_gem_context_param,
);
export const DRM_IOCTL_I915_GEM_CONTEXT_SETPARAM = DRM_IOWR(
  DRM_COMMAND_BASE + DRM_I915_GEM_CONTEXT_SETPARAM,
  drm_i915_gem_context_param,
);
