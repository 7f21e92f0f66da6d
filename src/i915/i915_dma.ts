import type { Bugs } from '../base/bugs.js';
import { ERRNO } from '../base/errno.js';
import {
  DRIVER_GEM,
  DRIVER_MODESET,
  DRIVER_PRIME,
  DRIVER_RENDER,
  type DrmDevice,
  type DrmDriver,
  drm_dev_alloc,
  drm_dev_register,
} from '../drm/drm_device.js';
import type { DrmFile } from '../drm/drm_file.js';
import { type DrmGemObject, drm_gem_vm_close, drm_gem_vm_open } from '../drm/drm_gem.js';
import {
  DRM_AUTH,
  DRM_IOCTL_DEF,
  DRM_RENDER_ALLOW,
  DRM_UNLOCKED,
  drm_ioctl_table,
} from '../drm/drm_ioctl.js';
import {
  drm_gem_prime_export,
  drm_gem_prime_fd_to_handle,
  drm_gem_prime_handle_to_fd,
  drm_gem_prime_import,
} from '../drm/drm_prime.js';
import { i915_gem_vm_ops } from './i915_gem_fault.js';
import type { DmaBuf } from '../drm/dma_buf.js';
import type { CharDevice } from '../mm/current.js';
import { current } from '../mm/current.js';
import type { File } from '../mm/file.js';
import type { MmKernel, VmOperations } from '../mm/mm_types.js';
import { copy_to_user } from '../mm/uaccess.js';
import type { KGen } from '../sched/task.js';
import type { Workqueue } from '../sched/workqueue.js';
import { alloc_workqueue } from '../sched/workqueue.js';
import * as uapi from '../uapi/i915_drm.js';
import { DrmI915Private, to_i915 } from './i915_drv.js';
import {
  i915_gem_busy_ioctl,
  i915_gem_create_ioctl,
  i915_gem_free_object,
  i915_gem_open,
  i915_gem_release,
  i915_gem_retire_requests,
  i915_gem_retire_work_handler,
  i915_gem_throttle_ioctl,
  i915_gem_wait_ioctl,
  i915_gpu_idle,
  i915_queue_retire,
} from './i915_gem.js';
import { context_ioctls } from './i915_gem_context.js';
import { execbuffer_ioctls } from './i915_gem_execbuffer.js';
import { gem_ioctls } from './i915_gem_ioctls.js';
import { to_intel_bo } from './i915_gem_object.js';
import { i915_error_work_func, i915_handle_error } from './i915_gpu_error.js';
import { intel_modeset_init } from './intel_display.js';
import { ring_task } from './intel_ringbuffer.js';
import { uncore_ioctls } from './intel_uncore.js';
import { i915_gem_userptr_ioctl, i915_gem_userptr_unload_check } from './i915_gem_userptr.js';

/** DRM_IOCTL_I915_GETPARAM (3.16's set, plus MMAP_VERSION for the v2 mmap struct). */
export function* i915_getparam(dev: DrmDevice, data: Uint8Array, _file: DrmFile): KGen<number> {
  const dp = to_i915(dev);
  const args = uapi.drm_i915_getparam.decode(data);
  let value: number;
  switch (args.param) {
    case uapi.I915_PARAM_IRQ_ACTIVE:
    case uapi.I915_PARAM_ALLOW_BATCHBUFFER:
    case uapi.I915_PARAM_LAST_DISPATCH:
      // Old UMS/DRI1 parameters are refused outright.
      return -ERRNO.ENODEV;
    case uapi.I915_PARAM_CHIPSET_ID:
      value = dp.info.device_id;
      break;
    case uapi.I915_PARAM_HAS_GEM:
    case uapi.I915_PARAM_HAS_PAGEFLIPPING:
    case uapi.I915_PARAM_HAS_EXECBUF2:
    case uapi.I915_PARAM_HAS_BLT:
    case uapi.I915_PARAM_HAS_RELAXED_FENCING:
    case uapi.I915_PARAM_HAS_COHERENT_RINGS:
    case uapi.I915_PARAM_HAS_EXEC_CONSTANTS:
    case uapi.I915_PARAM_HAS_RELAXED_DELTA:
    case uapi.I915_PARAM_HAS_GEN7_SOL_RESET:
    case uapi.I915_PARAM_HAS_WAIT_TIMEOUT:
    case uapi.I915_PARAM_HAS_PRIME_VMAP_FLUSH:
    case uapi.I915_PARAM_HAS_PINNED_BATCHES:
    case uapi.I915_PARAM_HAS_EXEC_NO_RELOC:
    case uapi.I915_PARAM_HAS_EXEC_HANDLE_LUT:
    case uapi.I915_PARAM_MMAP_VERSION:
      value = 1;
      break;
    case uapi.I915_PARAM_HAS_BSD:
    case uapi.I915_PARAM_HAS_VEBOX:
    case uapi.I915_PARAM_HAS_OVERLAY:
    case uapi.I915_PARAM_HAS_SEMAPHORES:
    case uapi.I915_PARAM_HAS_ALIASING_PPGTT:
    case uapi.I915_PARAM_HAS_WT:
      // Only the render and blitter rings are modelled; no overlay, semaphores or PPGTT.
      value = 0;
      break;
    case uapi.I915_PARAM_HAS_LLC:
      value = dp.info.has_llc ? 1 : 0;
      break;
    case uapi.I915_PARAM_NUM_FENCES_AVAIL:
      value = 0;
      break;
    case uapi.I915_PARAM_HAS_SECURE_BATCHES:
      value = current(dp.k).capable(21) ? 1 : 0;
      break;
    default:
      return -ERRNO.EINVAL;
  }
  const mm = current(dp.k).mm;
  const out = new Uint8Array(4);
  new DataView(out.buffer).setInt32(0, value, true);
  if (!mm || (yield* copy_to_user(mm, Number(args.value), out)) !== 0) return -ERRNO.EFAULT;
  return 0;
}

let ioctlTable: ReturnType<typeof drm_ioctl_table> | null = null;

/**
 * The ioctls of this file; other modules contribute theirs. Built (and checked) once per module,
 * at the first boot: the table is static, every device shares it.
 */
function i915_ioctls(): ReturnType<typeof drm_ioctl_table> {
  return (ioctlTable ??= drm_ioctl_table([
    DRM_IOCTL_DEF(uapi.DRM_IOCTL_I915_GETPARAM, i915_getparam, DRM_AUTH | DRM_RENDER_ALLOW, 'I915_GETPARAM'),
    DRM_IOCTL_DEF(
      uapi.DRM_IOCTL_I915_GEM_CREATE,
      i915_gem_create_ioctl,
      DRM_UNLOCKED | DRM_RENDER_ALLOW,
      'I915_GEM_CREATE',
    ),
    DRM_IOCTL_DEF(
      uapi.DRM_IOCTL_I915_GEM_BUSY,
      i915_gem_busy_ioctl,
      DRM_AUTH | DRM_UNLOCKED | DRM_RENDER_ALLOW,
      'I915_GEM_BUSY',
    ),
    DRM_IOCTL_DEF(
      uapi.DRM_IOCTL_I915_GEM_THROTTLE,
      i915_gem_throttle_ioctl,
      DRM_AUTH | DRM_UNLOCKED | DRM_RENDER_ALLOW,
      'I915_GEM_THROTTLE',
    ),
    DRM_IOCTL_DEF(
      uapi.DRM_IOCTL_I915_GEM_WAIT,
      i915_gem_wait_ioctl,
      DRM_AUTH | DRM_UNLOCKED | DRM_RENDER_ALLOW,
      'I915_GEM_WAIT',
    ),
    DRM_IOCTL_DEF(
      uapi.DRM_IOCTL_I915_GEM_USERPTR,
      i915_gem_userptr_ioctl,
      DRM_UNLOCKED | DRM_RENDER_ALLOW,
      'I915_GEM_USERPTR',
    ),
    ...execbuffer_ioctls,
    ...context_ioctls,
    ...uncore_ioctls,
    ...gem_ioctls,
  ]));
}

/** i915_gem_prime_export(): the object's ops may refuse (userptr attaches its notifier first). */
function* i915_gem_prime_export(dev: DrmDevice, gem: DrmGemObject, flags: number): KGen<DmaBuf | number> {
  const obj = to_intel_bo(gem);
  if (obj.ops.dmabuf_export) {
    const ret = yield* obj.ops.dmabuf_export(obj);
    if (ret) return ret;
  }
  return yield* drm_gem_prime_export(dev, gem, flags);
}

/** The driver's vm_ops of GTT mmaps: static, made at the first boot. */
let i915GemVmOps: VmOperations | null = null;

/** Environment the machine gives the driver. */
export interface I915LoadOptions {
  gen: 7 | 8;
  gttBytes: number;
  mappableBytes: number;
  mmuNotifier: boolean;
  bugs: Bugs;
  system_wq: Workqueue;
  /** /dev nodes are registered here. */
  devices: Map<string, CharDevice>;
  /** The calling process's fd table (PRIME). */
  fdInstall: (file: File, flags: number) => number;
  fdLookup: (fd: number) => File | null;
  /** Where the GPU error state is published (/sys/class/drm/card0/error). */
  publishError: (text: string) => void;
}

/**
 * The driver's open(): i915_gem_init (GTT and rings) at the first open, then i915_gem_open (the
 * file's driver state and default context).
 */
function* i915_driver_open(
  dp: DrmI915Private,
  k: MmKernel,
  file: DrmFile,
  onHang: Parameters<typeof ring_task>[1],
  onComplete: () => void,
): KGen<number> {
  const ok = dp.init((ring) => {
    ring.task = k.sched.spawn(ring.id, 'engine', ring_task(ring, onHang, onComplete));
  });
  if (!ok) return -ERRNO.ENOMEM;
  return i915_gem_open(dp, file);
}

/** i915_driver_preclose(): the file's contexts go and its requests in flight forget it. */
function* i915_driver_preclose(_dev: DrmDevice, file: DrmFile): KGen {
  i915_gem_release(file);
}

/** i915_driver_load(): the device, its nodes, its state. GTT and rings come at first open. */
export function i915_driver_load(k: MmKernel, opts: I915LoadOptions): DrmI915Private {
  let dp: DrmI915Private | null = null;
  const driver: DrmDriver = {
    name: 'i915',
    desc: 'Intel Graphics',
    date: '20080730',
    major: 1,
    minor: 6,
    patchlevel: 0,
    driver_features: DRIVER_GEM | DRIVER_PRIME | DRIVER_RENDER | DRIVER_MODESET,
    ioctls: i915_ioctls(),
    // Not a generator method: V8 keeps a generator closure made per boot, and with it the whole
    // machine, alive until the next full GC once it has run (see test/perf-hygiene.test.ts).
    open: (_dev: DrmDevice, file: DrmFile): KGen<number> =>
      i915_driver_open(dp!, k, file, onHang, onComplete),
    preclose: i915_driver_preclose,
    gem_free_object: i915_gem_free_object,
    gem_vm_ops: (i915GemVmOps ??= { ...i915_gem_vm_ops, open: drm_gem_vm_open, close: drm_gem_vm_close }),
    prime_handle_to_fd: drm_gem_prime_handle_to_fd,
    prime_fd_to_handle: drm_gem_prime_fd_to_handle,
    gem_prime_export: i915_gem_prime_export,
    gem_prime_import: drm_gem_prime_import,
  };
  const dev = drm_dev_alloc(k, driver);
  // i915_load_modeset_init(): KMS objects exist before any file is opened. The model creates
  // them when the mode state is first used (nothing can observe them earlier), so a boot that
  // never touches the display does not build it.
  dev.modeset_init = intel_modeset_init;
  const wq = alloc_workqueue(k.sched, 'i915', 1);
  dp = new DrmI915Private(
    dev,
    k,
    {
      gen: opts.gen,
      gttBytes: opts.gttBytes,
      mappableBytes: opts.mappableBytes,
      mmuNotifier: opts.mmuNotifier,
      bugs: opts.bugs,
      system_wq: opts.system_wq,
      wq,
    },
    () => i915_gem_retire_work_handler(dp!),
    () => i915_error_work_func(dp!),
  );
  dev.dev_private = dp;
  dev.fdInstall = opts.fdInstall;
  dev.fdLookup = opts.fdLookup;
  const onHang = (
    ring: Parameters<typeof i915_handle_error>[1],
    req: Parameters<typeof i915_handle_error>[2],
    fault: Parameters<typeof i915_handle_error>[3],
  ): void => {
    i915_handle_error(dp, ring, req, fault, opts.publishError);
  };
  const onComplete = (): void => {
    i915_queue_retire(dp);
  };
  drm_dev_register(dev, opts.devices);
  return dp;
}

/**
 * i915_driver_unload() at machine shutdown: idle the GPU, retire, report objects that outlived
 * every file (leaks), free the scratch page.
 */
export function* i915_driver_unload(dp: DrmI915Private): KGen {
  const dev = dp.dev;
  const s = dp.k.sched;
  if (!dp.initialised) return;
  yield* dev.struct_mutex.lock();
  yield* i915_gpu_idle(dp);
  yield* i915_gem_retire_requests(dp);
  dev.struct_mutex.unlock();
  for (const obj of dev.objects) {
    s.report(
      'leak',
      `${obj.toString()} (${obj.size} bytes) still allocated at unload (refcount ${obj.refcount})`,
    );
  }
  i915_gem_userptr_unload_check(dp);
  const bound = dp.gtt.boundPages;
  if (bound > 0) s.report('leak', `${bound} GTT entries still bound at unload`);
  dp.fini();
}
