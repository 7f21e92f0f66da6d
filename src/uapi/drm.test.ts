import { describe, expect, it } from 'vitest';
import * as drm from './drm.js';
import { O_CLOEXEC, O_RDWR } from './mman.js';
import type { StructCodec } from './struct.js';

/** A codec's layout written the way i915-uapi.md §2.2 writes it. */
function layout(c: StructCodec): string {
  return c.fields
    .map((f) => `${f.offset}: ${typeof f.type === 'string' ? f.type : f.type.name} ${f.name}`)
    .join(', ');
}

describe('DRM core request numbers', () => {
  // Literals typed from i915-uapi.md §2.1.
  it.each([
    ['DRM_IOCTL_GEM_CLOSE', drm.DRM_IOCTL_GEM_CLOSE, 0x40086409],
    ['DRM_IOCTL_GEM_FLINK', drm.DRM_IOCTL_GEM_FLINK, 0xc008640a],
    ['DRM_IOCTL_GEM_OPEN', drm.DRM_IOCTL_GEM_OPEN, 0xc010640b],
    ['DRM_IOCTL_PRIME_HANDLE_TO_FD', drm.DRM_IOCTL_PRIME_HANDLE_TO_FD, 0xc00c642d],
    ['DRM_IOCTL_PRIME_FD_TO_HANDLE', drm.DRM_IOCTL_PRIME_FD_TO_HANDLE, 0xc00c642e],
  ])('%s matches the reference', (_name, computed, literal) => {
    expect(computed).toBe(literal);
  });

  // Not in the reference files: values of the Linux x86_64 drm.h (as strace prints them).
  it.each([
    ['DRM_IOCTL_VERSION', drm.DRM_IOCTL_VERSION, 0xc0406400],
    ['DRM_IOCTL_GET_UNIQUE', drm.DRM_IOCTL_GET_UNIQUE, 0xc0106401],
    ['DRM_IOCTL_GET_MAGIC', drm.DRM_IOCTL_GET_MAGIC, 0x80046402],
    ['DRM_IOCTL_SET_VERSION', drm.DRM_IOCTL_SET_VERSION, 0xc0106407],
    ['DRM_IOCTL_GET_CAP', drm.DRM_IOCTL_GET_CAP, 0xc010640c],
    ['DRM_IOCTL_SET_CLIENT_CAP', drm.DRM_IOCTL_SET_CLIENT_CAP, 0x4010640d],
    ['DRM_IOCTL_SET_UNIQUE', drm.DRM_IOCTL_SET_UNIQUE, 0x40106410],
    ['DRM_IOCTL_AUTH_MAGIC', drm.DRM_IOCTL_AUTH_MAGIC, 0x40046411],
    ['DRM_IOCTL_SET_MASTER', drm.DRM_IOCTL_SET_MASTER, 0x641e],
    ['DRM_IOCTL_DROP_MASTER', drm.DRM_IOCTL_DROP_MASTER, 0x641f],
  ])('%s matches Linux x86_64', (_name, computed, literal) => {
    expect(computed).toBe(literal);
  });
});

describe('DRM core struct layouts', () => {
  it.each(
    (
      [
        [drm.drm_gem_close, 8, '0: u32 handle, 4: u32 pad'],
        [drm.drm_gem_flink, 8, '0: u32 handle, 4: u32 name'],
        [drm.drm_gem_open, 16, '0: u32 name, 4: u32 handle, 8: u64 size'],
        [drm.drm_prime_handle, 12, '0: u32 handle, 4: u32 flags, 8: s32 fd'],
        [drm.drm_get_cap, 16, '0: u64 capability, 8: u64 value'],
        [drm.drm_set_client_cap, 16, '0: u64 capability, 8: u64 value'],
        [drm.drm_auth, 4, '0: u32 magic'],
        [drm.drm_unique, 16, '0: u64 unique_len, 8: u64 unique'],
        [
          drm.drm_set_version,
          16,
          '0: s32 drm_di_major, 4: s32 drm_di_minor, 8: s32 drm_dd_major, 12: s32 drm_dd_minor',
        ],
        [
          drm.drm_version,
          64,
          '0: s32 version_major, 4: s32 version_minor, 8: s32 version_patchlevel, 16: u64 name_len, ' +
            '24: u64 name, 32: u64 date_len, 40: u64 date, 48: u64 desc_len, 56: u64 desc',
        ],
      ] as [StructCodec, number, string][]
    ).map(([codec, size, fields]) => ({ name: codec.name, codec, size, fields })),
  )('$name ($size bytes)', ({ codec, size, fields }) => {
    expect(codec.size).toBe(size);
    expect(layout(codec)).toBe(fields);
  });
});

describe('DRM constants', () => {
  it('has the capability and PRIME flag values', () => {
    expect(drm.DRM_CAP_PRIME).toBe(0x5);
    expect(drm.DRM_PRIME_CAP_IMPORT).toBe(0x1);
    expect(drm.DRM_PRIME_CAP_EXPORT).toBe(0x2);
    expect(drm.DRM_CAP_DUMB_BUFFER).toBe(0x1);
    expect(drm.DRM_CAP_TIMESTAMP_MONOTONIC).toBe(0x6);
    expect(drm.DRM_CLIENT_CAP_UNIVERSAL_PLANES).toBe(2);
    // i915-uapi.md §2.2: DRM_CLOEXEC = O_CLOEXEC = 0x80000, DRM_RDWR = O_RDWR = 2.
    expect(drm.DRM_CLOEXEC).toBe(0x80000);
    expect(drm.DRM_CLOEXEC).toBe(O_CLOEXEC);
    expect(drm.DRM_RDWR).toBe(2);
    expect(drm.DRM_RDWR).toBe(O_RDWR);
    expect(drm.DRM_MAJOR).toBe(226);
  });

  it('encodes a PRIME export the way libdrm lays it out', () => {
    const bytes = drm.drm_prime_handle.encode({ handle: 7, flags: drm.DRM_CLOEXEC | drm.DRM_RDWR, fd: -1 });
    expect([...bytes]).toEqual([7, 0, 0, 0, 0x02, 0x00, 0x08, 0x00, 0xff, 0xff, 0xff, 0xff]);
    expect(drm.drm_prime_handle.decode(bytes)).toEqual({ handle: 7, flags: 0x80002, fd: -1 });
  });
});
