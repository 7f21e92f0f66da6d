/**
 * lockdep: lock classes, a dependency graph between classes and cycle detection on every new
 * edge. An edge A → B means "B was acquired while A was held"; a new edge that closes a cycle is
 * a possible deadlock even when this run did not deadlock. The graph may outlive a machine: the
 * explorer shares one across many runs so an inversion seen in two different runs is reported.
 */

/** Where an edge was first seen: enough to replay it. */
export interface EdgeOrigin {
  task: string;
  step: number;
  /** Label of the run (a schedule string when the explorer sets one). */
  run: string;
  /** Held-lock stack at the time, outermost first. */
  held: string[];
}

export interface LockdepReport {
  kind: 'circular' | 'recursive';
  message: string;
  detail: string;
  /** The cycle's classes, starting with the lock being acquired. */
  chain: string[];
}

export class LockdepGraph {
  /** from → (to → first origin). */
  private readonly edges = new Map<string, Map<string, EdgeOrigin>>();
  /** Cycles already reported (sorted class list), so each inversion is reported once per graph. */
  private readonly reported = new Set<string>();

  get edgeCount(): number {
    let n = 0;
    for (const m of this.edges.values()) n += m.size;
    return n;
  }

  hasEdge(from: string, to: string): boolean {
    return this.edges.get(from)?.has(to) ?? false;
  }

  origin(from: string, to: string): EdgeOrigin | undefined {
    return this.edges.get(from)?.get(to);
  }

  /**
   * Records `from → to`. Returns a report when the edge is new and closes a cycle that has not
   * been reported before.
   */
  addEdge(from: string, to: string, origin: EdgeOrigin): LockdepReport | null {
    let out = this.edges.get(from);
    if (!out) {
      out = new Map();
      this.edges.set(from, out);
    }
    if (out.has(to)) return null;
    out.set(to, origin);
    const path = this.findPath(to, from);
    if (!path) return null;
    const key = [...path].sort().join('|');
    if (this.reported.has(key)) return null;
    this.reported.add(key);
    // path: to → ... → from; with the new edge from → to it is a cycle.
    const lines: string[] = [];
    for (let i = 0; i < path.length; i++) {
      const a = path[i]!;
      const b = path[(i + 1) % path.length]!;
      const o = this.origin(a, b)!;
      lines.push(
        `  ${a} -> ${b}: first seen in task ${o.task} at step ${o.step}` +
          (o.run ? ` of run ${o.run}` : '') +
          ` holding [${o.held.join(', ')}]`,
      );
    }
    return {
      kind: 'circular',
      message: `possible circular locking dependency detected: ${[...path, path[0]!].join(' -> ')}`,
      detail: lines.join('\n'),
      chain: path,
    };
  }

  /** Depth-first search for a path src →* dst; returns the classes on it (src first). */
  private findPath(src: string, dst: string): string[] | null {
    const seen = new Set<string>([src]);
    const stack: { node: string; it: Iterator<string> }[] = [];
    const path: string[] = [src];
    if (src === dst) return path;
    stack.push({ node: src, it: (this.edges.get(src)?.keys() ?? [].values())[Symbol.iterator]() });
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const n = top.it.next();
      if (n.done) {
        stack.pop();
        path.pop();
        continue;
      }
      const next = n.value;
      if (next === dst) return [...path, next];
      if (seen.has(next)) continue;
      seen.add(next);
      path.push(next);
      stack.push({ node: next, it: (this.edges.get(next)?.keys() ?? [].values())[Symbol.iterator]() });
    }
    return null;
  }
}
