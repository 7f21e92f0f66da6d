import { PAGE_SIZE, hex } from '../base/page.js';
import { interval_tree_iter_first, interval_tree_iter_next } from '../base/interval_tree.js';
import { type DrmI915UserptrObject, i915_mmu_notifiers, is_userptr } from '../i915/i915_gem_userptr.js';
import type { DrmI915GemRequest } from '../i915/intel_ringbuffer.js';
import type { Machine } from '../kernel/machine.js';
import type { MmStruct } from '../mm/mm_types.js';
import type { Task } from '../sched/task.js';
import { pte_pfn } from '../mm/mm_types.js';

/**
 * The userptr coherence sanitizer. It reads kernel state at two moments and reports
 * 'coherence' findings:
 *
 * - I-COVER / I-UNMAP: when every invalidate_range_start for [start, end) of an mm has returned,
 *   no synchronized userptr object of that mm intersecting the range holds pages or a binding.
 * - I-NOSTALE / I-COW: when a batch starts on the GPU, every synchronized userptr object it uses
 *   holds exactly the frames its creator's page table maps at its range (unless an invalidation
 *   of that range is still in progress, or the creator's address space is gone).
 */
export function installCoherence(m: Machine): void {
  const dp = m.i915;
  const report = (message: string): void => {
    m.sched.report('coherence', message);
  };
  const invariant = (message: string): void => {
    m.sched.report('invariant', message);
  };

  /** Per invalidation in flight (by task): what held pages outside the range, SM acquisitions. */
  const pending = new Map<Task, { outside: DrmI915UserptrObject[]; sm: number }[]>();
  m.k.invalidateObservers.push((phase, mm, start, end) => {
    const mmu = i915_mmu_notifiers(dp).get(mm);
    const t = m.sched.current;
    if (!mmu || !t) return;
    if (phase === 'pre-start') {
      // Only objects holding pages can lose them: they are on the bound and unbound lists, so
      // the check costs what the mm's objects with pages cost, not the whole tree.
      const outside: DrmI915UserptrObject[] = [];
      for (const list of [dp.bound_list, dp.unbound_list]) {
        for (const o of list) {
          if (!is_userptr(o) || o.userptr.mn?.mmu !== mmu || !o.pages) continue;
          const a = o.userptr.ptr;
          if (a + o.size <= start || a >= end) outside.push(o);
        }
      }
      const list = pending.get(t) ?? [];
      list.push({ outside, sm: dp.dev.struct_mutex.acquisitions.get(t) ?? 0 });
      pending.set(t, list);
      return;
    }
    if (phase !== 'start') return;
    const snap = pending.get(t)?.pop();
    if (snap) {
      // I-LOCAL: objects outside the range keep their pages (unless another invalidation hit them).
      for (const o of snap.outside) {
        const a = o.userptr.ptr;
        const hitElsewhere = o.userptr.mn?.mmu.invalidating.some(
          ([s, e]) => s < a + o.size && a < e && (s !== start || e !== end),
        );
        if (!o.pages && !o.freed && !hitElsewhere) {
          invariant(
            `I-LOCAL: invalidate_range_start [${hex(start)}, ${hex(end)}) of mm ${mm.id} dropped the pages of ${o.toString()} [${hex(a)}, ${hex(a + o.size)}), which it does not intersect`,
          );
        }
      }
      // I-CHEAP: with nothing in range no sleeping driver lock may be taken.
      const first = interval_tree_iter_first(mmu.objects, start, end - 1);
      const took = (dp.dev.struct_mutex.acquisitions.get(t) ?? 0) > snap.sm;
      if (!first && took) {
        invariant(
          `I-CHEAP: invalidate_range_start [${hex(start)}, ${hex(end)}) of mm ${mm.id} took struct_mutex with no userptr object in range`,
        );
      }
    }
    for (
      let it = interval_tree_iter_first(mmu.objects, start, end - 1);
      it;
      it = interval_tree_iter_next(it, start, end - 1)
    ) {
      const obj = it.value.obj;
      // A dying object (refcount 0) is released by its own free path; only live ones must let go.
      if (obj.freed || obj.refcount === 0) continue;
      if (obj.pages || obj.vma?.bound) {
        report(
          `I-COVER: invalidate_range_start [${hex(start)}, ${hex(end)}) of mm ${mm.id} returned while ` +
            `${obj.toString()} [${hex(obj.userptr.ptr)}, ${hex(obj.userptr.ptr + obj.size)}) still ` +
            (obj.vma?.bound ? 'is bound in the GTT' : 'holds its pages'),
        );
      }
    }
  });

  const checkObject = (obj: DrmI915UserptrObject, req: DrmI915GemRequest): void => {
    const mn = obj.userptr.mn;
    const mm: MmStruct | null = mn ? mn.mmu.mm : null;
    // Once exit_mmap has torn the address space down there is no CPU view left to agree with:
    // the object keeps the orphaned pages it pinned (3.18's mm_count design).
    if (!mn || !mm || !obj.pages || mm.freed || mm.exited) return;
    const a = obj.userptr.ptr;
    const b = a + obj.size;
    if (mn.mmu.invalidating.some(([s, e]) => s < b && a < e)) return;
    for (let i = 0; i < obj.pages.length; i++) {
      const va = a + i * PAGE_SIZE;
      const pte = mm.pgd.get(va / PAGE_SIZE);
      const mapped = pte === undefined ? -1 : pte_pfn(pte);
      if (mapped !== obj.pages[i]) {
        report(
          `I-NOSTALE: the GPU runs seqno ${req.seqno} with ${obj.toString()} page ${i} = pfn ${hex(obj.pages[i]!)}, ` +
            `but mm ${mm.id} maps ${hex(va)} to ${mapped < 0 ? 'nothing' : `pfn ${hex(mapped)}`}`,
        );
        return;
      }
    }
  };

  dp.requestObservers.push((req) => {
    for (const obj of req.objects) if (is_userptr(obj)) checkObject(obj, req);
  });
}
