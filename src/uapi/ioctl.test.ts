import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DRM_COMMAND_BASE,
  DRM_IO,
  DRM_IOCTL_BASE,
  DRM_IOCTL_NR,
  DRM_IOR,
  DRM_IOW,
  DRM_IOWR,
  IOC_IN,
  IOC_INOUT,
  IOC_OUT,
  IOCSIZE_MASK,
  IOCSIZE_SHIFT,
  _IO,
  _IOC,
  _IOC_DIR,
  _IOC_NONE,
  _IOC_NR,
  _IOC_READ,
  _IOC_SIZE,
  _IOC_TYPE,
  _IOC_WRITE,
  _IOR,
  _IOW,
  _IOWR,
} from './ioctl.js';

describe('_IOC encoding (asm-generic/ioctl.h, x86_64)', () => {
  it('has the Linux field layout', () => {
    expect([_IOC_NONE, _IOC_WRITE, _IOC_READ]).toEqual([0, 1, 2]);
    expect(IOC_IN).toBe(0x40000000);
    expect(IOC_OUT).toBe(0x80000000);
    expect(IOC_INOUT).toBe(0xc0000000);
    expect(IOCSIZE_MASK).toBe(0x3fff0000);
    expect(IOCSIZE_SHIFT).toBe(16);
    expect(DRM_IOCTL_BASE).toBe('d'.charCodeAt(0));
    expect(DRM_COMMAND_BASE).toBe(0x40);
  });

  it('matches the worked example of kernel-userptr.md §1.3', () => {
    // (3 << 30) | (24 << 16) | (0x64 << 8) | 0x73
    expect(_IOC(_IOC_READ | _IOC_WRITE, 0x64, 0x73, 24)).toBe(0xc0186473);
    expect(_IOC(_IOC_READ | _IOC_WRITE, 0x64, 0x73, 24)).toBe(3222824051);
    // The pre-v7 struct on i386 (20 bytes) would have given 0xC0146473.
    expect(_IOWR(0x64, 0x73, 20)).toBe(0xc0146473);
  });

  it('builds each direction', () => {
    expect(_IO(0x64, 0x1e)).toBe(0x0000641e);
    expect(_IOR(0x64, 0x63, 16)).toBe(0x80106463);
    expect(_IOW(0x64, 0x69, 64)).toBe(0x40406469);
    expect(_IOWR(0x64, 0x5b, 16)).toBe(0xc010645b);
    expect(DRM_IO(0x1f)).toBe(0x641f);
    expect(DRM_IOR(0x63, 16)).toBe(0x80106463);
    expect(DRM_IOW(0x09, 8)).toBe(0x40086409);
    expect(DRM_IOWR(0x73, { size: 24 })).toBe(0xc0186473);
  });

  it('round-trips every field and stays an unsigned 32-bit number', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 0, max: 0xff }),
        fc.integer({ min: 0, max: 0xff }),
        fc.integer({ min: 0, max: 0x3fff }),
        (dir, type, nr, size) => {
          const req = _IOC(dir, type, nr, size);
          expect(Number.isInteger(req) && req >= 0 && req <= 0xffffffff).toBe(true);
          expect([_IOC_DIR(req), _IOC_TYPE(req), _IOC_NR(req), _IOC_SIZE(req)]).toEqual([
            dir,
            type,
            nr,
            size,
          ]);
          expect(DRM_IOCTL_NR(req)).toBe(nr);
        },
      ),
    );
  });

  it('rejects fields that do not fit (the C macro fails to compile)', () => {
    expect(() => _IOC(4, 0x64, 0, 0)).toThrow(RangeError);
    expect(() => _IOC(3, 0x100, 0, 0)).toThrow(RangeError);
    expect(() => _IOC(3, 0x64, 0x100, 0)).toThrow(RangeError);
    expect(() => _IOC(3, 0x64, 0, 0x4000)).toThrow(RangeError);
    expect(() => _IOC(3, 0x64, -1, 0)).toThrow(RangeError);
    expect(() => _IOC(3, 0x64, 1.5, 0)).toThrow(RangeError);
  });
});
