import { describe, expect, it } from 'vitest';
import * as m from './mman.js';

// Linux x86_64 values (asm-generic/mman-common.h, asm-generic/mman.h, x86 mman.h, linux/mman.h,
// asm-generic/fcntl.h).
describe('mman.h', () => {
  it('protections', () => {
    expect([m.PROT_NONE, m.PROT_READ, m.PROT_WRITE, m.PROT_EXEC, m.PROT_SEM]).toEqual([0, 1, 2, 4, 8]);
    expect(m.PROT_GROWSDOWN).toBe(0x01000000);
    expect(m.PROT_GROWSUP).toBe(0x02000000);
  });

  it('mmap flags', () => {
    expect(m.MAP_SHARED).toBe(0x01);
    expect(m.MAP_PRIVATE).toBe(0x02);
    expect(m.MAP_SHARED_VALIDATE).toBe(0x03);
    expect(m.MAP_TYPE).toBe(0x0f);
    expect(m.MAP_FIXED).toBe(0x10);
    expect(m.MAP_ANONYMOUS).toBe(0x20);
    expect(m.MAP_ANON).toBe(0x20);
    expect(m.MAP_32BIT).toBe(0x40);
    expect(m.MAP_GROWSDOWN).toBe(0x100);
    expect(m.MAP_DENYWRITE).toBe(0x800);
    expect(m.MAP_EXECUTABLE).toBe(0x1000);
    expect(m.MAP_LOCKED).toBe(0x2000);
    expect(m.MAP_NORESERVE).toBe(0x4000);
    expect(m.MAP_POPULATE).toBe(0x8000);
    expect(m.MAP_NONBLOCK).toBe(0x10000);
    expect(m.MAP_STACK).toBe(0x20000);
    expect(m.MAP_HUGETLB).toBe(0x40000);
    expect(m.MAP_SYNC).toBe(0x80000);
    expect(m.MAP_FIXED_NOREPLACE).toBe(0x100000);
    expect(m.MAP_UNINITIALIZED).toBe(0x4000000);
    expect(m.MAP_HUGE_2MB).toBe(0x54000000);
    expect(m.MAP_HUGE_1GB).toBe(0x78000000);
    expect(m.MAP_FAILED).toBe(-1);
  });

  it('every mmap flag is a distinct bit outside the sharing type', () => {
    const bits = [
      m.MAP_FIXED,
      m.MAP_ANONYMOUS,
      m.MAP_32BIT,
      m.MAP_GROWSDOWN,
      m.MAP_DENYWRITE,
      m.MAP_EXECUTABLE,
      m.MAP_LOCKED,
      m.MAP_NORESERVE,
      m.MAP_POPULATE,
      m.MAP_NONBLOCK,
      m.MAP_STACK,
      m.MAP_HUGETLB,
      m.MAP_SYNC,
      m.MAP_FIXED_NOREPLACE,
      m.MAP_UNINITIALIZED,
    ];
    let seen = m.MAP_TYPE;
    for (const b of bits) {
      expect(b & (b - 1)).toBe(0);
      expect(seen & b).toBe(0);
      seen |= b;
    }
  });

  it('msync, mlockall, madvise, mremap', () => {
    expect([m.MS_ASYNC, m.MS_INVALIDATE, m.MS_SYNC]).toEqual([1, 2, 4]);
    expect([m.MCL_CURRENT, m.MCL_FUTURE, m.MCL_ONFAULT]).toEqual([1, 2, 4]);
    expect([
      m.MADV_NORMAL,
      m.MADV_RANDOM,
      m.MADV_SEQUENTIAL,
      m.MADV_WILLNEED,
      m.MADV_DONTNEED,
      m.MADV_FREE,
      m.MADV_REMOVE,
      m.MADV_DONTFORK,
      m.MADV_DOFORK,
      m.MADV_MERGEABLE,
      m.MADV_UNMERGEABLE,
      m.MADV_HUGEPAGE,
      m.MADV_NOHUGEPAGE,
      m.MADV_DONTDUMP,
      m.MADV_DODUMP,
      m.MADV_WIPEONFORK,
      m.MADV_KEEPONFORK,
      m.MADV_HWPOISON,
      m.MADV_SOFT_OFFLINE,
    ]).toEqual([0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 100, 101]);
    expect([m.MREMAP_MAYMOVE, m.MREMAP_FIXED, m.MREMAP_DONTUNMAP]).toEqual([1, 2, 4]);
  });

  it('open and fcntl flags', () => {
    expect([m.O_RDONLY, m.O_WRONLY, m.O_RDWR, m.O_ACCMODE]).toEqual([0, 1, 2, 3]);
    expect(m.O_CREAT).toBe(0x40);
    expect(m.O_EXCL).toBe(0x80);
    expect(m.O_TRUNC).toBe(0x200);
    expect(m.O_APPEND).toBe(0x400);
    expect(m.O_NONBLOCK).toBe(0x800);
    expect(m.O_DIRECTORY).toBe(0x10000);
    expect(m.O_NOFOLLOW).toBe(0x20000);
    expect(m.O_CLOEXEC).toBe(0x80000);
    expect([m.F_DUPFD, m.F_GETFD, m.F_SETFD, m.F_GETFL, m.F_SETFL, m.F_DUPFD_CLOEXEC]).toEqual([
      0, 1, 2, 3, 4, 1030,
    ]);
    expect(m.FD_CLOEXEC).toBe(1);
  });
});
