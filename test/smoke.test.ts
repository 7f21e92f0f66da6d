import { describe, expect, it } from 'vitest';
import { Machine, SegfaultError, ErrnoError, uapi } from '../src/index.js';

const { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_SHARED } = uapi;

describe('smoke', () => {
  it('maps, writes, forks, COW splits, exits cleanly', () => {
    const m = Machine.boot({ seed: 1 });
    const p = m.spawn();
    const a = p.mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    expect(a).toBe(0x7ffff7fff000 - 8192);
    p.write(a, [1, 2, 3]);
    expect([...p.read(a, 4)]).toEqual([1, 2, 3, 0]);
    const c = p.fork();
    c.write(a, [9]);
    expect(p.read(a, 1)[0]).toBe(1);
    expect(c.read(a, 1)[0]).toBe(9);
    const s = p.mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
    const c2 = p.fork();
    c2.write(s, [42]);
    expect(p.read(s, 1)[0]).toBe(42);
    p.munmap(a, 8192);
    expect(() => p.read(a, 1)).toThrow(SegfaultError);
    expect(() => p.munmap(a + 1, 10)).toThrow(ErrnoError);
    c.exit();
    expect(m.shutdown()).toEqual([]);
    expect(m.meminfo().freePages).toBe(m.meminfo().totalPages);
  });
});
