/**
 * ioctl request numbers: the generic `_IOC` encoding of include/uapi/asm-generic/ioctl.h, which
 * x86_64 uses unchanged, and the DRM wrappers of include/uapi/drm/drm.h.
 *
 * A request packs four fields into 32 bits: `nr` in bits 0-7, `type` in bits 8-15, the argument
 * size in bits 16-29 and the direction in bits 30-31 (as seen from user space: WRITE = the kernel
 * reads the argument, READ = the kernel writes it back). Every result is an unsigned 32-bit number.
 */

export const _IOC_NRBITS = 8;
export const _IOC_TYPEBITS = 8;
export const _IOC_SIZEBITS = 14;
export const _IOC_DIRBITS = 2;

export const _IOC_NRMASK = (1 << _IOC_NRBITS) - 1;
export const _IOC_TYPEMASK = (1 << _IOC_TYPEBITS) - 1;
export const _IOC_SIZEMASK = (1 << _IOC_SIZEBITS) - 1;
export const _IOC_DIRMASK = (1 << _IOC_DIRBITS) - 1;

export const _IOC_NRSHIFT = 0;
export const _IOC_TYPESHIFT = _IOC_NRSHIFT + _IOC_NRBITS;
export const _IOC_SIZESHIFT = _IOC_TYPESHIFT + _IOC_TYPEBITS;
export const _IOC_DIRSHIFT = _IOC_SIZESHIFT + _IOC_SIZEBITS;

/** No argument is copied. */
export const _IOC_NONE = 0;
/** User space writes the argument: the kernel copies it in. */
export const _IOC_WRITE = 1;
/** User space reads the argument: the kernel copies it back out. */
export const _IOC_READ = 2;

/** Size of an ioctl argument: a byte count, or anything with a `size` (a struct codec). */
export type IocSize = number | { readonly size: number };

function sizeOf(size: IocSize): number {
  return typeof size === 'number' ? size : size.size;
}

function checkField(what: string, v: number, mask: number): void {
  if (!Number.isInteger(v) || v < 0 || v > mask) throw new RangeError(`_IOC: ${what} ${v} out of range`);
}

/**
 * `_IOC(dir, type, nr, size)`. The C macro rejects an oversized argument at compile time
 * (`_IOC_TYPECHECK`); here any field out of range throws.
 */
export function _IOC(dir: number, type: number, nr: number, size: IocSize): number {
  const sz = sizeOf(size);
  checkField('dir', dir, _IOC_DIRMASK);
  checkField('type', type, _IOC_TYPEMASK);
  checkField('nr', nr, _IOC_NRMASK);
  checkField('size', sz, _IOC_SIZEMASK);
  return (
    ((dir << _IOC_DIRSHIFT) | (type << _IOC_TYPESHIFT) | (nr << _IOC_NRSHIFT) | (sz << _IOC_SIZESHIFT)) >>> 0
  );
}

export function _IO(type: number, nr: number): number {
  return _IOC(_IOC_NONE, type, nr, 0);
}
export function _IOR(type: number, nr: number, size: IocSize): number {
  return _IOC(_IOC_READ, type, nr, size);
}
export function _IOW(type: number, nr: number, size: IocSize): number {
  return _IOC(_IOC_WRITE, type, nr, size);
}
export function _IOWR(type: number, nr: number, size: IocSize): number {
  return _IOC(_IOC_READ | _IOC_WRITE, type, nr, size);
}

/** Direction bits of a request (`_IOC_READ`/`_IOC_WRITE` combination). */
export function _IOC_DIR(request: number): number {
  return (request >>> _IOC_DIRSHIFT) & _IOC_DIRMASK;
}
export function _IOC_TYPE(request: number): number {
  return (request >>> _IOC_TYPESHIFT) & _IOC_TYPEMASK;
}
export function _IOC_NR(request: number): number {
  return (request >>> _IOC_NRSHIFT) & _IOC_NRMASK;
}
export function _IOC_SIZE(request: number): number {
  return (request >>> _IOC_SIZESHIFT) & _IOC_SIZEMASK;
}

/** Masks of the old BSD-style names kept by asm-generic/ioctl.h. */
export const IOC_IN = (_IOC_WRITE << _IOC_DIRSHIFT) >>> 0;
export const IOC_OUT = (_IOC_READ << _IOC_DIRSHIFT) >>> 0;
export const IOC_INOUT = ((_IOC_WRITE | _IOC_READ) << _IOC_DIRSHIFT) >>> 0;
export const IOCSIZE_MASK = (_IOC_SIZEMASK << _IOC_SIZESHIFT) >>> 0;
export const IOCSIZE_SHIFT = _IOC_SIZESHIFT;

// --- DRM (include/uapi/drm/drm.h) ---------------------------------------------------------------

/** ioctl type of every DRM request: `'d'`. */
export const DRM_IOCTL_BASE = 0x64;
/** Driver-private requests use nr in [DRM_COMMAND_BASE, DRM_COMMAND_END). */
export const DRM_COMMAND_BASE = 0x40;
export const DRM_COMMAND_END = 0xa0;

export function DRM_IO(nr: number): number {
  return _IO(DRM_IOCTL_BASE, nr);
}
export function DRM_IOR(nr: number, size: IocSize): number {
  return _IOR(DRM_IOCTL_BASE, nr, size);
}
export function DRM_IOW(nr: number, size: IocSize): number {
  return _IOW(DRM_IOCTL_BASE, nr, size);
}
export function DRM_IOWR(nr: number, size: IocSize): number {
  return _IOWR(DRM_IOCTL_BASE, nr, size);
}

/** The number drm_ioctl() dispatches on (it ignores the direction and size bits). */
export function DRM_IOCTL_NR(request: number): number {
  return _IOC_NR(request);
}
