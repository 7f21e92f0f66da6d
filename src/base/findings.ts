/**
 * Findings: what BUG_ON / WARN_ON and the sanitizers report. A finding never changes kernel state;
 * it is recorded with the task that hit it, the locks it held and where in the run it happened.
 */
export type FindingKind =
  | 'BUG'
  | 'WARN'
  | 'lockdep'
  | 'deadlock'
  | 'might-sleep'
  | 'coherence'
  | 'invariant'
  | 'use-after-free'
  | 'leak'
  | 'oops';

export interface Finding {
  kind: FindingKind;
  message: string;
  /** Name of the task that hit it ("kernel" outside any task). */
  task: string;
  /** Lock names the task held, outermost first. */
  locks: string[];
  /** Scheduler step and virtual time (ns) at which it was recorded. */
  step: number;
  time: number;
  /** Fatal findings (BUG, oops, deadlock) stop the calling syscall with an exception. */
  fatal: boolean;
  /** Extra detail (cycle description, blocked tasks, ...). */
  detail?: string;
}

/** Kinds that are fatal by default, as in the kernel (BUG oopses, a deadlock never returns). */
export function isFatalKind(kind: FindingKind): boolean {
  return kind === 'BUG' || kind === 'oops' || kind === 'deadlock';
}

/** Thrown inside the kernel to unwind a task that hit a fatal finding (the model's oops). */
export class KernelOops extends Error {
  constructor(readonly finding: Finding) {
    super(`${finding.kind}: ${finding.message}`);
    this.name = 'KernelOops';
  }
}

export function formatFinding(f: Finding): string {
  const locks = f.locks.length ? ` holding [${f.locks.join(', ')}]` : '';
  const head = `[${f.kind}] ${f.message} (task ${f.task}${locks}, step ${f.step})`;
  return f.detail ? `${head}\n${f.detail}` : head;
}
