import { describe, expect, it } from 'vitest';
import type { Chooser } from './chooser.js';
import { Scheduler } from './scheduler.js';
import { type KGen, type Task } from './task.js';
import { WaitQueue, wait_event_timeout } from './waitqueue.js';
import { MemorySink } from '../trace/events.js';

/**
 * The scheduler keeps the runnable list and the number of pending timers incrementally (they used
 * to be recomputed on every step): both must always equal what a scan of the tasks says.
 */

/** Records what every decision was offered, as task ids, and checks it against a full scan. */
class CheckingChooser implements Chooser {
  readonly offered: { arr: readonly Task[]; ids: number[] }[] = [];
  constructor(
    private readonly s: () => Scheduler,
    private readonly pickIndex: (n: number, step: number) => number,
  ) {}
  choose(runnable: readonly Task[], _last: Task | null, step: number): number {
    const scan = this.s().tasks.filter((t) => t.state === 'runnable');
    expect(runnable.map((t) => t.id)).toEqual(scan.map((t) => t.id));
    expect(this.s().hasTimers()).toBe(this.s().tasks.some((t) => t.state === 'blocked' && t.wakeAt !== null));
    this.offered.push({ arr: runnable, ids: runnable.map((t) => t.id) });
    return this.pickIndex(runnable.length, step);
  }
  pick(): number {
    return 0;
  }
}

function* sleeper(wq: WaitQueue, done: { v: boolean }, timeoutNs: number, out: number[]): KGen {
  for (let i = 0; i < 3; i++) {
    out.push(yield* wait_event_timeout(wq, () => done.v, timeoutNs));
    yield { op: 'after' };
  }
}

function* waker(wq: WaitQueue, done: { v: boolean }): KGen {
  for (let i = 0; i < 4; i++) yield { op: 'work', resource: `w${i}` };
  done.v = true;
  wq.wake_up_all();
  yield { op: 'woke' };
}

describe('scheduler bookkeeping', () => {
  it.each([0, 1, 2, 3])('runnable lists and timers match a full scan at every step (pattern %i)', (pat) => {
    const ref: { s: Scheduler | null } = { s: null };
    const chooser = new CheckingChooser(
      () => ref.s!,
      (n, step) => (step * (pat + 1) + pat) % n,
    );
    const s = (ref.s = new Scheduler({ chooser }));
    const wq = new WaitQueue(s, 'q');
    const done = { v: false };
    const outs: number[][] = [[], [], []];
    // Short timeouts expire (timers fire), long ones are cut short by the waker (timers cancelled).
    s.spawn('short', 'kthread', sleeper(wq, done, 15, outs[0]!));
    s.spawn('long', 'kthread', sleeper(wq, done, 1_000_000, outs[1]!));
    s.spawn('untimed', 'kthread', sleeper(wq, { v: true }, 5, outs[2]!));
    s.spawn('waker', 'kthread', waker(wq, done));
    expect(s.runIdle()).toBe(true);
    expect(s.tasks).toEqual([]);
    expect(s.hasTimers()).toBe(false);
    expect(s.hasRunnable()).toBe(false);
    // Every array handed to the chooser still lists what it listed then (none was reused).
    for (const o of chooser.offered) expect(o.arr.map((t) => t.id)).toEqual(o.ids);
    expect(outs[1]!.every((r) => r > 0)).toBe(true);
    expect(s.findings).toEqual([]);
  });

  it('runnable() is a copy; a timer that was cancelled by a wake-up no longer counts', () => {
    const s = new Scheduler({ chooser: { choose: () => 0, pick: () => 0 } });
    const wq = new WaitQueue(s, 'q');
    let woke = -1;
    s.spawn(
      'a',
      'kthread',
      (function* (): KGen {
        woke = yield* wait_event_timeout(wq, () => woke === -2, 1000);
      })(),
    );
    s.stepOnce();
    expect(s.hasTimers()).toBe(true);
    const r = s.runnable();
    r.push(r[0]!);
    expect(s.runnable()).toEqual([]);
    woke = -2;
    wq.wake_up_all();
    expect(s.hasTimers()).toBe(false);
    expect(s.runIdle()).toBe(true);
    expect(woke).toBeGreaterThan(0);
  });

  it('a blocking point names what it waits for only when traced, and then exactly', () => {
    const s = new Scheduler({ chooser: { choose: () => 0, pick: () => 0 } });
    const sink = new MemorySink();
    s.addSink(sink);
    const wq = new WaitQueue(s, 'doorbell');
    s.spawn(
      'a',
      'kthread',
      (function* (): KGen {
        yield wq.sleep();
      })(),
    );
    s.stepOnce();
    expect(sink.events.find((e) => e.op === 'block')?.resource).toBe('waitqueue doorbell');
  });
});
