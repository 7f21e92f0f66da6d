/**
 * Fault injection as data (the model's failslab / fail_page_alloc): kernel code names the call
 * sites that may fail (`registerFault`), a machine's config enables some (`faults: [...]`), and at
 * an enabled site `should_fail(kernel, id)` asks the machine's decision stream — the chooser's
 * `pick(2, id)` — whether this call fails. A site that is not enabled draws nothing, so enabling
 * no fault leaves every run exactly as it was; an enabled one is a decision like any task pick,
 * which a test scripts and the explorer enumerates.
 */
export interface FaultPoint {
  /** Short id used in config ("st_set_pages"). */
  id: string;
  /** One line: which allocation or call fails, and with what. */
  description: string;
}

const REGISTRY = new Map<string, FaultPoint>();

/** Registers a fault point (a module of the layer that owns the call site does this at load). */
export function registerFault(f: FaultPoint): void {
  if (REGISTRY.has(f.id)) throw new Error(`fault point ${f.id} registered twice`);
  REGISTRY.set(f.id, f);
}

export function knownFaults(): FaultPoint[] {
  return [...REGISTRY.values()];
}

/** Where an enabled fault point's decision comes from: a value in [0, n). */
export type FaultPick = (n: number, what: string) => number;

/** The fault points a machine runs with, and the decision stream they draw from. */
export class Faults {
  private readonly on: ReadonlySet<string>;
  /** Decisions drawn and faults injected, per point (for tests and reports). */
  readonly drawn = new Map<string, number>();
  readonly injected = new Map<string, number>();

  /** Throws a readable error for an unknown id (bad input from a user's config). */
  constructor(
    spec: readonly string[] = [],
    private readonly pick: FaultPick = () => 0,
  ) {
    if (!Array.isArray(spec)) throw new TypeError('faults must be an array of fault point ids');
    const ids = new Set<string>();
    for (const id of spec as unknown[]) {
      if (typeof id !== 'string') throw new TypeError(`fault ids are strings, got ${typeof id}`);
      if (!REGISTRY.has(id)) {
        const known = [...REGISTRY.keys()];
        throw new Error(
          `unknown fault point '${id}'` +
            (known.length ? ` (known: ${known.join(', ')})` : ' (none registered)'),
        );
      }
      ids.add(id);
    }
    this.on = ids;
  }

  enabled(id: string): boolean {
    return this.on.has(id);
  }

  /** Whether this call of `id` fails: false without a draw unless the point is enabled. */
  should_fail(id: string): boolean {
    if (!REGISTRY.has(id)) throw new Error(`should_fail: fault point ${id} was never registered`);
    if (!this.on.has(id)) return false;
    this.drawn.set(id, (this.drawn.get(id) ?? 0) + 1);
    const fail = this.pick(2, id) === 1;
    if (fail) this.injected.set(id, (this.injected.get(id) ?? 0) + 1);
    return fail;
  }

  get ids(): string[] {
    return [...this.on].sort();
  }
}

/**
 * Each simulated kernel's faults, as a symbol-keyed property of its kernel-services object (a
 * machine's `k`). Not a WeakMap: V8's young-generation GC treats a WeakMap's values as strong, and
 * a Faults reaches its whole machine, so every booted machine would survive to the old generation.
 */
const FAULTS = Symbol('faults');
type WithFaults = { [FAULTS]?: Faults };

/** The machine attaches its Faults to its kernel at boot. */
export function attachFaults(kernel: object, faults: Faults): void {
  // A plain store (defineProperty takes V8's slow path, on every boot).
  (kernel as WithFaults)[FAULTS] = faults;
}

/**
 * should_fail() as kernel code calls it: `kernel` is the caller's kernel-services object (`k`).
 * A kernel with no Faults attached (a unit test's hand-built one) never fails.
 */
export function should_fail(kernel: object, id: string): boolean {
  const f = (kernel as WithFaults)[FAULTS];
  if (!f) {
    if (!REGISTRY.has(id)) throw new Error(`should_fail: fault point ${id} was never registered`);
    return false;
  }
  return f.should_fail(id);
}
