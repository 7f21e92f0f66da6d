import { type Finding, type FindingKind, KernelOops, isFatalKind } from '../base/findings.js';
import type { TraceEvent, TracePhase, TraceSink } from '../trace/events.js';
import type { Chooser } from './chooser.js';
import { LockdepGraph } from './lockdep.js';
import {
  type HeldLock,
  type KGen,
  type Point,
  Task,
  TaskKilled,
  type TaskKind,
  type Waitable,
} from './task.js';

export interface SchedulerOptions {
  chooser: Chooser;
  /** Shared across runs by the explorer; a fresh graph otherwise. */
  lockdep?: LockdepGraph;
  /** Label of this run in lockdep edge origins (a schedule string). */
  runLabel?: string;
  /** Virtual nanoseconds one scheduling step costs. */
  stepNs?: number;
}

export interface BlockOptions {
  /** A signal ends the sleep (TASK_INTERRUPTIBLE). */
  interruptible?: boolean;
  /** Virtual nanoseconds until the sleep times out. */
  timeoutNs?: number;
  /** A spinning wait (contended spinlock): not a sleep, allowed in atomic context. */
  spin?: boolean;
}

export interface AcquireOptions {
  read?: boolean;
  trylock?: boolean;
  /** Not part of dependency chains (SRCU read sections). */
  nodeps?: boolean;
  /** Nesting annotation (`down_write_nested(.., SINGLE_DEPTH_NESTING)`). */
  subclass?: number;
}

/** lock_acquire's default options (shared: never written). */
const NO_OPTIONS: AcquireOptions = {};

/**
 * The deterministic scheduler: runs one task step at a time, as its Chooser decides, keeps the
 * virtual clock, timers, lockdep's per-task state, deadlock detection and the findings.
 */
export class Scheduler {
  /** Live tasks in id order. */
  private readonly live: Task[] = [];
  /**
   * The runnable tasks in id order, or null when a task changed state since it was computed. A
   * new array each time (never mutated), so a chooser may keep the one it was given.
   */
  private runnableCache: Task[] | null = null;
  /** Blocked tasks with a timeout: while 0, no timer can fire and the per-step check is free. */
  private timed = 0;
  private nextId = 1;
  private last: Task | null = null;
  private flowSeq = 0;
  private readonly sinks: TraceSink[] = [];
  private readonly reportedCycles = new Set<string>();
  /** Released held-lock records, for reuse. */
  private readonly heldPool: HeldLock[] = [];
  /** The task executing the current step; null between steps. */
  current: Task | null = null;
  step = 0;
  /** Virtual time in nanoseconds. */
  now = 0;
  readonly findings: Finding[] = [];
  readonly lockdep: LockdepGraph;
  chooser: Chooser;
  runLabel: string;
  readonly stepNs: number;
  /** Called for every finding as it is recorded (the machine's fatal-finding hook). */
  onFinding: ((f: Finding) => void) | null = null;

  constructor(opts: SchedulerOptions) {
    this.chooser = opts.chooser;
    this.lockdep = opts.lockdep ?? new LockdepGraph();
    this.runLabel = opts.runLabel ?? '';
    this.stepNs = opts.stepNs ?? 10;
  }

  // ---- tasks -------------------------------------------------------------------------------

  /** Creates a runnable task from a generator. It runs only when the chooser picks it. */
  spawn(name: string, kind: TaskKind, gen: Generator<Point, unknown, void>): Task {
    const t = new Task(this.nextId++, name, kind, gen);
    this.live.push(t);
    this.runnableCache = null;
    if (this.sinks.length > 0) this.emit(t, 'i', 'spawn', name);
    return t;
  }

  get tasks(): readonly Task[] {
    return this.live;
  }

  /** The runnable tasks in id order (a copy the caller may keep or change). */
  runnable(): Task[] {
    return this.runnableNow().slice();
  }

  /** The runnable tasks in id order, shared until the next state change: do not modify. */
  runnableNow(): readonly Task[] {
    let r = this.runnableCache;
    if (r === null) {
      r = [];
      for (const t of this.live) if (t.state === 'runnable') r.push(t);
      this.runnableCache = r;
    }
    return r;
  }

  /** Some task is runnable. */
  hasRunnable(): boolean {
    return this.runnableNow().length > 0;
  }

  /** The running task; throws outside a step (a programming error of the simulator). */
  cur(): Task {
    const t = this.current;
    if (!t) throw new Error('no current task: kernel code must run inside a task');
    return t;
  }

  /**
   * Runs one step of one runnable task. Fires due timers first; when nothing is runnable it
   * advances the clock to the next timer. Returns false when no task can run at all.
   */
  stepOnce(): boolean {
    if (this.timed > 0) this.fireTimers(false);
    let runnable = this.runnableNow();
    if (runnable.length === 0) {
      if (this.timed === 0 || !this.fireTimers(true)) return false;
      runnable = this.runnableNow();
    }
    const last = this.last;
    const idx = this.chooser.choose(
      runnable,
      last !== null && last.state === 'runnable' ? last : null,
      this.step,
    );
    const t = runnable[idx];
    if (!t) throw new Error(`chooser returned ${idx} of ${runnable.length}`);
    this.current = t;
    this.step++;
    let r: IteratorResult<Point, unknown>;
    try {
      r = t.gen.next();
    } catch (e) {
      this.current = null;
      if (e instanceof TaskKilled) {
        this.finish(t, undefined, undefined);
        return true;
      }
      this.finish(t, undefined, e);
      if (!(e instanceof KernelOops)) throw e;
      return true;
    }
    this.current = null;
    this.last = t;
    if (r.done) {
      this.finish(t, r.value, undefined);
    } else {
      const p = r.value;
      // The scheduler, not the caller, tells the chooser about a yield: every sched_yield (a
      // thread's, or the sync facade's drmIoctl backing off) moves the default on.
      if (p.op === 'sched_yield') this.chooser.onYield?.(t);
      this.now += this.stepNs + (p.cost ?? 0);
      if (this.sinks.length > 0) this.emit(t, 'i', p.op, p.resource, p.detail, t.wakeFlow || undefined);
      t.wakeFlow = 0;
    }
    return true;
  }

  private finish(t: Task, result: unknown, error: unknown): void {
    t.state = 'done';
    this.runnableCache = null;
    t.result = result;
    t.error = error;
    removeAt(this.live, this.live.indexOf(t));
    if (this.last === t) this.last = null;
    if (this.sinks.length > 0)
      this.emit(t, 'i', 'exit', t.name, error instanceof Error ? error.message : undefined);
  }

  /**
   * Steps until `done()` holds. Returns false when it cannot: nothing is runnable, no timer is
   * pending, and `done()` is still false (a deadlock, reported as a finding), or the step bound
   * was reached.
   */
  runUntil(done: () => boolean, maxSteps = Number.POSITIVE_INFINITY): boolean {
    let n = 0;
    while (!done()) {
      if (n++ >= maxSteps) return false;
      if (!this.stepOnce()) {
        this.reportStuck();
        return false;
      }
    }
    return true;
  }

  /** Runs until every task is idle (blocked without a timer) or done. */
  runIdle(maxSteps = Number.POSITIVE_INFINITY): boolean {
    let n = 0;
    while (this.stepOnce()) if (++n >= maxSteps) return false;
    return true;
  }

  // ---- sleeping and waking ------------------------------------------------------------------

  /**
   * Marks the current task blocked on `w`; the caller must `yield` the returned point next.
   * It runs again after `wake`, a signal (interruptible sleeps) or its timeout.
   */
  block(w: Waitable, opts: BlockOptions = {}): Point {
    const t = this.cur();
    if (!opts.spin) this.might_sleep();
    if (t.wakeAt !== null) this.timed--; // blocked again before its previous sleep ended
    t.state = 'blocked';
    this.runnableCache = null;
    t.waitingOn = w;
    t.timedOut = false;
    t.interruptible = opts.interruptible ?? false;
    if (opts.timeoutNs === undefined) {
      t.wakeAt = null;
    } else {
      t.wakeAt = this.now + Math.max(0, opts.timeoutNs);
      this.timed++;
    }
    this.detectCycle(t);
    return new BlockPoint(w);
  }

  /** Makes a blocked task runnable again. Returns false if it was not blocked. */
  wake(t: Task): boolean {
    if (t.state !== 'blocked') return false;
    t.state = 'runnable';
    this.runnableCache = null;
    t.waitingOn = null;
    if (t.wakeAt !== null) {
      t.wakeAt = null;
      this.timed--;
    }
    if (this.sinks.length > 0) {
      const flow = ++this.flowSeq;
      t.wakeFlow = flow;
      const by = this.current;
      if (by) this.emit(by, 'i', 'wake', t.name, undefined, flow);
    }
    return true;
  }

  /** Sends a signal: interruptible sleeps end; the task sees it at its next check. */
  signal(t: Task, fatal = false): void {
    t.signalPending = true;
    if (fatal) t.fatalSignalPending = true;
    if (t.state === 'blocked' && t.interruptible) this.wake(t);
  }

  /** `signal_pending(current)`. */
  signal_pending(): boolean {
    return this.cur().signalPending;
  }

  private fireTimers(force: boolean): boolean {
    if (this.timed === 0) return false;
    let next: Task | null = null;
    for (const t of this.live) {
      if (t.state !== 'blocked' || t.wakeAt === null) continue;
      if (!next || t.wakeAt < next.wakeAt!) next = t;
    }
    if (!next) return false;
    if (next.wakeAt! > this.now) {
      if (!force) return false;
      this.now = next.wakeAt!;
    }
    for (const t of [...this.live]) {
      if (t.state === 'blocked' && t.wakeAt !== null && t.wakeAt <= this.now) {
        this.wake(t);
        t.timedOut = true;
      }
    }
    return true;
  }

  /** Pending timers exist (a sleeping task will wake by itself). */
  hasTimers(): boolean {
    return this.timed > 0;
  }

  // ---- findings -----------------------------------------------------------------------------

  /** Records a finding against the current task (or "kernel" between steps). */
  report(kind: FindingKind, message: string, detail?: string, fatal = isFatalKind(kind)): Finding {
    const t = this.current;
    const f: Finding = {
      kind,
      message,
      task: t?.name ?? 'kernel',
      locks: t ? t.heldNames() : [],
      step: this.step,
      time: this.now,
      fatal,
    };
    if (detail !== undefined) f.detail = detail;
    this.findings.push(f);
    if (t) this.emit(t, 'i', 'finding', kind, message);
    this.onFinding?.(f);
    return f;
  }

  /** BUG(): records a fatal finding and unwinds the current task, as an oops kills it. */
  BUG(message: string, detail?: string): never {
    throw new KernelOops(this.report('BUG', message, detail));
  }

  /** WARN_ON(cond): records a warning when cond holds; returns cond. */
  WARN_ON(cond: boolean, message: string): boolean {
    if (cond) this.report('WARN', message);
    return cond;
  }

  /** might_sleep(): sleeping with a spinlock held (atomic context) is a bug. */
  might_sleep(): void {
    const t = this.current;
    if (t && t.atomicDepth > 0) {
      this.report(
        'might-sleep',
        `sleeping function called from invalid context (in_atomic(): ${t.atomicDepth})`,
        undefined,
        false,
      );
    }
  }

  // ---- lockdep ------------------------------------------------------------------------------

  /** lock_acquire(): validates against the held locks and records dependency edges. */
  lock_acquire(lock: object, cls: string, name: string, opts: AcquireOptions = NO_OPTIONS): void {
    const t = this.current;
    if (!t) return;
    const key = opts.subclass ? `${cls}/${opts.subclass}` : cls;
    const nodeps = opts.nodeps ?? false;
    if (!nodeps && !opts.trylock) {
      for (const h of t.held) {
        if (h.nodeps) continue;
        if (h.lock === lock || h.cls === key) {
          this.report(
            'lockdep',
            `possible recursive locking detected: ${name} already held (class ${key})`,
            `task ${t.name} holds [${t.heldNames().join(', ')}] and acquires ${name}`,
            false,
          );
          continue;
        }
        // Known edges (nearly all of them after the first runs) cost two lookups, no origin.
        if (this.lockdep.hasEdge(h.cls, key)) continue;
        const r = this.lockdep.addEdge(h.cls, key, {
          task: t.name,
          step: this.step,
          run: this.runLabel,
          held: t.heldNames(),
        });
        if (r) this.report('lockdep', r.message, r.detail, false);
      }
    }
    // Held-lock records never leave the scheduler (reports copy their names): released ones are
    // reused.
    let held = this.heldPool.pop();
    if (held === undefined) {
      held = {
        lock,
        cls: key,
        name,
        read: opts.read ?? false,
        trylock: opts.trylock ?? false,
        nodeps,
        step: this.step,
      };
    } else {
      held.lock = lock;
      held.cls = key;
      held.name = name;
      held.read = opts.read ?? false;
      held.trylock = opts.trylock ?? false;
      held.nodeps = nodeps;
      held.step = this.step;
    }
    t.held.push(held);
    if (this.sinks.length > 0) this.emit(t, 'B', 'lock', name, held.read ? 'read' : undefined);
  }

  /** lock_release(): the lock must be held by the current task. */
  lock_release(lock: object, name: string): void {
    const t = this.current;
    if (!t) return;
    for (let i = t.held.length - 1; i >= 0; i--) {
      const h = t.held[i]!;
      if (h.lock === lock) {
        removeAt(t.held, i);
        this.heldPool.push(h);
        if (this.sinks.length > 0) this.emit(t, 'E', 'lock', name);
        return;
      }
    }
    this.report('lockdep', `bad unlock balance detected: ${name} released but not held`, undefined, false);
  }

  /** lockdep_assert_held(). */
  lockdep_assert_held(lock: object, name: string): void {
    const t = this.current;
    if (t && !t.held.some((h) => h.lock === lock)) this.report('WARN', `lockdep_assert_held(${name}) failed`);
  }

  holds(lock: object): boolean {
    return this.current?.held.some((h) => h.lock === lock) ?? false;
  }

  // ---- deadlock detection -------------------------------------------------------------------

  /** Follows wait-for edges from a task that just blocked; a path back to it is a deadlock. */
  private detectCycle(start: Task): void {
    // Most sleeps wait for nobody in particular (an idle worker, the GPU): nothing to follow.
    if (start.waitingOn!.owners().length === 0) return;
    const path: Task[] = [];
    const seen = new Set<Task>();
    const dfs = (t: Task): boolean => {
      if (t.state !== 'blocked' || !t.waitingOn) return false;
      if (seen.has(t)) return false;
      seen.add(t);
      path.push(t);
      for (const o of t.waitingOn.owners()) if (o === start || dfs(o)) return true;
      path.pop();
      return false;
    };
    if (!dfs(start)) return;
    const key = path
      .map((t) => t.id)
      .sort((a, b) => a - b)
      .join(',');
    if (this.reportedCycles.has(key)) return;
    this.reportedCycles.add(key);
    this.report(
      'deadlock',
      `deadlock: ${path.map((t) => `${t.name} waits for ${t.waitingOn!.describe()}`).join('; ')}`,
      this.describeBlocked(path),
    );
  }

  private reportStuck(): void {
    const blocked = this.live.filter((t) => t.state === 'blocked');
    const key = 'stuck:' + blocked.map((t) => t.id).join(',');
    if (this.reportedCycles.has(key)) return;
    this.reportedCycles.add(key);
    this.report('deadlock', `no task can run: ${blocked.length} blocked`, this.describeBlocked(blocked));
  }

  /** Every blocked task, what it waits for and the locks it holds. */
  describeBlocked(tasks: readonly Task[] = this.live.filter((t) => t.state === 'blocked')): string {
    return tasks
      .map((t) => {
        const w = t.waitingOn;
        const held = t.held
          .filter((h) => !w?.lock || h.lock !== w.lock)
          .map((h) => h.name + (h.read ? '(read)' : ''));
        return (
          `  ${t.name} waits for ${w?.describe() ?? '?'}` +
          (held.length ? `, holding [${held.join(', ')}]` : ', holding no locks')
        );
      })
      .join('\n');
  }

  // ---- tracing ------------------------------------------------------------------------------

  addSink(s: TraceSink): void {
    this.sinks.push(s);
  }

  get tracing(): boolean {
    return this.sinks.length > 0;
  }

  /** Emits an event on a task's track (no-op without sinks). */
  emit(t: Task, phase: TracePhase, op: string, resource?: string, detail?: string, flow?: number): void {
    if (this.sinks.length === 0) return;
    const e: TraceEvent = { step: this.step, time: this.now, taskId: t.id, task: t.name, phase, op };
    if (resource !== undefined) e.resource = resource;
    if (detail !== undefined) e.detail = detail;
    if (flow !== undefined) e.flow = flow;
    for (const s of this.sinks) s.event(e);
  }

  /** Begin/end spans on the current task's track (syscalls, notifier callbacks). */
  traceBegin(op: string, resource?: string, detail?: string): void {
    if (this.current && this.sinks.length > 0) this.emit(this.current, 'B', op, resource, detail);
  }
  traceEnd(op: string, resource?: string, detail?: string): void {
    if (this.current && this.sinks.length > 0) this.emit(this.current, 'E', op, resource, detail);
  }
}

/**
 * Removes a[i] in place (nothing for i < 0), keeping the order: splice without the array of
 * removed elements it allocates. Locks are mostly released last-taken-first, so often a pop.
 */
export function removeAt(a: unknown[], i: number): void {
  if (i < 0) return;
  const last = a.length - 1;
  for (let j = i; j < last; j++) a[j] = a[j + 1]!;
  a.pop();
}

/** The point a task yields when it blocks; what it waits for is only described when traced. */
class BlockPoint implements Point {
  readonly op = 'block';
  constructor(private readonly w: Waitable) {}
  get resource(): string {
    return this.w.describe();
  }
}

/**
 * What a sleeping function written as a plain function returns when it has nothing to do: one
 * generator, finished once and shared (`yield*` over it returns at once, adds no level, and
 * allocates nothing).
 */
const FINISHED: KGen = (function* (): KGen {})();
FINISHED.next();
export function finished(): KGen {
  return FINISHED;
}

/** The generator of a plain function's early return with a value (a rare path: one allocation). */
export function* returns<T>(value: T): KGen<T> {
  return value;
}

/** A scheduling point with nothing special about it (a preemption opportunity). */
export function* preempt(op: string, resource?: string): KGen {
  yield resource === undefined ? { op } : { op, resource };
}
