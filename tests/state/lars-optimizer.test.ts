/** LARS against scripts/fixtures/lars_reference.py; slots, config, fallbacks, training, errors. */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import { ContrastiveError, LARSOptimizer, lars } from '../../src/index.js';
import { describeBackends, expectClose } from '../support/backends.js';

const ref = JSON.parse(
  readFileSync(resolve(import.meta.dirname, '../fixtures/lars-reference.json'), 'utf8'),
) as {
  shapes: Record<string, number[]>;
  options: { learningRate: number; momentum: number; weightDecay: number; eta: number };
  start: Record<string, number[]>;
  grads: Record<string, number[]>[];
  after: Record<string, number[]>[];
};

let counter = 0;
function variables(prefix: string): Record<string, tf.Variable> {
  counter++;
  return tf.tidy(() =>
    Object.fromEntries(
      Object.entries(ref.shapes).map(([k, s]) => [
        k,
        tf.variable(tf.tensor(ref.start[k]!, s), true, `${prefix}${counter}/${k}`),
      ]),
    ),
  );
}

function step(opt: LARSOptimizer, vars: Record<string, tf.Variable>, i: number): void {
  tf.tidy(() => {
    opt.applyGradients(
      Object.fromEntries(
        Object.entries(vars).map(([k, v]) => [v.name, tf.tensor(ref.grads[i]![k]!, ref.shapes[k])]),
      ),
    );
  });
}

describeBackends('LARS', ({ tol }) => {
  it('matches the reference for 5 steps (kernels adapted, the bias excluded)', async () => {
    const vars = variables('ref');
    const opt = lars(ref.options);
    for (let i = 0; i < 5; i++) {
      step(opt, vars, i);
      for (const [k, v] of Object.entries(vars))
        expectClose(await v.data(), ref.after[i]![k]!, tol, `step ${i}: ${k}`);
    }
    opt.dispose();
    tf.dispose(Object.values(vars));
  });

  it('resumes exactly from getWeights / setWeights, and round-trips its config', async () => {
    const vars = variables('resume');
    const optA = lars(ref.options);
    for (let i = 0; i < 3; i++) step(optA, vars, i);
    const raw = await optA.getWeights();
    const savedSlots = raw.map((w) => ({ name: w.name, tensor: tf.clone(w.tensor) }));
    // The iteration count is a new tensor (the slots belong to the optimiser).
    raw
      .filter((w) => w.name === 'iter')
      .forEach((w) => {
        w.tensor.dispose();
      });
    const savedValues = Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, tf.clone(v)]));
    step(optA, vars, 3);
    const expected = await Promise.all(Object.values(vars).map((v) => v.data()));
    // Roll the variables back and continue with a new optimiser built from config and slots.
    for (const [k, v] of Object.entries(vars)) v.assign(savedValues[k]!);
    const optB = LARSOptimizer.fromConfig(LARSOptimizer, optA.getConfig());
    if (!(optB instanceof LARSOptimizer))
      throw new Error('fromConfig did not build a LARSOptimizer');
    await optB.setWeights(savedSlots);
    step(optB, vars, 3);
    const resumed = await Promise.all(Object.values(vars).map((v) => v.data()));
    resumed.forEach((r, i) => {
      expectClose(r, expected[i]!, 0, `variable ${i}`);
    });
    expect(optB.getConfig()).toEqual(optA.getConfig());
    expect(optB.iterations).toBe(4);
    [optA, optB].forEach((o) => {
      o.dispose();
    });
    tf.dispose([
      ...Object.values(vars),
      ...Object.values(savedValues),
      ...savedSlots.map((w) => w.tensor),
    ]);
  });

  it('takes its own getWeights back (the tensors it hands out are its own slots)', async () => {
    const [varsA, varsB] = [variables('selfA'), variables('selfB')];
    const [optA, optB] = [lars(ref.options), lars(ref.options)];
    for (let i = 0; i < 2; i++) {
      step(optA, varsA, i);
      step(optB, varsB, i);
    }
    const own = await optA.getWeights();
    await optA.setWeights(own); // threw RangeError (maximum call stack) before
    own.filter((w) => w.name === 'iter').forEach((w) => w.tensor.dispose());
    step(optA, varsA, 2);
    step(optB, varsB, 2);
    const [a, b] = [Object.values(varsA), Object.values(varsB)];
    for (let i = 0; i < a.length; i++) {
      expectClose(await a[i]!.data(), await b[i]!.data(), 0, `variable ${i}`);
    }
    optA.dispose();
    optB.dispose();
    tf.dispose([...a, ...b]);
  });

  it('a zero weight falls back to trust 1, without NaN', async () => {
    const w = tf.tidy(() => tf.variable(tf.zeros([3]), true, `zero${counter++}/kernel`));
    const opt = lars({ learningRate: 0.1, momentum: 0, weightDecay: 0 });
    tf.tidy(() => {
      opt.applyGradients({ [w.name]: tf.tensor1d([1, 2, 3]) });
    });
    expectClose(await w.data(), [-0.1, -0.2, -0.3], 1e-6);
    opt.dispose();
    w.dispose();
  });

  it('trains a tfjs-layers model through model.fit', async () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.dense({
          inputShape: [3],
          units: 1,
          kernelInitializer: tfl.initializers.zeros(),
        }),
      ],
    });
    const opt = lars({ learningRate: 0.1, eta: 0.05 });
    model.compile({ optimizer: opt, loss: 'meanSquaredError' });
    const [x, y] = tf.tidy((): [tf.Tensor, tf.Tensor] => {
      const xs = tf.randomNormal([64, 3], 0, 1, 'float32', 1);
      return [xs, tf.matMul(xs, tf.tensor2d([[1], [-2], [0.5]]))];
    });
    const h = await model.fit(x!, y!, { epochs: 20, batchSize: 16 });
    const losses = h.history.loss as number[];
    expect(losses.at(-1)!).toBeLessThan(losses[0]! * 0.5);
    tf.dispose([x!, y!]);
    model.dispose();
    opt.dispose();
  });

  it('rejects bad options with ContrastiveErrors', () => {
    expect(() => lars({ learningRate: 0 })).toThrow(
      "lars: argument 'options.learningRate' must be a finite number > 0",
    );
    expect(() => lars({ learningRate: 0.1, momentum: 1 })).toThrow("argument 'options.momentum'");
    expect(() => lars(undefined as never)).toThrow(ContrastiveError);
  });
});
