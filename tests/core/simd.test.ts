/**
 * The library's SIMD kernels (src/core/kernels/simd.wat): the committed binary is what the source
 * assembles to, and it instantiates against the wasm backend's heap, threaded or not. Their values
 * are tested where they are used: Sum, Mean and MaxPoolGrad against stock cpu
 * (kernel-fixes.test.ts), batch norm against PyTorch (tests/layers/batch-norm.test.ts).
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { generate } from '../../scripts/wasm/build-simd.js';
import { selectBackend } from '../../src/core/index.js';
import { simdKernels } from '../../src/core/kernels/simd.js';

describe('SIMD kernels', () => {
  it('src/core/kernels/simd-binary.ts is what scripts/wasm/build-simd.ts makes of simd.wat', async () => {
    const committed = readFileSync(
      new URL('../../src/core/kernels/simd-binary.ts', import.meta.url),
      'utf8',
    );
    expect(await generate()).toBe(committed);
  });

  it('bind to the wasm heap, and to nothing else', async () => {
    await selectBackend('wasm');
    const bound = simdKernels(tf.backend() as never);
    expect(bound).toBeDefined();
    expect(typeof bound!.kernels.columnSum).toBe('function');
    // The same heap gives the same instance.
    expect(simdKernels(tf.backend() as never)!.kernels).toBe(bound!.kernels);
    await selectBackend('cpu');
    expect(simdKernels(tf.backend() as never)).toBeUndefined();
  });
});
