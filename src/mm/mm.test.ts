/**
 * Unit tests of process memory: the address allocator, MAP_FIXED, VMA split and merge, mremap,
 * every errno path of the memory syscalls in 3.16's check order, get_user_pages and its lockless
 * variant, uaccess, MADV_DONTNEED / MADV_REMOVE / MADV_DONTFORK semantics, mm reference counts.
 */
import { describe, expect, it } from 'vitest';
import { ErrnoError, Machine, type Process, SegfaultError, uapi, user } from '../index.js';
import type { KGen } from '../sched/task.js';
import { __get_user_pages_fast, get_user_pages, release_user_pages } from './gup.js';
import { vm_insert_pfn } from './memory.js';
import { mmget, mmput } from './mm.js';
import {
  MMAP_BASE,
  MMAP_MIN_ADDR,
  type MmStruct,
  TASK_SIZE,
  VM_ACCOUNT,
  VM_DONTCOPY,
  VM_GROWSDOWN,
  VM_IO,
  VM_LOCKED,
  VM_MAYREAD,
  VM_MAYWRITE,
  VM_MERGEABLE,
  VM_PFNMAP,
  VM_RAND_READ,
  VM_READ,
  VM_SEQ_READ,
  VM_WRITE,
  VmAreaStruct,
  pte_pfn,
  pte_write,
} from './mm_types.js';
import { ShmemObject } from './shmem.js';
import { access_ok, copy_from_user, copy_to_user } from './uaccess.js';

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
  MAP_POPULATE,
  MAP_NONBLOCK,
  MADV_DONTNEED,
  MADV_DONTFORK,
  MADV_DOFORK,
  MADV_REMOVE,
  MREMAP_MAYMOVE,
  MREMAP_FIXED,
} = uapi;
const RW = PROT_READ | PROT_WRITE;
const PRIV = MAP_PRIVATE | MAP_ANONYMOUS;
const SHARED = MAP_SHARED | MAP_ANONYMOUS;
/** A free area far from mmap_base, for MAP_FIXED layouts. */
const AREA = 0x7f0000000000;

function boot(): { m: Machine; p: Process } {
  const m = Machine.boot({ seed: 7 });
  return { m, p: m.spawn() };
}

/** The errno code a call throws, or 'ok'. */
function code(f: () => unknown): string {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (e instanceof ErrnoError) return e.code;
    if (e instanceof SegfaultError) return e.signal;
    throw e;
  }
}

/** [start, end, vm_flags & mask] of every VMA. */
function layout(p: Process, mask = VM_READ | VM_WRITE | 4): [number, number, number][] {
  return [...p.mm!.mm_rb].map((v) => [v.start, v.end, v.vm_flags & mask]);
}

function gup(
  m: Machine,
  p: Process,
  start: number,
  n: number,
  write: boolean,
  force = false,
): { r: number; pages: number[] } {
  const mm = p.mm!;
  const pages: number[] = [];
  const r = m.syscall(
    p,
    'gup',
    (function* (): KGen<number> {
      yield* mm.mmap_sem.down_read();
      const ret = yield* get_user_pages(mm, start, n, write, force, pages);
      mm.mmap_sem.up_read();
      return ret;
    })(),
  );
  return { r, pages };
}

function release(m: Machine, pages: number[]): void {
  release_user_pages(m.ram, pages, false);
}

function pfnAt(mm: MmStruct, addr: number): number {
  const pte = mm.pgd.get(addr / P);
  return pte === undefined ? -1 : pte_pfn(pte);
}

describe('address allocation', () => {
  it('allocates top-down from mmap_base, honours free hints and rounds them', () => {
    const { m, p } = boot();
    expect(p.mmap(0, 3 * P, RW, PRIV)).toBe(MMAP_BASE - 3 * P);
    // Different flags: no merge; placed right below.
    expect(p.mmap(0, P + 1, PROT_READ, PRIV)).toBe(MMAP_BASE - 5 * P);
    expect(p.mm!.map_count).toBe(2);
    // A free hint is taken (rounded down to its page); an occupied one falls back to top-down.
    expect(p.mmap(AREA + 123, P, RW, PRIV)).toBe(AREA);
    expect(p.mmap(MMAP_BASE - 2 * P, P, RW, PRIV)).toBe(MMAP_BASE - 6 * P);
    // A hint below mmap_min_addr is raised to it (round_hint_to_min).
    expect(p.mmap(0x1000, P, RW, PRIV)).toBe(MMAP_MIN_ADDR);
    // The highest hole that fits is reused.
    p.munmap(MMAP_BASE - 5 * P, 2 * P);
    expect(p.mmap(0, 2 * P, PROT_EXEC, PRIV)).toBe(MMAP_BASE - 5 * P);
    expect(p.mmap(0, 3 * P, PROT_EXEC, PRIV)).toBe(MMAP_BASE - 9 * P);
    expect(m.shutdown()).toEqual([]);
  });

  it('MAP_FIXED replaces what was there: new zero pages, old frames freed', () => {
    const { m, p } = boot();
    const free0 = m.meminfo().freePages;
    const a = p.mmap(AREA, 4 * P, RW, PRIV | MAP_FIXED);
    expect(a).toBe(AREA);
    p.write(a, new Uint8Array(4 * P).fill(9));
    expect(m.meminfo().freePages).toBe(free0 - 4);
    expect(p.mmap(a + P, 2 * P, PROT_READ, PRIV | MAP_FIXED)).toBe(a + P);
    expect(m.meminfo().freePages).toBe(free0 - 2);
    expect(layout(p)).toEqual([
      [a, a + P, RW],
      [a + P, a + 3 * P, PROT_READ],
      [a + 3 * P, a + 4 * P, RW],
    ]);
    expect([...p.read(a + P - 1, 2)]).toEqual([9, 0]);
    expect(p.read(a + 3 * P, 1)[0]).toBe(9);
    expect(m.shutdown()).toEqual([]);
  });

  it('MAP_FIXED below mmap_min_addr needs CAP_SYS_RAWIO (EPERM), unaligned is EINVAL', () => {
    const { m, p } = boot();
    expect(code(() => p.mmap(0x1000, P, RW, PRIV | MAP_FIXED))).toBe('EPERM');
    expect(code(() => p.mmap(AREA + 1, P, RW, PRIV | MAP_FIXED))).toBe('EINVAL');
    expect(code(() => p.mmap(TASK_SIZE - P, 2 * P, RW, PRIV | MAP_FIXED))).toBe('ENOMEM');
    const root = m.spawn({ uid: 0 });
    expect(root.mmap(0x1000, P, RW, PRIV | MAP_FIXED)).toBe(0x1000);
    root.write(0x1000, [1]);
    // The whole user range may be mapped with MAP_FIXED from mmap_min_addr up.
    expect(p.mmap(MMAP_MIN_ADDR, TASK_SIZE - MMAP_MIN_ADDR, PROT_NONE, PRIV | MAP_FIXED)).toBe(MMAP_MIN_ADDR);
    // Full: 3.16's top-down search still finds the gap below mmap_min_addr (its low limit is
    // PAGE_SIZE) and security_mmap_addr() then refuses it.
    expect(code(() => p.mmap(0, P, RW, PRIV))).toBe('EPERM');
    expect(code(() => p.mmap(0, 16 * P, RW, PRIV))).toBe('ENOMEM');
    expect(m.shutdown()).toEqual([]);
  });
});

describe('VMA split and merge', () => {
  it('mprotect splits and merges back; unchanged protection splits nothing', () => {
    const { m, p } = boot();
    const a = p.mmap(AREA, 8 * P, RW, PRIV | MAP_FIXED);
    p.mprotect(a + 2 * P, 2 * P, RW);
    expect(p.mm!.map_count).toBe(1);
    p.mprotect(a + 2 * P, 2 * P, PROT_READ);
    expect(layout(p)).toEqual([
      [a, a + 2 * P, RW],
      [a + 2 * P, a + 4 * P, PROT_READ],
      [a + 4 * P, a + 8 * P, RW],
    ]);
    p.mprotect(a + 2 * P, 2 * P, RW);
    expect(layout(p)).toEqual([[a, a + 8 * P, RW]]);
    expect(m.shutdown()).toEqual([]);
  });

  it('mprotect across two VMAs that merge on the way succeeds', () => {
    const { m, p } = boot();
    const a = p.mmap(AREA + 2 * P, 2 * P, PROT_READ, PRIV | MAP_FIXED);
    p.mmap(AREA, 2 * P, RW, PRIV | MAP_FIXED);
    p.mprotect(a, 2 * P, RW); // [AREA+2p, AREA+4p) becomes writable: accounted like the other
    expect(p.mm!.map_count).toBe(1);
    p.mmap(AREA + 4 * P, 2 * P, RW, PRIV | MAP_FIXED);
    p.mprotect(AREA + 4 * P, 2 * P, PROT_READ);
    // The first piece becomes PROT_READ and merges with the next VMA; the walk goes on after it.
    p.mprotect(AREA, 6 * P, PROT_READ);
    expect(layout(p)).toEqual([[AREA, AREA + 6 * P, PROT_READ]]);
    expect(m.shutdown()).toEqual([]);
  });

  it('a VMA that was writable stays apart from one that never was (VM_ACCOUNT)', () => {
    const { m, p } = boot();
    p.mmap(AREA, 2 * P, RW, PRIV | MAP_FIXED);
    p.mprotect(AREA, 2 * P, PROT_READ);
    p.mmap(AREA + 2 * P, 2 * P, PROT_READ, PRIV | MAP_FIXED);
    expect(layout(p, VM_READ | VM_WRITE | VM_ACCOUNT)).toEqual([
      [AREA, AREA + 2 * P, VM_READ | VM_ACCOUNT],
      [AREA + 2 * P, AREA + 4 * P, VM_READ],
    ]);
    // Once writable, both are accounted and merge.
    p.mprotect(AREA + 2 * P, 2 * P, RW);
    p.mprotect(AREA, 4 * P, PROT_READ);
    expect(layout(p, VM_READ | VM_WRITE | VM_ACCOUNT)).toEqual([[AREA, AREA + 4 * P, VM_READ | VM_ACCOUNT]]);
    // Shared mappings are never accounted.
    const s = p.mmap(0, P, RW, SHARED);
    expect(p.mm!.find_vma(s)!.vm_flags & VM_ACCOUNT).toBe(0);
    expect(m.shutdown()).toEqual([]);
  });

  it('munmap splits; adjacent anonymous mmaps merge; shared mappings do not merge with each other', () => {
    const { m, p } = boot();
    const a = p.mmap(AREA, 8 * P, RW, PRIV | MAP_FIXED);
    p.munmap(a + 3 * P, 2 * P);
    expect(p.mm!.map_count).toBe(2);
    p.mmap(a + 3 * P, 2 * P, RW, PRIV | MAP_FIXED);
    expect(layout(p)).toEqual([[a, a + 8 * P, RW]]);
    p.mmap(AREA + 16 * P, P, RW, SHARED | MAP_FIXED);
    p.mmap(AREA + 17 * P, P, RW, SHARED | MAP_FIXED);
    expect(p.mm!.map_count).toBe(3);
    expect(m.shutdown()).toEqual([]);
  });

  it('madvise flag advice splits and merges (DONTFORK, RANDOM, SEQUENTIAL, MERGEABLE)', () => {
    const { m, p } = boot();
    const a = p.mmap(AREA, 8 * P, RW, PRIV | MAP_FIXED);
    p.madvise(a + P, 2 * P, MADV_DONTFORK);
    expect(layout(p, VM_DONTCOPY)).toEqual([
      [a, a + P, 0],
      [a + P, a + 3 * P, VM_DONTCOPY],
      [a + 3 * P, a + 8 * P, 0],
    ]);
    p.madvise(a, 8 * P, MADV_DOFORK);
    expect(p.mm!.map_count).toBe(1);
    p.madvise(a + 4 * P, P, uapi.MADV_RANDOM);
    p.madvise(a + 5 * P, P, uapi.MADV_SEQUENTIAL);
    expect(layout(p, VM_RAND_READ | VM_SEQ_READ)).toEqual([
      [a, a + 4 * P, 0],
      [a + 4 * P, a + 5 * P, VM_RAND_READ],
      [a + 5 * P, a + 6 * P, VM_SEQ_READ],
      [a + 6 * P, a + 8 * P, 0],
    ]);
    p.madvise(a, 8 * P, uapi.MADV_NORMAL);
    expect(p.mm!.map_count).toBe(1);
    p.madvise(a, 2 * P, uapi.MADV_MERGEABLE);
    expect(layout(p, VM_MERGEABLE)).toEqual([
      [a, a + 2 * P, VM_MERGEABLE],
      [a + 2 * P, a + 8 * P, 0],
    ]);
    // KSM ignores shared memory.
    const s = p.mmap(0, P, RW, SHARED);
    p.madvise(s, P, uapi.MADV_MERGEABLE);
    expect(p.mm!.find_vma(s)!.vm_flags & VM_MERGEABLE).toBe(0);
    p.madvise(a, 8 * P, uapi.MADV_UNMERGEABLE);
    expect(p.mm!.map_count).toBe(2);
    expect(m.shutdown()).toEqual([]);
  });

  it('device (VM_SPECIAL) mappings never merge', () => {
    const { m, p } = boot();
    const mm = p.mm!;
    const flags = VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_IO | VM_PFNMAP;
    const v1 = new VmAreaStruct(mm, AREA, AREA + P, flags, AREA / P, null, null);
    mm.mm_rb.insert(v1);
    p.mmap(AREA + P, P, RW, PRIV | MAP_FIXED);
    p.mprotect(AREA + P, P, RW);
    const v2 = new VmAreaStruct(mm, AREA + 2 * P, AREA + 3 * P, flags, AREA / P + 2, null, null);
    mm.mm_rb.insert(v2);
    p.madvise(AREA + 2 * P, P, uapi.MADV_DONTDUMP);
    expect(mm.map_count).toBe(3);
    expect(code(() => p.madvise(AREA + 2 * P, P, uapi.MADV_DODUMP))).toBe('EINVAL');
    expect(code(() => p.madvise(AREA + 2 * P, P, MADV_DOFORK))).toBe('EINVAL');
    expect(code(() => p.madvise(AREA + 2 * P, P, MADV_DONTNEED))).toBe('EINVAL');
    expect(m.shutdown()).toEqual([]);
  });
});

describe('mremap', () => {
  it('grows in place when there is room, without merging into the next VMA', () => {
    const { m, p } = boot();
    const a = p.mmap(AREA, 2 * P, RW, PRIV | MAP_FIXED);
    p.write(a, [1, 2, 3]);
    p.mmap(a + 4 * P, 2 * P, RW, PRIV | MAP_FIXED);
    expect(p.mremap(a, 2 * P, 4 * P, 0)).toBe(a);
    // Linux's vma_adjust() does not merge here: two VMAs, end to end.
    expect(layout(p)).toEqual([
      [a, a + 4 * P, RW],
      [a + 4 * P, a + 6 * P, RW],
    ]);
    expect([...p.read(a, 3)]).toEqual([1, 2, 3]);
    expect(p.read(a + 3 * P, 1)[0]).toBe(0);
    expect(m.shutdown()).toEqual([]);
  });

  it('moves when it cannot grow: MAYMOVE picks a new place, the old one is gone', () => {
    const { m, p } = boot();
    const a = p.mmap(AREA, 2 * P, RW, PRIV | MAP_FIXED);
    p.mmap(a + 2 * P, P, PROT_READ, PRIV | MAP_FIXED);
    p.write(a + P, [5]);
    expect(code(() => p.mremap(a, 2 * P, 3 * P, 0))).toBe('ENOMEM');
    const b = p.mremap(a, 2 * P, 3 * P, MREMAP_MAYMOVE);
    expect(b).toBe(MMAP_BASE - 3 * P);
    expect(p.read(b + P, 1)[0]).toBe(5);
    expect(code(() => p.read(a, 1))).toBe('SIGSEGV');
    expect(p.mm!.map_count).toBe(2);
    expect(m.shutdown()).toEqual([]);
  });

  it('shrinks by unmapping the tail, even of a range that is not mapped', () => {
    const { m, p } = boot();
    const a = p.mmap(AREA, 4 * P, RW, PRIV | MAP_FIXED);
    expect(p.mremap(a, 4 * P, P, 0)).toBe(a);
    expect(layout(p)).toEqual([[a, a + P, RW]]);
    expect(p.mremap(AREA + 100 * P, 2 * P, P, 0)).toBe(AREA + 100 * P);
    expect(p.mremap(a, P, P, 0)).toBe(a);
    expect(m.shutdown()).toEqual([]);
  });

  it('MREMAP_FIXED moves onto a given place, replacing what was there', () => {
    const { m, p } = boot();
    const a = p.mmap(AREA, 2 * P, RW, PRIV | MAP_FIXED);
    p.write(a, [4]);
    const c = p.mmap(AREA + 16 * P, 4 * P, PROT_READ, PRIV | MAP_FIXED);
    expect(p.mremap(a, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, c + P)).toBe(c + P);
    expect(layout(p)).toEqual([
      [c, c + P, PROT_READ],
      [c + P, c + 3 * P, RW],
      [c + 3 * P, c + 4 * P, PROT_READ],
    ]);
    expect(p.read(c + P, 1)[0]).toBe(4);
    expect(m.shutdown()).toEqual([]);
  });

  it('a never-faulted anonymous VMA takes its new place’s offset and merges; a faulted one keeps its own', () => {
    const { m, p } = boot();
    p.mmap(AREA, 2 * P, RW, PRIV | MAP_FIXED);
    const b = p.mmap(AREA + 8 * P, 2 * P, RW, PRIV | MAP_FIXED);
    expect(p.mremap(b, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, AREA + 2 * P)).toBe(AREA + 2 * P);
    expect(layout(p)).toEqual([[AREA, AREA + 4 * P, RW]]);
    const c = p.mmap(AREA + 16 * P, 2 * P, RW, PRIV | MAP_FIXED);
    p.write(c, [1]);
    expect(p.mremap(c, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, AREA + 4 * P)).toBe(AREA + 4 * P);
    expect(p.mm!.map_count).toBe(2);
    expect(p.read(AREA + 4 * P, 1)[0]).toBe(1);
    expect(m.shutdown()).toEqual([]);
  });

  it('old_len 0 duplicates a shared mapping', () => {
    const { m, p } = boot();
    const s = p.mmap(0, 2 * P, RW, SHARED);
    p.write(s + P, [8]);
    const d = p.mremap(s, 0, 2 * P, MREMAP_MAYMOVE);
    expect(d).not.toBe(s);
    expect(p.read(d + P, 1)[0]).toBe(8);
    p.write(d, [3]);
    expect(p.read(s, 1)[0]).toBe(3);
    expect(m.shutdown()).toEqual([]);
  });

  it('growing a shared mapping beyond its object gives SIGBUS there', () => {
    const { m, p } = boot();
    const s = p.mmap(AREA, 2 * P, RW, SHARED | MAP_FIXED);
    expect(p.mremap(s, 2 * P, 3 * P, 0)).toBe(s);
    p.write(s + P, [1]);
    expect(() => p.write(s + 2 * P, [1])).toThrow(SegfaultError);
    expect(code(() => p.read(s + 2 * P, 1))).toBe('SIGBUS');
    // Shrinking keeps the object: growing back shows the same data.
    p.mremap(s, 3 * P, P, 0);
    p.mremap(s, P, 2 * P, 0);
    expect(p.read(s + P, 1)[0]).toBe(1);
    expect(m.shutdown()).toEqual([]);
  });

  it('errno paths in 3.16 order', () => {
    const { m, p } = boot();
    const a = p.mmap(AREA, 2 * P, RW, PRIV | MAP_FIXED);
    p.mmap(a + 2 * P, 2 * P, PROT_READ, PRIV | MAP_FIXED);
    expect(code(() => p.mremap(a, P, P, 8))).toBe('EINVAL');
    expect(code(() => p.mremap(a, P, P, MREMAP_FIXED, AREA + 64 * P))).toBe('EINVAL');
    expect(code(() => p.mremap(a + 1, P, P, 0))).toBe('EINVAL');
    expect(code(() => p.mremap(a, P, 0, 0))).toBe('EINVAL');
    // Growing: a hole, a range across two VMAs.
    expect(code(() => p.mremap(AREA + 64 * P, P, 2 * P, MREMAP_MAYMOVE))).toBe('EFAULT');
    expect(code(() => p.mremap(a, 3 * P, 4 * P, MREMAP_MAYMOVE))).toBe('EFAULT');
    // MREMAP_FIXED: unaligned, beyond user space, overlapping the old range (either way).
    const F = MREMAP_MAYMOVE | MREMAP_FIXED;
    expect(code(() => p.mremap(a, P, P, F, AREA + 64 * P + 1))).toBe('EINVAL');
    expect(code(() => p.mremap(a, P, 2 * P, F, TASK_SIZE - P))).toBe('EINVAL');
    expect(code(() => p.mremap(a, 2 * P, 2 * P, F, a + P))).toBe('EINVAL');
    expect(code(() => p.mremap(a + P, P, 2 * P, F, a))).toBe('EINVAL');
    expect(code(() => p.mremap(a, 0, P, F, a))).toBe('EINVAL');
    // A length that wraps to 0 as an unsigned long.
    expect(code(() => p.mremap(a, -1, 2 * P, 0))).toBe('ENOMEM');
    expect(layout(p)).toEqual([
      [a, a + 2 * P, RW],
      [a + 2 * P, a + 4 * P, PROT_READ],
    ]);
    expect(m.shutdown()).toEqual([]);
  });
});

describe('errno paths', () => {
  it('mmap', () => {
    const { m, p } = boot();
    expect(code(() => p.mmap(0, 0, RW, PRIV))).toBe('EINVAL');
    expect(code(() => p.mmap(0, 0, RW, MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS))).toBe('EINVAL');
    expect(code(() => p.mmap(0, P, RW, MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS))).toBe('EINVAL');
    expect(code(() => p.mmap(0, P, RW, MAP_ANONYMOUS))).toBe('EINVAL');
    // The address search comes before the type check.
    expect(code(() => p.mmap(0, 2 ** 48, RW, MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS))).toBe('ENOMEM');
    expect(code(() => p.mmap(0, -1, RW, PRIV))).toBe('ENOMEM');
    expect(code(() => p.mmap(0, P, RW, PRIV, -1, 100))).toBe('EINVAL');
    expect(code(() => p.mmap(0, P, RW, MAP_PRIVATE))).toBe('EBADF');
    expect(code(() => p.mmap(0, P, RW, MAP_PRIVATE, 5))).toBe('EBADF');
    expect(p.mm!.map_count).toBe(0);
    expect(m.shutdown()).toEqual([]);
  });

  it('munmap', () => {
    const { m, p } = boot();
    const a = p.mmap(AREA, 2 * P, RW, PRIV | MAP_FIXED);
    expect(code(() => p.munmap(a + 1, P))).toBe('EINVAL');
    expect(code(() => p.munmap(a, 0))).toBe('EINVAL');
    expect(code(() => p.munmap(TASK_SIZE + P, P))).toBe('EINVAL');
    expect(code(() => p.munmap(TASK_SIZE - P, 2 * P))).toBe('EINVAL');
    expect(code(() => p.munmap(AREA + 100 * P, P))).toBe('ok');
    expect(p.mm!.map_count).toBe(1);
    expect(code(() => p.munmap(a, 1))).toBe('ok');
    expect(layout(p)).toEqual([[a + P, a + 2 * P, RW]]);
    expect(m.shutdown()).toEqual([]);
  });

  it('mprotect', () => {
    const { m, p } = boot();
    const a = p.mmap(AREA, 2 * P, RW, PRIV | MAP_FIXED);
    expect(code(() => p.mprotect(a + 1, 0, PROT_READ))).toBe('EINVAL');
    expect(code(() => p.mprotect(a, 0, 0x40))).toBe('ok');
    expect(code(() => p.mprotect(a, P, 0x40))).toBe('EINVAL');
    expect(code(() => p.mprotect(a, P, PROT_READ | uapi.PROT_GROWSDOWN | uapi.PROT_GROWSUP))).toBe('EINVAL');
    expect(code(() => p.mprotect(AREA + 64 * P, 0, PROT_READ))).toBe('ok');
    expect(code(() => p.mprotect(AREA + 64 * P, P, PROT_READ))).toBe('ENOMEM');
    expect(code(() => p.mprotect(a - P, 2 * P, PROT_READ))).toBe('ENOMEM');
    // A length that wraps: ENOMEM before anything changes.
    expect(code(() => p.mprotect(a, -P, PROT_READ))).toBe('ENOMEM');
    expect(code(() => p.mprotect(a, -1, PROT_READ))).toBe('ENOMEM');
    expect(layout(p)).toEqual([[a, a + 2 * P, RW]]);
    // PROT_SEM is accepted and ignored.
    expect(code(() => p.mprotect(a, 2 * P, RW | uapi.PROT_SEM))).toBe('ok');
    // The part before a hole is changed, then ENOMEM.
    expect(code(() => p.mprotect(a, 3 * P, PROT_READ))).toBe('ENOMEM');
    expect(layout(p)).toEqual([[a, a + 2 * P, PROT_READ]]);
    expect(code(() => p.write(a, [1]))).toBe('SIGSEGV');
    expect(m.shutdown()).toEqual([]);
  });

  it('madvise', () => {
    const { m, p } = boot();
    const a = p.mmap(AREA, 2 * P, RW, PRIV | MAP_FIXED);
    const b = p.mmap(AREA + 3 * P, P, RW, PRIV | MAP_FIXED);
    p.write(a, new Uint8Array(2 * P).fill(1));
    p.write(b, [2]);
    expect(code(() => p.madvise(a + 1, P, 99))).toBe('EINVAL');
    expect(code(() => p.madvise(a, P, uapi.MADV_FREE))).toBe('EINVAL');
    expect(code(() => p.madvise(a + 1, P, MADV_DONTNEED))).toBe('EINVAL');
    expect(code(() => p.madvise(a, -1, MADV_DONTNEED))).toBe('EINVAL');
    expect(code(() => p.madvise(a, 0, MADV_DONTNEED))).toBe('ok');
    expect(code(() => p.madvise(AREA + 64 * P, P, MADV_DONTNEED))).toBe('ENOMEM');
    expect(code(() => p.madvise(AREA - 4 * P, 2 * P, MADV_DONTNEED))).toBe('ENOMEM');
    expect(p.read(a, 1)[0]).toBe(1);
    // A range with a hole: applied to the mapped parts on both sides, then ENOMEM.
    expect(code(() => p.madvise(a + P, 3 * P, MADV_DONTNEED))).toBe('ENOMEM');
    expect([p.read(a, 1)[0], p.read(a + P, 1)[0], p.read(b, 1)[0]]).toEqual([1, 0, 0]);
    expect(code(() => p.madvise(a, P, uapi.MADV_WILLNEED))).toBe('ok');
    // THP advice: EINVAL when already set, and for shared memory.
    expect(code(() => p.madvise(a, P, uapi.MADV_HUGEPAGE))).toBe('ok');
    expect(code(() => p.madvise(a, P, uapi.MADV_HUGEPAGE))).toBe('EINVAL');
    expect(code(() => p.madvise(a, P, uapi.MADV_NOHUGEPAGE))).toBe('ok');
    expect(code(() => p.madvise(a, P, uapi.MADV_NOHUGEPAGE))).toBe('EINVAL');
    const s = p.mmap(0, P, RW, SHARED);
    expect(code(() => p.madvise(s, P, uapi.MADV_HUGEPAGE))).toBe('EINVAL');
    // MADV_REMOVE needs a shared writable file mapping.
    expect(code(() => p.madvise(a, P, MADV_REMOVE))).toBe('EINVAL');
    p.mprotect(s, P, PROT_READ);
    expect(code(() => p.madvise(s, P, MADV_REMOVE))).toBe('EACCES');
    expect(m.shutdown()).toEqual([]);
  });
});

describe('madvise semantics', () => {
  it('MADV_DONTNEED: private memory reads as zero and its frames are freed; shared memory keeps its data', () => {
    const { m, p } = boot();
    const a = p.mmap(0, 4 * P, RW, PRIV);
    const s = p.mmap(0, 4 * P, RW, SHARED);
    p.write(a, new Uint8Array(4 * P).fill(7));
    p.write(s, new Uint8Array(4 * P).fill(8));
    const free = m.meminfo().freePages;
    p.madvise(a, 4 * P, MADV_DONTNEED);
    expect(m.meminfo().freePages).toBe(free + 4);
    p.madvise(s, 4 * P, MADV_DONTNEED);
    expect(m.meminfo().freePages).toBe(free + 4);
    expect(p.mm!.pgd.size).toBe(0);
    expect(p.read(a + 2 * P, 2)).toEqual(new Uint8Array(2));
    expect([...p.read(s + 2 * P, 2)]).toEqual([8, 8]);
    expect(m.shutdown()).toEqual([]);
  });

  it('MADV_REMOVE frees the shared pages for every process that maps them', () => {
    const { m, p } = boot();
    const s = p.mmap(0, 2 * P, RW, SHARED);
    p.write(s, new Uint8Array(2 * P).fill(3));
    const c = p.fork();
    expect(c.read(s + P, 1)[0]).toBe(3);
    const free = m.meminfo().freePages;
    p.madvise(s + P, P, MADV_REMOVE);
    expect(m.meminfo().freePages).toBe(free + 1);
    expect([c.read(s, 1)[0], c.read(s + P, 1)[0], p.read(s + P, 1)[0]]).toEqual([3, 0, 0]);
    c.write(s + P, [4]);
    expect(p.read(s + P, 1)[0]).toBe(4);
    expect(m.shutdown()).toEqual([]);
  });

  it('MADV_DONTFORK ranges are absent in the child; MADV_DOFORK brings them back', () => {
    const { m, p } = boot();
    const a = p.mmap(AREA, 4 * P, RW, PRIV | MAP_FIXED);
    p.write(a, new Uint8Array(4 * P).fill(6));
    p.madvise(a + P, 2 * P, MADV_DONTFORK);
    const c = p.fork();
    expect(layout(c)).toEqual([
      [a, a + P, RW],
      [a + 3 * P, a + 4 * P, RW],
    ]);
    expect(code(() => c.read(a + P, 1))).toBe('SIGSEGV');
    expect([c.read(a, 1)[0], c.read(a + 3 * P, 1)[0]]).toEqual([6, 6]);
    // The parent's DONTFORK pages were not shared, so they were not write-protected.
    const pte = p.mm!.pgd.get((a + P) / P)!;
    expect(pte_write(pte)).toBe(true);
    p.madvise(a, 4 * P, MADV_DOFORK);
    const c2 = p.fork();
    expect(c2.read(a + 2 * P, 1)[0]).toBe(6);
    expect(c2.mm!.map_count).toBe(1);
    expect(m.shutdown()).toEqual([]);
  });

  it('MAP_POPULATE faults the range in; not PROT_NONE, not with MAP_NONBLOCK', () => {
    const { m, p } = boot();
    const a = p.mmap(0, 3 * P, RW, PRIV | MAP_POPULATE);
    expect(p.mm!.pgd.size).toBe(3);
    expect(pte_write(p.mm!.pgd.get(a / P)!)).toBe(true);
    p.mmap(0, 3 * P, PROT_NONE, PRIV | MAP_POPULATE);
    p.mmap(0, 3 * P, RW, PRIV | MAP_POPULATE | MAP_NONBLOCK);
    expect(p.mm!.pgd.size).toBe(3);
    const s = p.mmap(0, 2 * P, PROT_READ, SHARED | MAP_POPULATE);
    expect(p.mm!.pgd.has(s / P)).toBe(true);
    expect(m.shutdown()).toEqual([]);
  });
});

describe('get_user_pages', () => {
  it('faults pages in and pins them; pinned pages outlive munmap until released', () => {
    const { m, p } = boot();
    const a = p.mmap(0, 4 * P, RW, PRIV);
    p.write(a + 2 * P, [42]);
    const { r, pages } = gup(m, p, a, 4, true);
    expect(r).toBe(4);
    expect(pages).toEqual([0, 1, 2, 3].map((i) => pfnAt(p.mm!, a + i * P)));
    expect(m.meminfo().pinnedPages).toBe(4);
    const free = m.meminfo().freePages;
    p.munmap(a, 4 * P);
    expect(m.meminfo().freePages).toBe(free);
    expect(pages.map((f) => [m.ram.page_count(f), m.ram.page_mapcount(f)])).toEqual([
      [1, 0],
      [1, 0],
      [1, 0],
      [1, 0],
    ]);
    expect(m.ram.frame(pages[2]!)[0]).toBe(42);
    release(m, pages);
    expect(m.meminfo()).toMatchObject({ pinnedPages: 0, freePages: free + 4 });
    expect(m.shutdown()).toEqual([]);
  });

  it('breaks copy-on-write for write, shares the page for read', () => {
    const { m, p } = boot();
    const a = p.mmap(0, 2 * P, RW, PRIV);
    p.write(a, [1]);
    p.write(a + P, [2]);
    const c = p.fork();
    const rd = gup(m, p, a, 1, false);
    expect(rd.pages).toEqual([pfnAt(c.mm!, a)]);
    const wr = gup(m, p, a + P, 1, true);
    expect(wr.pages[0]).not.toBe(pfnAt(c.mm!, a + P));
    expect(wr.pages[0]).toBe(pfnAt(p.mm!, a + P));
    expect(m.ram.frame(wr.pages[0]!)[0]).toBe(2);
    m.ram.frame(wr.pages[0]!)[0] = 9;
    expect([p.read(a + P, 1)[0], c.read(a + P, 1)[0]]).toEqual([9, 2]);
    release(m, rd.pages);
    release(m, wr.pages);
    expect(m.shutdown()).toEqual([]);
  });

  it('-EFAULT on holes, PROT_NONE, write to read-only and PFN maps; partial counts', () => {
    const { m, p } = boot();
    const a = p.mmap(AREA, 2 * P, RW, PRIV | MAP_FIXED);
    p.mmap(AREA + 2 * P, P, PROT_NONE, PRIV | MAP_FIXED);
    p.mmap(AREA + 4 * P, P, PROT_READ, PRIV | MAP_FIXED);
    const mm = p.mm!;
    const pfnmap = new VmAreaStruct(
      mm,
      AREA + 5 * P,
      AREA + 6 * P,
      VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_IO | VM_PFNMAP,
      0,
      null,
      null,
    );
    mm.mm_rb.insert(pfnmap);
    expect(gup(m, p, AREA + 3 * P, 1, false).r).toBe(-14);
    expect(gup(m, p, AREA + 2 * P, 1, false).r).toBe(-14);
    expect(gup(m, p, AREA + 4 * P, 1, true).r).toBe(-14);
    expect(gup(m, p, AREA + 5 * P, 1, false).r).toBe(-14);
    // Two pages, then PROT_NONE: the two are pinned and counted.
    const part = gup(m, p, a, 4, true);
    expect(part.r).toBe(2);
    expect(part.pages).toHaveLength(2);
    release(m, part.pages);
    // Read of the read-only VMA then the PFN map.
    const ro = gup(m, p, AREA + 4 * P, 2, false);
    expect(ro.r).toBe(1);
    release(m, ro.pages);
    // nr_pages 0 pins nothing.
    expect(gup(m, p, a, 0, true).r).toBe(0);
    mm.mm_rb.remove(pfnmap);
    expect(m.shutdown()).toEqual([]);
  });

  it('a forced write to a read-only private page copies it and leaves the PTE read-only', () => {
    const { m, p } = boot();
    const a = p.mmap(0, P, RW, PRIV);
    p.write(a, [1]);
    const c = p.fork();
    p.mprotect(a, P, PROT_READ);
    const g = gup(m, p, a, 1, true, true);
    expect(g.r).toBe(1);
    expect(g.pages[0]).not.toBe(pfnAt(c.mm!, a));
    expect(pte_write(p.mm!.pgd.get(a / P)!)).toBe(false);
    release(m, g.pages);
    expect(m.shutdown()).toEqual([]);
  });

  it('a forced write to a read-only shared mapping copies the page instead of writing the object', () => {
    const { m, p } = boot();
    const s = p.mmap(0, P, RW, SHARED);
    p.write(s, [5]);
    const obj = p.mm!.find_vma(s)!.vm_file!.private_data as ShmemObject;
    const shmemPfn = obj.pages.get(0)!;
    p.mprotect(s, P, PROT_READ);
    const g = gup(m, p, s, 1, true, true);
    expect(g.r).toBe(1);
    expect(g.pages[0]).not.toBe(shmemPfn);
    m.ram.frame(g.pages[0]!)[0] = 6;
    expect(m.ram.frame(shmemPfn)[0]).toBe(5);
    expect(pte_write(p.mm!.pgd.get(s / P)!)).toBe(false);
    release(m, g.pages);
    // Without force the read-only mapping refuses the write.
    expect(gup(m, p, s, 1, true).r).toBe(-14);
    expect(m.shutdown()).toEqual([]);
  });

  it('without mmap_sem it warns', () => {
    const { m, p } = boot();
    const a = p.mmap(0, P, RW, PRIV);
    const pages: number[] = [];
    expect(m.syscall(p, 'gup', get_user_pages(p.mm!, a, 1, true, false, pages))).toBe(1);
    expect(m.findings().map((f) => f.kind)).toEqual(['WARN']);
    release(m, pages);
  });
});

describe('__get_user_pages_fast', () => {
  it('never faults and stops at the first absent, read-only or inaccessible page', () => {
    const { m, p } = boot();
    const mm = p.mm!;
    const a = p.mmap(AREA, 4 * P, RW, PRIV | MAP_FIXED);
    const fast = (start: number, n: number, write: boolean): number[] => {
      const pages: number[] = [];
      const r = __get_user_pages_fast(mm, start, n, write, pages);
      expect(r).toBe(pages.length);
      return pages;
    };
    expect(fast(a, 4, false)).toEqual([]);
    expect(mm.pgd.size).toBe(0);
    p.write(a, [1]);
    p.write(a + P, [1]);
    p.write(a + 3 * P, [1]);
    const two = fast(a, 4, true);
    expect(two).toEqual([pfnAt(mm, a), pfnAt(mm, a + P)]);
    expect(m.meminfo().pinnedPages).toBe(2);
    release(m, two);
    // Write-protected by fork: readable, not writable.
    const c = p.fork();
    expect(fast(a, 1, true)).toEqual([]);
    const r1 = fast(a, 1, false);
    expect(r1).toEqual([pfnAt(c.mm!, a)]);
    release(m, r1);
    p.mprotect(a, 4 * P, PROT_NONE);
    expect(fast(a, 1, false)).toEqual([]);
    expect(fast(TASK_SIZE - P, 2, false)).toEqual([]);
    // A PFN map's special PTE is never returned.
    const flags = VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_IO | VM_PFNMAP;
    const dev = new VmAreaStruct(mm, AREA + 8 * P, AREA + 9 * P, flags, 0, null, null);
    mm.mm_rb.insert(dev);
    expect(vm_insert_pfn(dev, AREA + 8 * P, 5)).toBe(0);
    expect(vm_insert_pfn(dev, AREA + 8 * P, 5)).toBe(-16);
    expect(vm_insert_pfn(dev, AREA + 9 * P, 5)).toBe(-14);
    expect(fast(AREA + 8 * P, 1, false)).toEqual([]);
    p.munmap(AREA + 8 * P, P);
    expect(m.shutdown()).toEqual([]);
  });
});

describe('uaccess', () => {
  it('access_ok ends at 0x7ffffffff000', () => {
    expect(TASK_SIZE).toBe(0x7ffffffff000);
    expect(access_ok(TASK_SIZE - P, P)).toBe(true);
    expect(access_ok(TASK_SIZE, 0)).toBe(true);
    expect(access_ok(TASK_SIZE, 1)).toBe(false);
    expect(access_ok(TASK_SIZE - 1, 2)).toBe(false);
    expect(access_ok(0, TASK_SIZE)).toBe(true);
    expect(access_ok(-1, 1)).toBe(false);
  });

  it('copy_from_user / copy_to_user return the bytes not copied', () => {
    const { m, p } = boot();
    const mm = p.mm!;
    const a = p.mmap(AREA, 2 * P, RW, PRIV | MAP_FIXED);
    const ro = p.mmap(AREA + 2 * P, P, PROT_READ, PRIV | MAP_FIXED);
    p.write(a + 2 * P - 3, [1, 2, 3]);
    const dst = new Uint8Array(8).fill(0xee);
    // 3 bytes, then the read-only page (readable, zero), then a hole.
    expect(m.syscall(p, 'cfu', copy_from_user(mm, dst, a + 2 * P - 3))).toBe(0);
    expect([...dst]).toEqual([1, 2, 3, 0, 0, 0, 0, 0]);
    dst.fill(0xee);
    expect(m.syscall(p, 'cfu', copy_from_user(mm, dst, ro + P - 4))).toBe(4);
    expect([...dst]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(m.syscall(p, 'ctu', copy_to_user(mm, a + 2 * P - 2, new Uint8Array([7, 7, 7, 7])))).toBe(2);
    expect([...p.read(a + 2 * P - 2, 2)]).toEqual([7, 7]);
    expect(m.syscall(p, 'ctu', copy_to_user(mm, TASK_SIZE - 2, new Uint8Array(4)))).toBe(4);
    expect(m.syscall(p, 'cfu', copy_from_user(mm, new Uint8Array(1), TASK_SIZE))).toBe(1);
    // The last page of user space can be mapped and used.
    const top = p.mmap(TASK_SIZE - P, P, RW, PRIV | MAP_FIXED);
    expect(m.syscall(p, 'ctu', copy_to_user(mm, top + P - 2, new Uint8Array([5, 6])))).toBe(0);
    expect(code(() => p.read(top + P - 1, 2))).toBe('SIGSEGV');
    expect(m.shutdown()).toEqual([]);
  });

  it('user accesses fault with the address of the first page that fails', () => {
    const { m, p } = boot();
    const a = p.mmap(AREA, P, RW, PRIV | MAP_FIXED);
    try {
      p.write(a + P - 2, [1, 2, 3, 4]);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(SegfaultError);
      expect((e as SegfaultError).addr).toBe(a + P);
      expect((e as SegfaultError).signal).toBe('SIGSEGV');
    }
    // The part before the fault was stored.
    expect([...p.read(a + P - 2, 2)]).toEqual([1, 2]);
    // Write-only memory is readable on x86; PROT_NONE is not.
    p.mprotect(a, P, PROT_WRITE);
    expect(p.read(a + P - 2, 1)[0]).toBe(1);
    p.mprotect(a, P, PROT_NONE);
    expect(code(() => p.read(a, 1))).toBe('SIGSEGV');
    expect(m.shutdown()).toEqual([]);
  });
});

describe('mm references', () => {
  it('an mmget reference keeps the mappings after exit until mmput', () => {
    const { m, p } = boot();
    const mm = p.mm!;
    const a = p.mmap(0, P, RW, PRIV);
    p.write(a, [1]);
    mmget(mm);
    p.exit();
    expect(mm.map_count).toBe(1);
    expect(mm.exited).toBe(false);
    const q = m.spawn();
    m.syscall(q, 'mmput', mmput(mm));
    expect([mm.exited, mm.freed, mm.map_count, mm.pgd.size]).toEqual([true, true, 0, 0]);
    expect(m.shutdown()).toEqual([]);
    expect(m.meminfo().freePages).toBe(m.meminfo().totalPages);
  });

  it('fork copies the layout, DONTCOPY aside, and clears VM_LOCKED', () => {
    const { m, p } = boot();
    const a = p.mmap(AREA, 2 * P, RW, PRIV | MAP_FIXED | uapi.MAP_LOCKED);
    p.mmap(AREA + 2 * P, P, PROT_READ, PRIV | MAP_FIXED);
    expect(p.mm!.pgd.size).toBe(2);
    const c = p.fork();
    expect(layout(c, 0x2000 | VM_READ | VM_WRITE)).toEqual([
      [a, a + 2 * P, RW],
      [a + 2 * P, a + 3 * P, PROT_READ],
    ]);
    expect(layout(p, 0x2000)).toEqual([
      [a, a + 2 * P, 0x2000],
      [a + 2 * P, a + 3 * P, 0],
    ]);
    expect(m.shutdown()).toEqual([]);
  });
});

describe('stacks: MAP_GROWSDOWN and mprotect PROT_GROWSDOWN / PROT_GROWSUP', () => {
  const { PROT_GROWSDOWN, PROT_GROWSUP, MAP_GROWSDOWN } = uapi;
  const GD = VM_GROWSDOWN;

  it('MAP_GROWSDOWN keeps VM_GROWSDOWN, which takes part in merging like any flag', () => {
    const { m, p } = boot();
    p.mmap(AREA, 2 * P, RW, PRIV | MAP_FIXED | MAP_GROWSDOWN);
    // A plain neighbour with the same protection stays apart; a grows-down one merges.
    p.mmap(AREA + 2 * P, P, RW, PRIV | MAP_FIXED);
    p.mmap(AREA - P, P, RW, PRIV | MAP_FIXED | MAP_GROWSDOWN);
    expect(layout(p, GD | VM_READ | VM_WRITE)).toEqual([
      [AREA - P, AREA + 2 * P, GD | RW],
      [AREA + 2 * P, AREA + 3 * P, RW],
    ]);
    // mprotect keeps the flag on the piece it changes; changing it back merges again.
    p.mprotect(AREA, P, PROT_READ);
    expect(layout(p, GD | VM_READ | VM_WRITE)).toEqual([
      [AREA - P, AREA, GD | RW],
      [AREA, AREA + P, GD | PROT_READ],
      [AREA + P, AREA + 2 * P, GD | RW],
      [AREA + 2 * P, AREA + 3 * P, RW],
    ]);
    p.mprotect(AREA, P, RW);
    expect(p.mm!.map_count).toBe(2);
    expect(m.shutdown()).toEqual([]);
  });

  it('PROT_GROWSDOWN applies from the VMA start; errno paths in 3.16 order', () => {
    const { m, p } = boot();
    const plain = p.mmap(AREA, 2 * P, RW, PRIV | MAP_FIXED);
    const g = p.mmap(AREA + 8 * P, 3 * P, RW, PRIV | MAP_FIXED | MAP_GROWSDOWN);
    const before = layout(p, GD | 7);
    // Both bits: EINVAL before anything else, even for a zero length or an unaligned start.
    expect(code(() => p.mprotect(g, 0, PROT_READ | PROT_GROWSDOWN | PROT_GROWSUP))).toBe('EINVAL');
    expect(code(() => p.mprotect(g + 1, P, PROT_READ | PROT_GROWSDOWN | PROT_GROWSUP))).toBe('EINVAL');
    expect(code(() => p.mprotect(g, 0, PROT_READ | PROT_GROWSDOWN))).toBe('ok');
    // The bits are stripped before the prot check; other unknown bits still fail it.
    expect(code(() => p.mprotect(AREA + 64 * P, P, 0x40 | PROT_GROWSDOWN))).toBe('EINVAL');
    // No VMA at or after start, or the first one starts at or after end: ENOMEM.
    expect(code(() => p.mprotect(AREA + 64 * P, P, PROT_READ | PROT_GROWSDOWN))).toBe('ENOMEM');
    expect(code(() => p.mprotect(AREA + 4 * P, 4 * P, PROT_READ | PROT_GROWSDOWN))).toBe('ENOMEM');
    // A VMA without VM_GROWSDOWN: EINVAL, whether start is inside it or in the hole before it.
    expect(code(() => p.mprotect(plain + P, P, PROT_READ | PROT_GROWSDOWN))).toBe('EINVAL');
    expect(code(() => p.mprotect(AREA - P, 2 * P, PROT_READ | PROT_GROWSDOWN))).toBe('EINVAL');
    expect(layout(p, GD | 7)).toEqual(before);
    // From the second page: the change starts at vm_start.
    p.mprotect(g + P, P, PROT_READ | PROT_GROWSDOWN);
    expect(layout(p, GD | 7)).toEqual([
      [plain, plain + 2 * P, RW],
      [g, g + 2 * P, GD | PROT_READ],
      [g + 2 * P, g + 3 * P, GD | RW],
    ]);
    expect(code(() => p.write(g, [1]))).toBe('SIGSEGV');
    // From the hole below: the start moves up to vm_start.
    p.mprotect(AREA + 6 * P, 5 * P, RW | PROT_GROWSDOWN);
    expect(layout(p, GD | 7)).toEqual([
      [plain, plain + 2 * P, RW],
      [g, g + 3 * P, GD | RW],
    ]);
    // Past the VMA's end the walk goes on as usual: a hole there is ENOMEM after the change.
    expect(code(() => p.mprotect(g + P, 4 * P, PROT_READ | PROT_GROWSDOWN))).toBe('ENOMEM');
    expect(layout(p, GD | 7)).toEqual([
      [plain, plain + 2 * P, RW],
      [g, g + 3 * P, GD | PROT_READ],
    ]);
    expect(m.shutdown()).toEqual([]);
  });

  it('PROT_GROWSUP is EINVAL on x86 (no VM_GROWSUP), after the usual ENOMEM lookup', () => {
    const { m, p } = boot();
    const plain = p.mmap(AREA, 2 * P, RW, PRIV | MAP_FIXED);
    const g = p.mmap(AREA + 8 * P, 2 * P, RW, PRIV | MAP_FIXED | MAP_GROWSDOWN);
    expect(code(() => p.mprotect(plain, P, PROT_READ | PROT_GROWSUP))).toBe('EINVAL');
    expect(code(() => p.mprotect(g + P, P, PROT_READ | PROT_GROWSUP))).toBe('EINVAL');
    expect(code(() => p.mprotect(AREA - P, 2 * P, PROT_READ | PROT_GROWSUP))).toBe('ENOMEM');
    expect(code(() => p.mprotect(AREA + 64 * P, P, PROT_READ | PROT_GROWSUP))).toBe('ENOMEM');
    expect(layout(p)).toEqual([
      [plain, plain + 2 * P, RW],
      [g, g + 2 * P, RW],
    ]);
    expect(m.shutdown()).toEqual([]);
  });

  it('a grows-down VMA does not grow: an access or gup below it fails', () => {
    const { m, p } = boot();
    const g = p.mmap(AREA + 8 * P, 2 * P, RW, PRIV | MAP_FIXED | MAP_GROWSDOWN);
    expect(code(() => p.write(g - 8, [1]))).toBe('SIGSEGV');
    expect(gup(m, p, g - P, 1, true).r).toBe(-14);
    p.write(g, [1]);
    expect(layout(p, GD | 7)).toEqual([[g, g + 2 * P, GD | RW]]);
    expect(m.shutdown()).toEqual([]);
  });
});

describe('MAP_LOCKED and RLIMIT_MEMLOCK (64 KiB, CAP_IPC_LOCK for root)', () => {
  const { MAP_LOCKED } = uapi;
  const LOCKED = PRIV | MAP_LOCKED;
  const LIMIT = 16;

  it('non-root: locked pages count up to the limit; munmap gives them back', () => {
    const { m, p } = boot();
    const mm = p.mm!;
    expect(code(() => p.mmap(0, (LIMIT + 1) * P, RW, LOCKED))).toBe('EAGAIN');
    expect([mm.map_count, mm.locked_vm]).toEqual([0, 0]);
    const a = p.mmap(AREA, LIMIT * P, RW, LOCKED | MAP_FIXED);
    expect(mm.locked_vm).toBe(LIMIT);
    // Populated, as mlock would.
    expect(mm.pgd.size).toBe(LIMIT);
    expect(code(() => p.mmap(0, P, RW, LOCKED))).toBe('EAGAIN');
    // Unlocked mappings are not limited.
    p.mmap(0, 64 * P, RW, PRIV);
    // A hole in the middle: the two pieces stay locked, the hole no longer counts.
    p.munmap(a + 4 * P, 2 * P);
    expect(mm.locked_vm).toBe(LIMIT - 2);
    expect(layout(p, VM_LOCKED).filter((v) => v[2])).toEqual([
      [a, a + 4 * P, VM_LOCKED],
      [a + 6 * P, a + LIMIT * P, VM_LOCKED],
    ]);
    p.mmap(0, 2 * P, RW, LOCKED);
    expect(mm.locked_vm).toBe(LIMIT);
    // mprotect keeps VM_LOCKED and the count.
    p.mprotect(a, P, PROT_READ);
    expect(mm.locked_vm).toBe(LIMIT);
    expect(layout(p, VM_LOCKED)[0]).toEqual([a, a + P, VM_LOCKED]);
    p.munmap(AREA - 64 * P, 256 * P);
    expect(mm.locked_vm).toBe(2);
    expect(m.shutdown()).toEqual([]);
  });

  it('EAGAIN comes after the address checks and before the mapping type check', () => {
    const { m, p } = boot();
    const big = (LIMIT + 1) * P;
    expect(code(() => p.mmap(0, 0, RW, LOCKED))).toBe('EINVAL');
    expect(code(() => p.mmap(0, 2 ** 48, RW, LOCKED))).toBe('ENOMEM');
    expect(code(() => p.mmap(AREA + 1, big, RW, LOCKED | MAP_FIXED))).toBe('EINVAL');
    expect(code(() => p.mmap(P, big, RW, LOCKED | MAP_FIXED))).toBe('EPERM');
    expect(code(() => p.mmap(0, big, RW, MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED))).toBe(
      'EAGAIN',
    );
    expect(code(() => p.mmap(0, P, RW, MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED))).toBe(
      'EINVAL',
    );
    expect(p.mm!.map_count).toBe(0);
    expect(m.shutdown()).toEqual([]);
  });

  it('MAP_FIXED over locked pages is checked before they are unmapped (3.16 counts them)', () => {
    const { m, p } = boot();
    const a = p.mmap(AREA, LIMIT * P, RW, LOCKED | MAP_FIXED);
    expect(code(() => p.mmap(a, P, RW, LOCKED | MAP_FIXED))).toBe('EAGAIN');
    // Without MAP_LOCKED the replacement just gives the page back.
    p.mmap(a, P, RW, PRIV | MAP_FIXED);
    expect(p.mm!.locked_vm).toBe(LIMIT - 1);
    p.mmap(a, P, RW, LOCKED | MAP_FIXED);
    expect(p.mm!.locked_vm).toBe(LIMIT);
    // Locked neighbours merge; locked and unlocked ones do not.
    expect(p.mm!.map_count).toBe(1);
    p.mmap(a + LIMIT * P, P, RW, PRIV | MAP_FIXED);
    expect(p.mm!.map_count).toBe(2);
    expect(m.shutdown()).toEqual([]);
  });

  it('root has CAP_IPC_LOCK; after setuid the count stays and the limit applies', () => {
    const { m } = boot();
    const p = m.spawn({ uid: 0 });
    const a = p.mmap(0, 1 << 20, RW, LOCKED);
    expect(p.mm!.locked_vm).toBe(256);
    p.setuid(1000);
    expect(code(() => p.mmap(0, P, RW, LOCKED))).toBe('EAGAIN');
    p.munmap(a, 1 << 20);
    expect(p.mm!.locked_vm).toBe(0);
    p.mmap(0, LIMIT * P, RW, LOCKED);
    expect(m.shutdown()).toEqual([]);
  });

  it('fork: the child does not inherit locks (locked_vm 0, no VM_LOCKED)', () => {
    const { m, p } = boot();
    p.mmap(AREA, LIMIT * P, RW, LOCKED | MAP_FIXED);
    const c = p.fork();
    expect([p.mm!.locked_vm, c.mm!.locked_vm]).toEqual([LIMIT, 0]);
    expect(layout(c, VM_LOCKED)).toEqual([[AREA, AREA + LIMIT * P, 0]]);
    c.mmap(0, LIMIT * P, RW, LOCKED);
    expect(c.mm!.locked_vm).toBe(LIMIT);
    // Unmapping an unlocked range in the child takes nothing off.
    c.munmap(AREA, LIMIT * P);
    expect(c.mm!.locked_vm).toBe(LIMIT);
    expect(m.shutdown()).toEqual([]);
  });

  it('mremap of a locked VMA: EAGAIN over the limit; growth is charged and populated', () => {
    const { m, p } = boot();
    const mm = p.mm!;
    const a = p.mmap(AREA, 8 * P, RW, LOCKED | MAP_FIXED);
    p.mmap(AREA + 14 * P, P, PROT_READ, PRIV | MAP_FIXED);
    // Over the limit: EAGAIN, after the EFAULT of a range across VMAs and before the ENOMEM of a
    // VMA that cannot grow in place.
    expect(code(() => p.mremap(a, 9 * P, 20 * P, MREMAP_MAYMOVE))).toBe('EFAULT');
    expect(code(() => p.mremap(a, 8 * P, 20 * P, 0))).toBe('EAGAIN');
    expect(code(() => p.mremap(a, 8 * P, 16 * P, 0))).toBe('ENOMEM');
    expect(mm.locked_vm).toBe(8);
    // Grow in place: charged, and the new pages are faulted in.
    expect(p.mremap(a, 8 * P, 12 * P, 0)).toBe(a);
    expect(mm.locked_vm).toBe(12);
    expect(mm.pgd.has(a / P + 11)).toBe(true);
    // Move: the new length is charged, the old one given back; the grown part is populated.
    const b = p.mremap(a, 12 * P, 15 * P, MREMAP_MAYMOVE);
    expect(b).not.toBe(a);
    expect(mm.locked_vm).toBe(15);
    expect(mm.pgd.has(b / P + 14)).toBe(true);
    expect(layout(p, VM_LOCKED)).toContainEqual([b, b + 15 * P, VM_LOCKED]);
    // Shrinking unmaps the tail; a fixed move that shrinks charges only what is left.
    p.mremap(b, 15 * P, 10 * P, 0);
    expect(mm.locked_vm).toBe(10);
    p.mremap(b, 10 * P, 6 * P, MREMAP_MAYMOVE | MREMAP_FIXED, AREA + 32 * P);
    expect(mm.locked_vm).toBe(6);
    expect(code(() => p.mremap(AREA + 32 * P, 6 * P, 17 * P, MREMAP_MAYMOVE))).toBe('EAGAIN');
    expect(mm.locked_vm).toBe(6);
    expect(m.shutdown()).toEqual([]);
  });

  it('root may grow a locked mapping past the limit', () => {
    const { m } = boot();
    const p = m.spawn({ uid: 0 });
    const a = p.mmap(AREA, 8 * P, RW, LOCKED | MAP_FIXED);
    expect(p.mremap(a, 8 * P, 64 * P, MREMAP_MAYMOVE)).toBe(a);
    expect([p.mm!.locked_vm, p.mm!.pgd.size]).toEqual([64, 64]);
    expect(m.shutdown()).toEqual([]);
  });

  it('a device mapping cannot be locked: VM_LOCKED is dropped, nothing is charged', () => {
    const { m, p } = boot();
    const fd = p.open('/dev/dri/card0');
    const h = user.gem_create(p, fd, (LIMIT + 1) * P);
    const off = user.gem_mmap_gtt_offset(p, fd, h);
    // The limit is checked first, with the full length.
    expect(code(() => p.mmap(0, (LIMIT + 1) * P, RW, MAP_SHARED | MAP_LOCKED, fd, off))).toBe('EAGAIN');
    const a = p.mmap(0, LIMIT * P, RW, MAP_SHARED | MAP_LOCKED, fd, off);
    expect(p.mm!.locked_vm).toBe(0);
    expect(layout(p, VM_LOCKED | VM_IO)).toEqual([[a, a + LIMIT * P, VM_IO]]);
    p.close(fd);
    expect(m.shutdown()).toEqual([]);
  });
});
