/**
 * What a program links against (DESIGN.md layer `user/`): libdrm-style wrappers over the public
 * process interface, a blit batch builder and an execbuffer2 helper. Exported from the package
 * root as `user`.
 */
export * from './ioctl_wrappers.js';
export * from './batch.js';
export * from './execbuf.js';
