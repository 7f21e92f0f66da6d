/**
 * Memory-management and open(2) constants as a Linux x86_64 program sees them:
 * include/uapi/asm-generic/mman-common.h, asm-generic/mman.h (which arch/x86's uapi mman.h
 * includes after adding MAP_32BIT), linux/mman.h (mremap) and asm-generic/fcntl.h.
 *
 * Values marked "(after 3.16)" did not exist in the modelled kernel: a faithful 3.16 rejects them
 * (EINVAL) or ignores them, as the syscall concerned did then.
 */

// --- mmap/mprotect protection (mman-common.h) -----------------------------------------------------

export const PROT_NONE = 0x0;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const PROT_EXEC = 0x4;
/** Page may be used for atomic ops (ignored on x86). */
export const PROT_SEM = 0x8;
/** mprotect: extend the change to the start of a grows-down VMA. */
export const PROT_GROWSDOWN = 0x01000000;
/** mprotect: extend the change to the end of a grows-up VMA. */
export const PROT_GROWSUP = 0x02000000;

// --- mmap flags ---------------------------------------------------------------------------------

export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
/** MAP_SHARED with strict flag validation (after 3.16: 4.15). */
export const MAP_SHARED_VALIDATE = 0x03;
/** Mask of the sharing type. */
export const MAP_TYPE = 0x0f;
/** Interpret addr exactly; replaces whatever was mapped there. */
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_ANON = MAP_ANONYMOUS;
/** Compatibility: files are the default. */
export const MAP_FILE = 0;
/** x86 only: map in the first 2 GiB (arch/x86/include/uapi/asm/mman.h). */
export const MAP_32BIT = 0x40;
/** Stack-like segment (asm-generic/mman.h). */
export const MAP_GROWSDOWN = 0x0100;
/** Ignored. */
export const MAP_DENYWRITE = 0x0800;
/** Ignored. */
export const MAP_EXECUTABLE = 0x1000;
/** Pages are locked (mlock). */
export const MAP_LOCKED = 0x2000;
/** Do not check for reservations (no swap accounting). */
export const MAP_NORESERVE = 0x4000;
/** Populate (prefault) the page tables. */
export const MAP_POPULATE = 0x8000;
/** Do not block on IO (with MAP_POPULATE). */
export const MAP_NONBLOCK = 0x10000;
/** Give out an address that is best suited for process/thread stacks. */
export const MAP_STACK = 0x20000;
/** Create a huge page mapping. */
export const MAP_HUGETLB = 0x40000;
/** Perform synchronous page faults for the mapping (after 3.16: 4.15). */
export const MAP_SYNC = 0x80000;
/** MAP_FIXED that fails with EEXIST instead of replacing (after 3.16: 4.17). */
export const MAP_FIXED_NOREPLACE = 0x100000;
/** Anonymous pages are not cleared (embedded configs only). */
export const MAP_UNINITIALIZED = 0x4000000;

/** MAP_HUGETLB page-size encoding: log2(size) in bits 26-31. */
export const MAP_HUGE_SHIFT = 26;
export const MAP_HUGE_MASK = 0x3f;
export const MAP_HUGE_2MB = 21 << MAP_HUGE_SHIFT;
export const MAP_HUGE_1GB = (30 << MAP_HUGE_SHIFT) >>> 0;

/**
 * What mmap(2) returns on failure: `(void *) -1`. Addresses are numbers in this simulator, so it
 * is -1 (as a 64-bit pointer, 0xffffffffffffffff).
 */
export const MAP_FAILED = -1;

// --- msync / mlockall ---------------------------------------------------------------------------

export const MS_ASYNC = 1;
export const MS_INVALIDATE = 2;
export const MS_SYNC = 4;

export const MCL_CURRENT = 1;
export const MCL_FUTURE = 2;
/** (after 3.16: 4.4) */
export const MCL_ONFAULT = 4;

// --- madvise ------------------------------------------------------------------------------------

export const MADV_NORMAL = 0;
export const MADV_RANDOM = 1;
export const MADV_SEQUENTIAL = 2;
export const MADV_WILLNEED = 3;
/** Drop the pages now: the next touch reads zeroes (anonymous) or the file. */
export const MADV_DONTNEED = 4;
/** Free the pages lazily (after 3.16: 4.5). */
export const MADV_FREE = 8;
/** Punch a hole in the backing store (shmem/tmpfs). */
export const MADV_REMOVE = 9;
/** Do not inherit the range across fork (VM_DONTCOPY). */
export const MADV_DONTFORK = 10;
/** Undo MADV_DONTFORK. */
export const MADV_DOFORK = 11;
/** KSM may merge identical pages. */
export const MADV_MERGEABLE = 12;
export const MADV_UNMERGEABLE = 13;
/** Worth backing with transparent huge pages. */
export const MADV_HUGEPAGE = 14;
export const MADV_NOHUGEPAGE = 15;
/** Exclude from a core dump. */
export const MADV_DONTDUMP = 16;
export const MADV_DODUMP = 17;
/** Zero the range in the child after fork (after 3.16: 4.14). */
export const MADV_WIPEONFORK = 18;
/** (after 3.16: 4.14) */
export const MADV_KEEPONFORK = 19;
/** Poison a page (testing). */
export const MADV_HWPOISON = 100;
/** Soft-offline a page (testing). */
export const MADV_SOFT_OFFLINE = 101;

// --- mremap (include/uapi/linux/mman.h) ---------------------------------------------------------

export const MREMAP_MAYMOVE = 1;
export const MREMAP_FIXED = 2;
/** (after 3.16: 5.7) */
export const MREMAP_DONTUNMAP = 4;

// --- open(2) flags and fcntl (asm-generic/fcntl.h, x86_64 values) -------------------------------

export const O_ACCMODE = 0o3;
export const O_RDONLY = 0o0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_NOCTTY = 0o400;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;
export const O_NONBLOCK = 0o4000;
export const O_DSYNC = 0o10000;
export const O_DIRECT = 0o40000;
export const O_LARGEFILE = 0o100000;
export const O_DIRECTORY = 0o200000;
export const O_NOFOLLOW = 0o400000;
export const O_NOATIME = 0o1000000;
/** Close on exec: 0x80000. Also what DRM_CLOEXEC is. */
export const O_CLOEXEC = 0o2000000;

export const F_DUPFD = 0;
export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const F_DUPFD_CLOEXEC = 1030;
/** The per-descriptor flag of F_GETFD/F_SETFD. */
export const FD_CLOEXEC = 1;
