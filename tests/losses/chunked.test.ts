/**
 * `chunkSize` of infoNce, ntXentLoss and supConLoss: the chunked path (online logSumExp over
 * column chunks, logits recomputed in the backward pass) gives the unchunked loss, per-sample
 * losses and gradient with respect to every differentiable input, for chunk sizes that divide
 * the columns, that do not, 1 and beyond the columns, with each loss's options; it still matches
 * the PyTorch fixtures; stored negatives stay constants; no tensor leaks, forward-only, under
 * tf.grad and optimizer.minimize; and a bad chunkSize is refused naming the option.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import {
  ContrastiveError,
  MomentumQueue,
  infoNce,
  l2Normalize,
  ntXentLoss,
  stopGradient,
  supConLoss,
  type Reduction,
} from '../../src/index.js';
import { describeBackends, expectClose } from '../support/backends.js';
import { checkCase } from '../support/check-case.js';
import { runCase, type Case } from '../support/infonce-cases.js';

const cases = (
  JSON.parse(
    readFileSync(resolve(import.meta.dirname, '../fixtures/infonce-family.json'), 'utf8'),
  ) as { cases: Case[] }
).cases;

const randn = (shape: [number, number], seed: number, scale = 1): tf.Tensor2D =>
  tf.tidy(() => tf.mul(tf.randomNormal<tf.Rank.R2>(shape, 0, 1, 'float32', seed), scale));

/** A loss of the differentiable inputs, for one chunkSize (undefined: unchunked). */
type LossOf = (xs: tf.Tensor2D[], chunkSize: number | undefined) => tf.Tensor;

interface Result {
  loss: number[];
  grads: number[][];
}

/**
 * The loss values and the gradient of `sum(w * loss)` (a fixed random w, so that 'none' checks
 * every per-sample gradient too) with respect to every input.
 */
function evaluate(f: LossOf, xs: tf.Tensor2D[], chunkSize: number | undefined): Result {
  return tf.tidy(() => {
    const loss = Array.from(f(xs, chunkSize).dataSync());
    const weights = tf.randomUniform([loss.length], 0.5, 1.5, 'float32', 99);
    const grads = tf.grads((...ts: tf.Tensor[]) =>
      tf.sum(tf.mul(tf.reshape(f(ts as tf.Tensor2D[], chunkSize), [-1]), weights)),
    )(xs);
    return { loss, grads: grads.map((g) => Array.from(g.dataSync())) };
  });
}

/** Chunked equals unchunked (relative tolerance `tol`), for every chunk size given. */
function expectChunkedEqual(
  f: LossOf,
  xs: tf.Tensor2D[],
  chunkSizes: readonly number[],
  tol: number,
  what: string,
): void {
  const reference = evaluate(f, xs, undefined);
  for (const chunk of chunkSizes) {
    const r = evaluate(f, xs, chunk);
    expectClose(r.loss, reference.loss, tol, `${what}, chunk ${chunk}: loss`);
    r.grads.forEach((g, i) => {
      expectClose(g, reference.grads[i] as number[], tol, `${what}, chunk ${chunk}: grad ${i}`);
    });
  }
}

const REDUCTIONS: Reduction[] = ['mean', 'sum', 'none'];

describeBackends('chunkSize: chunked equals unchunked', ({ name }) => {
  // float32 with another summation order: 1e-5 relative on cpu; wasm's reductions are less exact.
  const tol = name === 'cpu' ? 1e-5 : 3e-5;

  it('infoNce with a [K, D] tensor of negatives, K = 12', () => {
    const q = randn([5, 8], 1);
    const k = randn([5, 8], 2);
    const negatives = randn([12, 8], 3);
    for (const [temperature, normalize] of [
      [0.07, true],
      [0.5, false],
      [0.01, false],
    ] as const) {
      for (const reduction of REDUCTIONS) {
        expectChunkedEqual(
          ([a, b], chunkSize) =>
            infoNce(a!, b!, { negatives, temperature, normalize, reduction, chunkSize }),
          [q, k],
          [1, 3, 5, 12, 40],
          tol * (temperature === 0.01 ? 10 : 1),
          `tau ${temperature} normalize ${normalize} ${reduction}`,
        );
      }
    }
    tf.dispose([q, k, negatives]);
  });

  it('infoNce with a list of negative chunks and with NegativeKeys (a queue)', () => {
    const q = randn([4, 6], 4);
    const k = randn([4, 6], 5);
    const list = [randn([7, 6], 6), randn([3, 6], 7)];
    // K 10 in blocks of 4: three row/column blocks, the last one short.
    const queue = new MomentumQueue(10, 6, { seed: 3, blockSize: 4 });
    for (const normalize of [true, false]) {
      expectChunkedEqual(
        ([a, b], chunkSize) =>
          infoNce(a!, b!, { negatives: list, normalize, temperature: 0.2, chunkSize }),
        [q, k],
        [1, 2, 4, 7, 100],
        tol,
        `list, normalize ${normalize}`,
      );
      for (const negatives of [queue, queue.negatives()]) {
        expectChunkedEqual(
          ([a, b], chunkSize) =>
            infoNce(a!, b!, { negatives, normalize, temperature: 0.2, chunkSize }),
          [q, k],
          [1, 3, 4, 10],
          tol,
          `queue, normalize ${normalize}`,
        );
      }
    }
    tf.dispose([q, k, ...list]);
    queue.dispose();
  });

  it('infoNce in-batch (N = 7): gradient into queries and keys', () => {
    const q = randn([7, 5], 8);
    const k = randn([7, 5], 9);
    for (const [temperature, normalize] of [
      [0.1, true],
      [1, false],
    ] as const) {
      for (const reduction of REDUCTIONS) {
        expectChunkedEqual(
          ([a, b], chunkSize) => infoNce(a!, b!, { temperature, normalize, reduction, chunkSize }),
          [q, k],
          [1, 2, 3, 7, 9],
          tol,
          `in-batch tau ${temperature} normalize ${normalize} ${reduction}`,
        );
      }
    }
    tf.dispose([q, k]);
  });

  it('ntXentLoss (2N = 10): the self column excluded in whichever chunk holds it', () => {
    const z1 = randn([5, 6], 10);
    const z2 = randn([5, 6], 11);
    for (const [temperature, normalize] of [
      [0.5, true],
      [0.2, false],
      [0.01, false],
    ] as const) {
      for (const reduction of REDUCTIONS) {
        expectChunkedEqual(
          ([a, b], chunkSize) =>
            ntXentLoss(a!, b!, { temperature, normalize, reduction, chunkSize }),
          [z1, z2],
          [1, 3, 4, 5, 10, 16],
          tol * (temperature === 0.01 ? 10 : 1),
          `tau ${temperature} normalize ${normalize} ${reduction}`,
        );
      }
    }
    tf.dispose([z1, z2]);
  });

  it('supConLoss (N = 9): positives by label, a label with one sample, array and tensor labels', () => {
    const e = randn([9, 6], 12);
    // Label 3 has one sample (no positive: 0, left out of the mean); label 0 has four.
    const labels = [0, 1, 0, 2, 1, 0, 3, 2, 0];
    const labelTensor = tf.tensor1d(labels, 'int32');
    for (const [temperature, normalize] of [
      [0.1, true],
      [0.5, false],
      [0.01, false],
    ] as const) {
      for (const reduction of REDUCTIONS) {
        for (const lab of [labels, labelTensor]) {
          expectChunkedEqual(
            ([a], chunkSize) =>
              supConLoss(a!, lab, { temperature, normalize, reduction, chunkSize }),
            [e],
            [1, 2, 4, 9, 20],
            tol * (temperature === 0.01 ? 10 : 1),
            `tau ${temperature} normalize ${normalize} ${reduction}`,
          );
        }
      }
    }
    tf.dispose([e, labelTensor]);
  });
});

describeBackends('chunkSize: the PyTorch reference', ({ tol, name }) => {
  const chunkable = cases.filter((c) => ['infoNce', 'ntXentLoss', 'supConLoss'].includes(c.fn));
  it('has chunkable fixtures of all three losses', () => {
    expect(new Set(chunkable.map((c) => c.fn)).size).toBe(3);
  });
  for (const c of chunkable) {
    for (const chunkSize of [1, 3, 64]) {
      it(`${c.name}, chunkSize ${chunkSize}`, async () => {
        const chunked = { ...c, options: { ...c.options, chunkSize } };
        checkCase(chunked, await runCase(chunked), tol, name);
      });
    }
  }
});

describeBackends('chunkSize: gradients flow where they flow unchunked', ({ tol }) => {
  it('stored negatives get no gradient; a stop-gradient key gets zero', () => {
    const q = tf.tidy(() => tf.variable(randn([4, 6], 20), true));
    const k = tf.tidy(() => tf.variable(randn([4, 6], 21), true));
    const rows = tf.tidy(() => tf.variable(randn([9, 6], 22), true));
    const columns = tf.transpose(rows);
    for (const negatives of [
      rows,
      [rows],
      { rows: [rows], columns: [columns], normalized: false },
    ]) {
      const { value, grads } = tf.variableGrads(
        () =>
          infoNce(q, stopGradient(k), { negatives, temperature: 0.2, chunkSize: 2 }) as tf.Scalar,
        [q, k, rows],
      );
      // Keys behind stopGradient get a zero gradient, the negatives none at all.
      expect(Object.keys(grads).sort()).toEqual([q.name, k.name].sort());
      expect(Array.from((grads[k.name] as tf.Tensor).dataSync()).every((v) => v === 0)).toBe(true);
      tf.dispose([value, ...Object.values(grads)]);
    }
    tf.dispose([q, k, rows, columns]);
  });

  it('one descent step of ntXentLoss and supConLoss matches the unchunked step', () => {
    const steps = (chunkSize: number | undefined): number[] =>
      tf.tidy(() => {
        const w = tf.variable(randn([6, 4], 23));
        const x = randn([8, 6], 24);
        const optimizer = tf.train.sgd(0.5);
        for (let i = 0; i < 3; i++) {
          optimizer.minimize(() => {
            const z = tf.matMul<tf.Tensor2D>(x, w);
            const z1 = tf.slice(z, [0, 0], [4, -1]);
            const z2 = tf.slice(z, [4, 0], [4, -1]);
            return tf.add(
              ntXentLoss(z1, z2, { chunkSize }),
              supConLoss(z, [0, 1, 2, 3, 0, 1, 2, 3], { chunkSize }),
            ) as tf.Scalar;
          });
        }
        const out = Array.from(w.dataSync());
        optimizer.dispose();
        w.dispose();
        return out;
      });
    expectClose(steps(3), steps(undefined), tol, 'weights after 3 SGD steps');
  });
});

describeBackends('chunkSize: no leaks', () => {
  const forward = (chunkSize: number): tf.Tensor[] => {
    const q = randn([6, 8], 30);
    const k = randn([6, 8], 31);
    const negatives = randn([13, 8], 32);
    const out = [
      infoNce(q, k, { negatives, chunkSize }),
      infoNce(q, k, { chunkSize, reduction: 'none' }),
      ntXentLoss(q, k, { chunkSize }),
      supConLoss(q, [0, 1, 0, 1, 2, 2], { chunkSize, reduction: 'sum' }),
    ];
    tf.dispose([q, k, negatives]);
    return out;
  };

  it('forward only: the loss tensors are the only new tensors', () => {
    for (const chunkSize of [1, 4, 64]) {
      const before = tf.memory().numTensors;
      const out = forward(chunkSize);
      expect(tf.memory().numTensors - before).toBe(out.length);
      tf.dispose(out);
      expect(tf.memory().numTensors).toBe(before);
    }
  });

  it('under tf.grad and optimizer.minimize: no tensor left but the gradients and state', () => {
    const queue = new MomentumQueue(20, 8, { seed: 1, blockSize: 8 });
    const x = randn([6, 8], 33);
    const before = tf.memory().numTensors;
    const g = tf.grad(
      (v: tf.Tensor) =>
        tf.add(
          infoNce(v as tf.Tensor2D, stopGradient(x), { negatives: queue, chunkSize: 3 }),
          tf.add(
            ntXentLoss(v as tf.Tensor2D, x, { chunkSize: 5 }),
            supConLoss(v as tf.Tensor2D, [0, 1, 0, 1, 2, 2], { chunkSize: 2 }),
          ),
        ) as tf.Scalar,
    )(x);
    expect(tf.memory().numTensors - before).toBe(1);
    g.dispose();

    const w = tf.tidy(() => tf.variable(tf.eye(8)));
    const optimizer = tf.train.adam(1e-2);
    const step = (): void =>
      tf.tidy(() => {
        optimizer.minimize(() => {
          const z = l2Normalize(tf.matMul<tf.Tensor2D>(x, w));
          return tf.add(
            infoNce(z, stopGradient(x), { negatives: queue, chunkSize: 3 }),
            ntXentLoss(z, x, { chunkSize: 4 }),
          ) as tf.Scalar;
        });
      });
    step(); // Adam creates its slot variables on the first step
    const afterFirst = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    expect(tf.memory().numTensors).toBe(afterFirst);
    optimizer.dispose();
    tf.dispose([w, x]);
    queue.dispose();
  });
});

describeBackends('chunkSize: bad values', () => {
  it('a chunkSize that is not a positive integer is a ContrastiveError naming the option', () => {
    const a = randn([4, 3], 40);
    for (const bad of [0, -2, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '8', null]) {
      const calls = [
        () => infoNce(a, a, { chunkSize: bad as number }),
        () => infoNce(a, a, { negatives: a, chunkSize: bad as number }),
        () => ntXentLoss(a, a, { chunkSize: bad as number }),
        () => supConLoss(a, [0, 1, 0, 1], { chunkSize: bad as number }),
      ];
      for (const call of calls) {
        let error: unknown;
        try {
          call();
        } catch (e) {
          error = e;
        }
        expect(error, String(bad)).toBeInstanceOf(ContrastiveError);
        expect((error as ContrastiveError).argument).toBe('options.chunkSize');
        expect((error as ContrastiveError).expected).toBe('an integer >= 1');
      }
    }
    expect(() => ntXentLoss(a, a, { chunkSize: 0 })).toThrow(
      "ntXentLoss: argument 'options.chunkSize' must be an integer >= 1, but received 0.",
    );
    tf.dispose(a);
  });
});
