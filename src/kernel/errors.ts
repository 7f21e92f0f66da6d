import { errnoName } from '../base/errno.js';
import { type Finding, formatFinding } from '../base/findings.js';

/** A syscall failed: `errno` is the Linux number, `code` its name. */
export class ErrnoError extends Error {
  readonly code: string;
  constructor(
    readonly errno: number,
    readonly syscall: string,
  ) {
    const code = errnoName(errno);
    super(`${syscall}: ${code} (${errno})`);
    this.name = 'ErrnoError';
    this.code = code;
  }
}

/** A CPU access raised a signal. */
export class SegfaultError extends Error {
  constructor(
    readonly signal: 'SIGSEGV' | 'SIGBUS',
    readonly addr: number,
    readonly write: boolean,
  ) {
    super(`${signal} at 0x${addr.toString(16)} (${write ? 'write' : 'read'})`);
    this.name = 'SegfaultError';
  }
}

/** A fatal finding (BUG, oops) stopped the call. */
export class KernelBugError extends Error {
  constructor(
    readonly finding: Finding,
    message = formatFinding(finding),
  ) {
    super(message);
    this.name = 'KernelBugError';
  }
}

/** The call can never complete; the message lists every blocked task and its locks. */
export class DeadlockError extends KernelBugError {
  constructor(finding: Finding) {
    super(finding, `${finding.message}\n${finding.detail ?? ''}`.trimEnd());
    this.name = 'DeadlockError';
  }
}
