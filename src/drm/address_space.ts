import { PAGE_SIZE } from '../base/page.js';
import { zap_page_range } from '../mm/memory.js';
import type { VmAreaStruct } from '../mm/mm_types.js';
import { Mutex } from '../sched/mutex.js';
import type { Scheduler } from '../sched/scheduler.js';
import type { KGen } from '../sched/task.js';

/**
 * The `struct address_space` every DRM file of a device shares (3.16: the device's anonymous
 * inode's i_mapping): which VMAs map the device file, so that a driver can zap the CPU mappings
 * of one object in every process (`unmap_mapping_range`, used through `drm_vma_node_unmap` when
 * i915 unbinds an object or changes its fence).
 *
 * The mm layer does not keep reverse maps of file mappings yet, so the DRM core keeps this one
 * itself: `drm_gem_mmap` links a new VMA, `drm_gem_vm_open` links copies (fork, split, mremap)
 * and `drm_gem_vm_close` unlinks. Linux links in `vma_link()` and unlinks in `free_pgtables()`,
 * both under `i_mmap_mutex`; here unlinking takes `i_mmap_mutex` (so a VMA does not vanish under
 * a running `unmap_mapping_range`), linking from `vm_open` cannot (it may not sleep), which is
 * why `unmap_mapping_range` keeps walking until no unvisited VMA is left.
 */
export class AddressSpace {
  /** i_mmap: VMAs mapping this file. */
  readonly i_mmap = new Set<VmAreaStruct>();
  /** i_mmap_mutex: held while walking i_mmap (and while unlinking). */
  readonly i_mmap_mutex: Mutex;

  constructor(sched: Scheduler, name: string) {
    this.i_mmap_mutex = new Mutex(sched, `${name}->i_mmap_mutex`, '&mapping->i_mmap_mutex');
  }
}

/** __vma_link_file(): a VMA now maps the file. */
export function vma_link_file(mapping: AddressSpace, vma: VmAreaStruct): void {
  mapping.i_mmap.add(vma);
}

/** unlink_file_vma(): the VMA is going away. May sleep (i_mmap_mutex). */
export function* unlink_file_vma(mapping: AddressSpace, vma: VmAreaStruct): KGen {
  if (!mapping.i_mmap.has(vma)) return;
  yield* mapping.i_mmap_mutex.lock();
  mapping.i_mmap.delete(vma);
  mapping.i_mmap_mutex.unlock();
}

/**
 * unmap_mapping_range(): zap the PTEs of file bytes [holebegin, holebegin + holelen) in every VMA
 * that maps them, each with an mmu-notifier invalidate_range_start/end pair on its mm
 * (zap_page_range_single). `holelen` 0 means "to the end of the file". No mmap_sem is taken,
 * as in Linux. `even_cows` is accepted for the signature: private COW copies of a device mapping
 * do not exist here (DRM mappings are VM_PFNMAP). May sleep.
 */
export function* unmap_mapping_range(
  mapping: AddressSpace,
  holebegin: number,
  holelen: number,
  _even_cows: boolean,
): KGen {
  const first = Math.floor(holebegin / PAGE_SIZE);
  const last = holelen > 0 ? first + Math.ceil(holelen / PAGE_SIZE) - 1 : Number.MAX_SAFE_INTEGER;
  yield* mapping.i_mmap_mutex.lock();
  const done = new Set<VmAreaStruct>();
  for (;;) {
    // The interval tree's order: by file offset (vm_pgoff), stable among equals.
    const todo = [...mapping.i_mmap].filter((v) => !done.has(v)).sort((a, b) => a.vm_pgoff - b.vm_pgoff)[0];
    if (!todo) break;
    done.add(todo);
    const vba = todo.vm_pgoff;
    const vea = vba + (todo.end - todo.start) / PAGE_SIZE - 1;
    if (vea < first || vba > last) continue;
    const zba = Math.max(first, vba);
    const zea = Math.min(last, vea);
    const start = todo.start + (zba - vba) * PAGE_SIZE;
    const end = todo.start + (zea - vba + 1) * PAGE_SIZE;
    yield* zap_page_range(todo, start, end - start);
  }
  mapping.i_mmap_mutex.unlock();
}
