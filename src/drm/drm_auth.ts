import { ERRNO } from '../base/errno.js';
import type { KGen } from '../sched/task.js';
import { drm_auth } from '../uapi/drm.js';
import type { DrmDevice, DrmMinor } from './drm_device.js';
import type { DrmFile } from './drm_file.js';

/**
 * Mastership and authentication tokens: struct drm_master with SET_MASTER / DROP_MASTER (Linux
 * 3.16 drivers/gpu/drm/drm_stub.c) and GET_MAGIC / AUTH_MAGIC (drm_auth.c).
 *
 * A primary node has at most one current master (`minor.master`). The first file opened on the
 * node while it has none creates a new DrmMaster and becomes its master; every later primary
 * client keeps a reference to the master that was current when it opened (`file.master`), and
 * that master's table is where its magic goes. DROP_MASTER leaves the node without a master;
 * SET_MASTER makes the caller's own `file.master` current again — which may be the master of the
 * file that dropped it, so a later master finds the magics of the clients that opened under it
 * and no others (3.16's per-master tables).
 *
 * Authentication: GET_MAGIC hands a file a non-zero token, the same one for the file's whole
 * life; the master's AUTH_MAGIC marks the file holding it authenticated and consumes the token
 * (authenticating it again is -EINVAL, GET_MAGIC still answers the same value). The model counts
 * every primary client as authenticated from its open already (see `drm_file.ts`), so what
 * AUTH_MAGIC changes is only what 3.16 shows of it besides the flag: the errno and the token's
 * consumption.
 */

/** struct drm_master: the magic table of one display server's session on a primary node. */
export class DrmMaster {
  /** kref: the minor while it is current, and every primary file opened under it. */
  refcount = 1;
  /**
   * magic → the file that asked for it (3.16's `magiclist` hash table). Protected by
   * struct_mutex.
   */
  readonly magiclist = new Map<number, DrmFile>();

  constructor(readonly minor: DrmMinor) {}
}

/** drm_master_create(): a new master with its own (empty) magic table. */
export function drm_master_create(minor: DrmMinor): DrmMaster {
  return new DrmMaster(minor);
}

/** drm_master_get(). */
export function drm_master_get(master: DrmMaster): DrmMaster {
  master.refcount++;
  return master;
}

/** drm_master_put(): the last reference forgets the magic table (drm_master_destroy). */
export function drm_master_put(master: DrmMaster): void {
  const s = master.minor.dev.sched;
  if (s.WARN_ON(master.refcount <= 0, 'drm_master_put: refcount underflow')) return;
  if (--master.refcount === 0) master.magiclist.clear();
}

// --- magic tokens (drm_auth.c) --------------------------------------------------------------------

/** drm_find_file(): the file that holds `magic` in `master`'s table, or null. */
function* drm_find_file(dev: DrmDevice, master: DrmMaster, magic: number): KGen<DrmFile | null> {
  yield* dev.struct_mutex.lock();
  const file = master.magiclist.get(magic) ?? null;
  dev.struct_mutex.unlock();
  return file;
}

/** drm_add_magic(). */
function* drm_add_magic(dev: DrmDevice, master: DrmMaster, priv: DrmFile, magic: number): KGen {
  yield* dev.struct_mutex.lock();
  master.magiclist.set(magic, priv);
  dev.struct_mutex.unlock();
}

/** drm_remove_magic(): 0, or -EINVAL when `magic` is not in `master`'s table. */
export function* drm_remove_magic(dev: DrmDevice, master: DrmMaster, magic: number): KGen<number> {
  yield* dev.struct_mutex.lock();
  const found = master.magiclist.delete(magic);
  dev.struct_mutex.unlock();
  return found ? 0 : -ERRNO.EINVAL;
}

/**
 * DRM_IOCTL_GET_MAGIC: the file's token, made at its first call from the kernel-wide sequence
 * (0 is skipped; a value still in the master's table after the 32-bit counter wrapped is too).
 */
export function* drm_getmagic(dev: DrmDevice, data: Uint8Array, file_priv: DrmFile): KGen<number> {
  let magic = file_priv.magic;
  if (!magic) {
    const master = file_priv.master;
    // Only primary clients pass drm_ioctl_permit here, and each holds the master it opened under.
    if (!master) return -ERRNO.EINVAL;
    do {
      if (dev.magic_sequence === 0) dev.magic_sequence = 1;
      magic = dev.magic_sequence;
      dev.magic_sequence = (dev.magic_sequence + 1) >>> 0;
    } while (yield* drm_find_file(dev, master, magic));
    file_priv.magic = magic;
    yield* drm_add_magic(dev, master, file_priv, magic);
  }
  drm_auth.encode({ magic }, data);
  return 0;
}

/**
 * DRM_IOCTL_AUTH_MAGIC (DRM_AUTH | DRM_MASTER): authenticate the file holding `magic` in the
 * caller's master's table and consume the token. Unknown (or already used) magic: -EINVAL.
 */
export function* drm_authmagic(dev: DrmDevice, data: Uint8Array, file_priv: DrmFile): KGen<number> {
  const { magic } = drm_auth.decode(data);
  const master = file_priv.master;
  if (!master) return -ERRNO.EINVAL;
  const file = yield* drm_find_file(dev, master, magic);
  if (!file) return -ERRNO.EINVAL;
  file.authenticated = true;
  yield* drm_remove_magic(dev, master, magic);
  return 0;
}

// --- mastership (drm_stub.c) ----------------------------------------------------------------------

/**
 * DRM_IOCTL_SET_MASTER (DRM_ROOT_ONLY): 0 if the caller already is the master; -EINVAL while the
 * node has another master, or for a file without a master of its own; otherwise the caller's
 * master becomes the node's.
 */
export function* drm_setmaster_ioctl(dev: DrmDevice, _data: Uint8Array, file_priv: DrmFile): KGen<number> {
  const minor = file_priv.minor;
  let ret = 0;
  yield* dev.master_mutex.lock();
  if (!file_priv.is_master) {
    if (minor.master || !file_priv.master) ret = -ERRNO.EINVAL;
    else {
      minor.master = drm_master_get(file_priv.master);
      file_priv.is_master = true;
    }
  }
  dev.master_mutex.unlock();
  return ret;
}

/**
 * DRM_IOCTL_DROP_MASTER (DRM_ROOT_ONLY): -EINVAL unless the caller is the node's master; the node
 * is then left without one (the caller keeps its reference to the master it belongs to).
 */
export function* drm_dropmaster_ioctl(dev: DrmDevice, _data: Uint8Array, file_priv: DrmFile): KGen<number> {
  const minor = file_priv.minor;
  let ret = -ERRNO.EINVAL;
  yield* dev.master_mutex.lock();
  if (file_priv.is_master && minor.master) {
    drm_master_put(minor.master);
    minor.master = null;
    file_priv.is_master = false;
    ret = 0;
  }
  dev.master_mutex.unlock();
  return ret;
}
