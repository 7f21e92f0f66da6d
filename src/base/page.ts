/** Page and bit math shared by every layer. */
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
export const PAGE_MASK = ~(PAGE_SIZE - 1);

/** Addresses are plain numbers (< 2^53); avoid 32-bit bitwise operators on them. */
export function offsetInPage(addr: number): number {
  return addr % PAGE_SIZE;
}
export function pageAlignDown(addr: number): number {
  return addr - (addr % PAGE_SIZE);
}
export function PAGE_ALIGN(addr: number): number {
  const r = addr % PAGE_SIZE;
  return r === 0 ? addr : addr + (PAGE_SIZE - r);
}
export function isPageAligned(addr: number): boolean {
  return addr % PAGE_SIZE === 0;
}
/** Page frame / virtual page number of an address. */
export function pfnOf(addr: number): number {
  return Math.floor(addr / PAGE_SIZE);
}
export function pagesSpanned(addr: number, len: number): number {
  if (len === 0) return 0;
  return pfnOf(addr + len - 1) - pfnOf(addr) + 1;
}
/**
 * `n` in hex with a `0x` prefix, at least `width` digits. Plain numbers are cached: a simulated
 * run formats the same few addresses over and over (scheduling-point labels), and
 * Number.prototype.toString(16) of an address costs hundreds of nanoseconds.
 */
export function hex(n: number | bigint, width = 0): string {
  if (width === 0 && typeof n === 'number') {
    let s = hexCache.get(n);
    if (s === undefined) {
      if (hexCache.size >= HEX_CACHE_MAX) hexCache.clear();
      s = '0x' + n.toString(16);
      hexCache.set(n, s);
    }
    return s;
  }
  const s = n.toString(16);
  return '0x' + (width > 0 ? s.padStart(width, '0') : s);
}
const hexCache = new Map<number, string>();
const HEX_CACHE_MAX = 4096;
