import { hashString } from '../base/prng.js';
import type { RunChooser } from './decisions.js';
import type { RecordedRun, Strategy } from './strategy.js';

/**
 * Rotates its members, one schedule each, skipping members with nothing left. Each member keeps
 * its own state (PCT its k, DFS its position). When an exhaustive member completes its search,
 * every schedule has been run and the portfolio is complete too.
 */
export class PortfolioStrategy implements Strategy {
  readonly name: string = 'portfolio';
  private turn = 0;
  private last: Strategy | null = null;
  private finished = false;

  constructor(readonly members: readonly Strategy[]) {
    if (members.length === 0) throw new RangeError('a portfolio needs at least one strategy');
  }

  get current(): string {
    return this.last?.current ?? this.members[0]!.current;
  }

  get exhausted(): boolean {
    return this.finished || this.members.every((m) => m.exhausted);
  }

  get complete(): boolean {
    return this.finished;
  }

  next(): RunChooser | null {
    if (this.finished) return null;
    for (let i = 0; i < this.members.length; i++) {
      const m = this.members[this.turn++ % this.members.length]!;
      if (m.exhausted) continue;
      const c = m.next();
      if (c) {
        this.last = m;
        return c;
      }
    }
    return null;
  }

  observe(run: RecordedRun): void {
    const m = this.last;
    if (!m) return;
    m.observe(run);
    if (m.complete) this.finished = true;
  }

  status(): string {
    return this.members.map((m) => m.status()).join('; ');
  }
}

/** A member's seed: independent of the other members', stable for a given portfolio seed. */
export function memberSeed(seed: number, index: number): number {
  return hashString(`portfolio:${seed}:${index}`);
}
