import { describe, expect, it } from 'vitest';
import { execbuffer_ioctls } from '../i915/i915_gem_execbuffer.js';
import { Machine } from '../kernel/machine.js';
import { proc_pid_maps } from '../kernel/procfs.js';
import * as uapi from '../uapi/index.js';
import { BlitBatch } from './batch.js';
import { build_execbuf, execbuf, read_execbuf } from './execbuf.js';
import { gem_close, gem_create, gem_read, gem_set_domain, gem_wait, gem_write } from './ioctl_wrappers.js';

const SEED = Number(process.env.SEED ?? 1);

describe('execbuf: the lists in the process’s memory follow the ABI', () => {
  it('lays out exec_object2 entries (batch last) and relocation arrays, and encodes execbuffer2', () => {
    const m = Machine.boot({ seed: SEED });
    const p = m.spawn();
    const b = new BlitBatch(8).copy({ dst: 1, src: 2 }).end();
    const layout = build_execbuf(p, {
      objects: [
        { handle: 1, flags: uapi.EXEC_OBJECT_WRITE },
        { handle: 2, alignment: 4096, offset: 0x5000n },
      ],
      batch: { handle: 3, relocs: b.relocs, len: b.length },
      ring: 'blt',
      flags: uapi.I915_EXEC_NO_RELOC,
      context: 0,
    });
    const eb = uapi.drm_i915_gem_execbuffer2.decode(layout.execbuffer);
    expect(eb).toMatchObject({
      buffers_ptr: BigInt(layout.addr),
      buffer_count: 3,
      batch_start_offset: 0,
      batch_len: 48,
      flags: BigInt(uapi.I915_EXEC_BLT | uapi.I915_EXEC_NO_RELOC),
      rsvd1: 0n,
      rsvd2: 0n,
    });
    const objs = uapi.drm_i915_gem_exec_object2.decodeArray(p.read(layout.addr, 3 * 56), 3);
    expect(objs.map((o) => o.handle)).toEqual([1, 2, 3]);
    expect(objs.map((o) => o.relocation_count)).toEqual([0, 0, 2]);
    expect(objs[0]).toMatchObject({ relocs_ptr: 0n, flags: BigInt(uapi.EXEC_OBJECT_WRITE) });
    expect(objs[1]).toMatchObject({ alignment: 4096n, offset: 0x5000n });
    expect(objs[2]!.relocs_ptr).toBe(BigInt(layout.addr + 3 * 56));
    const relocs = uapi.drm_i915_gem_relocation_entry.decodeArray(p.read(Number(objs[2]!.relocs_ptr), 64), 2);
    expect(relocs.map((r) => ({ ...r, offset: Number(r.offset) }))).toEqual(b.relocs);
    // What the kernel would write back is read from the same memory.
    p.write(layout.addr + 24, [0x00, 0x10]);
    expect(read_execbuf(p, layout).offsets).toEqual([0x1000n, 0x5000n, 0n]);
    p.munmap(layout.addr, layout.size);
    expect(m.shutdown()).toEqual([]);
  });

  it('puts the batch first with I915_EXEC_BATCH_FIRST and frees its memory even when the call fails', () => {
    const m = Machine.boot({ seed: SEED });
    const p = m.spawn();
    const fd = p.open('/dev/dri/card0');
    const layout = build_execbuf(p, {
      objects: [{ handle: 5 }],
      batch: { handle: 6, len: 8 },
      flags: uapi.I915_EXEC_BATCH_FIRST,
    });
    expect(
      uapi.drm_i915_gem_exec_object2.decodeArray(p.read(layout.addr, 112), 2).map((o) => o.handle),
    ).toEqual([6, 5]);
    p.munmap(layout.addr, layout.size);
    const maps = proc_pid_maps(p);
    // Unknown handles: whatever the kernel answers, the lists are unmapped afterwards.
    expect(() => execbuf(p, fd, { objects: [{ handle: 41 }], batch: { handle: 42, len: 8 } })).toThrow();
    expect(proc_pid_maps(p)).toBe(maps);
    expect(m.shutdown()).toEqual([]);
  });
});

describe.skipIf(execbuffer_ioctls.length === 0)('execbuf on the GPU', () => {
  for (const gen of [7, 8] as const) {
    it(`gen ${gen}: a 512×512 blit through the builder and the helper`, () => {
      const m = Machine.boot({ seed: SEED, gpu: { gen } });
      const p = m.spawn();
      const fd = p.open('/dev/dri/card0');
      const MiB = 1 << 20;
      const src = gem_create(p, fd, MiB);
      const dst = gem_create(p, fd, MiB);
      const data = new Uint8Array(MiB).map((_, i) => (i * 13 + 1) & 0xff);
      gem_write(p, fd, src, 0, data);
      const b = new BlitBatch(gen).copy({ dst, src }).end();
      const bb = gem_create(p, fd, 4096);
      gem_write(p, fd, bb, 0, b.bytes());
      const r = execbuf(p, fd, {
        objects: [{ handle: dst }, { handle: src }],
        batch: { handle: bb, relocs: b.relocs, len: b.length },
        ring: 'blt',
      });
      expect(r.presumed[2]).toEqual([r.offsets[0], r.offsets[1]]);
      gem_wait(p, fd, dst);
      gem_set_domain(p, fd, dst, uapi.I915_GEM_DOMAIN_CPU, 0);
      const out = gem_read(p, fd, dst, 0, MiB);
      expect(out.every((v, i) => v === data[i])).toBe(true);
      for (const h of [src, dst, bb]) gem_close(p, fd, h);
      expect(m.shutdown()).toEqual([]);
    });
  }
});
