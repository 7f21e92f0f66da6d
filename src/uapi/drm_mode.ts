/**
 * The legacy KMS uapi a 2014 display client uses (include/uapi/drm/drm_mode.h, the mode ioctls of
 * drm.h and the fourcc codes of drm_fourcc.h): discovering CRTCs, encoders, connectors and their
 * modes, creating and removing framebuffers, and setting a CRTC to scan one out. Layouts are
 * x86_64's.
 */
import { DRM_IOWR } from './ioctl.js';
import { defineStruct, type Decoded } from './struct.js';

/** DRM_DISPLAY_MODE_LEN: bytes of drm_mode_modeinfo.name (NUL-padded). */
export const DRM_DISPLAY_MODE_LEN = 32;

// --- structs ------------------------------------------------------------------------------------

/**
 * One display timing. `name` is a char[32] (e.g. "1024x768", NUL-padded), decoded as 32 byte
 * values. Also embedded by value in drm_mode_crtc.
 */
export const drm_mode_modeinfo = defineStruct('drm_mode_modeinfo', 68, [
  { name: 'clock', offset: 0, type: 'u32' },
  { name: 'hdisplay', offset: 4, type: 'u16' },
  { name: 'hsync_start', offset: 6, type: 'u16' },
  { name: 'hsync_end', offset: 8, type: 'u16' },
  { name: 'htotal', offset: 10, type: 'u16' },
  { name: 'hskew', offset: 12, type: 'u16' },
  { name: 'vdisplay', offset: 14, type: 'u16' },
  { name: 'vsync_start', offset: 16, type: 'u16' },
  { name: 'vsync_end', offset: 18, type: 'u16' },
  { name: 'vtotal', offset: 20, type: 'u16' },
  { name: 'vscan', offset: 22, type: 'u16' },
  { name: 'vrefresh', offset: 24, type: 'u32' },
  { name: 'flags', offset: 28, type: 'u32' },
  { name: 'type', offset: 32, type: 'u32' },
  { name: 'name', offset: 36, type: 'u8', count: DRM_DISPLAY_MODE_LEN },
]);
export type drm_mode_modeinfo = Decoded<typeof drm_mode_modeinfo>;

/**
 * DRM_IOCTL_MODE_GETRESOURCES. Each `*_ptr` points at a __u32 array of `count_*` ids; the kernel
 * fills an array only when its count is large enough, and always reports the real counts.
 */
export const drm_mode_card_res = defineStruct('drm_mode_card_res', 64, [
  { name: 'fb_id_ptr', offset: 0, type: 'u64' },
  { name: 'crtc_id_ptr', offset: 8, type: 'u64' },
  { name: 'connector_id_ptr', offset: 16, type: 'u64' },
  { name: 'encoder_id_ptr', offset: 24, type: 'u64' },
  { name: 'count_fbs', offset: 32, type: 'u32' },
  { name: 'count_crtcs', offset: 36, type: 'u32' },
  { name: 'count_connectors', offset: 40, type: 'u32' },
  { name: 'count_encoders', offset: 44, type: 'u32' },
  { name: 'min_width', offset: 48, type: 'u32' },
  { name: 'max_width', offset: 52, type: 'u32' },
  { name: 'min_height', offset: 56, type: 'u32' },
  { name: 'max_height', offset: 60, type: 'u32' },
]);
export type drm_mode_card_res = Decoded<typeof drm_mode_card_res>;

/**
 * DRM_IOCTL_MODE_GETCRTC / SETCRTC. For SETCRTC, `set_connectors_ptr` points at
 * `count_connectors` __u32 connector ids; `fb_id` 0xffffffff (-1) keeps the current framebuffer.
 */
export const drm_mode_crtc = defineStruct('drm_mode_crtc', 104, [
  { name: 'set_connectors_ptr', offset: 0, type: 'u64' },
  { name: 'count_connectors', offset: 8, type: 'u32' },
  { name: 'crtc_id', offset: 12, type: 'u32' },
  { name: 'fb_id', offset: 16, type: 'u32' },
  { name: 'x', offset: 20, type: 'u32' },
  { name: 'y', offset: 24, type: 'u32' },
  { name: 'gamma_size', offset: 28, type: 'u32' },
  { name: 'mode_valid', offset: 32, type: 'u32' },
  { name: 'mode', offset: 36, type: drm_mode_modeinfo },
]);
export type drm_mode_crtc = Decoded<typeof drm_mode_crtc>;

/** DRM_IOCTL_MODE_GETENCODER. */
export const drm_mode_get_encoder = defineStruct('drm_mode_get_encoder', 20, [
  { name: 'encoder_id', offset: 0, type: 'u32' },
  { name: 'encoder_type', offset: 4, type: 'u32' },
  { name: 'crtc_id', offset: 8, type: 'u32' },
  { name: 'possible_crtcs', offset: 12, type: 'u32' },
  { name: 'possible_clones', offset: 16, type: 'u32' },
]);
export type drm_mode_get_encoder = Decoded<typeof drm_mode_get_encoder>;

/**
 * DRM_IOCTL_MODE_GETCONNECTOR. `modes_ptr` points at `count_modes` drm_mode_modeinfo structs,
 * `encoders_ptr` at __u32 ids, `props_ptr` / `prop_values_ptr` at __u32 ids / __u64 values. A
 * call with `count_modes` 0 makes the kernel probe the connector first.
 */
export const drm_mode_get_connector = defineStruct('drm_mode_get_connector', 80, [
  { name: 'encoders_ptr', offset: 0, type: 'u64' },
  { name: 'modes_ptr', offset: 8, type: 'u64' },
  { name: 'props_ptr', offset: 16, type: 'u64' },
  { name: 'prop_values_ptr', offset: 24, type: 'u64' },
  { name: 'count_modes', offset: 32, type: 'u32' },
  { name: 'count_props', offset: 36, type: 'u32' },
  { name: 'count_encoders', offset: 40, type: 'u32' },
  { name: 'encoder_id', offset: 44, type: 'u32' },
  { name: 'connector_id', offset: 48, type: 'u32' },
  { name: 'connector_type', offset: 52, type: 'u32' },
  { name: 'connector_type_id', offset: 56, type: 'u32' },
  { name: 'connection', offset: 60, type: 'u32' },
  { name: 'mm_width', offset: 64, type: 'u32' },
  { name: 'mm_height', offset: 68, type: 'u32' },
  { name: 'subpixel', offset: 72, type: 'u32' },
  { name: 'pad', offset: 76, type: 'u32' },
]);
export type drm_mode_get_connector = Decoded<typeof drm_mode_get_connector>;

/** DRM_IOCTL_MODE_ADDFB (and GETFB): one plane, format given as bpp + depth. `fb_id` is out. */
export const drm_mode_fb_cmd = defineStruct('drm_mode_fb_cmd', 28, [
  { name: 'fb_id', offset: 0, type: 'u32' },
  { name: 'width', offset: 4, type: 'u32' },
  { name: 'height', offset: 8, type: 'u32' },
  { name: 'pitch', offset: 12, type: 'u32' },
  { name: 'bpp', offset: 16, type: 'u32' },
  { name: 'depth', offset: 20, type: 'u32' },
  { name: 'handle', offset: 24, type: 'u32' },
]);
export type drm_mode_fb_cmd = Decoded<typeof drm_mode_fb_cmd>;

/** The fields of drm_mode_fb_cmd2 up to the planes' offsets: all 3.16 has. */
const FB_CMD2_V1 = [
  { name: 'fb_id', offset: 0, type: 'u32' },
  { name: 'width', offset: 4, type: 'u32' },
  { name: 'height', offset: 8, type: 'u32' },
  { name: 'pixel_format', offset: 12, type: 'u32' },
  { name: 'flags', offset: 16, type: 'u32' },
  { name: 'handles', offset: 20, type: 'u32', count: 4 },
  { name: 'pitches', offset: 36, type: 'u32', count: 4 },
  { name: 'offsets', offset: 52, type: 'u32', count: 4 },
] as const;

/**
 * DRM_IOCTL_MODE_ADDFB2 as current headers declare it: a fourcc format and up to four planes,
 * with per-plane format modifiers (4.1, honoured only with DRM_MODE_FB_MODIFIERS). `fb_id` is out.
 */
export const drm_mode_fb_cmd2 = defineStruct('drm_mode_fb_cmd2', 104, [
  ...FB_CMD2_V1,
  // 4 bytes of implicit padding
  { name: 'modifier', offset: 72, type: 'u64', count: 4 },
]);
export type drm_mode_fb_cmd2 = Decoded<typeof drm_mode_fb_cmd2>;

/** drm_mode_fb_cmd2 as 3.16 declares it: no modifiers, 68 bytes. */
export const drm_mode_fb_cmd2_v1 = defineStruct('drm_mode_fb_cmd2', 68, FB_CMD2_V1);
export type drm_mode_fb_cmd2_v1 = Decoded<typeof drm_mode_fb_cmd2_v1>;

/** DRM_IOCTL_MODE_PAGE_FLIP (the request and struct only: the model does not flip). */
export const drm_mode_crtc_page_flip = defineStruct('drm_mode_crtc_page_flip', 24, [
  { name: 'crtc_id', offset: 0, type: 'u32' },
  { name: 'fb_id', offset: 4, type: 'u32' },
  { name: 'flags', offset: 8, type: 'u32' },
  { name: 'reserved', offset: 12, type: 'u32' },
  { name: 'user_data', offset: 16, type: 'u64' },
]);
export type drm_mode_crtc_page_flip = Decoded<typeof drm_mode_crtc_page_flip>;

// --- constants ----------------------------------------------------------------------------------

/** drm_mode_modeinfo.type bits. */
export const DRM_MODE_TYPE_BUILTIN = 1 << 0;
export const DRM_MODE_TYPE_PREFERRED = 1 << 3;
export const DRM_MODE_TYPE_DEFAULT = 1 << 4;
export const DRM_MODE_TYPE_USERDEF = 1 << 5;
export const DRM_MODE_TYPE_DRIVER = 1 << 6;

/** drm_mode_modeinfo.flags bits (xorg compatible). */
export const DRM_MODE_FLAG_PHSYNC = 1 << 0;
export const DRM_MODE_FLAG_NHSYNC = 1 << 1;
export const DRM_MODE_FLAG_PVSYNC = 1 << 2;
export const DRM_MODE_FLAG_NVSYNC = 1 << 3;
export const DRM_MODE_FLAG_INTERLACE = 1 << 4;
export const DRM_MODE_FLAG_DBLSCAN = 1 << 5;
/** Stereo layout field (3.13+); 0 is a plain 2D mode. */
export const DRM_MODE_FLAG_3D_MASK = 0x1f << 14;

/** drm_mode_get_encoder.encoder_type. */
export const DRM_MODE_ENCODER_NONE = 0;
export const DRM_MODE_ENCODER_DAC = 1;
export const DRM_MODE_ENCODER_TMDS = 2;
export const DRM_MODE_ENCODER_LVDS = 3;
export const DRM_MODE_ENCODER_TVDAC = 4;
export const DRM_MODE_ENCODER_VIRTUAL = 5;
export const DRM_MODE_ENCODER_DSI = 6;

/** drm_mode_get_connector.connector_type. */
export const DRM_MODE_CONNECTOR_Unknown = 0;
export const DRM_MODE_CONNECTOR_VGA = 1;
export const DRM_MODE_CONNECTOR_DVII = 2;
export const DRM_MODE_CONNECTOR_DVID = 3;
export const DRM_MODE_CONNECTOR_LVDS = 7;
export const DRM_MODE_CONNECTOR_DisplayPort = 10;
export const DRM_MODE_CONNECTOR_HDMIA = 11;
export const DRM_MODE_CONNECTOR_HDMIB = 12;
export const DRM_MODE_CONNECTOR_eDP = 14;
export const DRM_MODE_CONNECTOR_VIRTUAL = 15;
export const DRM_MODE_CONNECTOR_DSI = 16;

/**
 * drm_mode_get_connector.connection: the kernel's enum drm_connector_status, under libdrm's names
 * (xf86drmMode.h). `subpixel` is the kernel's enum subpixel_order (0 unknown, 1 horizontal RGB, ...),
 * one less than libdrm's drmModeSubPixel.
 */
export const DRM_MODE_CONNECTED = 1;
export const DRM_MODE_DISCONNECTED = 2;
export const DRM_MODE_UNKNOWNCONNECTION = 3;

/** drm_mode_fb_cmd2.flags. */
export const DRM_MODE_FB_INTERLACED = 1 << 0;
/** Use `modifier[]` (after 3.16: 4.1). */
export const DRM_MODE_FB_MODIFIERS = 1 << 1;

/** drm_mode_crtc_page_flip.flags. */
export const DRM_MODE_PAGE_FLIP_EVENT = 0x01;
export const DRM_MODE_PAGE_FLIP_ASYNC = 0x02;
export const DRM_MODE_PAGE_FLIP_FLAGS = DRM_MODE_PAGE_FLIP_EVENT | DRM_MODE_PAGE_FLIP_ASYNC;

// --- fourcc pixel formats (drm_fourcc.h) --------------------------------------------------------

/** fourcc_code(a, b, c, d): four ASCII characters, little-endian. */
export function fourcc_code(code: string): number {
  if (code.length !== 4) throw new RangeError(`fourcc_code: '${code}' is not four characters`);
  return (
    (code.charCodeAt(0) |
      (code.charCodeAt(1) << 8) |
      (code.charCodeAt(2) << 16) |
      (code.charCodeAt(3) << 24)) >>>
    0
  );
}

/** The format is big-endian instead of little-endian. */
export const DRM_FORMAT_BIG_ENDIAN = 0x80000000;

export const DRM_FORMAT_C8 = fourcc_code('C8  ');
export const DRM_FORMAT_RGB332 = fourcc_code('RGB8');
export const DRM_FORMAT_BGR233 = fourcc_code('BGR8');
export const DRM_FORMAT_XRGB4444 = fourcc_code('XR12');
export const DRM_FORMAT_XBGR4444 = fourcc_code('XB12');
export const DRM_FORMAT_RGBX4444 = fourcc_code('RX12');
export const DRM_FORMAT_BGRX4444 = fourcc_code('BX12');
export const DRM_FORMAT_ARGB4444 = fourcc_code('AR12');
export const DRM_FORMAT_ABGR4444 = fourcc_code('AB12');
export const DRM_FORMAT_RGBA4444 = fourcc_code('RA12');
export const DRM_FORMAT_BGRA4444 = fourcc_code('BA12');
export const DRM_FORMAT_XRGB1555 = fourcc_code('XR15');
export const DRM_FORMAT_XBGR1555 = fourcc_code('XB15');
export const DRM_FORMAT_RGBX5551 = fourcc_code('RX15');
export const DRM_FORMAT_BGRX5551 = fourcc_code('BX15');
export const DRM_FORMAT_ARGB1555 = fourcc_code('AR15');
export const DRM_FORMAT_ABGR1555 = fourcc_code('AB15');
export const DRM_FORMAT_RGBA5551 = fourcc_code('RA15');
export const DRM_FORMAT_BGRA5551 = fourcc_code('BA15');
export const DRM_FORMAT_RGB565 = fourcc_code('RG16');
export const DRM_FORMAT_BGR565 = fourcc_code('BG16');
export const DRM_FORMAT_RGB888 = fourcc_code('RG24');
export const DRM_FORMAT_BGR888 = fourcc_code('BG24');
export const DRM_FORMAT_XRGB8888 = fourcc_code('XR24');
export const DRM_FORMAT_XBGR8888 = fourcc_code('XB24');
export const DRM_FORMAT_RGBX8888 = fourcc_code('RX24');
export const DRM_FORMAT_BGRX8888 = fourcc_code('BX24');
export const DRM_FORMAT_ARGB8888 = fourcc_code('AR24');
export const DRM_FORMAT_ABGR8888 = fourcc_code('AB24');
export const DRM_FORMAT_RGBA8888 = fourcc_code('RA24');
export const DRM_FORMAT_BGRA8888 = fourcc_code('BA24');
export const DRM_FORMAT_XRGB2101010 = fourcc_code('XR30');
export const DRM_FORMAT_XBGR2101010 = fourcc_code('XB30');
export const DRM_FORMAT_RGBX1010102 = fourcc_code('RX30');
export const DRM_FORMAT_BGRX1010102 = fourcc_code('BX30');
export const DRM_FORMAT_ARGB2101010 = fourcc_code('AR30');
export const DRM_FORMAT_ABGR2101010 = fourcc_code('AB30');
export const DRM_FORMAT_RGBA1010102 = fourcc_code('RA30');
export const DRM_FORMAT_BGRA1010102 = fourcc_code('BA30');
export const DRM_FORMAT_YUYV = fourcc_code('YUYV');
export const DRM_FORMAT_YVYU = fourcc_code('YVYU');
export const DRM_FORMAT_UYVY = fourcc_code('UYVY');
export const DRM_FORMAT_VYUY = fourcc_code('VYUY');
export const DRM_FORMAT_AYUV = fourcc_code('AYUV');
export const DRM_FORMAT_NV12 = fourcc_code('NV12');
export const DRM_FORMAT_NV21 = fourcc_code('NV21');
export const DRM_FORMAT_NV16 = fourcc_code('NV16');
export const DRM_FORMAT_NV61 = fourcc_code('NV61');
export const DRM_FORMAT_NV24 = fourcc_code('NV24');
export const DRM_FORMAT_NV42 = fourcc_code('NV42');
export const DRM_FORMAT_YUV410 = fourcc_code('YUV9');
export const DRM_FORMAT_YVU410 = fourcc_code('YVU9');
export const DRM_FORMAT_YUV411 = fourcc_code('YU11');
export const DRM_FORMAT_YVU411 = fourcc_code('YV11');
export const DRM_FORMAT_YUV420 = fourcc_code('YU12');
export const DRM_FORMAT_YVU420 = fourcc_code('YV12');
export const DRM_FORMAT_YUV422 = fourcc_code('YU16');
export const DRM_FORMAT_YVU422 = fourcc_code('YV16');
export const DRM_FORMAT_YUV444 = fourcc_code('YU24');
export const DRM_FORMAT_YVU444 = fourcc_code('YV24');

// --- request numbers (core ioctls in [0xA0, 0xBC)) ----------------------------------------------

export const DRM_IOCTL_MODE_GETRESOURCES = DRM_IOWR(0xa0, drm_mode_card_res);
export const DRM_IOCTL_MODE_GETCRTC = DRM_IOWR(0xa1, drm_mode_crtc);
export const DRM_IOCTL_MODE_SETCRTC = DRM_IOWR(0xa2, drm_mode_crtc);
export const DRM_IOCTL_MODE_GETENCODER = DRM_IOWR(0xa6, drm_mode_get_encoder);
export const DRM_IOCTL_MODE_GETCONNECTOR = DRM_IOWR(0xa7, drm_mode_get_connector);
export const DRM_IOCTL_MODE_GETFB = DRM_IOWR(0xad, drm_mode_fb_cmd);
export const DRM_IOCTL_MODE_ADDFB = DRM_IOWR(0xae, drm_mode_fb_cmd);
/** The argument is the fb id, an unsigned int. */
export const DRM_IOCTL_MODE_RMFB = DRM_IOWR(0xaf, 4);
export const DRM_IOCTL_MODE_PAGE_FLIP = DRM_IOWR(0xb0, drm_mode_crtc_page_flip);
/** ADDFB2 with the current 104-byte struct (what a client built against 4.1+ headers sends). */
export const DRM_IOCTL_MODE_ADDFB2 = DRM_IOWR(0xb8, drm_mode_fb_cmd2);
/** ADDFB2 as 3.16 defines it (68 bytes). drm_ioctl() dispatches on nr only: both reach ADDFB2. */
export const DRM_IOCTL_MODE_ADDFB2_V1 = DRM_IOWR(0xb8, drm_mode_fb_cmd2_v1);
