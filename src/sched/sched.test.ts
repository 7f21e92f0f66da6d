import { describe, expect, it } from 'vitest';
import { ERRNO } from '../base/errno.js';
import { FirstChooser, ScriptedChooser, SeededChooser } from './chooser.js';
import { Completion } from './completion.js';
import { LockdepGraph } from './lockdep.js';
import { Mutex } from './mutex.js';
import { RwSemaphore } from './rwsem.js';
import { Scheduler } from './scheduler.js';
import { Spinlock } from './spinlock.js';
import { SrcuStruct } from './srcu.js';
import type { KGen } from './task.js';
import { INIT_WORK, alloc_workqueue, cancel_work_sync, flush_work, queue_work } from './workqueue.js';
import { MemorySink } from '../trace/events.js';

const SEED = Number(process.env.SEED ?? 1);

function sched(seed = SEED, lockdep?: LockdepGraph): Scheduler {
  return new Scheduler({ chooser: new SeededChooser(seed), ...(lockdep ? { lockdep } : {}) });
}

describe(`sched (seed ${SEED})`, () => {
  it('mutex gives mutual exclusion under every seed', () => {
    for (let seed = 1; seed <= 50; seed++) {
      const s = sched(seed);
      const m = new Mutex(s, 'm');
      let inside = 0;
      let maxInside = 0;
      let total = 0;
      function* body(): KGen {
        for (let i = 0; i < 5; i++) {
          yield* m.lock();
          inside++;
          maxInside = Math.max(maxInside, inside);
          yield { op: 'critical' };
          total++;
          inside--;
          m.unlock();
        }
      }
      for (let i = 0; i < 3; i++) s.spawn(`t${i}`, 'kthread', body());
      expect(s.runIdle()).toBe(true);
      expect(maxInside).toBe(1);
      expect(total).toBe(15);
      expect(s.findings).toEqual([]);
    }
  });

  it('lockdep reports an ABBA order seen in two different runs sharing one graph', () => {
    const graph = new LockdepGraph();
    function run(first: 'a' | 'b'): Scheduler {
      const s = new Scheduler({ chooser: new FirstChooser(), lockdep: graph, runLabel: `run-${first}` });
      const a = new Mutex(s, 'lock_a');
      const b = new Mutex(s, 'lock_b');
      const [x, y] = first === 'a' ? [a, b] : [b, a];
      s.spawn(
        't',
        'kthread',
        (function* () {
          yield* x.lock();
          yield* y.lock();
          y.unlock();
          x.unlock();
        })(),
      );
      s.runIdle();
      return s;
    }
    expect(run('a').findings).toEqual([]);
    const second = run('b');
    expect(second.findings).toHaveLength(1);
    const f = second.findings[0]!;
    expect(f.kind).toBe('lockdep');
    expect(f.message).toMatch(/circular locking dependency/);
    expect(f.detail).toMatch(/lock_a -> lock_b: first seen in task t at step \d+ of run run-a/);
    expect(f.fatal).toBe(false);
  });

  it('a real ABBA deadlock is detected as a wait-for cycle with tasks and held locks', () => {
    const s = new Scheduler({ chooser: new ScriptedChooser().then('t1', 't2', 't1', 't2', 't1', 't2') });
    const a = new Mutex(s, 'A');
    const b = new Mutex(s, 'B');
    s.spawn(
      't1',
      'kthread',
      (function* () {
        yield* a.lock();
        yield* b.lock();
      })(),
    );
    s.spawn(
      't2',
      'kthread',
      (function* () {
        yield* b.lock();
        yield* a.lock();
      })(),
    );
    s.runIdle();
    const dl = s.findings.filter((f) => f.kind === 'deadlock');
    expect(dl).toHaveLength(1);
    expect(dl[0]!.message).toMatch(/t\d waits for mutex [AB]; t\d waits for mutex [AB]/);
    expect(dl[0]!.detail).toMatch(/holding \[[AB]\]/);
    expect(dl[0]!.fatal).toBe(true);
    expect(s.findings.some((f) => f.kind === 'lockdep')).toBe(true);
  });

  it('runUntil reports a stuck system with every blocked task', () => {
    const s = sched();
    const c = new Completion(s, 'never');
    const t = s.spawn('waiter', 'kthread', c.wait_for_completion());
    expect(s.runUntil(() => t.done)).toBe(false);
    const f = s.findings.at(-1)!;
    expect(f.kind).toBe('deadlock');
    expect(f.detail).toContain('waiter waits for completion never, holding no locks');
  });

  it('sleeping while holding a spinlock is a might-sleep finding', () => {
    const s = sched();
    const sp = new Spinlock(s, 'sp');
    const m = new Mutex(s, 'm');
    s.spawn(
      't',
      'kthread',
      (function* () {
        yield* sp.lock();
        yield* m.lock();
        m.unlock();
        sp.unlock();
      })(),
    );
    s.runIdle();
    expect(s.findings.map((f) => f.kind)).toContain('might-sleep');
  });

  it('spinning on a contended spinlock is not a sleep', () => {
    for (let seed = 1; seed < 20; seed++) {
      const s = sched(seed);
      const sp = new Spinlock(s, 'sp');
      const outer = new Spinlock(s, 'outer');
      let n = 0;
      function* body(): KGen {
        yield* outer.lock();
        outer.unlock();
        yield* sp.lock();
        n++;
        yield { op: 'x' };
        sp.unlock();
      }
      s.spawn('a', 'kthread', body());
      s.spawn('b', 'kthread', body());
      s.runIdle();
      expect(n).toBe(2);
      expect(s.findings).toEqual([]);
    }
  });

  it('mutex_lock_interruptible returns -EINTR on a pending signal only when contended', () => {
    const s = new Scheduler({ chooser: new FirstChooser() });
    const m = new Mutex(s, 'm');
    const rets: number[] = [];
    const holder = s.spawn(
      'holder',
      'kthread',
      (function* () {
        yield* m.lock();
        yield* new Completion(s, 'forever').wait_for_completion();
      })(),
    );
    const waiter = s.spawn(
      'waiter',
      'user',
      (function* () {
        rets.push(yield* m.lock_interruptible());
      })(),
    );
    s.runIdle();
    expect(waiter.state).toBe('blocked');
    s.signal(waiter);
    s.runIdle();
    expect(rets).toEqual([-ERRNO.EINTR]);
    expect(waiter.held).toEqual([]);
    expect(holder.state).toBe('blocked');
  });

  it('rwsem: readers share, writers exclude, a queued writer blocks new readers', () => {
    const s = new Scheduler({ chooser: new ScriptedChooser() });
    const sem = new RwSemaphore(s, 'mmap_sem');
    const order: string[] = [];
    const gate = new Completion(s, 'gate');
    s.spawn(
      'r1',
      'kthread',
      (function* () {
        yield* sem.down_read();
        order.push('r1');
        yield* gate.wait_for_completion();
        sem.up_read();
      })(),
    );
    s.runIdle();
    s.spawn(
      'w',
      'kthread',
      (function* () {
        yield* sem.down_write();
        order.push('w');
        sem.up_write();
      })(),
    );
    s.runIdle();
    s.spawn(
      'r2',
      'kthread',
      (function* () {
        yield* sem.down_read();
        order.push('r2');
        sem.up_read();
      })(),
    );
    s.runIdle();
    expect(order).toEqual(['r1']);
    s.spawn(
      'opener',
      'kthread',
      (function* () {
        gate.complete();
      })(),
    );
    s.runIdle();
    expect(order).toEqual(['r1', 'w', 'r2']);
  });

  it('synchronize_srcu waits for readers that started before it, not later ones', () => {
    const s = new Scheduler({ chooser: new FirstChooser() });
    const srcu = new SrcuStruct(s, 'srcu');
    const gate = new Completion(s, 'gate');
    const log: string[] = [];
    s.spawn(
      'reader',
      'kthread',
      (function* () {
        const idx = srcu.read_lock();
        log.push('read-start');
        yield* gate.wait_for_completion();
        log.push('read-end');
        srcu.srcu_read_unlock(idx);
      })(),
    );
    s.runIdle();
    s.spawn(
      'sync',
      'kthread',
      (function* () {
        yield* srcu.synchronize_srcu();
        log.push('synced');
      })(),
    );
    s.runIdle();
    expect(log).toEqual(['read-start']);
    // A reader that starts after the flip does not hold the grace period up.
    s.spawn(
      'late',
      'kthread',
      (function* () {
        srcu.read_lock();
        log.push('late-reader');
        yield* new Completion(s, 'forever').wait_for_completion();
      })(),
    );
    s.runIdle();
    s.spawn(
      'open',
      'kthread',
      (function* () {
        gate.complete();
      })(),
    );
    s.runIdle();
    expect(log).toEqual(['read-start', 'late-reader', 'read-end', 'synced']);
  });

  it('synchronize_srcu inside a read section of the same srcu is reported', () => {
    const s = sched();
    const srcu = new SrcuStruct(s, 'srcu');
    s.spawn(
      't',
      'kthread',
      (function* () {
        srcu.read_lock();
        yield* srcu.synchronize_srcu();
      })(),
    );
    s.runIdle();
    expect(s.findings.some((f) => f.kind === 'lockdep' && /Illegal synchronize_srcu/.test(f.message))).toBe(
      true,
    );
    expect(s.findings.some((f) => f.kind === 'deadlock')).toBe(true);
  });

  it('workqueue items run concurrently on several workers; flush and cancel wait', () => {
    const s = new Scheduler({ chooser: new SeededChooser(SEED, 0) });
    const wq = alloc_workqueue(s, 'events', 3);
    let running = 0;
    let maxRunning = 0;
    const works = [0, 1, 2].map((i) =>
      INIT_WORK(`w${i}`, function* () {
        running++;
        maxRunning = Math.max(maxRunning, running);
        for (let k = 0; k < 5; k++) yield { op: 'busy' };
        running--;
      }),
    );
    let flushed = false;
    s.spawn(
      'submitter',
      'kthread',
      (function* () {
        for (const w of works) expect(queue_work(wq, w)).toBe(true);
        expect(queue_work(wq, works[0]!)).toBe(false);
        for (const w of works) yield* flush_work(w);
        flushed = true;
        expect(running).toBe(0);
      })(),
    );
    s.runIdle();
    expect(flushed).toBe(true);
    expect(maxRunning).toBeGreaterThan(1);
    // cancel_work_sync removes a pending instance: it never runs.
    let ran = false;
    const w = INIT_WORK('late', function* () {
      ran = true;
    });
    s.spawn(
      'canceller',
      'kthread',
      (function* () {
        queue_work(wq, w);
        expect(yield* cancel_work_sync(w)).toBe(true);
      })(),
    );
    s.chooser = new ScriptedChooser().then('canceller', 'canceller', 'canceller');
    s.runIdle();
    expect(ran).toBe(false);
    expect(s.findings).toEqual([]);
  });

  it('flushing a work item under a lock the work takes is a lockdep inversion', () => {
    const s = new Scheduler({ chooser: new FirstChooser() });
    const wq = alloc_workqueue(s, 'events', 1);
    const m = new Mutex(s, 'struct_mutex');
    const w = INIT_WORK('release_worker', function* () {
      yield* m.lock();
      m.unlock();
    });
    s.spawn(
      'a',
      'kthread',
      (function* () {
        queue_work(wq, w);
        yield* flush_work(w);
      })(),
    );
    s.runIdle();
    s.spawn(
      'b',
      'kthread',
      (function* () {
        yield* m.lock();
        queue_work(wq, w);
        yield* flush_work(w);
        m.unlock();
      })(),
    );
    s.runIdle();
    expect(s.findings.some((f) => f.kind === 'lockdep' && /circular/.test(f.message))).toBe(true);
  });

  it('timeouts advance the virtual clock', () => {
    const s = sched();
    const c = new Completion(s, 'c');
    let left = -1;
    s.spawn(
      't',
      'kthread',
      (function* () {
        left = yield* c.wait_for_completion_timeout(1_000_000);
      })(),
    );
    s.runIdle();
    expect(left).toBe(0);
    expect(s.now).toBeGreaterThanOrEqual(1_000_000);
  });

  it('same seed gives an identical event trace; another seed a different one', () => {
    function trace(seed: number): string {
      const s = sched(seed);
      const sink = new MemorySink();
      s.addSink(sink);
      const m = new Mutex(s, 'm');
      const wq = alloc_workqueue(s, 'wq', 2);
      for (let i = 0; i < 3; i++) {
        s.spawn(
          `t${i}`,
          'kthread',
          (function* () {
            for (let k = 0; k < 4; k++) {
              yield* m.lock();
              yield { op: 'work' };
              m.unlock();
              queue_work(
                wq,
                INIT_WORK(`w${i}${k}`, function* () {
                  yield { op: 'w' };
                }),
              );
            }
          })(),
        );
      }
      s.runIdle();
      return JSON.stringify(sink.events);
    }
    expect(trace(7)).toBe(trace(7));
    expect(trace(7)).not.toBe(trace(8));
  });

  it('tells the chooser about a sched_yield point once the step that yielded it ended', () => {
    const seen: string[] = [];
    const chooser = new FirstChooser();
    const s = new Scheduler({
      chooser: Object.assign(chooser, {
        onYield: (t: { name: string }) => seen.push(`${t.name}@${s.step}`),
      }),
    });
    s.spawn('a', 'user', spin(2));
    s.spawn('b', 'user', yielding());
    s.runIdle();
    // b's first step yields; a's steps are plain points.
    expect(seen).toEqual(['b@4']);
  });
});

function* spin(n: number): KGen {
  for (let i = 0; i < n; i++) yield { op: 'point' };
}
function* yielding(): KGen {
  yield { op: 'sched_yield' };
  yield { op: 'point' };
}
