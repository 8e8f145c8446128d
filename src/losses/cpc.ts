import * as tf from '@tensorflow/tfjs-core';
import { checkOneOf, checkTensor, l2Normalize } from '../core/index.js';
import { checkInBatchSize, infoNcePerQuery } from './info-nce.js';
import {
  crossEntropyFromTarget,
  reduce,
  resolveFlag,
  resolveReduction,
  resolveTemperature,
  type Reduction,
} from './reduction.js';

/** Options of {@link cpcLoss}. */
export interface CpcOptions {
  /**
   * Where each prediction's negatives come from. `'batch'` (default): every other position of every
   * sequence in the batch (B * S - 1 negatives). `'sameStep'`: the other sequences at the same
   * step (B - 1 negatives), for rank-3 inputs.
   */
  readonly negatives?: 'batch' | 'sameStep';
  /** Softmax temperature. Default `1`: the paper's bilinear score `exp(z^T W_k c)` is unscaled. */
  readonly temperature?: number;
  /** L2-normalise predictions and targets first. Default `false`, as in the paper. */
  readonly normalize?: boolean;
  /** `'mean'` over positions (default), `'sum'`, or `'none'` (B * S values, index b * S + s). */
  readonly reduction?: Reduction;
}

/**
 * Contrastive Predictive Coding's InfoNCE (van den Oord, Li and Vinyals 2018, Eq. 4) for one
 * prediction offset k: the prediction `W_k c_t` must score the true future latent `z_{t+k}`
 * higher than the negatives, `-log exp(z_{t+k}^T W_k c_t) / sum_j exp(z_j^T W_k c_t)`.
 *
 * The caller applies its per-offset matrices (a separate `W_k` for each k, e.g. a dense layer
 * without bias) and calls this once per k; the total loss is the sum or mean over k. Positions
 * without a future at offset k should be sliced off before the call.
 *
 * @param predictions - [B, S, D] float32 predictions `W_k c_t` (or [N, D]).
 * @param targets - float32 targets `z_{t+k}` of the same shape, aligned with the predictions.
 * @param options - `negatives` ('batch'), `temperature` (1), `normalize` (false), `reduction` ('mean').
 * @returns a scalar, or the per-position losses with `reduction: 'none'`.
 * @throws {@link ContrastiveError} when the inputs are not rank 2 or 3 float32 tensors of one
 *   shape, there are fewer than 2 candidates per prediction, or temperature <= 0.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { cpcLoss } from 'tfjs-contrastive';
 *
 * // c: [B, T, 256] context (the autoregressive model's), z: [B, T, 512] latents (the encoder's)
 * const T = 12;
 * const c = tf.randomNormal<tf.Rank.R3>([4, T, 256]);
 * const z = tf.randomNormal<tf.Rank.R3>([4, T, 512]);
 * // one linear predictor W_k per offset: predict k = 1..3 steps ahead
 * const predictors = [1, 2, 3].map(() => tfl.layers.dense({ units: 512, useBias: false }));
 * const terms = predictors.map((W, i) => {
 *   const k = i + 1;
 *   const pred = W.apply(tf.slice(c, [0, 0, 0], [-1, T - k, -1])) as tf.Tensor3D;
 *   return cpcLoss(pred, tf.slice(z, [0, k, 0], [-1, T - k, -1]));
 * });
 * const loss = tf.addN(terms);
 * ```
 */
export function cpcLoss(
  predictions: tf.Tensor2D | tf.Tensor3D,
  targets: tf.Tensor2D | tf.Tensor3D,
  options: CpcOptions = {},
): tf.Tensor {
  const caller = 'cpcLoss';
  checkTensor(caller, 'predictions', predictions, {
    rank: [2, 3],
    dtype: 'float32',
    layout: '[B, S, D] or [N, D]',
  });
  checkTensor(caller, 'targets', targets, {
    shape: predictions.shape,
    dtype: 'float32',
    layout: "like 'predictions'",
  });
  const mode = options.negatives ?? 'batch';
  checkOneOf(caller, 'options.negatives', mode, ['batch', 'sameStep']);
  const temperature = resolveTemperature(caller, options.temperature, 1);
  const normalize = resolveFlag(caller, 'options.normalize', options.normalize, false);
  const reduction = resolveReduction(caller, options.reduction);
  const d = predictions.shape[predictions.rank - 1] as number;
  const rows = predictions.size / d;
  const sameStep = mode === 'sameStep' && predictions.rank === 3;
  const batch = predictions.shape[0];
  checkInBatchSize(caller, 'predictions', predictions, sameStep ? batch : rows);
  return tf.tidy(() => {
    const prep = <T extends tf.Tensor>(x: T): T => (normalize ? l2Normalize(x) : x);
    let perPosition: tf.Tensor1D;
    if (!sameStep) {
      perPosition = infoNcePerQuery(
        prep(tf.reshape<tf.Rank.R2>(predictions, [rows, d])),
        prep(tf.reshape<tf.Rank.R2>(targets, [rows, d])),
        undefined,
        temperature,
      );
    } else {
      // [S, B, D]: one B x B softmax per step.
      const p = tf.div<tf.Tensor3D>(prep(tf.transpose(predictions, [1, 0, 2])), temperature);
      const t = prep(tf.transpose(targets, [1, 0, 2])) as tf.Tensor3D;
      const steps = p.shape[0];
      const logits = tf.matMul(p, t, false, true); // [S, B, B]
      const positive = tf.sum(tf.mul(p, t), 2); // [S, B]
      const ce = crossEntropyFromTarget(
        tf.reshape<tf.Rank.R2>(logits, [steps * batch, batch]),
        tf.reshape<tf.Rank.R1>(positive, [steps * batch]),
      );
      perPosition = tf.reshape<tf.Rank.R1>(tf.transpose(tf.reshape(ce, [steps, batch])), [
        batch * steps,
      ]);
    }
    return reduce(perPosition, reduction);
  });
}
