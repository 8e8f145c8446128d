import * as tf from '@tensorflow/tfjs-core';
import { checkBoolean, checkNumber, checkOneOf } from '../core/index.js';

/**
 * How a loss turns its per-sample values into what it returns: their `'mean'` (the default of
 * every loss), their `'sum'`, or `'none'` (the per-sample values, a rank-1 tensor), like
 * `tf.Reduction` and PyTorch's `reduction=`.
 */
export type Reduction = 'mean' | 'sum' | 'none';

const REDUCTIONS: readonly Reduction[] = ['mean', 'sum', 'none'];

/** @internal Checks an options object's `reduction` and returns it, defaulting to `'mean'`. */
export function resolveReduction(caller: string, reduction: unknown): Reduction {
  if (reduction === undefined) return 'mean';
  checkOneOf(caller, 'options.reduction', reduction, REDUCTIONS);
  return reduction;
}

/** @internal Checks a temperature: a finite number > 0. */
export function resolveTemperature(caller: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  checkNumber(caller, 'options.temperature', value, { greaterThan: 0 });
  return value;
}

/**
 * @internal Checks a `chunkSize` option: a positive integer, or absent (the unchunked path).
 */
export function resolveChunkSize(caller: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  checkNumber(caller, 'options.chunkSize', value, { integer: true, min: 1 });
  return value;
}

/** @internal Checks a boolean option, defaulting when absent. */
export function resolveFlag(
  caller: string,
  name: string,
  value: unknown,
  fallback: boolean,
): boolean {
  if (value === undefined) return fallback;
  checkBoolean(caller, name, value);
  return value;
}

/** @internal Applies a reduction to per-sample losses [N]. */
export function reduce(perSample: tf.Tensor1D, reduction: Reduction): tf.Tensor {
  if (reduction === 'none') return perSample;
  return reduction === 'sum' ? tf.sum(perSample) : tf.mean(perSample);
}

/**
 * @internal Per-row `logSumExp(x_i) - target_i`, i.e. the cross entropy of row i of `logits`
 * against the class whose logit is `target_i`, computed without forming a one-hot mask.
 */
export function crossEntropyFromTarget(logits: tf.Tensor2D, targetLogit: tf.Tensor1D): tf.Tensor1D {
  return tf.sub(logSumExpRows(logits), targetLogit);
}

/**
 * @internal logSumExp of each row of an [N, M] matrix, as an [N] vector: `m + log(sum(exp(x - m)))`
 * with m the row maximum, and the gradient `softmax(x) = exp(x - lse)` written out. tfjs's own
 * logSumExp differentiates through the maximum too (a comparison mask and a few more passes over
 * the N x M matrix, for a term that cancels), and elementwise passes over the logits dominate the
 * loss's cost on wasm. Entries of -Infinity (excluded pairs) get probability and gradient 0; each
 * row needs one finite entry.
 */
export const logSumExpRows = tf.customGrad(
  (x: tf.Tensor | tf.GradSaveFunc, save: tf.Tensor | tf.GradSaveFunc) => {
    const t = x as tf.Tensor2D;
    const m = tf.max(t, 1, true);
    const lse = tf.add(m, tf.log(tf.sum(tf.exp(tf.sub(t, m)), 1, true)));
    (save as tf.GradSaveFunc)([t, lse]);
    return {
      value: tf.reshape(lse, [-1]),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, slse] = saved as [tf.Tensor2D, tf.Tensor2D];
        return tf.mul(tf.reshape(dy, [-1, 1]), tf.exp(tf.sub(sx, slse)));
      },
    };
  },
) as (x: tf.Tensor2D) => tf.Tensor1D;

/** @internal A boolean [n, n] matrix, true where column = (row + shift) mod n. */
export function shiftedEye(n: number, shift = 0): tf.Tensor2D {
  return tf.tidy(() => {
    const rows = tf.reshape(tf.mod(tf.add(tf.range(0, n, 1, 'int32'), shift), n), [n, 1]);
    const cols = tf.reshape(tf.range(0, n, 1, 'int32'), [1, n]);
    return tf.equal<tf.Tensor2D>(rows, cols);
  });
}

/** @internal Rowwise dot products of two [N, D] tensors. */
export function rowDot(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor1D {
  return tf.sum(tf.mul(a, b), 1);
}

/**
 * @internal `a b^T` for [N, D] and [M, D], with forward and backward passes built only from
 * plain matrix products and explicit transposes. tfjs's own matMul gradient multiplies with
 * transpose flags, which the wasm backend runs about 10x slower than a transpose followed by a
 * plain product (shared/TFJS-NOTES.md). Both gradients are computed together (customGrad has no
 * lazy per-input gradients): for a queue that needs none this costs one extra product, still far
 * cheaper than the flagged products.
 */
export const similarity = tf.customGrad(
  (
    a: tf.Tensor | tf.GradSaveFunc,
    b: tf.Tensor | tf.GradSaveFunc,
    save: tf.Tensor | tf.GradSaveFunc,
  ) => {
    const x = a as tf.Tensor2D;
    const y = b as tf.Tensor2D;
    (save as tf.GradSaveFunc)([x, y]);
    return {
      value: tf.matMul(x, tf.transpose(y)),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sy] = saved as [tf.Tensor2D, tf.Tensor2D];
        const d = dy as tf.Tensor2D;
        return [tf.matMul(d, sy), tf.matMul(tf.transpose(d), sx)];
      },
    };
  },
) as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/** @internal `x` with the entries where `mask` is true replaced by `value` (e.g. -Infinity). */
export function fillWhere<T extends tf.Tensor>(mask: tf.Tensor, value: number, x: T): T {
  return tf.where(mask, tf.fill(x.shape, value), x) as T;
}

/**
 * @internal The per-row shift for a masked logSumExp: the row maximum, or 0 for a row that is all
 * -Infinity. A constant of the computation (the logSumExp does not depend on it), so its gradient
 * is zero; the comparison inside (which has no gradient in tfjs) is hidden from the tape.
 */
export const rowShift = tf.customGrad(
  (x: tf.Tensor | tf.GradSaveFunc, save: tf.Tensor | tf.GradSaveFunc) => {
    const t = x as tf.Tensor;
    (save as tf.GradSaveFunc)([t]);
    const m = tf.max(t, -1, true);
    return {
      value: tf.where(tf.isFinite(m), m, tf.zerosLike(m)),
      gradFunc: (_dy: tf.Tensor, saved: tf.Tensor[]) => tf.zerosLike(saved[0] as tf.Tensor),
    };
  },
);

/**
 * @internal log(1 - exp(x)) for x < 0, accurate at both ends (Maechler 2012): log(-expm1(x))
 * above -ln 2, log1p(-exp(x)) below. Its gradient, -1 / expm1(-x), is written out so that the
 * branch selection (a comparison, which has no gradient in tfjs) stays off the tape.
 */
export const log1mExp = tf.customGrad(
  (x: tf.Tensor | tf.GradSaveFunc, save: tf.Tensor | tf.GradSaveFunc) => {
    const t = x as tf.Tensor;
    (save as tf.GradSaveFunc)([t]);
    const near = tf.greater(t, -Math.LN2);
    const value = tf.where(near, tf.log(tf.neg(tf.expm1(t))), tf.log1p(tf.neg(tf.exp(t))));
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.div(tf.neg(dy), tf.expm1(tf.neg(saved[0] as tf.Tensor))),
    };
  },
);

/**
 * @internal logSumExp along the last axis over the entries where `valid` is true; a row with no
 * valid entry gives -Infinity in the forward pass and a zero (not NaN) gradient. Invalid entries
 * are replaced by -Infinity, never by a large finite number that a small temperature could
 * overflow, and the row maximum is subtracted before exp (after which the largest term is exactly
 * 1, so log(max(sum, 1)) is exact on non-empty rows).
 */
export function maskedLogSumExp(x: tf.Tensor, valid: tf.Tensor | undefined): tf.Tensor {
  const candidates = valid === undefined ? x : fillWhere(tf.logicalNot(valid), -Infinity, x);
  const shift = rowShift(candidates);
  const sumExp = tf.sum(tf.exp(tf.sub(candidates, shift)), -1, true);
  return tf.add(shift, tf.log(tf.maximum(sumExp, 1)));
}

/**
 * @internal `x > -1e-3` as a boolean tensor whose gradient is zero: the comparison (which has no
 * gradient in tfjs) runs off the tape. Marks log-probabilities of P > 0.999.
 */
export const nearCertain = tf.customGrad(
  (x: tf.Tensor | tf.GradSaveFunc, save: tf.Tensor | tf.GradSaveFunc) => {
    const t = x as tf.Tensor;
    (save as tf.GradSaveFunc)([t]);
    return {
      value: tf.greater(t, -1e-3),
      gradFunc: (_dy: tf.Tensor, saved: tf.Tensor[]) => tf.zerosLike(saved[0] as tf.Tensor),
    };
  },
);

/**
 * @internal `a c^T` where `c` is a constant (queue or memory-bank entries): the gradient flows
 * into `a` only, as one plain product `dy c`. The constant is captured, not an input of the
 * custom gradient, so no gradient (not even zeros) is ever computed for it; on wasm that saves
 * one [N, K] x [N, D] product and a transpose of the [N, K] gradient per step.
 */
export function similarityToConstant(a: tf.Tensor2D, c: tf.Tensor2D): tf.Tensor2D {
  const op = tf.customGrad((x: tf.Tensor | tf.GradSaveFunc, save: tf.Tensor | tf.GradSaveFunc) => {
    // Saved, not just captured: `c` may be an intermediate (normalised negatives) that the
    // caller's tidy disposes before the backward pass; tfjs keeps saved tensors for it.
    (save as tf.GradSaveFunc)([c]);
    return {
      value: tf.matMul(x as tf.Tensor2D, tf.transpose(c)),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.matMul(dy, saved[0] as tf.Tensor2D),
    };
  });
  return op(a) as tf.Tensor2D;
}

/**
 * @internal An [n, n] float32 matrix with -Infinity on the diagonal and 0 elsewhere, built on the
 * host: adding it to a similarity matrix excludes self-pairs in one elementwise pass (the
 * equal + fill + where alternative costs three, and elementwise passes dominate on wasm).
 */
export function selfExclusion(n: number): tf.Tensor2D {
  const values = new Float32Array(n * n);
  for (let i = 0; i < n; i++) values[i * n + i] = -Infinity;
  return tf.tensor2d(values, [n, n]);
}

/**
 * @internal The sum of a list of same-shape tensors by pairwise adds. tf.addN is avoided: on
 * tfjs-backend-webgpu 4.22 (Chromium 156, SwiftShader) it returns wrong, stale values from 8
 * inputs on (6 were right), presumably past the 8 storage buffers a shader stage gets by default;
 * DINO with 2 + 8 crops sums 18 terms.
 */
export function sumOf(terms: readonly tf.Tensor[]): tf.Tensor {
  let total = terms[0] as tf.Tensor;
  for (let i = 1; i < terms.length; i++) total = tf.add(total, terms[i] as tf.Tensor);
  return total;
}

/** @internal log(exp(a) + exp(b)) elementwise, stable. */
export function logAddExp(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const m = tf.maximum(a, b);
  return tf.add(m, tf.log(tf.add(tf.exp(tf.sub(a, m)), tf.exp(tf.sub(b, m)))));
}
