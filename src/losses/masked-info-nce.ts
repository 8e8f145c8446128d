import * as tf from '@tensorflow/tfjs-core';
import { checkSameShape, checkTensor } from '../core/index.js';
import { maskedLogSumExp, reduce, resolveReduction, type Reduction } from './reduction.js';

/** Options of {@link maskedInfoNce}. */
export interface MaskedInfoNceOptions {
  /**
   * [N, M] mask of the entries that take part in each row's softmax (the candidates); entries
   * outside it are neither positives nor negatives. Default: every entry. Boolean, or numbers
   * where non-zero means true.
   */
  readonly validMask?: tf.Tensor;
  /** `'mean'` (default) over the rows that have a valid positive, `'sum'`, or `'none'`. */
  readonly reduction?: Reduction;
}

function asBool(mask: tf.Tensor): tf.Tensor {
  return mask.dtype === 'bool' ? mask : tf.notEqual(mask, 0);
}

/**
 * The multi-positive InfoNCE core: for each row, the mean over its positives of the negative log
 * softmax, the softmax taken over the row's valid entries only.
 *
 * `loss_i = mean_{j in P(i)} [ logSumExp_{k valid} logits_ik - logits_ij ]`, with
 * `P(i)` = positive and valid entries of row i. It is the supervised contrastive loss of Khosla et
 * al. (2020, L_out^sup) when the positives are the same-label samples, NT-Xent when each row's one
 * positive is the other view, and MoCo's InfoNCE when column 0 is the positive; the single-positive
 * losses of this library compute those cases directly (faster, no masks) and agree with it to
 * float32 precision.
 *
 * Numerics: invalid entries are replaced by `-Infinity` (never by a large finite number, which can
 * overflow under a small temperature) and the row maximum is subtracted before `exp`, so any
 * finite logits give a finite loss and gradient. A row without a valid positive contributes 0 and
 * is left out of the mean (the reference implementation of SupCon divides by zero there).
 *
 * @param logits - [N, M] float32 scores, already divided by the temperature.
 * @param positiveMask - [N, M] mask of the positives of each row (boolean, or non-zero = true).
 * @param options - `validMask` and `reduction`.
 * @returns a scalar (mean over rows with a positive, or sum), or [N] per-row losses with
 *   `reduction: 'none'`. Gradient flows into `logits`.
 * @throws {@link ContrastiveError} when `logits` is not a float32 [N, M] tensor or a mask has
 *   another shape.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { maskedInfoNce } from 'tfjs-contrastive';
 *
 * // Two positives in row 0, one in row 1.
 * const logits = tf.tensor2d([[2, 1, 0], [0, 3, 1]]);
 * const positives = tf.tensor2d([[1, 1, 0], [0, 1, 0]], undefined, 'bool');
 * maskedInfoNce(logits, positives).print();
 * ```
 */
export function maskedInfoNce(
  logits: tf.Tensor2D,
  positiveMask: tf.Tensor2D,
  options: MaskedInfoNceOptions = {},
): tf.Tensor {
  const caller = 'maskedInfoNce';
  checkTensor(caller, 'logits', logits, { rank: 2, dtype: 'float32', layout: '[N, M]' });
  checkTensor(caller, 'positiveMask', positiveMask, { rank: 2, layout: '[N, M]' });
  checkSameShape(caller, 'positiveMask', positiveMask, 'logits', logits);
  const { validMask } = options;
  if (validMask !== undefined) {
    checkTensor(caller, 'options.validMask', validMask, { rank: 2, layout: '[N, M]' });
    checkSameShape(caller, 'options.validMask', validMask, 'logits', logits);
  }
  const reduction = resolveReduction(caller, options.reduction);
  return tf.tidy(() => {
    const valid = validMask === undefined ? undefined : asBool(validMask);
    const positive =
      valid === undefined ? asBool(positiveMask) : tf.logicalAnd(asBool(positiveMask), valid);
    const lse = maskedLogSumExp(logits, valid);
    const logProb = tf.sub(logits, lse);
    const count = tf.sum(tf.cast(positive, 'float32'), 1);
    const total = tf.sum(tf.where(positive, logProb, tf.zerosLike(logProb)), 1);
    const perRow = tf.div<tf.Tensor1D>(tf.neg(total), tf.maximum(count, 1));
    if (reduction !== 'mean') return reduce(perRow, reduction);
    const rowsWithPositive = tf.sum(tf.cast(tf.greater(count, 0), 'float32'));
    return tf.div(tf.sum(perRow), tf.maximum(rowsWithPositive, 1));
  });
}
