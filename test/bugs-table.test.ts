import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { knownBugs } from '../src/base/bugs.js';
import '../src/index.js';

describe('the bug table in src/i915/README.md', () => {
  it('lists exactly the registered switches, with their invariants', () => {
    const text = readFileSync(resolve(import.meta.dirname, '../src/i915/README.md'), 'utf8');
    const section = text.slice(text.indexOf('## Historic bugs'));
    const rows = section
      .split('\n')
      .filter((l) => l.startsWith('|'))
      .map((l) => l.split('|').map((c) => c.trim()))
      .filter((r) => r[1] !== 'id' && !/^-+$/.test(r[1] ?? ''));
    const ids = rows.map((r) => r[1]);
    const registered = knownBugs().map((b) => b.id);
    expect([...ids].sort()).toEqual([...registered].sort());
    for (const b of knownBugs()) {
      const row = rows.find((r) => r[1] === b.id)!;
      expect(row[3], b.id).toBe(b.invariant);
    }
  });

  it("'as-merged' selects exactly the §8 switches", async () => {
    const { Machine } = await import('../src/index.js');
    const m = Machine.boot({ bugs: 'as-merged' });
    expect(m.bugs.ids).toEqual(
      knownBugs()
        .filter((b) => b.asMerged)
        .map((b) => b.id)
        .sort(),
    );
    expect(m.bugs.ids.length).toBe(10);
  });
});
