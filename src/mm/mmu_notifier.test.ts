/**
 * MMU notifiers: a recording notifier registered on a process's mm must hear exactly the ranges
 * Linux 3.16 reports on each path, with the locks Linux holds there; unregister must wait for
 * callbacks in flight and balance mm_count.
 */
import { describe, expect, it } from 'vitest';
import { Machine, type Process, uapi } from '../index.js';
import { Completion } from '../sched/completion.js';
import type { KGen } from '../sched/task.js';
import { __get_user_pages_fast, release_user_pages } from './gup.js';
import { pte_allows } from './memory.js';
import { MMAP_BASE, type MmStruct, PMD_SIZE, PUD_SIZE } from './mm_types.js';
import {
  MmuNotifier,
  __mmu_notifier_register,
  mmu_notifier_register,
  mmu_notifier_unregister,
} from './mmu_notifier.js';

const P = 4096;
const { PROT_NONE, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS, MAP_FIXED } = uapi;
const RW = PROT_READ | PROT_WRITE;
const PRIV = MAP_PRIVATE | MAP_ANONYMOUS;
const PRIV_FIXED = PRIV | MAP_FIXED;

/** What the mm's mmap_sem looked like to the task running a callback. */
type Sem = 'write' | 'read' | 'none';

interface Call {
  op: 'start' | 'end' | 'release';
  start?: number;
  end?: number;
  sem: Sem;
}

function sem(m: Machine, mm: MmStruct): Sem {
  const t = m.sched.current;
  if (mm.mmap_sem.writer === t) return 'write';
  if (t && mm.mmap_sem.readers.includes(t)) return 'read';
  return 'none';
}

/** Registers a notifier on `p`'s mm that records every callback. */
interface Recorder {
  mn: MmuNotifier;
  calls: Call[];
  mm: MmStruct;
  /** The calls so far, forgotten. */
  take(): Call[];
  /** Unregisters (as the driver would before going away) and shuts the machine down. */
  shutdown(): ReturnType<Machine['shutdown']>;
}

function record(m: Machine, p: Process): Recorder {
  const calls: Call[] = [];
  const mm = p.mm!;
  const mn = new MmuNotifier(
    {
      *invalidate_range_start(_mn, m2, start, end): KGen {
        expect(m2).toBe(mm);
        calls.push({ op: 'start', start, end, sem: sem(m, mm) });
      },
      *invalidate_range_end(_mn, m2, start, end): KGen {
        expect(m2).toBe(mm);
        calls.push({ op: 'end', start, end, sem: sem(m, mm) });
      },
      *release(_mn, m2): KGen {
        expect(m2).toBe(mm);
        calls.push({ op: 'release', sem: sem(m, mm) });
      },
    },
    'recorder',
  );
  expect(m.syscall(p, 'register', mmu_notifier_register(mn, mm))).toBe(0);
  return {
    mn,
    calls,
    mm,
    take(): Call[] {
      return calls.splice(0);
    },
    shutdown() {
      m.syscall(m.spawn(), 'unregister', mmu_notifier_unregister(mn, mm));
      return m.shutdown();
    },
  };
}

/** One invalidate_range_start/end pair over [start, end) under the given mmap_sem mode. */
function pair(start: number, end: number, s: Sem): Call[] {
  return [
    { op: 'start', start, end, sem: s },
    { op: 'end', start, end, sem: s },
  ];
}

function setup(): { m: Machine; p: Process } {
  const m = Machine.boot({ seed: 3 });
  return { m, p: m.spawn() };
}

/** A 1 GiB-aligned area well below mmap_base, for layouts that depend on page-table geometry. */
const AREA = 0x7f0000000000;

describe('mmu notifier ranges', () => {
  it('munmap reports the unmapped range once, holes included, under mmap_sem write', () => {
    const { m, p } = setup();
    const a = p.mmap(AREA, 8 * P, RW, PRIV_FIXED);
    p.mmap(AREA + 10 * P, 4 * P, PROT_READ, PRIV_FIXED);
    p.write(a, [1]);
    const r = record(m, p);
    p.munmap(a + P, 2 * P);
    expect(r.take()).toEqual(pair(a + P, a + 3 * P, 'write'));
    // Across a VMA end, a hole and into the next VMA: still one pair for the whole range.
    p.munmap(a + 6 * P, 6 * P);
    expect(r.take()).toEqual(pair(a + 6 * P, a + 12 * P, 'write'));
    // Nothing mapped there: nothing to report.
    p.munmap(a + 20 * P, 4 * P);
    expect(r.take()).toEqual([]);
    expect(r.shutdown()).toEqual([]);
  });

  it('MAP_FIXED over a mapping reports the replaced range; over nothing, nothing', () => {
    const { m, p } = setup();
    const a = p.mmap(AREA, 8 * P, RW, PRIV_FIXED);
    const r = record(m, p);
    expect(p.mmap(a + 2 * P, 3 * P, PROT_READ, PRIV_FIXED)).toBe(a + 2 * P);
    expect(r.take()).toEqual(pair(a + 2 * P, a + 5 * P, 'write'));
    expect(p.mmap(a + 6 * P, 4 * P, RW, PRIV_FIXED)).toBe(a + 6 * P);
    expect(r.take()).toEqual(pair(a + 6 * P, a + 10 * P, 'write'));
    p.mmap(a + 100 * P, P, RW, PRIV_FIXED);
    expect(r.take()).toEqual([]);
    expect(r.shutdown()).toEqual([]);
  });

  it('mprotect reports each changed VMA piece whose page tables exist', () => {
    const { m, p } = setup();
    // [a, a+4p) RW with a page written, [a+4p, a+8p) PROT_READ never touched: same page table.
    const a = p.mmap(AREA, 4 * P, RW, PRIV_FIXED);
    p.mmap(a + 4 * P, 4 * P, PROT_READ, PRIV_FIXED);
    p.write(a + P, [1]);
    const r = record(m, p);
    // Only the middle of the first VMA: one pair for that piece.
    p.mprotect(a + P, 2 * P, PROT_READ);
    expect(r.take()).toEqual(pair(a + P, a + 3 * P, 'write'));
    // Across both VMAs to PROT_NONE: one pair per VMA piece, the untouched one included (its
    // PTE page exists), in address order.
    p.mprotect(a, 8 * P, PROT_NONE);
    const calls = r.take();
    expect(calls.filter((c) => c.op === 'start').map((c) => [c.start, c.end])).toEqual([
      [a, a + P],
      [a + P, a + 3 * P],
      [a + 3 * P, a + 4 * P],
      [a + 4 * P, a + 8 * P],
    ]);
    expect(calls.every((c) => c.sem === 'write')).toBe(true);
    // Unchanged protection: no work, no report.
    p.mprotect(a, 8 * P, PROT_NONE);
    expect(r.take()).toEqual([]);
    expect(r.shutdown()).toEqual([]);
  });

  it('mprotect does not report VMAs in page-table regions never populated', () => {
    const { m, p } = setup();
    // X ends at a 2 MiB boundary and has a page; Y starts there and was never touched.
    const x = p.mmap(AREA + PMD_SIZE - 4 * P, 4 * P, RW, PRIV_FIXED);
    const y = p.mmap(AREA + PMD_SIZE, 4 * P, PROT_READ | uapi.PROT_EXEC, PRIV_FIXED);
    p.write(x, [1]);
    const r = record(m, p);
    p.mprotect(x, 8 * P, PROT_READ);
    expect(r.take()).toEqual(pair(x, x + 4 * P, 'write'));
    // Both PROT_READ now, but X was writable (VM_ACCOUNT) and Y never: they stay apart.
    expect(p.mm!.map_count).toBe(2);
    // A range whose first 2 MiB has no page table starts at the first one that does.
    const big = AREA + PUD_SIZE;
    p.mmap(big, 3 * PMD_SIZE, RW, PRIV_FIXED);
    p.write(big + PMD_SIZE + 5 * P, [1]);
    p.mprotect(big, 3 * PMD_SIZE, PROT_READ);
    expect(r.take()).toEqual(pair(big + PMD_SIZE, big + 3 * PMD_SIZE, 'write'));
    expect(p.mm!.find_vma(y)!.start).toBe(y);
    expect(r.shutdown()).toEqual([]);
  });

  it('mprotect across a 1 GiB boundary reports one pair per populated 1 GiB region', () => {
    const { m, p } = setup();
    const start = AREA + 2 * PUD_SIZE - 8 * P;
    p.mmap(start, 16 * P, RW, PRIV_FIXED);
    p.write(start, [1]);
    p.write(start + 12 * P, [1]);
    const r = record(m, p);
    p.mprotect(start, 16 * P, PROT_READ);
    expect(r.take()).toEqual([
      ...pair(start, AREA + 2 * PUD_SIZE, 'write'),
      ...pair(AREA + 2 * PUD_SIZE, start + 16 * P, 'write'),
    ]);
    expect(r.shutdown()).toEqual([]);
  });

  it('page tables outlive MADV_DONTNEED but not munmap', () => {
    const { m, p } = setup();
    const a = p.mmap(AREA, 4 * P, RW, PRIV_FIXED);
    p.write(a, [1]);
    p.madvise(a, 4 * P, uapi.MADV_DONTNEED);
    expect(p.mm!.pgd.size).toBe(0);
    const r = record(m, p);
    p.mprotect(a, 4 * P, PROT_READ);
    expect(r.take()).toEqual(pair(a, a + 4 * P, 'write'));
    p.munmap(a, 4 * P);
    r.take();
    p.mmap(a, 4 * P, RW, PRIV_FIXED);
    p.mprotect(a, 4 * P, PROT_READ);
    expect(r.take()).toEqual([]);
    expect(r.shutdown()).toEqual([]);
  });

  it('mremap: a move reports the old range twice (moving the PTEs, then unmapping); a shrink the tail; growing in place nothing', () => {
    const { m, p } = setup();
    const a = p.mmap(AREA, 4 * P, RW, PRIV_FIXED);
    p.mmap(a + 4 * P, P, PROT_READ, PRIV_FIXED);
    p.write(a, [7]);
    const r = record(m, p);
    const b = p.mremap(a, 4 * P, 8 * P, uapi.MREMAP_MAYMOVE);
    expect(b).not.toBe(a);
    expect(r.take()).toEqual([...pair(a, a + 4 * P, 'write'), ...pair(a, a + 4 * P, 'write')]);
    expect(p.read(b, 1)[0]).toBe(7);
    expect(p.mremap(b, 8 * P, 3 * P, 0)).toBe(b);
    expect(r.take()).toEqual(pair(b + 3 * P, b + 8 * P, 'write'));
    expect(p.mremap(b, 3 * P, 5 * P, 0)).toBe(b);
    expect(r.take()).toEqual([]);
    // MREMAP_FIXED onto a mapping: the destination is unmapped first, then the move.
    const c = p.mmap(AREA + 64 * P, 2 * P, RW, PRIV_FIXED);
    expect(p.mremap(b, 5 * P, 2 * P, uapi.MREMAP_MAYMOVE | uapi.MREMAP_FIXED, c)).toBe(c);
    expect(r.take()).toEqual([
      ...pair(c, c + 2 * P, 'write'),
      ...pair(b + 2 * P, b + 5 * P, 'write'),
      ...pair(b, b + 2 * P, 'write'),
      ...pair(b, b + 2 * P, 'write'),
    ]);
    expect(p.read(c, 1)[0]).toBe(7);
    expect(r.shutdown()).toEqual([]);
  });

  it('MADV_DONTNEED reports each VMA piece under mmap_sem read', () => {
    const { m, p } = setup();
    const a = p.mmap(AREA, 4 * P, RW, PRIV_FIXED);
    p.mmap(a + 4 * P, 2 * P, PROT_READ, PRIV_FIXED);
    p.mmap(a + 8 * P, 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
    const r = record(m, p);
    // [a+2p, a+10p): two private pieces, a hole (skipped, ENOMEM at the end), the shared VMA.
    expect(() => p.madvise(a + 2 * P, 8 * P, uapi.MADV_DONTNEED)).toThrow(/ENOMEM/);
    expect(r.take()).toEqual([
      ...pair(a + 2 * P, a + 4 * P, 'read'),
      ...pair(a + 4 * P, a + 6 * P, 'read'),
      ...pair(a + 8 * P, a + 10 * P, 'read'),
    ]);
    expect(r.shutdown()).toEqual([]);
  });

  it('MADV_REMOVE reports the punched pages in every mm that maps them, at their address there', () => {
    const { m, p } = setup();
    const s = p.mmap(AREA, 4 * P, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
    p.write(s, new Uint8Array(4 * P).fill(1));
    const c = p.fork();
    // The child's view of the object's pages 1..3 moves elsewhere.
    const d = c.mremap(s + P, 3 * P, 3 * P, uapi.MREMAP_MAYMOVE | uapi.MREMAP_FIXED, AREA + 64 * P);
    const rp = record(m, p);
    const rc = record(m, c);
    p.madvise(s + 2 * P, 2 * P, uapi.MADV_REMOVE);
    expect(rp.take()).toEqual(pair(s + 2 * P, s + 4 * P, 'read'));
    expect(rc.take()).toEqual(pair(d + P, d + 3 * P, 'none'));
    expect([c.read(d, 1)[0], c.read(d + P, 1)[0], p.read(s + 3 * P, 1)[0]]).toEqual([1, 0, 0]);
    m.syscall(c, 'unregister', mmu_notifier_unregister(rc.mn, rc.mm));
    expect(rp.shutdown()).toEqual([]);
  });

  it("fork write-protects the parent's faulted private VMAs, one whole-VMA pair each", () => {
    const { m, p } = setup();
    const faulted = p.mmap(AREA, 4 * P, RW, PRIV_FIXED);
    const readOnly = p.mmap(AREA + 8 * P, 2 * P, RW, PRIV_FIXED);
    const untouched = p.mmap(AREA + 16 * P, 4 * P, RW, PRIV_FIXED);
    const shared = p.mmap(AREA + 24 * P, 4 * P, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
    const dontfork = p.mmap(AREA + 32 * P, 2 * P, RW, PRIV_FIXED);
    p.write(faulted + P, [1]);
    // Written, then made read-only: still a COW mapping with anonymous pages.
    p.write(readOnly, [1]);
    p.mprotect(readOnly, 2 * P, PROT_READ);
    p.write(shared, [2]);
    p.write(dontfork, [3]);
    p.madvise(dontfork, 2 * P, uapi.MADV_DONTFORK);
    const r = record(m, p);
    const locks: string[][] = [];
    const mn2 = new MmuNotifier({
      *invalidate_range_start(): KGen {
        locks.push(m.sched.current!.held.map((h) => h.cls));
      },
    });
    expect(m.syscall(p, 'register', mmu_notifier_register(mn2, p.mm!))).toBe(0);
    const child = p.fork();
    expect(r.take()).toEqual([
      ...pair(faulted, faulted + 4 * P, 'write'),
      ...pair(readOnly, readOnly + 2 * P, 'write'),
    ]);
    // Parent's mmap_sem for write, the child's nested inside it, and the SRCU read section.
    expect(locks).toHaveLength(2);
    expect(locks[0]!.filter((c) => c.startsWith('&mm->mmap_sem'))).toEqual([
      '&mm->mmap_sem',
      '&mm->mmap_sem/1',
    ]);
    // The untouched and the shared VMA were copied without a report; the DONTFORK one was not.
    expect([untouched, shared, dontfork].map((x) => child.mm!.mm_rb.find(x)?.start)).toEqual([
      untouched,
      shared,
      undefined,
    ]);
    // The child's own mm has no notifier: its writes are not reported to the parent's.
    child.write(faulted + P, [9]);
    expect(r.take()).toEqual([]);
    expect(p.read(faulted + P, 1)[0]).toBe(1);
    m.syscall(p, 'unregister', mmu_notifier_unregister(mn2, p.mm!));
    expect(r.shutdown()).toEqual([]);
  });

  it('a copy-on-write break reports the one page under mmap_sem read; reusing the page reports nothing', () => {
    const { m, p } = setup();
    const a = p.mmap(AREA, 4 * P, RW, PRIV_FIXED);
    p.write(a, [1]);
    p.write(a + P, [2]);
    const child = p.fork();
    const r = record(m, p);
    p.write(a + 10, [5]);
    expect(r.take()).toEqual(pair(a, a + P, 'read'));
    // The child copied page 1 away first: the parent's page is mapped once and is reused.
    child.write(a + P, [6]);
    p.write(a + P, [7]);
    expect(r.take()).toEqual([]);
    expect([p.read(a + P, 1)[0], child.read(a + P, 1)[0]]).toEqual([7, 6]);
    expect(r.shutdown()).toEqual([]);
  });

  it('exit runs release (no mmap_sem) and then nothing: the notifiers are unlinked first', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 4 * P, RW, PRIV);
    expect(a).toBe(MMAP_BASE - 4 * P);
    p.write(a, [1]);
    const r = record(m, p);
    const mm = r.mm;
    expect(mm.mm_count).toBe(2);
    p.exit();
    expect(r.take()).toEqual([{ op: 'release', sem: 'none' }]);
    expect(r.mn.hashed).toBe(false);
    expect(mm.exited).toBe(true);
    expect(mm.freed).toBe(false);
    // The driver's reference keeps the struct until it unregisters.
    const q = m.spawn();
    m.syscall(q, 'unregister', mmu_notifier_unregister(r.mn, mm));
    expect(r.take()).toEqual([]);
    expect(mm.freed).toBe(true);
    expect(m.shutdown()).toEqual([]);
  });
});

describe('what a notifier callback sees', () => {
  it('the lockless gup still finds the pages of a range being unmapped (its VMA already detached)', () => {
    const { m, p } = setup();
    const a = p.mmap(AREA, 2 * P, RW, PRIV_FIXED);
    p.write(a, [1]);
    p.write(a + P, [2]);
    const mm = p.mm!;
    const pinned: number[] = [];
    const mn = new MmuNotifier({
      *invalidate_range_start(_mn, _mm, start, end): KGen {
        expect(mm.find_vma(start)).toBeUndefined();
        __get_user_pages_fast(mm, start, (end - start) / P, true, pinned);
      },
    });
    expect(m.syscall(p, 'register', mmu_notifier_register(mn, mm))).toBe(0);
    p.munmap(a, 2 * P);
    expect(pinned).toHaveLength(2);
    expect(pinned.map((f) => [m.ram.page_count(f), m.ram.page_mapcount(f), m.ram.frame(f)[0]])).toEqual([
      [1, 0, 1],
      [1, 0, 2],
    ]);
    expect(m.meminfo().pinnedPages).toBe(2);
    release_user_pages(m.ram, pinned, true);
    m.syscall(p, 'unregister', mmu_notifier_unregister(mn, mm));
    expect(m.shutdown()).toEqual([]);
  });

  it('during mprotect the old PTEs still allow the CPU access until they are rewritten', () => {
    const { m, p } = setup();
    const a = p.mmap(AREA, P, RW, PRIV_FIXED);
    p.write(a, [1]);
    const mm = p.mm!;
    const seen: [boolean, boolean][] = [];
    const pteAt = (): number | undefined => mm.pgd.get(a / P);
    const mn = new MmuNotifier({
      *invalidate_range_start(): KGen {
        seen.push([pte_allows(pteAt(), true), (mm.find_vma(a)!.vm_flags & 2) !== 0]);
      },
      *invalidate_range_end(): KGen {
        seen.push([pte_allows(pteAt(), true), pte_allows(pteAt(), false)]);
      },
    });
    expect(m.syscall(p, 'register', mmu_notifier_register(mn, mm))).toBe(0);
    p.mprotect(a, P, PROT_READ);
    // At start: the VMA is already read-only, the PTE still writable. At end: read-only.
    expect(seen).toEqual([
      [true, false],
      [false, true],
    ]);
    p.mprotect(a, P, PROT_NONE);
    expect(pte_allows(pteAt(), false)).toBe(false);
    const pages: number[] = [];
    expect(__get_user_pages_fast(mm, a, 1, false, pages)).toBe(0);
    m.syscall(p, 'unregister', mmu_notifier_unregister(mn, mm));
    expect(m.shutdown()).toEqual([]);
  });
});

describe('mmu notifier registration', () => {
  it('register takes an mm_count reference, unregister runs release and drops it', () => {
    const { m, p } = setup();
    const mm = p.mm!;
    expect([mm.mm_users, mm.mm_count]).toEqual([1, 1]);
    const r = record(m, p);
    expect([mm.mm_users, mm.mm_count]).toEqual([1, 2]);
    expect(mm.mmu_notifiers).toEqual([r.mn]);
    m.syscall(p, 'unregister', mmu_notifier_unregister(r.mn, mm));
    expect(r.take()).toEqual([{ op: 'release', sem: 'none' }]);
    expect([mm.mm_users, mm.mm_count]).toEqual([1, 1]);
    expect(mm.mmu_notifiers).toEqual([]);
    // Unregistered: no more callbacks.
    const a = p.mmap(0, P, RW, PRIV);
    p.write(a, [1]);
    p.munmap(a, P);
    expect(r.take()).toEqual([]);
    expect(m.shutdown()).toEqual([]);
  });

  it('unregister waits for a callback in flight (SRCU grace period)', () => {
    const { m, p } = setup();
    const mm = p.mm!;
    const a = p.mmap(0, 2 * P, RW, PRIV);
    p.write(a, [1]);
    const gate = new Completion(m.sched, 'gate');
    const log: string[] = [];
    const mn = new MmuNotifier({
      *invalidate_range_start(): KGen {
        log.push('callback enters');
        yield* gate.wait_for_completion();
        log.push('callback leaves');
      },
    });
    expect(m.syscall(p, 'register', mmu_notifier_register(mn, mm))).toBe(0);
    const unmapper = p.thread('unmapper', function* (api) {
      return yield* api.munmap(a, 2 * P);
    });
    m.run();
    expect(log).toEqual(['callback enters']);
    const unreg = m.sched.spawn(
      'unregister',
      'kthread',
      (function* (): KGen {
        yield* mmu_notifier_unregister(mn, mm);
        log.push('unregistered');
      })(),
    );
    m.run();
    // Unlinked at once, but still waiting for the callback to finish.
    expect(mn.hashed).toBe(false);
    expect(unreg.done).toBe(false);
    expect(mm.mm_count).toBe(2);
    m.sched.spawn(
      'opener',
      'kthread',
      (function* (): KGen {
        gate.complete();
      })(),
    );
    m.run();
    expect(log).toEqual(['callback enters', 'callback leaves', 'unregistered']);
    expect(unreg.done && unmapper.done).toBe(true);
    expect(unmapper.result).toBe(0);
    expect(mm.mm_count).toBe(1);
    expect(m.shutdown()).toEqual([]);
  });

  it('__mmu_notifier_register without mmap_sem held for write is a warning', () => {
    const { m, p } = setup();
    const mn = new MmuNotifier({});
    expect(m.syscall(p, 'register', __mmu_notifier_register(mn, p.mm!))).toBe(0);
    expect(m.findings().map((f) => f.kind)).toEqual(['WARN']);
    const mn2 = new MmuNotifier({});
    const mm = p.mm!;
    m.syscall(
      p,
      'register',
      (function* (): KGen<number> {
        yield* mm.mmap_sem.down_write();
        const r = yield* __mmu_notifier_register(mn2, mm);
        mm.mmap_sem.up_write();
        return r;
      })(),
    );
    expect(m.findings()).toHaveLength(1);
    expect(mm.mm_count).toBe(3);
    m.syscall(p, 'unregister', mmu_notifier_unregister(mn, mm));
    m.syscall(p, 'unregister', mmu_notifier_unregister(mn2, mm));
    expect(mm.mm_count).toBe(1);
  });
});
