import { DrmGemObject } from '../drm/drm_gem.js';
import { DrmMmNode } from '../drm/drm_mm.js';
import type { KGen, Point } from '../sched/task.js';
import { I915_CACHING_CACHED, I915_MADV_WILLNEED, I915_TILING_NONE } from '../uapi/i915_drm.js';
import type { IntelRing } from './intel_ringbuffer.js';

/**
 * drm_i915_gem_object_ops: how an object gets its backing pages. shmem objects read them from
 * their shmem file; userptr objects pin the process's own pages.
 */
export interface I915GemObjectOps {
  readonly name: string;
  /** Fill obj.pages (a list of frames). 0 or -errno; may sleep, may answer -EAGAIN. */
  get_pages(obj: DrmI915GemObject): KGen<number>;
  /** Release obj.pages (the core clears the field afterwards). */
  put_pages(obj: DrmI915GemObject): KGen;
  /** Object destruction (after put_pages). */
  release?(obj: DrmI915GemObject): KGen;
  /** Called before the object is exported as a dma-buf; -errno refuses the export. */
  dmabuf_export?(obj: DrmI915GemObject): KGen<number>;
}

/** struct i915_vma: the object's place in the global GTT. */
export class I915Vma {
  /** The GTT range; owner is this vma. */
  readonly node: DrmMmNode;
  /** Pins (execbuffer reservation, display, GTT mmap fault in progress). Protected by struct_mutex. */
  pin_count = 0;
  /** Execbuffer bookkeeping while the vma is on an exec list. */
  exec_entry: number | null = null;

  constructor(readonly obj: DrmI915GemObject) {
    this.node = new DrmMmNode();
    (this.node as VmaNode)[VMA_OF_NODE] = this;
  }

  get bound(): boolean {
    return this.node.allocated;
  }
  get start(): number {
    return this.node.start;
  }
}

/** struct drm_i915_gem_object. Fields are protected by struct_mutex unless noted. */
export class DrmI915GemObject extends DrmGemObject {
  /** The backing frames once acquired (3.16: an sg_table), null before get_pages. */
  pages: number[] | null = null;
  /** Users of `pages` that forbid put_pages (binding, kernel access). */
  pages_pin_count = 0;
  /** The GGTT binding (3.16 keeps a list; one global VM here). */
  vma: I915Vma | null = null;
  /** On a ring's active list: the GPU may still use it. Holds an object reference. */
  active = false;
  /** The ring that used it last and the seqnos it must wait for. */
  ring: IntelRing | null = null;
  last_read_seqno = 0;
  last_write_seqno = 0;
  /** The GPU wrote to the pages: put_pages must mark them dirty. */
  dirty = false;
  /** I915_MADV_*. */
  madv = I915_MADV_WILLNEED;
  tiling_mode = I915_TILING_NONE;
  stride = 0;
  /** The cache level the pages are mapped with in the GTT (LLC: cached by default). */
  cache_level = I915_CACHING_CACHED;
  /** A GTT mmap has CPU PTEs that must be zapped when the binding moves. */
  fault_mappable = false;
  /** Pinned for scanout by a display plane (3.16: a bit; recomputed from the pins at unpin). */
  pin_display = false;
  /** Framebuffers wrapping it: its tiling may not change while any exists. */
  framebuffer_references = 0;
  /** Whether the object sits on the bound (true) or unbound (false) list; null: on neither. */
  onBoundList: boolean | null = null;
  /** Model bookkeeping: the request the last GPU use belongs to failed (a hang). */
  last_error = 0;

  constructor(readonly ops: I915GemObjectOps) {
    super();
  }

  override toString(): string {
    return `${this.ops.name} object #${this.serial}`;
  }
}

/**
 * container_of(node, struct i915_vma, node): a symbol-keyed back pointer on the node. Not a
 * WeakMap: V8's young-generation GC treats WeakMap values as strong, and a vma reaches its whole
 * machine, so every machine the explorer boots would survive until a full GC.
 */
const VMA_OF_NODE = Symbol('i915_vma');
type VmaNode = DrmMmNode & { [VMA_OF_NODE]?: I915Vma };
export function vma_of_node(node: DrmMmNode): I915Vma | undefined {
  return (node as VmaNode)[VMA_OF_NODE];
}

/** to_intel_bo(): every object of this device is a DrmI915GemObject (a BUG otherwise). */
export function to_intel_bo(obj: DrmGemObject): DrmI915GemObject {
  if (obj instanceof DrmI915GemObject) return obj;
  return obj.dev.sched.BUG(`${obj.toString()} is not an i915 object`);
}

/** i915_gem_obj_bound(). */
export function i915_gem_obj_bound(obj: DrmI915GemObject): boolean {
  return obj.vma?.bound ?? false;
}

/** i915_gem_obj_offset(). */
export function i915_gem_obj_offset(obj: DrmI915GemObject): number {
  return obj.vma?.bound ? obj.vma.start : -1;
}

/**
 * A scheduling point on an object (binding, page acquisition, pwrite): its name and GTT address
 * are only formatted when traced (the scheduler reads them right after the yield).
 */
export class ObjectPoint implements Point {
  constructor(
    readonly op: string,
    private readonly obj: DrmGemObject,
    /** The GTT address shown as the detail, or -1 for none. */
    private readonly at: number,
    readonly cost: number | undefined,
  ) {}
  get resource(): string {
    return this.obj.toString();
  }
  get detail(): string | undefined {
    return this.at < 0 ? undefined : `0x${this.at.toString(16)}`;
  }
}
