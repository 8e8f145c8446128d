import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { entries } from '../../tsup.config.js';

interface Conditions {
  import: { types: string; default: string };
  require: { types: string; default: string };
}

const pkg = JSON.parse(
  readFileSync(resolve(import.meta.dirname, '../../package.json'), 'utf8'),
) as {
  exports: Record<string, Conditions | string>;
  peerDependencies: Record<string, string>;
  dependencies?: Record<string, string>;
};

describe('package.json exports and the build entries', () => {
  it('every subpath has an entry with ESM, CJS and both type files, and vice versa', () => {
    const subpaths = Object.keys(pkg.exports).filter((k) => k !== './package.json');
    const fromEntries = Object.keys(entries).map((e) => (e === 'index' ? '.' : `./${e}`));
    expect(subpaths.sort()).toEqual(fromEntries.sort());
    for (const [name] of Object.entries(entries)) {
      const key = name === 'index' ? '.' : `./${name}`;
      expect(pkg.exports[key]).toEqual({
        import: { types: `./dist/${name}.d.ts`, default: `./dist/${name}.js` },
        require: { types: `./dist/${name}.d.cts`, default: `./dist/${name}.cjs` },
      });
    }
  });

  it('tfjs is a peer, never a dependency, and the union package is not used', () => {
    expect(pkg.dependencies ?? {}).toEqual({});
    expect(pkg.peerDependencies['@tensorflow/tfjs-core']).toBe('^4.22.0');
    expect(pkg.peerDependencies['@tensorflow/tfjs-layers']).toBe('^4.22.0');
    expect(pkg.peerDependencies).not.toHaveProperty('@tensorflow/tfjs');
  });
});
