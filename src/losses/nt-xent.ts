import * as tf from '@tensorflow/tfjs-core';
import { l2Normalize } from '../core/index.js';
import { chunkedLogSumExp } from './chunked.js';
import { checkInBatchSize, checkPair } from './info-nce.js';
import {
  crossEntropyFromTarget,
  reduce,
  resolveChunkSize,
  resolveFlag,
  resolveReduction,
  resolveTemperature,
  rowDot,
  selfExclusion,
  similarity,
  type Reduction,
} from './reduction.js';

/** Options of {@link ntXentLoss}. */
export interface NtXentOptions {
  /** Softmax temperature tau. Default `0.5` (SimCLR on CIFAR; the ImageNet setting is 0.1). */
  readonly temperature?: number;
  /** L2-normalise the projections first (cosine similarity, as in SimCLR). Default `true`. */
  readonly normalize?: boolean;
  /** `'mean'` over the 2N anchors (default), `'sum'`, or `'none'` (the 2N per-anchor losses). */
  readonly reduction?: Reduction;
  /**
   * Compare the 2N anchors with at most this many of the 2N projections (columns) at a time: an
   * online logSumExp over the chunks (the anchor's own column excluded in whichever chunk holds
   * it) and a backward pass that recomputes each chunk's logits, so peak memory is
   * O(2N x chunkSize) instead of O(2N x 2N), for one more product per step. The same loss and
   * gradients as unchunked, to float32 rounding. A positive integer. Default: none (unchunked).
   */
  readonly chunkSize?: number;
}

/**
 * NT-Xent, the normalised temperature-scaled cross entropy of SimCLR (Chen et al. 2020, Eq. 1).
 *
 * The 2N projections of two views of N images are compared all against all; for each of the 2N
 * anchors the other view of the same image is the positive and the remaining 2N - 2 projections
 * are the negatives; the anchor's similarity with itself is excluded.
 * `l(i, j) = -log exp(sim(z_i, z_j) / tau) / sum_{k != i} exp(sim(z_i, z_k) / tau)`, and the loss
 * is the mean of l over the 2N anchors.
 *
 * Convention: this is the mean over the 2N anchors, as in most PyTorch libraries (lightly's
 * NTXentLoss, solo-learn). google-research/simclr reports the sum of the two directions' means,
 * which is 2x this value. Gradient flows into both views. With all projections identical the loss
 * is log(2N - 1).
 *
 * @param z1 - [N, D] float32 projections of the first views.
 * @param z2 - [N, D] float32 projections of the second views, row i the same image as `z1` row i.
 * @param options - `temperature` (0.5), `normalize` (true), `reduction` ('mean'), `chunkSize`
 *   (none: unchunked).
 * @returns a scalar, or [2N] per-anchor losses (the N anchors of `z1`, then those of `z2`) with
 *   `reduction: 'none'`.
 * @throws {@link ContrastiveError} when the views are not [N, D] float32 tensors of one shape,
 *   N < 2, temperature <= 0, or `chunkSize` is not a positive integer.
 *
 * @example
 * <!-- snippet setup="views" -->
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { ntXentLoss, trainableVariables } from 'tfjs-contrastive';
 * import { simclrV1Projector, smallConvNet } from 'tfjs-contrastive/layers';
 *
 * const encoder = smallConvNet({ inputShape: [32, 32, 3], widths: [16, 32] }); // [B, 32]
 * const head = simclrV1Projector({ inputDim: 32 }); // [B, 128]
 * const optimizer = tf.train.adam(1e-3);
 * // view1, view2: [B, 32, 32, 3], two augmentations of the same B images. Training mode, so that
 * // the batch norms of the encoder and the head use (and update) batch statistics.
 * const embed = (x: tf.Tensor4D) =>
 *   head.apply(encoder.apply(x, { training: true }), { training: true }) as tf.Tensor2D;
 * const loss = optimizer.minimize(
 *   () => ntXentLoss(embed(view1), embed(view2), { temperature: 0.5 }) as tf.Scalar,
 *   true,
 *   trainableVariables(encoder, head),
 * );
 * // A large batch in bounded memory: the same loss, [2B, 8] logits at a time.
 * const chunked = ntXentLoss(embed(view1), embed(view2), { temperature: 0.5, chunkSize: 8 });
 * ```
 */
export function ntXentLoss(
  z1: tf.Tensor2D,
  z2: tf.Tensor2D,
  options: NtXentOptions = {},
): tf.Tensor {
  const caller = 'ntXentLoss';
  const [n] = checkPair(caller, 'z1', z1, 'z2', z2);
  checkInBatchSize(caller, 'z1', z1, n);
  const temperature = resolveTemperature(caller, options.temperature, 0.5);
  const normalize = resolveFlag(caller, 'options.normalize', options.normalize, true);
  const reduction = resolveReduction(caller, options.reduction);
  const chunkSize = resolveChunkSize(caller, options.chunkSize);
  return tf.tidy(() => {
    const z = tf.concat([z1, z2], 0);
    const zn = normalize ? l2Normalize(z) : z;
    const zt = tf.div<tf.Tensor2D>(zn, temperature);
    if (chunkSize !== undefined) {
      const partner = tf.concat([tf.slice(zn, [n, 0], [n, -1]), tf.slice(zn, [0, 0], [n, -1])], 0);
      const lse = chunkedLogSumExp(zt, { trainable: zn }, { chunkSize, excludeSelf: true });
      return reduce(tf.sub<tf.Tensor1D>(lse, rowDot(zt, partner)), reduction);
    }
    // Self-similarity is excluded with -Infinity, which cannot overflow (a large finite mask
    // value can, under a small temperature and unnormalised inputs).
    const logits = tf.add<tf.Tensor2D>(similarity(zt, zn), selfExclusion(2 * n));
    const partner = tf.concat([tf.slice(zn, [n, 0], [n, -1]), tf.slice(zn, [0, 0], [n, -1])], 0);
    const perAnchor = crossEntropyFromTarget(logits, rowDot(zt, partner));
    return reduce(perAnchor, reduction);
  });
}
