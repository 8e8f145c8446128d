/**
 * The npm tarball as a user gets it: `npm pack`, unpack into an empty project, then `import` and
 * `require` it from plain Node (no TypeScript, no bundler) and bring up the wasm backend.
 * The @tensorflow peers are linked from this repository's node_modules (no network needed).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const work = mkdtempSync(join(tmpdir(), 'tfjs-contrastive-pack-'));
const app = join(work, 'app');

beforeAll(() => {
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', work], {
    cwd: root,
    encoding: 'utf8',
  });
  const [{ filename }] = JSON.parse(out) as [{ filename: string }];
  const pkgDir = join(app, 'node_modules', 'tfjs-contrastive');
  mkdirSync(pkgDir, { recursive: true });
  execFileSync('tar', ['-xzf', join(work, filename), '-C', pkgDir, '--strip-components=1']);
  // Every tfjs package but the webgpu backend, to see the error for a missing backend package.
  mkdirSync(join(app, 'node_modules', '@tensorflow'));
  for (const name of ['tfjs-core', 'tfjs-layers', 'tfjs-backend-cpu', 'tfjs-backend-wasm']) {
    symlinkSync(
      join(root, 'node_modules', '@tensorflow', name),
      join(app, 'node_modules', '@tensorflow', name),
    );
  }
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
});
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

const probe = `
  tf.enableProdMode();
  const info = await lib.selectBackend('wasm');
  const x = tf.tensor2d([[3, 4]]);
  const y = lib.l2Normalize(x);
  console.log(JSON.stringify({ info, y: Array.from(y.dataSync()), keys: Object.keys(lib).sort() }));
`;

function run(
  file: string,
  source: string,
): {
  info: { name: string; simd: boolean; threads: number; float32: boolean; notes: string[] };
  y: number[];
  keys: string[];
} {
  writeFileSync(join(app, file), source);
  const out = execFileSync('node', [file], { cwd: app, encoding: 'utf8', timeout: 120_000 });
  return JSON.parse(out.trim().split('\n').at(-1) ?? '') as ReturnType<typeof run>;
}

describe('the packed tarball in an empty project', () => {
  const expectedThreads = Math.min(8, availableParallelism());

  it('loads with import (ESM) and runs threaded SIMD wasm', () => {
    const r = run(
      'esm.mjs',
      `import * as tf from '@tensorflow/tfjs-core';\nimport * as lib from 'tfjs-contrastive';\n${probe}`,
    );
    expect(r.info.name).toBe('wasm');
    expect(r.info.simd).toBe(true);
    expect(r.info.threads).toBe(expectedThreads);
    expect(r.info.float32).toBe(true);
    expect(r.y[0]).toBeCloseTo(0.6, 6);
    expect(r.keys).toContain('selectBackend');
  });

  it('loads with require (CJS) and runs threaded SIMD wasm', () => {
    const r = run(
      'cjs.cjs',
      `const tf = require('@tensorflow/tfjs-core');\nconst lib = require('tfjs-contrastive');\n(async () => {${probe}})();`,
    );
    expect(r.info.name).toBe('wasm');
    expect(r.info.simd).toBe(true);
    expect(r.info.threads).toBe(expectedThreads);
    expect(r.y[1]).toBeCloseTo(0.8, 6);
  });

  it('names the package to install when a backend package is missing', () => {
    writeFileSync(
      join(app, 'missing.mjs'),
      `import { selectBackend } from 'tfjs-contrastive';\n` +
        `try { await selectBackend('webgpu'); } catch (e) { console.log(e.name + ': ' + e.message); }`,
    );
    const out = execFileSync('node', ['missing.mjs'], { cwd: app, encoding: 'utf8' });
    expect(out.trim()).toBe(
      "ContrastiveError: selectBackend: argument 'name' must be a backend whose package can be loaded (@tensorflow/tfjs-backend-webgpu), but received 'webgpu', whose package is not installed. Install it with: npm install @tensorflow/tfjs-backend-webgpu@^4.22.0",
    );
  });

  it('saves a model with custom layers to a folder and loads it after the ./register entry (ESM and CJS)', () => {
    const body = (prefix: string): string => `
      tf.enableProdMode();
      await tf.setBackend('cpu');
      const input = tfl.input({ shape: [4] });
      const out = layers.dinoHead({ inputDim: 4, outDim: 6, hiddenDim: 5, bottleneckDim: 3 }).apply(input);
      const model = tfl.model({ inputs: input, outputs: out });
      await model.save(io.folderIO('${prefix}-model'));
      const loaded = await tfl.loadLayersModel(io.folderIO('${prefix}-model'));
      const x = tf.ones([2, 4]);
      const same = Array.from(model.predict(x).dataSync()).join() === Array.from(loaded.predict(x).dataSync()).join();
      const head = loaded.layers.at(-1);
      console.log(JSON.stringify({ same, last: head.layers.at(-1).getClassName() }));`;
    const check = (file: string, source: string): void => {
      writeFileSync(join(app, file), source);
      const out = execFileSync('node', [file], { cwd: app, encoding: 'utf8', timeout: 120_000 });
      expect(JSON.parse(out.trim().split('\n').at(-1) ?? '')).toEqual({
        same: true,
        last: 'TfjsContrastive>WeightNormDense',
      });
    };
    check(
      'layers.mjs',
      `import * as tf from '@tensorflow/tfjs-core';\nimport * as tfl from '@tensorflow/tfjs-layers';\n` +
        `import '@tensorflow/tfjs-backend-cpu';\nimport 'tfjs-contrastive/register';\n` +
        `import * as layers from 'tfjs-contrastive/layers';\nimport * as io from 'tfjs-contrastive/io';\n${body('esm')}`,
    );
    check(
      'layers.cjs',
      `const tf = require('@tensorflow/tfjs-core');\nconst tfl = require('@tensorflow/tfjs-layers');\n` +
        `require('@tensorflow/tfjs-backend-cpu');\nrequire('tfjs-contrastive/register');\n` +
        `const layers = require('tfjs-contrastive/layers');\nconst io = require('tfjs-contrastive/io');\n(async () => {${body('cjs')}})();`,
    );
  });

  it('exposes the same API from the ./core subpath', () => {
    const r = run(
      'sub.mjs',
      `import * as tf from '@tensorflow/tfjs-core';\nimport * as lib from 'tfjs-contrastive/core';\n${probe}`,
    );
    expect(r.keys).toContain('stopGradient');
  });
});
