import type { Bugs } from '../base/bugs.js';
import { DrmMm } from '../drm/drm_mm.js';
import type { DrmDevice } from '../drm/drm_device.js';
import type { DrmFile } from '../drm/drm_file.js';
import { Idr } from '../drm/idr.js';
import { GlobalGtt } from '../hw/gtt.js';
import type { MmKernel, MmStruct } from '../mm/mm_types.js';
import type { Workqueue } from '../sched/workqueue.js';
import { INIT_WORK, type WorkStruct } from '../sched/workqueue.js';
import type { I915HwContext } from './i915_gem_context.js';
import type { DrmI915GemObject, I915Vma } from './i915_gem_object.js';
import type { I915MmuNotifier, I915MmuObject } from './i915_gem_userptr.js';
import { type DrmI915GemRequest, IntelRing } from './intel_ringbuffer.js';

/** Platform description (struct intel_device_info) of the two generations modelled. */
export interface IntelDeviceInfo {
  gen: 7 | 8;
  /** PCI device id reported by I915_PARAM_CHIPSET_ID. */
  device_id: number;
  has_llc: boolean;
  /** 64-bit relocations (gen8+). */
  reloc64: boolean;
}

export const IVYBRIDGE: IntelDeviceInfo = { gen: 7, device_id: 0x0166, has_llc: true, reloc64: false };
export const BROADWELL: IntelDeviceInfo = { gen: 8, device_id: 0x1616, has_llc: true, reloc64: true };

export interface I915Config {
  gen: 7 | 8;
  gttBytes: number;
  mappableBytes: number;
  mmuNotifier: boolean;
  bugs: Bugs;
  /** The machine's system workqueue (userptr workers, notifier release). */
  system_wq: Workqueue;
  /** i915's own workqueue (retire, error work). */
  wq: Workqueue;
}

/** struct i915_gpu_error. */
export interface I915GpuError {
  /** Incremented when a reset starts and when it ends (odd: reset in progress). */
  reset_counter: number;
  /** The GPU could not be reset: every wait answers -EIO. */
  wedged: boolean;
  /** Text of the first captured error state since boot (or since it was cleared). */
  first_error: string | null;
  /** Hangs seen. */
  hangs: number;
}

/** struct drm_i915_private: the device's driver state. */
export class DrmI915Private {
  readonly info: IntelDeviceInfo;
  /** Created on first open (the scratch page is a frame; boot stays allocation-free). */
  private gttInstance: GlobalGtt | null = null;
  private mmInstance: DrmMm | null = null;
  private ringsInstance: IntelRing[] | null = null;
  /** Objects with pages but no GTT binding, and bound objects, in LRU order. */
  readonly unbound_list = new Set<DrmI915GemObject>();
  readonly bound_list = new Set<DrmI915GemObject>();
  /** Bound, idle vmas in least-recently-used order (the eviction candidates). */
  readonly inactive_list = new Set<I915Vma>();
  /** mm.interruptible: waits may be interrupted (cleared inside notifier callbacks). */
  interruptible = true;
  /** The next request's seqno is next_seqno + 1. */
  next_seqno = 0;
  /** The render ring's I915_EXEC_CONSTANTS mode (only execbuffer reads or writes it). */
  relative_constants_mode = 0;
  /** dev_priv->mmu_notifiers: userptr notifiers by mm, made at first use. Protected by struct_mutex. */
  mmu_notifiers: Map<MmStruct, I915MmuNotifier> | null = null;
  /** Model bookkeeping: i915_mmu_object allocations not yet freed (userptr's leak check). */
  userptr_mmu_objects: Set<I915MmuObject> | null = null;
  readonly gpu_error: I915GpuError = { reset_counter: 0, wedged: false, first_error: null, hangs: 0 };
  /** Retires completed requests (3.16: a delayed work; here queued on every interrupt). */
  readonly retire_work: WorkStruct;
  /** Resets after a hang (3.16: i915_error_work_func). */
  readonly error_work: WorkStruct;
  /** Rings that hung and wait for the error work. */
  readonly hungRings = new Set<IntelRing>();
  /** The scratch page every unbound GTT entry points at. */
  scratchPfn = -1;
  /** Sanitizers told when a batch starts executing on any ring (read-only). */
  readonly requestObservers: ((req: import('./intel_ringbuffer.js').DrmI915GemRequest) => void)[] = [];

  constructor(
    readonly dev: DrmDevice,
    readonly k: MmKernel,
    readonly config: I915Config,
    retire: (w: WorkStruct) => import('../sched/task.js').KGen,
    error: (w: WorkStruct) => import('../sched/task.js').KGen,
  ) {
    this.info = config.gen === 8 ? BROADWELL : IVYBRIDGE;
    this.retire_work = INIT_WORK('i915_gem_retire_work_handler', retire);
    this.error_work = INIT_WORK('i915_error_work_func', error);
  }

  get initialised(): boolean {
    return this.gttInstance !== null;
  }

  /** The global GTT. i915_gem_init must have run (first open). */
  get gtt(): GlobalGtt {
    if (!this.gttInstance) throw new Error('i915: GTT used before i915_gem_init');
    return this.gttInstance;
  }
  get mm(): DrmMm {
    if (!this.mmInstance) throw new Error('i915: GTT used before i915_gem_init');
    return this.mmInstance;
  }
  get rings(): readonly IntelRing[] {
    return this.ringsInstance ?? [];
  }
  get gtt_total(): number {
    return this.config.gttBytes;
  }
  get mappable_end(): number {
    return this.config.mappableBytes;
  }

  /** i915_gem_init(): GTT (with its scratch page) and rings; once. Returns false on OOM. */
  init(spawnRing: (ring: IntelRing) => void): boolean {
    if (this.gttInstance) return true;
    const ram = this.k.ram;
    const scratch = ram.alloc_page();
    if (scratch < 0) return false;
    this.scratchPfn = scratch;
    this.gttInstance = new GlobalGtt(ram, {
      scratchPfn: scratch,
      gttBytes: this.config.gttBytes,
      mappableBytes: this.config.mappableBytes,
      report: (kind, message) => {
        this.k.sched.report(kind, message);
      },
    });
    this.mmInstance = new DrmMm(0, this.config.gttBytes);
    this.ringsInstance = [
      new IntelRing(this.k.sched, 'rcs', this.gttInstance, this.info.gen, this.dev, this.requestObservers),
      new IntelRing(this.k.sched, 'bcs', this.gttInstance, this.info.gen, this.dev, this.requestObservers),
    ];
    for (const r of this.ringsInstance) spawnRing(r);
    return true;
  }

  /** Releases the scratch page at unload (everything else must already be gone). */
  fini(): void {
    if (this.scratchPfn >= 0) this.k.ram.put_page(this.scratchPfn);
    this.scratchPfn = -1;
  }

  ring(id: 'rcs' | 'bcs'): IntelRing {
    const r = this.rings.find((x) => x.id === id);
    if (!r) throw new Error(`i915: no ring ${id}`);
    return r;
  }
}

/** to_i915(). */
export function to_i915(dev: DrmDevice): DrmI915Private {
  return dev.dev_private as DrmI915Private;
}

/**
 * struct drm_i915_file_private: what the driver keeps per open file (made by i915_gem_open at the
 * file's open, emptied by i915_driver_preclose at its release).
 */
export class DrmI915FilePrivate {
  /**
   * mm.request_list: this file's requests not yet retired, oldest first (THROTTLE reads it).
   * Protected by mm.lock, a spinlock: every operation on it is atomic between scheduling points.
   */
  readonly request_list = new Set<DrmI915GemRequest>();
  /**
   * context_idr: the file's contexts, its default context at id 0 (DEFAULT_CONTEXT_ID) and the
   * created ones from 1, lowest free first. Protected by struct_mutex.
   */
  readonly context_idr = new Idr<I915HwContext>(0);

  constructor(
    readonly dev_priv: DrmI915Private,
    readonly file: DrmFile,
  ) {}
}

/** The i915 state of a DRM file (`file->driver_priv`). */
export function to_i915_file(file: DrmFile): DrmI915FilePrivate {
  return file.driver_priv as DrmI915FilePrivate;
}
