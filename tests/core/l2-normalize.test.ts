import * as tf from '@tensorflow/tfjs-core';
import fixtures from '../fixtures/core.json';
import { expect, it } from 'vitest';
import { ContrastiveError, l2Normalize } from '../../src/core/index.js';
import { describeBackends, expectClose, finiteDifferenceGradient } from '../support/backends.js';

// d/dx <w, x / ||x||> = (w - y <y, w>) / ||x|| with y = x / ||x||, computed in float64.
function closedFormGradient(x: number[], w: number[]): number[] {
  const norm = Math.hypot(...x);
  const y = x.map((v) => v / norm);
  const yw = y.reduce((s, v, i) => s + v * (w[i] as number), 0);
  return w.map((wi, i) => (wi - (y[i] as number) * yw) / norm);
}

describeBackends('l2Normalize', ({ tol }) => {
  it('divides each row by its norm (3-4-5 triangle)', () => {
    const x = tf.tensor2d([
      [3, 4],
      [-6, 8],
    ]);
    const y = l2Normalize(x);
    expectClose(y, [0.6, 0.8, -0.6, 0.8], tol);
    tf.dispose([x, y]);
  });

  it('normalises along the axis given, negative axes counting from the end', () => {
    const x = tf.tensor2d([
      [3, 1],
      [4, 0],
    ]);
    const y0 = l2Normalize(x, 0);
    const yNeg = l2Normalize(x, -2);
    expectClose(y0, [0.6, 1, 0.8, 0], tol);
    expectClose(yNeg, y0, 0);
    tf.dispose([x, y0, yNeg]);
  });

  it('maps a zero vector to zero with a finite gradient (no NaN)', () => {
    const x = tf.zeros([2, 3]);
    const y = l2Normalize(x);
    expect(Array.from(y.dataSync())).toEqual([0, 0, 0, 0, 0, 0]);
    const g = tf.grad((v: tf.Tensor) => tf.sum(l2Normalize(v)))(x);
    const gv = Array.from(g.dataSync());
    expect(gv.every(Number.isFinite)).toBe(true);
    // Below eps the function is x / eps, so its gradient is 1 / eps.
    expectClose(gv, new Array<number>(6).fill(1e12), 1e-5);
    tf.dispose([x, y, g]);
  });

  it('matches x / max(||x||, eps) for tiny vectors, as torch.nn.functional.normalize', () => {
    const x = tf.tensor2d([[3e-4, 4e-4]]);
    const y = l2Normalize(x, -1, 1e-3);
    expectClose(y, [0.3, 0.4], tol);
    tf.dispose([x, y]);
  });

  it('has the closed-form gradient and agrees with finite differences', () => {
    const xv = [0.3, -1.2, 2.0, 0.7];
    const wv = [1.0, 0.5, -0.25, 2.0];
    const x = tf.tensor2d([xv]);
    const w = tf.tensor2d([wv]);
    const f = (v: tf.Tensor): tf.Scalar => tf.sum(tf.mul(l2Normalize(v), w));
    const g = tf.grad(f)(x);
    expectClose(g, closedFormGradient(xv, wv), 10 * tol, 'gradient vs closed form');
    const fd = finiteDifferenceGradient(f, x, 1e-2);
    expectClose(g, fd, 2e-3, 'gradient vs finite differences');
    tf.dispose([x, w, g]);
  });

  it('rejects bad arguments with errors that name them', () => {
    const x = tf.zeros([2, 3]);
    const i = tf.zeros([2, 3], 'int32');
    const s = tf.scalar(1);
    expect(() => l2Normalize(x, 2)).toThrow(
      "l2Normalize: argument 'axis' must be an integer >= -2 and <= 1, but received 2.",
    );
    expect(() => l2Normalize(x, -1, 0)).toThrow(ContrastiveError);
    expect(() => l2Normalize(i)).toThrow("argument 'x' must be a float32 tensor");
    expect(() => l2Normalize(s)).toThrow('received a float32 tensor of shape []');
    tf.dispose([x, i, s]);
  });
});

interface L2Case {
  shape: number[];
  axis: number;
  eps: number;
  x: number[];
  w: number[];
  y: number[];
  grad: number[];
}

describeBackends(
  'l2Normalize against torch.nn.functional.normalize (tests/fixtures/core.json)',
  ({ tol }) => {
    const cases = (fixtures as { l2_normalize: L2Case[] }).l2_normalize;
    for (const c of cases) {
      it(`shape [${c.shape.join(', ')}], axis ${c.axis}, eps ${c.eps}: values and gradient`, () => {
        const x = tf.tensor(c.x, c.shape);
        const w = tf.tensor(c.w, c.shape);
        const y = l2Normalize(x, c.axis, c.eps);
        expectClose(y, c.y, tol, 'normalised values');
        const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(l2Normalize(v, c.axis, c.eps), w)))(x);
        expectClose(g, c.grad, 10 * tol, 'gradient');
        tf.dispose([x, w, y, g]);
      });
    }
  },
);
