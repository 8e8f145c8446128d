/**
 * The cross-backend test harness: one test body runs on every backend present (cpu and wasm in
 * Node), with a backend-dependent tolerance and a tensor-leak check around every test.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers'; // registers the gradients tfjs-core alone lacks in Node
import { afterEach, beforeAll, beforeEach, describe, expect } from 'vitest';
import { selectBackend, type BackendInfo, type BackendName } from '../../src/core/index.js';

tf.enableProdMode();

/** Absolute-plus-relative tolerances per backend: float32 everywhere, different summation orders. */
const TOLERANCE: Record<BackendName, number> = {
  cpu: 2e-5,
  wasm: 1e-4,
  webgl: 1e-3,
  webgpu: 1e-3,
};

/** The backends the suite runs on: `TEST_BACKENDS=cpu,wasm` (the default in Node). */
export function backendsUnderTest(): BackendName[] {
  const raw = process.env.TEST_BACKENDS ?? 'cpu,wasm';
  return raw.split(',').map((s) => s.trim()) as BackendName[];
}

export interface BackendContext {
  /** The backend this copy of the body runs on. */
  readonly name: BackendName;
  /** The comparison tolerance for this backend. */
  readonly tol: number;
  /** What selectBackend reported (set before the first test runs). */
  info(): BackendInfo;
}

/**
 * Runs `body` once per backend under test, inside a `describe` named after the backend, with the
 * backend selected before the tests and a leak check after each test: the number of live tensors
 * must be what it was before the test.
 */
export function describeBackends(title: string, body: (ctx: BackendContext) => void): void {
  for (const name of backendsUnderTest()) {
    describe(`${title} [${name}]`, () => {
      let info: BackendInfo | undefined;
      let before = 0;
      beforeAll(async () => {
        info = await selectBackend(name);
      });
      beforeEach(async () => {
        // Another file's describe block may have switched the backend in this process.
        if (tf.getBackend() !== name) info = await selectBackend(name);
        before = tf.memory().numTensors;
      });
      afterEach(() => {
        expect(tf.memory().numTensors, 'live tensors after the test (leak check)').toBe(before);
      });
      body({
        name,
        tol: TOLERANCE[name],
        info: () => {
          if (info === undefined) throw new Error('backend not selected yet');
          return info;
        },
      });
    });
  }
}

type Numeric = number | ArrayLike<number> | tf.Tensor;

function flat(x: Numeric): number[] {
  if (typeof x === 'number') return [x];
  if (x instanceof tf.Tensor) return Array.from(x.dataSync());
  return Array.from(x);
}

/**
 * Asserts |actual - expected| <= tol * (1 + |expected|) elementwise, and equal lengths, with a
 * message that names the first failing index.
 */
export function expectClose(actual: Numeric, expected: Numeric, tol: number, what = 'value'): void {
  const a = flat(actual);
  const e = flat(expected);
  expect(a.length, `${what}: length`).toBe(e.length);
  for (let i = 0; i < e.length; i++) {
    const ai = a[i] as number;
    const ei = e[i] as number;
    const ok = Number.isFinite(ai) && Math.abs(ai - ei) <= tol * (1 + Math.abs(ei));
    if (!ok) {
      expect.fail(`${what}[${i}] = ${ai}, expected ${ei} (tolerance ${tol}, ${a.length} values)`);
    }
  }
}

/**
 * Central finite differences of a scalar function of one tensor, computed in float64 on the host
 * from float32 evaluations; `step` trades truncation against rounding error.
 */
export function finiteDifferenceGradient(
  f: (x: tf.Tensor) => tf.Scalar,
  x: tf.Tensor,
  step = 1e-2,
): number[] {
  const base = Array.from(x.dataSync());
  const grad: number[] = [];
  for (let i = 0; i < base.length; i++) {
    const evalAt = (delta: number): number =>
      tf.tidy(() => {
        const v = base.slice();
        v[i] = (v[i] as number) + delta;
        return f(tf.tensor(v, x.shape)).dataSync()[0] as number;
      });
    grad.push((evalAt(step) - evalAt(-step)) / (2 * step));
  }
  return grad;
}
