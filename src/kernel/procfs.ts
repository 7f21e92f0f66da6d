import { PAGE_SIZE } from '../base/page.js';
import { VM_EXEC, VM_MAYSHARE, VM_READ, VM_WRITE, pte_pfn, pte_special, pte_write } from '../mm/mm_types.js';
import type { Process } from './process.js';

/** /proc/<pid>/maps: one line per VMA, in Linux's format. */
export function proc_pid_maps(p: Process): string {
  const mm = p.mm;
  if (!mm) return '';
  const lines: string[] = [];
  for (const vma of mm.mm_rb) {
    const f = vma.vm_flags;
    const perms =
      (f & VM_READ ? 'r' : '-') +
      (f & VM_WRITE ? 'w' : '-') +
      (f & VM_EXEC ? 'x' : '-') +
      (f & VM_MAYSHARE ? 's' : 'p');
    const name = vma.vm_file
      ? vma.vm_file.path.startsWith('dev/zero')
        ? '/dev/zero (deleted)'
        : vma.vm_file.path
      : '';
    const off = vma.vm_file ? vma.vm_pgoff * PAGE_SIZE : 0;
    lines.push(
      `${vma.start.toString(16).padStart(8, '0')}-${vma.end.toString(16).padStart(8, '0')} ${perms} ` +
        `${off.toString(16).padStart(8, '0')} 00:00 0${name ? ' '.repeat(10) + name : ''}`,
    );
  }
  return lines.join('\n');
}

/** One page of /proc/<pid>/pagemap, decoded: what the page table says about `addr`. */
export interface PageInfo {
  addr: number;
  present: boolean;
  pfn: number;
  writable: boolean;
  /** A PFN mapping (device memory): no struct page. */
  special: boolean;
  /** Mappings of the frame across all processes (page_mapcount). */
  mapcount: number;
}

/** The page-table view of [start, end), page by page. */
export function pagemap(p: Process, start: number, end: number): PageInfo[] {
  const mm = p.mm;
  const out: PageInfo[] = [];
  for (let a = start - (start % PAGE_SIZE); a < end; a += PAGE_SIZE) {
    const pte = mm?.pgd.get(a / PAGE_SIZE);
    if (pte === undefined) {
      out.push({ addr: a, present: false, pfn: -1, writable: false, special: false, mapcount: 0 });
      continue;
    }
    const pfn = pte_pfn(pte);
    const special = pte_special(pte);
    out.push({
      addr: a,
      present: true,
      pfn,
      writable: pte_write(pte),
      special,
      mapcount: special ? 0 : p.machine.ram.page_mapcount(pfn),
    });
  }
  return out;
}
