import * as tf from '@tensorflow/tfjs-core';
import type { Tensor } from '@tensorflow/tfjs-core';
import { checkTensor } from './checks.js';

const detach = tf.customGrad((x: Tensor | tf.GradSaveFunc) => ({
  value: tf.clone(x as Tensor),
  gradFunc: (dy: Tensor) => tf.zerosLike(dy),
}));

/**
 * Stops gradients: returns a tensor equal to `x` whose gradient with respect to `x` is exactly
 * zero, the `detach()` / `stop_gradient` that tfjs lacks (tfjs issue #7438).
 *
 * Every target in self-supervised learning must go through it: momentum keys (MoCo), the EMA
 * target's projection (BYOL), the other branch's projection (SimSiam), teacher outputs (DINO),
 * Sinkhorn codes (SwAV). Without it the target branch receives gradient and the method collapses
 * or silently computes something else.
 *
 * @param x - any tensor. Integer and boolean tensors are returned as a copy (they carry no
 *   gradient anyway).
 * @returns a new tensor with the values, shape and dtype of `x` and a zero gradient.
 * @throws {@link ContrastiveError} when `x` is not a live tensor.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { stopGradient } from 'tfjs-contrastive';
 *
 * const x = tf.tensor1d([1, 2, 3]);
 * const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(v, stopGradient(v))))(x);
 * g.print(); // [1, 2, 3]: only the first factor is differentiated
 * ```
 */
export function stopGradient<T extends Tensor>(x: T): T {
  checkTensor('stopGradient', 'x', x);
  if (x.dtype !== 'float32') return tf.clone(x);
  return detach(x) as T;
}
