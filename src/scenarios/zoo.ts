import { type ExploreResult, explore, findingTemplate } from '../explore/index.js';
import type { Scenario } from '../explore/index.js';
import { BUG_SCENARIOS } from './bugs.js';
import { type BugScenario, isExpected, withBugs } from './common.js';
import { WORKLOADS } from './workloads.js';

/**
 * The bug zoo: every bug scenario explored with its switch on (the switch's finding must be
 * found, replayed and shrunk) and off (no finding), and every workload on the correct design.
 */

export interface ZooOptions {
  /** Schedules per exploration. */
  budget?: number;
  seed?: number;
  strategy?: string;
  /** Milliseconds (the CLI passes performance.now); seconds are reported only with it. */
  now?: () => number;
  /** Replays allowed to shrinking. */
  shrinkRuns?: number;
  /** Only these bugs (default all). */
  bugs?: readonly string[];
  /** Called as each row is done. */
  onRow?: (row: ZooRow) => void;
}

export interface ZooRow {
  /** The bug id, or the workload's name. */
  name: string;
  invariant: string;
  /** Switch on: its finding was found, replayed twice identically. */
  found: boolean | null;
  /** Schedules until it was found. */
  schedules: number | null;
  seconds: number | null;
  shrink: { preemptions: [number, number]; steps: [number, number] } | null;
  /** The finding and its schedule. */
  finding?: string;
  schedule?: string;
  /**
   * Switch off (or a workload): schedules explored, a finding if any, and the coverage goals no
   * schedule reached (with the switch off a goal may be out of reach: the fixed design refuses
   * what the race needs).
   */
  clean: { schedules: number; finding: string | null; known: string | null; unreached: string[] };
}

export interface ZooResult {
  rows: ZooRow[];
  /** Every bug found, and the correct design clean (known findings aside). */
  ok: boolean;
}

function seconds(now: (() => number) | undefined, t0: number): number | null {
  return now ? (now() - t0) / 1000 : null;
}

/** Explores `s` with its switch off: the first finding's template, or null. */
function cleanRun(s: Scenario, o: ZooOptions, budget: number): ExploreResult {
  return explore(s, {
    seed: o.seed ?? 1,
    schedules: budget,
    strategy: o.strategy ?? 'portfolio',
    shrink: false,
  });
}

function unreachedGoals(r: ExploreResult): string[] {
  return r.coverage.filter((c) => !c.reached).map((c) => c.name);
}

/** One bug scenario, on and off. */
export function zooRow(s: BugScenario, o: ZooOptions = {}): ZooRow {
  const budget = o.budget ?? 200;
  const now = o.now;
  const t0 = now?.() ?? 0;
  const on = explore(s, {
    seed: o.seed ?? 1,
    schedules: budget,
    strategy: o.strategy ?? 'portfolio',
    failOn: (f) => isExpected(s, f),
    shrink: { maxRuns: o.shrinkRuns ?? 300 },
  });
  const secs = seconds(now, t0);
  const f = on.failure;
  const off = cleanRun(withBugs(s, []), o, budget);
  const offTemplate = off.failure ? findingTemplate(off.failure.finding) : null;
  const row: ZooRow = {
    name: s.bug,
    invariant: invariantOf(s),
    found: f !== null && f.replay.reproduced && f.replay.deterministic,
    schedules: f ? f.found.index : null,
    seconds: secs,
    shrink: f?.shrink
      ? {
          preemptions: [f.shrink.before.preemptions, f.shrink.after.preemptions],
          steps: [f.shrink.before.steps, f.shrink.after.steps],
        }
      : null,
    clean: {
      schedules: off.stats.schedules,
      finding: offTemplate,
      known: offTemplate !== null && offTemplate === s.knownOff?.template ? s.knownOff.why : null,
      unreached: unreachedGoals(off),
    },
  };
  if (f) {
    row.finding = `${f.finding.kind}: ${f.finding.message}`;
    row.schedule = f.schedule;
  }
  return row;
}

/** A workload on the correct design. */
export function workloadRow(w: Scenario, o: ZooOptions = {}): ZooRow {
  const now = o.now;
  const t0 = now?.() ?? 0;
  const r = cleanRun(w, o, o.budget ?? 200);
  return {
    name: w.name,
    invariant: '(workload)',
    found: null,
    schedules: null,
    seconds: seconds(now, t0),
    shrink: null,
    clean: {
      schedules: r.stats.schedules,
      finding: r.failure ? findingTemplate(r.failure.finding) : null,
      known: null,
      unreached: unreachedGoals(r),
    },
  };
}

let invariants: Map<string, string> | null = null;
function invariantOf(s: BugScenario): string {
  return invariants?.get(s.bug) ?? s.expect.message;
}

/** Registers the bug registry's invariants (the CLI passes knownBugs()). */
export function setInvariants(list: readonly { id: string; invariant: string }[]): void {
  invariants = new Map(list.map((b) => [b.id, b.invariant]));
}

/** A row is bad: a bug missed, or the correct design with an unexplained finding. */
export function rowOk(r: ZooRow): boolean {
  return r.found !== false && (r.clean.finding === null || r.clean.known !== null);
}

export function runZoo(o: ZooOptions = {}): ZooResult {
  const rows: ZooRow[] = [];
  for (const s of BUG_SCENARIOS) {
    if (o.bugs && !o.bugs.includes(s.bug)) continue;
    const r = zooRow(s, o);
    rows.push(r);
    o.onRow?.(r);
  }
  if (!o.bugs) {
    for (const w of WORKLOADS) {
      const r = workloadRow(w, o);
      rows.push(r);
      o.onRow?.(r);
    }
  }
  return { rows, ok: rows.every(rowOk) };
}

const HEAD = [
  'bug',
  'invariant',
  'found',
  'schedules',
  'seconds',
  'shrunk preemptions',
  'shrunk steps',
  'switch off',
];

function cells(r: ZooRow): string[] {
  const off = r.clean.finding
    ? r.clean.known
      ? `${r.clean.schedules}: known finding*`
      : `FINDING after ${r.clean.schedules}`
    : `${r.clean.schedules} clean${r.clean.unreached.length ? '†' : ''}`;
  return [
    r.name,
    r.invariant,
    r.found === null ? '—' : r.found ? 'yes' : 'NO',
    r.schedules === null ? '—' : String(r.schedules),
    r.seconds === null ? '—' : r.seconds.toFixed(2),
    r.shrink ? `${r.shrink.preemptions[0]} → ${r.shrink.preemptions[1]}` : '—',
    r.shrink ? `${r.shrink.steps[0]} → ${r.shrink.steps[1]}` : '—',
    off,
  ];
}

/** The zoo as a table: plain text (`markdown` false) or a Markdown table. */
export function formatZoo(rows: readonly ZooRow[], markdown = false): string {
  const body = rows.map(cells);
  const notes = [
    ...rows
      .filter((r) => r.clean.known)
      .map((r) => `* ${r.name}, switch off: ${r.clean.finding} — ${r.clean.known}`),
    ...rows
      .filter((r) => r.clean.unreached.length)
      .map(
        (r) =>
          `† ${r.name}${r.found === null ? '' : ', switch off'}: goal ${r.clean.unreached.join(', ')} never reached (the fixed design refuses what the race needs)`,
      ),
  ];
  if (markdown) {
    const line = (c: string[]): string => `| ${c.join(' | ')} |`;
    return [
      line(HEAD),
      line(HEAD.map(() => '---')),
      ...body.map(line),
      ...(notes.length ? ['', ...notes] : []),
    ].join('\n');
  }
  const w = HEAD.map((h, i) => Math.max(h.length, ...body.map((c) => c[i]!.length)));
  const line = (c: string[]): string =>
    c
      .map((x, i) => x.padEnd(w[i]!))
      .join('  ')
      .trimEnd();
  return [
    line(HEAD),
    line(w.map((n) => '-'.repeat(n))),
    ...body.map(line),
    ...(notes.length ? ['', ...notes] : []),
  ].join('\n');
}
