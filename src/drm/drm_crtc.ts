import { ERRNO } from '../base/errno.js';
import { current } from '../mm/current.js';
import { copy_from_user, copy_to_user } from '../mm/uaccess.js';
import { Mutex } from '../sched/mutex.js';
import type { Scheduler } from '../sched/scheduler.js';
import type { KGen } from '../sched/task.js';
import {
  DRM_DISPLAY_MODE_LEN,
  DRM_MODE_FB_INTERLACED,
  drm_mode_card_res,
  drm_mode_crtc,
  drm_mode_fb_cmd,
  drm_mode_fb_cmd2_v1,
  drm_mode_get_connector,
  drm_mode_get_encoder,
  drm_mode_modeinfo,
} from '../uapi/drm_mode.js';
import { DRIVER_MODESET, type DrmDevice, drm_core_check_feature } from './drm_device.js';
import type { DrmFile } from './drm_file.js';
import {
  drm_fb_get_bpp_depth,
  drm_format_horz_chroma_subsampling,
  drm_format_num_planes,
  drm_format_plane_cpp,
  drm_format_vert_chroma_subsampling,
  drm_mode_legacy_fb_format,
  format_check,
} from './drm_fourcc.js';
import { Idr } from './idr.js';

/**
 * The legacy KMS core (Linux 3.16 drivers/gpu/drm/drm_crtc.c): mode objects with ids, one idr for
 * all of them; framebuffers (refcounted, listed per file, removed at close); CRTCs with their
 * primary plane, encoders and connectors; and the ioctls a display client uses to discover them
 * and scan a framebuffer out: GETRESOURCES, GETCRTC, SETCRTC, GETENCODER, GETCONNECTOR, ADDFB,
 * ADDFB2, RMFB. Everything hardware-specific is the driver's, through the callback tables 3.16
 * has (drm_mode_config_funcs.fb_create, drm_crtc_funcs.set_config, drm_framebuffer_funcs.destroy,
 * drm_connector_funcs.fill_modes): nothing here knows i915.
 *
 * Locking, as 3.16 does it: `file.fbs_lock` → `mode_config.fb_lock` for the per-file list and the
 * fb idr; drm_modeset_lock_all() = `mode_config.mutex` → `connection_mutex` → every `crtc.mutex`
 * (ww_mutexes under one acquire context in 3.16; taken in that fixed order here) around every
 * mode change. The driver's callbacks run under them and take `struct_mutex` inside (i915 pins
 * the scanout buffer), so the order is mode locks → struct_mutex; nothing holding struct_mutex
 * takes a mode lock.
 */

// --- mode objects ---------------------------------------------------------------------------------

export const DRM_MODE_OBJECT_CRTC = 0xcccccccc;
export const DRM_MODE_OBJECT_CONNECTOR = 0xc0c0c0c0;
export const DRM_MODE_OBJECT_ENCODER = 0xe0e0e0e0;
export const DRM_MODE_OBJECT_MODE = 0xdededede;
export const DRM_MODE_OBJECT_PROPERTY = 0xb0b0b0b0;
export const DRM_MODE_OBJECT_FB = 0xfbfbfbfb;
export const DRM_MODE_OBJECT_BLOB = 0xbbbbbbbb;
export const DRM_MODE_OBJECT_PLANE = 0xeeeeeeee;

/** struct drm_mode_object: an id in the device's idr (0 once unregistered) and the object type. */
export interface DrmModeObject {
  id: number;
  readonly type: number;
}

type ModeObjectOwner = DrmCrtc | DrmEncoder | DrmConnector | DrmFramebuffer;

/** enum drm_connector_status. */
export const connector_status_connected = 1;
export const connector_status_disconnected = 2;
export const connector_status_unknown = 3;

/** enum subpixel_order. */
export const SubPixelUnknown = 0;
export const SubPixelHorizontalRGB = 1;

/** struct drm_display_mode, as far as the model keeps it: the user-visible timing. */
export type DrmDisplayMode = drm_mode_modeinfo;

/** A framebuffer's callbacks (struct drm_framebuffer_funcs). */
export interface DrmFramebufferFuncs {
  /** The last reference went: release the driver's part (i915 drops its GEM object). */
  destroy(fb: DrmFramebuffer): KGen;
}

/** struct drm_framebuffer. */
export class DrmFramebuffer {
  readonly base: DrmModeObject = { id: 0, type: DRM_MODE_OBJECT_FB };
  dev!: DrmDevice;
  funcs!: DrmFramebufferFuncs;
  /**
   * kref: the creating file's list, the idr while registered, each CRTC scanning it out, and
   * lookups in flight.
   */
  refcount = 0;
  width = 0;
  height = 0;
  readonly pitches = [0, 0, 0, 0];
  readonly offsets = [0, 0, 0, 0];
  pixel_format = 0;
  depth = 0;
  bits_per_pixel = 0;
  flags = 0;
  /** filp_head: the file whose `fbs` list holds it, null once off the list. */
  file: DrmFile | null = null;
  /** Model bookkeeping: destroy ran. */
  freed = false;
}

/** The CRTC's primary plane (3.16's universal-plane drm_plane, reduced to what it scans out). */
export interface DrmPlane {
  fb: DrmFramebuffer | null;
  crtc: DrmCrtc | null;
}

/** struct drm_mode_set: what SETCRTC asks of a CRTC. */
export interface DrmModeSet {
  crtc: DrmCrtc;
  fb: DrmFramebuffer | null;
  x: number;
  y: number;
  mode: DrmDisplayMode | null;
  connectors: DrmConnector[];
}

/** struct drm_crtc_funcs (the part legacy SETCRTC uses). */
export interface DrmCrtcFuncs {
  /**
   * Apply `set` (mode, framebuffer, position and connectors; fb null: switch the CRTC off). The
   * driver updates `crtc.primary.fb`, `enabled`, `mode`, `x`, `y`. 0 or -errno, CRTC unchanged
   * on error. Called with every mode lock held.
   */
  set_config(set: DrmModeSet): KGen<number>;
}

/** struct drm_crtc. */
export class DrmCrtc {
  readonly base: DrmModeObject = { id: 0, type: DRM_MODE_OBJECT_CRTC };
  readonly primary: DrmPlane = { fb: null, crtc: null };
  /** The crtc lock (a drm_modeset_lock in 3.16). */
  readonly mutex: Mutex;
  /** A mode is set and the pipe runs. Protected by the mode locks. */
  enabled = false;
  mode: DrmDisplayMode | null = null;
  x = 0;
  y = 0;
  gamma_size = 0;
  /** drm_mode_set_config_internal()'s scratch: the fb before set_config. */
  old_fb: DrmFramebuffer | null = null;

  constructor(
    readonly dev: DrmDevice,
    readonly funcs: DrmCrtcFuncs,
    sched: Scheduler,
  ) {
    this.mutex = new Mutex(sched, 'crtc.mutex', '&crtc->mutex');
  }
}

/** struct drm_encoder. */
export class DrmEncoder {
  readonly base: DrmModeObject = { id: 0, type: DRM_MODE_OBJECT_ENCODER };
  /** The CRTC it is routed to. Protected by the mode locks. */
  crtc: DrmCrtc | null = null;
  possible_crtcs = 0;
  possible_clones = 0;

  constructor(
    readonly dev: DrmDevice,
    readonly encoder_type: number,
  ) {}
}

/** struct drm_connector_funcs (probing). */
export interface DrmConnectorFuncs {
  /** Detect the sink and fill `connector.modes` (3.16: drm_helper_probe_single_connector_modes). */
  fill_modes(connector: DrmConnector, max_width: number, max_height: number): KGen;
}

/** struct drm_connector. */
export class DrmConnector {
  readonly base: DrmModeObject = { id: 0, type: DRM_MODE_OBJECT_CONNECTOR };
  connector_type_id = 0;
  status = connector_status_unknown;
  readonly display_info = { width_mm: 0, height_mm: 0, subpixel_order: SubPixelUnknown };
  /** Encoders that can drive it (ids; DRM_CONNECTOR_MAX_ENCODER slots in 3.16). */
  readonly encoder_ids: number[] = [];
  /** The encoder currently driving it. Protected by connection_mutex. */
  encoder: DrmEncoder | null = null;
  /** The probed modes (empty until the first fill_modes). Protected by mode_config.mutex. */
  modes: DrmDisplayMode[] = [];

  constructor(
    readonly dev: DrmDevice,
    readonly funcs: DrmConnectorFuncs,
    readonly connector_type: number,
  ) {}
}

/** struct drm_mode_config_funcs. */
export interface DrmModeConfigFuncs {
  /**
   * Wrap the objects named by `cmd.handles` in a framebuffer registered with
   * drm_framebuffer_init(): the new fb (one reference, the caller's) or -errno.
   */
  fb_create(dev: DrmDevice, file: DrmFile, cmd: drm_mode_fb_cmd2_v1): KGen<DrmFramebuffer | number>;
}

/**
 * struct drm_mode_config: the device's mode objects, limits and locks. A device without
 * DRIVER_MODESET keeps only the GET_CAP values.
 */
export class DrmModeConfig {
  /** Protects the object lists and the mode state (drm_modeset_lock_all's outer lock). */
  readonly mutex: Mutex;
  /** The connectors' routing (a drm_modeset_lock in 3.16). */
  readonly connection_mutex: Mutex;
  /** Protects fb_list and framebuffer ids. */
  readonly fb_lock: Mutex;
  /** crtc_idr: every mode object's id (lowest free ≥ 1). Operations never sleep. */
  readonly crtc_idr = new Idr<ModeObjectOwner>(1);
  readonly fb_list = new Set<DrmFramebuffer>();
  readonly crtc_list: DrmCrtc[] = [];
  readonly encoder_list: DrmEncoder[] = [];
  readonly connector_list: DrmConnector[] = [];
  /** Next connector_type_id per connector type (3.16: an ida per type, from 1). */
  readonly connector_type_ids = new Map<number, number>();
  min_width = 0;
  max_width = 0;
  min_height = 0;
  max_height = 0;
  funcs: DrmModeConfigFuncs | null = null;
  /** GET_CAP values. */
  preferred_depth = 0;
  prefer_shadow = 0;
  async_page_flip = false;
  cursor_width = 0;
  cursor_height = 0;

  constructor(sched: Scheduler) {
    this.mutex = new Mutex(sched, 'mode_config.mutex', '&dev->mode_config.mutex');
    this.connection_mutex = new Mutex(
      sched,
      'mode_config.connection_mutex',
      '&dev->mode_config.connection_mutex',
    );
    this.fb_lock = new Mutex(sched, 'mode_config.fb_lock', '&dev->mode_config.fb_lock');
  }

  get num_fb(): number {
    return this.fb_list.size;
  }
  get num_crtc(): number {
    return this.crtc_list.length;
  }
  get num_encoder(): number {
    return this.encoder_list.length;
  }
  get num_connector(): number {
    return this.connector_list.length;
  }
}

/** drm_mode_object_get(): a new id (lowest free ≥ 1) for `owner`; 0 or -ENOSPC. */
function drm_mode_object_get(dev: DrmDevice, owner: ModeObjectOwner): number {
  const id = dev.mode_config.crtc_idr.alloc(owner);
  if (id < 0) return id;
  owner.base.id = id;
  return 0;
}

/** _object_find(): the live object with that id and type (ids are __u32 from user space). */
function drm_mode_object_find(dev: DrmDevice, id: number, type: number): ModeObjectOwner | null {
  const obj = dev.mode_config.crtc_idr.find(id);
  if (!obj || obj.base.type !== type || obj.base.id !== id) return null;
  return obj;
}

export function drm_crtc_find(dev: DrmDevice, id: number): DrmCrtc | null {
  const obj = drm_mode_object_find(dev, id, DRM_MODE_OBJECT_CRTC);
  return obj instanceof DrmCrtc ? obj : null;
}
export function drm_encoder_find(dev: DrmDevice, id: number): DrmEncoder | null {
  const obj = drm_mode_object_find(dev, id, DRM_MODE_OBJECT_ENCODER);
  return obj instanceof DrmEncoder ? obj : null;
}
export function drm_connector_find(dev: DrmDevice, id: number): DrmConnector | null {
  const obj = drm_mode_object_find(dev, id, DRM_MODE_OBJECT_CONNECTOR);
  return obj instanceof DrmConnector ? obj : null;
}

/** drm_crtc_init(): register a CRTC (driver load, before any file is open). 0 or -errno. */
export function drm_crtc_init(dev: DrmDevice, crtc: DrmCrtc): number {
  const ret = drm_mode_object_get(dev, crtc);
  if (ret) return ret;
  crtc.primary.crtc = null;
  dev.mode_config.crtc_list.push(crtc);
  return 0;
}

/** drm_encoder_init(). */
export function drm_encoder_init(dev: DrmDevice, encoder: DrmEncoder): number {
  const ret = drm_mode_object_get(dev, encoder);
  if (ret) return ret;
  dev.mode_config.encoder_list.push(encoder);
  return 0;
}

/** drm_connector_init(): connector_type_id counts connectors of the same type from 1. */
export function drm_connector_init(dev: DrmDevice, connector: DrmConnector): number {
  const mc = dev.mode_config;
  const ret = drm_mode_object_get(dev, connector);
  if (ret) return ret;
  const next = (mc.connector_type_ids.get(connector.connector_type) ?? 0) + 1;
  mc.connector_type_ids.set(connector.connector_type, next);
  connector.connector_type_id = next;
  connector.status = connector_status_unknown;
  mc.connector_list.push(connector);
  return 0;
}

/** drm_mode_connector_attach_encoder(). */
export function drm_mode_connector_attach_encoder(connector: DrmConnector, encoder: DrmEncoder): void {
  connector.encoder_ids.push(encoder.base.id);
}

/** drm_modeset_lock_all(): mode_config.mutex, connection_mutex, then every crtc lock. */
export function* drm_modeset_lock_all(dev: DrmDevice): KGen {
  const mc = dev.mode_config;
  yield* mc.mutex.lock();
  yield* mc.connection_mutex.lock();
  for (const crtc of mc.crtc_list) yield* crtc.mutex.lock();
}

/** drm_modeset_unlock_all(). */
export function drm_modeset_unlock_all(dev: DrmDevice): void {
  const mc = dev.mode_config;
  for (const crtc of [...mc.crtc_list].reverse()) crtc.mutex.unlock();
  mc.connection_mutex.unlock();
  mc.mutex.unlock();
}

// --- framebuffers -------------------------------------------------------------------------------

/**
 * drm_framebuffer_init(): give `fb` an id and put it on the device's list. The caller keeps the
 * first reference; the idr holds a second until the fb is unregistered (RMFB, file close).
 */
export function* drm_framebuffer_init(
  dev: DrmDevice,
  fb: DrmFramebuffer,
  funcs: DrmFramebufferFuncs,
): KGen<number> {
  const mc = dev.mode_config;
  yield* mc.fb_lock.lock();
  fb.refcount = 1;
  fb.file = null;
  fb.dev = dev;
  fb.funcs = funcs;
  const ret = drm_mode_object_get(dev, fb);
  if (ret === 0) {
    fb.refcount++; // the idr's reference
    mc.fb_list.add(fb);
  }
  mc.fb_lock.unlock();
  return ret;
}

/** drm_framebuffer_cleanup(): off the device's list (drivers call it from destroy). */
export function* drm_framebuffer_cleanup(fb: DrmFramebuffer): KGen {
  const mc = fb.dev.mode_config;
  yield* mc.fb_lock.lock();
  mc.fb_list.delete(fb);
  mc.fb_lock.unlock();
}

/** drm_framebuffer_reference(): kref_get. */
export function drm_framebuffer_reference(fb: DrmFramebuffer): void {
  const s = fb.dev.sched;
  if (s.WARN_ON(fb.refcount <= 0, `drm_framebuffer_reference of FB with refcount ${fb.refcount}`)) return;
  fb.refcount++;
}

/** drm_framebuffer_free(): the last reference went; the driver's destroy frees it. */
function* drm_framebuffer_free(fb: DrmFramebuffer): KGen {
  const mc = fb.dev.mode_config;
  yield* mc.fb_lock.lock();
  if (fb.base.id) {
    // Still registered: drop the id (its reference is already gone if we got here).
    mc.crtc_idr.remove(fb.base.id);
    fb.base.id = 0;
  }
  mc.fb_lock.unlock();
  yield* fb.funcs.destroy(fb);
  fb.freed = true;
}

/** drm_framebuffer_unreference(): kref_put; may sleep (the driver's destroy). */
export function* drm_framebuffer_unreference(fb: DrmFramebuffer): KGen {
  const s = fb.dev.sched;
  if (fb.freed) {
    s.report('use-after-free', `drm_framebuffer_unreference of freed FB`);
    return;
  }
  if (s.WARN_ON(fb.refcount <= 0, `drm_framebuffer_unreference of FB with refcount ${fb.refcount}`)) return;
  if (--fb.refcount === 0) yield* drm_framebuffer_free(fb);
}

/** __drm_framebuffer_lookup(): by id, no reference taken. fb_lock held. */
function __drm_framebuffer_lookup(dev: DrmDevice, id: number): DrmFramebuffer | null {
  const obj = drm_mode_object_find(dev, id, DRM_MODE_OBJECT_FB);
  return obj instanceof DrmFramebuffer ? obj : null;
}

/** drm_framebuffer_lookup(): by id, with a reference (null if unknown or dying). */
export function* drm_framebuffer_lookup(dev: DrmDevice, id: number): KGen<DrmFramebuffer | null> {
  const mc = dev.mode_config;
  yield* mc.fb_lock.lock();
  let fb = __drm_framebuffer_lookup(dev, id);
  if (fb && fb.refcount > 0) fb.refcount++;
  else fb = null;
  mc.fb_lock.unlock();
  return fb;
}

/**
 * __drm_framebuffer_unregister(): the id goes (no new lookups find it) and with it the idr's
 * reference, which is never the last one. fb_lock held.
 */
function __drm_framebuffer_unregister(dev: DrmDevice, fb: DrmFramebuffer): void {
  dev.mode_config.crtc_idr.remove(fb.base.id);
  fb.base.id = 0;
  // drm_framebuffer_free_bug: the caller still holds a reference.
  if (--fb.refcount === 0) dev.sched.BUG('__drm_framebuffer_unregister dropped the last FB reference');
}

/**
 * drm_framebuffer_remove(): take `fb` off every CRTC scanning it out (a modeset with no fb, i.e.
 * the CRTC is switched off), then drop the caller's reference.
 */
export function* drm_framebuffer_remove(fb: DrmFramebuffer): KGen {
  const dev = fb.dev;
  dev.sched.WARN_ON(fb.file !== null, 'drm_framebuffer_remove of an FB still on a file list');
  // Holding the only reference means no CRTC uses it: skip the modeset.
  if (fb.refcount > 1) {
    yield* drm_modeset_lock_all(dev);
    for (const crtc of dev.mode_config.crtc_list) {
      if (crtc.primary.fb !== fb) continue;
      // 3.16 logs DRM_ERROR("failed to reset crtc") and goes on.
      yield* drm_mode_set_config_internal({ crtc, fb: null, x: 0, y: 0, mode: null, connectors: [] });
    }
    drm_modeset_unlock_all(dev);
  }
  yield* drm_framebuffer_unreference(fb);
}

/**
 * drm_fb_release(): at the file's last close, unregister and remove every framebuffer it created,
 * switching off the CRTCs that scan them out.
 */
export function* drm_fb_release(priv: DrmFile): KGen {
  const dev = priv.dev;
  yield* priv.fbs_lock.lock();
  for (const fb of [...priv.fbs]) {
    yield* dev.mode_config.fb_lock.lock();
    __drm_framebuffer_unregister(dev, fb);
    dev.mode_config.fb_lock.unlock();
    fbs_del(priv, fb);
    yield* drm_framebuffer_remove(fb);
  }
  priv.fbs_lock.unlock();
}

/** list_add(&fb->filp_head, &file->fbs): at the head, so newest first. fbs_lock held. */
function fbs_add(file: DrmFile, fb: DrmFramebuffer): void {
  file.fbs.unshift(fb);
  fb.file = file;
}

/** list_del_init(&fb->filp_head). fbs_lock held. */
function fbs_del(file: DrmFile, fb: DrmFramebuffer): void {
  const i = file.fbs.indexOf(fb);
  if (i >= 0) file.fbs.splice(i, 1);
  fb.file = null;
}

/** drm_helper_mode_fill_fb_struct(): copy the request into the fb, with the legacy depth/bpp. */
export function drm_helper_mode_fill_fb_struct(fb: DrmFramebuffer, cmd: drm_mode_fb_cmd2_v1): void {
  fb.width = cmd.width;
  fb.height = cmd.height;
  for (let i = 0; i < 4; i++) {
    fb.pitches[i] = cmd.pitches[i]!;
    fb.offsets[i] = cmd.offsets[i]!;
  }
  [fb.depth, fb.bits_per_pixel] = drm_fb_get_bpp_depth(cmd.pixel_format);
  fb.pixel_format = cmd.pixel_format;
  fb.flags = cmd.flags;
}

// --- modes ------------------------------------------------------------------------------------------

/** drm_crtc_convert_umode(): the user's timing into a kernel mode; -ERANGE for huge clocks. */
function drm_crtc_convert_umode(umode: drm_mode_modeinfo): DrmDisplayMode | number {
  if (umode.clock > 0x7fffffff || umode.vrefresh > 0x7fffffff) return -ERRNO.ERANGE;
  // strncpy + explicit terminator: bytes after the first NUL are zeros, the last is always NUL.
  const name = new Array<number>(DRM_DISPLAY_MODE_LEN).fill(0);
  for (let i = 0; i < DRM_DISPLAY_MODE_LEN - 1 && umode.name[i]; i++) name[i] = umode.name[i]!;
  return { ...umode, name };
}

/** drm_crtc_convert_to_umode(). */
function drm_crtc_convert_to_umode(mode: DrmDisplayMode): drm_mode_modeinfo {
  return { ...mode, name: [...mode.name] };
}

/**
 * drm_crtc_check_viewport(): the mode's visible area at (x, y) must lie inside the fb; -ENOSPC.
 * (Stereo modes and rotated CRTCs, which change the visible size, are not modelled.)
 */
export function drm_crtc_check_viewport(
  x: number,
  y: number,
  mode: DrmDisplayMode,
  fb: DrmFramebuffer,
): number {
  const hdisplay = mode.hdisplay;
  const vdisplay = mode.vdisplay;
  if (hdisplay > fb.width || vdisplay > fb.height || x > fb.width - hdisplay || y > fb.height - vdisplay) {
    return -ERRNO.ENOSPC;
  }
  return 0;
}

/**
 * drm_mode_set_config_internal(): call the driver's set_config and move the framebuffer
 * references: every CRTC's current fb gains one, its previous one loses one. Mode locks held.
 */
export function* drm_mode_set_config_internal(set: DrmModeSet): KGen<number> {
  const crtc = set.crtc;
  const list = crtc.dev.mode_config.crtc_list;
  for (const tmp of list) tmp.old_fb = tmp.primary.fb;
  const fb = set.fb;
  const ret = yield* crtc.funcs.set_config(set);
  if (ret === 0) {
    crtc.primary.crtc = crtc;
    crtc.primary.fb = fb;
  }
  for (const tmp of list) {
    if (tmp.primary.fb) drm_framebuffer_reference(tmp.primary.fb);
    const old = tmp.old_fb;
    tmp.old_fb = null;
    if (old) yield* drm_framebuffer_unreference(old);
  }
  return ret;
}

// --- user memory ----------------------------------------------------------------------------------

/** put_user() of a __u32 array element; false on a fault. */
function* put_u32(dev: DrmDevice, ptr: bigint, index: number, value: number): KGen<boolean> {
  const mm = current(dev.k).mm;
  if (!mm) return false;
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, value >>> 0, true);
  return (yield* copy_to_user(mm, Number(ptr) + index * 4, b)) === 0;
}

/** get_user() of a __u32 array element; null on a fault. */
function* get_u32(dev: DrmDevice, ptr: bigint, index: number): KGen<number | null> {
  const mm = current(dev.k).mm;
  if (!mm) return null;
  const b = new Uint8Array(4);
  if (yield* copy_from_user(mm, b, Number(ptr) + index * 4)) return null;
  return new DataView(b.buffer).getUint32(0, true);
}

// --- the ioctls -----------------------------------------------------------------------------------

/**
 * DRM_IOCTL_MODE_GETRESOURCES: the caller's framebuffers (newest first), then the CRTC, encoder
 * and connector ids. An array is filled only if its count is large enough; the counts and the
 * size limits are always returned.
 */
export function* drm_mode_getresources(dev: DrmDevice, data: Uint8Array, file_priv: DrmFile): KGen<number> {
  if (!drm_core_check_feature(dev, DRIVER_MODESET)) return -ERRNO.EINVAL;
  const mc = dev.mode_config;
  const r = drm_mode_card_res.decode(data);
  const done = (ret: number): number => {
    drm_mode_card_res.encode(r, data);
    return ret;
  };
  yield* file_priv.fbs_lock.lock();
  const fb_count = file_priv.fbs.length;
  if (r.count_fbs >= fb_count) {
    let copied = 0;
    for (const fb of file_priv.fbs) {
      if (!(yield* put_u32(dev, r.fb_id_ptr, copied, fb.base.id))) {
        file_priv.fbs_lock.unlock();
        return done(-ERRNO.EFAULT);
      }
      copied++;
    }
  }
  r.count_fbs = fb_count;
  file_priv.fbs_lock.unlock();

  yield* drm_modeset_lock_all(dev);
  r.max_height = mc.max_height;
  r.min_height = mc.min_height;
  r.max_width = mc.max_width;
  r.min_width = mc.min_width;
  const lists: [bigint, { base: DrmModeObject }[], 'count_crtcs' | 'count_encoders' | 'count_connectors'][] =
    [
      [r.crtc_id_ptr, mc.crtc_list, 'count_crtcs'],
      [r.encoder_id_ptr, mc.encoder_list, 'count_encoders'],
      [r.connector_id_ptr, mc.connector_list, 'count_connectors'],
    ];
  let ret = 0;
  for (const [ptr, objs, count] of lists) {
    if (r[count] >= objs.length) {
      for (let i = 0; i < objs.length; i++) {
        if (!(yield* put_u32(dev, ptr, i, objs[i]!.base.id))) {
          ret = -ERRNO.EFAULT;
          break;
        }
      }
      if (ret) break;
    }
    r[count] = objs.length;
  }
  drm_modeset_unlock_all(dev);
  return done(ret);
}

/** DRM_IOCTL_MODE_GETCRTC: position, fb and (when enabled) mode of a CRTC; -ENOENT if unknown. */
export function* drm_mode_getcrtc(dev: DrmDevice, data: Uint8Array, _file_priv: DrmFile): KGen<number> {
  if (!drm_core_check_feature(dev, DRIVER_MODESET)) return -ERRNO.EINVAL;
  const r = drm_mode_crtc.decode(data);
  yield* drm_modeset_lock_all(dev);
  const crtc = drm_crtc_find(dev, r.crtc_id);
  let ret = 0;
  if (!crtc) {
    ret = -ERRNO.ENOENT;
  } else {
    r.x = crtc.x;
    r.y = crtc.y;
    r.gamma_size = crtc.gamma_size;
    r.fb_id = crtc.primary.fb ? crtc.primary.fb.base.id : 0;
    if (crtc.enabled && crtc.mode) {
      r.mode = drm_crtc_convert_to_umode(crtc.mode);
      r.mode_valid = 1;
    } else {
      // The caller's mode bytes are left as they came in.
      r.mode_valid = 0;
    }
    drm_mode_crtc.encode(r, data);
  }
  drm_modeset_unlock_all(dev);
  return ret;
}

/**
 * DRM_IOCTL_MODE_SETCRTC (3.16's checks in 3.16's order): with `mode_valid`, scan out `fb_id`
 * (-1: the current fb) in that mode at (x, y) on the listed connectors; without, switch the CRTC
 * off. The driver's set_config does the work under every mode lock.
 */
export function* drm_mode_setcrtc(dev: DrmDevice, data: Uint8Array, _file_priv: DrmFile): KGen<number> {
  if (!drm_core_check_feature(dev, DRIVER_MODESET)) return -ERRNO.EINVAL;
  const mc = dev.mode_config;
  const req = drm_mode_crtc.decode(data);
  // x and y are ints inside the kernel.
  if (req.x > 0x7fffffff || req.y > 0x7fffffff) return -ERRNO.ERANGE;
  yield* drm_modeset_lock_all(dev);
  let fb: DrmFramebuffer | null = null;
  let mode: DrmDisplayMode | null = null;
  const connectors: DrmConnector[] = [];
  let ret: number;
  out: {
    const crtc = drm_crtc_find(dev, req.crtc_id);
    if (!crtc) {
      ret = -ERRNO.ENOENT;
      break out;
    }
    if (req.mode_valid) {
      if (req.fb_id === 0xffffffff) {
        // -1: keep the fb the CRTC has.
        if (!crtc.primary.fb) {
          ret = -ERRNO.EINVAL;
          break out;
        }
        fb = crtc.primary.fb;
        drm_framebuffer_reference(fb);
      } else {
        fb = yield* drm_framebuffer_lookup(dev, req.fb_id);
        if (!fb) {
          ret = -ERRNO.ENOENT;
          break out;
        }
      }
      const m = drm_crtc_convert_umode(req.mode);
      if (typeof m === 'number') {
        ret = m;
        break out;
      }
      mode = m;
      ret = drm_crtc_check_viewport(req.x, req.y, mode, fb);
      if (ret) break out;
    }
    if (req.count_connectors === 0 && mode) {
      ret = -ERRNO.EINVAL;
      break out;
    }
    if (req.count_connectors > 0 && (!mode || !fb)) {
      ret = -ERRNO.EINVAL;
      break out;
    }
    if (req.count_connectors > 0) {
      // Avoid an unbounded allocation.
      if (req.count_connectors > mc.num_connector) {
        ret = -ERRNO.EINVAL;
        break out;
      }
      for (let i = 0; i < req.count_connectors; i++) {
        const id = yield* get_u32(dev, req.set_connectors_ptr, i);
        if (id === null) {
          ret = -ERRNO.EFAULT;
          break out;
        }
        const connector = drm_connector_find(dev, id);
        if (!connector) {
          ret = -ERRNO.ENOENT;
          break out;
        }
        connectors.push(connector);
      }
    }
    ret = yield* drm_mode_set_config_internal({ crtc, fb, x: req.x, y: req.y, mode, connectors });
  }
  if (fb) yield* drm_framebuffer_unreference(fb);
  drm_modeset_unlock_all(dev);
  return ret;
}

/** DRM_IOCTL_MODE_GETENCODER: type, current CRTC and possible CRTCs; -ENOENT if unknown. */
export function* drm_mode_getencoder(dev: DrmDevice, data: Uint8Array, _file_priv: DrmFile): KGen<number> {
  if (!drm_core_check_feature(dev, DRIVER_MODESET)) return -ERRNO.EINVAL;
  const r = drm_mode_get_encoder.decode(data);
  yield* drm_modeset_lock_all(dev);
  const encoder = drm_encoder_find(dev, r.encoder_id);
  let ret = 0;
  if (!encoder) {
    ret = -ERRNO.ENOENT;
  } else {
    r.crtc_id = encoder.crtc ? encoder.crtc.base.id : 0;
    r.encoder_type = encoder.encoder_type;
    r.encoder_id = encoder.base.id;
    r.possible_crtcs = encoder.possible_crtcs;
    r.possible_clones = encoder.possible_clones;
    drm_mode_get_encoder.encode(r, data);
  }
  drm_modeset_unlock_all(dev);
  return ret;
}

/**
 * DRM_IOCTL_MODE_GETCONNECTOR: status, size, current encoder, and the modes and encoders when the
 * caller's arrays are large enough. `count_modes` 0 probes the connector first (the two-call
 * protocol: ask for the counts, then for the arrays). No properties are modelled.
 */
export function* drm_mode_getconnector(dev: DrmDevice, data: Uint8Array, _file_priv: DrmFile): KGen<number> {
  if (!drm_core_check_feature(dev, DRIVER_MODESET)) return -ERRNO.EINVAL;
  const mc = dev.mode_config;
  const r = drm_mode_get_connector.decode(data);
  const mm = current(dev.k).mm;
  yield* mc.mutex.lock();
  let ret = 0;
  out: {
    const connector = drm_connector_find(dev, r.connector_id);
    if (!connector) {
      ret = -ERRNO.ENOENT;
      break out;
    }
    const props_count = 0;
    const encoders_count = connector.encoder_ids.filter((id) => id !== 0).length;
    if (r.count_modes === 0) yield* connector.funcs.fill_modes(connector, mc.max_width, mc.max_height);
    const modes = connector.modes;
    r.connector_id = connector.base.id;
    r.connector_type = connector.connector_type;
    r.connector_type_id = connector.connector_type_id;
    r.mm_width = connector.display_info.width_mm;
    r.mm_height = connector.display_info.height_mm;
    r.subpixel = connector.display_info.subpixel_order;
    r.connection = connector.status;
    yield* mc.connection_mutex.lock();
    r.encoder_id = connector.encoder ? connector.encoder.base.id : 0;
    mc.connection_mutex.unlock();
    if (r.count_modes >= modes.length && modes.length) {
      const bytes = drm_mode_modeinfo.encodeArray(modes.map(drm_crtc_convert_to_umode));
      if (!mm || (yield* copy_to_user(mm, Number(r.modes_ptr), bytes))) {
        ret = -ERRNO.EFAULT;
        break out;
      }
    }
    r.count_modes = modes.length;
    r.count_props = props_count;
    if (r.count_encoders >= encoders_count && encoders_count) {
      let copied = 0;
      for (const id of connector.encoder_ids) {
        if (id === 0) continue;
        if (!(yield* put_u32(dev, r.encoders_ptr, copied, id))) {
          ret = -ERRNO.EFAULT;
          break out;
        }
        copied++;
      }
    }
    r.count_encoders = encoders_count;
  }
  drm_mode_get_connector.encode(r, data);
  mc.mutex.unlock();
  return ret;
}

/** The common tail of ADDFB and ADDFB2: the driver creates the fb, the file lists it. */
function* add_framebuffer(
  dev: DrmDevice,
  r: drm_mode_fb_cmd2_v1,
  file_priv: DrmFile,
): KGen<DrmFramebuffer | number> {
  const funcs = dev.mode_config.funcs;
  if (!funcs) return -ERRNO.EINVAL;
  const fb = yield* funcs.fb_create(dev, file_priv, r);
  if (typeof fb === 'number') return fb;
  yield* file_priv.fbs_lock.lock();
  fbs_add(file_priv, fb);
  file_priv.fbs_lock.unlock();
  return fb;
}

/**
 * DRM_IOCTL_MODE_ADDFB: the legacy request (bpp + depth, one plane). Only the size limits are the
 * core's; 3.16 runs no format or pitch check here: the driver's fb_create decides.
 */
export function* drm_mode_addfb(dev: DrmDevice, data: Uint8Array, file_priv: DrmFile): KGen<number> {
  const or = drm_mode_fb_cmd.decode(data);
  const r: drm_mode_fb_cmd2_v1 = {
    fb_id: or.fb_id,
    width: or.width,
    height: or.height,
    pixel_format: drm_mode_legacy_fb_format(or.bpp, or.depth),
    flags: 0,
    handles: [or.handle, 0, 0, 0],
    pitches: [or.pitch, 0, 0, 0],
    offsets: [0, 0, 0, 0],
  };
  if (!drm_core_check_feature(dev, DRIVER_MODESET)) return -ERRNO.EINVAL;
  const mc = dev.mode_config;
  if (mc.min_width > r.width || r.width > mc.max_width) return -ERRNO.EINVAL;
  if (mc.min_height > r.height || r.height > mc.max_height) return -ERRNO.EINVAL;
  const fb = yield* add_framebuffer(dev, r, file_priv);
  if (typeof fb === 'number') return fb;
  or.fb_id = fb.base.id;
  drm_mode_fb_cmd.encode(or, data);
  return 0;
}

/**
 * framebuffer_check(): the format is one the core knows, the size is not 0 and fits the chroma
 * subsampling, every plane has a handle, its pitch covers a line, and nothing overflows 32 bits.
 */
function framebuffer_check(r: drm_mode_fb_cmd2_v1): number {
  const ret = format_check(r.pixel_format);
  if (ret) return ret;
  const hsub = drm_format_horz_chroma_subsampling(r.pixel_format);
  const vsub = drm_format_vert_chroma_subsampling(r.pixel_format);
  const num_planes = drm_format_num_planes(r.pixel_format);
  if (r.width === 0 || r.width % hsub) return -ERRNO.EINVAL;
  if (r.height === 0 || r.height % vsub) return -ERRNO.EINVAL;
  for (let i = 0; i < num_planes; i++) {
    const width = Math.floor(r.width / (i !== 0 ? hsub : 1));
    const height = Math.floor(r.height / (i !== 0 ? vsub : 1));
    const cpp = drm_format_plane_cpp(r.pixel_format, i);
    if (!r.handles[i]) return -ERRNO.EINVAL;
    if (width * cpp > 0xffffffff) return -ERRNO.ERANGE;
    if (height * r.pitches[i]! + r.offsets[i]! > 0xffffffff) return -ERRNO.ERANGE;
    if (r.pitches[i]! < width * cpp) return -ERRNO.EINVAL;
  }
  return 0;
}

/**
 * DRM_IOCTL_MODE_ADDFB2: a fourcc format and up to four planes (3.16 reads the 68-byte struct; a
 * longer one from newer headers reaches here too, its modifiers ignored). Flags other than
 * INTERLACED (MODIFIERS included: 4.1) are -EINVAL.
 */
export function* drm_mode_addfb2(dev: DrmDevice, data: Uint8Array, file_priv: DrmFile): KGen<number> {
  if (!drm_core_check_feature(dev, DRIVER_MODESET)) return -ERRNO.EINVAL;
  const mc = dev.mode_config;
  const r = drm_mode_fb_cmd2_v1.decode(data);
  if (r.flags & ~DRM_MODE_FB_INTERLACED) return -ERRNO.EINVAL;
  if (mc.min_width > r.width || r.width > mc.max_width) return -ERRNO.EINVAL;
  if (mc.min_height > r.height || r.height > mc.max_height) return -ERRNO.EINVAL;
  const ret = framebuffer_check(r);
  if (ret) return ret;
  const fb = yield* add_framebuffer(dev, r, file_priv);
  if (typeof fb === 'number') return fb;
  r.fb_id = fb.base.id;
  drm_mode_fb_cmd2_v1.encode(r, data);
  return 0;
}

/**
 * DRM_IOCTL_MODE_RMFB: remove one of the caller's framebuffers (-ENOENT for an unknown id or
 * another file's fb), switching off any CRTC that scans it out.
 */
export function* drm_mode_rmfb(dev: DrmDevice, data: Uint8Array, file_priv: DrmFile): KGen<number> {
  if (!drm_core_check_feature(dev, DRIVER_MODESET)) return -ERRNO.EINVAL;
  const mc = dev.mode_config;
  const id = new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true);
  yield* file_priv.fbs_lock.lock();
  yield* mc.fb_lock.lock();
  const fb = __drm_framebuffer_lookup(dev, id);
  if (!fb || !file_priv.fbs.includes(fb)) {
    mc.fb_lock.unlock();
    file_priv.fbs_lock.unlock();
    return -ERRNO.ENOENT;
  }
  // Reaped: the file's list still holds a reference, which remove() drops.
  __drm_framebuffer_unregister(dev, fb);
  fbs_del(file_priv, fb);
  mc.fb_lock.unlock();
  file_priv.fbs_lock.unlock();
  yield* drm_framebuffer_remove(fb);
  return 0;
}
