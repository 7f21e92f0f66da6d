import { expect } from 'vitest';
import { type Chooser, type Finding, Machine, type MachineConfig } from '../../src/index.js';
import { DrmI915UserptrObject } from '../../src/i915/i915_gem_userptr.js';
import type { Task } from '../../src/sched/task.js';
import type { WorkStruct } from '../../src/sched/workqueue.js';

/**
 * The hand that picks who runs, shared by the tests that drive a race by hand: it runs the
 * lowest-id runnable task that is not held back (kernel threads, workers and engines were spawned
 * before any user thread; user threads run in creation order). A task parked in `sched_yield` runs
 * only when nothing else can. A hold names a task, optionally a point where it applies, and a
 * condition that ends it; if every runnable task is held the script is wrong and the run stops.
 * `answer(what, ...values)` scripts the next `pick(n, what)` decisions (an injected fault: 1 fails).
 */

export interface Hold {
  name: string;
  who: (t: Task) => boolean;
  at: (t: Task) => boolean;
  until: () => boolean;
  guard: boolean;
  gone: boolean;
  used: boolean;
}

const NOT_A_STOP = new Set(['wake', 'spawn', 'finding', 'exit']);

/**
 * Runs the lowest-id runnable task that is not held back; a task parked in `sched_yield` runs only
 * when nothing else can. `answer(what, ...values)` scripts the next `pick(n, what)` decisions (an
 * injected fault: 1 fails); unscripted picks answer 0.
 */
export class Hand implements Chooser {
  private readonly holds: Hold[] = [];
  private readonly stops = new Map<number, string>();
  private readonly watchers: (() => void)[] = [];
  private readonly answers = new Map<string, number[]>();
  /** Every pick asked, in order, with its answer. */
  readonly picked: string[] = [];

  attach(m: Machine): void {
    m.trace({
      event: (e) => {
        if (e.phase === 'i' && !NOT_A_STOP.has(e.op)) this.stops.set(e.taskId, e.op);
      },
    });
  }

  stop(t: Task): string | undefined {
    return this.stops.get(t.id);
  }

  watch(fn: () => void): this {
    this.watchers.push(fn);
    return this;
  }

  answer(what: string, ...values: number[]): this {
    this.answers.set(what, [...(this.answers.get(what) ?? []), ...values]);
    return this;
  }

  hold(
    name: string,
    who: Task | ((t: Task) => boolean),
    o: { until: () => boolean; at?: (t: Task) => boolean; guard?: boolean },
  ): this {
    const pred = typeof who === 'function' ? who : (t: Task) => t === who;
    this.holds.push({
      name,
      who: pred,
      at: o.at ?? (() => true),
      until: o.until,
      guard: o.guard ?? false,
      gone: false,
      used: false,
    });
    return this;
  }

  unused(): string[] {
    return this.holds.filter((h) => !h.used && !h.guard).map((h) => h.name);
  }

  release(): void {
    for (const h of this.holds) h.gone = true;
  }

  choose(runnable: readonly Task[]): number {
    for (const w of this.watchers) w();
    for (const h of this.holds) if (!h.gone && h.until()) h.gone = true;
    const free = runnable.filter((t) => {
      const h = this.holds.find((x) => !x.gone && x.who(t) && x.at(t));
      if (h) h.used = true;
      return !h;
    });
    if (free.length === 0) {
      throw new Error(
        `interleaving stuck: every runnable task is held (${runnable.map((t) => t.name).join(', ')})`,
      );
    }
    const eager = free.find((t) => this.stop(t) !== 'sched_yield') ?? free[0]!;
    return runnable.indexOf(eager);
  }

  pick(n: number, what: string): number {
    const v = this.answers.get(what)?.shift() ?? 0;
    if (v >= n) throw new Error(`scripted pick ${v} for ${what} is out of [0, ${n})`);
    this.picked.push(`${what}=${v}`);
    return v;
  }
}

// --- state the script looks at --------------------------------------------------------------------

export interface Owned {
  owner: Task | null;
}

export function wants(t: Task, lock: Owned): boolean {
  return t.held.some((h) => h.lock === lock) && lock.owner !== t;
}

export function userptrAt(m: Machine, ptr: number): DrmI915UserptrObject {
  for (const o of m.i915.dev.objects)
    if (o instanceof DrmI915UserptrObject && o.userptr.ptr === ptr && !o.freed) return o;
  throw new Error(`no userptr object at 0x${ptr.toString(16)}`);
}

export function tokens(hand: Hand, obj: DrmI915UserptrObject): WorkStruct[] {
  const seen: WorkStruct[] = [];
  hand.watch(() => {
    const w = obj.userptr.work;
    if (w !== null && typeof w === 'object' && !seen.includes(w.work)) seen.push(w.work);
  });
  return seen;
}

export function finished(w: WorkStruct | undefined): boolean {
  return w !== undefined && w.doneGen > 0 && w.running === null;
}

// --- a switch on and off under the same hand ---------------------------------------------------

export interface Run {
  m: Machine;
  hand: Hand;
}

export interface Outcome<T> {
  /** What the scenario saw (syscall results). */
  seen: T;
  /** Findings of the interleaving itself. */
  during: Finding[];
  /** Every finding, after shutdown. */
  all: Finding[];
  /** The hand's picks, in order. */
  picked: string[];
}

/** Runs `scenario` with `id` on and with no switch, each on a fresh machine (with `cfg`) and hand. */
export function both<T>(
  id: string,
  scenario: (r: Run) => T,
  cfg: Omit<MachineConfig, 'bugs' | 'chooser'> = {},
): { on: Outcome<T>; off: Outcome<T> } {
  const run = (bugs: string[]): Outcome<T> => {
    const hand = new Hand();
    const m = Machine.boot({ ...cfg, bugs, chooser: hand });
    hand.attach(m);
    const seen = scenario({ m, hand });
    m.run();
    const during = m.findings();
    // With the switch on the run must follow the drawing: every hold had to stop someone. (Off,
    // the kernel may take another way at the racy step, where some holds have nothing to do.)
    if (bugs.length) expect(hand.unused(), 'holds that held nobody').toEqual([]);
    hand.release();
    return { seen, during, all: m.shutdown(), picked: hand.picked };
  };
  return { on: run([id]), off: run([]) };
}
