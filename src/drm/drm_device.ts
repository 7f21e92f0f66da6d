import { _IOC_NR, DRM_COMMAND_BASE, DRM_COMMAND_END } from '../uapi/ioctl.js';
import type { CharDevice } from '../mm/current.js';
import type { File, FileOperations } from '../mm/file.js';
import type { MmKernel, VmAreaStruct, VmOperations } from '../mm/mm_types.js';
import { Mutex } from '../sched/mutex.js';
import type { Scheduler } from '../sched/scheduler.js';
import type { KGen } from '../sched/task.js';
import { AddressSpace } from './address_space.js';
import type { DrmMaster } from './drm_auth.js';
import { DrmModeConfig } from './drm_crtc.js';
import type { DmaBuf, FdTableHooks } from './dma_buf.js';
import { type DrmFile, drm_release, drm_stub_open } from './drm_file.js';
import {
  DRM_FILE_PAGE_OFFSET_SIZE,
  DRM_FILE_PAGE_OFFSET_START,
  type DrmGemObject,
  drm_gem_mmap,
} from './drm_gem.js';
import { type DrmIoctlDesc, drm_ioctl } from './drm_ioctl.js';
import { DrmVmaOffsetManager } from './drm_vma_manager.js';
import { Idr } from './idr.js';

/**
 * struct drm_device and struct drm_driver (Linux 3.16 include/drm/drmP.h, drm_drv.c /
 * drm_stub.c): one GPU as the DRM core sees it — the driver's callbacks and ioctl table, the
 * device-wide locks, the flink name table, the fake-offset manager for mmap, and the device
 * nodes `/dev/dri/card0` (primary) and `/dev/dri/renderD128` (render).
 */

// --- driver features (drm_driver.driver_features) ---------------------------------------------

export const DRIVER_USE_AGP = 0x1;
export const DRIVER_PCI_DMA = 0x8;
export const DRIVER_SG = 0x10;
export const DRIVER_HAVE_DMA = 0x20;
export const DRIVER_HAVE_IRQ = 0x40;
export const DRIVER_IRQ_SHARED = 0x80;
export const DRIVER_GEM = 0x1000;
export const DRIVER_MODESET = 0x2000;
export const DRIVER_PRIME = 0x4000;
export const DRIVER_RENDER = 0x8000;

// --- minors (enum drm_minor_type) --------------------------------------------------------------

/** The primary node, /dev/dri/cardN ("legacy" in 3.16's enum). */
export const DRM_MINOR_LEGACY = 0;
export const DRM_MINOR_CONTROL = 1;
/** The render node, /dev/dri/renderD(128+N). */
export const DRM_MINOR_RENDER = 2;

/**
 * struct drm_driver: what a driver gives the core. Callbacks that may sleep are generators;
 * `-errno` returns follow the kernel's.
 */
export interface DrmDriver {
  readonly name: string;
  readonly desc: string;
  readonly date: string;
  readonly major: number;
  readonly minor: number;
  readonly patchlevel: number;
  /** DRIVER_GEM | DRIVER_PRIME | DRIVER_RENDER | ... */
  readonly driver_features: number;
  /**
   * The driver's ioctls, keyed by absolute nr in [DRM_COMMAND_BASE, DRM_COMMAND_END) (the
   * kernel's array indexed by nr - DRM_COMMAND_BASE). A missing nr answers -EINVAL.
   */
  readonly ioctls: ReadonlyMap<number, DrmIoctlDesc>;

  /** A file was opened (per-file driver state goes in `file.driver_priv`). 0 or -errno. */
  readonly open?: (dev: DrmDevice, file: DrmFile) => KGen<number>;
  /** Before the core releases the file's handles (i915 takes struct_mutex here). */
  readonly preclose?: (dev: DrmDevice, file: DrmFile) => KGen;
  /** After the core released everything of the file. */
  readonly postclose?: (dev: DrmDevice, file: DrmFile) => KGen;
  /** The device's last file closed. */
  readonly lastclose?: (dev: DrmDevice) => KGen;

  /** The last reference to `obj` went. Called with struct_mutex held, as 3.16 does. */
  readonly gem_free_object: (obj: DrmGemObject) => KGen;
  /** A handle to `obj` was created in `file`. 0 or -errno (the handle is then deleted). */
  readonly gem_open_object?: (obj: DrmGemObject, file: DrmFile) => KGen<number>;
  /** A handle to `obj` in `file` is being deleted. */
  readonly gem_close_object?: (obj: DrmGemObject, file: DrmFile) => KGen;
  /**
   * vm_ops of fake-offset mmaps (`drm_gem_mmap`): `fault` is the driver's (i915: GTT fault);
   * `open`/`close` must be `drm_gem_vm_open` / `drm_gem_vm_close` (they hold the mapping's
   * object reference and keep the device's address_space up to date). Null: mmap gives -EINVAL.
   */
  readonly gem_vm_ops: VmOperations | null;

  /** PRIME entry points; 3.16 drivers set them to drm_gem_prime_handle_to_fd / _fd_to_handle. */
  readonly prime_handle_to_fd?: (
    dev: DrmDevice,
    file: DrmFile,
    handle: number,
    flags: number,
  ) => KGen<number>;
  readonly prime_fd_to_handle?: (dev: DrmDevice, file: DrmFile, prime_fd: number) => KGen<number>;
  /** Wrap `obj` in a dma-buf (drm_gem_prime_export, or i915's with its own ops). */
  readonly gem_prime_export?: (dev: DrmDevice, obj: DrmGemObject, flags: number) => KGen<DmaBuf | number>;
  /** The object behind a dma-buf, with a new reference (drm_gem_prime_import, or i915's). */
  readonly gem_prime_import?: (dev: DrmDevice, dmabuf: DmaBuf) => KGen<DrmGemObject | number>;
  /** mmap() of a dma-buf exported through drm_gem_prime_dmabuf_ops (absent: -ENOSYS). */
  readonly gem_prime_mmap?: (obj: DrmGemObject, vma: VmAreaStruct) => KGen<number>;
}

/** struct drm_minor: one device node. */
export class DrmMinor {
  /**
   * The current master of a primary node: created by the first file opened on it while it had
   * none, or made current again by SET_MASTER. Holds a reference. Protected by dev.master_mutex.
   */
  master: DrmMaster | null = null;
  /** The /dev node the machine registers. */
  readonly chardev: CharDevice;
  /** Its path (/dev/dri/card0, /dev/dri/renderD128). */
  readonly path: string;

  constructor(
    readonly dev: DrmDevice,
    readonly type: number,
    /** Minor number: 0 for card0, 128 for renderD128. */
    readonly index: number,
  ) {
    const name = type === DRM_MINOR_RENDER ? 'renderD' : type === DRM_MINOR_CONTROL ? 'controlD' : 'card';
    this.path = `/dev/dri/${name}${index}`;
    this.chardev = {
      path: this.path,
      fops: dev.fops,
      open: (file: File) => drm_stub_open(this, file),
    };
  }
}

export interface DrmDeviceOptions {
  /**
   * Create the render node. 3.16 hides render nodes behind the `drm.rnodes=1` module parameter
   * (default off until 3.17); the model boots as if it were set. Default true.
   */
  rnodes?: boolean;
  /** Device instance number: card<N>, renderD<128+N>. Default 0. */
  instance?: number;
}

/** The last ioctl table a device was created with, already checked (drivers share static tables). */
let checkedIoctls: ReadonlyMap<number, DrmIoctlDesc> | null = null;

/** struct drm_device. */
export class DrmDevice implements FdTableHooks {
  readonly sched: Scheduler;
  /**
   * struct_mutex: the big driver lock (GEM object state, free). Lockdep class 'struct_mutex'.
   * Order: drm_global_mutex → prime.lock → object_name_lock → struct_mutex → i_mmap_mutex.
   */
  readonly struct_mutex: Mutex;
  /** object_name_lock: protects flink names, handle_count and obj.dma_buf. */
  readonly object_name_lock: Mutex;
  /** master_mutex: protects minor.master, file.master and file.is_master. */
  readonly master_mutex: Mutex;
  /**
   * drm_global_mutex: a kernel-wide lock in Linux (drm_stub_open, drm_release, ioctls without
   * DRM_UNLOCKED). One device per machine here, so it lives on the device.
   */
  readonly drm_global_mutex: Mutex;
  /** Flink names → objects (names start at 1, lowest free first). Protected by object_name_lock. */
  readonly object_name_idr = new Idr<DrmGemObject>(1);
  /** Fake mmap offsets (DRIVER_GEM only). */
  readonly vma_offset_manager: DrmVmaOffsetManager | null;
  /** The address_space every file of the device shares (3.16: anon_inode->i_mapping). */
  readonly dev_mapping: AddressSpace;
  /** The file_operations of the device nodes: open via the CharDevice, ioctl, mmap, release. */
  readonly fops: FileOperations;
  readonly primary: DrmMinor;
  readonly render: DrmMinor | null;
  /** Open files on all minors. Protected by drm_global_mutex. */
  open_count = 0;
  /** Every open DrmFile. Protected by struct_mutex. */
  readonly filelist = new Set<DrmFile>();
  /** The driver's KMS set-up (i915: intel_modeset_init), run when the mode state is first used. */
  modeset_init: ((dev: DrmDevice) => void) | null = null;
  private modeConfig: DrmModeConfig | null = null;
  /** drm.timestamp_monotonic module parameter (default 1). */
  drm_timestamp_monotonic = 1;
  /** The driver's device state (i915: drm_i915_private). */
  dev_private: unknown = null;
  /**
   * Model bookkeeping, not kernel state: every GEM object initialised on this device and not yet
   * freed (leak oracles read it).
   */
  readonly objects = new Set<DrmGemObject>();
  /**
   * The next GET_MAGIC token (drm_getmagic's static `sequence`: kernel-wide in Linux, one device
   * per machine here). 0 is never handed out.
   */
  magic_sequence = 0;
  /** Serials for object and file names in messages. */
  objectSerial = 0;
  fileSerial = 0;

  /**
   * current->files services (PRIME installs and looks up dma-buf fds): the machine sets them.
   * The defaults refuse, with a WARN, so a missing hook is visible.
   */
  fdInstall: (file: File, flags: number) => number = () => {
    this.sched.report('WARN', 'drm: no fd table hook (DrmDevice.fdInstall) installed');
    return -24; // -EMFILE
  };
  fdLookup: (fd: number) => File | null = () => {
    this.sched.report('WARN', 'drm: no fd table hook (DrmDevice.fdLookup) installed');
    return null;
  };

  constructor(
    readonly k: MmKernel,
    readonly driver: DrmDriver,
    opts: DrmDeviceOptions = {},
  ) {
    if (driver.ioctls !== checkedIoctls) {
      for (const [nr, desc] of driver.ioctls) {
        if (nr < DRM_COMMAND_BASE || nr >= DRM_COMMAND_END || _IOC_NR(desc.cmd) !== nr) {
          throw new RangeError(
            `drm: driver ioctl ${desc.name} registered at nr ${nr}, its request has nr ${_IOC_NR(desc.cmd)}`,
          );
        }
      }
      checkedIoctls = driver.ioctls;
    }
    this.sched = k.sched;
    const s = k.sched;
    this.struct_mutex = new Mutex(s, 'struct_mutex', 'struct_mutex');
    this.object_name_lock = new Mutex(s, 'object_name_lock', '&dev->object_name_lock');
    this.master_mutex = new Mutex(s, 'master_mutex', '&dev->master_mutex');
    this.drm_global_mutex = new Mutex(s, 'drm_global_mutex', 'drm_global_mutex');
    this.dev_mapping = new AddressSpace(s, `${driver.name}:anon_inode`);
    this.vma_offset_manager =
      driver.driver_features & DRIVER_GEM
        ? new DrmVmaOffsetManager(DRM_FILE_PAGE_OFFSET_START, DRM_FILE_PAGE_OFFSET_SIZE)
        : null;
    this.fops = { name: 'drm', unlocked_ioctl: drm_ioctl, mmap: drm_gem_mmap, release: drm_release };
    const n = opts.instance ?? 0;
    this.primary = new DrmMinor(this, DRM_MINOR_LEGACY, n);
    this.render =
      driver.driver_features & DRIVER_RENDER && (opts.rnodes ?? true)
        ? new DrmMinor(this, DRM_MINOR_RENDER, 64 * DRM_MINOR_RENDER + n)
        : null;
  }

  /**
   * KMS state: mode objects, framebuffers, limits (DRIVER_MODESET), and the GET_CAP values. Made
   * at first use, with the driver's modeset_init (mode object ids come from its own idr, so when
   * it runs changes nothing a client can see).
   */
  get mode_config(): DrmModeConfig {
    let mc = this.modeConfig;
    if (mc === null) {
      mc = this.modeConfig = new DrmModeConfig(this.sched);
      this.modeset_init?.(this);
    }
    return mc;
  }

  /** The minors, primary first. */
  get minors(): DrmMinor[] {
    return this.render ? [this.primary, this.render] : [this.primary];
  }
}

/** drm_dev_alloc(): a device for `driver` (nodes not yet visible). */
export function drm_dev_alloc(k: MmKernel, driver: DrmDriver, opts: DrmDeviceOptions = {}): DrmDevice {
  return new DrmDevice(k, driver, opts);
}

/** drm_dev_register(): make the device nodes visible in the machine's /dev table. */
export function drm_dev_register(dev: DrmDevice, devices: Map<string, CharDevice>): void {
  for (const m of dev.minors) devices.set(m.path, m.chardev);
}

/** drm_dev_unregister(): remove the nodes (open files keep working, as in Linux). */
export function drm_dev_unregister(dev: DrmDevice, devices: Map<string, CharDevice>): void {
  for (const m of dev.minors) if (devices.get(m.path) === m.chardev) devices.delete(m.path);
}

/** drm_core_check_feature(). */
export function drm_core_check_feature(dev: DrmDevice, feature: number): boolean {
  return (dev.driver.driver_features & feature) !== 0;
}
