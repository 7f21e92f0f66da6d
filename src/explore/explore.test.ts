import { describe, expect, it } from 'vitest';
import { ERRNO } from '../base/errno.js';
import { Prng } from '../base/prng.js';
import type { Machine } from '../kernel/machine.js';
import { Mutex } from '../sched/mutex.js';
import type { KGen } from '../sched/task.js';
import { explore } from './explorer.js';
import { retrying } from './liveness.js';
import { RandomChooser } from './random.js';
import { ReplayChooser, fingerprint, replay, replayTwice, scheduleFor, targetOf } from './replay.js';
import { type Scenario, configHash, findingTemplate, runOnce, scheduleString } from './scenario.js';
import { decodeSchedule } from './schedule.js';
import { shrink } from './shrink.js';
import { makeStrategy } from './strategies.js';

const SEED = Number(process.env.SEED ?? 11);

/** A fake clock for time budgets: each reading advances 1 ms. */
function fakeClock(): () => number {
  let t = 0;
  return () => t++;
}

/** Two user threads take two mutexes in opposite orders (with some work in between). */
function abba(work = 1): Scenario {
  return {
    name: 'test/abba',
    description: 'two threads take A and B in opposite orders',
    config: {},
    run(m) {
      const a = new Mutex(m.sched, 'A');
      const b = new Mutex(m.sched, 'B');
      const p = m.spawn();
      const body = (first: Mutex, second: Mutex) =>
        function* (): KGen {
          yield* first.lock();
          for (let i = 0; i < work; i++) yield { op: 'work' };
          yield* second.lock();
          second.unlock();
          first.unlock();
        };
      p.thread('ab', body(a, b));
      p.thread('ba', body(b, a));
    },
  };
}

/** Two threads increment a shared counter without a lock, after `pad` steps of other work. */
function lostUpdate(pad: number, name = 'test/lost-update'): Scenario {
  return {
    name,
    description: 'read-modify-write of a shared counter without a lock',
    config: {},
    goals: [{ name: 'both-done' }, { name: 'never' }],
    run(m, ctx) {
      const p = m.spawn();
      let counter = 0;
      let done = 0;
      for (const t of ['a', 'b']) {
        p.thread(t, function* (): KGen {
          for (let i = 0; i < pad; i++) yield { op: 'work' };
          const v = counter;
          yield { op: 'load', resource: 'counter' };
          counter = v + 1;
          if (++done === 2) {
            ctx.mark('both-done');
            if (counter !== 2) m.sched.report('BUG', `lost update: counter is ${counter}, expected 2`);
          }
        });
      }
    },
  };
}

/** Two kernel threads of `steps` scheduling points each, nothing else. */
function tiny(steps = 2, name = 'test/tiny'): Scenario {
  return {
    name,
    description: 'two kernel threads',
    config: {},
    run(m) {
      for (const t of ['x', 'y']) {
        m.sched.spawn(
          t,
          'kthread',
          (function* (): KGen {
            for (let i = 0; i < steps; i++) yield { op: 'step' };
          })(),
        );
      }
    },
  };
}

/** One thread takes A and B in an order picked from the decision stream: ABBA only across runs. */
function splitAbba(): Scenario {
  return {
    name: 'test/split-abba',
    description: 'each run takes the locks in one order, picked at random',
    config: {},
    run(m, ctx) {
      const a = new Mutex(m.sched, 'A');
      const b = new Mutex(m.sched, 'B');
      const [first, second] = ctx.pick(2, 'order') === 0 ? [a, b] : [b, a];
      m.spawn().thread('t', function* (): KGen {
        yield* first.lock();
        yield* second.lock();
        second.unlock();
        first.unlock();
      });
    },
  };
}

/** Three threads sharing a mutex-protected counter: the throughput yardstick. */
function threeTasks(): Scenario {
  return {
    name: 'test/three',
    description: 'three threads, one mutex',
    config: {},
    run(m) {
      const lock = new Mutex(m.sched, 'L');
      let n = 0;
      const p = m.spawn();
      for (const t of ['a', 'b', 'c']) {
        p.thread(t, function* (): KGen {
          for (let i = 0; i < 3; i++) {
            yield* lock.lock();
            const v = n;
            yield { op: 'load' };
            n = v + 1;
            lock.unlock();
          }
        });
      }
    },
  };
}

/** Three threads that map, touch and unmap memory: a yardstick with real syscalls. */
function threeMm(): Scenario {
  return {
    name: 'test/three-mm',
    description: 'three threads map, write and unmap anonymous memory',
    config: { ramBytes: 16 << 20 },
    run(m) {
      const p = m.spawn();
      for (const t of ['a', 'b', 'c']) {
        p.thread(t, function* (api) {
          const addr = yield* api.mmap(0, 8192, 3, 0x22);
          yield* api.write(addr, new Uint8Array([1, 2, 3]));
          yield* api.munmap(addr, 8192);
        });
      }
    },
  };
}

function kinds(m: { findings: readonly { kind: string }[] }): string[] {
  return m.findings.map((f) => f.kind);
}

describe(`explorer (seed ${SEED})`, () => {
  it('finds the ABBA deadlock and the lockdep inversion', () => {
    const lockdep = explore(abba(), { seed: SEED, schedules: 50, strategy: 'random' });
    expect(lockdep.failure?.finding.kind).toBe('lockdep');
    expect(lockdep.failure?.finding.message).toContain('possible circular locking dependency');
    expect(lockdep.failure?.found.index).toBe(1); // lockdep needs no particular interleaving

    const dl = explore(abba(), {
      seed: SEED,
      schedules: 500,
      strategy: 'pct:2',
      failOn: (f) => f.kind === 'deadlock',
    });
    const f = dl.failure!;
    expect(f.finding.kind).toBe('deadlock');
    expect(f.finding.message).toMatch(
      /^deadlock: pid100\/(ab|ba) waits for mutex [AB]; pid100\/(ab|ba) waits for mutex [AB]$/,
    );
    expect(f.replay).toEqual({ reproduced: true, deterministic: true });
    expect(f.replayCommand).toBe(`userptr replay '${f.schedule}'`);
    // A deadlock of two threads needs exactly one preemption.
    expect(f.shrink!.after.preemptions).toBe(1);
    expect(kinds(replay(abba(), f.schedule))).toContain('deadlock');
  });

  it('PCT finds an atomicity violation within its budget', () => {
    const s = lostUpdate(30);
    const r = explore(s, { seed: SEED, schedules: 300, strategy: 'pct:2' });
    const f = r.failure!;
    expect(f, 'PCT missed the lost update').not.toBeNull();
    expect(f.finding.kind).toBe('BUG');
    expect(f.template).toBe('BUG: lost update: counter is <n>, expected <n>');
    expect(f.replay.deterministic && f.replay.reproduced).toBe(true);
    expect(f.shrink!.after.preemptions).toBe(1);
    expect(r.stats.perStrategy).toEqual({ 'pct:2': r.stats.schedules });
    console.log(`lost update: PCT found it after ${f.found.index} schedules; shrunk ${f.shrink!.summary}`);
  });

  it('shrinking removes preemptions and finds the failure sooner', () => {
    const s = lostUpdate(12);
    // A random walk preempts at about every other decision.
    let run = runOnce(s, new RandomChooser(new Prng(SEED)));
    for (let k = 1; !run.findings.some((f) => f.kind === 'BUG'); k++) {
      run = runOnce(s, new RandomChooser(new Prng(SEED + k)));
    }
    const bug = run.findings.find((f) => f.kind === 'BUG')!;
    const res = shrink(s, scheduleString(s, run), targetOf(bug))!;
    expect(res.before.preemptions).toBeGreaterThan(3);
    expect(res.after.preemptions).toBe(1);
    expect(res.after.steps).toBeLessThanOrEqual(res.before.steps);
    expect(res.after.decisions).toBeLessThan(res.before.decisions);
    expect(res.summary).toMatch(/^preemptions \d+ → 1, steps \d+ → \d+$/);
    // The shrunk schedule replays to the same finding.
    expect(replayTwice(s, res.schedule, targetOf(bug)).reproduced).toBe(true);
    console.log(`shrink: ${res.summary} (${res.runs} replays)`);
  });

  it('shrinking moves the failure earlier: unrelated work is cut out', () => {
    // 'use' checks a flag 'init' sets; 'noise' does unrelated work. Nothing else matters.
    const s: Scenario = {
      name: 'test/order',
      description: 'use before init, with noise',
      config: {},
      run(m) {
        let ready = false;
        const p = m.spawn();
        p.thread('init', function* (): KGen {
          for (let i = 0; i < 5; i++) yield { op: 'work' };
          ready = true;
        });
        p.thread('use', function* (): KGen {
          for (let i = 0; i < 5; i++) yield { op: 'work' };
          if (!ready) m.sched.report('BUG', 'used before init');
        });
        p.thread('noise', function* (): KGen {
          for (let i = 0; i < 100; i++) yield { op: 'noise' };
        });
      },
    };
    const r = explore(s, { seed: SEED, strategy: 'random', schedules: 100 });
    const f = r.failure!;
    expect(f.template).toBe('BUG: used before init');
    const sh = f.shrink!;
    expect(sh.after.preemptions).toBe(0); // just run 'use' first
    expect(sh.after.steps).toBeLessThan(sh.before.steps);
    expect(sh.after.steps).toBeLessThanOrEqual(12);
    console.log(`order violation: ${sh.summary}; ${f.replayCommand}`);
  });

  it('DFS exhausts a tiny scenario and counts its schedules', () => {
    const r = explore(tiny(2), { strategy: 'dfs', schedules: 10_000 });
    expect(r.failure).toBeNull();
    expect(r.exhausted && r.complete).toBe(true);
    // Two threads of three steps each (two points, then the return): C(6, 3) interleavings.
    expect(r.stats.strategy).toMatch(/^dfs: complete, 20 distinct of \d+ schedules$/);
    // Every schedule DFS ran, a long random search also finds, and nothing else.
    const dfs = new Set<string>();
    explore(tiny(2), { strategy: 'dfs', onRun: (run) => dfs.add(scheduleString(tiny(2), run)) });
    const rnd = new Set<string>();
    explore(tiny(2), {
      strategy: 'random',
      seed: SEED,
      schedules: 2000,
      onRun: (run) => rnd.add(scheduleString(tiny(2), run)),
    });
    expect(dfs.size).toBe(20);
    expect([...rnd].sort()).toEqual([...dfs].sort());
  });

  it('DFS grows its deviation bound one iteration at a time, each schedule once', () => {
    const devs: number[] = [];
    const pre: number[] = [];
    const seen = new Set<string>();
    const st = makeStrategy('dfs', 0);
    explore(tiny(3), {
      strategy: st,
      onRun: (run) => {
        devs.push(run.decisions.filter((d) => d !== 0).length);
        pre.push(run.preemptions);
        seen.add(scheduleString(tiny(3), run));
      },
    });
    expect(st.complete).toBe(true);
    // Iteration k runs the schedules of exactly k deviations: the default first, then one, …
    expect(devs[0]).toBe(0);
    expect(devs).toEqual([...devs].sort((a, b) => a - b));
    expect(Math.max(...pre)).toBeGreaterThan(1);
    // Runs are remembered: no schedule runs twice. Two threads of 4 steps: C(8, 4) schedules.
    expect(seen.size).toBe(devs.length);
    expect(st.status()).toBe(`dfs: complete, 70 distinct of 70 schedules`);
  });

  it('DFS is complete past its first window: every interleaving of long runs, once', () => {
    const s = tiny(5);
    const seen = new Set<string>();
    const r = explore(s, {
      strategy: 'dfs',
      schedules: 10_000,
      onRun: (run) => seen.add(scheduleString(s, run)),
    });
    expect(r.exhausted && r.complete).toBe(true);
    // Two threads of 6 steps (11 decisions a run, past the first window of 8): C(12, 6).
    expect(seen.size).toBe(924);
    expect(r.stats.schedules).toBe(924);
  });

  it('DFS deviates at focal decisions first, and still runs every schedule once', () => {
    // Two user threads and a kernel thread of one point each: a pick among both user threads is
    // focal (a cheaper deviation), yet every interleaving runs, once.
    const s: Scenario = {
      name: 'test/focal',
      description: 'two user threads and a kernel thread',
      config: {},
      run(m) {
        const p = m.spawn();
        for (const t of ['a', 'b']) {
          p.thread(t, function* (): KGen {
            yield { op: 'step' };
          });
        }
        m.sched.spawn(
          'k',
          'kthread',
          (function* (): KGen {
            yield { op: 'step' };
          })(),
        );
      },
    };
    const order: string[] = [];
    const r = explore(s, { strategy: 'dfs', onRun: (run) => order.push(scheduleString(s, run)) });
    expect(r.exhausted && r.complete).toBe(true);
    expect(new Set(order).size).toBe(order.length);
    const rnd = new Set<string>();
    explore(s, {
      strategy: 'random',
      seed: SEED,
      schedules: 3000,
      onRun: (run) => rnd.add(scheduleString(s, run)),
    });
    expect([...rnd].sort()).toEqual([...order].sort());
    // Two deviations between threads of the scenario ([1, 1]: three runnable tasks, two of them
    // user threads) run before one between the kernel thread and the last user thread ([0, 0, 1]).
    const at = (d: string): number => order.indexOf(`up1:test/focal:${configHash(s)}:${d}`);
    expect(at('AwM')).toBeGreaterThan(0);
    expect(at('AwM')).toBeLessThan(at('AgIB'));
  });

  it('dfs:b runs exactly the schedules of at most b preemptions, then stops incomplete', () => {
    const s = tiny(3);
    const all = new Map<string, number>();
    explore(s, { strategy: 'dfs', onRun: (run) => all.set(scheduleString(s, run), run.preemptions) });
    for (const b of [0, 1, 2]) {
      const got = new Set<string>();
      const st = makeStrategy(`dfs:${b}`, 0);
      const r = explore(s, { strategy: st, onRun: (run) => got.add(scheduleString(s, run)) });
      const want = [...all].filter(([, p]) => p <= b).map(([k]) => k);
      expect([...got].sort(), `dfs:${b}`).toEqual(want.sort());
      expect(r.exhausted).toBe(true);
      expect(r.complete).toBe(false);
      expect(st.status()).toMatch(new RegExp(`preemption bound ${b} exhausted`));
    }
  });

  it('same seed, same schedules; another seed, others', () => {
    for (const strategy of ['random', 'pct:3', 'pos', 'dfs', 'portfolio']) {
      const seq = (seed: number): string[] => {
        const out: string[] = [];
        const s = threeTasks();
        explore(s, { strategy, seed, schedules: 30, onRun: (run) => out.push(scheduleString(s, run)) });
        return out;
      };
      const a = seq(SEED);
      expect(seq(SEED), strategy).toEqual(a);
      if (strategy !== 'dfs') expect(seq(SEED + 1), strategy).not.toEqual(a);
      expect(new Set(a).size, strategy).toBeGreaterThan(5);
    }
  });

  it('the portfolio rotates its members', () => {
    const r = explore(threeTasks(), { seed: SEED, schedules: 20 });
    expect(r.stats.perStrategy).toEqual({ random: 7, pos: 7, 'pct:3': 3, dfs: 3 });
  });

  it('replay reproduces a run identically', () => {
    for (const s of [threeTasks(), threeMm(), lostUpdate(3)]) {
      for (let k = 0; k < 10; k++) {
        const run = runOnce(s, new RandomChooser(new Prng(SEED * 100 + k)));
        const text = scheduleString(s, run);
        const again = replay(s, text);
        expect(again.diverged).toBeNull();
        expect(fingerprint(again)).toBe(fingerprint(run));
        expect(scheduleString(s, again)).toBe(text);
      }
    }
  });

  it('replay reports where the code diverged from the schedule', () => {
    const v1 = tiny(6, 'test/changed');
    // A schedule that preempts late: its sixth decision switches threads.
    const run = runOnce(v1, new ReplayChooser([0, 0, 0, 0, 0, 1]));
    const text = scheduleString(v1, run);
    expect(replay(v1, text).diverged).toBeNull();
    // The threads got shorter: the run ends before the schedule does.
    const shorter = replay(tiny(1, 'test/changed'), text).diverged!;
    expect(shorter).toMatchObject({ index: 2, expected: 2, runnable: 0 });
    expect(shorter.message).toBe('diverged at decision 2: the run ended after 2 of 6 recorded decisions');
    // A third thread appeared: the very first decision offers more options than recorded.
    const wider: Scenario = {
      ...v1,
      run(m, ctx) {
        v1.run(m, ctx);
        m.sched.spawn('z', 'kthread', (function* (): KGen {})());
      },
    };
    const more = replay(wider, text).diverged!;
    expect(more).toMatchObject({ index: 0, expected: 2, runnable: 3 });
    expect(more.message).toMatch(
      /^diverged at decision 0 \(step \d+\): the schedule recorded 2 options, the code offers 3$/,
    );
    // A schedule of another scenario or configuration is refused outright.
    expect(() => replay(tiny(2, 'test/other'), text)).toThrow(/is for scenario 'test\/changed'/);
    const moreRam: Scenario = { ...v1, config: { ramBytes: 8 << 20 } };
    expect(configHash(moreRam)).not.toBe(configHash(v1));
    expect(() => replay(moreRam, text)).toThrow(/different bug switches or machine options/);
  });

  it('lockdep accumulates across runs: an ABBA split over two runs is found and replayable', () => {
    const s = splitAbba();
    const r = explore(s, { strategy: 'dfs', schedules: 10 });
    const f = r.failure!;
    expect(f.finding.kind).toBe('lockdep');
    expect(f.found.index).toBe(2);
    expect(f.prerequisites).toHaveLength(1);
    // The report names the run that laid the first half, by its schedule string.
    expect(f.finding.detail).toContain(`of run ${f.prerequisites[0]!}`);
    expect(f.finding.detail).toContain(`of run ${f.found.schedule}`);
    expect(f.replayCommand).toBe(`userptr replay '${f.prerequisites[0]!}' '${f.schedule}'`);
    expect(f.replay).toEqual({ reproduced: true, deterministic: true });
    // Shrinking keeps the prerequisite: without it there is no inversion.
    expect(f.shrink?.prerequisites).toHaveLength(1);
    // Alone, the second run shows nothing; after its prerequisite, the inversion.
    expect(kinds(replay(s, f.schedule))).toEqual([]);
    expect(kinds(replay(s, f.schedule, { prerequisites: f.prerequisites }))).toEqual(['lockdep']);
  });

  it('coverage goals are aggregated over runs', () => {
    const r = explore(lostUpdate(2), { seed: SEED, schedules: 5, failOn: () => false, strategy: 'random' });
    expect(r.failure).toBeNull();
    const [both, never] = r.coverage;
    expect(both).toMatchObject({ name: 'both-done', reached: true, runs: 5 });
    expect(decodeSchedule(both!.firstSchedule!).scenario).toBe('test/lost-update');
    expect(never).toEqual({ name: 'never', reached: false, runs: 0 });
  });

  it('goal predicates may read the trace', () => {
    const s: Scenario = {
      ...tiny(1, 'test/traced'),
      goals: [
        {
          name: 'x-first',
          trace: true,
          reached: (_m, run) => run.events!.find((e) => e.op === 'step')?.task === 'x',
        },
      ],
    };
    const r = explore(s, { strategy: 'dfs' });
    expect(r.coverage[0]).toMatchObject({ reached: true });
    expect(r.coverage[0]!.runs).toBeGreaterThan(0);
    expect(r.coverage[0]!.runs).toBeLessThan(r.stats.schedules);
  });

  it('a run past its step bound is a step-bound finding', () => {
    const s: Scenario = {
      name: 'test/spin',
      description: 'a thread that never ends',
      config: {},
      maxSteps: 500,
      run(m: Machine) {
        m.spawn().thread('spin', function* (): KGen {
          for (;;) yield { op: 'spin' };
        });
      },
    };
    const r = explore(s, { schedules: 3, strategy: 'random' });
    const f = r.failure!;
    expect(f.finding.kind).toBe('step-bound');
    expect(f.template).toBe('step-bound: the run did not finish within <n> steps');
    expect(f.replay).toEqual({ reproduced: true, deterministic: true });
  });

  it('a client getting -EAGAIN forever is a livelock; one that waits for a worker is not', () => {
    const forever: Scenario = {
      name: 'test/eagain-forever',
      description: 'the attempt always fails',
      config: {},
      run(m, ctx) {
        m.spawn().thread('client', function* (): KGen {
          yield* retrying(ctx, 'ioctl', function* (): KGen<number> {
            yield { op: 'ioctl' };
            return -ERRNO.EAGAIN;
          });
        });
      },
    };
    const r = explore(forever, { schedules: 3, strategy: 'random' });
    expect(r.failure?.finding.kind).toBe('livelock');
    expect(r.failure?.finding.message).toMatch(/client retried ioctl \d+ times without progress/);
    // The livelocked thread ended cleanly: the machine shut down without a leak.
    expect(kinds(r.failure!.run)).toEqual(['livelock']);
    expect(r.failure!.run.retries).toBe(16);

    const eventually: Scenario = {
      name: 'test/eagain-until-ready',
      description: 'the attempt fails until another thread is ready, however long it takes',
      config: {},
      run(m, ctx) {
        let ready = false;
        const p = m.spawn();
        p.thread('worker', function* (): KGen {
          for (let i = 0; i < 60; i++) yield { op: 'work' };
          ready = true;
        });
        p.thread('client', function* (): KGen {
          yield* retrying(ctx, 'ioctl', function* (): KGen<number> {
            yield { op: 'ioctl' };
            return ready ? 0 : -ERRNO.EAGAIN;
          });
        });
      },
    };
    const ok = explore(eventually, { seed: SEED, schedules: 200 });
    expect(ok.failure).toBeNull();
  });

  it('an exception in a scenario is a finding, not a crash', () => {
    const s: Scenario = {
      name: 'test/throws',
      description: 'a thread with a bug of its own',
      config: {},
      run(m) {
        m.sched.spawn(
          'bad',
          'kthread',
          (function* (): KGen {
            yield { op: 'x' };
            throw new TypeError('oops');
          })(),
        );
      },
    };
    const r = explore(s, { schedules: 1 });
    expect(r.failure?.finding.kind).toBe('exception');
    expect(r.failure?.template).toBe('exception: the run threw TypeError: oops');
  });

  it('budgets: schedules, seconds with a clock, progress reports', () => {
    const seen: number[] = [];
    const r = explore(threeTasks(), {
      seed: SEED,
      seconds: 0.05,
      now: fakeClock(),
      progressEvery: 10,
      onProgress: (p) => seen.push(p.schedules),
    });
    // The fake clock advances 1 ms per reading, one reading per schedule: ~50 schedules.
    expect(r.stats.schedules).toBeGreaterThan(40);
    expect(r.stats.schedules).toBeLessThanOrEqual(50);
    expect(r.stats.schedulesPerSecond).toBeGreaterThan(0);
    expect(seen.slice(0, 3)).toEqual([10, 20, 30]);
    expect(seen[seen.length - 1]).toBe(r.stats.schedules);
    expect(() => explore(threeTasks(), { seconds: 1 })).toThrow(/needs a clock/);
    expect(() => explore(threeTasks(), { schedules: 0 })).toThrow(/positive integer/);
    expect(() => explore(threeTasks(), { strategy: 'bogus' })).toThrow(/unknown strategy 'bogus'/);
    expect(explore(threeTasks(), { schedules: 7 }).stats.schedules).toBe(7);
  });

  it('findingTemplate blanks numbers and addresses', () => {
    expect(findingTemplate({ kind: 'BUG', message: 'page 0x7f00a000 mapped 3 times by pid101' })).toBe(
      'BUG: page <addr> mapped <n> times by pid<n>',
    );
  });

  it('scheduleFor refuses a schedule string of the wrong scenario', () => {
    expect(() => scheduleFor(tiny(1, 'a'), 'up1:b:00000000:')).toThrow(/for scenario 'b'/);
  });

  it('measures schedules per second on a three-task scenario', () => {
    for (const s of [threeTasks(), threeMm()]) {
      const clock = (): number => Number(process.hrtime.bigint()) / 1e6;
      explore(s, { seed: SEED, schedules: 300, failOn: () => false }); // warm-up
      const r = explore(s, { seed: SEED, seconds: 1, now: clock, failOn: () => false, strategy: 'random' });
      expect(r.failure).toBeNull();
      console.log(
        `${s.name}: ${Math.round(r.stats.schedulesPerSecond!)} schedules/s ` +
          `(${r.stats.schedules} schedules, ${Math.round(r.stats.steps / r.stats.schedules)} steps each)`,
      );
    }
  });
});
