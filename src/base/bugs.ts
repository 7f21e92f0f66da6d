/**
 * Historic bugs as data: each switch names a change of the faithful code path that restores the
 * code before a fix. Drivers register their switches; a machine's config selects some.
 */
export interface BugSwitch {
  /** Short id used in config and the CLI ("v16-worker-race"). */
  id: string;
  /** One line: what switching it on reverts. */
  description: string;
  /** The invariant it breaks. */
  invariant: string;
  /** Part of the merged code's latent set selected by 'as-merged'. */
  asMerged: boolean;
}

const REGISTRY = new Map<string, BugSwitch>();

/** Registers a switch (a module of the layer that owns the code does this at load time). */
export function registerBug(b: BugSwitch): void {
  if (REGISTRY.has(b.id)) throw new Error(`bug switch ${b.id} registered twice`);
  REGISTRY.set(b.id, b);
}

export function knownBugs(): BugSwitch[] {
  return [...REGISTRY.values()];
}

/** The switches a machine runs with. */
export class Bugs {
  private readonly on: ReadonlySet<string>;

  /** Throws a readable error for an unknown id (bad input from a user's config). */
  constructor(spec: readonly string[] | 'as-merged' = []) {
    const ids = new Set<string>();
    const list: unknown = spec === 'as-merged' ? ['as-merged'] : spec;
    if (!Array.isArray(list)) throw new TypeError(`bugs must be an array of ids or 'as-merged'`);
    for (const id of list as unknown[]) {
      if (typeof id !== 'string') throw new TypeError(`bug ids are strings, got ${typeof id}`);
      if (id === 'as-merged') {
        for (const b of REGISTRY.values()) if (b.asMerged) ids.add(b.id);
        continue;
      }
      if (!REGISTRY.has(id)) {
        const known = [...REGISTRY.keys()];
        throw new Error(
          `unknown bug id '${id}'` + (known.length ? ` (known: ${known.join(', ')})` : ' (none registered)'),
        );
      }
      ids.add(id);
    }
    this.on = ids;
  }

  has(id: string): boolean {
    return this.on.has(id);
  }

  get ids(): string[] {
    return [...this.on].sort();
  }
}
