import { describe, expect, it } from 'vitest';
import { Machine } from '../kernel/machine.js';
import { proc_pid_maps } from '../kernel/procfs.js';
import { BlitBatch } from './batch.js';
import { execbuf } from './execbuf.js';
import * as user from './ioctl_wrappers.js';

const SEED = Number(process.env.SEED ?? 1);
const errno = (code: string): unknown => expect.objectContaining({ code });

describe('ioctl wrappers', () => {
  it('bounce buffers are unmapped afterwards, also when the ioctl fails', () => {
    const m = Machine.boot({ seed: SEED });
    const p = m.spawn();
    const fd = p.open('/dev/dri/renderD128');
    const maps = proc_pid_maps(p);
    const h = user.gem_create(p, fd, 10_000);
    user.gem_write(p, fd, h, 4096, [1, 2, 3]);
    expect([...user.gem_read(p, fd, h, 4095, 5)]).toEqual([0, 1, 2, 3, 0]);
    expect(user.gem_read(p, fd, h, 0, 0)).toEqual(new Uint8Array(0));
    expect(() => user.gem_read(p, fd, h, 12_288, 1)).toThrow(errno('EINVAL'));
    expect(() => user.gem_write(p, fd, 77, 0, [1])).toThrow(errno('ENOENT'));
    expect(() => user.getparam(p, fd, -1)).toThrow(errno('EINVAL'));
    expect(() =>
      user.withScratch(p, 1, () => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(proc_pid_maps(p)).toBe(maps);
    // GEM_CREATE rounds up to pages; the handle goes away with GEM_CLOSE.
    expect(() => user.gem_read(p, fd, h, 12_287, 1)).not.toThrow();
    user.gem_close(p, fd, h);
    expect(() => user.gem_close(p, fd, h)).toThrow(errno('EINVAL'));
    expect(m.shutdown()).toEqual([]);
  });

  it('flink/open share an object between two processes', () => {
    const m = Machine.boot({ seed: SEED });
    const a = m.spawn();
    const b = m.spawn();
    const fa = a.open('/dev/dri/card0');
    const fb = b.open('/dev/dri/card0');
    const h = user.gem_create(a, fa, 4096);
    user.gem_write(a, fa, h, 0, [42]);
    const hb = user.gem_open(b, fb, user.gem_flink(a, fa, h));
    expect([...user.gem_read(b, fb, hb, 0, 1)]).toEqual([42]);
    expect(m.shutdown()).toEqual([]);
  });

  it('busy, wait (with its timeout) and sync around a long GPU job', () => {
    const m = Machine.boot({ seed: SEED, gpu: { gen: 8 } });
    const p = m.spawn();
    const fd = p.open('/dev/dri/card0');
    const dst = user.gem_create(p, fd, 1 << 20);
    const b = new BlitBatch(8);
    for (let y = 0; y < 512; y++) b.fill({ dst, color: y, y1: y, y2: y + 1 });
    b.end();
    const bb = user.gem_create(p, fd, b.length);
    user.gem_write(p, fd, bb, 0, b.bytes());
    execbuf(p, fd, {
      objects: [{ handle: dst }],
      batch: { handle: bb, relocs: b.relocs, len: b.length },
      ring: 'blt',
    });
    if (user.gem_busy(p, fd, dst)) {
      expect(user.gem_busy_flags(p, fd, dst) >>> 16).not.toBe(0);
      expect(() => user.gem_wait(p, fd, dst, 0)).toThrow(errno('ETIME'));
    }
    expect(user.gem_wait(p, fd, dst)).toBe(-1n);
    expect(user.gem_busy(p, fd, dst)).toBe(false);
    user.gem_sync(p, fd, dst);
    expect(user.gem_wait(p, fd, dst, 1000)).toBe(1000n);
    expect(new DataView(user.gem_read(p, fd, dst, 511 * 2048, 4).buffer).getUint32(0, true)).toBe(511);
    expect(m.shutdown()).toEqual([]);
  });
});
