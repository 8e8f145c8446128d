import * as tf from '@tensorflow/tfjs-core';
import { checkTensor, l2Normalize } from '../core/index.js';
import { checkInBatchSize } from './info-nce.js';
import { maskedInfoNce } from './masked-info-nce.js';
import {
  resolveFlag,
  resolveReduction,
  resolveTemperature,
  shiftedEye,
  similarity,
  type Reduction,
} from './reduction.js';

/** Options of {@link supConLoss}. */
export interface SupConOptions {
  /** Softmax temperature tau. Default `0.1` (Khosla et al.). */
  readonly temperature?: number;
  /** L2-normalise the embeddings first. Default `true`. */
  readonly normalize?: boolean;
  /** `'mean'` over anchors with a positive (default), `'sum'`, or `'none'` (N per-anchor losses). */
  readonly reduction?: Reduction;
}

/**
 * Supervised contrastive loss (Khosla et al. 2020, L_out^sup, Eq. 2): every other sample with the
 * anchor's label is a positive, and the anchor's loss is the mean over its positives of
 * `-log exp(z_i . z_p / tau) / sum_{a != i} exp(z_i . z_a / tau)`.
 *
 * With instance ids as labels (each image's views share an id) it is NT-Xent generalised to any
 * number of views, i.e. multi-crop NT-Xent: stack the V views' projections into [V * B, D] and
 * pass the ids `[0..B-1]` repeated V times. For two views it equals {@link ntXentLoss}.
 * An anchor whose label no other sample has contributes 0 and is left out of the mean.
 *
 * @param embeddings - [N, D] float32 embeddings (projections).
 * @param labels - [N] integer labels: an int32 tensor or an array of integers.
 * @param options - `temperature` (0.1), `normalize` (true), `reduction` ('mean').
 * @returns a scalar, or [N] per-anchor losses with `reduction: 'none'`.
 * @throws {@link ContrastiveError} when `embeddings` is not [N, D] float32, N < 2, `labels` is
 *   not N integers, or temperature <= 0.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { supConLoss } from 'tfjs-contrastive';
 *
 * // Supervised: projections [B, 128] and their class labels.
 * const B = 8;
 * const projections = tf.randomNormal<tf.Rank.R2>([B, 128]);
 * const labels = [0, 1, 0, 2, 1, 2, 0, 1];
 * const loss = supConLoss(projections, labels, { temperature: 0.1 });
 * // Multi-crop NT-Xent: projections of 4 views of the same B images, instance ids as labels.
 * const views = [1, 2, 3, 4].map((seed) => tf.randomNormal<tf.Rank.R2>([B, 128], 0, 1, 'float32', seed));
 * const ids = views.flatMap(() => [...Array(B).keys()]);
 * const multi = supConLoss(tf.concat(views), ids, { temperature: 0.5 });
 * ```
 */
export function supConLoss(
  embeddings: tf.Tensor2D,
  labels: tf.Tensor1D | readonly number[] | Int32Array,
  options: SupConOptions = {},
): tf.Tensor {
  const caller = 'supConLoss';
  checkTensor(caller, 'embeddings', embeddings, { rank: 2, dtype: 'float32', layout: '[N, D]' });
  const n = embeddings.shape[0];
  checkInBatchSize(caller, 'embeddings', embeddings, n);
  const temperature = resolveTemperature(caller, options.temperature, 0.1);
  const normalize = resolveFlag(caller, 'options.normalize', options.normalize, true);
  const reduction = resolveReduction(caller, options.reduction);
  const labelTensor = labels instanceof tf.Tensor ? labels : undefined;
  if (labelTensor !== undefined) {
    checkTensor(caller, 'labels', labelTensor, { shape: [n], dtype: 'int32', layout: '[N]' });
  } else {
    const arr = Array.from(labels as ArrayLike<number>);
    if (arr.length !== n || !arr.every((v) => Number.isInteger(v))) {
      checkTensor(caller, 'labels', labels, { shape: [n], dtype: 'int32', layout: '[N]' });
    }
  }
  return tf.tidy(() => {
    const lab = labelTensor ?? tf.tensor1d(Array.from(labels as ArrayLike<number>), 'int32');
    const e = normalize ? l2Normalize(embeddings) : embeddings;
    const logits = similarity(tf.div<tf.Tensor2D>(e, temperature), e);
    const notSelf = tf.logicalNot(shiftedEye(n));
    const sameLabel = tf.equal(tf.reshape(lab, [n, 1]), tf.reshape(lab, [1, n]));
    return maskedInfoNce(logits, tf.logicalAnd<tf.Tensor2D>(sameLabel, notSelf), {
      validMask: notSelf,
      reduction,
    });
  });
}
