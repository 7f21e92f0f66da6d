/**
 * The binary interface between a simulated program and the simulated kernel: ioctl request
 * encoding, struct codecs, and the constants of drm.h, i915_drm.h and mman.h (Linux x86_64).
 * Exported from the package root as `uapi`.
 */
export * from './ioctl.js';
export * from './struct.js';
export * from './mman.js';
export * from './drm.js';
export * from './drm_mode.js';
export * from './i915_drm.js';
export * from './i915_commands.js';
