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
export function hex(n: number | bigint, width = 0): string {
  const s = n.toString(16);
  return '0x' + (width > 0 ? s.padStart(width, '0') : s);
}
