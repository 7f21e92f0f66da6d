import { ERRNO } from '../base/errno.js';
import { PAGE_SIZE, hex } from '../base/page.js';
import type { KGen, Point } from '../sched/task.js';
import {
  FAULT_FLAG_WRITE,
  type MmStruct,
  PTE_DIRTY,
  PTE_SPECIAL,
  PTE_WRITE,
  VM_EXEC,
  VM_FAULT_NOPAGE,
  VM_FAULT_OOM,
  VM_FAULT_SIGBUS,
  VM_FAULT_SIGSEGV,
  PMD_SIZE,
  PTRS_PER_PTE,
  VM_PFNMAP,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
  type VmAreaStruct,
  mk_pte,
  pte_bits,
  pte_pfn,
  pte_protnone,
  pte_special,
  pte_write,
  vm_page_prot,
} from './mm_types.js';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './mmu_notifier.js';

/**
 * Visits the present PTEs of [startVpn, endVpn) in address order. Probes page by page for small
 * ranges and scans the table for huge sparse ones, so unmapping a 1 TiB reservation is cheap.
 * The callback may change or delete the visited entry.
 */
export function forEachPte(
  mm: MmStruct,
  startVpn: number,
  endVpn: number,
  cb: (vpn: number, pte: number) => void,
): void {
  const pgd = mm.pgd;
  if (pgd.size === 0 || endVpn <= startVpn) return;
  if (endVpn - startVpn <= pgd.size * 4) {
    for (let v = startVpn; v < endVpn; v++) {
      const pte = pgd.get(v);
      if (pte !== undefined) cb(v, pte);
    }
    return;
  }
  const hits: number[] = [];
  for (const v of pgd.keys()) if (v >= startVpn && v < endVpn) hits.push(v);
  hits.sort((a, b) => a - b);
  for (const v of hits) {
    const pte = pgd.get(v);
    if (pte !== undefined) cb(v, pte);
  }
}

/**
 * __pte_alloc(): the page-table page covering virtual page `vpn` exists from now on (see
 * MmStruct.pmds).
 */
export function pte_alloc(mm: MmStruct, vpn: number): void {
  mm.pmds.add(Math.floor(vpn / PTRS_PER_PTE));
}

/**
 * Page-table pages present in [start, end), as pmd indices in ascending order (a sorted scan of
 * the set, so a huge sparse range costs nothing).
 */
export function populated_pmds(mm: MmStruct, start: number, end: number): number[] {
  const first = Math.floor(start / PMD_SIZE);
  const last = Math.ceil(end / PMD_SIZE);
  const out: number[] = [];
  if (end <= start) return out;
  if (last - first <= mm.pmds.size * 4) {
    for (let i = first; i < last; i++) if (mm.pmds.has(i)) out.push(i);
    return out;
  }
  for (const i of mm.pmds) if (i >= first && i < last) out.push(i);
  return out.sort((a, b) => a - b);
}

/**
 * free_pgtables() after unmapping [start, end): page-table pages of that span that no remaining
 * VMA reaches any more are freed (Linux bounds them by the neighbouring VMAs, floor and ceiling).
 * The unmapped VMAs must already be detached.
 */
export function free_pgtables(mm: MmStruct, start: number, end: number): void {
  for (const i of populated_pmds(mm, start, end)) {
    const base = i * PMD_SIZE;
    const vma = mm.find_vma(base);
    if (!vma || vma.start >= base + PMD_SIZE) mm.pmds.delete(i);
  }
}

/**
 * Installs a PTE for a page the caller holds a reference to, transferring that reference to the
 * mapping (mapcount and rss follow).
 */
export function set_pte_page(mm: MmStruct, vaddr: number, pfn: number, bits: number): void {
  const vpn = vaddr / PAGE_SIZE;
  pte_alloc(mm, vpn);
  mm.pgd.set(vpn, mk_pte(pfn, bits));
  mm.k.ram.page_add_rmap(pfn);
  mm.rss++;
}

/**
 * vm_insert_pfn(): a special PTE with no struct page accounting (VM_PFNMAP mappings). -EFAULT
 * outside the VMA, -EBUSY when a PTE is already there (another thread's fault won the race).
 */
export function vm_insert_pfn(vma: VmAreaStruct, vaddr: number, pfn: number): number {
  if (!(vma.vm_flags & VM_PFNMAP)) return -ERRNO.EINVAL;
  if (vaddr < vma.start || vaddr >= vma.end) return -ERRNO.EFAULT;
  const mm = vma.vm_mm;
  const vpn = Math.floor(vaddr / PAGE_SIZE);
  if (mm.pgd.has(vpn)) return -ERRNO.EBUSY;
  const bits = PTE_SPECIAL | (vma.vm_flags & VM_WRITE ? PTE_WRITE : 0) | vm_page_prot(vma.vm_flags);
  pte_alloc(mm, vpn);
  mm.pgd.set(vpn, mk_pte(pfn, bits));
  return 0;
}

/** Drops one PTE and the page reference it held (zap_pte_range's body for one entry). */
export function zap_one(mm: MmStruct, vma: VmAreaStruct | undefined, vpn: number, pte: number): void {
  mm.pgd.delete(vpn);
  if (pte_special(pte)) return;
  const ram = mm.k.ram;
  const pfn = pte_pfn(pte);
  if (vma && vma.vm_flags & VM_SHARED && pte_bits(pte) & PTE_DIRTY) ram.set_page_dirty(pfn);
  ram.page_remove_rmap(pfn);
  ram.put_page(pfn);
  mm.rss--;
}

/** zap_page_range() body without notifiers: drop every PTE in [start, end). */
export function zap_ptes(mm: MmStruct, start: number, end: number, vma?: VmAreaStruct): void {
  forEachPte(mm, Math.floor(start / PAGE_SIZE), Math.ceil(end / PAGE_SIZE), (vpn, pte) =>
    zap_one(mm, vma ?? mm.mm_rb.find(vpn * PAGE_SIZE), vpn, pte),
  );
}

/**
 * unmap_vmas(): one invalidate_range_start/end pair around zapping [start, end) of the given
 * VMAs, as unmap_region() and exit_mmap() do. Between invalidate_range_start returning and the
 * zap (which takes the page-table lock) other CPUs run: the old PTEs are still there for lockless
 * walkers such as __get_user_pages_fast (kernel-userptr.md §8.9).
 */
export function* unmap_vmas(mm: MmStruct, vmas: readonly VmAreaStruct[], start: number, end: number): KGen {
  yield* mmu_notifier_invalidate_range_start(mm, start, end);
  yield new ZapPoint(mm.page_table_lock.name, start, end);
  for (const vma of vmas) zap_ptes(mm, Math.max(start, vma.start), Math.min(end, vma.end), vma);
  yield* mmu_notifier_invalidate_range_end(mm, start, end);
}

/**
 * zap_page_range(): MADV_DONTNEED's path: notifier pair around one VMA's range. As in unmap_vmas,
 * other CPUs run between invalidate_range_start returning and the zap; MADV_DONTNEED holds
 * mmap_sem only for read, so get_user_pages may run there too (kernel-userptr.md §8.8).
 */
export function* zap_page_range(vma: VmAreaStruct, start: number, size: number): KGen {
  const mm = vma.vm_mm;
  const end = start + size;
  yield* mmu_notifier_invalidate_range_start(mm, start, end);
  yield new ZapPoint(mm.page_table_lock.name, start, end);
  zap_ptes(mm, start, end, vma);
  yield* mmu_notifier_invalidate_range_end(mm, start, end);
}

/**
 * follow_page(): the pfn mapped at `addr` if present (and writable when `write`), else -1.
 * Special (PFN-mapped) entries have no struct page and are never returned.
 */
export function follow_page(mm: MmStruct, addr: number, write: boolean): number {
  const pte = mm.pgd.get(Math.floor(addr / PAGE_SIZE));
  if (pte === undefined || pte_special(pte)) return -1;
  if (write && !pte_write(pte)) return -1;
  return pte_pfn(pte);
}

/** Whether the VMA permits this access (x86: write implies read, exec implies read). */
export function access_allowed(vma: VmAreaStruct, write: boolean): boolean {
  if (write) return (vma.vm_flags & VM_WRITE) !== 0;
  return (vma.vm_flags & (VM_READ | VM_WRITE | VM_EXEC)) !== 0;
}

/**
 * handle_mm_fault(): makes `addr` present in `vma` (writable for a write fault). Returns 0 or
 * VM_FAULT_* bits. Caller holds mmap_sem for read; concurrent faults on the same address are
 * resolved by re-checking the PTE after the scheduling point, as pte_same() does.
 */
export function* handle_mm_fault(mm: MmStruct, vma: VmAreaStruct, addr: number, flags: number): KGen<number> {
  const write = (flags & FAULT_FLAG_WRITE) !== 0;
  const page = addr - (addr % PAGE_SIZE);
  yield new FaultPoint(page, write);
  if (!mm.checkAlive('handle_mm_fault')) return VM_FAULT_SIGSEGV;
  const vpn = page / PAGE_SIZE;
  const pte = mm.pgd.get(vpn);
  if (pte === undefined) {
    if (vma.vm_ops?.fault) {
      const r = yield* vma.vm_ops.fault(vma, page, flags);
      return r & VM_FAULT_NOPAGE ? 0 : r;
    }
    if (vma.vm_flags & VM_PFNMAP) return VM_FAULT_SIGBUS;
    return do_anonymous_page(mm, vma, page, write);
  }
  if (!write || pte_write(pte)) return 0;
  if (pte_special(pte)) return VM_FAULT_SIGBUS;
  return yield* do_wp_page(mm, vma, page, pte);
}

/** maybe_mkwrite(): a PTE becomes writable only in a VM_WRITE mapping. */
function maybe_mkwrite(vma: VmAreaStruct, bits: number): number {
  return vma.vm_flags & VM_WRITE ? bits | PTE_WRITE : bits;
}

/** PageAnon(): the frame is private anonymous memory, not the page of the VMA's file. */
function page_is_anon(vma: VmAreaStruct, page: number, pfn: number): boolean {
  const file = vma.vm_file;
  if (!file) return true;
  const obj = file.private_data as { pages?: Map<number, number> } | null;
  return obj?.pages instanceof Map && obj.pages.get(vma.pgoff_of(page)) !== pfn;
}

/** do_anonymous_page(): a fresh zeroed page for a private anonymous address. */
function do_anonymous_page(mm: MmStruct, vma: VmAreaStruct, page: number, write: boolean): number {
  const pfn = mm.k.ram.alloc_page();
  if (pfn < 0) return VM_FAULT_OOM;
  vma.anon_vma = true;
  const bits = maybe_mkwrite(vma, write ? PTE_DIRTY : 0) | vm_page_prot(vma.vm_flags);
  // The allocation's reference becomes the mapping's.
  set_pte_page(mm, page, pfn, bits);
  return 0;
}

/**
 * do_wp_page(): a write to a write-protected page. An anonymous page is reused when this is its
 * only mapping (3.16: page_mapcount() == 1, pins are not considered), a shared writable mapping's
 * page simply becomes writable; otherwise (shared pages under a forced write to a read-only
 * mapping included) it is copied, with an invalidate_range_start/end pair around replacing the
 * PTE.
 */
function* do_wp_page(mm: MmStruct, vma: VmAreaStruct, page: number, pte: number): KGen<number> {
  const ram = mm.k.ram;
  const vpn = page / PAGE_SIZE;
  const old = pte_pfn(pte);
  const reuse = page_is_anon(vma, page, old)
    ? ram.page_mapcount(old) === 1
    : (vma.vm_flags & (VM_WRITE | VM_SHARED)) === (VM_WRITE | VM_SHARED);
  if (reuse) {
    mm.pgd.set(vpn, mk_pte(old, maybe_mkwrite(vma, pte_bits(pte) | PTE_DIRTY)));
    return 0;
  }
  const copy = ram.alloc_page();
  if (copy < 0) return VM_FAULT_OOM;
  ram.copy_page(copy, old);
  yield* mmu_notifier_invalidate_range_start(mm, page, page + PAGE_SIZE);
  if (mm.pgd.get(vpn) === pte) {
    vma.anon_vma = true;
    mm.pgd.set(vpn, mk_pte(copy, maybe_mkwrite(vma, PTE_DIRTY) | vm_page_prot(vma.vm_flags)));
    ram.page_add_rmap(copy);
    ram.page_remove_rmap(old);
    ram.put_page(old);
  } else {
    ram.put_page(copy);
    yield* mmu_notifier_invalidate_range_end(mm, page, page + PAGE_SIZE);
    return 0;
  }
  yield* mmu_notifier_invalidate_range_end(mm, page, page + PAGE_SIZE);
  return 0;
}

/**
 * copy_page_range(): fork's copy of one VMA's PTEs. Never-faulted private VMAs are skipped
 * (the child faults them fresh). A COW mapping is write-protected in both mms, bracketed by an
 * invalidate_range_start/end on the parent's whole VMA.
 */
export function* copy_page_range(dst: MmStruct, src: MmStruct, vma: VmAreaStruct): KGen {
  if (!(vma.vm_flags & VM_PFNMAP) && !vma.anon_vma) return;
  const is_cow = vma.is_cow;
  if (is_cow) yield* mmu_notifier_invalidate_range_start(src, vma.start, vma.end);
  const ram = src.k.ram;
  // copy_pmd_range(): a PTE page in the child for every one the parent has in the VMA.
  for (const i of populated_pmds(src, vma.start, vma.end)) dst.pmds.add(i);
  forEachPte(src, vma.start / PAGE_SIZE, vma.end / PAGE_SIZE, (vpn, pte) => {
    if (pte_special(pte)) {
      dst.pgd.set(vpn, pte);
      return;
    }
    let bits = pte_bits(pte);
    if (is_cow && bits & PTE_WRITE) {
      bits &= ~PTE_WRITE;
      src.pgd.set(vpn, mk_pte(pte_pfn(pte), bits));
    }
    const pfn = pte_pfn(pte);
    ram.get_page(pfn);
    ram.page_dup_rmap(pfn);
    dst.pgd.set(vpn, mk_pte(pfn, vma.vm_flags & VM_SHARED ? bits & ~PTE_DIRTY : bits));
    dst.rss++;
  });
  if (is_cow) yield* mmu_notifier_invalidate_range_end(src, vma.start, vma.end);
}

/**
 * The page-fault path of a user or uaccess access (x86 __do_page_fault): mmap_sem for read,
 * find_vma, permission check, handle_mm_fault. Returns 0, VM_FAULT_SIGSEGV or other VM_FAULT_*.
 */
export function* do_page_fault(mm: MmStruct, addr: number, write: boolean): KGen<number> {
  yield* mm.mmap_sem.down_read();
  const vma = mm.find_vma(addr);
  let r = VM_FAULT_SIGSEGV;
  if (vma && vma.start <= addr && access_allowed(vma, write)) {
    r = yield* handle_mm_fault(mm, vma, addr, write ? FAULT_FLAG_WRITE : 0);
  }
  mm.mmap_sem.up_read();
  return r;
}

/**
 * Whether the CPU may make this access through the PTE alone (no fault): present, not PROT_NONE,
 * writable for a write. The VMA is not consulted: a PTE outlives a change of its VMA until the
 * page tables are rewritten (munmap and mprotect notify first), as a TLB entry would.
 */
export function pte_allows(pte: number | undefined, write: boolean): pte is number {
  return pte !== undefined && !pte_protnone(pte) && (!write || pte_write(pte));
}

/**
 * Resolves the frame backing user address `addr` for a CPU access, faulting as the MMU would.
 * Returns the pfn, or a negative VM_FAULT_* code.
 */
export function* user_page(mm: MmStruct, addr: number, write: boolean): KGen<number> {
  // A fault that installs nothing (a driver asking for a retry) is simply taken again.
  for (let tries = 0; tries < 10_000; tries++) {
    const pte = mm.pgd.get(Math.floor(addr / PAGE_SIZE));
    if (pte_allows(pte, write)) return pte_pfn(pte);
    const r = yield* do_page_fault(mm, addr, write);
    if (r) return -r;
  }
  return -VM_FAULT_SIGBUS;
}

/** The zap's scheduling point; its range is only formatted when traced. */
class ZapPoint implements Point {
  readonly op = 'zap_pte_range';
  constructor(
    readonly resource: string,
    private readonly start: number,
    private readonly end: number,
  ) {}
  get detail(): string {
    return `[${hex(this.start)}, ${hex(this.end)})`;
  }
}

/** A page fault's scheduling point; its address is only formatted when traced. */
class FaultPoint implements Point {
  readonly op = 'handle_mm_fault';
  constructor(
    private readonly page: number,
    private readonly write: boolean,
  ) {}
  get resource(): string {
    return `${hex(this.page)}${this.write ? ' W' : ''}`;
  }
}
