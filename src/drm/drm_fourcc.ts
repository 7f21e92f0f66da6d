import { ERRNO } from '../base/errno.js';
import * as f from '../uapi/drm_mode.js';

/**
 * Pixel-format facts the KMS core needs (Linux 3.16 drivers/gpu/drm/drm_crtc.c, where these
 * helpers lived before drm_fourcc.c): which fourcc codes the core accepts at all, how many planes
 * a format has, bytes per pixel per plane, chroma subsampling, and the legacy bpp/depth mapping.
 */

const THREE_PLANE = new Set([
  f.DRM_FORMAT_YUV410,
  f.DRM_FORMAT_YVU410,
  f.DRM_FORMAT_YUV411,
  f.DRM_FORMAT_YVU411,
  f.DRM_FORMAT_YUV420,
  f.DRM_FORMAT_YVU420,
  f.DRM_FORMAT_YUV422,
  f.DRM_FORMAT_YVU422,
  f.DRM_FORMAT_YUV444,
  f.DRM_FORMAT_YVU444,
]);
const TWO_PLANE = new Set([
  f.DRM_FORMAT_NV12,
  f.DRM_FORMAT_NV21,
  f.DRM_FORMAT_NV16,
  f.DRM_FORMAT_NV61,
  f.DRM_FORMAT_NV24,
  f.DRM_FORMAT_NV42,
]);

/** The formats 3.16's format_check() accepts (anything else: -EINVAL before the driver runs). */
const CORE_FORMATS: ReadonlySet<number> = new Set([
  f.DRM_FORMAT_C8,
  f.DRM_FORMAT_RGB332,
  f.DRM_FORMAT_BGR233,
  f.DRM_FORMAT_XRGB4444,
  f.DRM_FORMAT_XBGR4444,
  f.DRM_FORMAT_RGBX4444,
  f.DRM_FORMAT_BGRX4444,
  f.DRM_FORMAT_ARGB4444,
  f.DRM_FORMAT_ABGR4444,
  f.DRM_FORMAT_RGBA4444,
  f.DRM_FORMAT_BGRA4444,
  f.DRM_FORMAT_XRGB1555,
  f.DRM_FORMAT_XBGR1555,
  f.DRM_FORMAT_RGBX5551,
  f.DRM_FORMAT_BGRX5551,
  f.DRM_FORMAT_ARGB1555,
  f.DRM_FORMAT_ABGR1555,
  f.DRM_FORMAT_RGBA5551,
  f.DRM_FORMAT_BGRA5551,
  f.DRM_FORMAT_RGB565,
  f.DRM_FORMAT_BGR565,
  f.DRM_FORMAT_RGB888,
  f.DRM_FORMAT_BGR888,
  f.DRM_FORMAT_XRGB8888,
  f.DRM_FORMAT_XBGR8888,
  f.DRM_FORMAT_RGBX8888,
  f.DRM_FORMAT_BGRX8888,
  f.DRM_FORMAT_ARGB8888,
  f.DRM_FORMAT_ABGR8888,
  f.DRM_FORMAT_RGBA8888,
  f.DRM_FORMAT_BGRA8888,
  f.DRM_FORMAT_XRGB2101010,
  f.DRM_FORMAT_XBGR2101010,
  f.DRM_FORMAT_RGBX1010102,
  f.DRM_FORMAT_BGRX1010102,
  f.DRM_FORMAT_ARGB2101010,
  f.DRM_FORMAT_ABGR2101010,
  f.DRM_FORMAT_RGBA1010102,
  f.DRM_FORMAT_BGRA1010102,
  f.DRM_FORMAT_YUYV,
  f.DRM_FORMAT_YVYU,
  f.DRM_FORMAT_UYVY,
  f.DRM_FORMAT_VYUY,
  f.DRM_FORMAT_AYUV,
  // The planar formats, two planes and three.
  ...TWO_PLANE,
  ...THREE_PLANE,
]);

/** format_check(): 0 or -EINVAL (the big-endian bit is ignored). */
export function format_check(pixel_format: number): number {
  return CORE_FORMATS.has((pixel_format & ~f.DRM_FORMAT_BIG_ENDIAN) >>> 0) ? 0 : -ERRNO.EINVAL;
}

const PACKED_YUV = new Set([f.DRM_FORMAT_YUYV, f.DRM_FORMAT_YVYU, f.DRM_FORMAT_UYVY, f.DRM_FORMAT_VYUY]);

/** drm_format_num_planes(). */
export function drm_format_num_planes(format: number): number {
  if (THREE_PLANE.has(format)) return 3;
  if (TWO_PLANE.has(format)) return 2;
  return 1;
}

/** drm_fb_get_bpp_depth(): [depth, bits per pixel]; [0, 0] for formats it does not know. */
export function drm_fb_get_bpp_depth(format: number): [number, number] {
  switch (format) {
    case f.DRM_FORMAT_C8:
    case f.DRM_FORMAT_RGB332:
    case f.DRM_FORMAT_BGR233:
      return [8, 8];
    case f.DRM_FORMAT_XRGB1555:
    case f.DRM_FORMAT_XBGR1555:
    case f.DRM_FORMAT_RGBX5551:
    case f.DRM_FORMAT_BGRX5551:
    case f.DRM_FORMAT_ARGB1555:
    case f.DRM_FORMAT_ABGR1555:
    case f.DRM_FORMAT_RGBA5551:
    case f.DRM_FORMAT_BGRA5551:
      return [15, 16];
    case f.DRM_FORMAT_RGB565:
    case f.DRM_FORMAT_BGR565:
      return [16, 16];
    case f.DRM_FORMAT_RGB888:
    case f.DRM_FORMAT_BGR888:
      return [24, 24];
    case f.DRM_FORMAT_XRGB8888:
    case f.DRM_FORMAT_XBGR8888:
    case f.DRM_FORMAT_RGBX8888:
    case f.DRM_FORMAT_BGRX8888:
      return [24, 32];
    case f.DRM_FORMAT_XRGB2101010:
    case f.DRM_FORMAT_XBGR2101010:
    case f.DRM_FORMAT_RGBX1010102:
    case f.DRM_FORMAT_BGRX1010102:
    case f.DRM_FORMAT_ARGB2101010:
    case f.DRM_FORMAT_ABGR2101010:
    case f.DRM_FORMAT_RGBA1010102:
    case f.DRM_FORMAT_BGRA1010102:
      return [30, 32];
    case f.DRM_FORMAT_ARGB8888:
    case f.DRM_FORMAT_ABGR8888:
    case f.DRM_FORMAT_RGBA8888:
    case f.DRM_FORMAT_BGRA8888:
      return [32, 32];
    default:
      return [0, 0];
  }
}

/** drm_format_plane_cpp(): bytes per pixel of `plane`, 0 for a plane the format does not have. */
export function drm_format_plane_cpp(format: number, plane: number): number {
  if (plane >= drm_format_num_planes(format)) return 0;
  if (PACKED_YUV.has(format)) return 2;
  if (TWO_PLANE.has(format)) return plane ? 2 : 1;
  if (THREE_PLANE.has(format)) return 1;
  return drm_fb_get_bpp_depth(format)[1] >> 3;
}

/** drm_format_horz_chroma_subsampling(). */
export function drm_format_horz_chroma_subsampling(format: number): number {
  switch (format) {
    case f.DRM_FORMAT_YUV411:
    case f.DRM_FORMAT_YVU411:
    case f.DRM_FORMAT_YUV410:
    case f.DRM_FORMAT_YVU410:
      return 4;
    case f.DRM_FORMAT_YUYV:
    case f.DRM_FORMAT_YVYU:
    case f.DRM_FORMAT_UYVY:
    case f.DRM_FORMAT_VYUY:
    case f.DRM_FORMAT_NV12:
    case f.DRM_FORMAT_NV21:
    case f.DRM_FORMAT_NV16:
    case f.DRM_FORMAT_NV61:
    case f.DRM_FORMAT_YUV422:
    case f.DRM_FORMAT_YVU422:
    case f.DRM_FORMAT_YUV420:
    case f.DRM_FORMAT_YVU420:
      return 2;
    default:
      return 1;
  }
}

/** drm_format_vert_chroma_subsampling(). */
export function drm_format_vert_chroma_subsampling(format: number): number {
  switch (format) {
    case f.DRM_FORMAT_YUV410:
    case f.DRM_FORMAT_YVU410:
      return 4;
    case f.DRM_FORMAT_YUV420:
    case f.DRM_FORMAT_YVU420:
    case f.DRM_FORMAT_NV12:
    case f.DRM_FORMAT_NV21:
      return 2;
    default:
      return 1;
  }
}

/** drm_mode_legacy_fb_format(): the fourcc ADDFB's bpp/depth stand for (unknown bpp: XRGB8888). */
export function drm_mode_legacy_fb_format(bpp: number, depth: number): number {
  switch (bpp) {
    case 8:
      return f.DRM_FORMAT_C8;
    case 16:
      return depth === 15 ? f.DRM_FORMAT_XRGB1555 : f.DRM_FORMAT_RGB565;
    case 24:
      return f.DRM_FORMAT_RGB888;
    case 32:
      if (depth === 24) return f.DRM_FORMAT_XRGB8888;
      if (depth === 30) return f.DRM_FORMAT_XRGB2101010;
      return f.DRM_FORMAT_ARGB8888;
    default:
      return f.DRM_FORMAT_XRGB8888;
  }
}
