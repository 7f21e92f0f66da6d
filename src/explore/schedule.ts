import { trimmedLength } from './decisions.js';

/**
 * Schedule strings: a run, written down so that anyone can replay it.
 *
 *     up1:<scenario>:<config hash>:<decisions>
 *
 * * `up1` — the format version; a reader refuses versions it does not know.
 * * `<scenario>` — the scenario's name (letters, digits, `.`, `_`, `-`, `/`).
 * * `<config hash>` — 8 hex digits of a stable hash of the scenario's machine config and the bug
 *   switches it turns on: a schedule only replays against the configuration that produced it.
 * * `<decisions>` — base64url (no padding) of one unsigned LEB128 varint per decision. A decision
 *   with `n` options and relative choice `d` (see decisions.ts) is the number
 *   `n(n−1)/2 − 1 + d`, so the count travels with the choice (replay reports a divergence the
 *   moment the code offers a different number of options) and every decision with up to 15
 *   options takes one byte. Trailing default decisions (d = 0) are left out.
 */

export const SCHEDULE_VERSION = 'up1';

/** The largest option count a decision may have (so its code stays an exact double). */
export const MAX_OPTIONS = 1 << 20;

export interface Schedule {
  scenario: string;
  configHash: string;
  /** Relative decisions (see decisions.ts); past the end every decision is 0. */
  decisions: number[];
  /** Option count of each decision. */
  counts: number[];
}

/** A schedule string that cannot be read. */
export class ScheduleFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScheduleFormatError';
  }
}

const NAME_RE = /^[A-Za-z0-9._/-]+$/;
const HASH_RE = /^[0-9a-f]{8}$/;
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64_INDEX = new Int8Array(128).fill(-1);
for (let i = 0; i < B64.length; i++) B64_INDEX[B64.charCodeAt(i)] = i;

/** Whether `name` may be a scenario name in a schedule string. */
export function isScheduleName(name: string): boolean {
  return NAME_RE.test(name);
}

/** The varint code of decision `d` among `n` options. */
export function decisionCode(n: number, d: number): number {
  if (!Number.isInteger(n) || n < 2 || n > MAX_OPTIONS) throw new RangeError(`decision with ${n} options`);
  if (!Number.isInteger(d) || d < 0 || d >= n) throw new RangeError(`decision ${d} of ${n} options`);
  return (n * (n - 1)) / 2 - 1 + d;
}

/** Inverse of `decisionCode`: [n, d]. */
export function decodeDecision(code: number): [number, number] {
  let n = Math.floor((1 + Math.sqrt(9 + 8 * code)) / 2);
  while (n > 2 && (n * (n - 1)) / 2 - 1 > code) n--;
  while (((n + 1) * n) / 2 - 1 <= code) n++;
  return [n, code - ((n * (n - 1)) / 2 - 1)];
}

/** Encodes a schedule (trailing default decisions dropped). */
export function encodeSchedule(s: Schedule): string {
  if (!isScheduleName(s.scenario)) {
    throw new RangeError(`scenario name '${s.scenario}' cannot appear in a schedule string`);
  }
  if (!HASH_RE.test(s.configHash)) throw new RangeError(`config hash '${s.configHash}' is not 8 hex digits`);
  const len = trimmedLength(s.decisions);
  const bytes: number[] = [];
  for (let i = 0; i < len; i++) {
    let v = decisionCode(s.counts[i]!, s.decisions[i]!);
    while (v >= 0x80) {
      bytes.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    bytes.push(v);
  }
  return `${SCHEDULE_VERSION}:${s.scenario}:${s.configHash}:${base64url(bytes)}`;
}

/** Reads a schedule string; throws `ScheduleFormatError` with the reason when it cannot. */
export function decodeSchedule(text: string): Schedule {
  if (typeof text !== 'string') throw new ScheduleFormatError('a schedule is a string');
  const parts = text.trim().split(':');
  if (parts[0] !== SCHEDULE_VERSION) {
    throw new ScheduleFormatError(
      /^up\d+$/.test(parts[0] ?? '')
        ? `schedule format '${parts[0]}' is not supported (this build reads ${SCHEDULE_VERSION})`
        : `not a schedule string (expected ${SCHEDULE_VERSION}:<scenario>:<hash>:<decisions>)`,
    );
  }
  if (parts.length !== 4) {
    throw new ScheduleFormatError(
      `a ${SCHEDULE_VERSION} schedule has 4 ':'-separated parts, got ${parts.length}`,
    );
  }
  const [, scenario, configHash, data] = parts as [string, string, string, string];
  if (!isScheduleName(scenario)) throw new ScheduleFormatError(`bad scenario name '${scenario}'`);
  if (!HASH_RE.test(configHash)) throw new ScheduleFormatError(`bad config hash '${configHash}'`);
  const bytes = unbase64url(data);
  const decisions: number[] = [];
  const counts: number[] = [];
  let v = 0;
  let scale = 1;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    v += (b & 0x7f) * scale;
    if (b & 0x80) {
      scale *= 0x80;
      if (scale > 2 ** 49) throw new ScheduleFormatError(`decision varint too long at byte ${i}`);
      continue;
    }
    const [n, d] = decodeDecision(v);
    if (n > MAX_OPTIONS) throw new ScheduleFormatError(`decision ${decisions.length} has ${n} options`);
    counts.push(n);
    decisions.push(d);
    v = 0;
    scale = 1;
  }
  if (scale !== 1) throw new ScheduleFormatError('the decisions end inside a varint');
  return { scenario, configHash, decisions, counts };
}

/** The shell command that replays a schedule (several: replayed in order, sharing lockdep). */
export function replayCommand(schedules: string | readonly string[]): string {
  const list = typeof schedules === 'string' ? [schedules] : schedules;
  return `userptr replay ${list.map((s) => `'${s}'`).join(' ')}`;
}

function base64url(bytes: readonly number[]): string {
  let out = '';
  let i = 0;
  for (; i + 3 <= bytes.length; i += 3) {
    const x = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += B64[x >>> 18]! + B64[(x >>> 12) & 63]! + B64[(x >>> 6) & 63]! + B64[x & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const x = bytes[i]! << 16;
    out += B64[x >>> 18]! + B64[(x >>> 12) & 63]!;
  } else if (rest === 2) {
    const x = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += B64[x >>> 18]! + B64[(x >>> 12) & 63]! + B64[(x >>> 6) & 63]!;
  }
  return out;
}

function unbase64url(text: string): number[] {
  if (text.length % 4 === 1) throw new ScheduleFormatError('the decisions are not valid base64url (length)');
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? B64_INDEX[c]! : -1;
    if (v < 0) throw new ScheduleFormatError(`the decisions are not base64url: '${text[i]!}' at ${i}`);
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >>> bits) & 0xff);
      acc &= (1 << bits) - 1;
    }
  }
  if (acc !== 0) throw new ScheduleFormatError('the decisions are not canonical base64url (padding bits)');
  return out;
}
