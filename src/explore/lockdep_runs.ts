import { type EdgeOrigin, LockdepGraph, type LockdepReport } from '../sched/lockdep.js';

/**
 * The exploration's lockdep graph: one graph for every run, so an inversion whose two halves
 * were seen in two different runs is reported. Each edge remembers the schedule string of the
 * run that first produced it. A run's schedule string is only known once the run has ended, so
 * edges are labelled with a placeholder while it runs and relabelled when it ends (the finding
 * texts of that run are relabelled by the explorer).
 */
export class ExplorationLockdep extends LockdepGraph {
  /** Origins of the edges the current run added. */
  private fresh: EdgeOrigin[] = [];
  /** Cycles reported in the current run, with the origins of their edges. */
  private cycles: { report: LockdepReport; origins: EdgeOrigin[] }[] = [];
  /** Run labels in the order the runs ended. */
  private readonly order = new Map<string, number>();

  override addEdge(from: string, to: string, origin: EdgeOrigin): LockdepReport | null {
    const isNew = !this.hasEdge(from, to);
    const r = super.addEdge(from, to, origin);
    if (isNew) this.fresh.push(origin);
    if (r) {
      const origins: EdgeOrigin[] = [];
      for (let i = 0; i < r.chain.length; i++) {
        const o = this.origin(r.chain[i]!, r.chain[(i + 1) % r.chain.length]!);
        if (o) origins.push(o);
      }
      this.cycles.push({ report: r, origins });
    }
    return r;
  }

  /** Whether the current run added edges (its label will be needed). */
  get addedEdges(): boolean {
    return this.fresh.length > 0;
  }

  /**
   * Ends the current run: its edges are labelled `label`. Returns, for each cycle reported in
   * the run, its message and the labels of the *other* runs whose edges it needs, oldest first.
   */
  endRun(label: string): { message: string; runs: string[] }[] {
    for (const o of this.fresh) o.run = label;
    this.fresh = [];
    if (!this.order.has(label)) this.order.set(label, this.order.size);
    const out = this.cycles.map(({ report, origins }) => {
      const runs = [...new Set(origins.map((o) => o.run))].filter((r) => r !== label);
      runs.sort((a, b) => (this.order.get(a) ?? 0) - (this.order.get(b) ?? 0));
      return { message: report.message, runs };
    });
    this.cycles = [];
    return out;
  }
}
