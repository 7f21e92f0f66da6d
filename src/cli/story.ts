import { hex } from '../base/page.js';
import { Machine } from '../kernel/machine.js';
import type { Process } from '../kernel/process.js';
import { pagemap, proc_pid_maps } from '../kernel/procfs.js';
import { MmuNotifier, mmu_notifier_register, mmu_notifier_unregister } from '../mm/mmu_notifier.js';
import type { KGen } from '../sched/task.js';
import * as uapi from '../uapi/index.js';

/**
 * The scripted story of the machine that `npm start` tells until the `userptr` command has its
 * GPU demo: a process maps memory, forks, both write, copy-on-write splits the pages, and an MMU
 * notifier (what the userptr driver will register) reports every range that stops being valid.
 */
export function story(seed: number, out: (line: string) => void): number {
  const m = Machine.boot({ seed });
  const PAGES = 4;
  const LEN = PAGES * 4096;
  const heard: string[] = [];
  const notifier = new MmuNotifier(
    {
      *invalidate_range_start(_mn, mm, start, end): KGen {
        const t = m.sched.current;
        const sem =
          mm.mmap_sem.writer === t
            ? 'mmap_sem held for write'
            : mm.mmap_sem.readers.includes(t!)
              ? 'mmap_sem held for read'
              : 'no mmap_sem';
        heard.push(
          `invalidate_range_start [${hex(start)}, ${hex(end)})  ${(end - start) / 4096} page(s), ${sem}`,
        );
      },
      *release(): KGen {
        heard.push('release: the address space is going away');
      },
    },
    'story-notifier',
  );
  const say = (s = ''): void => out(s);
  const listen = (): void => {
    for (const h of heard.splice(0)) say(`     notifier: ${h}`);
  };
  const pages = (title: string, ps: Process[], base: number): void => {
    say(`     ${title}`);
    say(`       page              ${ps.map((p) => `pid ${p.pid}`.padEnd(22)).join('')}`);
    for (let i = 0; i < PAGES; i++) {
      const a = base + i * 4096;
      const cells = ps.map((p) => {
        const [pi] = pagemap(p, a, a + 1);
        if (!pi?.present) return 'not present'.padEnd(22);
        return `pfn ${hex(pi.pfn).padEnd(7)} ${pi.writable ? 'rw' : 'ro'} map ${pi.mapcount}`.padEnd(22);
      });
      say(`       ${hex(a)}    ${cells.join('')}`);
    }
  };
  const text = (p: Process, a: number): string =>
    new TextDecoder().decode(p.read(a, 8)).replace(/\0+$/, '') || '(zeros)';
  /** Eight bytes of text, zero-padded, so a later write replaces the whole word. */
  const word = (s: string): Uint8Array => {
    const b = new Uint8Array(8);
    b.set(new TextEncoder().encode(s).subarray(0, 8));
    return b;
  };

  say(`userptr: the simulated machine (a Linux 3.16 model), seed ${seed}`);
  say(`RAM ${m.meminfo().totalPages} frames of 4 KiB, ${m.meminfo().freePages} free`);
  say();

  const parent = m.spawn();
  const base = parent.mmap(0, LEN, uapi.PROT_READ | uapi.PROT_WRITE, uapi.MAP_PRIVATE | uapi.MAP_ANONYMOUS);
  say(`1. Process ${parent.pid} maps ${PAGES} pages of anonymous private memory`);
  say(`     mmap(NULL, ${LEN}, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS) = ${hex(base)}`);
  say(`     /proc/${parent.pid}/maps: ${proc_pid_maps(parent)}`);
  pages('Nothing is resident yet: pages are faulted in on first touch.', [parent], base);
  say();

  for (let i = 0; i < PAGES; i++) parent.write(base + i * 4096, word(`parent${i}`));
  say(`2. It writes "parent<i>" into each page: each write fault allocates a zeroed frame`);
  pages('Every page now has a frame of its own, mapped once:', [parent], base);
  say();

  m.syscall(parent, 'mmu_notifier_register', mmu_notifier_register(notifier, parent.mm!));
  say(`3. A driver registers an MMU notifier on process ${parent.pid}'s mm, as i915 does for userptr`);
  say(`     mm_count ${parent.mm!.mm_count} (the notifier pins the mm_struct, not the mappings)`);
  say();

  const child = parent.fork();
  say(`4. fork(): process ${child.pid} gets a copy-on-write copy of the address space`);
  listen();
  pages('Both map the same frames, write-protected, each frame mapped twice:', [parent, child], base);
  say();

  child.write(base, word('child0'));
  say(`5. The child writes page 0: the write fault copies the frame for the child`);
  say(`     (the notifier is on the parent's mm, so it hears nothing)`);
  listen();
  parent.write(base + 4096, word('PARENT1'));
  say(`6. The parent writes page 1: its copy-on-write break replaces the parent's PTE`);
  listen();
  pages('Pages 0 and 1 are split; 2 and 3 are still shared:', [parent, child], base);
  say(`     parent page 0 reads "${text(parent, base)}", child page 0 reads "${text(child, base)}"`);
  say(
    `     parent page 1 reads "${text(parent, base + 4096)}", child page 1 reads "${text(child, base + 4096)}"`,
  );
  say();

  parent.mprotect(base + 2 * 4096, 4096, uapi.PROT_READ);
  say(`7. The parent makes page 2 read-only: mprotect splits the VMA and invalidates the page`);
  listen();
  say(`     /proc/${parent.pid}/maps:`);
  for (const l of proc_pid_maps(parent).split('\n')) say(`       ${l}`);
  say();

  parent.munmap(base, LEN);
  say(`8. The parent unmaps the whole range`);
  listen();
  say();

  m.syscall(parent, 'mmu_notifier_unregister', mmu_notifier_unregister(notifier, parent.mm!));
  child.exit();
  parent.exit();
  const findings = m.shutdown();
  say(`9. The driver unregisters (->release runs once more, then an SRCU grace period) and both exit`);
  listen();
  const mi = m.meminfo();
  say(`     meminfo: ${mi.freePages}/${mi.totalPages} frames free, ${mi.pinnedPages} pinned`);
  say(
    `     findings: ${findings.length === 0 ? 'none (lockdep, deadlock, leak checks all clean)' : findings.map((f) => f.message).join('; ')}`,
  );
  return findings.length === 0 && mi.freePages === mi.totalPages ? 0 : 1;
}
