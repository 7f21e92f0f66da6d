import { describe, expect, it } from 'vitest';
import { _IOC_NR, _IOC_SIZE } from './ioctl.js';
import * as kms from './drm_mode.js';
import { type StructCodec, isStructCodec } from './struct.js';

/** A codec's layout, arrays as `type name[n]` and embedded structs by name. */
function layout(c: StructCodec): string {
  return c.fields
    .map((f) => {
      const t = isStructCodec(f.type) ? `struct ${f.type.name}` : f.type;
      return `${f.offset}: ${t} ${f.name}${f.count === undefined ? '' : `[${f.count}]`}`;
    })
    .join(', ');
}

describe('KMS request numbers', () => {
  // Values of the Linux x86_64 drm.h (as strace and libdrm users print them).
  it.each([
    ['DRM_IOCTL_MODE_GETRESOURCES', kms.DRM_IOCTL_MODE_GETRESOURCES, 0xc04064a0],
    ['DRM_IOCTL_MODE_GETCRTC', kms.DRM_IOCTL_MODE_GETCRTC, 0xc06864a1],
    ['DRM_IOCTL_MODE_SETCRTC', kms.DRM_IOCTL_MODE_SETCRTC, 0xc06864a2],
    ['DRM_IOCTL_MODE_GETENCODER', kms.DRM_IOCTL_MODE_GETENCODER, 0xc01464a6],
    ['DRM_IOCTL_MODE_GETCONNECTOR', kms.DRM_IOCTL_MODE_GETCONNECTOR, 0xc05064a7],
    ['DRM_IOCTL_MODE_GETFB', kms.DRM_IOCTL_MODE_GETFB, 0xc01c64ad],
    ['DRM_IOCTL_MODE_ADDFB', kms.DRM_IOCTL_MODE_ADDFB, 0xc01c64ae],
    ['DRM_IOCTL_MODE_RMFB', kms.DRM_IOCTL_MODE_RMFB, 0xc00464af],
    ['DRM_IOCTL_MODE_PAGE_FLIP', kms.DRM_IOCTL_MODE_PAGE_FLIP, 0xc01864b0],
    ['DRM_IOCTL_MODE_ADDFB2', kms.DRM_IOCTL_MODE_ADDFB2, 0xc06864b8],
    ['DRM_IOCTL_MODE_ADDFB2_V1', kms.DRM_IOCTL_MODE_ADDFB2_V1, 0xc04464b8],
  ])('%s matches Linux x86_64', (_name, computed, literal) => {
    expect(computed).toBe(literal);
  });

  it('has both ADDFB2 forms on one nr, differing only in size', () => {
    expect(_IOC_NR(kms.DRM_IOCTL_MODE_ADDFB2)).toBe(_IOC_NR(kms.DRM_IOCTL_MODE_ADDFB2_V1));
    expect(_IOC_SIZE(kms.DRM_IOCTL_MODE_ADDFB2)).toBe(104);
    expect(_IOC_SIZE(kms.DRM_IOCTL_MODE_ADDFB2_V1)).toBe(68);
  });
});

describe('KMS struct layouts (include/uapi/drm/drm_mode.h)', () => {
  it.each(
    (
      [
        [
          kms.drm_mode_modeinfo,
          68,
          '0: u32 clock, 4: u16 hdisplay, 6: u16 hsync_start, 8: u16 hsync_end, 10: u16 htotal, ' +
            '12: u16 hskew, 14: u16 vdisplay, 16: u16 vsync_start, 18: u16 vsync_end, 20: u16 vtotal, ' +
            '22: u16 vscan, 24: u32 vrefresh, 28: u32 flags, 32: u32 type, 36: u8 name[32]',
        ],
        [
          kms.drm_mode_card_res,
          64,
          '0: u64 fb_id_ptr, 8: u64 crtc_id_ptr, 16: u64 connector_id_ptr, 24: u64 encoder_id_ptr, ' +
            '32: u32 count_fbs, 36: u32 count_crtcs, 40: u32 count_connectors, 44: u32 count_encoders, ' +
            '48: u32 min_width, 52: u32 max_width, 56: u32 min_height, 60: u32 max_height',
        ],
        [
          kms.drm_mode_crtc,
          104,
          '0: u64 set_connectors_ptr, 8: u32 count_connectors, 12: u32 crtc_id, 16: u32 fb_id, ' +
            '20: u32 x, 24: u32 y, 28: u32 gamma_size, 32: u32 mode_valid, 36: struct drm_mode_modeinfo mode',
        ],
        [
          kms.drm_mode_get_encoder,
          20,
          '0: u32 encoder_id, 4: u32 encoder_type, 8: u32 crtc_id, 12: u32 possible_crtcs, 16: u32 possible_clones',
        ],
        [
          kms.drm_mode_get_connector,
          80,
          '0: u64 encoders_ptr, 8: u64 modes_ptr, 16: u64 props_ptr, 24: u64 prop_values_ptr, ' +
            '32: u32 count_modes, 36: u32 count_props, 40: u32 count_encoders, 44: u32 encoder_id, ' +
            '48: u32 connector_id, 52: u32 connector_type, 56: u32 connector_type_id, 60: u32 connection, ' +
            '64: u32 mm_width, 68: u32 mm_height, 72: u32 subpixel, 76: u32 pad',
        ],
        [
          kms.drm_mode_fb_cmd,
          28,
          '0: u32 fb_id, 4: u32 width, 8: u32 height, 12: u32 pitch, 16: u32 bpp, 20: u32 depth, 24: u32 handle',
        ],
        [
          kms.drm_mode_fb_cmd2,
          104,
          '0: u32 fb_id, 4: u32 width, 8: u32 height, 12: u32 pixel_format, 16: u32 flags, ' +
            '20: u32 handles[4], 36: u32 pitches[4], 52: u32 offsets[4], 72: u64 modifier[4]',
        ],
        [
          kms.drm_mode_fb_cmd2_v1,
          68,
          '0: u32 fb_id, 4: u32 width, 8: u32 height, 12: u32 pixel_format, 16: u32 flags, ' +
            '20: u32 handles[4], 36: u32 pitches[4], 52: u32 offsets[4]',
        ],
        [
          kms.drm_mode_crtc_page_flip,
          24,
          '0: u32 crtc_id, 4: u32 fb_id, 8: u32 flags, 12: u32 reserved, 16: u64 user_data',
        ],
      ] as [StructCodec, number, string][]
    ).map(([codec, size, fields]) => ({ name: codec.name, codec, size, fields })),
  )('$name ($size bytes)', ({ codec, size, fields }) => {
    expect(codec.size).toBe(size);
    expect(layout(codec)).toBe(fields);
  });

  it('encodes an ADDFB2 the way libdrm lays it out, arrays element by element', () => {
    const b = kms.drm_mode_fb_cmd2_v1.encode({
      width: 1024,
      height: 768,
      pixel_format: kms.DRM_FORMAT_XRGB8888,
      handles: [5],
      pitches: [4096],
    });
    const dv = new DataView(b.buffer);
    expect(dv.getUint32(12, true)).toBe(0x34325258);
    expect(dv.getUint32(20, true)).toBe(5);
    expect(dv.getUint32(24, true)).toBe(0);
    expect(dv.getUint32(36, true)).toBe(4096);
    const back = kms.drm_mode_fb_cmd2_v1.decode(b);
    expect(back.handles).toEqual([5, 0, 0, 0]);
    expect(back.pitches).toEqual([4096, 0, 0, 0]);
  });

  it('embeds drm_mode_modeinfo in drm_mode_crtc by value', () => {
    const name = Array.from({ length: 8 }, (_, i) => '1024x768'.charCodeAt(i));
    const b = kms.drm_mode_crtc.encode({
      crtc_id: 3,
      mode_valid: 1,
      mode: { clock: 65000, hdisplay: 1024, name },
    });
    const dv = new DataView(b.buffer);
    expect(dv.getUint32(36, true)).toBe(65000);
    expect(dv.getUint16(40, true)).toBe(1024);
    expect(b[72]).toBe(0x31); // '1', name[0] at 36 + 36
    const back = kms.drm_mode_crtc.decode(b);
    expect(back.mode.hdisplay).toBe(1024);
    expect(back.mode.name.slice(0, 8)).toEqual(name);
    expect(back.mode.name.length).toBe(32);
  });
});

describe('KMS constants', () => {
  it('has the fourcc codes of drm_fourcc.h', () => {
    expect(kms.DRM_FORMAT_XRGB8888).toBe(0x34325258);
    expect(kms.DRM_FORMAT_ARGB8888).toBe(0x34325241);
    expect(kms.DRM_FORMAT_RGB565).toBe(0x36314752);
    expect(kms.DRM_FORMAT_C8).toBe(0x20203843);
    expect(kms.DRM_FORMAT_NV12).toBe(0x3231564e);
    expect(kms.DRM_FORMAT_YUV420).toBe(0x32315559);
    expect(kms.DRM_FORMAT_BIG_ENDIAN).toBe(0x80000000);
    expect(() => kms.fourcc_code('XR2')).toThrow(RangeError);
  });

  it('has the mode, encoder and connector values', () => {
    expect(kms.DRM_MODE_TYPE_PREFERRED).toBe(8);
    expect(kms.DRM_MODE_TYPE_DRIVER).toBe(0x40);
    expect(kms.DRM_MODE_FLAG_NHSYNC).toBe(2);
    expect(kms.DRM_MODE_FLAG_NVSYNC).toBe(8);
    expect(kms.DRM_MODE_ENCODER_TMDS).toBe(2);
    expect(kms.DRM_MODE_CONNECTOR_HDMIA).toBe(11);
    expect(kms.DRM_MODE_CONNECTED).toBe(1);
    expect(kms.DRM_MODE_FB_INTERLACED).toBe(1);
    expect(kms.DRM_MODE_PAGE_FLIP_FLAGS).toBe(3);
  });
});
