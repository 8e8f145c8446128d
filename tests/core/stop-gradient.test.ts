import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { ContrastiveError, stopGradient } from '../../src/core/index.js';
import { describeBackends, expectClose } from '../support/backends.js';

describeBackends('stopGradient', ({ tol }) => {
  it('is the identity forward and keeps shape and dtype', () => {
    const x = tf.tensor2d([
      [1, -2, 3],
      [4, 5, -6],
    ]);
    const y = stopGradient(x);
    expect(y.shape).toEqual([2, 3]);
    expect(y.dtype).toBe('float32');
    expect(y).not.toBe(x);
    expect(Array.from(y.dataSync())).toEqual([1, -2, 3, 4, 5, -6]);
    const i = tf.tensor1d([1, 2], 'int32');
    const j = stopGradient(i);
    expect(j.dtype).toBe('int32');
    expect(Array.from(j.dataSync())).toEqual([1, 2]);
    tf.dispose([x, y, i, j]);
  });

  it('has exactly zero gradient', () => {
    const x = tf.tensor1d([0.5, -1.5, 2]);
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.square(stopGradient(v))))(x);
    expect(Array.from(g.dataSync())).toEqual([0, 0, 0]);
    tf.dispose([x, g]);
  });

  it('cuts only the branch it wraps: d/dx sum(x * sg(x)) = x', () => {
    const x = tf.tensor1d([0.5, -1.5, 2]);
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(v, stopGradient(v))))(x);
    expectClose(g, [0.5, -1.5, 2], tol, 'gradient');
    // Without the stop-gradient the same expression has gradient 2x.
    const g2 = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(v, v)))(x);
    expectClose(g2, [1, -3, 4], tol, 'gradient without stopGradient');
    tf.dispose([x, g, g2]);
  });

  it('stops gradient to variables used through it under optimizer.minimize', () => {
    const w = tf.tidy(() => tf.variable(tf.tensor1d([1, 2])));
    const opt = tf.train.sgd(0.1);
    tf.tidy(() => {
      opt.minimize(() => tf.sum(tf.square(stopGradient(w))), false, [w]);
    });
    expect(Array.from(w.dataSync())).toEqual([1, 2]);
    opt.dispose();
    w.dispose();
  });

  it('rejects a non-tensor with a ContrastiveError naming x', () => {
    expect(() => stopGradient([1, 2] as unknown as tf.Tensor)).toThrow(ContrastiveError);
    expect(() => stopGradient(undefined as unknown as tf.Tensor)).toThrow(
      "stopGradient: argument 'x' must be a tensor, but received undefined.",
    );
  });
});
