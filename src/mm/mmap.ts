import { ERRNO } from '../base/errno.js';
import { PAGE_ALIGN, PAGE_SIZE, isPageAligned } from '../base/page.js';
import type { KGen } from '../sched/task.js';
import * as mman from '../uapi/mman.js';
import { CAP_SYS_RAWIO, current } from './current.js';
import { type File, fput, get_file } from './file.js';
import { FAULT_FLAG_WRITE, MMAP_BASE, MMAP_MIN_ADDR, TASK_SIZE } from './mm_types.js';
import {
  type MmStruct,
  VM_ACCOUNT,
  VM_EXEC,
  VM_GROWSDOWN,
  VM_IO,
  VM_LOCKED,
  VM_MAYEXEC,
  VM_MAYREAD,
  VM_MAYSHARE,
  VM_MAYWRITE,
  VM_NORESERVE,
  VM_PFNMAP,
  VM_READ,
  VM_SHARED,
  VM_SPECIAL,
  VM_WRITE,
  VmAreaStruct,
} from './mm_types.js';
import { free_pgtables, handle_mm_fault, unmap_vmas } from './memory.js';
import { can_do_mlock, over_mlock_limit } from './mlock.js';
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

/**
 * calc_vm_flag_bits(). MAP_DENYWRITE never gets here: mmap(2) strips it (and MAP_EXECUTABLE)
 * before do_mmap_pgoff.
 */
function calc_vm_flag_bits(flags: number): number {
  return (flags & mman.MAP_GROWSDOWN ? VM_GROWSDOWN : 0) | (flags & mman.MAP_LOCKED ? VM_LOCKED : 0);
}

/**
 * mlock_future_check(): a VM_LOCKED mapping of `len` bytes must fit under RLIMIT_MEMLOCK with
 * what the mm already locks, unless the task has CAP_IPC_LOCK.
 */
function mlock_future_check(mm: MmStruct, vm_flags: number, len: number): number {
  if (vm_flags & VM_LOCKED && over_mlock_limit(mm, len / PAGE_SIZE)) return -ERRNO.EAGAIN;
  return 0;
}

/** remove_vma(): a VMA leaves for good: driver close, file reference dropped. */
export function* remove_vma(vma: VmAreaStruct): KGen {
  if (vma.vm_ops?.close) yield* vma.vm_ops.close(vma);
  if (vma.vm_file) yield* fput(vma.vm_file);
}

/**
 * Two neighbours may become one VMA (vma_merge's test for anonymous memory and same file).
 * VM_SPECIAL mappings never merge. anon_vma compatibility is not modelled (see README).
 */
function can_merge(a: VmAreaStruct, b: VmAreaStruct): boolean {
  return (
    a.end === b.start &&
    !(a.vm_flags & VM_SPECIAL) &&
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
  if (flags & mman.MAP_FIXED) {
    r = addr;
  } else {
    // arch_get_unmapped_area_topdown(): the hint if it fits, else the highest gap below
    // mmap_base, else the legacy bottom-up search.
    r = -ERRNO.ENOMEM;
    if (addr) {
      const a = PAGE_ALIGN(addr);
      const vma = mm.find_vma(a);
      if (TASK_SIZE - len >= a && (!vma || a + len <= vma.start)) r = a;
    }
    if (r < 0) r = mm.mm_rb.findGapTopDown(len, PAGE_SIZE, MMAP_BASE) ?? -1;
    if (r < 0) r = bottomUp(mm, addr, len);
    if (r < 0) return -ERRNO.ENOMEM;
  }
  if (r > TASK_SIZE - len) return -ERRNO.ENOMEM;
  if (!isPageAligned(r)) return -ERRNO.EINVAL;
  return security_mmap_addr(mm, r);
}

/** security_mmap_addr() → cap_mmap_addr(): below mmap_min_addr needs CAP_SYS_RAWIO. */
function security_mmap_addr(mm: MmStruct, addr: number): number {
  if (addr < MMAP_MIN_ADDR && !current(mm.k).capable(CAP_SYS_RAWIO)) return -ERRNO.EPERM;
  return addr;
}

/** arch_get_unmapped_area(): the bottom-up search from TASK_UNMAPPED_BASE (hint first). */
function bottomUp(mm: MmStruct, addr: number, len: number): number {
  if (addr) {
    const a = PAGE_ALIGN(addr);
    const vma = mm.find_vma(a);
    if (TASK_SIZE - len >= a && (!vma || a + len <= vma.start)) return a;
  }
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
  // Locked pieces stop counting against RLIMIT_MEMLOCK before they are detached.
  for (const v of vmas) if (v.vm_flags & VM_LOCKED) mm.locked_vm -= v.pages;
  for (const v of vmas) mm.mm_rb.remove(v);
  // unmap_region(): zap, then free the page tables nothing maps any more.
  yield* unmap_vmas(mm, vmas, start, end);
  free_pgtables(mm, start, end);
  for (const v of vmas) yield* remove_vma(v);
  return 0;
}

/** accountable_mapping(): private writable memory is charged (VM_ACCOUNT) unless NORESERVE. */
function accountable_mapping(vm_flags: number): boolean {
  return (vm_flags & (VM_NORESERVE | VM_SHARED | VM_WRITE)) === VM_WRITE;
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
  if (accountable_mapping(vm_flags)) vm_flags |= VM_ACCOUNT;
  const vma = new VmAreaStruct(mm, addr, end, vm_flags, pgoff, null, null);
  if (file) {
    vma.vm_file = get_file(file);
    const err = file.f_op.mmap ? yield* file.f_op.mmap(file, vma) : -ERRNO.ENODEV;
    if (err) {
      vma.vm_file = null;
      yield* fput(file);
      // Undo any partial mapping done by the driver (unmap_region).
      yield* unmap_vmas(mm, [vma], addr, end);
      free_pgtables(mm, addr, end);
      return err;
    }
    // The driver's ->mmap may have added flags (VM_IO, VM_PFNMAP, ...).
    vm_flags = vma.vm_flags;
  } else if (vm_flags & VM_SHARED) {
    shmem_zero_setup(vma);
  }
  mm.mm_rb.insert(vma);
  yield* vma_merge(mm, vma);
  if (vm_flags & VM_LOCKED) {
    // Special mappings cannot be locked: they lose VM_LOCKED and are not charged.
    if (vm_flags & VM_SPECIAL) vma.vm_flags &= ~VM_LOCKED;
    else mm.locked_vm += len / PAGE_SIZE;
  }
  return addr;
}

/**
 * do_mmap_pgoff(): the checks and flag computation of mmap(2), in 3.16's order. Caller holds
 * mmap_sem for write. Returns the address or -errno; `populate.len` is set when the caller must
 * fault the range in after dropping mmap_sem (MAP_LOCKED, MAP_POPULATE).
 */
export function* do_mmap_pgoff(
  mm: MmStruct,
  file: File | null,
  addr: number,
  len: number,
  prot: number,
  flags: number,
  pgoff: number,
  populate: { len: number } = { len: 0 },
): KGen<number> {
  populate.len = 0;
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
  if (flags & mman.MAP_LOCKED && !can_do_mlock(mm)) return -ERRNO.EPERM;
  const locked = mlock_future_check(mm, vm_flags, len);
  if (locked) return locked;
  const type = flags & mman.MAP_TYPE;
  if (file) {
    if (type !== mman.MAP_SHARED && type !== mman.MAP_PRIVATE) return -ERRNO.EINVAL;
    if (type === mman.MAP_SHARED) {
      if (prot & mman.PROT_WRITE && !file.writable) return -ERRNO.EACCES;
      vm_flags |= VM_SHARED | VM_MAYSHARE;
      if (!file.writable) vm_flags &= ~(VM_MAYWRITE | VM_SHARED);
    }
    // MAP_SHARED falls through to MAP_PRIVATE's checks.
    if (!file.readable) return -ERRNO.EACCES;
    if (!file.f_op.mmap) return -ERRNO.ENODEV;
  } else if (type === mman.MAP_SHARED) {
    pgoff = 0;
    vm_flags |= VM_SHARED | VM_MAYSHARE;
  } else if (type === mman.MAP_PRIVATE) {
    pgoff = addr / PAGE_SIZE;
  } else {
    return -ERRNO.EINVAL;
  }
  // We honour MAP_NORESERVE: overcommit is not OVERCOMMIT_NEVER.
  if (flags & mman.MAP_NORESERVE) vm_flags |= VM_NORESERVE;
  const r = yield* mmap_region(mm, file, addr, len, vm_flags, pgoff);
  if (r < 0) return r;
  if (vm_flags & VM_LOCKED || (flags & (mman.MAP_POPULATE | mman.MAP_NONBLOCK)) === mman.MAP_POPULATE) {
    populate.len = len;
  }
  return r;
}

/**
 * mm_populate() / __mm_populate(): fault in [start, start+len) under mmap_sem for read, VMA by
 * VMA (writable private mappings for write, breaking COW). Device mappings are skipped, PROT_NONE
 * ones fail gup's permission check; errors move on to the next VMA (mmap ignores them).
 */
export function* mm_populate(mm: MmStruct, start: number, len: number): KGen {
  const end = start + len;
  yield* mm.mmap_sem.down_read();
  for (let nstart = start; nstart < end;) {
    const vma = mm.find_vma(nstart);
    if (!vma || vma.start >= end) break;
    const nend = Math.min(end, vma.end);
    if (!(vma.vm_flags & (VM_IO | VM_PFNMAP)) && vma.vm_flags & (VM_READ | VM_WRITE | VM_EXEC)) {
      const write = (vma.vm_flags & (VM_WRITE | VM_SHARED)) === VM_WRITE;
      for (let a = Math.max(nstart, vma.start); a < nend; a += PAGE_SIZE) {
        const r = yield* handle_mm_fault(mm, vma, a, write ? FAULT_FLAG_WRITE : 0);
        if (r) break;
      }
    }
    nstart = nend;
  }
  mm.mmap_sem.up_read();
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
  const populate = { len: 0 };
  yield* mm.mmap_sem.down_write();
  const r = yield* do_mmap_pgoff(mm, file, addr, len, prot, flags, pgoff, populate);
  mm.mmap_sem.up_write();
  if (populate.len) yield* mm_populate(mm, r, populate.len);
  return r;
}

/** vm_munmap(): do_munmap under mmap_sem. */
export function* vm_munmap(mm: MmStruct, start: number, len: number): KGen<number> {
  yield* mm.mmap_sem.down_write();
  const r = yield* do_munmap(mm, start, len);
  mm.mmap_sem.up_write();
  return r;
}
