import { describe, expect, it } from 'vitest';
import {
  DeadlockError,
  ErrnoError,
  KernelBugError,
  Machine,
  MemorySink,
  type Process,
  SegfaultError,
  uapi,
} from '../src/index.js';
import { TASK_SIZE } from '../src/mm/mm_types.js';
import type { Chooser } from '../src/sched/chooser.js';
import type { LockdepGraph } from '../src/sched/lockdep.js';
import { Mutex } from '../src/sched/mutex.js';
import { Completion } from '../src/sched/completion.js';
import type { KGen } from '../src/sched/task.js';

const SEED = Number(process.env.SEED ?? 3);
const RW = uapi.PROT_READ | uapi.PROT_WRITE;
const ANON = uapi.MAP_PRIVATE | uapi.MAP_ANONYMOUS;

describe(`kernel facade (seed ${SEED})`, () => {
  it('errors carry errno and code', () => {
    const m = Machine.boot({ seed: SEED });
    const p = m.spawn();
    try {
      p.munmap(1, 4096);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ErrnoError);
      expect((e as ErrnoError).errno).toBe(22);
      expect((e as ErrnoError).code).toBe('EINVAL');
    }
    expect(() => p.open('/dev/dri/card9')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => p.close(3)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(() => p.ioctl(7, 0xc0186473, new Uint8Array(24))).toThrow(
      expect.objectContaining({ code: 'EBADF' }),
    );
    expect(() => p.mmap(0, 4096, RW, ANON, -1, 0.5)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(m.shutdown()).toEqual([]);
  });

  it('loads and stores fault where a CPU would, whatever the length; a bad buffer is EFAULT', () => {
    const m = Machine.boot({ seed: SEED });
    const p = m.spawn();
    const a = p.mmap(0, 2 * 4096, RW, ANON);
    const fault = (f: () => unknown): unknown => {
      try {
        f();
      } catch (e) {
        return e instanceof SegfaultError ? { signal: e.signal, addr: e.addr } : (e as ErrnoError).code;
      }
      return 'no fault';
    };
    // Longer than any JS buffer, or than the mapping: the first unmapped byte faults.
    for (const len of [2 ** 32 + 1, 2 ** 31, 3 * 4096])
      expect(fault(() => p.read(a, len))).toEqual({ signal: 'SIGSEGV', addr: a + 2 * 4096 });
    // A range running past the end of user space: the pages before it, then TASK_SIZE.
    const top = TASK_SIZE - 4096;
    expect(p.mmap(top, 4096, RW, ANON | uapi.MAP_FIXED)).toBe(top);
    expect(fault(() => p.write(top, new Uint8Array(8192).fill(7)))).toEqual({
      signal: 'SIGSEGV',
      addr: TASK_SIZE,
    });
    expect([...p.read(top + 4090, 6)]).toEqual([7, 7, 7, 7, 7, 7]);
    expect(fault(() => p.read(TASK_SIZE + 4096, 1))).toEqual({ signal: 'SIGSEGV', addr: TASK_SIZE + 4096 });
    // Typed arrays store their own bytes; what is not a buffer is a bad pointer.
    p.write(a, new Uint32Array([0x04030201]));
    p.write(a + 4, new DataView(new Uint8Array([5, 6]).buffer));
    expect([...p.read(a, 6)]).toEqual([1, 2, 3, 4, 5, 6]);
    for (const bad of [null, undefined, 'bytes', 42, {}]) {
      expect(fault(() => p.write(a, bad as Uint8Array))).toBe('EFAULT');
    }
    expect(m.shutdown()).toEqual([]);
  });

  it('setuid: root can drop to a user, who loses CAP_SYS_ADMIN and cannot get it back', () => {
    const m = Machine.boot({ seed: SEED });
    const root = m.spawn({ uid: 0 });
    expect(root.uid).toBe(0);
    expect(root.capable(21)).toBe(true);
    root.setuid(1000);
    expect(root.uid).toBe(1000);
    expect(root.capable(21)).toBe(false);
    expect(() => root.setuid(0)).toThrow(expect.objectContaining({ code: 'EPERM' }));
    expect(m.spawn().uid).toBe(1000);
    m.shutdown();
  });

  it('a call that can never complete throws DeadlockError naming the tasks and locks', () => {
    const m = Machine.boot({ seed: SEED });
    const p = m.spawn();
    const lock = new Mutex(m.sched, 'demo_lock');
    const never = new Completion(m.sched, 'never');
    p.thread('holder', function* (): KGen {
      yield* lock.lock();
      yield* never.wait_for_completion();
    });
    m.run();
    let err: unknown;
    try {
      m.syscall(
        p,
        'take',
        (function* (): KGen<number> {
          yield* lock.lock();
          return 0;
        })(),
      );
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DeadlockError);
    expect((err as DeadlockError).message).toContain(
      'pid100/holder waits for completion never, holding [demo_lock]',
    );
    expect((err as DeadlockError).message).toContain('waits for mutex demo_lock');
  });

  it('a BUG in a call throws KernelBugError with the finding', () => {
    const m = Machine.boot({ seed: SEED });
    const p = m.spawn();
    expect(() =>
      m.syscall(
        p,
        'bug',
        (function* (): KGen<number> {
          yield { op: 'about to fail' };
          return m.sched.BUG('demo bug');
        })(),
      ),
    ).toThrow(KernelBugError);
    expect(m.findings().map((f) => [f.kind, f.message, f.task])).toEqual([['BUG', 'demo bug', 'pid100']]);
  });

  it('fork shares open files; exit closes them; the address space goes with the last user', () => {
    const m = Machine.boot({ seed: SEED });
    const p = m.spawn();
    const a = p.mmap(0, 3 * 4096, RW, ANON);
    p.write(a, new Uint8Array(3 * 4096).fill(7));
    const used = m.meminfo().totalPages - m.meminfo().freePages;
    expect(used).toBe(3);
    const c = p.fork();
    expect(c.mm).not.toBe(p.mm);
    expect(m.meminfo().totalPages - m.meminfo().freePages).toBe(3);
    p.exit();
    expect(p.exited).toBe(true);
    expect(() => p.mmap(0, 4096, RW, ANON)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
    expect([...c.read(a, 2)]).toEqual([7, 7]);
    c.exit();
    expect(m.meminfo().freePages).toBe(m.meminfo().totalPages);
    expect(m.shutdown()).toEqual([]);
  });

  it('user threads interleave, and the same seed gives the identical event trace', () => {
    function run(seed: number): string {
      const m = Machine.boot({ seed });
      const sink = new MemorySink();
      m.trace(sink);
      const p = m.spawn();
      const base = p.mmap(0, 16 * 4096, RW, ANON);
      const order: string[] = [];
      for (const name of ['a', 'b', 'c']) {
        p.thread(name, function* (api) {
          for (let i = 0; i < 4; i++) {
            const r = yield* api.write(
              base + (name.charCodeAt(0) - 97) * 4096 * 4 + i * 4096,
              new Uint8Array([i]),
            );
            expect(r).toBeNull();
            order.push(name);
            yield* api.madvise(base, 4096, uapi.MADV_DONTNEED);
          }
        });
      }
      m.run();
      expect(order).toHaveLength(12);
      expect(m.shutdown()).toEqual([]);
      return JSON.stringify(sink.events) + order.join('');
    }
    const one = run(SEED);
    expect(run(SEED)).toBe(one);
    const others = [SEED + 1, SEED + 2, SEED + 3].map(run);
    expect(others.some((t) => t !== one)).toBe(true);
  });

  it('shutdown kills live processes and reports nothing for a correct kernel', () => {
    const m = Machine.boot({ seed: SEED });
    const ps: Process[] = [m.spawn(), m.spawn()];
    for (const p of ps) {
      const a = p.mmap(0, 8 * 4096, RW, uapi.MAP_SHARED | uapi.MAP_ANONYMOUS);
      p.write(a, new Uint8Array(8 * 4096).fill(1));
      p.fork();
    }
    expect(m.processes.size).toBe(4);
    expect(m.shutdown()).toEqual([]);
    expect(m.processes.size).toBe(0);
    expect(m.meminfo().freePages).toBe(m.meminfo().totalPages);
  });

  it('boot rejects bad configuration with a readable error', () => {
    expect(() => Machine.boot({ ramBytes: 1000 })).toThrow(/ramBytes/);
    expect(() => Machine.boot({ gpu: { gen: 6 as 7 } })).toThrow(/gen/);
    expect(() => Machine.boot({ bugs: ['no-such-bug'] })).toThrow(/unknown bug id 'no-such-bug'/);
    expect(() => Machine.boot({ seed: -1 })).toThrow(/seed/);
    for (const systemWorkers of [0, -1, 1.5, 2 ** 60, 65]) {
      expect(() => Machine.boot({ systemWorkers })).toThrow(/systemWorkers must be an integer from 1 to 64/);
    }
    expect(() => Machine.boot({ mmuNotifier: 'yes' as unknown as boolean })).toThrow(/mmuNotifier/);
    expect(() => Machine.boot({ chooser: {} as Chooser })).toThrow(
      /chooser must have choose\(\) and pick\(\)/,
    );
    expect(() => Machine.boot({ lockdep: {} as unknown as LockdepGraph })).toThrow(
      /lockdep must be a LockdepGraph/,
    );
    // Every error is the configuration's, raised before anything was built.
    expect(() => Machine.boot({ faults: 'x' as unknown as string[] })).toThrow(TypeError);
    expect(Machine.boot({ systemWorkers: 1 }).shutdown()).toEqual([]);
    const m = Machine.boot();
    expect(m.spawn(null).uid).toBe(1000);
    expect(() => m.spawn({ uid: -1 })).toThrow(/spawn: bad uid -1/);
    expect(m.shutdown()).toEqual([]);
  });
});

describe('threads and exit', () => {
  it('exit kills the other threads at their next kernel entry; the last one tears the mm down', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const m = Machine.boot({ seed });
      const p = m.spawn();
      const a = p.mmap(0, 4 * 4096, RW, ANON);
      let writes = 0;
      const t = p.thread('writer', function* (api) {
        for (;;) {
          const r = yield* api.write(a + (writes % 4) * 4096, new Uint8Array([writes & 0xff]));
          expect(r).toBeNull();
          writes++;
        }
      });
      for (let i = 0; i < 5; i++) p.read(a, 1);
      expect(p.mm!.mm_users).toBe(2);
      const mm = p.mm!;
      p.exit();
      m.run();
      expect(t.done, `seed ${seed}`).toBe(true);
      expect(mm.freed).toBe(true);
      expect(m.findings(), `seed ${seed}`).toEqual([]);
      expect(m.shutdown()).toEqual([]);
      expect(m.meminfo().freePages).toBe(m.meminfo().totalPages);
    }
  });
});
