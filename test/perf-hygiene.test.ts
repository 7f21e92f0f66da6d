import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * Two V8 behaviours that made every machine the explorer boots (one per schedule) survive the
 * young-generation GC, so that each was copied twice and then promoted: about a third of the
 * explorer's time went to the GC.
 *
 * 1. A generator function created per call (`function*` nested in a function, a generator method
 *    of an object literal built per call) gets its own object map when it first runs; the map
 *    points back at the closure and stays until a full GC, and the closure reaches its machine.
 *    Write the generator at module level and pass what it needs as arguments.
 * 2. A WeakMap's values are strong for the young-generation GC: a WeakMap whose values reach a
 *    machine keeps that machine until a full GC. Prefer a field or a symbol-keyed property.
 */

const SRC = resolve(import.meta.dirname, '..', 'src');

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') && !p.endsWith('.test.ts') ? [p] : [];
  });
}

const rel = (f: string): string => relative(SRC, f).split(sep).join('/');
const sources = walk(SRC).filter((f) => !rel(f).startsWith('cli/'));

/** Generator functions created each time their enclosing function runs, as "file:line". */
function perCallGenerators(file: string, text: string): string[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  const visit = (n: ts.Node, inFunction: boolean): void => {
    const generator =
      (ts.isFunctionExpression(n) || ts.isFunctionDeclaration(n) || ts.isMethodDeclaration(n)) &&
      n.asteriskToken !== undefined;
    // A class's methods live on its prototype (made once) unless the class itself is per call.
    if (generator && inFunction)
      out.push(`${rel(file)}:${sf.getLineAndCharacterOfPosition(n.getStart()).line + 1}`);
    const opens = ts.isFunctionLike(n) && !(ts.isMethodDeclaration(n) && ts.isClassLike(n.parent));
    ts.forEachChild(n, (c) => visit(c, inFunction || opens));
  };
  visit(sf, false);
  return out;
}

/** Files allowed per-call generators (none left). */
const GENERATOR_EXCEPTIONS: string[] = [];

/** Known WeakMaps / WeakSets, and why each may stay. */
const WEAK_EXCEPTIONS: Record<string, string> = {
  'explore/scenario.ts': 'scenario → config hash string: the value reaches no machine',
};

describe('performance hygiene (V8 GC)', () => {
  it('finds a per-call generator when there is one', () => {
    const text = 'export function f() { return function* () { yield 1; }; }\nfunction* ok() {}\n';
    expect(perCallGenerators(join(SRC, 'x.ts'), text)).toEqual(['x.ts:1']);
    expect(perCallGenerators(join(SRC, 'x.ts'), 'class A { *m() {} }\nconst o = { *g() {} };\n')).toEqual([]);
  });

  it('no generator function is created per call outside the bug catalogue', () => {
    const found = sources
      .filter((f) => !GENERATOR_EXCEPTIONS.includes(rel(f)))
      .flatMap((f) => perCallGenerators(f, readFileSync(f, 'utf8')));
    expect(found, 'write these generators at module level (see the comment at the top)').toEqual([]);
  });

  it('every WeakMap / WeakSet is a known one', () => {
    const found = sources
      .filter((f) => /new Weak(Map|Set)\b/.test(readFileSync(f, 'utf8')))
      .map(rel)
      .filter((f) => !(f in WEAK_EXCEPTIONS));
    expect(found, 'a WeakMap value that reaches a machine keeps it alive (see the top)').toEqual([]);
  });
});
