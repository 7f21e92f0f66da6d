import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

/** DESIGN.md's layer table, top to bottom: a folder may import only from folders above it. */
const LAYERS = [
  'base',
  'trace',
  'uapi',
  'sched',
  'hw',
  'mm',
  'drm',
  'i915',
  'kernel',
  'user',
  'oracle',
  'explore',
  'scenarios',
  'cli',
];

const SRC = resolve(import.meta.dirname, '..', 'src');

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Static and dynamic import specifiers in source text. */
function importsIn(text: string): string[] {
  const out: string[] = [];
  const re =
    /(?:^|[^.\w])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm;
  for (const m of text.matchAll(re)) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

function importsOf(file: string): string[] {
  return importsIn(readFileSync(file, 'utf8'));
}

function layerOf(file: string): string | null {
  const rel = relative(SRC, file);
  const top = rel.split(sep)[0]!;
  return rel.includes(sep) ? top : null;
}

const sources = walk(SRC).filter((f) => !f.endsWith('.test.ts'));

describe('architecture (DESIGN.md layers)', () => {
  it('every folder under src/ is a known layer', () => {
    const folders = readdirSync(SRC).filter((n) => statSync(join(SRC, n)).isDirectory());
    for (const f of folders) expect(LAYERS, `unknown layer folder src/${f}`).toContain(f);
  });

  it('no folder imports a folder below it', () => {
    const violations: string[] = [];
    for (const file of sources) {
      const from = layerOf(file);
      if (!from) continue;
      for (const spec of importsOf(file)) {
        if (!spec.startsWith('.')) continue;
        const to = layerOf(resolve(dirname(file), spec));
        if (!to || to === from) continue;
        if (LAYERS.indexOf(to) > LAYERS.indexOf(from)) {
          violations.push(`${relative(SRC, file)} (${from}) imports ${spec} (${to})`);
        }
      }
    }
    expect(violations).toEqual([]);
  });

  it('only cli/ imports node:* (the core runs in a browser too)', () => {
    const violations: string[] = [];
    for (const file of sources) {
      if (layerOf(file) === 'cli') continue;
      for (const spec of importsOf(file)) {
        if (
          spec.startsWith('node:') ||
          ['fs', 'path', 'os', 'crypto', 'worker_threads', 'child_process'].includes(spec)
        ) {
          violations.push(`${relative(SRC, file)} imports ${spec}`);
        }
      }
    }
    expect(violations).toEqual([]);
  });

  it('the import scanner sees imports (so the checks above can fail)', () => {
    const machine = sources.find((f) => f.endsWith(join('kernel', 'machine.ts')))!;
    expect(importsOf(machine)).toContain('../sched/scheduler.js');
    const fake = [
      `import { x } from '../kernel/machine.js';`,
      `import type {`,
      `  Y,`,
      `} from '../drm/y.js';`,
      `export * from './z.js';`,
      `const w = await import('node:fs');`,
      `import './side-effect.js';`,
    ].join('\n');
    expect(importsIn(fake)).toEqual([
      '../kernel/machine.js',
      '../drm/y.js',
      './z.js',
      'node:fs',
      './side-effect.js',
    ]);
  });
});
