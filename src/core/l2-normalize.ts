import * as tf from '@tensorflow/tfjs-core';
import type { Tensor } from '@tensorflow/tfjs-core';
import { checkNumber, checkTensor, resolveAxis } from './checks.js';

// eps^2 must not underflow to 0 in float32, or rsqrt would give Infinity for a zero vector.
const FLOAT32_MIN_NORMAL = 1.1754943508222875e-38;

/**
 * L2-normalises `x` along `axis`: `x / max(||x||, eps)`, the same definition as PyTorch's
 * `F.normalize`, with a gradient that stays finite for a zero vector.
 *
 * It is computed as `x * rsqrt(max(sum(x^2), eps^2))`, which equals `x / max(||x||, eps)` for every
 * input but, unlike dividing by `sqrt(sum(x^2))`, never differentiates `sqrt` at zero (which gives
 * `0 * Infinity = NaN` in automatic differentiation).
 *
 * @param x - a float32 tensor of rank at least 1.
 * @param axis - the axis to normalise along; negative values count from the end. Default `-1`.
 * @param eps - the smallest norm divided by; vectors with a smaller norm are divided by `eps`.
 *   Default `1e-12`.
 * @returns a tensor of the shape of `x` whose slices along `axis` have unit norm (or are smaller
 *   than unit when their norm is below `eps`).
 * @throws {@link ContrastiveError} when `x` is not a float32 tensor of rank >= 1, when `axis` is
 *   out of range or when `eps` is not positive.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { l2Normalize } from 'tfjs-contrastive';
 *
 * l2Normalize(tf.tensor2d([[3, 4], [0, 0]])).print(); // [[0.6, 0.8], [0, 0]]
 * ```
 */
export function l2Normalize<T extends Tensor>(x: T, axis = -1, eps = 1e-12): T {
  checkTensor('l2Normalize', 'x', x, { dtype: 'float32', rank: [1, 2, 3, 4, 5, 6] });
  const ax = resolveAxis('l2Normalize', 'axis', axis, x.rank);
  checkNumber('l2Normalize', 'eps', eps, { greaterThan: 0 });
  return tf.tidy(() => {
    const sumSq = tf.sum(tf.square(x), ax, true);
    return tf.mul(x, tf.rsqrt(tf.maximum(sumSq, Math.max(eps * eps, FLOAT32_MIN_NORMAL))));
  });
}
