import type { DrmIoctlDesc } from '../drm/drm_ioctl.js';

/** The GEM ioctls other than create/busy/wait/execbuffer (PREAD, PWRITE, MMAP, domains, ...). */
export const gem_ioctls: DrmIoctlDesc[] = [];
