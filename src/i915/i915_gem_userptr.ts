import { registerBug } from '../base/bugs.js';
import { ERRNO } from '../base/errno.js';
import { registerFault, should_fail } from '../base/faults.js';
import {
  IntervalTreeNode,
  IntervalTreeRoot,
  interval_tree_insert,
  interval_tree_iter_first,
  interval_tree_iter_next,
  interval_tree_remove,
} from '../base/interval_tree.js';
import { PAGE_SIZE, hex } from '../base/page.js';
import type { DrmDevice } from '../drm/drm_device.js';
import type { DrmFile } from '../drm/drm_file.js';
import {
  drm_gem_handle_create,
  drm_gem_object_reference,
  drm_gem_object_unreference,
  drm_gem_object_unreference_unlocked,
  drm_gem_private_object_init,
} from '../drm/drm_gem.js';
import { CAP_SYS_ADMIN, current } from '../mm/current.js';
import { __get_user_pages_fast, get_user_pages, release_user_pages } from '../mm/gup.js';
import { get_task_mm, mmdrop, mmget_not_zero, mmgrab, mmput } from '../mm/mm.js';
import type { MmStruct } from '../mm/mm_types.js';
import { MmuNotifier, __mmu_notifier_register, mmu_notifier_unregister } from '../mm/mmu_notifier.js';
import { access_ok } from '../mm/uaccess.js';
import { finished } from '../sched/scheduler.js';
import { Spinlock } from '../sched/spinlock.js';
import type { KGen } from '../sched/task.js';
import { WaitQueue, wait_event } from '../sched/waitqueue.js';
import { INIT_WORK, type WorkStruct, queue_work } from '../sched/workqueue.js';
import * as uapi from '../uapi/i915_drm.js';
import { type DrmI915Private, to_i915 } from './i915_drv.js';
import {
  i915_gem_object_init,
  i915_gem_object_put_pages,
  i915_gem_retire_requests,
  i915_mutex_lock_interruptible,
  list_move,
} from './i915_gem.js';
import { i915_vma_unbind } from './i915_gem_gtt.js';
import { DrmI915GemObject, type I915GemObjectOps, ObjectPoint } from './i915_gem_object.js';
import { i915_seqno_passed } from './intel_ringbuffer.js';

/** 3.16: at most this many get-pages workers per object (a 4-bit field). */
export const I915_GEM_USERPTR_MAX_WORKERS = 15;

// --- bug switches of the merged code (kernel-userptr.md §8) ----------------------------------------

const LATENT = [
  [
    'dying-object-ref',
    'invalidate takes a plain reference on an object whose refcount already reached zero',
    'no use after free',
  ],
  [
    'serial-zero',
    'a fresh notifier starts with serial 0, so an early invalidation follows a NULL cached iterator',
    'no NULL dereference',
  ],
  [
    'token-clobber',
    "a superseded get-pages worker overwrites the newer worker's token with NULL",
    'I-PROGRESS',
  ],
  ['mmu-object-leak', 'release never frees the i915_mmu_object', 'no leak'],
  [
    'mmput-under-struct-mutex',
    'the object holds mm_users; its last mmput runs exit_mmap under struct_mutex',
    'I-ORDER',
  ],
  ['zero-size', 'user_size 0 is accepted, giving an inverted interval [ptr, ptr-1]', 'obj.size > 0'],
  [
    'fast-gup-during-invalidate',
    'the lockless fast path may pin pages between invalidate_range_start and the PTE change',
    'I-NOSTALE',
  ],
  [
    'worker-gup-during-invalidate',
    'a get-pages worker may pin pages between the start and the PTE change of an invalidation that holds mmap_sem only for read',
    'I-NOSTALE',
  ],
  [
    'aliased-gtt-mmap',
    'invalidate cancels every object in range, holding pages or not, each under struct_mutex',
    'I-ORDER',
  ],
  // Checked in intel_display.ts (intel_framebuffer_init): the fix lives in the display code.
  [
    'userptr-framebuffer',
    'a userptr object may back a framebuffer; its scanout pin makes it impossible to invalidate',
    'I-UNMAP / I-COVER',
  ],
] as const;
for (const [id, description, invariant] of LATENT)
  registerBug({ id, description, invariant, asMerged: true });

/** The changelog's hazards (§7): each switch restores the code before that version's fix. */
const HISTORIC = [
  [
    'v3-no-invalidate',
    "invalidate_range_start does not drop the object's pages (before v3)",
    'I-UNMAP / I-COVER',
  ],
  [
    'v6-no-recheck',
    'get_pages drops struct_mutex around mmap_sem and get_user_pages, then installs without looking again (before v6)',
    'I-ONCE',
  ],
  [
    'v4-invalidate-all',
    'every invalidation cancels every object of the mm, intersecting or not (before v4)',
    'I-LOCAL',
  ],
  [
    'v11-gup-under-struct-mutex',
    'get_pages takes mmap_sem and pins pages under struct_mutex (before v11)',
    'I-ORDER',
  ],
  [
    'v12-bare-mm',
    'the object keeps a bare mm pointer and takes no reference on the mm (before v12)',
    'I-MMREF',
  ],
  [
    'v13-sync-unregister',
    'the last object unregisters the notifier synchronously under struct_mutex (before v13)',
    'no SRCU wait under struct_mutex',
  ],
  [
    'v14-struct-mutex-lookup',
    'every invalidation takes struct_mutex, even with no object in range (before v14)',
    'I-CHEAP',
  ],
  [
    'v15-overlap',
    'overlapping objects are accepted and the walk resumes after the first object (before v15)',
    'I-COVER',
  ],
  [
    'v16-worker-race',
    'invalidate does not cancel the worker token; the worker installs regardless (before v16)',
    'I-NOSTALE',
  ],
  ['v17-no-retire', 'the overlap check runs before retiring completed requests (before v17)', 'I-NOSPURIOUS'],
  [
    'v18-dangling-pages',
    'a failed st_set_pages leaves obj->pages pointing at the freed sg_table (before v18)',
    'I-PAGES',
  ],
] as const;
for (const [id, description, invariant] of HISTORIC)
  registerBug({ id, description, invariant, asMerged: false });

type BugId = (typeof LATENT)[number][0] | (typeof HISTORIC)[number][0];

registerFault({
  id: 'st_set_pages',
  description: 'sg_alloc_table_from_pages() in the userptr st_set_pages() fails with -ENOMEM',
});

function bug(dp: DrmI915Private, id: BugId): boolean {
  return dp.config.bugs.has(id);
}

// --- data model (§3) -------------------------------------------------------------------------------

/** struct get_pages_work. */
class GetPagesWork {
  readonly work: WorkStruct;
  constructor(
    readonly obj: DrmI915UserptrObject,
    /** The task that asked (get_task_struct); its pid for messages. */
    readonly pid: number,
  ) {
    this.work = INIT_WORK('__i915_gem_userptr_get_pages_worker', () =>
      __i915_gem_userptr_get_pages_worker(this),
    );
  }
}

/** struct i915_mmu_object: one object's node in its notifier's interval tree. */
export class I915MmuObject {
  readonly it: IntervalTreeNode<I915MmuObject>;
  /**
   * The object holds pages or is acquiring them (4.2's fix for GTT mmaps aliasing a userptr
   * range): only active objects need cancelling. Protected by the notifier's lock.
   */
  active = false;
  /** Model bookkeeping: the allocation was freed (leak check). */
  freed = false;
  constructor(
    readonly mmu: I915MmuNotifier,
    readonly obj: DrmI915UserptrObject,
    start: number,
    last: number,
  ) {
    this.it = new IntervalTreeNode(start, last, this);
  }
}

/** struct i915_mmu_notifier: one per (device, mm), shared by the mm's synchronized objects. */
export class I915MmuNotifier {
  /** Protects `objects` and `serial`. */
  readonly lock: Spinlock;
  readonly mn: MmuNotifier;
  readonly objects = new IntervalTreeRoot<I915MmuObject>();
  /** Objects using this notifier. Protected by struct_mutex. */
  count = 0;
  /** Tree generation; bumped on every insertion and removal. */
  serial: number;
  /** Deferred unregistration (v13). */
  readonly work: WorkStruct;
  /** Ranges between invalidate_range_start and _end (the fast path must not pin in them). */
  readonly invalidating: [number, number][] = [];
  /** Woken at every invalidate_range_end (5.13's mmu_interval_read_begin waits here). */
  readonly wq: WaitQueue;
  /** Model bookkeeping: unregistered and freed. */
  freed = false;

  constructor(
    readonly dp: DrmI915Private,
    readonly mm: MmStruct,
  ) {
    this.lock = new Spinlock(dp.k.sched, `i915_mmu_notifier(mm${mm.id}).lock`, '&mmu->lock');
    this.wq = new WaitQueue(dp.k.sched, `i915_mmu_notifier(mm${mm.id}).wq`);
    this.serial = bug(dp, 'serial-zero') ? 0 : 1;
    this.mn = new MmuNotifier(
      {
        invalidate_range_start: (_mn, _mm, start, end) =>
          i915_gem_userptr_mn_invalidate_range_start(this, start, end),
        invalidate_range_end: (_mn, _mm, start, end) =>
          i915_gem_userptr_mn_invalidate_range_end(this, start, end),
      },
      `i915-userptr(mm${mm.id})`,
    );
    this.work = INIT_WORK('__i915_mmu_notifier_destroy_worker', () =>
      __i915_mmu_notifier_destroy_worker(this),
    );
  }
}

/** The `userptr` member of drm_i915_gem_object. */
export interface I915GemUserptr {
  ptr: number;
  read_only: boolean;
  /** Get-pages workers still executing (cancelled ones included). */
  workers: number;
  /**
   * The creator's mm: an mm_count reference (3.18's i915_mm_struct), or mm_users as merged
   * ('mmput-under-struct-mutex'), or no reference at all before v12 ('v12-bare-mm').
   */
  mm: MmStruct | null;
  /** Null for unsynchronized objects. */
  mn: I915MmuObject | null;
  /** The tri-state token: null, a pending worker, or the error of the last worker (< 0). */
  work: GetPagesWork | number | null;
}

export class DrmI915UserptrObject extends DrmI915GemObject {
  readonly userptr: I915GemUserptr = { ptr: 0, read_only: false, workers: 0, mm: null, mn: null, work: null };
  constructor() {
    super(i915_gem_userptr_ops);
  }
}

export function is_userptr(obj: DrmI915GemObject): obj is DrmI915UserptrObject {
  return obj instanceof DrmI915UserptrObject;
}

/** The userptr ops only ever see userptr objects (a BUG otherwise). */
function to_userptr(obj: DrmI915GemObject): DrmI915UserptrObject {
  if (obj instanceof DrmI915UserptrObject) return obj;
  return obj.dev.sched.BUG(`${obj.toString()} is not a userptr object`);
}

/** Model bookkeeping: i915_mmu_object allocations not yet freed (leak check at unload). */
function live(dp: DrmI915Private): Set<I915MmuObject> {
  return (dp.userptr_mmu_objects ??= new Set<I915MmuObject>());
}

/** Unload check: every i915_mmu_object freed, every notifier unregistered. */
export function i915_gem_userptr_unload_check(dp: DrmI915Private): void {
  const s = dp.k.sched;
  const objs = dp.userptr_mmu_objects?.size ?? 0;
  if (objs) s.report('leak', `${objs} i915_mmu_object allocations never freed`);
  const mns = dp.mmu_notifiers?.size ?? 0;
  if (mns) s.report('leak', `${mns} i915_mmu_notifier still registered at unload`);
}

/** Notifiers by mm (3.16: a 128-bucket hash in dev_priv). Protected by struct_mutex. */
export function i915_mmu_notifiers(dp: DrmI915Private): Map<MmStruct, I915MmuNotifier> {
  return (dp.mmu_notifiers ??= new Map<MmStruct, I915MmuNotifier>());
}

// --- the notifier (§5) -----------------------------------------------------------------------------

function __i915_mmu_notifier_update_serial(mmu: I915MmuNotifier): void {
  mmu.serial = (mmu.serial + 1) >>> 0;
  if (mmu.serial === 0) mmu.serial = 1;
}

/** cancel_userptr(): forget any worker, unbind (waiting for the GPU) and drop the pages. */
function* cancel_userptr(obj: DrmI915UserptrObject): KGen<number> {
  const dev = obj.dev;
  const dp = to_i915(dev);
  const s = dp.k.sched;
  yield* dev.struct_mutex.lock();
  // Sanitizer: only a reference taken on a dying object ('dying-object-ref') lets it be freed
  // while we waited for struct_mutex; everything below then touches freed memory.
  if (obj.freed) s.report('use-after-free', `cancel_userptr of freed ${obj.toString()}`);
  if (!bug(dp, 'v16-worker-race')) obj.userptr.work = null;
  if (obj.pages) {
    const was = dp.interruptible;
    dp.interruptible = false;
    if (obj.vma) {
      const ret = yield* i915_vma_unbind(obj.vma);
      s.WARN_ON(
        ret !== 0 && ret !== -ERRNO.EIO,
        `cancel_userptr: unbind of ${obj.toString()} failed: ${ret}`,
      );
    }
    const ret = yield* i915_gem_object_put_pages(obj);
    s.WARN_ON(ret !== 0, `cancel_userptr: put_pages of ${obj.toString()} failed: ${ret}`);
    dp.interruptible = was;
  }
  const end = obj.userptr.ptr + obj.size;
  yield* drm_gem_object_unreference(obj);
  dev.struct_mutex.unlock();
  return end;
}

/**
 * invalidate_range_start (§5.3): walk the objects intersecting [start, end) in address order,
 * dropping the spinlock to cancel each; the cached iterator is reused only while the tree's
 * serial is unchanged.
 */
function* i915_gem_userptr_mn_invalidate_range_start(mn: I915MmuNotifier, start: number, end: number): KGen {
  const dp = mn.dp;
  const s = dp.k.sched;
  mn.invalidating.push([start, end]);
  if (bug(dp, 'v3-no-invalidate')) return;
  if (bug(dp, 'v14-struct-mutex-lookup')) {
    // Before v14 the lookup itself was protected by struct_mutex.
    yield* dp.dev.struct_mutex.lock();
    dp.dev.struct_mutex.unlock();
  }
  if (bug(dp, 'v4-invalidate-all')) {
    start = 0;
    end = Number.MAX_SAFE_INTEGER;
  }
  end -= 1;
  let it: IntervalTreeNode<I915MmuObject> | null = null;
  let next = start;
  let serial = 0;
  while (next < end) {
    let obj: DrmI915UserptrObject | null = null;
    yield* mn.lock.lock();
    if (mn.serial === serial) {
      // Reachable with it == NULL only when a fresh notifier's serial is 0 ('serial-zero').
      if (!it)
        return s.BUG(
          `NULL pointer dereference: interval_tree_iter_next(NULL) in invalidate_range_start (mm${mn.mm.id})`,
        );
      it = interval_tree_iter_next(it, next, end);
    } else {
      it = interval_tree_iter_first(mn.objects, next, end);
    }
    while (it) {
      const o = it.value.obj;
      if (!it.value.active && !bug(dp, 'aliased-gtt-mmap')) {
        // Nothing to cancel, so no struct_mutex: a GTT mmap aliasing the range is zapped from
        // under struct_mutex (unbind, set_tiling), and its invalidation must not take it again.
        it = interval_tree_iter_next(it, next, end);
        continue;
      }
      if (o.refcount > 0) {
        obj = o;
        drm_gem_object_reference(o);
        break;
      }
      if (bug(dp, 'dying-object-ref')) {
        // kref_get on a dying object: 3.16's kref_get WARNs (atomic_inc_return() < 2) and
        // resurrects it from zero; free_object goes on regardless.
        s.WARN_ON(true, `kref_get of ${o.toString()} with refcount 0 in invalidate_range_start`);
        o.refcount++;
        obj = o;
        break;
      }
      // kref_get_unless_zero failed: it is being freed; its release removes it. Skip it.
      it = interval_tree_iter_next(it, next, end);
    }
    if (obj) serial = mn.serial;
    mn.lock.unlock();
    if (!obj) return;
    next = yield* cancel_userptr(obj);
  }
}

/** invalidate_range_end: the range may be pinned again. (Never sleeps: no generator of its own.) */
function i915_gem_userptr_mn_invalidate_range_end(mn: I915MmuNotifier, start: number, end: number): KGen {
  const i = mn.invalidating.findIndex(([a, b]) => a === start && b === end);
  if (i >= 0) mn.invalidating.splice(i, 1);
  mn.wq.wake_up_all();
  return finished();
}

/** i915_mmu_notifier_get(): find or create (mmap_sem held for write, struct_mutex held). */
function* i915_mmu_notifier_get(dp: DrmI915Private, mm: MmStruct): KGen<I915MmuNotifier | number> {
  const hash = i915_mmu_notifiers(dp);
  const have = hash.get(mm);
  if (have) return have;
  const mmu = new I915MmuNotifier(dp, mm);
  const ret = yield* __mmu_notifier_register(mmu.mn, mm);
  if (ret) return ret;
  hash.set(mm, mmu);
  return mmu;
}

/** __i915_mmu_notifier_destroy(): unhash now, unregister later on a worker holding no locks. */
function* __i915_mmu_notifier_destroy(mmu: I915MmuNotifier): KGen {
  const hash = i915_mmu_notifiers(mmu.dp);
  if (hash.get(mmu.mm) === mmu) hash.delete(mmu.mm);
  if (bug(mmu.dp, 'v13-sync-unregister')) {
    yield* __i915_mmu_notifier_destroy_worker(mmu);
    return;
  }
  queue_work(mmu.dp.config.system_wq, mmu.work);
}

function* __i915_mmu_notifier_destroy_worker(mmu: I915MmuNotifier): KGen {
  yield* mmu_notifier_unregister(mmu.mn, mmu.mm);
  mmu.freed = true;
}

/** i915_mmu_notifier_add(): retire first, then refuse overlaps (§5.2). */
function* i915_mmu_notifier_add(mmu: I915MmuNotifier, mn: I915MmuObject): KGen<number> {
  const dev = mmu.dp.dev;
  let ret = yield* i915_mutex_lock_interruptible(dev);
  if (ret) return ret;
  // Sanitizer bookkeeping: the breadcrumbs as the retire (or, before v17, its absence) found
  // them. A request completing after this point is the GPU racing the check, not a spurious -EINVAL.
  const completed = new Map(mmu.dp.rings.map((r) => [r, r.get_seqno()] as const));
  if (!bug(mmu.dp, 'v17-no-retire')) yield* i915_gem_retire_requests(mmu.dp);
  yield* mmu.lock.lock();
  const it = bug(mmu.dp, 'v15-overlap')
    ? null
    : interval_tree_iter_first(mmu.objects, mn.it.start, mn.it.last);
  if (it) {
    const o = it.value.obj;
    ret = o.userptr.workers ? -ERRNO.EAGAIN : -ERRNO.EINVAL;
    if (
      ret === -ERRNO.EINVAL &&
      o.handle_count === 0 &&
      o.active &&
      o.ring &&
      i915_seqno_passed(completed.get(o.ring) ?? 0, o.last_read_seqno)
    ) {
      // Sanitizer: the object blocking the range is unreachable and only waits for retirement.
      mmu.dp.k.sched.report(
        'invariant',
        `I-NOSPURIOUS: -EINVAL for [${mn.it.start}, ${mn.it.last}] because of closed, idle ${o.toString()} not yet retired`,
      );
    }
  } else {
    interval_tree_insert(mn.it, mmu.objects);
    __i915_mmu_notifier_update_serial(mmu);
    ret = 0;
  }
  mmu.lock.unlock();
  dev.struct_mutex.unlock();
  return ret;
}

/** i915_mmu_notifier_del(): struct_mutex held. */
function* i915_mmu_notifier_del(mmu: I915MmuNotifier, mn: I915MmuObject): KGen {
  yield* mmu.lock.lock();
  interval_tree_remove(mn.it, mmu.objects);
  __i915_mmu_notifier_update_serial(mmu);
  mmu.lock.unlock();
  if (--mmu.count === 0) yield* __i915_mmu_notifier_destroy(mmu);
}

/** i915_gem_userptr_init__mmu_notifier(). */
function* i915_gem_userptr_init__mmu_notifier(obj: DrmI915UserptrObject, flags: number): KGen<number> {
  const dp = to_i915(obj.dev);
  const cur = current(dp.k);
  if (!dp.config.mmuNotifier) {
    if (!(flags & uapi.I915_USERPTR_UNSYNCHRONIZED)) return -ERRNO.ENODEV;
    return cur.capable(CAP_SYS_ADMIN) ? 0 : -ERRNO.EPERM;
  }
  if (flags & uapi.I915_USERPTR_UNSYNCHRONIZED) return cur.capable(CAP_SYS_ADMIN) ? 0 : -ERRNO.EPERM;
  const mm = obj.userptr.mm!;
  const dev = obj.dev;
  yield* mm.mmap_sem.down_write();
  let mmu: I915MmuNotifier | number = -ERRNO.EINTR;
  let ret = yield* i915_mutex_lock_interruptible(dev);
  if (ret === 0) {
    mmu = yield* i915_mmu_notifier_get(dp, mm);
    if (typeof mmu !== 'number') mmu.count++;
    else ret = mmu;
    dev.struct_mutex.unlock();
  }
  mm.mmap_sem.up_write();
  if (ret || typeof mmu === 'number') return ret;
  if (obj.size === 0) {
    // Only reachable with 'zero-size': 3.16 inserts the inverted interval [ptr, ptr - 1] and
    // carries on. The sanitizer names it; the tree takes it as the kernel's does.
    dp.k.sched.report(
      'invariant',
      `obj.size > 0: interval_tree_insert of the inverted interval [${obj.userptr.ptr}, ${obj.userptr.ptr - 1}]`,
    );
  }
  const mn = new I915MmuObject(mmu, obj, obj.userptr.ptr, obj.userptr.ptr + obj.size - 1);
  live(dp).add(mn);
  ret = yield* i915_mmu_notifier_add(mmu, mn);
  if (ret === 0) {
    obj.userptr.mn = mn;
    return 0;
  }
  mn.freed = true;
  live(dp).delete(mn);
  yield* dev.struct_mutex.lock();
  if (--mmu.count === 0) yield* __i915_mmu_notifier_destroy(mmu);
  dev.struct_mutex.unlock();
  return ret;
}

// --- pages (§4) ------------------------------------------------------------------------------------

/** Marks a kfree'd sg table that a dangling obj.pages still points at ('v18-dangling-pages'). */
const FREED_TABLE = Symbol("kfree'd sg_table");
type SgTable = number[] & { [FREED_TABLE]?: true };

/**
 * st_set_pages(&obj->pages, pvec, n) in its final (v18) form: build the sg table into obj.pages,
 * or fail with obj.pages NULL. Its sg_alloc_table_from_pages() fails with -ENOMEM when the fault
 * point 'st_set_pages' says so (the table is then empty: nents 0, sgl NULL, and is freed).
 */
function st_set_pages(obj: DrmI915UserptrObject, pvec: number[]): number {
  const dp = to_i915(obj.dev);
  const s = dp.k.sched;
  if (obj.pages) {
    // Sanitizer (I-ONCE): only code that installs without looking ('v6-no-recheck') gets here.
    s.report(
      'invariant',
      `I-ONCE: ${obj.toString()} gets a second page list while it holds one (pfn ${obj.pages.map((f) => hex(f)).join(', ')}): ` +
        `the first list's ${obj.pages.length} page references leak`,
    );
  }
  if (should_fail(dp.k, 'st_set_pages')) {
    if (bug(dp, 'v18-dangling-pages')) {
      // Before v18: kfree(*st) without *st = NULL.
      const table: SgTable = [];
      table[FREED_TABLE] = true;
      obj.pages = table;
      // Sanitizer (I-PAGES): obj.pages is NULL or a fully built table.
      s.report(
        'invariant',
        `I-PAGES: st_set_pages of ${obj.toString()} failed (-ENOMEM) and left obj->pages pointing at the freed sg_table`,
      );
    } else {
      obj.pages = null;
    }
    return -ERRNO.ENOMEM;
  }
  obj.pages = pvec.slice();
  return 0;
}

/** The fast path may not pin inside a range whose invalidation has started but not ended. */
function range_invalidating(obj: DrmI915UserptrObject): boolean {
  const mmu = obj.userptr.mn?.mmu;
  if (!mmu) return false;
  const a = obj.userptr.ptr;
  const b = a + obj.size;
  return mmu.invalidating.some(([s, e]) => s < b && a < e);
}

/**
 * __i915_gem_userptr_set_active(): mark whether invalidations must cancel the object. Linux
 * writes it under the notifier's spinlock; here a write between two scheduling points is
 * already atomic, so the lock's point is left out and every schedule stays as it was.
 * Unsynchronized objects have no notifier.
 */
function __i915_gem_userptr_set_active(obj: DrmI915UserptrObject, value: boolean): void {
  const mo = obj.userptr.mn;
  if (mo) mo.active = value;
}

/**
 * i915_gem_userptr_get_pages(): active first, so an invalidation meanwhile cancels what is being
 * acquired; inactive again unless pages were installed or a worker is on its way.
 */
function* i915_gem_userptr_get_pages(o: DrmI915GemObject): KGen<number> {
  const obj = to_userptr(o);
  __i915_gem_userptr_set_active(obj, true);
  const ret = yield* __i915_gem_userptr_get_pages(obj);
  if (ret !== 0 && !(obj.userptr.work instanceof GetPagesWork)) __i915_gem_userptr_set_active(obj, false);
  return ret;
}

/** The acquisition itself: the lockless fast path in the creator's mm, else a worker. */
function* __i915_gem_userptr_get_pages(obj: DrmI915UserptrObject): KGen<number> {
  const dp = to_i915(obj.dev);
  const ram = dp.k.ram;
  const num_pages = obj.size / PAGE_SIZE;
  const pvec: number[] = [];
  let pinned = 0;
  yield new ObjectPoint('userptr_get_pages', obj, -1, undefined);
  const mm = obj.userptr.mm;
  if (mm && mm === current(dp.k).mm && (bug(dp, 'fast-gup-during-invalidate') || !range_invalidating(obj))) {
    pinned = __get_user_pages_fast(mm, obj.userptr.ptr, num_pages, !obj.userptr.read_only, pvec);
  }
  if (pinned < num_pages && mm && bug(dp, 'v6-no-recheck')) {
    // Before v6 (and v11): drop struct_mutex around mmap_sem and get_user_pages, retake it, and
    // install what was pinned without asking whether someone else populated the object (or
    // whether the mm is still there) meanwhile.
    const dev = obj.dev;
    dev.struct_mutex.unlock();
    yield* mm.mmap_sem.down_read();
    let r = 0;
    while (pvec.length < num_pages) {
      r = yield* get_user_pages(
        mm,
        obj.userptr.ptr + pvec.length * PAGE_SIZE,
        num_pages - pvec.length,
        !obj.userptr.read_only,
        false,
        pvec,
      );
      if (r < 0) break;
    }
    mm.mmap_sem.up_read();
    yield* dev.struct_mutex.lock();
    if (r < 0) {
      release_user_pages(ram, pvec, false);
      return r;
    }
    const ret = st_set_pages(obj, pvec);
    if (ret) release_user_pages(ram, pvec, false);
    return ret;
  }
  if (pinned < num_pages && mm && bug(dp, 'v11-gup-under-struct-mutex')) {
    // Before v11: pin the pages right here, taking mmap_sem under struct_mutex.
    release_user_pages(ram, pvec.splice(0), false);
    yield* mm.mmap_sem.down_read();
    let r = 0;
    while (pvec.length < num_pages) {
      r = yield* get_user_pages(
        mm,
        obj.userptr.ptr + pvec.length * PAGE_SIZE,
        num_pages - pvec.length,
        true,
        false,
        pvec,
      );
      if (r < 0) break;
    }
    mm.mmap_sem.up_read();
    if (r < 0) {
      release_user_pages(ram, pvec, false);
      return r;
    }
    const ret = st_set_pages(obj, pvec);
    if (ret) release_user_pages(ram, pvec, false);
    return ret;
  }
  let ret: number;
  if (pinned < num_pages) {
    ret = -ERRNO.EAGAIN;
    const w = obj.userptr.work;
    if (w === null && obj.userptr.workers < I915_GEM_USERPTR_MAX_WORKERS) {
      const work = new GetPagesWork(obj, current(dp.k).pid);
      obj.userptr.work = work;
      obj.userptr.workers++;
      drm_gem_object_reference(obj);
      queue_work(dp.config.system_wq, work.work);
    } else if (typeof w === 'number') {
      ret = w;
      obj.userptr.work = null;
    }
  } else {
    ret = st_set_pages(obj, pvec);
    if (ret === 0) {
      obj.userptr.work = null;
      pinned = 0;
    }
  }
  release_user_pages(ram, pvec.slice(0, pinned), false);
  return ret;
}

/** The get-pages worker (§4.4): gup under mmap_sem (no driver lock), then install under struct_mutex. */
function* __i915_gem_userptr_get_pages_worker(work: GetPagesWork): KGen {
  const obj = work.obj;
  const dev = obj.dev;
  const dp = to_i915(dev);
  const num_pages = obj.size / PAGE_SIZE;
  const pvec: number[] = [];
  let ret = -ERRNO.ENOMEM;
  let pinned = 0;
  const mm = obj.userptr.mm!;
  const mmu = obj.userptr.mn?.mmu;
  if (mmu && !bug(dp, 'worker-gup-during-invalidate')) {
    // 5.13's mmu_interval_read_begin(): do not read the page tables while an invalidation of the
    // range is between its start and its end. munmap excludes us with mmap_sem held for write,
    // but MADV_DONTNEED (and COW faults) invalidate holding it only for read.
    yield* wait_event(mmu.wq, () => !range_invalidating(obj));
  }
  // The object pins the mm's mappings only as merged (or not at all before v12); otherwise the
  // worker borrows a user reference for the walk, and a process that is gone gives -EFAULT.
  const borrowed = !object_holds_mm_users(dp);
  if (borrowed && !mmget_not_zero(mm)) {
    ret = -ERRNO.EFAULT;
  } else {
    yield* mm.mmap_sem.down_read();
    while (pinned < num_pages) {
      ret = yield* get_user_pages(
        mm,
        obj.userptr.ptr + pinned * PAGE_SIZE,
        num_pages - pinned,
        !obj.userptr.read_only,
        false,
        pvec,
      );
      if (ret < 0) break;
      pinned += ret;
    }
    if (num_pages === 0) ret = 0;
    mm.mmap_sem.up_read();
    if (borrowed) yield* mmput(mm);
  }
  yield* dev.struct_mutex.lock();
  const ours = obj.userptr.work === work || bug(dp, 'v16-worker-race');
  if (!ours) {
    ret = 0;
  } else if (pinned === num_pages) {
    ret = st_set_pages(obj, pvec);
    if (ret === 0) {
      list_move(dp, obj, false);
      pinned = 0;
    }
  }
  const theirs = obj.userptr.work;
  if (!ours && bug(dp, 'token-clobber') && theirs !== null) {
    // Sanitizer: only cancel_userptr and a successful fast path may clear the token; a
    // superseded worker that does erases a newer worker's claim, which then discards its pages.
    dp.k.sched.report(
      'invariant',
      `I-PROGRESS: a superseded get-pages worker of ${obj.toString()} cleared ` +
        (typeof theirs === 'number'
          ? `the error ${theirs} of a newer worker`
          : 'the token of a newer worker'),
    );
  }
  if (ours || bug(dp, 'token-clobber')) obj.userptr.work = ret < 0 ? ret : null;
  if (ours && ret < 0) __i915_gem_userptr_set_active(obj, false);
  obj.userptr.workers--;
  yield* drm_gem_object_unreference(obj);
  dev.struct_mutex.unlock();
  release_user_pages(dp.k.ram, pvec.slice(0, pinned), false);
  // pvec entries beyond `pinned` were never taken.
}

/** i915_gem_userptr_put_pages() (§4.6). Never sleeps: no generator of its own. */
function i915_gem_userptr_put_pages(o: DrmI915GemObject): KGen {
  const obj = to_userptr(o);
  const dp = to_i915(obj.dev);
  if (obj.userptr.work !== null) dp.k.sched.BUG(`userptr put_pages of ${obj.toString()} with work pending`);
  if (obj.pages && (obj.pages as SgTable)[FREED_TABLE]) {
    // Sanitizer: the table a failed st_set_pages freed ('v18-dangling-pages'); walking it finds
    // nothing (nents 0), sg_free_table() + kfree() free it a second time.
    dp.k.sched.report(
      'use-after-free',
      `put_pages of ${obj.toString()} walks the freed sg_table and frees it again (double free)`,
    );
  }
  if (obj.madv !== uapi.I915_MADV_WILLNEED) obj.dirty = false;
  release_user_pages(dp.k.ram, obj.pages ?? [], obj.dirty);
  obj.dirty = false;
  __i915_gem_userptr_set_active(obj, false);
  return finished();
}

/** i915_gem_userptr_release(): leave the tree, then drop the mm (deferred unless as merged). */
function* i915_gem_userptr_release(o: DrmI915GemObject): KGen {
  const obj = to_userptr(o);
  const dp = to_i915(obj.dev);
  // Sanitizer: a second free (the last put of a reference resurrected by 'dying-object-ref').
  if (obj.freed) dp.k.sched.report('use-after-free', `double free of ${obj.toString()}`);
  const mn = obj.userptr.mn;
  if (mn) {
    yield* i915_mmu_notifier_del(mn.mmu, mn);
    if (!bug(dp, 'mmu-object-leak')) {
      mn.freed = true;
      live(dp).delete(mn);
    }
    obj.userptr.mn = null;
  }
  const mm = obj.userptr.mm;
  obj.userptr.mm = null;
  if (mm && bug(dp, 'v12-bare-mm')) {
    // No reference was taken.
  } else if (mm && bug(dp, 'mmput-under-struct-mutex')) {
    // As merged: the last user reference may go here, under struct_mutex, and run exit_mmap.
    yield* mmput(mm);
  } else if (mm) {
    // 3.18: only the struct was pinned; dropping it never tears the address space down.
    mmdrop(mm);
  }
}

/**
 * Whether an object's mm reference is an mm_users one (3.16 as merged). 3.18's i915_mm_struct
 * holds mm_count instead: the process's exit then unmaps its memory at once, and a GTT mmap
 * (whose vma holds the DRM file, whose handles hold the object) no longer keeps the mm alive.
 */
function object_holds_mm_users(dp: DrmI915Private): boolean {
  return bug(dp, 'mmput-under-struct-mutex') || bug(dp, 'v12-bare-mm');
}

/** The creator's mm with the reference the configured design takes (see object_holds_mm_users). */
function i915_gem_userptr_init__mm_struct(dp: DrmI915Private): MmStruct | null {
  const task = current(dp.k);
  if (bug(dp, 'v12-bare-mm')) return task.mm;
  if (bug(dp, 'mmput-under-struct-mutex')) return get_task_mm(task);
  if (task.mm) mmgrab(task.mm);
  return task.mm;
}

/**
 * i915_gem_userptr_dmabuf_export(): a foreign importer needs invalidation: attach a notifier.
 * When the object holds only mm_count, the creator may have exited (a forked child exports an
 * unsynchronized object): registering on an mm without users is a BUG, so the registration
 * borrows a user reference as the worker does, and a process that is gone gives -EFAULT.
 */
function* i915_gem_userptr_dmabuf_export(o: DrmI915GemObject): KGen<number> {
  const obj = to_userptr(o);
  if (obj.userptr.mn) return 0;
  const mm = obj.userptr.mm;
  if (!mm || object_holds_mm_users(to_i915(obj.dev)))
    return yield* i915_gem_userptr_init__mmu_notifier(obj, 0);
  if (!mmget_not_zero(mm)) return -ERRNO.EFAULT;
  try {
    return yield* i915_gem_userptr_init__mmu_notifier(obj, 0);
  } finally {
    yield* mmput(mm);
  }
}

export const i915_gem_userptr_ops: I915GemObjectOps = {
  name: 'userptr',
  get_pages: i915_gem_userptr_get_pages,
  put_pages: i915_gem_userptr_put_pages,
  release: i915_gem_userptr_release,
  dmabuf_export: i915_gem_userptr_dmabuf_export,
};

// --- the ioctl (§2.1) ------------------------------------------------------------------------------

/** The ioctl's __u64 bounds, converted once. */
const PAGE_MASK_U64 = BigInt(PAGE_SIZE - 1);
const MAX_SAFE_U64 = BigInt(Number.MAX_SAFE_INTEGER);

/** DRM_IOCTL_I915_GEM_USERPTR, with 3.16's checks in 3.16's order. */
export function* i915_gem_userptr_ioctl(dev: DrmDevice, data: Uint8Array, file: DrmFile): KGen<number> {
  const dp = to_i915(dev);
  const args = uapi.drm_i915_gem_userptr.decode(data);
  const ptr = args.user_ptr;
  const size = args.user_size;
  if (args.flags & ~(uapi.I915_USERPTR_READ_ONLY | uapi.I915_USERPTR_UNSYNCHRONIZED)) return -ERRNO.EINVAL;
  if ((ptr | size) & PAGE_MASK_U64) return -ERRNO.EINVAL;
  if (size === 0n && !bug(dp, 'zero-size')) return -ERRNO.EINVAL;
  if (size > BigInt(dp.gtt_total)) return -ERRNO.E2BIG;
  if (ptr > MAX_SAFE_U64 || !access_ok(Number(ptr), Number(size))) return -ERRNO.EFAULT;
  if (args.flags & uapi.I915_USERPTR_READ_ONLY) return -ERRNO.ENODEV;
  const obj = new DrmI915UserptrObject();
  drm_gem_private_object_init(dev, obj, Number(size));
  i915_gem_object_init(obj);
  obj.cache_level = uapi.I915_CACHING_CACHED;
  obj.userptr.ptr = Number(ptr);
  obj.userptr.read_only = false;
  let ret = -ERRNO.ENOMEM;
  obj.userptr.mm = i915_gem_userptr_init__mm_struct(dp);
  if (obj.userptr.mm) ret = yield* i915_gem_userptr_init__mmu_notifier(obj, args.flags);
  let handle = 0;
  if (ret === 0) {
    const h = yield* drm_gem_handle_create(file, obj);
    if (h < 0) ret = h;
    else handle = h;
  }
  yield* drm_gem_object_unreference_unlocked(obj);
  if (ret) return ret;
  uapi.drm_i915_gem_userptr.encode({ ...args, handle }, data);
  return 0;
}
