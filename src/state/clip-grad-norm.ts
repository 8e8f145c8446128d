import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError, checkNumber, checkTensor, describeValue } from '../core/index.js';
import type { NamedTensor } from './lars-optimizer.js';

/** Options of {@link clipGradNorm}. */
export interface ClipGradNormOptions {
  /**
   * The p of the p-norm, a number > 0, or `'inf'` (also `Infinity`) for the largest absolute
   * entry. Default `2`.
   */
  readonly normType?: number | 'inf';
}

/** What {@link clipGradNorm} returns. */
export interface ClipGradNormResult<G> {
  /** The scaled gradients, new tensors in the form they came in (a map or a list). */
  readonly grads: G;
  /** The norm of all gradients together before clipping, a float32 scalar. */
  readonly totalNorm: tf.Scalar;
}

/** The gradient forms `applyGradients` and `tf.variableGrads` use. */
export type GradientCollection = tf.NamedTensorMap | readonly tf.Tensor[] | readonly NamedTensor[];

/**
 * Gradient clipping by global norm, as PyTorch 1.13's `torch.nn.utils.clip_grad_norm_` (Pascanu,
 * Mikolov and Bengio 2013, "On the difficulty of training recurrent neural networks"): the norm of
 * all gradients together, as if concatenated into one vector, is `total = ||(||g_1||, ...,
 * ||g_n||)||`, and every gradient is multiplied by `min(maxNorm / (total + 1e-6), 1)`. Like
 * PyTorch it always multiplies (by exactly 1 when below the threshold) rather than branching,
 * so nothing is read back to the host.
 *
 * Non-finite norms behave as PyTorch's default `error_if_nonfinite=False`: a NaN total makes every
 * gradient NaN, an infinite one gives a factor 0 (finite entries become 0, infinite ones NaN).
 * Read `totalNorm` to skip such a step yourself. Note that DINO's own `clip_gradients` clips each
 * parameter by its own norm (clip 3.0): call this once per gradient for that rule.
 *
 * @param grads - the gradients: a map by variable name (what `tf.variableGrads` returns), a list
 *   of tensors, or a list of `{ name, tensor }`. Float32; not disposed.
 * @param maxNorm - the largest allowed total norm, > 0.
 * @param options - `normType` (default `2`; `'inf'` for the max norm).
 * @returns `{ grads, totalNorm }`: new scaled gradients in the input's form and the total norm
 *   before clipping, a scalar tensor (the caller disposes both, e.g. inside a `tf.tidy`). An
 *   empty input gives an empty result and a total norm of 0.
 * @throws {@link ContrastiveError} when a gradient is not a live float32 tensor, `maxNorm` is not
 *   positive, or `normType` is neither a positive number nor `'inf'`.
 *
 * @example
 * <!-- snippet setup="objective" -->
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { adamw, clipGradNorm } from 'tfjs-contrastive';
 *
 * const optimizer = adamw({ learningRate: 1e-3 });
 * tf.tidy(() => {
 *   const { grads } = tf.variableGrads(() => loss());
 *   optimizer.applyGradients(clipGradNorm(grads, 1.0).grads);
 * });
 * ```
 */
export function clipGradNorm<G extends GradientCollection>(
  grads: G,
  maxNorm: number,
  options: ClipGradNormOptions = {},
): ClipGradNormResult<G> {
  const caller = 'clipGradNorm';
  checkNumber(caller, 'maxNorm', maxNorm, { greaterThan: 0 });
  const normType = options.normType ?? 2;
  const inf = normType === 'inf' || normType === Number.POSITIVE_INFINITY;
  if (!inf) {
    if (typeof normType === 'string') {
      throw new ContrastiveError({
        caller,
        argument: 'options.normType',
        expected: "a finite number > 0 or 'inf'",
        received: describeValue(normType),
      });
    }
    checkNumber(caller, 'options.normType', normType, { greaterThan: 0 });
  }
  const p = inf ? Number.POSITIVE_INFINITY : normType;

  let tensors: tf.Tensor[];
  let rebuild: (scaled: tf.Tensor[]) => G;
  if (Array.isArray(grads)) {
    const list = grads as readonly unknown[];
    const named = list.length > 0 && !(list[0] instanceof tf.Tensor);
    tensors = list.map((entry, i) => {
      const value = named ? (entry as Partial<NamedTensor> | null)?.tensor : entry;
      if (named && typeof (entry as Partial<NamedTensor> | null)?.name !== 'string') {
        throw new ContrastiveError({
          caller,
          argument: `grads[${i}]`,
          expected: 'a { name, tensor } entry like the others',
          received: describeValue(entry),
        });
      }
      checkTensor(caller, `grads[${i}]`, value, { dtype: 'float32' });
      return value;
    });
    rebuild = (scaled) =>
      (named
        ? scaled.map((tensor, i) => ({ name: (list[i] as NamedTensor).name, tensor }))
        : scaled) as unknown as G;
  } else {
    if (typeof grads !== 'object' || (grads as unknown) === null) {
      throw new ContrastiveError({
        caller,
        argument: 'grads',
        expected: 'a map of gradients by name or a list of gradients',
        received: describeValue(grads),
      });
    }
    const entries = Object.entries(grads as tf.NamedTensorMap);
    tensors = entries.map(([name, value]) => {
      checkTensor(caller, `grads['${name}']`, value, { dtype: 'float32' });
      return value;
    });
    rebuild = (scaled) =>
      Object.fromEntries(scaled.map((t, i) => [(entries[i] as [string, tf.Tensor])[0], t])) as G;
  }

  return tf.tidy(() => {
    // Empty gradients add nothing to a p-norm (and have no max).
    const norms = tensors.filter((g) => g.size > 0).map((g) => vectorNorm(g, p));
    let totalNorm: tf.Scalar;
    if (norms.length === 0) totalNorm = tf.scalar(0);
    else if (norms.length === 1) totalNorm = norms[0] as tf.Scalar;
    else totalNorm = vectorNorm(tf.stack(norms), p);
    const coef = tf.div(maxNorm, tf.add(totalNorm, 1e-6));
    // torch.clamp(coef, max=1): NaN stays NaN (tf.minimum's NaN handling differs by backend).
    const clamped = tf.where(tf.greater(coef, 1), tf.onesLike(coef), coef);
    return {
      grads: rebuild(tensors.map((g) => tf.mul(g, clamped))),
      totalNorm,
    } as unknown as tf.TensorContainer;
  }) as unknown as ClipGradNormResult<G>;
}

/** The p-norm of all entries of `x` (p = Infinity: the largest absolute entry, NaN if any is NaN). */
function vectorNorm(x: tf.Tensor, p: number): tf.Scalar {
  let norm: tf.Tensor;
  if (p === 2) norm = tf.sqrt(tf.sum(tf.square(x)));
  else if (p === 1) norm = tf.sum(tf.abs(x));
  else if (p === Number.POSITIVE_INFINITY) {
    // torch.max propagates NaN; say it explicitly rather than rely on each backend's Max.
    norm = tf.where(tf.any(tf.isNaN(x)), tf.scalar(Number.NaN), tf.max(tf.abs(x)));
  } else norm = tf.pow(tf.sum(tf.pow(tf.abs(x), p)), 1 / p);
  return norm as tf.Scalar;
}
