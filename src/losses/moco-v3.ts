import * as tf from '@tensorflow/tfjs-core';
import { l2Normalize } from '../core/index.js';
import { checkInBatchSize, checkPair, infoNcePerQuery } from './info-nce.js';
import { reduce, resolveReduction, resolveTemperature, type Reduction } from './reduction.js';

/** Options of {@link mocoV3Loss}. */
export interface MocoV3Options {
  /** Softmax temperature tau. Default `0.2` (MoCo v3 with ViT; its ResNet setting is 1.0). */
  readonly temperature?: number;
  /** `'mean'` (default), `'sum'` or `'none'` (the N per-query losses, each scaled by 2 tau). */
  readonly reduction?: Reduction;
}

/**
 * One direction of MoCo v3's contrastive loss (Chen, Xie and He 2021, facebookresearch/moco-v3
 * `ctr`): in-batch InfoNCE of L2-normalised queries against L2-normalised keys, multiplied by
 * 2 tau: `CE(q k^T / tau, arange(N)) * 2 tau`.
 *
 * The 2 tau factor is the official code's: it makes the gradient's scale independent of tau
 * (the 1/tau of the logits cancels) and the 2 compensates for averaging the two symmetric terms.
 * The full MoCo v3 loss is symmetric: `mocoV3Loss(q1, k2) + mocoV3Loss(q2, k1)`, where `q` comes
 * from the base encoder with its predictor and `k` from the momentum encoder (wrap `k` in
 * {@link stopGradient}). Inputs are always normalised, as in the original.
 *
 * @param q - [N, D] float32 queries.
 * @param k - [N, D] float32 keys, row i the positive of query i.
 * @param options - `temperature` (0.2), `reduction` ('mean').
 * @returns a scalar, or [N] per-query losses with `reduction: 'none'`.
 * @throws {@link ContrastiveError} when the inputs are not [N, D] float32 tensors of one shape,
 *   N < 2, or temperature <= 0.
 *
 * @example
 * <!-- snippet setup="embeddings" -->
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { mocoV3Loss, stopGradient } from 'tfjs-contrastive';
 *
 * // p1, p2: [N, D] predictions of the two views (online network); z1, z2: the momentum network's
 * // projections of them. Each view's prediction is matched with the other view's key.
 * const loss = tf.add(
 *   mocoV3Loss(p1, stopGradient(z2), { temperature: 0.2 }),
 *   mocoV3Loss(p2, stopGradient(z1), { temperature: 0.2 }),
 * );
 * ```
 */
export function mocoV3Loss(q: tf.Tensor2D, k: tf.Tensor2D, options: MocoV3Options = {}): tf.Tensor {
  const caller = 'mocoV3Loss';
  const [n] = checkPair(caller, 'q', q, 'k', k);
  checkInBatchSize(caller, 'q', q, n);
  const temperature = resolveTemperature(caller, options.temperature, 0.2);
  const reduction = resolveReduction(caller, options.reduction);
  return tf.tidy(() => {
    const perQuery = infoNcePerQuery(l2Normalize(q), l2Normalize(k), undefined, temperature);
    return reduce(tf.mul<tf.Tensor1D>(perQuery, 2 * temperature), reduction);
  });
}
