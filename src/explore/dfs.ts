import type { Task } from '../sched/task.js';
import { DecisionKind, type DecisionSource } from './decisions.js';
import type { RecordedRun, Strategy } from './strategy.js';

/**
 * A decision worth deviating at first: two or more of its runnable tasks are user threads or
 * workqueue workers — the scenario's own threads and the work they queue. The others choose
 * between such a thread and a GPU engine or a kernel thread (the setup's engines going to sleep,
 * the shutdown), which rarely decides a race.
 */
export function focal(runnable: readonly Task[] | undefined): boolean {
  if (!runnable) return false;
  let n = 0;
  for (const t of runnable) if ((t.kind === 'user' || t.kind === 'worker') && ++n === 2) return true;
  return false;
}

/**
 * Follows a decision prefix, then takes the default (non-preemptive) choice at every later
 * decision. A prefix decision that no longer fits means the scenario is not deterministic.
 */
export class PrefixChooser implements DecisionSource {
  private i = 0;
  /** `focal` of each decision taken. */
  readonly focal: boolean[] = [];

  constructor(private readonly prefix: readonly number[]) {}

  decide(n: number, _kind: DecisionKind, _step: number, _at?: unknown, runnable?: readonly Task[]): number {
    const i = this.i++;
    this.focal.push(focal(runnable));
    const d = this.prefix[i] ?? 0;
    if (d >= n) {
      throw new Error(
        `DFS: decision ${i} now has ${n} options, fewer than before: the scenario is not deterministic`,
      );
    }
    return d;
  }
}

/** A schedule of the search: its decisions up to its last non-default one. */
interface DfsNode {
  /** Decisions to follow (defaults after); ends with the last deviation (empty: the root). */
  readonly prefix: number[];
  /** Index of the last deviation, -1 for the root. */
  readonly last: number;
  /** Deviations (non-default decisions), preemptions among them, and their cost (see DfsStrategy). */
  readonly deviations: number;
  readonly preemptions: number;
  readonly cost: number;
  /** The deviations as `position:value,` pairs: the node's name in the run cache. */
  readonly key: string;
}

/** What the search needs of a run: the shape of its decision list. */
interface DfsLog {
  readonly counts: Uint16Array;
  readonly kinds: Uint8Array;
  /** 1 where the decision is `focal`. */
  readonly focal: Uint8Array;
}

/** A node whose children are being visited: the next position and value to try. */
interface DfsFrame {
  readonly node: DfsNode;
  readonly log: DfsLog;
  q: number;
  v: number;
}

/** First window of positions a deviation may take; it doubles while runs reach past it. */
export const DFS_FIRST_WINDOW = 8;
/** What a deviation at a decision that is not `focal` costs (one at a focal decision). */
export const DFS_OFF_FOCUS_COST = 2;
/** Decisions of run logs kept for revisiting (beyond it the cache starts over: re-runs). */
const DFS_CACHE_DECISIONS = 4_000_000;

/**
 * Exhaustive depth-first search over the decision tree, stateless (every schedule re-runs the
 * scenario from boot), by iterative deviation bounding (delay bounding, Emmi, Qadeer and
 * Rakamarić, POPL 2011), weighted: iteration k runs every schedule whose deviations from the
 * non-preemptive default — task picks other than the default (a preemption or a free switch
 * alike) and `pick` values other than 0 — cost k in all, k = 0, 1, 2, … A deviation costs 1 at a
 * `focal` decision (two of the scenario's threads or workers could run) and DFS_OFF_FOCUS_COST
 * elsewhere (an engine or kernel thread against one thread, a `pick`): so races between the
 * scenario's own threads come first, and an engine or the shutdown is interleaved later, not
 * never. The default schedule runs first, then every schedule that differs from it once at a
 * focal decision, …, however long the runs are. (Iterative preemption bounding, CHESS's, counts
 * only preemptions: its first iteration is every interleaving of free switches, hundreds of
 * schedules before the first preemption is tried.)
 *
 * Within an iteration, deviations are tried at the earliest decisions first: positions are
 * limited to a window that doubles from DFS_FIRST_WINDOW while some run reaches past it, so a
 * long run's tail (a retry loop, the shutdown) does not hold back its beginning. Runs are
 * remembered (decision counts and kinds) so a schedule is revisited without running it again,
 * and each schedule is run once: `distinct` equals `runs` unless the cache had to start over.
 *
 * `dfs:<b>` runs only schedules of at most b preemptions. The search is **complete** when an
 * iteration ends with nothing cut: every schedule of the scenario has run. With a preemption
 * bound it ends **exhausted** once only the bound cuts: every schedule of at most b preemptions
 * has run.
 */
export class DfsStrategy implements Strategy {
  readonly name: string;
  readonly current: string;
  /** The cost bound of the current iteration. */
  bound = 0;
  /** Deviations may be placed at decisions below this index (in this pass of the iteration). */
  window = DFS_FIRST_WINDOW;
  /** Schedules run, and distinct schedules among them. */
  runs = 0;
  distinct = 0;
  /** The window of the previous pass (its schedules already ran), 0 in a first pass. */
  private previousWindow = 0;
  private stack: DfsFrame[] = [];
  private pending: DfsNode = ROOT;
  private chooser: PrefixChooser | null = null;
  /**
   * What the search left out: deviations past the bound (in this iteration), preemptions past b
   * (ever: the search is then incomplete), positions past the window (this pass). The first two
   * are kept across passes, as a pass skips the schedules that ran in an earlier one.
   */
  private cutDeviations = false;
  private cutPreemptions = false;
  private cutWindow = false;
  private readonly logs = new Map<string, DfsLog>();
  private cached = 0;
  private done = false;
  private finished = false;

  constructor(readonly maxPreemptions = Number.POSITIVE_INFINITY) {
    if (!(maxPreemptions >= 0)) throw new RangeError(`DFS preemption bound ${maxPreemptions}`);
    this.name = Number.isFinite(maxPreemptions) ? `dfs:${maxPreemptions}` : 'dfs';
    this.current = this.name;
  }

  get exhausted(): boolean {
    return this.done;
  }

  get complete(): boolean {
    return this.finished;
  }

  next(): PrefixChooser | null {
    this.chooser = this.done ? null : new PrefixChooser(this.pending.prefix);
    return this.chooser;
  }

  observe(run: RecordedRun): void {
    const node = this.pending;
    this.runs++;
    if (node.cost === this.bound) this.distinct++;
    const focal = Uint8Array.from(run.log.counts, (_, i) => (this.chooser?.focal[i] ? 1 : 0));
    const log: DfsLog = {
      counts: Uint16Array.from(run.log.counts),
      kinds: Uint8Array.from(run.log.kinds),
      focal,
    };
    if (this.cached + log.counts.length > DFS_CACHE_DECISIONS) {
      this.logs.clear();
      this.cached = 0;
    }
    this.logs.set(node.key, log);
    this.cached += log.counts.length;
    this.visit(node, log);
  }

  /** Visits `node` (its run known), then walks on to the next schedule that must run. */
  private visit(node: DfsNode | null, log: DfsLog): void {
    for (;;) {
      if (node) {
        if (node.cost === this.bound) this.leaf(node, log);
        else this.stack.push({ node, log, q: node.last + 1, v: 1 });
        node = null;
      }
      const top = this.stack[this.stack.length - 1];
      if (!top) {
        if (!this.endPass()) return;
        // The root ran first; it runs again only if the cache had to start over.
        const root = this.logs.get(ROOT.key);
        if (!root) return;
        node = ROOT;
        log = root;
        continue;
      }
      const c = this.child(top);
      if (!c) {
        this.stack.pop();
        continue;
      }
      if (c.cost === this.bound) {
        // A schedule of a narrower window of this iteration already ran.
        if (c.last < this.previousWindow) continue;
        this.pending = c;
        return;
      }
      const known = this.logs.get(c.key);
      if (!known) {
        this.pending = c;
        return;
      }
      node = c;
      log = known;
    }
  }

  /** The next child of a frame within the bounds, or null; notes what the bounds cut. */
  private child(f: DfsFrame): DfsNode | null {
    const { counts, kinds, focal } = f.log;
    while (f.q < counts.length) {
      const q = f.q;
      if (f.v >= counts[q]!) {
        f.q++;
        f.v = 1;
        continue;
      }
      const preemptions = f.node.preemptions + (kinds[q] === DecisionKind.Preemptible ? 1 : 0);
      if (preemptions > this.maxPreemptions) {
        this.cutPreemptions = true;
        f.q++;
        f.v = 1;
        continue;
      }
      const cost = f.node.cost + (focal[q] ? 1 : DFS_OFF_FOCUS_COST);
      if (cost > this.bound) {
        this.cutDeviations = true;
        f.q++;
        f.v = 1;
        continue;
      }
      if (q >= this.window) {
        this.cutWindow = true;
        f.q = counts.length;
        return null;
      }
      const v = f.v++;
      const prefix = f.node.prefix.slice();
      while (prefix.length < q) prefix.push(0);
      prefix.push(v);
      return {
        prefix,
        last: q,
        deviations: f.node.deviations + 1,
        preemptions,
        cost,
        key: `${f.node.key}${q}:${v},`,
      };
    }
    return null;
  }

  /** A schedule at the deviation bound: whatever deviation it could still take is cut. */
  private leaf(node: DfsNode, log: DfsLog): void {
    const { counts, kinds } = log;
    for (let q = node.last + 1; q < counts.length; q++) {
      if (counts[q]! < 2) continue;
      if (kinds[q] === DecisionKind.Preemptible && node.preemptions >= this.maxPreemptions) {
        this.cutPreemptions = true;
      } else {
        this.cutDeviations = true;
        return;
      }
    }
  }

  /** The pass is over: widen the window, or raise the bound, or stop (false). */
  private endPass(): boolean {
    if (this.cutWindow) {
      this.previousWindow = this.window;
      this.window *= 2;
    } else if (this.cutDeviations) {
      this.bound++;
      this.previousWindow = 0;
      this.window = DFS_FIRST_WINDOW;
      this.cutDeviations = false;
    } else {
      this.done = true;
      this.finished = !this.cutPreemptions;
      return false;
    }
    this.cutWindow = false;
    this.stack = [];
    this.pending = ROOT;
    return true;
  }

  status(): string {
    const state = this.finished
      ? 'complete'
      : this.done
        ? `preemption bound ${this.maxPreemptions} exhausted`
        : `cost bound ${this.bound}, window ${this.window}`;
    return `${this.name}: ${state}, ${this.distinct} distinct of ${this.runs} schedules`;
  }
}

const ROOT: DfsNode = { prefix: [], last: -1, deviations: 0, preemptions: 0, cost: 0, key: '' };
