import { hex } from '../base/page.js';
import { finished } from '../sched/scheduler.js';
import type { KGen, Point } from '../sched/task.js';
import type { MmStruct } from './mm_types.js';
import { mmdrop } from './mm.js';

/** struct mmu_notifier_ops: every callback may sleep (3.16: invalidate_range_start may block). */
export interface MmuNotifierOps {
  /** The address space is going away (exit_mmap) or the notifier is being unregistered. */
  release?: (mn: MmuNotifier, mm: MmStruct) => KGen;
  invalidate_page?: (mn: MmuNotifier, mm: MmStruct, address: number) => KGen;
  /** [start, end) is about to change what it maps; after it returns, stop using the pages. */
  invalidate_range_start?: (mn: MmuNotifier, mm: MmStruct, start: number, end: number) => KGen;
  invalidate_range_end?: (mn: MmuNotifier, mm: MmStruct, start: number, end: number) => KGen;
}

/** struct mmu_notifier: embedded by a driver in its own per-mm structure. */
export class MmuNotifier {
  /** Linked into mm->mmu_notifier_mm->list (hlist_unhashed() is false). */
  hashed = false;
  /** The mm it was registered with (for messages and checks). */
  mm: MmStruct | null = null;

  constructor(
    readonly ops: MmuNotifierOps,
    readonly name = 'mmu_notifier',
  ) {}
}

/** mm_has_notifiers(). */
export function mm_has_notifiers(mm: MmStruct): boolean {
  return mm.mmu_notifiers.length > 0;
}

/**
 * do_mmu_notifier_register(): mm_take_all_locks() (serialised by mm_all_locks_mutex), take an
 * mm_count reference, link the notifier. The `__` variant expects mmap_sem held for write.
 */
function* do_mmu_notifier_register(mn: MmuNotifier, mm: MmStruct, take_mmap_sem: boolean): KGen<number> {
  const s = mm.k.sched;
  if (mm.mm_users <= 0) s.BUG(`mmu_notifier_register on mm ${mm.id} with mm_users ${mm.mm_users}`);
  if (take_mmap_sem) yield* mm.mmap_sem.down_write();
  else if (!mm.mmap_sem.is_write_held_by_current()) {
    s.report('WARN', `__mmu_notifier_register without mmap_sem held for write (mm ${mm.id})`);
  }
  // mm_take_all_locks(): expensive, and a lock class of its own.
  yield* mm.k.mmAllLocks.lock();
  yield { op: 'mm_take_all_locks', resource: `mm${mm.id}`, cost: 100 * mm.map_count };
  mm.mm_count++;
  yield* mm.notifierLock.lock();
  mm.mmu_notifiers.unshift(mn);
  mn.hashed = true;
  mn.mm = mm;
  mm.notifierLock.unlock();
  mm.k.mmAllLocks.unlock();
  if (take_mmap_sem) mm.mmap_sem.up_write();
  return 0;
}

/** mmu_notifier_register(): takes mmap_sem for write itself. */
export function mmu_notifier_register(mn: MmuNotifier, mm: MmStruct): KGen<number> {
  return do_mmu_notifier_register(mn, mm, true);
}

/** __mmu_notifier_register(): the caller holds mmap_sem for write. */
export function __mmu_notifier_register(mn: MmuNotifier, mm: MmStruct): KGen<number> {
  return do_mmu_notifier_register(mn, mm, false);
}

/**
 * mmu_notifier_unregister(): runs ->release if the mm has not already, unlinks, waits for every
 * callback in flight (synchronize_srcu) and drops the mm_count reference.
 */
export function* mmu_notifier_unregister(mn: MmuNotifier, mm: MmStruct): KGen {
  const k = mm.k;
  if (mn.hashed) {
    const idx = k.notifierSrcu.read_lock();
    if (mn.ops.release) yield* mn.ops.release(mn, mm);
    k.notifierSrcu.srcu_read_unlock(idx);
    yield* mm.notifierLock.lock();
    unlink(mm, mn);
    mm.notifierLock.unlock();
  }
  yield* k.notifierSrcu.synchronize_srcu();
  if (mm.mm_count <= 0) k.sched.BUG(`mmu_notifier_unregister: mm ${mm.id} mm_count ${mm.mm_count}`);
  mmdrop(mm);
}

function unlink(mm: MmStruct, mn: MmuNotifier): void {
  const i = mm.mmu_notifiers.indexOf(mn);
  if (i >= 0) mm.mmu_notifiers.splice(i, 1);
  mn.hashed = false;
}

/**
 * __mmu_notifier_release(): called by exit_mmap with no other user left. Every notifier's
 * ->release runs, then all are unlinked; unregister later only waits and drops mm_count.
 */
export function* mmu_notifier_release(mm: MmStruct): KGen {
  const k = mm.k;
  const idx = k.notifierSrcu.read_lock();
  for (const mn of [...mm.mmu_notifiers]) if (mn.ops.release) yield* mn.ops.release(mn, mm);
  yield* mm.notifierLock.lock();
  for (const mn of [...mm.mmu_notifiers]) unlink(mm, mn);
  mm.notifierLock.unlock();
  k.notifierSrcu.srcu_read_unlock(idx);
  yield* k.notifierSrcu.synchronize_srcu();
}

/**
 * mmu_notifier_invalidate_range_start(): every registered notifier hears about [start, end)
 * before the page tables change. Callers hold mmap_sem (or, for exit_mmap, are the last user).
 * (Plain functions returning notify's generator: one level less on each of its steps.)
 */
export function mmu_notifier_invalidate_range_start(mm: MmStruct, start: number, end: number): KGen {
  if (mm.mmu_notifiers.length === 0) return finished();
  return notify(mm, 'invalidate_range_start', start, end);
}

export function mmu_notifier_invalidate_range_end(mm: MmStruct, start: number, end: number): KGen {
  if (mm.mmu_notifiers.length === 0) return finished();
  return notify(mm, 'invalidate_range_end', start, end);
}

/**
 * mmu_notifier_invalidate_page(): the one page at `address` changed what it maps (3.16's
 * try_to_unmap_one() calls it after clearing the PTE, for reclaim and migration; page_mkclean and
 * KSM's write-protection likewise). Only notifiers with an invalidate_page callback hear it: there
 * is no fallback to invalidate_range_start in 3.16. Callers hold the page lock, not mmap_sem.
 * Sanitizers are not told (they watch the range form).
 */
export function* mmu_notifier_invalidate_page(mm: MmStruct, address: number): KGen {
  if (mm.mmu_notifiers.length === 0) return;
  const k = mm.k;
  const s = k.sched;
  const idx = k.notifierSrcu.read_lock();
  for (const mn of [...mm.mmu_notifiers]) {
    const cb = mn.ops.invalidate_page;
    if (!cb) continue;
    const what = s.tracing ? `${mn.name} ${hex(address)}` : '';
    s.traceBegin('invalidate_page', what);
    yield new NotifierPoint('invalidate_page', mn, address, -1);
    yield* cb(mn, mm, address);
    s.traceEnd('invalidate_page', what);
  }
  k.notifierSrcu.srcu_read_unlock(idx);
}

function* notify(
  mm: MmStruct,
  op: 'invalidate_range_start' | 'invalidate_range_end',
  start: number,
  end: number,
): KGen {
  const k = mm.k;
  const s = k.sched;
  if (op === 'invalidate_range_start') for (const o of k.invalidateObservers) o('pre-start', mm, start, end);
  const idx = k.notifierSrcu.read_lock();
  // An RCU list walk: a notifier unlinked meanwhile may still be called (hence unregister's
  // grace period), which the snapshot reproduces.
  for (const mn of [...mm.mmu_notifiers]) {
    const cb = mn.ops[op];
    if (!cb) continue;
    const what = s.tracing ? rangeLabel(mn, start, end) : '';
    s.traceBegin(op, what);
    yield new NotifierPoint(op, mn, start, end);
    yield* cb(mn, mm, start, end);
    s.traceEnd(op, what);
  }
  k.notifierSrcu.srcu_read_unlock(idx);
  const phase = op === 'invalidate_range_start' ? 'start' : 'end';
  for (const o of k.invalidateObservers) o(phase, mm, start, end);
}

function rangeLabel(mn: MmuNotifier, start: number, end: number): string {
  return `${mn.name} [${hex(start)}, ${hex(end)})`;
}

/** A notifier call as a scheduling point; its label is only formatted when traced. */
class NotifierPoint implements Point {
  constructor(
    readonly op: string,
    private readonly mn: MmuNotifier,
    private readonly start: number,
    /** -1: a page (invalidate_page), not a range. */
    private readonly end: number,
  ) {}
  get resource(): string {
    return this.end < 0 ? `${this.mn.name} ${hex(this.start)}` : rangeLabel(this.mn, this.start, this.end);
  }
}
