import * as tf from '@tensorflow/tfjs-core';
import { checkTensor, l2Normalize } from '../core/index.js';
import { chunkedLogSumExp, chunkedPositiveCounts } from './chunked.js';
import { checkInBatchSize } from './info-nce.js';
import { maskedInfoNce } from './masked-info-nce.js';
import {
  reduce,
  resolveChunkSize,
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
  /**
   * Compare the N anchors with at most this many of the N embeddings (columns) at a time: an
   * online logSumExp over the chunks, the positives (same label, not the anchor) and the self
   * exclusion masked chunk by chunk from the labels, and a backward pass that recomputes each
   * chunk's logits, so peak memory is O(N x chunkSize) instead of O(N x N) (no [N, N] mask either),
   * for one more product per step. The same loss and gradients as unchunked, to float32
   * rounding. A positive integer. Default: none (unchunked).
   */
  readonly chunkSize?: number;
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
 * @param options - `temperature` (0.1), `normalize` (true), `reduction` ('mean'), `chunkSize`
 *   (none: unchunked).
 * @returns a scalar, or [N] per-anchor losses with `reduction: 'none'`.
 * @throws {@link ContrastiveError} when `embeddings` is not [N, D] float32, N < 2, `labels` is
 *   not N integers, temperature <= 0, or `chunkSize` is not a positive integer.
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
 * // Chunked: the same loss, [4B, 8] logits (and masks) at a time instead of [4B, 4B].
 * const chunked = supConLoss(tf.concat(views), ids, { temperature: 0.5, chunkSize: 8 });
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
  const chunkSize = resolveChunkSize(caller, options.chunkSize);
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
    if (chunkSize !== undefined) return supConChunked(e, lab, temperature, reduction, chunkSize);
    const logits = similarity(tf.div<tf.Tensor2D>(e, temperature), e);
    const notSelf = tf.logicalNot(shiftedEye(n));
    const sameLabel = tf.equal(tf.reshape(lab, [n, 1]), tf.reshape(lab, [1, n]));
    return maskedInfoNce(logits, tf.logicalAnd<tf.Tensor2D>(sameLabel, notSelf), {
      validMask: notSelf,
      reduction,
    });
  });
}

/**
 * SupCon over column chunks: per anchor `lse_i - (sum_{p in P(i)} s_ip) / |P(i)|`, which is
 * maskedInfoNce's `-(sum_p (s_ip - lse_i)) / |P(i)|`; anchors without a positive give 0 and are
 * left out of the mean, as there.
 */
function supConChunked(
  e: tf.Tensor2D,
  labels: tf.Tensor1D,
  temperature: number,
  reduction: Reduction,
  chunkSize: number,
): tf.Tensor {
  const count = chunkedPositiveCounts(labels, chunkSize);
  const hasPositive = tf.cast(tf.greater(count, 0), 'float32');
  const invCount = tf.div<tf.Tensor1D>(1, tf.maximum(count, 1));
  const perRow = tf.mul<tf.Tensor1D>(
    chunkedLogSumExp(
      tf.div<tf.Tensor2D>(e, temperature),
      { trainable: e },
      { chunkSize, excludeSelf: true, positives: { labels, invCount } },
    ),
    hasPositive,
  );
  if (reduction !== 'mean') return reduce(perRow, reduction);
  return tf.div(tf.sum(perRow), tf.maximum(tf.sum(hasPositive), 1));
}
