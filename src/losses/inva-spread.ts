import * as tf from '@tensorflow/tfjs-core';
import { l2Normalize, stopGradient } from '../core/index.js';
import { checkInBatchSize, checkPair } from './info-nce.js';
import {
  log1mExp,
  maskedLogSumExp,
  nearCertain,
  reduce,
  resolveFlag,
  resolveReduction,
  resolveTemperature,
  shiftedEye,
  similarity,
  type Reduction,
} from './reduction.js';

/** Options of {@link invaSpreadLoss}. */
export interface InvaSpreadOptions {
  /** Softmax temperature tau. Default `0.1` (Ye et al.). */
  readonly temperature?: number;
  /** L2-normalise the features first (the paper's features are normalised). Default `true`. */
  readonly normalize?: boolean;
  /** `'mean'` over the 2B anchors (default), `'sum'`, or `'none'` (2B per-anchor losses). */
  readonly reduction?: Reduction;
}

/**
 * The instance-spreading criterion of Invariant and Spreading Instance Feature (Ye et al. CVPR
 * 2019, Eq. 7-8, mangye16/Unsupervised_Embedding_Learning): an augmented view must be classified
 * as its own instance, and every other instance must not be.
 *
 * For the 2B anchors x_i of two views, with x_+ the other view of the same image and
 * `P_ij = exp(x_i . x_j / tau) / sum_{k != i} exp(x_i . x_k / tau)`:
 * `l_i = -log P_{i+} - sum_{j != i, +} log(1 - P_ij)`; the loss is the mean of l over the 2B
 * anchors. As in the authors' code, only the anchor side carries gradient: the features it is
 * compared with enter as constants. `log(1 - P)` is computed in the log domain (log1mexp), never
 * as 1 - P.
 *
 * @param z1 - [B, D] float32 features of the first views.
 * @param z2 - [B, D] float32 features of the second views, row i the same image.
 * @param options - `temperature` (0.1), `normalize` (true), `reduction` ('mean').
 * @returns a scalar, or [2B] per-anchor losses with `reduction: 'none'`.
 * @throws {@link ContrastiveError} when the views are not [B, D] float32 tensors of one shape,
 *   B < 2, or temperature <= 0.
 *
 * @example
 * <!-- snippet setup="views" -->
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { invaSpreadLoss } from 'tfjs-contrastive';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * const encoder = smallConvNet({ inputShape: [32, 32, 3], widths: [16, 32] }); // [B, 32]
 * // view1, view2: [B, 32, 32, 3], two augmentations of the same B images. Training mode: batch
 * // norm normalises with the batch's statistics (and updates its moving ones).
 * const embed = (x: tf.Tensor4D) => encoder.apply(x, { training: true }) as tf.Tensor2D;
 * const loss = invaSpreadLoss(embed(view1), embed(view2), { temperature: 0.1 });
 * ```
 */
export function invaSpreadLoss(
  z1: tf.Tensor2D,
  z2: tf.Tensor2D,
  options: InvaSpreadOptions = {},
): tf.Tensor {
  const caller = 'invaSpreadLoss';
  const [b] = checkPair(caller, 'z1', z1, 'z2', z2);
  checkInBatchSize(caller, 'z1', z1, b);
  const temperature = resolveTemperature(caller, options.temperature, 0.1);
  const normalize = resolveFlag(caller, 'options.normalize', options.normalize, true);
  const reduction = resolveReduction(caller, options.reduction);
  return tf.tidy(() => {
    const x = tf.concat([z1, z2], 0);
    const xn = normalize ? l2Normalize(x) : x;
    const logits = similarity(tf.div<tf.Tensor2D>(xn, temperature), stopGradient(xn));
    const self = shiftedEye(2 * b);
    const notSelf = tf.logicalNot(self);
    const positive = shiftedEye(2 * b, b);
    const negative = tf.logicalAnd(notSelf, tf.logicalNot(positive));
    const lse = maskedLogSumExp(logits, notSelf);
    const logP = tf.sub(logits, lse);
    const zero = tf.zerosLike(logP);
    const logPositive = tf.sum(tf.where(positive, logP, zero), 1);
    // log(1 - P_ij) = log1mexp(log P_ij), except where P_ij > 0.999 (at most one entry a row):
    // there 1 - P_ij, the mass of the other entries, is computed directly as
    // logSumExp_{k != i, j} - logSumExp_{k != i}, which stays exact when it underflows float32
    // (a low temperature on unnormalised features), where log1mexp would give -Infinity.
    // `certain` is off the tape, so it is only ever used as a where() condition (a logical op
    // on it would need a gradient that tfjs does not have).
    const certain = nearCertain(logP);
    const minusInf = tf.fill(logP.shape, -Infinity);
    const lseOthers = maskedLogSumExp(tf.where(certain, minusInf, logits), notSelf);
    const logRest = tf.where(
      negative,
      tf.where(
        certain,
        tf.broadcastTo(tf.sub(lseOthers, lse), logP.shape),
        log1mExp(tf.where(certain, tf.fill(logP.shape, -1), logP)),
      ),
      zero,
    );
    const perAnchor = tf.neg(tf.add<tf.Tensor1D>(logPositive, tf.sum(logRest, 1)));
    return reduce(perAnchor, reduction);
  });
}
