import { PAGE_SIZE, hex } from '../base/page.js';
import { interval_tree_iter_first, interval_tree_iter_next } from '../base/interval_tree.js';
import { type DrmI915UserptrObject, i915_mmu_notifiers, is_userptr } from '../i915/i915_gem_userptr.js';
import type { DrmI915GemRequest } from '../i915/intel_ringbuffer.js';
import type { Machine } from '../kernel/machine.js';
import type { MmStruct } from '../mm/mm_types.js';
import { pte_pfn } from '../mm/mm_types.js';

/**
 * The userptr coherence sanitizer. It reads kernel state at two moments and reports
 * 'coherence' findings:
 *
 * - I-COVER / I-UNMAP: when every invalidate_range_start for [start, end) of an mm has returned,
 *   no synchronized userptr object of that mm intersecting the range holds pages or a binding.
 * - I-NOSTALE / I-COW: when a batch starts on the GPU, every synchronized userptr object it uses
 *   holds exactly the frames its creator's page table maps at its range (unless an invalidation
 *   of that range is still in progress).
 */
export function installCoherence(m: Machine): void {
  const dp = m.i915;
  const report = (message: string): void => {
    m.sched.report('coherence', message);
  };

  m.k.invalidateObservers.push((phase, mm, start, end) => {
    if (phase !== 'start') return;
    const mmu = i915_mmu_notifiers(dp).get(mm);
    if (!mmu) return;
    for (
      let it = interval_tree_iter_first(mmu.objects, start, end - 1);
      it;
      it = interval_tree_iter_next(it, start, end - 1)
    ) {
      const obj = it.value.obj;
      if (obj.freed) continue;
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
    if (!mn || !mm || !obj.pages || mm.freed) return;
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
