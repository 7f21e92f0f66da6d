import { PAGE_SIZE } from '../base/page.js';
import type { KGen } from '../sched/task.js';
import { File, type FileOperations } from './file.js';
import { set_pte_page } from './memory.js';
import {
  FAULT_FLAG_WRITE,
  type MmKernel,
  PTE_DIRTY,
  PTE_WRITE,
  VM_FAULT_OOM,
  VM_FAULT_SIGBUS,
  VM_WRITE,
  type VmAreaStruct,
  type VmOperations,
  vm_page_prot,
} from './mm_types.js';

/**
 * A shmem object: the pages behind MAP_SHARED|MAP_ANONYMOUS memory (and, later, GEM objects).
 * Pages are allocated on first touch and owned by the object until it is released.
 */
export class ShmemObject {
  /** page index → pfn; the object holds one reference on each. */
  readonly pages = new Map<number, number>();

  constructor(
    readonly k: MmKernel,
    /** Size in pages; a fault beyond it is SIGBUS. */
    readonly nrPages: number,
  ) {}

  /** shmem_getpage(): the page at `index`, allocated zeroed if absent; -ENOMEM, or -EINVAL beyond i_size. */
  shmem_getpage(index: number): number {
    if (index < 0 || index >= this.nrPages) return -22;
    const have = this.pages.get(index);
    if (have !== undefined) return have;
    const pfn = this.k.ram.alloc_page();
    if (pfn < 0) return -12;
    this.pages.set(index, pfn);
    return pfn;
  }

  /** Drops every page (truncate on last release). */
  truncate(): void {
    for (const pfn of this.pages.values()) this.k.ram.put_page(pfn);
    this.pages.clear();
  }
}

const shmem_file_operations: FileOperations = {
  name: 'shmem',
  *release(file: File): KGen {
    (file.private_data as ShmemObject).truncate();
  },
};

/** shmem_file_setup(): an unlinked shmem file of `size` bytes. */
export function shmem_file_setup(k: MmKernel, name: string, size: number): File {
  const f = new File(shmem_file_operations, 2 /* O_RDWR */, name, k.sched);
  f.private_data = new ShmemObject(k, Math.ceil(size / PAGE_SIZE));
  return f;
}

/** shmem_fault(): maps the object's page, writable when the VMA is. */
export const shmem_vm_ops: VmOperations = {
  name: 'shmem',
  *fault(vma: VmAreaStruct, vaddr: number, flags: number): KGen<number> {
    const obj = vma.vm_file!.private_data as ShmemObject;
    const pfn = obj.shmem_getpage(vma.pgoff_of(vaddr));
    if (pfn === -12) return VM_FAULT_OOM;
    if (pfn < 0) return VM_FAULT_SIGBUS;
    const mm = vma.vm_mm;
    // The mapping holds its own reference beside the object's.
    mm.k.ram.get_page(pfn);
    const bits =
      (vma.vm_flags & VM_WRITE ? PTE_WRITE : 0) |
      (flags & FAULT_FLAG_WRITE ? PTE_DIRTY : 0) |
      vm_page_prot(vma.vm_flags);
    set_pte_page(mm, vaddr, pfn, bits);
    return 0;
  },
};

/** shmem_zero_setup(): back a shared anonymous VMA with a fresh shmem object. */
export function shmem_zero_setup(vma: VmAreaStruct): void {
  const k = vma.vm_mm.k;
  vma.vm_file = shmem_file_setup(k, 'dev/zero', vma.end - vma.start);
  vma.vm_ops = shmem_vm_ops;
  vma.vm_pgoff = 0;
}
