import { ERRNO } from '../base/errno.js';
import { CAP_SYS_ADMIN, current } from '../mm/current.js';
import type { File } from '../mm/file.js';
import { copy_from_user, copy_to_user } from '../mm/uaccess.js';
import type { KGen } from '../sched/task.js';
import {
  DRM_IOCTL_AUTH_MAGIC,
  DRM_IOCTL_DROP_MASTER,
  DRM_IOCTL_GET_MAGIC,
  DRM_IOCTL_SET_MASTER,
  DRM_CAP_ASYNC_PAGE_FLIP,
  DRM_CAP_CURSOR_HEIGHT,
  DRM_CAP_CURSOR_WIDTH,
  DRM_CAP_DUMB_BUFFER,
  DRM_CAP_DUMB_PREFERRED_DEPTH,
  DRM_CAP_DUMB_PREFER_SHADOW,
  DRM_CAP_PRIME,
  DRM_CAP_TIMESTAMP_MONOTONIC,
  DRM_CAP_VBLANK_HIGH_CRTC,
  DRM_CLIENT_CAP_STEREO_3D,
  DRM_CLIENT_CAP_UNIVERSAL_PLANES,
  DRM_IOCTL_GEM_CLOSE,
  DRM_IOCTL_GEM_FLINK,
  DRM_IOCTL_GEM_OPEN,
  DRM_IOCTL_GET_CAP,
  DRM_IOCTL_PRIME_FD_TO_HANDLE,
  DRM_IOCTL_PRIME_HANDLE_TO_FD,
  DRM_IOCTL_SET_CLIENT_CAP,
  DRM_IOCTL_VERSION,
  DRM_PRIME_CAP_EXPORT,
  DRM_PRIME_CAP_IMPORT,
  drm_get_cap,
  drm_set_client_cap,
  drm_version,
} from '../uapi/drm.js';
import {
  DRM_IOCTL_MODE_ADDFB,
  DRM_IOCTL_MODE_ADDFB2_V1,
  DRM_IOCTL_MODE_GETCONNECTOR,
  DRM_IOCTL_MODE_GETCRTC,
  DRM_IOCTL_MODE_GETENCODER,
  DRM_IOCTL_MODE_GETRESOURCES,
  DRM_IOCTL_MODE_RMFB,
  DRM_IOCTL_MODE_SETCRTC,
} from '../uapi/drm_mode.js';
import {
  _IOC_DIR,
  _IOC_NR,
  _IOC_READ,
  _IOC_SIZE,
  _IOC_WRITE,
  DRM_COMMAND_BASE,
  DRM_COMMAND_END,
} from '../uapi/ioctl.js';
import {
  drm_mode_addfb,
  drm_mode_addfb2,
  drm_mode_getconnector,
  drm_mode_getcrtc,
  drm_mode_getencoder,
  drm_mode_getresources,
  drm_mode_rmfb,
  drm_mode_setcrtc,
} from './drm_crtc.js';
import { drm_authmagic, drm_dropmaster_ioctl, drm_getmagic, drm_setmaster_ioctl } from './drm_auth.js';
import type { DrmDevice } from './drm_device.js';
import { DrmFile, drm_is_render_client } from './drm_file.js';
import { drm_gem_close_ioctl, drm_gem_flink_ioctl, drm_gem_open_ioctl } from './drm_gem.js';
import { drm_prime_fd_to_handle_ioctl, drm_prime_handle_to_fd_ioctl } from './drm_prime.js';

/**
 * ioctl dispatch of a DRM file (Linux 3.16 drm_ioctl() in drivers/gpu/drm/drm_drv.c) and the
 * core ioctls that need no object: VERSION, GET_CAP, SET_CLIENT_CAP.
 *
 * How 3.16 dispatches, which this follows step by step:
 * 1. By `nr` alone (the type byte, direction and size of the request are not checked against
 *    the table). nr < DRM_CORE_IOCTL_COUNT: the core table; [DRM_COMMAND_BASE, DRM_COMMAND_END):
 *    the driver's; an empty slot or any other nr: -EINVAL.
 * 2. Permission (drm_ioctl_permit): DRM_ROOT_ONLY needs CAP_SYS_ADMIN, DRM_AUTH an
 *    authenticated or render client, DRM_MASTER the master; a render client may only call
 *    DRM_RENDER_ALLOW ioctls. Failure: -EACCES.
 * 3. "Do not trust userspace": the DIRECTION comes from the kernel's own request number in the
 *    table, the SIZE from the caller's. The kernel buffer is max(caller size, driver size)
 *    bytes; if the kernel's direction has WRITE, the caller's size is copied in (-EFAULT on a
 *    bad pointer, before the handler runs); the rest stays zero.
 * 4. The handler runs — under drm_global_mutex unless the ioctl is DRM_UNLOCKED.
 * 5. If the kernel's direction has READ, the caller's size is copied back WHATEVER the handler
 *    returned (an error included), and a failed copy turns the result into -EFAULT.
 *
 * So `_IOW` and `_IOWR` forms of one request behave the same on 3.16 (the reference table's
 * `EXECBUFFER2_WR` semantics are later kernels'), and a larger caller struct is accepted with
 * its tail passed through untouched.
 *
 * `arg` is a user address (copied with copy_from_user/copy_to_user against current's mm) or a
 * Uint8Array standing for the struct on the caller's stack: it is read and written in place, and
 * an array shorter than the request's size is a fault (-EFAULT).
 */

// --- ioctl flags (drm_ioctl_desc.flags) ----------------------------------------------------------

export const DRM_AUTH = 0x1;
export const DRM_MASTER = 0x2;
export const DRM_ROOT_ONLY = 0x4;
export const DRM_CONTROL_ALLOW = 0x8;
export const DRM_UNLOCKED = 0x10;
export const DRM_RENDER_ALLOW = 0x20;

/**
 * An ioctl handler: `data` is the kernel copy of the argument (at least the driver's struct size,
 * zero-filled beyond what the caller passed); writes to it reach the caller for READ requests.
 * Returns 0 or -errno.
 */
export type DrmIoctlFunc = (dev: DrmDevice, data: Uint8Array, file_priv: DrmFile) => KGen<number>;

/** struct drm_ioctl_desc. */
export interface DrmIoctlDesc {
  /** The kernel's request number: its nr is the table slot, its direction and size rule. */
  readonly cmd: number;
  readonly func: DrmIoctlFunc | null;
  readonly flags: number;
  readonly name: string;
}

/** DRM_IOCTL_DEF / DRM_IOCTL_DEF_DRV. */
export function DRM_IOCTL_DEF(
  cmd: number,
  func: DrmIoctlFunc | null,
  flags: number,
  name: string,
): DrmIoctlDesc {
  return { cmd: cmd >>> 0, func, flags, name };
}

/** The driver's struct size of a descriptor (`_IOC_SIZE(cmd_drv)`). */
export function drm_ioctl_size(desc: DrmIoctlDesc): number {
  return _IOC_SIZE(desc.cmd);
}

/** A driver ioctl table keyed by nr, as DrmDriver.ioctls wants it. Throws on a duplicate nr. */
export function drm_ioctl_table(descs: readonly DrmIoctlDesc[]): Map<number, DrmIoctlDesc> {
  const m = new Map<number, DrmIoctlDesc>();
  for (const d of descs) {
    const nr = _IOC_NR(d.cmd);
    if (m.has(nr)) throw new RangeError(`drm: two ioctls at nr ${nr}: ${m.get(nr)!.name}, ${d.name}`);
    m.set(nr, d);
  }
  return m;
}

/** ARRAY_SIZE(drm_ioctls) in 3.16: the core table ends after DRM_IOCTL_MODE_CURSOR2 (0xBB). */
export const DRM_CORE_IOCTL_COUNT = 0xbc;

let coreTable: Map<number, DrmIoctlDesc> | null = null;

/** The flags of 3.16's mode ioctls (SETCRTC adds DRM_MASTER). */
const KMS = DRM_CONTROL_ALLOW | DRM_UNLOCKED;

/**
 * The core table (drm_ioctls[]), built on first use. Only the entries this model implements are
 * present; the others (legacy DRI1, the rest of KMS) answer -EINVAL like an empty slot.
 */
export function drm_core_ioctls(): ReadonlyMap<number, DrmIoctlDesc> {
  coreTable ??= drm_ioctl_table([
    DRM_IOCTL_DEF(
      DRM_IOCTL_VERSION,
      drm_version_ioctl,
      DRM_UNLOCKED | DRM_RENDER_ALLOW | DRM_CONTROL_ALLOW,
      'DRM_IOCTL_VERSION',
    ),
    // Authentication and mastership: primary node only (none is render-allowed).
    DRM_IOCTL_DEF(DRM_IOCTL_GET_MAGIC, drm_getmagic, 0, 'DRM_IOCTL_GET_MAGIC'),
    DRM_IOCTL_DEF(DRM_IOCTL_AUTH_MAGIC, drm_authmagic, DRM_AUTH | DRM_MASTER, 'DRM_IOCTL_AUTH_MAGIC'),
    DRM_IOCTL_DEF(DRM_IOCTL_SET_MASTER, drm_setmaster_ioctl, DRM_ROOT_ONLY, 'DRM_IOCTL_SET_MASTER'),
    DRM_IOCTL_DEF(DRM_IOCTL_DROP_MASTER, drm_dropmaster_ioctl, DRM_ROOT_ONLY, 'DRM_IOCTL_DROP_MASTER'),
    DRM_IOCTL_DEF(
      DRM_IOCTL_GEM_CLOSE,
      drm_gem_close_ioctl,
      DRM_UNLOCKED | DRM_RENDER_ALLOW,
      'DRM_IOCTL_GEM_CLOSE',
    ),
    DRM_IOCTL_DEF(DRM_IOCTL_GEM_FLINK, drm_gem_flink_ioctl, DRM_AUTH | DRM_UNLOCKED, 'DRM_IOCTL_GEM_FLINK'),
    DRM_IOCTL_DEF(DRM_IOCTL_GEM_OPEN, drm_gem_open_ioctl, DRM_AUTH | DRM_UNLOCKED, 'DRM_IOCTL_GEM_OPEN'),
    DRM_IOCTL_DEF(DRM_IOCTL_GET_CAP, drm_getcap, DRM_UNLOCKED | DRM_RENDER_ALLOW, 'DRM_IOCTL_GET_CAP'),
    DRM_IOCTL_DEF(DRM_IOCTL_SET_CLIENT_CAP, drm_setclientcap, 0, 'DRM_IOCTL_SET_CLIENT_CAP'),
    DRM_IOCTL_DEF(
      DRM_IOCTL_PRIME_HANDLE_TO_FD,
      drm_prime_handle_to_fd_ioctl,
      DRM_AUTH | DRM_UNLOCKED | DRM_RENDER_ALLOW,
      'DRM_IOCTL_PRIME_HANDLE_TO_FD',
    ),
    DRM_IOCTL_DEF(
      DRM_IOCTL_PRIME_FD_TO_HANDLE,
      drm_prime_fd_to_handle_ioctl,
      DRM_AUTH | DRM_UNLOCKED | DRM_RENDER_ALLOW,
      'DRM_IOCTL_PRIME_FD_TO_HANDLE',
    ),
    // KMS: never on the render node; changing what is displayed needs the master.
    DRM_IOCTL_DEF(DRM_IOCTL_MODE_GETRESOURCES, drm_mode_getresources, KMS, 'DRM_IOCTL_MODE_GETRESOURCES'),
    DRM_IOCTL_DEF(DRM_IOCTL_MODE_GETCRTC, drm_mode_getcrtc, KMS, 'DRM_IOCTL_MODE_GETCRTC'),
    DRM_IOCTL_DEF(DRM_IOCTL_MODE_SETCRTC, drm_mode_setcrtc, DRM_MASTER | KMS, 'DRM_IOCTL_MODE_SETCRTC'),
    DRM_IOCTL_DEF(DRM_IOCTL_MODE_GETENCODER, drm_mode_getencoder, KMS, 'DRM_IOCTL_MODE_GETENCODER'),
    DRM_IOCTL_DEF(DRM_IOCTL_MODE_GETCONNECTOR, drm_mode_getconnector, KMS, 'DRM_IOCTL_MODE_GETCONNECTOR'),
    DRM_IOCTL_DEF(DRM_IOCTL_MODE_ADDFB, drm_mode_addfb, KMS, 'DRM_IOCTL_MODE_ADDFB'),
    DRM_IOCTL_DEF(DRM_IOCTL_MODE_RMFB, drm_mode_rmfb, KMS, 'DRM_IOCTL_MODE_RMFB'),
    // 3.16's table entry is the 68-byte request; a 104-byte one from newer headers lands here too.
    DRM_IOCTL_DEF(DRM_IOCTL_MODE_ADDFB2_V1, drm_mode_addfb2, KMS, 'DRM_IOCTL_MODE_ADDFB2'),
  ]);
  return coreTable;
}

/** The descriptor drm_ioctl() would use for `nr` on `dev`, or null (-EINVAL). */
export function drm_ioctl_lookup(dev: DrmDevice, nr: number): DrmIoctlDesc | null {
  if (nr >= DRM_COMMAND_BASE && nr < DRM_COMMAND_END) return dev.driver.ioctls.get(nr) ?? null;
  if (nr < DRM_CORE_IOCTL_COUNT) return drm_core_ioctls().get(nr) ?? null;
  return null;
}

/** drm_ioctl_permit(): 0 or -EACCES. */
export function drm_ioctl_permit(flags: number, file_priv: DrmFile): number {
  const dev = file_priv.dev;
  if (flags & DRM_ROOT_ONLY && !current(dev.k).capable(CAP_SYS_ADMIN)) return -ERRNO.EACCES;
  if (flags & DRM_AUTH && !drm_is_render_client(file_priv) && !file_priv.authenticated) return -ERRNO.EACCES;
  // No control nodes are modelled, so DRM_CONTROL_ALLOW never matters.
  if (flags & DRM_MASTER && !file_priv.is_master) return -ERRNO.EACCES;
  if (!(flags & DRM_RENDER_ALLOW) && drm_is_render_client(file_priv)) return -ERRNO.EACCES;
  return 0;
}

/** Copies `usize` bytes of the argument in from user memory. False on a fault. */
function* copy_arg_in_user(dev: DrmDevice, kdata: Uint8Array, usize: number, arg: number): KGen<boolean> {
  const mm = current(dev.k).mm;
  if (!mm) return false;
  return (yield* copy_from_user(mm, usize === kdata.length ? kdata : kdata.subarray(0, usize), arg)) === 0;
}

/** Copies `usize` bytes of the argument back to user memory. False on a fault. */
function* copy_arg_out_user(dev: DrmDevice, kdata: Uint8Array, usize: number, arg: number): KGen<boolean> {
  const mm = current(dev.k).mm;
  if (!mm) return false;
  return (yield* copy_to_user(mm, arg, usize === kdata.length ? kdata : kdata.subarray(0, usize))) === 0;
}

/**
 * drm_ioctl(): file_operations.unlocked_ioctl of every DRM file. An argument on the caller's
 * stack (a Uint8Array) is copied without a generator level: nothing there can sleep.
 */
export function* drm_ioctl(filp: File, cmd: number, arg: number | Uint8Array): KGen<number> {
  const file_priv = filp.private_data;
  if (!(file_priv instanceof DrmFile)) return -ERRNO.ENODEV;
  const dev = file_priv.dev;
  cmd >>>= 0;
  const nr = _IOC_NR(cmd);
  if (nr >= DRM_CORE_IOCTL_COUNT && (nr < DRM_COMMAND_BASE || nr >= DRM_COMMAND_END)) return -ERRNO.EINVAL;
  const ioctl = drm_ioctl_lookup(dev, nr);
  if (!ioctl?.func) return -ERRNO.EINVAL;
  const usize = _IOC_SIZE(cmd);
  const ksize = _IOC_SIZE(ioctl.cmd);
  const dir = _IOC_DIR(ioctl.cmd);
  let retcode = drm_ioctl_permit(ioctl.flags, file_priv);
  if (retcode) return retcode;
  const kdata = new Uint8Array(dir ? (usize > ksize ? usize : ksize) : 0);
  if (dir & _IOC_WRITE && usize !== 0) {
    if (arg instanceof Uint8Array) {
      if (arg.length < usize) return -ERRNO.EFAULT;
      kdata.set(arg.length === usize ? arg : arg.subarray(0, usize));
    } else if (!(yield* copy_arg_in_user(dev, kdata, usize, arg))) return -ERRNO.EFAULT;
  }
  if (ioctl.flags & DRM_UNLOCKED) {
    retcode = yield* ioctl.func(dev, kdata, file_priv);
  } else {
    yield* dev.drm_global_mutex.lock();
    retcode = yield* ioctl.func(dev, kdata, file_priv);
    dev.drm_global_mutex.unlock();
  }
  if (dir & _IOC_READ && usize !== 0) {
    if (arg instanceof Uint8Array) {
      // What fits is written; a short array is a fault.
      if (arg.length >= usize) arg.set(usize === kdata.length ? kdata : kdata.subarray(0, usize));
      else {
        arg.set(kdata.subarray(0, arg.length));
        retcode = -ERRNO.EFAULT;
      }
    } else if (!(yield* copy_arg_out_user(dev, kdata, usize, arg))) retcode = -ERRNO.EFAULT;
  }
  return retcode;
}

/** drm_ioctl_flags(): the flags of a core ioctl, or null for driver / unknown numbers. */
export function drm_ioctl_flags(nr: number): number | null {
  if (nr >= DRM_COMMAND_BASE && nr < DRM_COMMAND_END) return null;
  return drm_core_ioctls().get(nr)?.flags ?? null;
}

// --- core ioctls --------------------------------------------------------------------------------

function ascii(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i) & 0xff;
  return b;
}

/**
 * drm_copy_field(): copy at most `*buf_len` bytes of `value` (no NUL) to `buf` and report the full
 * length back through the length field. Returns [new length, 0 or -EFAULT].
 */
function* drm_copy_field(
  dev: DrmDevice,
  buf: bigint,
  buf_len: bigint,
  value: string,
): KGen<[bigint, number]> {
  const bytes = ascii(value);
  const len = BigInt(bytes.length) > buf_len ? Number(buf_len) : bytes.length;
  const full = BigInt(bytes.length);
  if (len && buf) {
    const mm = current(dev.k).mm;
    if (!mm || (yield* copy_to_user(mm, Number(buf), bytes.subarray(0, len)))) return [full, -ERRNO.EFAULT];
  }
  return [full, 0];
}

/** DRM_IOCTL_VERSION: driver version numbers and name / date / description strings. */
export function* drm_version_ioctl(dev: DrmDevice, data: Uint8Array, _file_priv: DrmFile): KGen<number> {
  const v = drm_version.decode(data);
  const d = dev.driver;
  v.version_major = d.major;
  v.version_minor = d.minor;
  v.version_patchlevel = d.patchlevel;
  let err: number;
  [v.name_len, err] = yield* drm_copy_field(dev, v.name, v.name_len, d.name);
  if (!err) [v.date_len, err] = yield* drm_copy_field(dev, v.date, v.date_len, d.date);
  if (!err) [v.desc_len, err] = yield* drm_copy_field(dev, v.desc, v.desc_len, d.desc);
  drm_version.encode(v, data);
  return err;
}

/**
 * DRM_IOCTL_GET_CAP. DUMB_BUFFER is 0: dumb buffers (KMS scanout buffers) are not modelled
 * (i915 on 3.16 reports 1). Unknown capabilities: -EINVAL.
 */
export function* drm_getcap(dev: DrmDevice, data: Uint8Array, _file_priv: DrmFile): KGen<number> {
  const req = drm_get_cap.decode(data);
  const cap = req.capability > 0xffffn ? -1 : Number(req.capability);
  const mc = dev.mode_config;
  let value: number;
  switch (cap) {
    case DRM_CAP_DUMB_BUFFER:
      value = 0;
      break;
    case DRM_CAP_VBLANK_HIGH_CRTC:
      value = 1;
      break;
    case DRM_CAP_DUMB_PREFERRED_DEPTH:
      value = mc.preferred_depth;
      break;
    case DRM_CAP_DUMB_PREFER_SHADOW:
      value = mc.prefer_shadow;
      break;
    case DRM_CAP_PRIME:
      value =
        (dev.driver.prime_fd_to_handle ? DRM_PRIME_CAP_IMPORT : 0) |
        (dev.driver.prime_handle_to_fd ? DRM_PRIME_CAP_EXPORT : 0);
      break;
    case DRM_CAP_TIMESTAMP_MONOTONIC:
      value = dev.drm_timestamp_monotonic;
      break;
    case DRM_CAP_ASYNC_PAGE_FLIP:
      value = mc.async_page_flip ? 1 : 0;
      break;
    case DRM_CAP_CURSOR_WIDTH:
      value = mc.cursor_width || 64;
      break;
    case DRM_CAP_CURSOR_HEIGHT:
      value = mc.cursor_height || 64;
      break;
    default:
      // req->value was already zeroed when the kernel answers -EINVAL.
      drm_get_cap.encode({ capability: req.capability, value: 0 }, data);
      return -ERRNO.EINVAL;
  }
  drm_get_cap.encode({ capability: req.capability, value }, data);
  return 0;
}

/**
 * drm.universal_planes module parameter: 3.15/3.16 hide the universal-planes client cap behind
 * it (default off), so DRM_CLIENT_CAP_UNIVERSAL_PLANES answers -EINVAL.
 */
export const drm_universal_planes = false;

/** DRM_IOCTL_SET_CLIENT_CAP: STEREO_3D (0/1); UNIVERSAL_PLANES as above; others -EINVAL. */
export function* drm_setclientcap(_dev: DrmDevice, data: Uint8Array, file_priv: DrmFile): KGen<number> {
  const req = drm_set_client_cap.decode(data);
  const cap = req.capability > 0xffffn ? -1 : Number(req.capability);
  switch (cap) {
    case DRM_CLIENT_CAP_STEREO_3D:
      if (req.value > 1n) return -ERRNO.EINVAL;
      file_priv.stereo_allowed = req.value === 1n;
      return 0;
    case DRM_CLIENT_CAP_UNIVERSAL_PLANES:
      if (!drm_universal_planes) return -ERRNO.EINVAL;
      if (req.value > 1n) return -ERRNO.EINVAL;
      file_priv.universal_planes = req.value === 1n;
      return 0;
    default:
      return -ERRNO.EINVAL;
  }
}
