import { describe, expect, it } from 'vitest';
import * as i915 from './i915_drm.js';
import { DRM_COMMAND_BASE, _IOC_NR, _IOC_SIZE } from './ioctl.js';
import type { StructCodec } from './struct.js';

function layout(c: StructCodec): string {
  return c.fields
    .map((f) => `${f.offset}: ${typeof f.type === 'string' ? f.type : f.type.name} ${f.name}`)
    .join(', ');
}

describe('i915 request numbers', () => {
  // Literals typed from the "request" column of i915-uapi.md §2.1, with the struct size column.
  it.each([
    ['DRM_IOCTL_I915_GETPARAM', i915.DRM_IOCTL_I915_GETPARAM, 0xc0106446, 16],
    ['DRM_IOCTL_I915_GEM_BUSY', i915.DRM_IOCTL_I915_GEM_BUSY, 0xc0086457, 8],
    ['DRM_IOCTL_I915_GEM_CREATE', i915.DRM_IOCTL_I915_GEM_CREATE, 0xc010645b, 16],
    ['DRM_IOCTL_I915_GEM_PREAD', i915.DRM_IOCTL_I915_GEM_PREAD, 0x4020645c, 32],
    ['DRM_IOCTL_I915_GEM_PWRITE', i915.DRM_IOCTL_I915_GEM_PWRITE, 0x4020645d, 32],
    ['DRM_IOCTL_I915_GEM_MMAP_V1', i915.DRM_IOCTL_I915_GEM_MMAP_V1, 0xc020645e, 32],
    ['DRM_IOCTL_I915_GEM_MMAP', i915.DRM_IOCTL_I915_GEM_MMAP, 0xc028645e, 40],
    ['DRM_IOCTL_I915_GEM_SET_DOMAIN', i915.DRM_IOCTL_I915_GEM_SET_DOMAIN, 0x400c645f, 12],
    ['DRM_IOCTL_I915_GEM_SW_FINISH', i915.DRM_IOCTL_I915_GEM_SW_FINISH, 0x40046460, 4],
    ['DRM_IOCTL_I915_GEM_SET_TILING', i915.DRM_IOCTL_I915_GEM_SET_TILING, 0xc0106461, 16],
    ['DRM_IOCTL_I915_GEM_GET_TILING_V1', i915.DRM_IOCTL_I915_GEM_GET_TILING_V1, 0xc00c6462, 12],
    ['DRM_IOCTL_I915_GEM_GET_TILING', i915.DRM_IOCTL_I915_GEM_GET_TILING, 0xc0106462, 16],
    ['DRM_IOCTL_I915_GEM_GET_APERTURE', i915.DRM_IOCTL_I915_GEM_GET_APERTURE, 0x80106463, 16],
    ['DRM_IOCTL_I915_GEM_MMAP_GTT', i915.DRM_IOCTL_I915_GEM_MMAP_GTT, 0xc0106464, 16],
    ['DRM_IOCTL_I915_GEM_MMAP_OFFSET', i915.DRM_IOCTL_I915_GEM_MMAP_OFFSET, 0xc0206464, 32],
    ['DRM_IOCTL_I915_GEM_MADVISE', i915.DRM_IOCTL_I915_GEM_MADVISE, 0xc00c6466, 12],
    ['DRM_IOCTL_I915_GEM_EXECBUFFER2', i915.DRM_IOCTL_I915_GEM_EXECBUFFER2, 0x40406469, 64],
    ['DRM_IOCTL_I915_GEM_EXECBUFFER2_WR', i915.DRM_IOCTL_I915_GEM_EXECBUFFER2_WR, 0xc0406469, 64],
    ['DRM_IOCTL_I915_GEM_WAIT', i915.DRM_IOCTL_I915_GEM_WAIT, 0xc010646c, 16],
    ['DRM_IOCTL_I915_GEM_CONTEXT_CREATE', i915.DRM_IOCTL_I915_GEM_CONTEXT_CREATE, 0xc008646d, 8],
    ['DRM_IOCTL_I915_GEM_CONTEXT_DESTROY', i915.DRM_IOCTL_I915_GEM_CONTEXT_DESTROY, 0x4008646e, 8],
    ['DRM_IOCTL_I915_GEM_SET_CACHING', i915.DRM_IOCTL_I915_GEM_SET_CACHING, 0x4008646f, 8],
    ['DRM_IOCTL_I915_GEM_GET_CACHING', i915.DRM_IOCTL_I915_GEM_GET_CACHING, 0xc0086470, 8],
    ['DRM_IOCTL_I915_GEM_USERPTR', i915.DRM_IOCTL_I915_GEM_USERPTR, 0xc0186473, 24],
    ['DRM_IOCTL_I915_GEM_CONTEXT_GETPARAM', i915.DRM_IOCTL_I915_GEM_CONTEXT_GETPARAM, 0xc0186474, 24],
  ])('%s = reference', (_name, computed, literal, size) => {
    expect(computed).toBe(literal);
    expect(_IOC_SIZE(computed)).toBe(size);
  });

  // Not in the reference files: values of the Linux x86_64 i915_drm.h.
  it.each([
    ['DRM_IOCTL_I915_GEM_THROTTLE', i915.DRM_IOCTL_I915_GEM_THROTTLE, 0x00006458],
    ['DRM_IOCTL_I915_REG_READ', i915.DRM_IOCTL_I915_REG_READ, 0xc0106471],
    ['DRM_IOCTL_I915_GET_RESET_STATS', i915.DRM_IOCTL_I915_GET_RESET_STATS, 0xc0186472],
    ['DRM_IOCTL_I915_GEM_CONTEXT_SETPARAM', i915.DRM_IOCTL_I915_GEM_CONTEXT_SETPARAM, 0xc0186475],
  ])('%s = Linux x86_64', (_name, computed, literal) => {
    expect(computed).toBe(literal);
  });

  it('puts driver ioctls at DRM_COMMAND_BASE + DRM_I915_x', () => {
    expect(_IOC_NR(i915.DRM_IOCTL_I915_GEM_USERPTR)).toBe(DRM_COMMAND_BASE + i915.DRM_I915_GEM_USERPTR);
    expect(i915.DRM_I915_GEM_USERPTR).toBe(0x33);
    // Neighbours named in kernel-userptr.md §1.3.
    expect(i915.DRM_I915_GET_RESET_STATS).toBe(0x32);
    expect(i915.DRM_I915_GEM_CONTEXT_GETPARAM).toBe(0x34);
    // The pre-merge 2014-04 USERPTR number 0x34 is now CONTEXT_GETPARAM, same request value.
    expect(i915.DRM_IOCTL_I915_GEM_CONTEXT_GETPARAM).toBe(0xc0186474);
    expect([
      i915.DRM_I915_GETPARAM,
      i915.DRM_I915_GEM_BUSY,
      i915.DRM_I915_GEM_CREATE,
      i915.DRM_I915_GEM_PREAD,
      i915.DRM_I915_GEM_PWRITE,
      i915.DRM_I915_GEM_MMAP,
      i915.DRM_I915_GEM_SET_DOMAIN,
      i915.DRM_I915_GEM_SW_FINISH,
      i915.DRM_I915_GEM_SET_TILING,
      i915.DRM_I915_GEM_GET_TILING,
      i915.DRM_I915_GEM_GET_APERTURE,
      i915.DRM_I915_GEM_MMAP_GTT,
      i915.DRM_I915_GEM_MADVISE,
      i915.DRM_I915_GEM_EXECBUFFER2,
      i915.DRM_I915_GEM_WAIT,
      i915.DRM_I915_GEM_CONTEXT_CREATE,
      i915.DRM_I915_GEM_CONTEXT_DESTROY,
      i915.DRM_I915_GEM_SET_CACHING,
      i915.DRM_I915_GEM_GET_CACHING,
    ]).toEqual([
      0x06, 0x17, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x26, 0x29, 0x2c, 0x2d, 0x2e,
      0x2f, 0x30,
    ]);
  });
});

describe('i915 struct layouts (i915-uapi.md §2.2, kernel-userptr.md §1.1)', () => {
  it.each(
    (
      [
        [i915.drm_i915_getparam, 16, '0: s32 param, 8: u64 value'],
        [i915.drm_i915_gem_create, 16, '0: u64 size, 8: u32 handle, 12: u32 pad'],
        [
          i915.drm_i915_gem_pread,
          32,
          '0: u32 handle, 4: u32 pad, 8: u64 offset, 16: u64 size, 24: u64 data_ptr',
        ],
        [
          i915.drm_i915_gem_pwrite,
          32,
          '0: u32 handle, 4: u32 pad, 8: u64 offset, 16: u64 size, 24: u64 data_ptr',
        ],
        [
          i915.drm_i915_gem_mmap,
          40,
          '0: u32 handle, 4: u32 pad, 8: u64 offset, 16: u64 size, 24: u64 addr_ptr, 32: u64 flags',
        ],
        [
          i915.drm_i915_gem_mmap_v1,
          32,
          '0: u32 handle, 4: u32 pad, 8: u64 offset, 16: u64 size, 24: u64 addr_ptr',
        ],
        [i915.drm_i915_gem_mmap_gtt, 16, '0: u32 handle, 4: u32 pad, 8: u64 offset'],
        [
          i915.drm_i915_gem_mmap_offset,
          32,
          '0: u32 handle, 4: u32 pad, 8: u64 offset, 16: u64 flags, 24: u64 extensions',
        ],
        [i915.drm_i915_gem_set_domain, 12, '0: u32 handle, 4: u32 read_domains, 8: u32 write_domain'],
        [i915.drm_i915_gem_sw_finish, 4, '0: u32 handle'],
        [i915.drm_i915_gem_busy, 8, '0: u32 handle, 4: u32 busy'],
        [i915.drm_i915_gem_wait, 16, '0: u32 bo_handle, 4: u32 flags, 8: s64 timeout_ns'],
        [
          i915.drm_i915_gem_set_tiling,
          16,
          '0: u32 handle, 4: u32 tiling_mode, 8: u32 stride, 12: u32 swizzle_mode',
        ],
        [
          i915.drm_i915_gem_get_tiling,
          16,
          '0: u32 handle, 4: u32 tiling_mode, 8: u32 swizzle_mode, 12: u32 phys_swizzle_mode',
        ],
        [i915.drm_i915_gem_get_tiling_v1, 12, '0: u32 handle, 4: u32 tiling_mode, 8: u32 swizzle_mode'],
        [i915.drm_i915_gem_caching, 8, '0: u32 handle, 4: u32 caching'],
        [i915.drm_i915_gem_madvise, 12, '0: u32 handle, 4: u32 madv, 8: u32 retained'],
        [i915.drm_i915_gem_get_aperture, 16, '0: u64 aper_size, 8: u64 aper_available_size'],
        [i915.drm_i915_gem_context_create, 8, '0: u32 ctx_id, 4: u32 pad'],
        [i915.drm_i915_gem_context_destroy, 8, '0: u32 ctx_id, 4: u32 pad'],
        [i915.drm_i915_gem_context_param, 24, '0: u32 ctx_id, 4: u32 size, 8: u64 param, 16: u64 value'],
        [i915.drm_i915_gem_userptr, 24, '0: u64 user_ptr, 8: u64 user_size, 16: u32 flags, 20: u32 handle'],
        [
          i915.drm_i915_gem_relocation_entry,
          32,
          '0: u32 target_handle, 4: u32 delta, 8: u64 offset, 16: u64 presumed_offset, ' +
            '24: u32 read_domains, 28: u32 write_domain',
        ],
        [
          i915.drm_i915_gem_exec_object2,
          56,
          '0: u32 handle, 4: u32 relocation_count, 8: u64 relocs_ptr, 16: u64 alignment, 24: u64 offset, ' +
            '32: u64 flags, 40: u64 rsvd1, 48: u64 rsvd2',
        ],
        [
          i915.drm_i915_gem_execbuffer2,
          64,
          '0: u64 buffers_ptr, 8: u32 buffer_count, 12: u32 batch_start_offset, 16: u32 batch_len, ' +
            '20: u32 DR1, 24: u32 DR4, 28: u32 num_cliprects, 32: u64 cliprects_ptr, 40: u64 flags, ' +
            '48: u64 rsvd1, 56: u64 rsvd2',
        ],
        // Not in the reference files.
        [i915.drm_i915_reg_read, 16, '0: u64 offset, 8: u64 val'],
        [
          i915.drm_i915_reset_stats,
          24,
          '0: u32 ctx_id, 4: u32 flags, 8: u32 reset_count, 12: u32 batch_active, 16: u32 batch_pending, 20: u32 pad',
        ],
      ] as [StructCodec, number, string][]
    ).map(([codec, size, fields]) => ({ name: codec.name, codec, size, fields })),
  )('$name ($size bytes)', ({ codec, size, fields }) => {
    expect(codec.size).toBe(size);
    expect(layout(codec)).toBe(fields);
  });
});

describe('i915 flag values', () => {
  it('userptr flags (kernel-userptr.md §1.1)', () => {
    expect(i915.I915_USERPTR_READ_ONLY).toBe(0x1);
    expect(i915.I915_USERPTR_PROBE).toBe(0x2);
    expect(i915.I915_USERPTR_UNSYNCHRONIZED).toBe(0x80000000);
    expect(i915.I915_PARAM_HAS_USERPTR_PROBE).toBe(56);
  });

  it('getparam values', () => {
    expect([
      i915.I915_PARAM_CHIPSET_ID,
      i915.I915_PARAM_HAS_BSD,
      i915.I915_PARAM_HAS_BLT,
      i915.I915_PARAM_HAS_LLC,
      i915.I915_PARAM_HAS_EXEC_NO_RELOC,
      i915.I915_PARAM_HAS_EXEC_HANDLE_LUT,
      i915.I915_PARAM_MMAP_VERSION,
      i915.I915_PARAM_HAS_EXEC_SOFTPIN,
      i915.I915_PARAM_MMAP_GTT_VERSION,
      i915.I915_PARAM_HAS_EXEC_FENCE,
      i915.I915_PARAM_HAS_USERPTR_PROBE,
    ]).toEqual([4, 10, 11, 17, 25, 26, 30, 37, 40, 44, 56]);
  });

  it('domains, tiling, caching, madvise, mmap', () => {
    expect([
      i915.I915_GEM_DOMAIN_CPU,
      i915.I915_GEM_DOMAIN_RENDER,
      i915.I915_GEM_DOMAIN_SAMPLER,
      i915.I915_GEM_DOMAIN_COMMAND,
      i915.I915_GEM_DOMAIN_INSTRUCTION,
      i915.I915_GEM_DOMAIN_VERTEX,
      i915.I915_GEM_DOMAIN_GTT,
      i915.I915_GEM_DOMAIN_WC,
    ]).toEqual([0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40, 0x80]);
    expect([i915.I915_TILING_NONE, i915.I915_TILING_X, i915.I915_TILING_Y]).toEqual([0, 1, 2]);
    expect([i915.I915_CACHING_NONE, i915.I915_CACHING_CACHED, i915.I915_CACHING_DISPLAY]).toEqual([0, 1, 2]);
    expect([i915.I915_MADV_WILLNEED, i915.I915_MADV_DONTNEED]).toEqual([0, 1]);
    expect(i915.I915_MMAP_WC).toBe(1);
    expect([
      i915.I915_MMAP_OFFSET_GTT,
      i915.I915_MMAP_OFFSET_WC,
      i915.I915_MMAP_OFFSET_WB,
      i915.I915_MMAP_OFFSET_UC,
      i915.I915_MMAP_OFFSET_FIXED,
    ]).toEqual([0, 1, 2, 3, 4]);
    expect(i915.I915_CONTEXT_PARAM_GTT_SIZE).toBe(0x3);
  });

  it('exec object flags', () => {
    expect([
      i915.EXEC_OBJECT_NEEDS_FENCE,
      i915.EXEC_OBJECT_NEEDS_GTT,
      i915.EXEC_OBJECT_WRITE,
      i915.EXEC_OBJECT_SUPPORTS_48B_ADDRESS,
      i915.EXEC_OBJECT_PINNED,
      i915.EXEC_OBJECT_PAD_TO_SIZE,
      i915.EXEC_OBJECT_ASYNC,
      i915.EXEC_OBJECT_CAPTURE,
    ]).toEqual([1, 2, 4, 8, 16, 32, 64, 128]);
    // "any other bit gives EINVAL"
    expect(i915.__EXEC_OBJECT_UNKNOWN_FLAGS).toBe(0xffffffffffffff00n);
    expect(i915.__EXEC_OBJECT_UNKNOWN_FLAGS_3_16).toBe(0xfffffffffffffff8n);
  });

  it('execbuffer2 flags', () => {
    expect(i915.I915_EXEC_RING_MASK).toBe(0x3f);
    expect([
      i915.I915_EXEC_DEFAULT,
      i915.I915_EXEC_RENDER,
      i915.I915_EXEC_BSD,
      i915.I915_EXEC_BLT,
      i915.I915_EXEC_VEBOX,
    ]).toEqual([0, 1, 2, 3, 4]);
    expect(i915.I915_EXEC_CONSTANTS_MASK).toBe(0xc0);
    expect(i915.I915_EXEC_GEN7_SOL_RESET).toBe(1 << 8);
    expect(i915.I915_EXEC_SECURE).toBe(1 << 9);
    expect(i915.I915_EXEC_IS_PINNED).toBe(1 << 10);
    expect(i915.I915_EXEC_NO_RELOC).toBe(1 << 11);
    expect(i915.I915_EXEC_HANDLE_LUT).toBe(1 << 12);
    expect(i915.I915_EXEC_BSD_RING1).toBe(1 << 13);
    expect(i915.I915_EXEC_BSD_RING2).toBe(2 << 13);
    expect(i915.I915_EXEC_RESOURCE_STREAMER).toBe(1 << 15);
    expect(i915.I915_EXEC_FENCE_IN).toBe(1 << 16);
    expect(i915.I915_EXEC_FENCE_OUT).toBe(1 << 17);
    expect(i915.I915_EXEC_BATCH_FIRST).toBe(1 << 18);
    expect(i915.I915_EXEC_FENCE_ARRAY).toBe(1 << 19);
    expect(i915.I915_EXEC_FENCE_SUBMIT).toBe(1 << 20);
    expect(i915.I915_EXEC_USE_EXTENSIONS).toBe(1 << 21);
    expect(i915.__I915_EXEC_UNKNOWN_FLAGS).toBe(0xffffffffffc00000n);
    expect(i915.__I915_EXEC_UNKNOWN_FLAGS_3_16).toBe(0xffffffffffffe000n);
  });

  it('keeps the context id in the low half of rsvd1', () => {
    const eb = i915.drm_i915_gem_execbuffer2.decode(new Uint8Array(64));
    i915.i915_execbuffer2_set_context_id(eb, 5);
    expect(eb.rsvd1).toBe(5n);
    expect(i915.i915_execbuffer2_get_context_id({ rsvd1: 0x1234_0000_0007n })).toBe(7);
    i915.i915_execbuffer2_set_context_id(eb, 0xffffffff);
    expect(i915.i915_execbuffer2_get_context_id(eb)).toBe(0xffffffff);
  });
});

describe('drm_i915_gem_userptr codec', () => {
  it('encodes the IGT "exists" probe (user_ptr = -4096, user_size = 8192)', () => {
    const bytes = i915.drm_i915_gem_userptr.encode({ user_ptr: -4096, user_size: 8192 });
    expect(bytes.length).toBe(24);
    expect([...bytes]).toEqual([
      0x00, 0xf0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    expect(i915.drm_i915_gem_userptr.decode(bytes)).toEqual({
      user_ptr: 0xfffffffffffff000n,
      user_size: 8192n,
      flags: 0,
      handle: 0,
    });
  });

  it('returns the handle written at byte 20', () => {
    const bytes = i915.drm_i915_gem_userptr.encode({
      user_ptr: 0x7f00_0000_0000n,
      user_size: 4096,
      flags: i915.I915_USERPTR_UNSYNCHRONIZED,
    });
    new DataView(bytes.buffer).setUint32(i915.drm_i915_gem_userptr.offsetOf('handle'), 3, true);
    const out = i915.drm_i915_gem_userptr.decode(bytes);
    expect(out.handle).toBe(3);
    expect(out.flags).toBe(0x80000000);
    expect(out.user_ptr).toBe(0x7f00_0000_0000n);
  });
});
