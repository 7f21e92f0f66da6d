import { ERRNO } from '../base/errno.js';
import { CAP_SYS_ADMIN, current } from '../mm/current.js';
import type { File } from '../mm/file.js';
import { Mutex } from '../sched/mutex.js';
import type { KGen } from '../sched/task.js';
import { O_EXCL } from '../uapi/mman.js';
import {
  type DrmMaster,
  drm_master_create,
  drm_master_get,
  drm_master_put,
  drm_remove_magic,
} from './drm_auth.js';
import { type DrmFramebuffer, drm_fb_release } from './drm_crtc.js';
import {
  DRIVER_GEM,
  DRIVER_MODESET,
  DRIVER_PRIME,
  DRM_MINOR_LEGACY,
  DRM_MINOR_RENDER,
  type DrmDevice,
  type DrmMinor,
  drm_core_check_feature,
} from './drm_device.js';
import { type DrmGemObject, drm_gem_release } from './drm_gem.js';
import { DrmPrimeFilePrivate, drm_prime_destroy_file_private } from './drm_prime.js';
import { Idr } from './idr.js';

/**
 * struct drm_file and the open/release paths (Linux 3.16 drivers/gpu/drm/drm_fops.c): one per
 * open() of a device node, stored in `file.private_data`. Children of fork() share the struct
 * file and therefore the DrmFile: the same handles, the same PRIME table.
 *
 * Authentication: in 3.16 only the master (the first opener of the primary node, normally the
 * display server) and root are authenticated; other primary clients must be authenticated by
 * the master (GET_MAGIC / AUTH_MAGIC, `drm_auth.ts`) before DRM_AUTH ioctls (GEM_FLINK, GEM_OPEN,
 * PRIME, most i915 ioctls) work, and lose it when their master's file closes. This model has no
 * display server, so every primary-node client is treated as authenticated from its open, as if
 * the master had authenticated it, and stays so. GET_MAGIC / AUTH_MAGIC still work as in 3.16
 * (tokens, per-master tables, errno). Render clients are exempt from DRM_AUTH in 3.16 anyway;
 * their `authenticated` is root's only, as in 3.16 (it matters for the legacy-map mmap path,
 * which answers -EACCES to them).
 */
export class DrmFile {
  /** Per-device serial (lock and message names). */
  readonly id: number;
  /** The process that opened it. */
  readonly pid: number;
  /** Opened by CAP_SYS_ADMIN. */
  readonly always_authenticated: boolean;
  authenticated: boolean;
  /** This file is its minor's master. Protected by dev.master_mutex. */
  is_master = false;
  /**
   * The master this primary client belongs to (the node's current one at open; render clients
   * have none). Holds a reference. Protected by dev.master_mutex.
   */
  master: DrmMaster | null = null;
  /** The GET_MAGIC token, 0 until asked for; it never changes afterwards. */
  magic = 0;
  /**
   * Handles → objects (handles ≥ 1, lowest free first). Protected by table_lock in 3.16; every
   * operation on it here is atomic between scheduling points, which is what the spinlock gives.
   */
  readonly object_idr = new Idr<DrmGemObject>(1);
  /** dma-buf ↔ handle cache of this file. */
  readonly prime: DrmPrimeFilePrivate;
  /** Framebuffers this file created (ADDFB/ADDFB2), newest first. Protected by fbs_lock. */
  readonly fbs: DrmFramebuffer[] = [];
  readonly fbs_lock: Mutex;
  /** SET_CLIENT_CAP state. Protected by drm_global_mutex (the ioctl is not DRM_UNLOCKED). */
  stereo_allowed = false;
  universal_planes = false;
  /** The driver's per-file state (i915: drm_i915_file_private). */
  driver_priv: unknown = null;
  /** Set when drm_release freed it: any later use is a use-after-free. */
  released = false;

  constructor(
    readonly filp: File,
    readonly minor: DrmMinor,
  ) {
    const dev = minor.dev;
    this.id = ++dev.fileSerial;
    const task = current(dev.k);
    this.pid = task.pid;
    this.always_authenticated = task.capable(CAP_SYS_ADMIN);
    // Model: primary clients count as authenticated (see above).
    this.authenticated = this.always_authenticated || minor.type === DRM_MINOR_LEGACY;
    this.prime = new DrmPrimeFilePrivate(dev.sched, `drm_file${this.id}`);
    this.fbs_lock = new Mutex(dev.sched, `drm_file${this.id}.fbs_lock`, '&file_priv->fbs_lock');
  }

  get dev(): DrmDevice {
    return this.minor.dev;
  }
}

/** drm_is_render_client(). */
export function drm_is_render_client(file: DrmFile): boolean {
  return file.minor.type === DRM_MINOR_RENDER;
}

/** drm_is_primary_client(). */
export function drm_is_primary_client(file: DrmFile): boolean {
  return file.minor.type === DRM_MINOR_LEGACY;
}

/** drm_stub_open(): the CharDevice open; runs drm_open under drm_global_mutex. */
export function* drm_stub_open(minor: DrmMinor, filp: File): KGen<number> {
  const dev = minor.dev;
  yield* dev.drm_global_mutex.lock();
  const err = yield* drm_open(minor, filp);
  dev.drm_global_mutex.unlock();
  return err;
}

/** drm_open(): count the open and set the file up. Caller holds drm_global_mutex. */
export function* drm_open(minor: DrmMinor, filp: File): KGen<number> {
  const dev = minor.dev;
  dev.open_count++;
  const err = yield* drm_open_helper(filp, minor);
  if (err) dev.open_count--;
  return err;
}

/** drm_open_helper(): the DrmFile, its GEM and PRIME state, the driver's open, the master. */
function* drm_open_helper(filp: File, minor: DrmMinor): KGen<number> {
  const dev = minor.dev;
  if (filp.f_flags & O_EXCL) return -ERRNO.EBUSY;
  const priv = new DrmFile(filp, minor);
  filp.private_data = priv;
  if (dev.driver.open) {
    const ret = yield* dev.driver.open(dev, priv);
    if (ret < 0) {
      if (drm_core_check_feature(dev, DRIVER_PRIME)) drm_prime_destroy_file_private(dev, priv.prime);
      if (drm_core_check_feature(dev, DRIVER_GEM)) yield* drm_gem_release(dev, priv);
      priv.released = true;
      filp.private_data = null;
      return ret;
    }
  }
  // A primary client opened while the node has no master creates one and becomes its master;
  // the others belong to the current master. Render clients never get one.
  yield* dev.master_mutex.lock();
  if (drm_is_primary_client(priv)) {
    if (!minor.master) {
      minor.master = drm_master_create(minor);
      priv.is_master = true;
      priv.master = drm_master_get(minor.master);
      priv.authenticated = true;
    } else {
      priv.master = drm_master_get(minor.master);
    }
  }
  dev.master_mutex.unlock();
  yield* dev.struct_mutex.lock();
  dev.filelist.add(priv);
  dev.struct_mutex.unlock();
  return 0;
}

/**
 * drm_release(): file_operations.release, the last close of a DRM file (all fds and mappings
 * gone). Under drm_global_mutex: unlist the file, driver preclose, forget its magic, release
 * every handle (drm_gem_release), drop mastership and the file's master reference, driver
 * postclose, check the PRIME cache is empty; the device's last close runs the driver's lastclose.
 * (3.16 also de-authenticates the other clients of a closing master; here they stay
 * authenticated, see DrmFile.)
 */
export function* drm_release(filp: File): KGen {
  const file_priv = filp.private_data as DrmFile | null;
  if (!(file_priv instanceof DrmFile) || file_priv.released) return;
  const minor = file_priv.minor;
  const dev = minor.dev;
  yield* dev.drm_global_mutex.lock();
  yield* dev.struct_mutex.lock();
  dev.filelist.delete(file_priv);
  dev.struct_mutex.unlock();
  if (dev.driver.preclose) yield* dev.driver.preclose(dev, file_priv);
  if (file_priv.magic && file_priv.master) yield* drm_remove_magic(dev, file_priv.master, file_priv.magic);
  // Framebuffers go before handles: removing one switches off the CRTCs scanning it out.
  if (drm_core_check_feature(dev, DRIVER_MODESET)) yield* drm_fb_release(file_priv);
  if (drm_core_check_feature(dev, DRIVER_GEM)) yield* drm_gem_release(dev, file_priv);
  yield* dev.master_mutex.lock();
  if (file_priv.is_master && minor.master && minor.master === file_priv.master) {
    drm_master_put(minor.master);
    minor.master = null;
  }
  if (file_priv.master) {
    drm_master_put(file_priv.master);
    file_priv.master = null;
  }
  file_priv.is_master = false;
  dev.master_mutex.unlock();
  if (dev.driver.postclose) yield* dev.driver.postclose(dev, file_priv);
  if (drm_core_check_feature(dev, DRIVER_PRIME)) drm_prime_destroy_file_private(dev, file_priv.prime);
  file_priv.released = true;
  filp.private_data = null;
  if (--dev.open_count === 0 && dev.driver.lastclose) yield* dev.driver.lastclose(dev);
  dev.drm_global_mutex.unlock();
}
