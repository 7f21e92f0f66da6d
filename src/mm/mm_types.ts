import { SegmentSet } from '../base/segment_set.js';
import type { PhysicalMemory } from '../hw/ram.js';
import type { Mutex } from '../sched/mutex.js';
import { RwSemaphore } from '../sched/rwsem.js';
import type { Scheduler } from '../sched/scheduler.js';
import { Spinlock } from '../sched/spinlock.js';
import type { SrcuStruct } from '../sched/srcu.js';
import type { File } from './file.js';
import type { MmuNotifier } from './mmu_notifier.js';

/** x86_64 TASK_SIZE: user space ends here (4-level paging, one guard page below 2^47). */
export const TASK_SIZE = 0x7ffffffff000;
/** /proc/sys/vm/mmap_min_addr default. */
export const MMAP_MIN_ADDR = 0x10000;
/** mmap_base without ASLR: TASK_SIZE minus the minimum stack gap (128 MiB). */
export const MMAP_BASE = TASK_SIZE - 128 * 1024 * 1024;

/** include/linux/mm.h vm_flags. */
export const VM_READ = 0x1;
export const VM_WRITE = 0x2;
export const VM_EXEC = 0x4;
export const VM_SHARED = 0x8;
export const VM_MAYREAD = 0x10;
export const VM_MAYWRITE = 0x20;
export const VM_MAYEXEC = 0x40;
export const VM_MAYSHARE = 0x80;
/** MAP_GROWSDOWN: a stack-like mapping (its growth on faults is not modelled; see README). */
export const VM_GROWSDOWN = 0x100;
/** x86 has no upward-growing stacks: VM_GROWSUP is VM_NONE, so no VMA ever carries it. */
export const VM_GROWSUP = 0;
export const VM_PFNMAP = 0x400;
export const VM_LOCKED = 0x2000;
export const VM_IO = 0x4000;
/** MADV_SEQUENTIAL / MADV_RANDOM read-ahead hints. */
export const VM_SEQ_READ = 0x8000;
export const VM_RAND_READ = 0x10000;
export const VM_DONTCOPY = 0x20000;
export const VM_DONTEXPAND = 0x40000;
/** The mapping's pages are charged to the overcommit accounting (private writable). */
export const VM_ACCOUNT = 0x100000;
export const VM_NORESERVE = 0x200000;
export const VM_HUGETLB = 0x400000;
export const VM_NONLINEAR = 0x800000;
export const VM_DONTDUMP = 0x4000000;
export const VM_MIXEDMAP = 0x10000000;
/** MADV_HUGEPAGE / MADV_NOHUGEPAGE. */
export const VM_HUGEPAGE = 0x20000000;
export const VM_NOHUGEPAGE = 0x40000000;
/**
 * MADV_MERGEABLE (KSM). Bit 31: like every vm_flags value built with `|`, it is held as a signed
 * 32-bit number, so this constant is negative.
 */
export const VM_MERGEABLE = 0x80000000 | 0;
/** Mappings that are never merged and whose pages have no struct page semantics. */
export const VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP;
/** Mappings transparent huge pages never apply to (VM_NO_THP). */
export const VM_NO_THP = VM_SPECIAL | VM_HUGETLB | VM_SHARED | VM_MAYSHARE;

/** 2^64: unsigned long arithmetic wraps here (addresses and lengths arrive as unsigned longs). */
export const ULONG_WRAP = 2 ** 64;
/** PAGE_ALIGN() of an unsigned long: a value in the last page of the 64-bit range wraps to 0. */
export function PAGE_ALIGN_UL(x: number): number {
  if (x > ULONG_WRAP - 4096) return 0;
  const r = x % 4096;
  return r === 0 ? x : x + (4096 - r);
}

/** VM_FAULT_* results of handle_mm_fault (include/linux/mm.h). */
export const VM_FAULT_OOM = 0x0001;
export const VM_FAULT_SIGBUS = 0x0002;
export const VM_FAULT_NOPAGE = 0x0100;
export const VM_FAULT_RETRY = 0x0400;
export const VM_FAULT_SIGSEGV = 0x0040;
export const VM_FAULT_ERROR = VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV;

/** Fault flags. */
export const FAULT_FLAG_WRITE = 0x01;

/** A page-table page maps PTRS_PER_PTE pages: one page-middle-directory entry (2 MiB). */
export const PTRS_PER_PTE = 512;
export const PMD_SIZE = PTRS_PER_PTE * 4096;
/** One page-upper-directory entry (1 GiB). */
export const PUD_SIZE = 512 * PMD_SIZE;

/**
 * The services mm code needs from the machine. One per machine; every mm points at it.
 */
export interface MmKernel {
  sched: Scheduler;
  ram: PhysicalMemory;
  /** mm/mmu_notifier.c's global SRCU domain. */
  notifierSrcu: SrcuStruct;
  /** mm_all_locks_mutex of mm_take_all_locks(). */
  mmAllLocks: Mutex;
  /** Every mm ever created and not yet freed (leak checks). */
  liveMms: Set<MmStruct>;
  /**
   * Sanitizers watching invalidations: called before the notifiers' invalidate_range_start
   * ('pre-start') and after every one of them (or of _end) for [start, end) has returned. They
   * read state and never change it.
   */
  invalidateObservers: ((
    op: 'pre-start' | 'start' | 'end',
    mm: MmStruct,
    start: number,
    end: number,
  ) => void)[];
  /** Last mm number handed out (deterministic per machine). */
  mmSerial: number;
}

/**
 * A page-table entry: pfn and bits packed in one number (pfn * 16 + bits). Pages of VM_PFNMAP
 * mappings are "special": no struct page refcount or mapcount is held for them. PTE_PROTNONE is
 * x86's _PAGE_PROTNONE: the entry of a PROT_NONE mapping, kept but not accessible to the CPU or
 * to the lockless gup (3.16's pte_present() still counts it, so the slow gup walk sees it).
 */
export const PTE_WRITE = 1;
export const PTE_DIRTY = 2;
export const PTE_SPECIAL = 4;
export const PTE_PROTNONE = 8;
const PTE_SHIFT = 16;
export function mk_pte(pfn: number, bits: number): number {
  return pfn * PTE_SHIFT + bits;
}
export function pte_pfn(pte: number): number {
  return Math.floor(pte / PTE_SHIFT);
}
export function pte_bits(pte: number): number {
  return pte % PTE_SHIFT;
}
export function pte_write(pte: number): boolean {
  return (pte_bits(pte) & PTE_WRITE) !== 0;
}
export function pte_special(pte: number): boolean {
  return (pte_bits(pte) & PTE_SPECIAL) !== 0;
}
export function pte_protnone(pte: number): boolean {
  return (pte_bits(pte) & PTE_PROTNONE) !== 0;
}
/** The bits vm_page_prot gives every new PTE of a mapping (PROT_NONE mappings: PTE_PROTNONE). */
export function vm_page_prot(vm_flags: number): number {
  return vm_flags & (VM_READ | VM_WRITE | VM_EXEC) ? 0 : PTE_PROTNONE;
}

/** What a mapping of a file does on faults and on VMA lifetime events. */
export interface VmOperations {
  /** vm_operations_struct.open: a VMA was duplicated (fork, split). */
  open?(vma: VmAreaStruct): void;
  /** vm_operations_struct.close: a VMA went away. May sleep (drm_gem_vm_close takes struct_mutex). */
  close?(vma: VmAreaStruct): Generator<import('../sched/task.js').Point, void, void>;
  /**
   * vm_operations_struct.fault: make `vaddr` present (install a PTE) or return VM_FAULT_* bits.
   * May sleep.
   */
  fault?(
    vma: VmAreaStruct,
    vaddr: number,
    flags: number,
  ): Generator<import('../sched/task.js').Point, number, void>;
  /** Name for /proc/pid/maps-style dumps. */
  name?: string;
}

/** struct vm_area_struct: [start, end) of one mapping with uniform flags. */
export class VmAreaStruct {
  /** Protected by mmap_sem (write) for changes; find_vma under mmap_sem (read). */
  start: number;
  end: number;
  vm_flags: number;
  /** Offset of `start` in the backing object, in pages (anonymous: start >> PAGE_SHIFT). */
  vm_pgoff: number;
  /** Backing file: shmem for shared anonymous memory, a device for driver mappings. */
  vm_file: File | null;
  vm_ops: VmOperations | null;
  /** Driver data of a device mapping (drm: the GEM object). */
  vm_private_data: unknown = null;
  /** Private anonymous pages were faulted in (Linux: vma->anon_vma != NULL). */
  anon_vma = false;

  constructor(
    readonly vm_mm: MmStruct,
    start: number,
    end: number,
    flags: number,
    pgoff: number,
    file: File | null,
    ops: VmOperations | null,
  ) {
    this.start = start;
    this.end = end;
    this.vm_flags = flags;
    this.vm_pgoff = pgoff;
    this.vm_file = file;
    this.vm_ops = ops;
  }

  get vm_start(): number {
    return this.start;
  }
  get vm_end(): number {
    return this.end;
  }
  get pages(): number {
    return (this.end - this.start) / 4096;
  }
  /** is_cow_mapping(): private and possibly writable. */
  get is_cow(): boolean {
    return (this.vm_flags & (VM_SHARED | VM_MAYWRITE)) === VM_MAYWRITE;
  }
  /** Page offset in the backing object for a virtual address inside the VMA. */
  pgoff_of(addr: number): number {
    return this.vm_pgoff + (addr - this.start) / 4096;
  }
}

/** struct mm_struct. */
export class MmStruct {
  /** Per-machine number, for lock names and messages. */
  readonly id: number;
  /** Users of the address space (threads, get_task_mm holders). At 0 the mappings go. */
  mm_users = 1;
  /** References to the struct itself; mm_users together count as one. At 0 it is freed. */
  mm_count = 1;
  /** Set when mm_count reached zero: any later use is a use-after-free. */
  freed = false;
  /** Set once exit_mmap ran. */
  exited = false;
  readonly mmap_sem: RwSemaphore;
  /** page_table_lock: protects the page table against lockless walkers' updates. */
  readonly page_table_lock: Spinlock;
  /** VMAs ordered by address. Protected by mmap_sem. */
  readonly mm_rb = new SegmentSet<VmAreaStruct>();
  /** Page table: virtual page number → pte. Protected by mmap_sem + page_table_lock. */
  readonly pgd = new Map<number, number>();
  /**
   * Page-table pages: the pmd indices (2 MiB regions) that have a PTE page. One is allocated when
   * a PTE is first installed in its region and lives on when the PTEs are zapped, until
   * free_pgtables() (munmap, exit). Change_protection notifies only where they exist.
   */
  readonly pmds = new Set<number>();
  /** mmu_notifier_mm: registered notifiers, protected by `notifierLock`, traversed under SRCU. */
  readonly mmu_notifiers: MmuNotifier[] = [];
  readonly notifierLock: Spinlock;
  /** Resident pages (rss counters). */
  rss = 0;
  /**
   * mm->locked_vm: pages of VM_LOCKED mappings, charged against RLIMIT_MEMLOCK. Raised by mmap
   * and mremap, lowered by munmap; a fork's child starts at 0; exit_mmap leaves it (as 3.16
   * does: the mm is dead). Protected by mmap_sem (write).
   */
  locked_vm = 0;

  constructor(readonly k: MmKernel) {
    this.id = ++k.mmSerial;
    this.mmap_sem = new RwSemaphore(k.sched, `mm${this.id}->mmap_sem`, '&mm->mmap_sem');
    this.page_table_lock = new Spinlock(k.sched, `mm${this.id}->page_table_lock`, '&mm->page_table_lock');
    this.notifierLock = new Spinlock(
      k.sched,
      `mm${this.id}->mmu_notifier_mm->lock`,
      '&mmu_notifier_mm->lock',
    );
    k.liveMms.add(this);
  }

  get map_count(): number {
    return this.mm_rb.size;
  }

  /** find_vma(): the first VMA with end > addr. */
  find_vma(addr: number): VmAreaStruct | undefined {
    return this.mm_rb.find_vma(addr);
  }

  /** Reports and refuses use of a freed mm (a use-after-free of mm_struct). */
  checkAlive(what: string): boolean {
    if (!this.freed) return true;
    this.k.sched.report('use-after-free', `${what} on freed mm ${this.id}`);
    return false;
  }
}
