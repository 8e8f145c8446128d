import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { ContrastiveError, runtimeEnvironment, selectBackend } from '../../src/core/index.js';

tf.enableProdMode();

async function matMulOn(name: 'cpu' | 'wasm', a: number[], b: number[], n: number) {
  await selectBackend(name);
  return tf.tidy(() =>
    Array.from(tf.matMul(tf.tensor2d(a, [n, n]), tf.tensor2d(b, [n, n])).dataSync()),
  );
}

describe('selectBackend in Node', () => {
  it('knows it runs in Node', () => {
    expect(runtimeEnvironment()).toBe('node');
  });

  it('imports an unregistered backend package on demand', async () => {
    // This file imports no backend package: selectBackend must load cpu's itself.
    const factories: Record<string, unknown> = tf.engine().registryFactory;
    expect(factories.cpu).toBeUndefined();
    await selectBackend('cpu');
    expect(factories.cpu).toBeDefined();
    expect(tf.getBackend()).toBe('cpu');
  });

  it('cpu: reports one thread, no SIMD, float32', async () => {
    const info = await selectBackend('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(info).toMatchObject({
      name: 'cpu',
      environment: 'node',
      simd: false,
      threads: 1,
      float32: true,
    });
  });

  it('wasm: SIMD and one thread per core (at most 8), not halved', async () => {
    const info = await selectBackend('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(info.simd).toBe(true);
    expect(info.float32).toBe(true);
    expect(info.threads).toBe(Math.min(8, availableParallelism()));
    expect(info.notes).toEqual([]);
  });

  it('threaded wasm computes what cpu computes (a 192^3 product)', async () => {
    const n = 192;
    const a = Array.from({ length: n * n }, (_, i) => Math.sin(i));
    const b = Array.from({ length: n * n }, (_, i) => Math.cos(3 * i));
    const onWasm = await matMulOn('wasm', a, b, n);
    const onCpu = await matMulOn('cpu', a, b, n);
    const worst = onWasm.reduce((m, v, i) => Math.max(m, Math.abs(v - (onCpu[i] as number))), 0);
    expect(worst).toBeLessThan(1e-3);
    expect(onWasm.some((v) => v !== 0)).toBe(true);
  });

  it('switching back to an initialised wasm keeps its pool and says so when asked for another size', async () => {
    const info = await selectBackend('wasm', { threads: 1 });
    expect(info.threads).toBe(Math.min(8, availableParallelism()));
    expect(info.notes.join(' ')).toMatch(/already initialised/);
  });

  it('wasm: takes the module the app passes, and refuses something else', async () => {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const info = await selectBackend('wasm', { wasmModule: wasm });
    expect(info.name).toBe('wasm');
    expect(info.threads).toBe(wasm.getThreadsCount());
    await expect(
      selectBackend('wasm', { wasmModule: { setWasmPaths: () => undefined } as never }),
    ).rejects.toThrow(
      "selectBackend: argument 'options.wasmModule' must be the module namespace of @tensorflow/tfjs-backend-wasm",
    );
  });

  it("'auto' picks wasm in Node", async () => {
    const info = await selectBackend('auto');
    expect(info.name).toBe('wasm');
  });

  it("'auto' skips candidates that fail and says why", async () => {
    const info = await selectBackend('auto', { candidates: ['webgl', 'cpu'] });
    expect(info.name).toBe('cpu');
    expect(info.notes[0]).toMatch(/^skipped webgl: selectBackend: argument 'name'/);
  });

  it('webgl cannot initialise in Node: a ContrastiveError says so', async () => {
    await expect(selectBackend('webgl')).rejects.toThrow(
      /selectBackend: argument 'name' must be a backend that can initialise in this environment, but received 'webgl', which failed to initialise in node/,
    );
    // The previous backend stays usable.
    await selectBackend('cpu');
    expect(tf.getBackend()).toBe('cpu');
  });

  it('rejects unknown names, bad thread counts and empty candidate lists', async () => {
    await expect(selectBackend('gpu' as 'cpu')).rejects.toThrow(ContrastiveError);
    await expect(selectBackend('gpu' as 'cpu')).rejects.toThrow(
      "selectBackend: argument 'name' must be one of 'auto', 'cpu', 'wasm', 'webgl', 'webgpu', but received a string \"gpu\".",
    );
    await expect(selectBackend('wasm', { threads: 0 })).rejects.toThrow(
      "argument 'options.threads'",
    );
    await expect(selectBackend('auto', { candidates: [] })).rejects.toThrow(
      "argument 'options.candidates' must be a non-empty array",
    );
    await expect(selectBackend('auto', { candidates: ['cpu', 'tpu' as 'cpu'] })).rejects.toThrow(
      "argument 'options.candidates[1]'",
    );
  });
});
