import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { selectBackend } from '../../src/core/index.js';
import { convStepGradientNorms } from '../support/conv-step.js';

it('kernel fixes installed before the wasm backend initialises work like ones installed after', async () => {
  const script = resolve(import.meta.dirname, '../support/fixes-before-init.ts');
  const out = execFileSync('npx', ['tsx', script], { encoding: 'utf8', timeout: 120_000 });
  const before = JSON.parse(out.trim().split('\n').at(-1) ?? '') as {
    ok: boolean;
    backend: string;
    kernels: number;
    grads: number[];
  };
  expect(before.ok).toBe(true);
  expect(before.backend).toBe('wasm');
  // The same step here, where selectBackend installed the fixes after initialisation.
  await selectBackend('wasm');
  const after = convStepGradientNorms();
  expect(before.grads.every((g) => g > 0)).toBe(true);
  before.grads.forEach((g, i) => {
    expect(Math.abs(g - after[i]!)).toBeLessThan(1e-5 * after[i]!);
  });
});
