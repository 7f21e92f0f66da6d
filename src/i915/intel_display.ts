import { ERRNO } from '../base/errno.js';
import {
  DrmConnector,
  DrmCrtc,
  type DrmDisplayMode,
  DrmEncoder,
  DrmFramebuffer,
  type DrmFramebufferFuncs,
  type DrmModeConfigFuncs,
  type DrmModeSet,
  SubPixelHorizontalRGB,
  connector_status_connected,
  drm_connector_init,
  drm_crtc_init,
  drm_encoder_init,
  drm_framebuffer_cleanup,
  drm_framebuffer_init,
  drm_helper_mode_fill_fb_struct,
  drm_mode_connector_attach_encoder,
} from '../drm/drm_crtc.js';
import type { DrmDevice } from '../drm/drm_device.js';
import type { DrmFile } from '../drm/drm_file.js';
import {
  drm_gem_object_lookup,
  drm_gem_object_unreference,
  drm_gem_object_unreference_unlocked,
} from '../drm/drm_gem.js';
import type { KGen } from '../sched/task.js';
import * as uapi from '../uapi/i915_drm.js';
import * as kms from '../uapi/drm_mode.js';
import { to_i915 } from './i915_drv.js';
import { i915_mutex_lock_interruptible } from './i915_gem.js';
import {
  i915_gem_object_pin_to_display_plane,
  i915_gem_object_unpin_from_display_plane,
} from './i915_gem_domain.js';
import { type DrmI915GemObject, to_intel_bo } from './i915_gem_object.js';
import { is_userptr } from './i915_gem_userptr.js';

/**
 * The display side of i915 that a legacy KMS client reaches (Linux 3.16
 * drivers/gpu/drm/i915/intel_display.c), cut to one pipe: one CRTC (pipe A), one HDMI encoder and
 * its connector, permanently connected to a 1024x768 monitor. What is modelled is what touches
 * GEM: framebuffers wrapping GEM objects (intel_user_framebuffer_create with 3.16's checks), and
 * scanout pinning — SETCRTC pins the new framebuffer's object uncached into the mappable GGTT
 * (intel_pin_and_fence_fb_obj) and unpins the one it replaces; switching the CRTC off, RMFB of
 * the scanout fb, or its file's close unpin it. Pipes, PLLs, planes' registers, vblanks, fences
 * and page flips are not modelled.
 *
 * Lock order: the KMS core calls in holding the mode locks (mode_config.mutex → connection_mutex
 * → crtc.mutex); pinning and unpinning take struct_mutex inside them.
 */

/** The one mode the monitor offers: VESA 1024x768@60 (DMT, 65 MHz, -hsync -vsync). */
export const MODE_1024x768: DrmDisplayMode = {
  clock: 65000,
  hdisplay: 1024,
  hsync_start: 1048,
  hsync_end: 1184,
  htotal: 1344,
  hskew: 0,
  vdisplay: 768,
  vsync_start: 771,
  vsync_end: 777,
  vtotal: 806,
  vscan: 0,
  vrefresh: 60,
  flags: kms.DRM_MODE_FLAG_NHSYNC | kms.DRM_MODE_FLAG_NVSYNC,
  type: kms.DRM_MODE_TYPE_DRIVER | kms.DRM_MODE_TYPE_PREFERRED,
  name: Array.from({ length: 32 }, (_, i) => (i < 8 ? '1024x768'.charCodeAt(i) : 0)),
};

/** struct intel_framebuffer: a framebuffer and the GEM object it scans out. */
export class IntelFramebuffer extends DrmFramebuffer {
  obj!: DrmI915GemObject;
}

function to_intel_framebuffer(fb: DrmFramebuffer): IntelFramebuffer {
  if (fb instanceof IntelFramebuffer) return fb;
  return fb.dev.sched.BUG('framebuffer is not an intel_framebuffer');
}

/** intel_user_framebuffer_destroy(): the last fb reference went; drop the object's. */
function* intel_user_framebuffer_destroy(fb: DrmFramebuffer): KGen {
  const dev = fb.dev;
  const intel_fb = to_intel_framebuffer(fb);
  yield* drm_framebuffer_cleanup(fb);
  yield* dev.struct_mutex.lock();
  const obj = intel_fb.obj;
  dev.sched.WARN_ON(obj.framebuffer_references-- <= 0, `${obj.toString()}: framebuffer_references underflow`);
  yield* drm_gem_object_unreference(obj);
  dev.struct_mutex.unlock();
}

const intel_fb_funcs: DrmFramebufferFuncs = { destroy: intel_user_framebuffer_destroy };

/** intel_align_height(): X tiles are 8 rows high on gen 3+. */
function intel_align_height(height: number, tiled: boolean): number {
  const tile_height = tiled ? 8 : 1;
  return Math.ceil(height / tile_height) * tile_height;
}

/** Whether the display engine of `gen` can scan out `format` (intel_framebuffer_init's switch). */
function intel_format_ok(gen: number, format: number): boolean {
  switch (format) {
    case kms.DRM_FORMAT_C8:
    case kms.DRM_FORMAT_RGB565:
    case kms.DRM_FORMAT_XRGB8888:
    case kms.DRM_FORMAT_ARGB8888:
      return true;
    case kms.DRM_FORMAT_XRGB1555:
    case kms.DRM_FORMAT_ARGB1555:
      return gen <= 3;
    case kms.DRM_FORMAT_XBGR8888:
    case kms.DRM_FORMAT_ABGR8888:
    case kms.DRM_FORMAT_XRGB2101010:
    case kms.DRM_FORMAT_ARGB2101010:
    case kms.DRM_FORMAT_XBGR2101010:
    case kms.DRM_FORMAT_ABGR2101010:
      return gen >= 4;
    case kms.DRM_FORMAT_YUYV:
    case kms.DRM_FORMAT_UYVY:
    case kms.DRM_FORMAT_YVYU:
    case kms.DRM_FORMAT_VYUY:
      return gen >= 5;
    default:
      return false;
  }
}

/**
 * intel_framebuffer_init() (3.16's checks in 3.16's order, all -EINVAL): not a userptr object
 * (4.4's fix, unless 'userptr-framebuffer'), no Y tiling, pitch 64-byte aligned and at most 32 KiB
 * (gen 5+), equal to the tiling stride when tiled, a format the display can scan, no offset in
 * plane 0, and the object large enough for the (tile-aligned) height. struct_mutex held.
 */
function* intel_framebuffer_init(
  dev: DrmDevice,
  intel_fb: IntelFramebuffer,
  mode_cmd: kms.drm_mode_fb_cmd2_v1,
  obj: DrmI915GemObject,
): KGen<number> {
  const dp = to_i915(dev);
  dev.sched.WARN_ON(!dev.struct_mutex.is_locked(), 'intel_framebuffer_init without struct_mutex');
  if (is_userptr(obj) && !dp.config.bugs.has('userptr-framebuffer')) {
    // 4.4 (cc917ab4, "Deny wrapping an userptr into a framebuffer"): a scanout pin would outlive
    // the process's mapping, and a pinned userptr cannot be invalidated (§8.7).
    return -ERRNO.EINVAL;
  }
  if (obj.tiling_mode === uapi.I915_TILING_Y) return -ERRNO.EINVAL;
  const pitch = mode_cmd.pitches[0]!;
  if (pitch & 63) return -ERRNO.EINVAL;
  // Gen 5+ (not Valleyview): 32 KiB whether tiled or not.
  const pitch_limit = 32 * 1024;
  if (pitch > pitch_limit) return -ERRNO.EINVAL;
  if (obj.tiling_mode !== uapi.I915_TILING_NONE && pitch !== obj.stride) return -ERRNO.EINVAL;
  if (!intel_format_ok(dp.info.gen, mode_cmd.pixel_format)) return -ERRNO.EINVAL;
  // LINOFF/TILEOFF would need adjusting for an offset.
  if (mode_cmd.offsets[0] !== 0) return -ERRNO.EINVAL;
  const aligned_height = intel_align_height(mode_cmd.height, obj.tiling_mode !== uapi.I915_TILING_NONE);
  if (obj.size < aligned_height * pitch) return -ERRNO.EINVAL;
  drm_helper_mode_fill_fb_struct(intel_fb, mode_cmd);
  intel_fb.obj = obj;
  obj.framebuffer_references++;
  return yield* drm_framebuffer_init(dev, intel_fb, intel_fb_funcs);
}

/**
 * intel_framebuffer_create(): a new intel_framebuffer holding the caller's object reference, or
 * -errno (the reference dropped).
 */
function* intel_framebuffer_create(
  dev: DrmDevice,
  mode_cmd: kms.drm_mode_fb_cmd2_v1,
  obj: DrmI915GemObject,
): KGen<DrmFramebuffer | number> {
  const lock = yield* i915_mutex_lock_interruptible(dev);
  if (lock) {
    yield* drm_gem_object_unreference_unlocked(obj);
    return lock;
  }
  const intel_fb = new IntelFramebuffer();
  const ret = yield* intel_framebuffer_init(dev, intel_fb, mode_cmd, obj);
  if (ret) yield* drm_gem_object_unreference(obj);
  dev.struct_mutex.unlock();
  return ret ? ret : intel_fb;
}

/** intel_user_framebuffer_create(): mode_config.funcs->fb_create. -ENOENT for a bad handle. */
function* intel_user_framebuffer_create(
  dev: DrmDevice,
  filp: DrmFile,
  mode_cmd: kms.drm_mode_fb_cmd2_v1,
): KGen<DrmFramebuffer | number> {
  const gem = drm_gem_object_lookup(dev, filp, mode_cmd.handles[0]!);
  if (!gem) return -ERRNO.ENOENT;
  return yield* intel_framebuffer_create(dev, mode_cmd, to_intel_bo(gem));
}

const intel_mode_funcs: DrmModeConfigFuncs = { fb_create: intel_user_framebuffer_create };

// --- scanout pinning --------------------------------------------------------------------------------

/**
 * intel_pin_and_fence_fb_obj(): pin for scanout, uninterruptibly (a modeset cannot back off).
 * Linear buffers need 4 KiB alignment on gen 4+; X-tiled ones what the fence needs (4 KiB here);
 * Y tiling was refused at fb creation. Fences are not modelled. struct_mutex held.
 */
export function* intel_pin_and_fence_fb_obj(dev: DrmDevice, obj: DrmI915GemObject): KGen<number> {
  const dp = to_i915(dev);
  let alignment: number;
  switch (obj.tiling_mode) {
    case uapi.I915_TILING_NONE:
      alignment = 4 * 1024;
      break;
    case uapi.I915_TILING_X:
      alignment = 0;
      break;
    default:
      dev.sched.WARN_ON(true, 'Y tiled bo slipped through, driver bug!');
      return -ERRNO.EINVAL;
  }
  dp.interruptible = false;
  const ret = yield* i915_gem_object_pin_to_display_plane(obj, alignment);
  dp.interruptible = true;
  return ret;
}

/** intel_unpin_fb_obj(). struct_mutex held. */
export function intel_unpin_fb_obj(obj: DrmI915GemObject): void {
  i915_gem_object_unpin_from_display_plane(obj);
}

/** The HDMI port's clock limit (3.16 hdmi_portclock_limit): 225 MHz, 300 MHz on Haswell+/gen 8. */
function hdmi_portclock_limit(gen: number): number {
  return gen >= 8 ? 300000 : 225000;
}

/**
 * The checks of 3.16's pipe-config computation that a plausible request meets: a zero hsync
 * front porch (WaPruneModeWithIncorrectHsyncOffset), a clock the HDMI port cannot drive, and a
 * clock of 0 (no PLL settings). -EINVAL.
 */
function intel_modeset_compute_config(gen: number, mode: DrmDisplayMode): number {
  if (mode.hsync_start === mode.hdisplay) return -ERRNO.EINVAL;
  if (mode.clock > hdmi_portclock_limit(gen)) return -ERRNO.EINVAL;
  if (mode.clock === 0) return -ERRNO.EINVAL;
  return 0;
}

/** The pipe's state beyond the core's crtc fields. */
class IntelCrtc extends DrmCrtc {
  /** The encoder feeding the pipe. */
  encoder: DrmEncoder | null = null;
  connector: DrmConnector | null = null;
}

/**
 * intel_crtc_disable(): the pipe stops and the scanout buffer is unpinned. Mode locks held.
 */
function* intel_crtc_disable(crtc: IntelCrtc): KGen {
  const dev = crtc.dev;
  crtc.enabled = false;
  crtc.mode = null;
  if (crtc.encoder) crtc.encoder.crtc = null;
  if (crtc.connector) crtc.connector.encoder = null;
  const fb = crtc.primary.fb;
  if (fb) {
    yield* dev.struct_mutex.lock();
    intel_unpin_fb_obj(to_intel_framebuffer(fb).obj);
    dev.struct_mutex.unlock();
    crtc.primary.fb = null;
  }
}

/**
 * intel_crtc_set_config(): a modeset or a base update on the pipe — the new framebuffer's object
 * is pinned first (failure leaves everything as it was; -EAGAIN for a userptr whose pages a worker
 * must fetch), then the pipe scans it out and the old one is unpinned — or, with no fb, the pipe
 * is switched off. Mode locks held; struct_mutex taken around pin and unpin.
 */
function* intel_crtc_set_config(set: DrmModeSet): KGen<number> {
  const crtc = set.crtc;
  if (!(crtc instanceof IntelCrtc)) return crtc.dev.sched.BUG("set_config of a CRTC that is not i915's");
  const dev = crtc.dev;
  const dp = to_i915(dev);
  // Enforce the sane interface: no mode means off.
  const fb = set.mode ? set.fb : null;
  if (!fb || !set.mode) {
    yield* intel_crtc_disable(crtc);
    return 0;
  }
  let ret = intel_modeset_compute_config(dp.info.gen, set.mode);
  if (ret) return ret;
  const obj = to_intel_framebuffer(fb).obj;
  yield* dev.struct_mutex.lock();
  ret = yield* intel_pin_and_fence_fb_obj(dev, obj);
  dev.struct_mutex.unlock();
  if (ret) return ret;
  const old_fb = crtc.primary.fb;
  crtc.primary.fb = fb;
  crtc.x = set.x;
  crtc.y = set.y;
  crtc.mode = { ...set.mode, name: [...set.mode.name] };
  crtc.enabled = true;
  // Route the connectors in the set through the encoder; one left out is disconnected.
  const routed = crtc.connector !== null && set.connectors.includes(crtc.connector);
  if (crtc.encoder) crtc.encoder.crtc = routed ? crtc : null;
  if (crtc.connector) crtc.connector.encoder = routed ? crtc.encoder : null;
  if (old_fb) {
    yield* dev.struct_mutex.lock();
    intel_unpin_fb_obj(to_intel_framebuffer(old_fb).obj);
    dev.struct_mutex.unlock();
  }
  return 0;
}

/** The HDMI connector's probe: always connected, one mode. */
function* intel_hdmi_fill_modes(connector: DrmConnector, max_width: number, max_height: number): KGen {
  connector.status = connector_status_connected;
  connector.modes = [MODE_1024x768].filter((m) => m.hdisplay <= max_width && m.vdisplay <= max_height);
  yield* [];
}

/**
 * intel_modeset_init(): the mode limits (8192x8192 on gen 4+), the GET_CAP hints, fb_create,
 * and the one pipe: CRTC, HDMI encoder and connector. Driver load; nothing is open yet.
 */
export function intel_modeset_init(dev: DrmDevice): void {
  const mc = dev.mode_config;
  mc.min_width = 0;
  mc.min_height = 0;
  mc.max_width = 8192;
  mc.max_height = 8192;
  mc.preferred_depth = 24;
  mc.prefer_shadow = 1;
  mc.funcs = intel_mode_funcs;
  const crtc = new IntelCrtc(dev, { set_config: intel_crtc_set_config }, dev.sched);
  crtc.gamma_size = 256;
  const encoder = new DrmEncoder(dev, kms.DRM_MODE_ENCODER_TMDS);
  const connector = new DrmConnector(
    dev,
    { fill_modes: intel_hdmi_fill_modes },
    kms.DRM_MODE_CONNECTOR_HDMIA,
  );
  if (drm_crtc_init(dev, crtc) || drm_encoder_init(dev, encoder) || drm_connector_init(dev, connector)) {
    dev.sched.BUG('intel_modeset_init: no mode object ids');
  }
  // Pipe A only; an encoder can always be cloned with itself.
  encoder.possible_crtcs = 1;
  encoder.possible_clones = 1;
  connector.display_info.width_mm = 304;
  connector.display_info.height_mm = 228;
  connector.display_info.subpixel_order = SubPixelHorizontalRGB;
  drm_mode_connector_attach_encoder(connector, encoder);
  crtc.encoder = encoder;
  crtc.connector = connector;
}
