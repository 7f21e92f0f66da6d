import { ERRNO } from '../base/errno.js';
import { PAGE_SIZE } from '../base/page.js';
import { returns } from '../sched/scheduler.js';
import type { KGen } from '../sched/task.js';
import { do_page_fault, pte_allows } from './memory.js';
import { type MmStruct, TASK_SIZE, VM_FAULT_SIGBUS, pte_pfn } from './mm_types.js';

/** access_ok(): the range lies below the end of user space (no overflow). */
export function access_ok(addr: number, size: number): boolean {
  return (
    Number.isInteger(addr) && Number.isInteger(size) && addr >= 0 && size >= 0 && addr + size <= TASK_SIZE
  );
}

/**
 * Walks the user range page by page, resolving each page's frame as the MMU would (faulting
 * through do_page_fault when absent or write-protected) and handing `fn` a run of bytes. Returns
 * the number of bytes NOT processed (0 on success), like the kernel's copy routines.
 */
function* walk_user(
  mm: MmStruct,
  addr: number,
  len: number,
  write: boolean,
  fn: (frame: Uint8Array, done: number) => void,
  /** Where the last fault is reported (user_access); the copy routines pass none. */
  fault: { code: number; addr: number } | null = null,
): KGen<number> {
  const ram = mm.k.ram;
  let done = 0;
  while (done < len) {
    const a = addr + done;
    const off = a % PAGE_SIZE;
    const n = Math.min(PAGE_SIZE - off, len - done);
    let pfn = -1;
    for (let tries = 0; pfn < 0; tries++) {
      if (mm.freed) return len - done;
      if (fault) fault.addr = a;
      // The MMU: a usable PTE is used whatever the VMA says now (see pte_allows).
      const pte = mm.pgd.get(Math.floor(a / PAGE_SIZE));
      if (pte_allows(pte, write)) {
        pfn = pte_pfn(pte);
        break;
      }
      if (tries > 10_000) {
        if (fault) fault.code = VM_FAULT_SIGBUS;
        return len - done;
      }
      // The page fault: mmap_sem, VMA and permission checks, handle_mm_fault.
      const r = yield* do_page_fault(mm, a, write);
      if (r !== 0) {
        if (fault) fault.code = r;
        return len - done;
      }
    }
    if (fault) fault.code = 0;
    // Coalesce: following pages whose usable PTEs map the next frames of the same RAM chunk
    // are handed over as one run (one TypedArray.set instead of one per page).
    let run = 1;
    let bytes = n;
    const maxRun = ram.contiguousRun(pfn, Math.ceil((len - done + off) / PAGE_SIZE));
    while (run < maxRun && done + bytes < len) {
      const next = mm.pgd.get(Math.floor((a - off) / PAGE_SIZE) + run);
      if (!pte_allows(next, write) || pte_pfn(next) !== pfn + run) break;
      bytes += Math.min(PAGE_SIZE, len - done - bytes);
      run++;
    }
    const view = run === 1 ? ram.frame(pfn) : ram.span(pfn, run);
    fn(view.subarray(off, off + bytes), done);
    done += bytes;
  }
  return 0;
}

/** dst[d..d+n) = src[s..s+n): a loop for the few bytes of an ioctl struct (set() costs more there). */
function copy_bytes(dst: Uint8Array, d: number, src: Uint8Array, s: number, n: number): void {
  if (n > 64) {
    dst.set(s === 0 && n === src.length ? src : src.subarray(s, s + n), d);
    return;
  }
  for (let i = 0; i < n; i++) dst[d + i] = src[s + i]!;
}

/** copy_from_user(): returns the number of bytes not copied; the uncopied tail is zeroed. */
export function* copy_from_user(mm: MmStruct, dst: Uint8Array, src: number): KGen<number> {
  const len = dst.length;
  if (!access_ok(src, len)) {
    dst.fill(0);
    return len;
  }
  const left = yield* walk_user(mm, src, len, false, (frame, done) =>
    copy_bytes(dst, done, frame, 0, frame.length),
  );
  if (left) dst.fill(0, len - left);
  return left;
}

/** copy_to_user(): returns the number of bytes not copied. */
export function copy_to_user(mm: MmStruct, dst: number, src: Uint8Array): KGen<number> {
  if (!access_ok(dst, src.length)) return returns(src.length);
  return walk_user(mm, dst, src.length, true, (frame, done) => copy_bytes(frame, 0, src, done, frame.length));
}

/** clear_user(). */
export function clear_user(mm: MmStruct, dst: number, len: number): KGen<number> {
  if (!access_ok(dst, len)) return returns(len);
  return walk_user(mm, dst, len, true, (frame) => frame.fill(0));
}

/** copy_from_user() as 0 / -EFAULT, the way most callers use it. */
export function* copy_from_user_or_efault(mm: MmStruct, dst: Uint8Array, src: number): KGen<number> {
  return (yield* copy_from_user(mm, dst, src)) ? -ERRNO.EFAULT : 0;
}

/** copy_to_user() as 0 / -EFAULT. */
export function* copy_to_user_or_efault(mm: MmStruct, dst: number, src: Uint8Array): KGen<number> {
  return (yield* copy_to_user(mm, dst, src)) ? -ERRNO.EFAULT : 0;
}

/**
 * A CPU load or store in user mode over [addr, addr+len): faults as the MMU would and returns
 * null, or the signal the first failing access raises (SIGBUS for a fault the backing object
 * refuses, SIGSEGV otherwise) with the faulting address.
 */
export function* user_access(
  mm: MmStruct,
  addr: number,
  len: number,
  write: boolean,
  fn: (frame: Uint8Array, done: number) => void,
): KGen<{ signal: 'SIGSEGV' | 'SIGBUS'; addr: number } | null> {
  if (addr >= TASK_SIZE) return { signal: 'SIGSEGV', addr };
  // A range running past user space faults at the first byte it may not touch: within it, or
  // at TASK_SIZE.
  const inside = access_ok(addr, len) ? len : TASK_SIZE - addr;
  const fault = { code: 0, addr };
  const left = yield* walk_user(mm, addr, inside, write, fn, fault);
  if (!left) return inside === len ? null : { signal: 'SIGSEGV', addr: TASK_SIZE };
  return { signal: fault.code & VM_FAULT_SIGBUS ? 'SIGBUS' : 'SIGSEGV', addr: fault.addr };
}

/**
 * Whether a load from every page of [uaddr, uaddr + size) would find a usable PTE (and the mm
 * alive): then fault_in_multipages_readable() would neither fault nor fail, and a caller may skip
 * it (it only loads bytes nobody keeps). False means: run it.
 */
export function user_pages_readable(mm: MmStruct, uaddr: number, size: number): boolean {
  if (size === 0) return true;
  if (mm.freed || !access_ok(uaddr, size)) return false;
  const last = Math.floor((uaddr + size - 1) / PAGE_SIZE);
  for (let page = Math.floor(uaddr / PAGE_SIZE); page <= last; page++) {
    if (!pte_allows(mm.pgd.get(page), false)) return false;
  }
  return true;
}

/**
 * The addresses fault_in_multipages_*() touch: one in every page from `uaddr` on, then the last
 * byte when the range spills into a page the stride skipped. Lazy: a caller stops at the first
 * fault, so a huge range costs only what it touches. 3.16 takes the size as an `int`: callers
 * pass a u64, so only its low 32 bits count, signed (1 TiB touches nothing; 3 GiB is negative and
 * touches at most the byte before `uaddr`'s page end).
 */
function* fault_in_points(uaddr: number, size: number): Generator<number, void, void> {
  size |= 0;
  if (size === 0) return;
  const end = uaddr + size - 1;
  let a = uaddr;
  for (; a <= end; a += PAGE_SIZE) yield a;
  if (Math.floor(a / PAGE_SIZE) === Math.floor(end / PAGE_SIZE)) yield end;
}

/** fault_in_multipages_readable(): loads a byte of every page of the range. 0 or -EFAULT. */
export function* fault_in_multipages_readable(mm: MmStruct, uaddr: number, size: number): KGen<number> {
  const one = new Uint8Array(1);
  for (const a of fault_in_points(uaddr, size)) {
    if (yield* copy_from_user(mm, one, a)) return -ERRNO.EFAULT;
  }
  return 0;
}

/** fault_in_multipages_writeable(): stores a zero byte in every page of the range. 0 or -EFAULT. */
export function* fault_in_multipages_writeable(mm: MmStruct, uaddr: number, size: number): KGen<number> {
  const zero = new Uint8Array(1);
  for (const a of fault_in_points(uaddr, size)) {
    if (yield* copy_to_user(mm, a, zero)) return -ERRNO.EFAULT;
  }
  return 0;
}
