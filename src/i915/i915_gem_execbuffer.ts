import type { DrmIoctlDesc } from '../drm/drm_ioctl.js';

/** EXECBUFFER2 and its _WR form (filled in by i915_gem_execbuffer's implementation). */
export const execbuffer_ioctls: DrmIoctlDesc[] = [];
