/**
 * The BatchNorm layer against PyTorch's batch_norm (tests/fixtures/batch-norm.json, written by
 * scripts/fixtures/batch_norm.py): training output, gradients with respect to the input, gamma
 * and beta, running statistics after the update, and the evaluation output; errors; no leaks.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { ContrastiveError } from '../../src/core/index.js';
import { BatchNorm } from '../../src/layers/index.js';
import fixtures from '../fixtures/batch-norm.json';
import { describeBackends, expectClose } from '../support/backends.js';
import { randomInput } from '../support/layers.js';

interface Case {
  shape: number[];
  center: boolean;
  scale: boolean;
  momentum: number;
  epsilon: number;
  x: number[];
  w: number[];
  gamma?: number[];
  beta?: number[];
  moving_mean: number[];
  moving_variance: number[];
  y: number[];
  grad_x: number[];
  grad_gamma?: number[];
  grad_beta?: number[];
  moving_mean_after: number[];
  moving_variance_after: number[];
  x_eval: number[];
  y_eval: number[];
}

const cases = fixtures.cases as Case[];

describeBackends('BatchNorm', ({ tol }) => {
  for (const c of cases) {
    const title = `shape [${c.shape.join(', ')}], center ${c.center}, scale ${c.scale}, momentum ${c.momentum}`;
    it(`${title}: training output, gradients and running statistics match torch`, () => {
      const layer = new BatchNorm({
        center: c.center,
        scale: c.scale,
        momentum: c.momentum,
        epsilon: c.epsilon,
      });
      const model = tfl.sequential({
        layers: [tfl.layers.inputLayer({ inputShape: c.shape.slice(1) }), layer],
      });
      const initial = [
        ...(c.gamma === undefined ? [] : [c.gamma]),
        ...(c.beta === undefined ? [] : [c.beta]),
        c.moving_mean,
        c.moving_variance,
      ];
      const width = c.shape[c.shape.length - 1]!;
      const values = initial.map((v) => tf.tensor1d(v));
      layer.setWeights(values);
      tf.dispose(values);
      expect(layer.weights.map((w) => w.name.split('/').pop())).toEqual([
        ...(c.scale ? ['gamma'] : []),
        ...(c.center ? ['beta'] : []),
        'moving_mean',
        'moving_variance',
      ]);

      const x0 = tf.tensor(c.x, c.shape);
      const x = tf.variable(x0);
      const w = tf.tensor(c.w, c.shape);
      // The tf.Variables behind the layer's trainable weights (a LayerVariable names its variable alike).
      const params = layer.trainableWeights.map((v) => tf.engine().registeredVariables[v.name]!);
      let y: tf.Tensor | undefined;
      const { value, grads } = tf.variableGrads(() => {
        const out = layer.apply(x, { training: true }) as tf.Tensor;
        y = tf.keep(out);
        return tf.sum(tf.mul(out, w));
      }, [x, ...params]);
      expectClose(y!, c.y, tol);
      expectClose(grads[x.name]!, c.grad_x, tol);
      let k = 0;
      if (c.grad_gamma !== undefined) expectClose(grads[params[k++]!.name]!, c.grad_gamma, tol);
      if (c.grad_beta !== undefined) expectClose(grads[params[k++]!.name]!, c.grad_beta, tol);
      expect(k).toBe(params.length);
      const [mean, variance] = layer.getWeights().slice(-2);
      expectClose(mean!, c.moving_mean_after, tol);
      expectClose(variance!, c.moving_variance_after, tol);

      const xEval = tf.tensor(c.x_eval, c.shape);
      const yEval = model.predict(xEval) as tf.Tensor;
      expectClose(yEval, c.y_eval, tol);
      expect(width).toBe(c.moving_mean.length);
      tf.dispose([x0, x, w, value, y!, xEval, yEval, ...Object.values(grads)]);
      model.dispose();
    });
  }

  it('outside training it uses the running statistics and leaves them alone', () => {
    const layer = new BatchNorm({});
    const model = tfl.sequential({ layers: [tfl.layers.inputLayer({ inputShape: [3] }), layer] });
    const x = randomInput([4, 3], 1);
    // Fresh layer: mean 0, variance 1, gamma 1, beta 0: y = x / sqrt(1 + eps).
    const y = layer.apply(x, { training: false }) as tf.Tensor;
    const expected = tf.div(x, Math.sqrt(1 + 1e-5));
    expectClose(y, expected, 1e-6);
    const [mean, variance] = layer.getWeights().slice(-2);
    expectClose(mean!, [0, 0, 0], 0);
    expectClose(variance!, [1, 1, 1], 0);
    // A batch of one is fine outside training.
    const one = randomInput([1, 3], 2);
    const out = model.predict(one) as tf.Tensor;
    expect(out.shape).toEqual([1, 3]);
    tf.dispose([x, y, expected, one, out]);
    model.dispose();
  });

  it('in training a batch of one is the library error naming the input, not a NaN', () => {
    const layer = new BatchNorm({});
    const model = tfl.sequential({ layers: [tfl.layers.inputLayer({ inputShape: [3] }), layer] });
    const one = randomInput([1, 3], 3);
    expect(() => layer.apply(one, { training: true })).toThrow(ContrastiveError);
    expect(() => layer.apply(one, { training: true })).toThrow(/inputs.*at least 2 samples/s);
    one.dispose();
    model.dispose();
  });

  it('rejects bad options with a ContrastiveError naming the argument', () => {
    expect(() => new BatchNorm({ momentum: 1.5 })).toThrow(/args\.momentum/);
    expect(() => new BatchNorm({ epsilon: 0 })).toThrow(/args\.epsilon/);
    expect(() => new BatchNorm({ center: 'yes' as unknown as boolean })).toThrow(/args\.center/);
    expect(() => new BatchNorm({ scale: 1 as unknown as boolean })).toThrow(ContrastiveError);
  });
});
