import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const src = resolve(import.meta.dirname, '../../src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sources(join(dir, e.name))
      : e.name.endsWith('.ts')
        ? [join(dir, e.name)]
        : [],
  );
}

describe('imports of the library source', () => {
  const files = sources(src);

  it('never import a backend statically, nor the @tensorflow/tfjs union package', () => {
    const offenders = files.filter((f) => {
      const text = readFileSync(f, 'utf8');
      return (
        /^\s*import[^;]*from\s+'@tensorflow\/tfjs-backend-/m.test(text) ||
        /from\s+'@tensorflow\/tfjs'/.test(text) ||
        /import\('@tensorflow\/tfjs'\)/.test(text)
      );
    });
    expect(offenders).toEqual([]);
  });

  it('never import a deep dist/ path of a tfjs package (a second tfjs-core in Node)', () => {
    const offenders = files.filter((f) =>
      /'@tensorflow\/[^']+\/dist\//.test(readFileSync(f, 'utf8')),
    );
    expect(offenders).toEqual([]);
  });

  it('the core layer imports no other layer of the library', () => {
    const core = join(src, 'core');
    const offenders = files
      .filter((f) => f.startsWith(core + '/'))
      .flatMap((f) =>
        [...readFileSync(f, 'utf8').matchAll(/from '(\.[^']+)'/g)]
          .map((m) => resolve(dirname(f), m[1]!))
          .filter((target) => !target.startsWith(core + '/'))
          .map((target) => `${f} -> ${target}`),
      );
    expect(offenders).toEqual([]);
  });
});
