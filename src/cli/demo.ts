import { hex } from '../base/page.js';
import { DrmI915UserptrObject } from '../i915/i915_gem_userptr.js';
import { Machine } from '../kernel/machine.js';
import { pagemap, proc_pid_maps } from '../kernel/procfs.js';
import * as uapi from '../uapi/index.js';
import * as user from '../user/index.js';
import { type Io, zooCommand } from './commands.js';

/**
 * `userptr demo`: the zero-copy story. A process allocates memory, wraps it in a userptr object,
 * the GPU blits into it, the CPU reads the result through its own pointer, the process unmaps
 * and the MMU notifier invalidates — each step with pictures of the address space, the object
 * and the GTT. Then a short zoo.
 */
export function demo(io: Io, opts: { seed?: number; zooBudget?: number } = {}): number {
  const say = (s = ''): void => io.out(s);
  const m = Machine.boot({ seed: opts.seed ?? 1 });
  const PAGES = 4;
  const LEN = PAGES * 4096;
  const RW = uapi.PROT_READ | uapi.PROT_WRITE;
  const p = m.spawn();
  const fd = p.open('/dev/dri/card0');

  const space = (title: string, base: number): void => {
    say(`   address space of pid ${p.pid} — ${title}`);
    for (const l of proc_pid_maps(p).split('\n')) if (l) say(`     maps: ${l}`);
    for (let i = 0; i < PAGES; i++) {
      const a = base + i * 4096;
      const [pi] = pagemap(p, a, a + 1);
      const cell = pi?.present ? `pfn ${hex(pi.pfn).padEnd(6)} ${pi.writable ? 'rw' : 'ro'}` : 'not present';
      say(`     ${hex(a)} ─▶ ${cell}`);
    }
  };
  const objectOf = (a: number): DrmI915UserptrObject | null => {
    for (const o of m.i915.dev.objects)
      if (o instanceof DrmI915UserptrObject && o.userptr.ptr === a && !o.freed) return o;
    return null;
  };
  const object = (h: number, a: number): void => {
    const o = objectOf(a);
    if (!o) return say(`   object: handle ${h} is gone`);
    const pages = o.pages ? o.pages.map((f) => hex(f)).join(' ') : 'none (not populated)';
    say(`   object: handle ${h} = userptr ${hex(a)}+${o.size}, refcount ${o.refcount}`);
    say(`     pages: [${pages}]`);
    if (o.vma?.bound) {
      const first = o.vma.start / 4096;
      const ptes = Array.from(
        { length: o.size / 4096 },
        (_, i) => `${hex(o.vma!.start + i * 4096)}─▶pfn ${hex(m.i915.gtt.pte(first + i))}`,
      );
      say(`   GTT: bound at ${hex(o.vma.start)}: ${ptes.join('  ')}`);
    } else {
      say(`   GTT: not bound`);
    }
  };
  const text = (a: number, n: number): string =>
    Array.from(p.read(a, n), (b) => b.toString(16).padStart(2, '0')).join(' ');

  say(`userptr demo — zero copy between a process and the GPU (Linux 3.16 model, seed ${opts.seed ?? 1})`);
  say();
  const a = p.mmap(0, LEN, RW, uapi.MAP_PRIVATE | uapi.MAP_ANONYMOUS);
  for (let i = 0; i < PAGES; i++) p.write(a + i * 4096, new TextEncoder().encode(`page ${i}`));
  say(`1. pid ${p.pid} allocates ${PAGES} pages with mmap and writes "page <i>" into each`);
  space('every page faulted in', a);
  say();

  const b = uapi.drm_i915_gem_userptr.encode({ user_ptr: a, user_size: LEN, flags: 0 });
  p.drmIoctl(fd, uapi.DRM_IOCTL_I915_GEM_USERPTR, b);
  const h = uapi.drm_i915_gem_userptr.decode(b).handle;
  say(`2. DRM_IOCTL_I915_GEM_USERPTR(${hex(a)}, ${LEN}) wraps that memory in GEM object handle ${h}`);
  say('   (the driver registers an MMU notifier on the process; no page is pinned yet)');
  object(h, a);
  say();

  const batch = new user.BlitBatch(7).fill({ dst: h, color: 0xc0ffee11, x2: 1024, y2: 2, pitch: 4096 }).end();
  const bo = user.gem_create(p, fd, 4096);
  user.gem_write(p, fd, bo, 0, batch.bytes());
  user.execbuf(p, fd, {
    objects: [{ handle: h }],
    batch: { handle: bo, len: 0, relocs: batch.relocs },
    ring: 'blt',
  });
  user.gem_wait(p, fd, h);
  say('3. EXECBUFFER2 on the blitter: XY_COLOR_BLT fills pages 0 and 1 with 0xc0ffee11');
  say('   the driver pins the pages it found in the page tables and maps them into the GTT');
  object(h, a);
  say();

  say('4. The CPU reads the result through its own pointer — no copy was made:');
  for (let i = 0; i < PAGES; i++) say(`     ${hex(a + i * 4096)}: ${text(a + i * 4096, 8)}`);
  space('the same frames the GPU wrote', a);
  say();

  p.munmap(a, LEN);
  say(`5. munmap(${hex(a)}, ${LEN}): invalidate_range_start reaches the userptr notifier,`);
  say('   which unbinds the object from the GTT and releases its pages before the PTEs go');
  space('unmapped', a);
  object(h, a);
  user.gem_close(p, fd, bo);
  user.gem_close(p, fd, h);
  p.exit();
  const findings = m.shutdown();
  const mi = m.meminfo();
  say(
    `6. exit: ${mi.freePages}/${mi.totalPages} frames free, ${mi.pinnedPages} pinned; findings: ${findings.length ? findings.map((f) => f.message).join('; ') : 'none'}`,
  );
  say();
  say('Every historic bug of the patch is a switch; the explorer finds each one on its own:');
  const zoo = zooCommand({ budget: opts.zooBudget ?? 100 }, io);
  return findings.length === 0 ? zoo : 1;
}
