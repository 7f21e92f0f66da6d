/**
 * DRM core uapi (include/uapi/drm/drm.h) that a 2014 GEM client uses: version and unique
 * queries, authentication and master, GEM close/flink/open, capabilities and PRIME. Layouts are
 * x86_64 (`size_t` and pointers are 8 bytes).
 */
import { DRM_IO, DRM_IOR, DRM_IOW, DRM_IOWR } from './ioctl.js';
import { O_CLOEXEC, O_RDWR } from './mman.js';
import { defineStruct, type Decoded } from './struct.js';

/** Character-device major of /dev/dri/* (include/drm/drmP.h, libdrm's xf86drm.h). */
export const DRM_MAJOR = 226;

// --- structs ------------------------------------------------------------------------------------

/** DRM_IOCTL_VERSION. The kernel fills each string up to its `_len` and returns the full length. */
export const drm_version = defineStruct('drm_version', 64, [
  { name: 'version_major', offset: 0, type: 's32' },
  { name: 'version_minor', offset: 4, type: 's32' },
  { name: 'version_patchlevel', offset: 8, type: 's32' },
  // 4 bytes of implicit padding
  { name: 'name_len', offset: 16, type: 'u64' },
  { name: 'name', offset: 24, type: 'u64' },
  { name: 'date_len', offset: 32, type: 'u64' },
  { name: 'date', offset: 40, type: 'u64' },
  { name: 'desc_len', offset: 48, type: 'u64' },
  { name: 'desc', offset: 56, type: 'u64' },
]);
export type drm_version = Decoded<typeof drm_version>;

/** DRM_IOCTL_GET_UNIQUE / SET_UNIQUE: the bus id string. */
export const drm_unique = defineStruct('drm_unique', 16, [
  { name: 'unique_len', offset: 0, type: 'u64' },
  { name: 'unique', offset: 8, type: 'u64' },
]);
export type drm_unique = Decoded<typeof drm_unique>;

/** DRM_IOCTL_GET_MAGIC / AUTH_MAGIC (`drm_magic_t` is an unsigned int). */
export const drm_auth = defineStruct('drm_auth', 4, [{ name: 'magic', offset: 0, type: 'u32' }]);
export type drm_auth = Decoded<typeof drm_auth>;

/** DRM_IOCTL_SET_VERSION: interface versions requested (-1 = don't care); the current ones come back. */
export const drm_set_version = defineStruct('drm_set_version', 16, [
  { name: 'drm_di_major', offset: 0, type: 's32' },
  { name: 'drm_di_minor', offset: 4, type: 's32' },
  { name: 'drm_dd_major', offset: 8, type: 's32' },
  { name: 'drm_dd_minor', offset: 12, type: 's32' },
]);
export type drm_set_version = Decoded<typeof drm_set_version>;

/** DRM_IOCTL_GEM_CLOSE. An unknown handle gives EINVAL. */
export const drm_gem_close = defineStruct('drm_gem_close', 8, [
  { name: 'handle', offset: 0, type: 'u32' },
  { name: 'pad', offset: 4, type: 'u32' },
]);
export type drm_gem_close = Decoded<typeof drm_gem_close>;

/** DRM_IOCTL_GEM_FLINK: `name` (out) is a global name for the object. */
export const drm_gem_flink = defineStruct('drm_gem_flink', 8, [
  { name: 'handle', offset: 0, type: 'u32' },
  { name: 'name', offset: 4, type: 'u32' },
]);
export type drm_gem_flink = Decoded<typeof drm_gem_flink>;

/** DRM_IOCTL_GEM_OPEN: `handle` and `size` are out. */
export const drm_gem_open = defineStruct('drm_gem_open', 16, [
  { name: 'name', offset: 0, type: 'u32' },
  { name: 'handle', offset: 4, type: 'u32' },
  { name: 'size', offset: 8, type: 'u64' },
]);
export type drm_gem_open = Decoded<typeof drm_gem_open>;

/** DRM_IOCTL_GET_CAP: `value` is out. */
export const drm_get_cap = defineStruct('drm_get_cap', 16, [
  { name: 'capability', offset: 0, type: 'u64' },
  { name: 'value', offset: 8, type: 'u64' },
]);
export type drm_get_cap = Decoded<typeof drm_get_cap>;

/** DRM_IOCTL_SET_CLIENT_CAP. */
export const drm_set_client_cap = defineStruct('drm_set_client_cap', 16, [
  { name: 'capability', offset: 0, type: 'u64' },
  { name: 'value', offset: 8, type: 'u64' },
]);
export type drm_set_client_cap = Decoded<typeof drm_set_client_cap>;

/**
 * DRM_IOCTL_PRIME_HANDLE_TO_FD (handle, flags in; fd out) and PRIME_FD_TO_HANDLE (fd in; handle
 * out). `flags` takes DRM_CLOEXEC and DRM_RDWR, for handle → fd only.
 */
export const drm_prime_handle = defineStruct('drm_prime_handle', 12, [
  { name: 'handle', offset: 0, type: 'u32' },
  { name: 'flags', offset: 4, type: 'u32' },
  { name: 'fd', offset: 8, type: 's32' },
]);
export type drm_prime_handle = Decoded<typeof drm_prime_handle>;

// --- capabilities -------------------------------------------------------------------------------

export const DRM_CAP_DUMB_BUFFER = 0x1;
export const DRM_CAP_VBLANK_HIGH_CRTC = 0x2;
export const DRM_CAP_DUMB_PREFERRED_DEPTH = 0x3;
export const DRM_CAP_DUMB_PREFER_SHADOW = 0x4;
/** Value is a mask of DRM_PRIME_CAP_IMPORT / DRM_PRIME_CAP_EXPORT. */
export const DRM_CAP_PRIME = 0x5;
export const DRM_PRIME_CAP_IMPORT = 0x1;
export const DRM_PRIME_CAP_EXPORT = 0x2;
export const DRM_CAP_TIMESTAMP_MONOTONIC = 0x6;
export const DRM_CAP_ASYNC_PAGE_FLIP = 0x7;
export const DRM_CAP_CURSOR_WIDTH = 0x8;
export const DRM_CAP_CURSOR_HEIGHT = 0x9;

/** Client capabilities (SET_CLIENT_CAP). */
export const DRM_CLIENT_CAP_STEREO_3D = 1;
export const DRM_CLIENT_CAP_UNIVERSAL_PLANES = 2;

/** drm_prime_handle.flags: the new dma-buf fd is close-on-exec. */
export const DRM_CLOEXEC = O_CLOEXEC;
/** drm_prime_handle.flags: the dma-buf fd may be mmapped writable (after 3.16: 4.6). */
export const DRM_RDWR = O_RDWR;

// --- request numbers (core DRM ioctls use their raw nr) -----------------------------------------

export const DRM_IOCTL_VERSION = DRM_IOWR(0x00, drm_version);
export const DRM_IOCTL_GET_UNIQUE = DRM_IOWR(0x01, drm_unique);
export const DRM_IOCTL_GET_MAGIC = DRM_IOR(0x02, drm_auth);
export const DRM_IOCTL_SET_VERSION = DRM_IOWR(0x07, drm_set_version);
export const DRM_IOCTL_GEM_CLOSE = DRM_IOW(0x09, drm_gem_close);
export const DRM_IOCTL_GEM_FLINK = DRM_IOWR(0x0a, drm_gem_flink);
export const DRM_IOCTL_GEM_OPEN = DRM_IOWR(0x0b, drm_gem_open);
export const DRM_IOCTL_GET_CAP = DRM_IOWR(0x0c, drm_get_cap);
export const DRM_IOCTL_SET_CLIENT_CAP = DRM_IOW(0x0d, drm_set_client_cap);
export const DRM_IOCTL_SET_UNIQUE = DRM_IOW(0x10, drm_unique);
export const DRM_IOCTL_AUTH_MAGIC = DRM_IOW(0x11, drm_auth);
export const DRM_IOCTL_SET_MASTER = DRM_IO(0x1e);
export const DRM_IOCTL_DROP_MASTER = DRM_IO(0x1f);
export const DRM_IOCTL_PRIME_HANDLE_TO_FD = DRM_IOWR(0x2d, drm_prime_handle);
export const DRM_IOCTL_PRIME_FD_TO_HANDLE = DRM_IOWR(0x2e, drm_prime_handle);
