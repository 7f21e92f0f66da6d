import { ERRNO } from '../base/errno.js';
import { PAGE_ALIGN, PAGE_SIZE, isPageAligned } from '../base/page.js';
import type { KGen } from '../sched/task.js';
import * as mman from '../uapi/mman.js';
import { type File, fput, get_file } from './file.js';
import { FAULT_FLAG_WRITE, MMAP_BASE, MMAP_MIN_ADDR, TASK_SIZE } from './mm_types.js';
import {
  type MmStruct,
  VM_EXEC,
  VM_LOCKED,
  VM_MAYEXEC,
  VM_MAYREAD,
  VM_MAYSHARE,
  VM_MAYWRITE,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
  VmAreaStruct,
} from './mm_types.js';
import { handle_mm_fault, unmap_vmas } from './memory.js';
import { shmem_zero_setup } from './shmem.js';

/** sysctl_max_map_count. */
export const MAX_MAP_COUNT = 65530;
/** TASK_UNMAPPED_BASE: where the bottom-up fallback search starts. */
const TASK_UNMAPPED_BASE = PAGE_ALIGN(Math.floor(TASK_SIZE / 3));

/** calc_vm_prot_bits(). */
export function calc_vm_prot_bits(prot: number): number {
  return (
    (prot & mman.PROT_READ ? VM_READ : 0) |
    (prot & mman.PROT_WRITE ? VM_WRITE : 0) |
    (prot & mman.PROT_EXEC ? VM_EXEC : 0)
  );
}

/** calc_vm_flag_bits(). */
function calc_vm_flag_bits(flags: number): number {
  return flags & mman.MAP_LOCKED ? VM_LOCKED : 0;
}

/** remove_vma(): a VMA leaves for good: driver close, file reference dropped. */
export function* remove_vma(vma: VmAreaStruct): KGen {
  if (vma.vm_ops?.close) yield* vma.vm_ops.close(vma);
  if (vma.vm_file) yield* fput(vma.vm_file);
}

/** Two neighbours may become one VMA (vma_merge's test for anonymous memory and same file). */
function can_merge(a: VmAreaStruct, b: VmAreaStruct): boolean {
  return (
    a.end === b.start &&
    a.vm_flags === b.vm_flags &&
    a.vm_file === b.vm_file &&
    a.vm_ops === b.vm_ops &&
    a.vm_private_data === b.vm_private_data &&
    a.vm_pgoff + a.pages === b.vm_pgoff &&
    !a.vm_ops?.close
  );
}

/** vma_merge() after a change: folds `vma` into its neighbours where possible. */
export function* vma_merge(mm: MmStruct, vma: VmAreaStruct): KGen<VmAreaStruct> {
  let cur = vma;
  const prev = mm.mm_rb.prev(cur);
  if (prev && can_merge(prev, cur)) {
    mm.mm_rb.remove(cur);
    mm.mm_rb.adjust(prev, prev.start, cur.end);
    prev.anon_vma ||= cur.anon_vma;
    if (cur.vm_file) yield* fput(cur.vm_file);
    cur = prev;
  }
  const next = mm.mm_rb.next(cur);
  if (next && can_merge(cur, next)) {
    mm.mm_rb.remove(next);
    mm.mm_rb.adjust(cur, cur.start, next.end);
    cur.anon_vma ||= next.anon_vma;
    if (next.vm_file) yield* fput(next.vm_file);
  }
  return cur;
}

/** A copy of `vma`'s identity over [start, end) (split_vma, copy_vma, dup_mmap). */
export function vma_dup(
  mm: MmStruct,
  vma: VmAreaStruct,
  start: number,
  end: number,
  pgoff: number,
): VmAreaStruct {
  const n = new VmAreaStruct(mm, start, end, vma.vm_flags, pgoff, vma.vm_file, vma.vm_ops);
  n.vm_private_data = vma.vm_private_data;
  n.anon_vma = vma.anon_vma;
  if (n.vm_file) get_file(n.vm_file);
  n.vm_ops?.open?.(n);
  return n;
}

/** split_vma(): cuts `vma` at `addr`; returns the upper part. */
export function split_vma(mm: MmStruct, vma: VmAreaStruct, addr: number): VmAreaStruct | number {
  if (mm.map_count >= MAX_MAP_COUNT) return -ERRNO.ENOMEM;
  const upper = vma_dup(mm, vma, addr, vma.end, vma.pgoff_of(addr));
  mm.mm_rb.adjust(vma, vma.start, addr);
  mm.mm_rb.insert(upper);
  return upper;
}

/**
 * Splits so that [start, end) is covered by whole VMAs; returns those VMAs in order (or
 * -ENOMEM). The range must be mapped where VMAs are returned; holes are skipped.
 */
export function split_range(mm: MmStruct, start: number, end: number): VmAreaStruct[] | number {
  const first = mm.find_vma(start);
  if (first && first.start < start && first.end > start) {
    const r = split_vma(mm, first, start);
    if (typeof r === 'number') return r;
  }
  const last = mm.find_vma(end);
  if (last && last.start < end && last.end > end) {
    const r = split_vma(mm, last, end);
    if (typeof r === 'number') return r;
  }
  return [...mm.mm_rb.range(start, end)];
}

/** get_unmapped_area() with x86_64's top-down allocator. Returns an address or -errno. */
export function get_unmapped_area(mm: MmStruct, addr: number, len: number, flags: number): number {
  if (len > TASK_SIZE) return -ERRNO.ENOMEM;
  let r: number;
  if (len > TASK_SIZE - MMAP_MIN_ADDR) return -ERRNO.ENOMEM;
  if (flags & mman.MAP_FIXED) {
    r = addr;
  } else {
    r = -ERRNO.ENOMEM;
    if (addr) {
      const a = PAGE_ALIGN(addr);
      const vma = mm.find_vma(a);
      if (TASK_SIZE - len >= a && a >= MMAP_MIN_ADDR && (!vma || a + len <= vma.start)) r = a;
    }
    if (r < 0) r = mm.mm_rb.findGapTopDown(len, PAGE_SIZE, MMAP_BASE) ?? -1;
    if (r < 0) r = bottomUp(mm, len);
    if (r < 0) return -ERRNO.ENOMEM;
  }
  if (r > TASK_SIZE - len) return -ERRNO.ENOMEM;
  if (!isPageAligned(r)) return -ERRNO.EINVAL;
  return r;
}

/** The bottom-up fallback from TASK_UNMAPPED_BASE when the top-down search fails. */
function bottomUp(mm: MmStruct, len: number): number {
  let a = TASK_UNMAPPED_BASE;
  for (const vma of mm.mm_rb.range(TASK_UNMAPPED_BASE, TASK_SIZE)) {
    if (vma.start >= a + len) return a;
    a = Math.max(a, vma.end);
  }
  return a + len <= TASK_SIZE ? a : -1;
}

/**
 * do_munmap(): caller holds mmap_sem for write. VMAs are detached first, then one
 * invalidate_range_start/end pair covers the zap of [start, end), then the VMAs are freed.
 */
export function* do_munmap(mm: MmStruct, start: number, len: number): KGen<number> {
  if (!isPageAligned(start) || start > TASK_SIZE || len > TASK_SIZE - start) return -ERRNO.EINVAL;
  len = PAGE_ALIGN(len);
  if (len === 0) return -ERRNO.EINVAL;
  const end = start + len;
  const vma = mm.find_vma(start);
  if (!vma || vma.start >= end) return 0;
  const vmas = split_range(mm, start, end);
  if (typeof vmas === 'number') return vmas;
  for (const v of vmas) mm.mm_rb.remove(v);
  yield* unmap_vmas(mm, vmas, start, end);
  for (const v of vmas) yield* remove_vma(v);
  return 0;
}

/**
 * mmap_region(): replaces whatever was at [addr, addr+len) (MAP_FIXED semantics), creates the
 * VMA, lets the file's ->mmap set it up, merges anonymous neighbours.
 */
export function* mmap_region(
  mm: MmStruct,
  file: File | null,
  addr: number,
  len: number,
  vm_flags: number,
  pgoff: number,
): KGen<number> {
  const end = addr + len;
  const old = mm.find_vma(addr);
  if (old && old.start < end) {
    if ((yield* do_munmap(mm, addr, len)) !== 0) return -ERRNO.ENOMEM;
  }
  if (mm.map_count >= MAX_MAP_COUNT) return -ERRNO.ENOMEM;
  const vma = new VmAreaStruct(mm, addr, end, vm_flags, pgoff, null, null);
  if (file) {
    vma.vm_file = get_file(file);
    const err = file.f_op.mmap ? yield* file.f_op.mmap(file, vma) : -ERRNO.ENODEV;
    if (err) {
      yield* fput(file);
      return err;
    }
  } else if (vm_flags & VM_SHARED) {
    shmem_zero_setup(vma);
  }
  mm.mm_rb.insert(vma);
  yield* vma_merge(mm, vma);
  return addr;
}

/**
 * do_mmap_pgoff(): the checks and flag computation of mmap(2), in 3.16's order. Caller holds
 * mmap_sem for write. Returns the address or -errno.
 */
export function* do_mmap_pgoff(
  mm: MmStruct,
  file: File | null,
  addr: number,
  len: number,
  prot: number,
  flags: number,
  pgoff: number,
): KGen<number> {
  if (len === 0) return -ERRNO.EINVAL;
  if (!(flags & mman.MAP_FIXED) && addr !== 0) {
    // round_hint_to_min()
    addr = addr - (addr % PAGE_SIZE);
    if (addr < MMAP_MIN_ADDR) addr = PAGE_ALIGN(MMAP_MIN_ADDR);
  }
  len = PAGE_ALIGN(len);
  if (len === 0 || len > Number.MAX_SAFE_INTEGER - PAGE_SIZE) return -ERRNO.ENOMEM;
  if (pgoff + len / PAGE_SIZE > 2 ** 52) return -ERRNO.EOVERFLOW;
  if (mm.map_count > MAX_MAP_COUNT) return -ERRNO.ENOMEM;
  const a = get_unmapped_area(mm, addr, len, flags);
  if (a < 0) return a;
  addr = a;
  let vm_flags = calc_vm_prot_bits(prot) | calc_vm_flag_bits(flags) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
  const type = flags & mman.MAP_TYPE;
  if (file) {
    if (type === mman.MAP_SHARED) {
      if (prot & mman.PROT_WRITE && !file.writable) return -ERRNO.EACCES;
      vm_flags |= VM_SHARED | VM_MAYSHARE;
      if (!file.writable) vm_flags &= ~(VM_MAYWRITE | VM_SHARED);
    } else if (type === mman.MAP_PRIVATE) {
      if (!file.readable) return -ERRNO.EACCES;
    } else {
      return -ERRNO.EINVAL;
    }
  } else if (type === mman.MAP_SHARED) {
    pgoff = 0;
    vm_flags |= VM_SHARED | VM_MAYSHARE;
  } else if (type === mman.MAP_PRIVATE) {
    pgoff = addr / PAGE_SIZE;
  } else {
    return -ERRNO.EINVAL;
  }
  const r = yield* mmap_region(mm, file, addr, len, vm_flags, pgoff);
  if (r < 0) return r;
  if (vm_flags & VM_LOCKED || flags & mman.MAP_POPULATE) yield* mm_populate_locked(mm, addr, len);
  return r;
}

/** __mm_populate() body: fault in every page (writable mappings for write), errors ignored. */
function* mm_populate_locked(mm: MmStruct, start: number, len: number): KGen {
  for (let a = start; a < start + len; a += PAGE_SIZE) {
    const vma = mm.find_vma(a);
    if (!vma || vma.start > a) continue;
    const write = (vma.vm_flags & (VM_WRITE | VM_SHARED)) === VM_WRITE;
    const r = yield* handle_mm_fault(mm, vma, a, write ? FAULT_FLAG_WRITE : 0);
    if (r) return;
  }
}

/** vm_mmap_pgoff(): do_mmap_pgoff under mmap_sem. */
export function* vm_mmap_pgoff(
  mm: MmStruct,
  file: File | null,
  addr: number,
  len: number,
  prot: number,
  flags: number,
  pgoff: number,
): KGen<number> {
  yield* mm.mmap_sem.down_write();
  const r = yield* do_mmap_pgoff(mm, file, addr, len, prot, flags, pgoff);
  mm.mmap_sem.up_write();
  return r;
}

/** vm_munmap(): do_munmap under mmap_sem. */
export function* vm_munmap(mm: MmStruct, start: number, len: number): KGen<number> {
  yield* mm.mmap_sem.down_write();
  const r = yield* do_munmap(mm, start, len);
  mm.mmap_sem.up_write();
  return r;
}
