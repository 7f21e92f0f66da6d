/**
 * Property-based model test of process memory: random sequences of mmap / munmap / mprotect /
 * madvise / mremap / fork / read / write / setuid / exit over a few processes (stacks with
 * MAP_GROWSDOWN and PROT_GROWS*, locked memory with MAP_LOCKED under RLIMIT_MEMLOCK for root and
 * others), run against the machine and
 * against a deliberately simple reference model (VMAs as plain records, private bytes per page,
 * shared memory as objects of pages). After every operation the results, the VMA layout and the
 * frame accounting (recomputed from first principles) must agree; at the end everything is read
 * back and shutdown() must report nothing and free every frame.
 *
 * SEED=<n> reruns with another seed; RUNS=<n> changes the number of sequences.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrnoError, Machine, type Process, SegfaultError, type UserApi, uapi } from '../src/index.js';
import { __get_user_pages_fast, release_user_pages } from '../src/mm/gup.js';
import {
  MMAP_BASE,
  MMAP_MIN_ADDR,
  TASK_SIZE,
  VM_ACCOUNT,
  VM_DONTCOPY,
  VM_GROWSDOWN,
  VM_LOCKED,
  VM_MAYEXEC,
  VM_MAYREAD,
  VM_MAYSHARE,
  VM_MAYWRITE,
  VM_SHARED,
  VM_WRITE,
  pte_pfn,
  pte_protnone,
  pte_special,
  pte_write,
} from '../src/mm/mm_types.js';
import { MmuNotifier, mmu_notifier_register, mmu_notifier_unregister } from '../src/mm/mmu_notifier.js';
import { ShmemObject } from '../src/mm/shmem.js';
import type { KGen, Point } from '../src/sched/task.js';

const SEED = Number(process.env.SEED ?? 0x5eed);
const RUNS = Number(process.env.RUNS ?? 150);

const P = 4096;
const {
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  PROT_EXEC,
  MAP_PRIVATE,
  MAP_SHARED,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_GROWSDOWN,
  MAP_LOCKED,
  PROT_GROWSDOWN,
  PROT_GROWSUP,
  MADV_DONTNEED,
  MADV_DONTFORK,
  MADV_DOFORK,
  MADV_REMOVE,
  MREMAP_MAYMOVE,
  MREMAP_FIXED,
} = uapi;

/** RLIMIT_MEMLOCK (64 KiB) in pages. */
const MEMLOCK_PAGES = 16;

/** The address window the operations aim at: 56 pages below mmap_base and 8 above, in pages. */
const WBASE = MMAP_BASE / P - 56;
const WSIZE = 64;

// ------------------------------------------------------------------------------------------------
// The reference model. Addresses are in pages.

interface MObj {
  readonly id: number;
  readonly nrPages: number;
  readonly pages: Map<number, Uint8Array>;
}

interface MVma {
  start: number;
  end: number;
  prot: number;
  dontfork: boolean;
  /** VM_ACCOUNT: private mapping that was writable at some point. */
  account: boolean;
  /** VM_LOCKED (MAP_LOCKED; not inherited by fork). */
  locked: boolean;
  /** VM_GROWSDOWN (MAP_GROWSDOWN). */
  growsdown: boolean;
  /** Shared memory object, or null for private anonymous memory. */
  obj: MObj | null;
  /** Private: the page offset the machine keeps (start page at mmap); shared: index in obj. */
  pgoff: number;
  /** Private pages were touched (the machine's anon_vma flag). */
  anon: boolean;
}

interface MProc {
  readonly proc: Process;
  vmas: MVma[];
  /** Private pages written (absent: zero), by page number. */
  priv: Map<number, Uint8Array>;
  /** mm->locked_vm: pages charged against RLIMIT_MEMLOCK. */
  lockedVm: number;
}

type Outcome =
  { ok: number } | { errno: string } | { signal: 'SIGSEGV' | 'SIGBUS'; addr: number } | { bytes: string };

let nextObj = 1;
const STATS = new Map<string, number>();

function first(vmas: MVma[], page: number): MVma | undefined {
  return vmas.find((v) => v.end > page);
}
function containing(vmas: MVma[], page: number): MVma | undefined {
  const v = first(vmas, page);
  return v && v.start <= page ? v : undefined;
}
function sortVmas(mp: MProc): void {
  mp.vmas.sort((a, b) => a.start - b.start);
}

/** Cuts VMAs so that `page` is a boundary. */
function splitAt(mp: MProc, page: number): void {
  const v = containing(mp.vmas, page);
  if (!v || v.start === page) return;
  const upper: MVma = { ...v, start: page, pgoff: v.pgoff + (page - v.start) };
  v.end = page;
  mp.vmas.push(upper);
  sortVmas(mp);
}

function canMerge(a: MVma, b: MVma): boolean {
  return (
    a.end === b.start &&
    a.prot === b.prot &&
    a.dontfork === b.dontfork &&
    a.account === b.account &&
    a.locked === b.locked &&
    a.growsdown === b.growsdown &&
    a.obj === b.obj &&
    a.pgoff + (a.end - a.start) === b.pgoff
  );
}

/** vma_merge(): folds `v` into its neighbours where they are compatible; returns the result. */
function merge(mp: MProc, v: MVma): MVma {
  const prev = mp.vmas.find((x) => x.end === v.start);
  if (prev && canMerge(prev, v)) {
    prev.end = v.end;
    prev.anon ||= v.anon;
    mp.vmas.splice(mp.vmas.indexOf(v), 1);
    v = prev;
  }
  const next = mp.vmas.find((x) => x.start === v.end);
  if (next && canMerge(v, next)) {
    v.end = next.end;
    v.anon ||= next.anon;
    mp.vmas.splice(mp.vmas.indexOf(next), 1);
  }
  return v;
}

function unmap(mp: MProc, s: number, e: number): void {
  splitAt(mp, s);
  splitAt(mp, e);
  for (const v of mp.vmas) if (v.locked && v.start >= s && v.end <= e) mp.lockedVm -= v.end - v.start;
  mp.vmas = mp.vmas.filter((v) => v.end <= s || v.start >= e);
  for (const k of [...mp.priv.keys()]) if (k >= s && k < e) mp.priv.delete(k);
}

/** The pieces of [s, e) as whole VMAs (after splitting). */
function piecesOf(mp: MProc, s: number, e: number): MVma[] {
  splitAt(mp, s);
  splitAt(mp, e);
  return mp.vmas.filter((v) => v.start >= s && v.end <= e);
}

/** x86_64's top-down allocator over the model's VMAs (pages). */
function topDown(vmas: MVma[], len: number): number {
  const high = MMAP_BASE / P;
  const low = 1;
  let gapEnd = Infinity;
  for (let i = vmas.length - 1; i >= -1; i--) {
    const gapStart = i >= 0 ? vmas[i]!.end : -Infinity;
    const hi = Math.min(gapEnd, high);
    const lo = Math.max(gapStart, low);
    if (hi - lo >= len) return hi - len;
    if (i >= 0) gapEnd = vmas[i]!.start;
  }
  return -1;
}

function isFree(vmas: MVma[], s: number, len: number): boolean {
  const v = first(vmas, s);
  return !v || s + len <= v.start;
}

/** Would `pages` more locked pages exceed RLIMIT_MEMLOCK for this process (root: CAP_IPC_LOCK)? */
function overMemlock(mp: MProc, pages: number): boolean {
  return mp.lockedVm + pages > MEMLOCK_PAGES && mp.proc.uid !== 0;
}

/**
 * mm_populate() after a locked mapping appeared or grew: every page of [s, e) in a VMA with some
 * access is faulted in, which marks private VMAs as having anonymous pages. The bytes stay zero.
 */
function populate(mp: MProc, s: number, e: number): void {
  for (const v of mp.vmas) if (v.end > s && v.start < e && !v.obj && v.prot & 7) v.anon = true;
}

function pageAlign(bytes: number): number {
  return Math.ceil(bytes / P) * P;
}

function ok(v: number): Outcome {
  return { ok: v };
}
function errno(code: string): Outcome {
  return { errno: code };
}

function modelMmap(mp: MProc, addr: number, len: number, prot: number, flags: number): Outcome {
  if (len === 0) return errno('EINVAL');
  const fixed = (flags & MAP_FIXED) !== 0;
  if (!fixed && addr !== 0) {
    addr -= addr % P;
    if (addr < MMAP_MIN_ADDR) addr = MMAP_MIN_ADDR;
  }
  len = pageAlign(len);
  if (len > TASK_SIZE) return errno('ENOMEM');
  const npages = len / P;
  let at: number;
  if (fixed) {
    if (addr > TASK_SIZE - len) return errno('ENOMEM');
    if (addr % P !== 0) return errno('EINVAL');
    // Below mmap_min_addr needs CAP_SYS_RAWIO, which root has.
    if (addr < MMAP_MIN_ADDR && mp.proc.uid !== 0) return errno('EPERM');
    at = addr / P;
  } else {
    at = -1;
    if (addr && TASK_SIZE - len >= addr && isFree(mp.vmas, addr / P, npages)) at = addr / P;
    if (at < 0) at = topDown(mp.vmas, npages);
    if (at < 0) return errno('ENOMEM');
  }
  // mlock_future_check(), with the pages a MAP_FIXED is about to replace still counted.
  const locked = (flags & MAP_LOCKED) !== 0;
  if (locked && overMemlock(mp, npages)) return errno('EAGAIN');
  const type = flags & 0x0f;
  if (type !== MAP_SHARED && type !== MAP_PRIVATE) return errno('EINVAL');
  const shared = type === MAP_SHARED;
  unmap(mp, at, at + npages);
  const v: MVma = {
    start: at,
    end: at + npages,
    prot,
    dontfork: false,
    account: !shared && (prot & PROT_WRITE) !== 0,
    locked,
    growsdown: (flags & MAP_GROWSDOWN) !== 0,
    obj: shared ? { id: nextObj++, nrPages: npages, pages: new Map() } : null,
    pgoff: shared ? 0 : at,
    anon: false,
  };
  mp.vmas.push(v);
  sortVmas(mp);
  merge(mp, v);
  if (locked) {
    mp.lockedVm += npages;
    populate(mp, at, at + npages);
  }
  return ok(at * P);
}

function modelMunmap(mp: MProc, addr: number, len: number): Outcome {
  if (addr % P !== 0 || addr > TASK_SIZE || len > TASK_SIZE - addr) return errno('EINVAL');
  len = pageAlign(len);
  if (len === 0) return errno('EINVAL');
  unmap(mp, addr / P, (addr + len) / P);
  return ok(0);
}

function modelMprotect(mp: MProc, addr: number, len: number, prot: number): Outcome {
  const grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
  prot &= ~grows;
  if (grows === (PROT_GROWSDOWN | PROT_GROWSUP)) return errno('EINVAL');
  if (addr % P !== 0) return errno('EINVAL');
  if (len === 0) return ok(0);
  len = pageAlign(len);
  if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | uapi.PROT_SEM)) return errno('EINVAL');
  prot &= PROT_READ | PROT_WRITE | PROT_EXEC;
  let s = addr / P;
  const e = s + len / P;
  let v = first(mp.vmas, s);
  if (!v) return errno('ENOMEM');
  if (grows === PROT_GROWSDOWN) {
    // From the VMA's start, which must lie below the end; only a grows-down VMA allows it.
    if (v.start >= e) return errno('ENOMEM');
    s = v.start;
    if (!v.growsdown) return errno('EINVAL');
  } else {
    if (v.start > s) return errno('ENOMEM');
    // x86 has no grows-up VMAs.
    if (grows === PROT_GROWSUP) return errno('EINVAL');
  }
  let n = s;
  for (;;) {
    const tmp: number = Math.min(v.end, e);
    let cur: MVma = v;
    if (v.prot !== prot) {
      const piece = piecesOf(mp, n, tmp)[0]!;
      if (prot & PROT_WRITE && !piece.obj) piece.account = true;
      piece.prot = prot;
      cur = merge(mp, piece);
    }
    n = Math.max(tmp, cur.end);
    if (n >= e) return ok(0);
    const next: MVma | undefined = mp.vmas.find((x) => x.start >= cur.end);
    if (!next || next.start !== n) return errno('ENOMEM');
    v = next;
  }
}

const VALID_ADVICE = new Set([0, 1, 2, 3, 4, 9, 10, 11, 12, 13, 14, 15, 16, 17]);

function modelMadvise(mp: MProc, addr: number, len: number, advice: number): Outcome {
  if (!VALID_ADVICE.has(advice)) return errno('EINVAL');
  if (addr % P !== 0) return errno('EINVAL');
  len = pageAlign(len);
  if (len === 0) return ok(0);
  let s = addr / P;
  const e = s + len / P;
  let unmapped: Outcome = ok(0);
  let v = first(mp.vmas, s);
  for (;;) {
    if (!v) return errno('ENOMEM');
    if (s < v.start) {
      unmapped = errno('ENOMEM');
      s = v.start;
      if (s >= e) return unmapped;
    }
    const tmp = Math.min(v.end, e);
    if (advice === MADV_DONTNEED) {
      if (v.locked) return errno('EINVAL');
      if (!v.obj) for (let q = s; q < tmp; q++) mp.priv.delete(q);
    } else if (advice === MADV_REMOVE) {
      if (v.locked || !v.obj) return errno('EINVAL');
      if (!(v.prot & PROT_WRITE)) return errno('EACCES');
      for (let q = s; q < tmp; q++) v.obj.pages.delete(v.pgoff + (q - v.start));
    } else if (advice === MADV_DONTFORK || advice === MADV_DOFORK) {
      const want = advice === MADV_DONTFORK;
      if (v.dontfork !== want) {
        const piece = piecesOf(mp, s, tmp)[0]!;
        piece.dontfork = want;
        merge(mp, piece);
      }
    }
    s = tmp;
    if (s >= e) return unmapped;
    v = first(mp.vmas, s);
  }
}

/**
 * move_vma(): returns the new address in bytes. A locked VMA charges its new length (the unmap of
 * the old range gives the old length back) and has the grown part populated.
 */
function modelMoveVma(mp: MProc, v: MVma, old: number, oldLen: number, newLen: number, to: number): Outcome {
  let pgoff = v.pgoff + (old - v.start);
  if (!v.obj && !v.anon) pgoff = to;
  const nv: MVma = { ...v, start: to, end: to + newLen, pgoff };
  mp.vmas.push(nv);
  sortVmas(mp);
  merge(mp, nv);
  const moved: [number, Uint8Array][] = [];
  for (const [k, b] of mp.priv) if (k >= old && k < old + oldLen) moved.push([k, b]);
  for (const [k] of moved) mp.priv.delete(k);
  for (const [k, b] of moved) mp.priv.set(k - old + to, b);
  if (oldLen > 0) unmap(mp, old, old + oldLen);
  if (v.locked) {
    mp.lockedVm += newLen;
    populate(mp, to + oldLen, to + newLen);
  }
  return ok(to * P);
}

function modelMremap(
  mp: MProc,
  addr: number,
  oldLen: number,
  newLen: number,
  flags: number,
  newAddr: number,
): Outcome {
  if (flags & ~(MREMAP_FIXED | MREMAP_MAYMOVE)) return errno('EINVAL');
  if (flags & MREMAP_FIXED && !(flags & MREMAP_MAYMOVE)) return errno('EINVAL');
  if (addr % P !== 0) return errno('EINVAL');
  oldLen = pageAlign(oldLen) / P;
  newLen = pageAlign(newLen) / P;
  if (!newLen) return errno('EINVAL');
  const a = addr / P;
  const toResize = (): MVma | Outcome => {
    const v = containing(mp.vmas, a);
    if (!v) return errno('EFAULT');
    if (oldLen > v.end - a) return errno('EFAULT');
    // newLen >= oldLen here; a locked VMA over the limit fails even when it does not grow.
    if (v.locked && overMemlock(mp, newLen - oldLen)) return errno('EAGAIN');
    return v;
  };
  if (flags & MREMAP_FIXED) {
    if (newAddr % P !== 0) return errno('EINVAL');
    const na = newAddr / P;
    if (newLen * P > TASK_SIZE || newAddr > TASK_SIZE - newLen * P) return errno('EINVAL');
    if (na <= a && na + newLen > a) return errno('EINVAL');
    if (a <= na && a + oldLen > na) return errno('EINVAL');
    unmap(mp, na, na + newLen);
    if (oldLen >= newLen) {
      if (oldLen > newLen) unmap(mp, a + newLen, a + oldLen);
      oldLen = newLen;
    }
    const v = toResize();
    if (!('start' in v)) return v;
    if (newAddr < MMAP_MIN_ADDR && mp.proc.uid !== 0) return errno('EPERM');
    return modelMoveVma(mp, v, a, oldLen, newLen, na);
  }
  if (oldLen >= newLen) {
    if (oldLen > newLen) unmap(mp, a + newLen, a + oldLen);
    return ok(addr);
  }
  const v = toResize();
  if (!('start' in v)) return v;
  if (oldLen === v.end - a) {
    const newEnd = a + newLen;
    const next = mp.vmas.find((x) => x.start >= v.end);
    if ((!next || next.start >= newEnd) && newEnd * P <= TASK_SIZE) {
      v.end = newEnd;
      if (v.locked) {
        mp.lockedVm += newLen - oldLen;
        populate(mp, a + oldLen, newEnd);
      }
      return ok(addr);
    }
  }
  if (!(flags & MREMAP_MAYMOVE)) return errno('ENOMEM');
  const to = topDown(mp.vmas, newLen);
  if (to < 0) return errno('ENOMEM');
  return modelMoveVma(mp, v, a, oldLen, newLen, to);
}

function modelFork(mp: MProc, child: Process): MProc {
  // The child inherits no memory locks.
  const vmas = mp.vmas.filter((v) => !v.dontfork).map((v) => ({ ...v, locked: false }));
  const priv = new Map<number, Uint8Array>();
  for (const [k, b] of mp.priv) {
    const v = containing(vmas, k);
    if (v && !v.obj) priv.set(k, b.slice());
  }
  return { proc: child, vmas, priv, lockedVm: 0 };
}

/**
 * A CPU access page by page, as the machine does: each page's part happens before the next page
 * is looked at, so a fault leaves the earlier pages written.
 */
function modelAccess(mp: MProc, addr: number, len: number, write: Uint8Array | null): Outcome {
  if (addr >= TASK_SIZE) return { signal: 'SIGSEGV', addr };
  // Past the end of user space the access faults at TASK_SIZE, after the pages before it.
  const inside = Math.min(len, TASK_SIZE - addr);
  const out = new Uint8Array(inside);
  let done = 0;
  while (done < inside) {
    const a = addr + done;
    const page = Math.floor(a / P);
    const off = a % P;
    const n = Math.min(P - off, inside - done);
    const v = containing(mp.vmas, page);
    const allowed = v && (write ? v.prot & PROT_WRITE : v.prot & (PROT_READ | PROT_WRITE | PROT_EXEC));
    if (!v || !allowed) return { signal: 'SIGSEGV', addr: a };
    let bytes: Uint8Array | undefined;
    if (v.obj) {
      const idx = v.pgoff + (page - v.start);
      if (idx >= v.obj.nrPages) return { signal: 'SIGBUS', addr: a };
      bytes = v.obj.pages.get(idx);
      if (!bytes && write) v.obj.pages.set(idx, (bytes = new Uint8Array(P)));
    } else {
      v.anon = true;
      bytes = mp.priv.get(page);
      if (!bytes && write) mp.priv.set(page, (bytes = new Uint8Array(P)));
    }
    if (write) bytes!.set(write.subarray(done, done + n), off);
    else if (bytes) out.set(bytes.subarray(off, off + n), done);
    done += n;
  }
  if (inside < len) return { signal: 'SIGSEGV', addr: TASK_SIZE };
  return write ? ok(0) : { bytes: hexOf(out) };
}

function hexOf(b: Uint8Array): string {
  // Runs of equal bytes are compressed so that a mismatch reads well.
  let s = '';
  for (let i = 0; i < b.length;) {
    let j = i;
    while (j < b.length && b[j] === b[i]) j++;
    s += `${b[i]!.toString(16)}x${j - i} `;
    i = j;
  }
  return s.trimEnd();
}

// ------------------------------------------------------------------------------------------------
// The machine side.

function run(f: () => unknown): Outcome {
  try {
    const r = f();
    if (r instanceof Uint8Array) return { bytes: hexOf(r) };
    return { ok: typeof r === 'number' ? r : 0 };
  } catch (e) {
    if (e instanceof ErrnoError) return { errno: e.code };
    if (e instanceof SegfaultError) return { signal: e.signal, addr: e.addr };
    throw e;
  }
}

const FLAG_MASK =
  0x7 |
  VM_SHARED |
  VM_MAYSHARE |
  VM_MAYREAD |
  VM_MAYWRITE |
  VM_MAYEXEC |
  VM_DONTCOPY |
  VM_ACCOUNT |
  VM_LOCKED |
  VM_GROWSDOWN;

/** The machine's VMAs must be the model's, field for field; shared objects must correspond 1:1. */
function checkVmas(mp: MProc, objs: Map<ShmemObject, MObj>, where: string): void {
  const mm = mp.proc.mm!;
  mm.mm_rb.checkInvariants();
  const got = [...mm.mm_rb].map((v) => {
    const so = v.vm_file?.private_data;
    let obj: number | null = null;
    if (so instanceof ShmemObject) {
      const mo = objs.get(so);
      obj = mo ? mo.id : -1;
    }
    return {
      start: v.start / P,
      end: v.end / P,
      flags: (v.vm_flags & FLAG_MASK).toString(16),
      pgoff: v.vm_pgoff,
      obj,
      anon: v.anon_vma,
    };
  });
  const want = mp.vmas.map((v) => ({
    start: v.start,
    end: v.end,
    flags: (
      v.prot |
      VM_MAYREAD |
      VM_MAYWRITE |
      VM_MAYEXEC |
      (v.obj ? VM_SHARED | VM_MAYSHARE : 0) |
      (v.dontfork ? VM_DONTCOPY : 0) |
      (v.account ? VM_ACCOUNT : 0) |
      (v.locked ? VM_LOCKED : 0) |
      (v.growsdown ? VM_GROWSDOWN : 0)
    ).toString(16),
    pgoff: v.pgoff,
    obj: v.obj ? v.obj.id : null,
    anon: v.anon,
  }));
  expect(got, `VMAs of pid ${mp.proc.pid} ${where}`).toEqual(want);
  expect(mm.map_count).toBe(mp.vmas.length);
  expect(mm.locked_vm, `locked_vm of pid ${mp.proc.pid} ${where}`).toBe(mp.lockedVm);
  checkLockedVm(mp.proc, where);
}

/** Anonymous memory only: locked_vm is the sum of the VM_LOCKED VMAs' pages. */
function checkLockedVm(proc: Process, where: string): void {
  let lockedPages = 0;
  for (const v of proc.mm!.mm_rb) if (v.vm_flags & VM_LOCKED) lockedPages += v.pages;
  expect(proc.mm!.locked_vm, `locked_vm recomputed for pid ${proc.pid} ${where}`).toBe(lockedPages);
}

/**
 * Frame accounting from first principles: every present PTE holds one reference and one mapping
 * of its frame, every shmem object one reference on each of its pages; nothing else holds frames.
 * Also: PTEs lie inside VMAs, a writable PTE needs a writable VMA, and a private writable PTE maps
 * a frame nobody else maps (copy-on-write was not leaked).
 */
function checkFrames(m: Machine, procs: readonly Process[], where: string): void {
  const ram = m.ram;
  const refs = new Map<number, number>();
  const maps = new Map<number, number>();
  const privWritable: number[] = [];
  const objects = new Set<ShmemObject>();
  const objectPages = new Set<number>();
  for (const proc of procs) {
    for (const v of proc.mm!.mm_rb) {
      const so = v.vm_file?.private_data;
      if (so instanceof ShmemObject) objects.add(so);
    }
  }
  for (const so of objects) for (const pfn of so.pages.values()) objectPages.add(pfn);
  for (const proc of procs) {
    const mm = proc.mm!;
    let rss = 0;
    for (const [vpn, pte] of mm.pgd) {
      const at = `the PTE at ${(vpn * P).toString(16)} of pid ${proc.pid} ${where}`;
      const vma = mm.mm_rb.find(vpn * P);
      expect(vma, `VMA of ${at}`).toBeDefined();
      expect(pte_special(pte)).toBe(false);
      expect(pte_protnone(pte), `PROT_NONE bit of ${at}`).toBe((vma!.vm_flags & 7) === 0);
      const pfn = pte_pfn(pte);
      refs.set(pfn, (refs.get(pfn) ?? 0) + 1);
      maps.set(pfn, (maps.get(pfn) ?? 0) + 1);
      rss++;
      // Coherence: a shared mapping maps the object's own page; a private one never does.
      const so = vma!.vm_file?.private_data;
      if (so instanceof ShmemObject) {
        expect(pfn, `shared page of ${at}`).toBe(so.pages.get(vma!.pgoff_of(vpn * P)));
      } else {
        expect(objectPages.has(pfn), `private page of ${at}`).toBe(false);
      }
      if (pte_write(pte)) {
        expect(vma!.vm_flags & VM_WRITE, `writable ${at} in a read-only VMA`).not.toBe(0);
        if (!(vma!.vm_flags & VM_SHARED)) privWritable.push(pfn);
      }
    }
    expect(mm.rss, `rss of pid ${proc.pid} ${where}`).toBe(rss);
  }
  for (const so of objects) {
    for (const pfn of so.pages.values()) refs.set(pfn, (refs.get(pfn) ?? 0) + 1);
  }
  for (const [pfn, n] of refs) {
    expect(ram.page_count(pfn), `refcount of pfn ${pfn} ${where}`).toBe(n);
    expect(ram.page_mapcount(pfn), `mapcount of pfn ${pfn} ${where}`).toBe(maps.get(pfn) ?? 0);
  }
  for (const pfn of privWritable) {
    expect(ram.page_mapcount(pfn), `private writable PTE to a shared frame ${where}`).toBe(1);
  }
  const stray: number[] = [];
  ram.forEachUsedFrame((pfn) => {
    if (!refs.has(pfn)) stray.push(pfn);
  });
  expect(stray, `frames nobody references ${where}`).toEqual([]);
  expect(ram.usedPages).toBe(refs.size);
  const c = ram.recount();
  expect(c).toEqual({ freePages: ram.freePages, usedPages: ram.usedPages, pinnedPages: ram.pinnedPages });
  expect(ram.pinnedPages).toBe(0);
}

// ------------------------------------------------------------------------------------------------
// Operations.

const RW = PROT_READ | PROT_WRITE;
const PROTS = [PROT_NONE, PROT_READ, PROT_WRITE, RW, RW, RW, RW, PROT_EXEC, PROT_READ | PROT_EXEC, 7];

type Op =
  | {
      t: 'mmap';
      p: number;
      mode: number;
      at: number;
      pages: number;
      extra: number;
      prot: number;
      shared: boolean;
      odd: number;
      /** MAP_LOCKED / MAP_GROWSDOWN bits. */
      extraFlags?: number;
      /** With MAP_LOCKED: a size around the 64 KiB RLIMIT_MEMLOCK (14..18 pages). */
      big?: boolean;
    }
  | { t: 'munmap'; p: number; sel: number; at: number; pages: number; odd: number }
  | { t: 'mprotect'; p: number; sel: number; at: number; pages: number; prot: number; odd: number }
  | { t: 'madvise'; p: number; sel: number; at: number; pages: number; advice: number }
  | { t: 'mremap'; p: number; sel: number; off: number; old: number; neu: number; mode: number; to: number }
  | { t: 'fork'; p: number }
  | { t: 'read'; p: number; sel: number; at: number; off: number; len: number }
  | { t: 'write'; p: number; sel: number; at: number; off: number; len: number; fill: number }
  | { t: 'setuid'; p: number }
  | { t: 'exit'; p: number };

const proc = fc.nat(7);
/** Below 7: aim at (or just past) an existing VMA of the process; otherwise anywhere in the window. */
const sel = fc.nat(9);
const at = fc.integer({ min: 0, max: WSIZE - 1 });
const pages = fc.integer({ min: 0, max: 9 });
const protArb = fc.constantFrom(...PROTS);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      t: fc.constant('mmap' as const),
      p: proc,
      mode: fc.integer({ min: 0, max: 2 }),
      at,
      pages,
      extra: fc.constantFrom(0, 0, 0, 1, 4000),
      prot: protArb,
      shared: fc.boolean(),
      odd: fc.integer({ min: 0, max: 39 }),
      extraFlags: fc.constantFrom(
        0,
        0,
        0,
        0,
        0,
        MAP_LOCKED,
        MAP_LOCKED,
        MAP_GROWSDOWN,
        MAP_GROWSDOWN,
        MAP_LOCKED | MAP_GROWSDOWN,
      ),
      big: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('munmap' as const),
      p: proc,
      sel,
      at,
      pages,
      odd: fc.integer({ min: 0, max: 19 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('mprotect' as const),
      p: proc,
      sel,
      at,
      pages,
      prot: protArb,
      odd: fc.integer({ min: 0, max: 19 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('madvise' as const),
      p: proc,
      sel,
      at,
      pages,
      advice: fc.constantFrom(MADV_DONTNEED, MADV_DONTNEED, MADV_DONTFORK, MADV_DOFORK, MADV_REMOVE, 7),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('mremap' as const),
      p: proc,
      sel: fc.nat(9),
      off: fc.nat(9),
      old: fc.integer({ min: -1, max: 6 }),
      neu: fc.integer({ min: 0, max: 8 }),
      mode: fc.integer({ min: 0, max: 5 }),
      to: at,
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('fork' as const), p: proc }) },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('read' as const),
      p: proc,
      sel,
      at,
      off: fc.nat(P - 1),
      len: fc.integer({ min: 1, max: 3 * P }),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('write' as const),
      p: proc,
      sel,
      at,
      off: fc.nat(P - 1),
      len: fc.integer({ min: 1, max: 3 * P }),
      fill: fc.integer({ min: 1, max: 255 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('setuid' as const), p: proc }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('exit' as const), p: proc }) },
);

/** The page an operation aims at: usually in or at the edge of one of the process's VMAs. */
function target(mp: MProc, sel: number, at: number): number {
  if (sel < 7 && mp.vmas.length > 0) {
    const v = mp.vmas[sel % mp.vmas.length]!;
    return v.start + (at % (v.end - v.start + 2)) - (at % 5 === 0 ? 1 : 0);
  }
  return WBASE + at;
}

function pattern(len: number, fill: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (fill + i * 7) & 0xff || 1;
  return b;
}

/**
 * The prot of an mprotect: odd 2 adds an unknown bit, 3-6 PROT_GROWSDOWN, 7 PROT_GROWSUP, 8 both.
 */
function mprotectProt(prot: number, odd: number): number {
  if (odd === 2) return prot | 0x10;
  if (odd >= 3 && odd <= 6) return prot | PROT_GROWSDOWN;
  if (odd === 7) return prot | PROT_GROWSUP;
  if (odd === 8) return prot | PROT_GROWSDOWN | PROT_GROWSUP;
  return prot;
}

/** STATS: which of the stack and lock cases an operation exercised. */
function statsTag(op: Op, p: Process): string {
  const who = p.uid === 0 ? '/root' : '';
  if (op.t === 'mmap' && (op.extraFlags ?? 0) & MAP_LOCKED) return `(locked${op.big ? ' big' : ''}${who})`;
  if (op.t === 'mmap' && (op.extraFlags ?? 0) & MAP_GROWSDOWN) return '(growsdown)';
  if (op.t === 'mprotect' && op.odd >= 3 && op.odd <= 8)
    return `(${['', '', '', 'down', 'down', 'down', 'down', 'up', 'both'][op.odd]})`;
  if (op.t === 'mremap' && p.mm!.locked_vm) return `(locked${who})`;
  return '';
}

/**
 * Runs one sequence on a fresh machine and on the model, checking after every step. `root`: the
 * first process (and every fresh one) runs as uid 0, with CAP_IPC_LOCK.
 */
function runSequence(ops: Op[], root = false): void {
  const m = Machine.boot({ seed: 1, ramBytes: 64 << 20 });
  const procs: MProc[] = [];
  const objs = new Map<ShmemObject, MObj>();
  const spawn = (): void => {
    procs.push({ proc: m.spawn({ uid: root ? 0 : 1000 }), vmas: [], priv: new Map(), lockedVm: 0 });
  };
  /** Pairs the machine's shmem objects with the model's (a fresh shared mapping creates one). */
  const learnObjects = (mp: MProc): void => {
    for (const v of mp.proc.mm!.mm_rb) {
      const so = v.vm_file?.private_data;
      if (!(so instanceof ShmemObject) || objs.has(so)) continue;
      const mv = containing(mp.vmas, v.start / P);
      if (mv?.obj) objs.set(so, mv.obj);
    }
  };
  spawn();
  ops.forEach((op, i) => {
    if (procs.length === 0) spawn();
    const mp = procs[op.p % procs.length]!;
    const p = mp.proc;
    const where = `after op ${i} ${JSON.stringify(op)}`;
    let want: Outcome;
    let got: Outcome;
    switch (op.t) {
      case 'mmap': {
        let addr = op.mode === 0 ? 0 : (WBASE + op.at) * P;
        const extraFlags = op.extraFlags ?? 0;
        const pages = extraFlags & MAP_LOCKED && op.big ? 14 + (op.at % 5) : op.pages;
        let len = pages * P + op.extra;
        let flags =
          MAP_ANONYMOUS |
          (op.shared ? MAP_SHARED : MAP_PRIVATE) |
          (op.mode === 2 ? MAP_FIXED : 0) |
          extraFlags;
        if (op.odd === 0) flags |= MAP_SHARED | MAP_PRIVATE;
        if (op.odd === 1 && op.mode === 2) addr += 100;
        if (op.odd === 2 && op.mode === 2) addr = P;
        if (op.odd === 3) len = 2 ** 50;
        if (op.odd === 4 && op.mode === 1) addr += 123;
        want = modelMmap(mp, addr, len, op.prot, flags);
        got = run(() => p.mmap(addr, len, op.prot, flags));
        learnObjects(mp);
        break;
      }
      case 'munmap': {
        const addr = target(mp, op.sel, op.at) * P + (op.odd === 0 ? 8 : 0);
        const len = op.pages * P + (op.odd === 1 ? 5 : 0);
        want = modelMunmap(mp, addr, len);
        got = run(() => p.munmap(addr, len));
        break;
      }
      case 'mprotect': {
        const addr = target(mp, op.sel, op.at) * P + (op.odd === 0 ? 8 : 0);
        const len = op.pages * P + (op.odd === 1 ? 5 : 0);
        const prot = mprotectProt(op.prot, op.odd);
        want = modelMprotect(mp, addr, len, prot);
        got = run(() => p.mprotect(addr, len, prot));
        break;
      }
      case 'madvise': {
        const addr = target(mp, op.sel, op.at) * P;
        const len = op.pages * P;
        want = modelMadvise(mp, addr, len, op.advice);
        got = run(() => p.madvise(addr, len, op.advice));
        break;
      }
      case 'mremap': {
        // Mostly from the start or inside of an existing VMA, so that the interesting paths run.
        let addr = (WBASE + op.sel * 6) * P;
        const v = mp.vmas.length ? mp.vmas[op.sel % mp.vmas.length]! : undefined;
        if (v && op.sel < 8) addr = (v.start + (op.off % 3 === 0 ? 0 : op.off % (v.end - v.start))) * P;
        const vEnd = v && op.sel < 8 ? v.end * P : addr + P;
        const oldLen = op.old < 0 ? Math.max(0, vEnd - addr) : op.old * P;
        const newLen = op.neu * P + (op.mode === 5 ? 3 : 0);
        const flags = [0, MREMAP_MAYMOVE, MREMAP_MAYMOVE, MREMAP_MAYMOVE | MREMAP_FIXED, MREMAP_FIXED, 4][
          op.mode
        ]!;
        const to = (WBASE + op.to) * P;
        want = modelMremap(mp, addr, oldLen, newLen, flags, to);
        got = run(() => p.mremap(addr, oldLen, newLen, flags, to));
        break;
      }
      case 'fork': {
        let child: Process | undefined;
        got = run(() => {
          child = p.fork();
          return 0;
        });
        want = ok(0);
        if (child) procs.push(modelFork(mp, child));
        break;
      }
      case 'read': {
        const addr = target(mp, op.sel, op.at) * P + op.off;
        want = modelAccess(mp, addr, op.len, null);
        got = run(() => p.read(addr, op.len));
        break;
      }
      case 'write': {
        const addr = target(mp, op.sel, op.at) * P + op.off;
        const bytes = pattern(op.len, op.fill);
        want = modelAccess(mp, addr, op.len, bytes);
        got = run(() => p.write(addr, bytes));
        break;
      }
      case 'setuid': {
        // Dropping root drops CAP_IPC_LOCK; what is locked stays locked and counted.
        got = run(() => p.setuid(1000));
        want = ok(0);
        break;
      }
      case 'exit': {
        p.exit();
        procs.splice(procs.indexOf(mp), 1);
        want = got = ok(0);
        break;
      }
    }
    expect(got, where).toEqual(want);
    if (process.env.STATS) {
      const k = `${op.t}${statsTag(op, p)}:${Object.keys(got)[0]}${'errno' in got ? got.errno : ''}${'signal' in got ? got.signal : ''}`;
      STATS.set(k, (STATS.get(k) ?? 0) + 1);
    }
    for (const q of procs) checkVmas(q, objs, where);
    checkFrames(
      m,
      procs.map((q) => q.proc),
      where,
    );
  });
  // Read back every page the model says is accessible (faulting it in), then check again.
  for (const mp of procs) {
    for (const v of [...mp.vmas]) {
      for (let pg = v.start; pg < v.end; pg++) {
        const want = modelAccess(mp, pg * P, P, null);
        const got = run(() => mp.proc.read(pg * P, P));
        expect(got, `final read of ${(pg * P).toString(16)} in pid ${mp.proc.pid}`).toEqual(want);
      }
    }
    checkVmas(mp, objs, 'after the final read');
  }
  checkFrames(
    m,
    procs.map((q) => q.proc),
    'after the final read',
  );
  expect(m.shutdown()).toEqual([]);
  expect(m.meminfo().freePages).toBe(m.meminfo().totalPages);
}

describe('process memory against a reference model', () => {
  it(`random mmap/munmap/mprotect/madvise/mremap/fork/read/write/setuid/exit sequences (seed ${SEED}, ${RUNS} runs)`, () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { minLength: 1, maxLength: 40, size: 'max' }),
        fc.boolean(),
        (ops, root) => {
          runSequence(ops, root);
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
    if (process.env.STATS)
      console.log(
        [...STATS]
          .sort()
          .map(([k, v]) => `${k} ${v}`)
          .join('\n'),
      );
  });

  it('the read-back fails when a byte of a frame is changed behind the machine', () => {
    // The same checks must fail when the machine and the model disagree: corrupt one byte behind
    // the machine's back and the final read-back reports it.
    const ops: Op[] = [
      {
        t: 'mmap',
        p: 0,
        mode: 0,
        at: 0,
        pages: 1,
        extra: 0,
        prot: PROT_READ | PROT_WRITE,
        shared: false,
        odd: 9,
      },
      { t: 'write', p: 0, sel: 9, at: 55, off: 0, len: 16, fill: 3 },
    ];
    expect(() => {
      runSequenceWith(ops, (m, procs) => {
        const mm = procs[0]!.proc.mm!;
        const pte = [...mm.pgd.values()][0]!;
        const frame = m.ram.frame(pte_pfn(pte));
        frame[0] = frame[0]! ^ 0xff;
      });
    }).toThrow(/final read/);
  });
});

// ------------------------------------------------------------------------------------------------
// Concurrency: user threads of two processes (parent and child) interleaved by the machine's
// seeded scheduler, with a notifier that sleeps in its callbacks and a thread pinning pages with
// the lockless gup. Without a byte model, the invariants must hold: no finding, frame accounting
// and coherence as above, a clean shutdown.

interface TOp {
  k: number;
  at: number;
  n: number;
  x: number;
}
const tOp: fc.Arbitrary<TOp> = fc.record({
  k: fc.nat(9),
  at: fc.nat(31),
  n: fc.integer({ min: 1, max: 6 }),
  x: fc.nat(7),
});
const TW = MMAP_BASE / P - 32;

function* threadBody(api: UserApi, ops: TOp[]): Generator<Point, number, void> {
  for (const o of ops) {
    const a = (TW + o.at) * P;
    const prot = [PROT_NONE, PROT_READ, RW, RW][o.x % 4]!;
    // Some mappings are locked (and populated after mmap_sem is dropped) or grow down.
    const extra = (o.at % 3 === 0 ? MAP_LOCKED : 0) | (o.at % 4 === 1 ? MAP_GROWSDOWN : 0);
    switch (o.k) {
      case 0:
        yield* api.mmap(
          a,
          o.n * P,
          prot,
          (o.x & 4 ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_FIXED | extra,
        );
        break;
      case 1:
        yield* api.munmap(a, o.n * P);
        break;
      case 2:
        yield* api.mprotect(a, o.n * P, prot | (o.at % 4 === 1 ? PROT_GROWSDOWN : 0));
        break;
      case 3:
        yield* api.madvise(
          a,
          o.n * P,
          [MADV_DONTNEED, MADV_DONTNEED, MADV_REMOVE, MADV_DONTFORK, MADV_DOFORK][o.x % 5]!,
        );
        break;
      case 4:
        yield* api.mremap(
          a,
          o.n * P,
          (o.x + 1) * P,
          [0, MREMAP_MAYMOVE, MREMAP_MAYMOVE | MREMAP_FIXED][o.x % 3]!,
          (TW + ((o.at + 8) % 32)) * P,
        );
        break;
      case 5:
      case 6:
        yield* api.write(a + o.x * 100, new Uint8Array(o.n * 1000).fill(o.x + 1));
        break;
      default:
        yield* api.read(a + o.x * 100, o.n * 1000);
    }
  }
  return 0;
}

function runConcurrent(lists: TOp[][], seed: number, fork: boolean): void {
  const m = Machine.boot({ seed, ramBytes: 64 << 20 });
  const p = m.spawn();
  p.mmap(TW * P, 32 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  p.write(TW * P, new Uint8Array(32 * P).fill(9));
  const procs = fork ? [p, p.fork()] : [p];
  const notifiers = procs.map((q) => {
    const mn = new MmuNotifier({
      *invalidate_range_start(): KGen {
        yield { op: 'test_callback' };
        yield { op: 'test_callback' };
      },
      *invalidate_range_end(): KGen {
        yield { op: 'test_callback' };
      },
    });
    expect(m.syscall(q, 'register', mmu_notifier_register(mn, q.mm!))).toBe(0);
    return mn;
  });
  const mm = p.mm!;
  const pinner = p.thread('pinner', function* () {
    for (let i = 0; i < 20; i++) {
      const pages: number[] = [];
      __get_user_pages_fast(mm, (TW + (i % 8) * 4) * P, 4, i % 2 === 0, pages);
      yield { op: 'hold_pins' };
      yield { op: 'hold_pins' };
      release_user_pages(m.ram, pages, true);
    }
    return 0;
  });
  const threads = lists.map((ops, i) =>
    procs[i % procs.length]!.thread(`t${i}`, (api) => threadBody(api, ops)),
  );
  m.run();
  for (const t of [pinner, ...threads]) {
    expect(t.error).toBeUndefined();
    expect(t.done).toBe(true);
  }
  expect(m.findings()).toEqual([]);
  checkFrames(m, procs, 'after the threads ran');
  for (const q of procs) checkLockedVm(q, 'after the threads ran');
  procs.forEach((q, i) => m.syscall(q, 'unregister', mmu_notifier_unregister(notifiers[i]!, q.mm!)));
  expect(m.shutdown()).toEqual([]);
  expect(m.meminfo().freePages).toBe(m.meminfo().totalPages);
}

describe('process memory under concurrency', () => {
  it(`interleaved threads keep frames, coherence and shutdown clean (seed ${SEED}, ${Math.ceil(RUNS / 2)} runs)`, () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(tOp, { maxLength: 25, size: 'max' }), { minLength: 2, maxLength: 4 }),
        fc.nat(1 << 20),
        fc.boolean(),
        (lists, seed, fork) => {
          runConcurrent(lists, seed, fork);
        },
      ),
      { seed: SEED, numRuns: Math.ceil(RUNS / 2) },
    );
  });
});

/** runSequence with a hook run between the operations and the final read-back (test of the test). */
function runSequenceWith(ops: Op[], hook: (m: Machine, procs: MProc[]) => void): void {
  const m = Machine.boot({ seed: 1, ramBytes: 64 << 20 });
  const procs: MProc[] = [{ proc: m.spawn(), vmas: [], priv: new Map(), lockedVm: 0 }];
  const mp = procs[0]!;
  for (const op of ops) {
    if (op.t === 'mmap') {
      expect(run(() => mp.proc.mmap(0, op.pages * P, op.prot, MAP_PRIVATE | MAP_ANONYMOUS))).toEqual(
        modelMmap(mp, 0, op.pages * P, op.prot, MAP_PRIVATE | MAP_ANONYMOUS),
      );
    } else if (op.t === 'write') {
      const addr = (WBASE + op.at) * P + op.off;
      const bytes = pattern(op.len, op.fill);
      expect(run(() => mp.proc.write(addr, bytes))).toEqual(modelAccess(mp, addr, op.len, bytes));
    }
  }
  hook(m, procs);
  for (const v of mp.vmas) {
    for (let pg = v.start; pg < v.end; pg++) {
      const want = modelAccess(mp, pg * P, P, null);
      expect(
        run(() => mp.proc.read(pg * P, P)),
        `final read of ${(pg * P).toString(16)}`,
      ).toEqual(want);
    }
  }
}
