import { PAGE_SIZE, hex } from '../base/page.js';
import type { KGen } from '../sched/task.js';
import {
  FAULT_FLAG_WRITE,
  type MmStruct,
  PTE_DIRTY,
  PTE_WRITE,
  VM_EXEC,
  VM_FAULT_NOPAGE,
  VM_FAULT_OOM,
  VM_FAULT_SIGBUS,
  VM_FAULT_SIGSEGV,
  VM_PFNMAP,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
  type VmAreaStruct,
  mk_pte,
  pte_bits,
  pte_pfn,
  pte_special,
  pte_write,
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

/** Whether any PTE is present in [start, end). */
export function range_has_ptes(mm: MmStruct, start: number, end: number): boolean {
  let any = false;
  forEachPte(mm, start / PAGE_SIZE, end / PAGE_SIZE, () => (any = true));
  return any;
}

/**
 * Installs a PTE for a page the caller holds a reference to, transferring that reference to the
 * mapping (mapcount and rss follow).
 */
export function set_pte_page(mm: MmStruct, vaddr: number, pfn: number, bits: number): void {
  mm.pgd.set(vaddr / PAGE_SIZE, mk_pte(pfn, bits));
  mm.k.ram.page_add_rmap(pfn);
  mm.rss++;
}

/** vm_insert_pfn(): a special PTE with no struct page accounting (VM_PFNMAP mappings). */
export function vm_insert_pfn(vma: VmAreaStruct, vaddr: number, pfn: number): number {
  if (!(vma.vm_flags & VM_PFNMAP)) return -22;
  if (vaddr < vma.start || vaddr >= vma.end) return -14;
  const bits = 4 /* PTE_SPECIAL */ | (vma.vm_flags & VM_WRITE ? PTE_WRITE : 0);
  vma.vm_mm.pgd.set(Math.floor(vaddr / PAGE_SIZE), mk_pte(pfn, bits));
  return 0;
}

/** Drops one PTE and the page reference it held. */
function zap_one(mm: MmStruct, vma: VmAreaStruct | undefined, vpn: number, pte: number): void {
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
 * VMAs, as unmap_region() and exit_mmap() do.
 */
export function* unmap_vmas(mm: MmStruct, vmas: readonly VmAreaStruct[], start: number, end: number): KGen {
  yield* mmu_notifier_invalidate_range_start(mm, start, end);
  for (const vma of vmas) zap_ptes(mm, Math.max(start, vma.start), Math.min(end, vma.end), vma);
  yield* mmu_notifier_invalidate_range_end(mm, start, end);
}

/** zap_page_range(): MADV_DONTNEED's path: notifier pair around one VMA's range. */
export function* zap_page_range(vma: VmAreaStruct, start: number, size: number): KGen {
  const mm = vma.vm_mm;
  const end = start + size;
  yield* mmu_notifier_invalidate_range_start(mm, start, end);
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
  yield { op: 'handle_mm_fault', resource: `${hex(page)}${write ? ' W' : ''}` };
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
  if (vma.vm_flags & VM_SHARED) {
    // Shared writable mapping mapped read-only: no copy, just allow the write.
    mm.pgd.set(vpn, mk_pte(pte_pfn(pte), pte_bits(pte) | PTE_WRITE | PTE_DIRTY));
    return 0;
  }
  return yield* do_wp_page(mm, vma, page, pte);
}

/** do_anonymous_page(): a fresh zeroed page for a private anonymous address. */
function do_anonymous_page(mm: MmStruct, vma: VmAreaStruct, page: number, write: boolean): number {
  const pfn = mm.k.ram.alloc_page();
  if (pfn < 0) return VM_FAULT_OOM;
  vma.anon_vma = true;
  const bits = (vma.vm_flags & VM_WRITE ? PTE_WRITE : 0) | (write ? PTE_DIRTY : 0);
  // The allocation's reference becomes the mapping's.
  set_pte_page(mm, page, pfn, bits);
  return 0;
}

/**
 * do_wp_page(): a write to a write-protected private page. Reuse it when this is its only
 * mapping (3.16: page_mapcount() == 1, pins are not considered); otherwise copy it, with an
 * invalidate_range_start/end pair around replacing the PTE.
 */
function* do_wp_page(mm: MmStruct, vma: VmAreaStruct, page: number, pte: number): KGen<number> {
  const ram = mm.k.ram;
  const vpn = page / PAGE_SIZE;
  const old = pte_pfn(pte);
  if (ram.page_mapcount(old) === 1) {
    mm.pgd.set(vpn, mk_pte(old, pte_bits(pte) | PTE_WRITE | PTE_DIRTY));
    return 0;
  }
  const copy = ram.alloc_page();
  if (copy < 0) return VM_FAULT_OOM;
  ram.copy_page(copy, old);
  yield* mmu_notifier_invalidate_range_start(mm, page, page + PAGE_SIZE);
  if (mm.pgd.get(vpn) === pte) {
    mm.pgd.set(vpn, mk_pte(copy, PTE_WRITE | PTE_DIRTY));
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
 * Resolves the frame backing user address `addr` for a CPU access, faulting as the MMU would.
 * Returns the pfn, or a negative VM_FAULT_* code.
 */
export function* user_page(mm: MmStruct, addr: number, write: boolean): KGen<number> {
  // A fault that installs nothing (a driver asking for a retry) is simply taken again.
  for (let tries = 0; tries < 10_000; tries++) {
    const pte = mm.pgd.get(Math.floor(addr / PAGE_SIZE));
    if (pte !== undefined && (!write || pte_write(pte))) {
      const vma = mm.find_vma(addr);
      if (vma && vma.start <= addr && access_allowed(vma, write)) return pte_pfn(pte);
      return -VM_FAULT_SIGSEGV;
    }
    const r = yield* do_page_fault(mm, addr, write);
    if (r) return -r;
  }
  return -VM_FAULT_SIGBUS;
}
