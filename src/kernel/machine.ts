import { Bugs } from '../base/bugs.js';
import { Faults, attachFaults } from '../base/faults.js';
import type { Finding } from '../base/findings.js';
import { KernelOops } from '../base/findings.js';
import { PAGE_SIZE } from '../base/page.js';
import { PhysicalMemory } from '../hw/ram.js';
import type { CharDevice } from '../mm/current.js';
import { migrate_page } from '../mm/migrate.js';
import { mm_alloc } from '../mm/mm.js';
import type { MmKernel } from '../mm/mm_types.js';
import { type Chooser, SeededChooser } from '../sched/chooser.js';
import { LockdepGraph } from '../sched/lockdep.js';
import { Mutex } from '../sched/mutex.js';
import { Scheduler } from '../sched/scheduler.js';
import { SrcuStruct } from '../sched/srcu.js';
import type { KGen } from '../sched/task.js';
import { type Workqueue, alloc_workqueue } from '../sched/workqueue.js';
import type { TraceSink } from '../trace/events.js';
import { DeadlockError, KernelBugError } from './errors.js';
import { type DrmI915Private } from '../i915/i915_drv.js';
import { i915_driver_load, i915_driver_unload } from '../i915/i915_dma.js';
import { Process, ThreadStruct } from './process.js';
import * as sys from './syscalls.js';

export interface GpuConfig {
  /** 7 = Ivybridge-class (32-bit relocations), 8 = Broadwell-class (64-bit). */
  gen?: 7 | 8;
  /** Global GTT size in bytes. */
  gttBytes?: number;
  /** CPU-visible aperture for GTT mmaps. */
  mappableBytes?: number;
}

export interface MachineConfig {
  seed?: number;
  ramBytes?: number;
  gpu?: GpuConfig;
  /** CONFIG_MMU_NOTIFIER. */
  mmuNotifier?: boolean;
  /** Historic bugs to switch on, or 'as-merged'. */
  bugs?: readonly string[] | 'as-merged';
  /**
   * Fault points to enable (failslab-style, ids registered by the code that owns the call site,
   * e.g. 'st_set_pages'). Each call at an enabled point asks the chooser `pick(2, id)`: 1 fails.
   */
  faults?: readonly string[];
  /** Who runs next (the explorer's hook); default: seeded from `seed`. */
  chooser?: Chooser;
  /** A lockdep graph shared across machines (the explorer's). */
  lockdep?: LockdepGraph;
  /** Label of this run in lockdep reports. */
  runLabel?: string;
  /** Workers of the system workqueue. */
  systemWorkers?: number;
}

export interface MemInfo {
  totalPages: number;
  freePages: number;
  pinnedPages: number;
}

const DEFAULT_RAM = 512 * 1024 * 1024;

/**
 * Called for every machine at boot. Layers above kernel/ (the sanitizers of oracle/) register
 * here, so a machine is watched without kernel/ depending on them.
 */
export const machineBootHooks: ((m: Machine) => void)[] = [];

function checkConfig(cfg: MachineConfig): void {
  const bad = (what: string): never => {
    throw new RangeError(`Machine.boot: ${what}`);
  };
  if (cfg.seed !== undefined && (!Number.isInteger(cfg.seed) || cfg.seed < 0))
    bad(`seed must be a non-negative integer`);
  const ram = cfg.ramBytes ?? DEFAULT_RAM;
  if (!Number.isInteger(ram) || ram <= 0 || ram % PAGE_SIZE !== 0 || ram > 2 ** 40) {
    bad(`ramBytes must be a positive multiple of 4096 up to 1 TiB, got ${ram}`);
  }
  const g = cfg.gpu ?? {};
  if (g.gen !== undefined && g.gen !== 7 && g.gen !== 8) bad(`gpu.gen must be 7 or 8`);
  const gtt = g.gttBytes ?? 2 ** 31;
  const map = g.mappableBytes ?? 256 * 1024 * 1024;
  if (!Number.isInteger(gtt) || gtt < 1 << 20 || gtt % PAGE_SIZE !== 0 || gtt > 2 ** 48) {
    bad(`gpu.gttBytes must be a multiple of 4096 between 1 MiB and 2^48`);
  }
  if (!Number.isInteger(map) || map <= 0 || map % PAGE_SIZE !== 0 || map > gtt) {
    bad(`gpu.mappableBytes must be a multiple of 4096 no larger than gttBytes`);
  }
  if (cfg.mmuNotifier !== undefined && typeof cfg.mmuNotifier !== 'boolean')
    bad(`mmuNotifier must be a boolean`);
  const w = cfg.systemWorkers;
  if (w !== undefined && (!Number.isInteger(w) || w < 1 || w > MAX_SYSTEM_WORKERS))
    bad(`systemWorkers must be an integer from 1 to ${MAX_SYSTEM_WORKERS}`);
  const c = cfg.chooser as Partial<Chooser> | undefined;
  if (c !== undefined && (typeof c?.choose !== 'function' || typeof c.pick !== 'function'))
    bad(`chooser must have choose() and pick()`);
  if (cfg.lockdep !== undefined && !(cfg.lockdep instanceof LockdepGraph))
    bad(`lockdep must be a LockdepGraph`);
}

/** Most workers the system workqueue may have (each is a task: more is a configuration error). */
const MAX_SYSTEM_WORKERS = 64;

/** The simulated machine: RAM, scheduler, processes, devices. */
export class Machine {
  readonly sched: Scheduler;
  readonly ram: PhysicalMemory;
  readonly k: MmKernel;
  readonly bugs: Bugs;
  /** Enabled fault points; their decisions come from the chooser. */
  readonly faults: Faults;
  readonly seed: number;
  readonly mmuNotifier: boolean;
  readonly gpuConfig: Required<GpuConfig>;
  /** system_wq. */
  readonly system_wq: Workqueue;
  /** /dev nodes drivers registered. */
  readonly devices = new Map<string, CharDevice>();
  /** Live processes by pid. */
  readonly processes = new Map<number, Process>();
  private nextPid = 100;
  private shutDown = false;
  /** Hooks drivers add: run at shutdown after every process exited (e.g. leak checks). */
  readonly shutdownHooks: (() => KGen)[] = [];
  /** GPU error state text, set by the driver's error capture. */
  gpuError: string | null = null;
  /** The GPU driver's state (drm_i915_private). */
  readonly i915: DrmI915Private;

  private constructor(cfg: MachineConfig) {
    checkConfig(cfg);
    this.seed = cfg.seed ?? 1;
    this.bugs = new Bugs(cfg.bugs ?? []);
    this.mmuNotifier = cfg.mmuNotifier ?? true;
    this.gpuConfig = {
      gen: cfg.gpu?.gen ?? 7,
      gttBytes: cfg.gpu?.gttBytes ?? 2 ** 31,
      mappableBytes: cfg.gpu?.mappableBytes ?? 256 * 1024 * 1024,
    };
    this.sched = new Scheduler({
      chooser: cfg.chooser ?? new SeededChooser(this.seed),
      ...(cfg.lockdep ? { lockdep: cfg.lockdep } : {}),
      ...(cfg.runLabel ? { runLabel: cfg.runLabel } : {}),
    });
    const sched = this.sched;
    this.ram = new PhysicalMemory(cfg.ramBytes ?? DEFAULT_RAM, (kind, message) => {
      sched.report(kind, message);
    });
    this.faults = new Faults(cfg.faults ?? [], (n, what) => sched.chooser.pick(n, what));
    this.k = {
      sched,
      ram: this.ram,
      notifierSrcu: new SrcuStruct(sched, 'mmu_notifier srcu'),
      mmAllLocks: new Mutex(sched, 'mm_all_locks_mutex'),
      liveMms: new Set(),
      invalidateObservers: [],
      mmSerial: 0,
    };
    attachFaults(this.k, this.faults);
    this.system_wq = alloc_workqueue(sched, 'events', cfg.systemWorkers ?? 4);
    // Written out, not spread: a spread that adds properties takes V8's slow path on every boot.
    this.i915 = i915_driver_load(this.k, {
      gen: this.gpuConfig.gen,
      gttBytes: this.gpuConfig.gttBytes,
      mappableBytes: this.gpuConfig.mappableBytes,
      mmuNotifier: this.mmuNotifier,
      bugs: this.bugs,
      system_wq: this.system_wq,
      devices: this.devices,
      fdInstall: (file) => sys.install_file(this.caller(), file),
      fdLookup: (fd) => sys.fdget(this.caller(), fd),
      publishError: (text) => {
        this.gpuError = text;
      },
    });
    this.shutdownHooks.push(() => i915_driver_unload(this.i915));
    for (const hook of machineBootHooks) hook(this);
  }

  /** The process whose task is running (drivers' view of current->files). */
  private caller(): Process {
    const ctx = this.sched.current?.context;
    if (ctx instanceof Process) return ctx;
    if (ctx instanceof ThreadStruct) return ctx.proc;
    throw new Error('no user process is running');
  }

  /** Boots a machine. Cheap: memory is allocated as it is touched. */
  static boot(cfg: MachineConfig = {}): Machine {
    return new Machine(cfg);
  }

  /** A new process with an empty address space and no open files. */
  spawn(opts: { uid?: number } | null = {}): Process {
    const uid = opts?.uid ?? 1000;
    if (!Number.isInteger(uid) || uid < 0 || uid > 0xfffffffe) throw new RangeError(`spawn: bad uid ${uid}`);
    if (this.shutDown) throw new Error('spawn: the machine is shut down');
    return this.newProcess(uid, mm_alloc(this.k), null);
  }

  /** @internal fork and spawn */
  newProcess(uid: number, mm: ReturnType<typeof mm_alloc>, parent: Process | null): Process {
    const p = new Process(this, this.nextPid++, uid, mm, parent);
    this.processes.set(p.pid, p);
    return p;
  }

  /** @internal exit */
  reap(p: Process): void {
    this.processes.delete(p.pid);
  }

  /** Adds a trace sink (every scheduling point, lock, syscall and finding). */
  trace(sink: TraceSink): void {
    this.sched.addSink(sink);
  }

  /** Runs every task until all are idle or blocked. */
  run(): void {
    this.sched.runIdle();
  }

  meminfo(): MemInfo {
    return {
      totalPages: this.ram.totalPages,
      freePages: this.ram.freePages,
      pinnedPages: this.ram.pinnedPages,
    };
  }

  findings(): Finding[] {
    return [...this.sched.findings];
  }

  gpuErrorState(): string | null {
    return this.gpuError;
  }

  /**
   * The sync facade: runs `gen` as a task of process `p` and drives the scheduler until it
   * returns, letting everything else interleave. A deadlock or a fatal finding becomes an
   * exception.
   */
  syscall<T>(p: Process, name: string, gen: KGen<T>): T {
    const s = this.sched;
    const before = s.findings.length;
    // The call traces its own span (UserApi, sys.traced_syscall): a CPU access is no syscall.
    const t = s.spawn(p.comm, 'user', gen);
    t.context = p;
    const ok = s.runUntil(() => t.done);
    if (!ok) {
      const f =
        s.findings.slice(before).find((x) => x.kind === 'deadlock') ??
        s.report('deadlock', `${name} cannot complete`, s.describeBlocked());
      throw new DeadlockError(f);
    }
    if (t.error instanceof KernelOops) throw new KernelBugError(t.error.finding);
    if (t.error) throw t.error instanceof Error ? t.error : new Error('task failed without an Error');
    // Every path back to user space runs the task's queued work (deferred file releases).
    if (t.task_works?.length) s.report('BUG', `${name} returned to user space with task work queued`);
    if (s.findings.length > before) {
      const fatal = s.findings.slice(before).find((x) => x.fatal);
      if (fatal) throw fatal.kind === 'deadlock' ? new DeadlockError(fatal) : new KernelBugError(fatal);
    }
    return t.result as T;
  }

  /**
   * Compaction of the page `p` maps at `addr` (what writing /proc/sys/vm/compact_memory, or direct
   * compaction, does to it in 3.16): a kernel thread migrates it to a new frame under the page
   * lock, without `p`'s mmap_sem (mm/migrate.ts). Returns 0, or -EAGAIN when the page is pinned,
   * -EFAULT when nothing is mapped there, -EBUSY for pages the model does not migrate.
   */
  compact(p: Process, addr: number): number {
    const mm = p.mm;
    if (!mm) throw new Error(`compact: process ${p.pid} has no mm`);
    const s = this.sched;
    const before = s.findings.length;
    const t = s.spawn('compact', 'kthread', migrate_page(mm, addr));
    if (!s.runUntil(() => t.done)) {
      const f =
        s.findings.slice(before).find((x) => x.kind === 'deadlock') ??
        s.report('deadlock', 'compaction cannot complete', s.describeBlocked());
      throw new DeadlockError(f);
    }
    if (t.error instanceof KernelOops) throw new KernelBugError(t.error.finding);
    if (t.error) throw t.error instanceof Error ? t.error : new Error('compaction failed without an Error');
    return t.result as number;
  }

  /**
   * Gives the machine's memory back for reuse by the next machine (the explorer boots one per
   * schedule). Call after shutdown(), once nothing will read the machine again.
   */
  dispose(): void {
    this.ram.dispose();
  }

  /** Lets background work progress (a client's retry loop backing off). */
  yieldToOthers(p: Process): void {
    this.syscall(p, 'sched_yield', sys.traced_syscall(this.sched, 'sched_yield', sched_yield()));
  }

  /**
   * Kills every process, drains all work, runs the leak checks and returns every finding. A
   * correct kernel returns [] whatever the programs did.
   */
  shutdown(): Finding[] {
    if (!this.shutDown) {
      this.shutDown = true;
      const s = this.sched;
      // Every process exits, then all work they left (workers, GPU, deferred releases) drains,
      // and only then do drivers unload and check for leaks.
      const reaper = s.spawn('shutdown', 'kthread', this.shutdownTask());
      s.runUntil(() => reaper.done);
      s.runIdle();
      const unload = s.spawn('unload', 'kthread', this.unloadTask());
      s.runUntil(() => unload.done);
      s.runIdle();
      this.leakChecks();
    }
    return this.findings();
  }

  private *shutdownTask(): KGen {
    for (const p of [...this.processes.values()].sort((a, b) => a.pid - b.pid)) {
      yield* sys.do_exit(p, 137);
    }
  }

  private *unloadTask(): KGen {
    for (const hook of this.shutdownHooks) yield* hook();
  }

  /** Frames, pins and mm structs still held after everything exited are leaks. */
  private leakChecks(): void {
    const s = this.sched;
    const c = this.ram.recount();
    if (
      c.usedPages !== this.ram.usedPages ||
      c.freePages !== this.ram.freePages ||
      c.pinnedPages !== this.ram.pinnedPages
    ) {
      s.report(
        'BUG',
        `frame accounting drifted: cached ${this.ram.usedPages}/${this.ram.pinnedPages}, recounted ${c.usedPages}/${c.pinnedPages}`,
      );
    }
    if (c.pinnedPages > 0) s.report('leak', `${c.pinnedPages} pages still pinned at shutdown`);
    if (c.usedPages > 0) s.report('leak', `${c.usedPages} frames still allocated at shutdown`);
    for (const mm of this.k.liveMms) {
      s.report('leak', `mm ${mm.id} never freed (mm_users ${mm.mm_users}, mm_count ${mm.mm_count})`);
    }
    const stuck = s.tasks.filter((t) => t.kind === 'user' && !t.done);
    if (stuck.length) s.report('leak', `${stuck.length} user tasks never finished`, s.describeBlocked(stuck));
  }
}

function* sched_yield(): KGen<number> {
  yield { op: 'sched_yield' };
  return 0;
}
