import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError, checkNumber, checkTensor, describeValue } from '../core/index.js';
import { resolveTemperature, sumOf } from './reduction.js';
import { resolveSinkhornOptions, sinkhorn, type SinkhornOptions } from './sinkhorn.js';

/** Options of {@link swavLoss}. */
export interface SwavOptions extends SinkhornOptions {
  /** Temperature of the softmax over prototypes. Default `0.1`. */
  readonly temperature?: number;
  /** The crops whose codes are computed and predicted (the global crops). Default `[0, 1]`. */
  readonly assignCrops?: readonly number[];
  /**
   * Scores of the queue's stored features against the current prototypes, one [Q, K] tensor per
   * entry of `assignCrops`: they join the Sinkhorn input of that crop (more samples for the
   * equipartition) but are not predicted. Constants.
   */
  readonly queueScoresPerCrop?: readonly tf.Tensor2D[];
}

/**
 * SwAV's swapped prediction loss (Caron et al. 2020, Eq. 1-2, facebookresearch/swav
 * main_swav.py): the codes of one crop, computed by {@link sinkhorn}, are predicted from every
 * other crop of the same image.
 *
 * For each assigned crop s (default the two global crops) with codes q_s, the loss is the mean over
 * the other V - 1 crops t of `-sum_k q_s,k log softmax(scores_t / tau)_k`, averaged over the batch;
 * the total is the mean over the assigned crops. Codes come only from the assigned crops, as in
 * the official code (multi-crop: small crops are predicted, never assigned). With a queue, the
 * queue's scores are appended to the Sinkhorn input of the matching assigned crop and their codes
 * discarded.
 *
 * @param scoresPerCrop - V >= 2 tensors [B, K]: each crop's L2-normalised features times the
 *   L2-normalised prototypes, global crops first.
 * @param options - `temperature` (0.1), `assignCrops` ([0, 1]), `epsilon` (0.05), `iterations`
 *   (3), `logDomain` (true), `queueScoresPerCrop`.
 * @returns a scalar. Gradient flows into the scores of every crop through the predictions; the
 *   codes are constants.
 * @throws {@link ContrastiveError} when fewer than 2 crops are given, their shapes differ, an
 *   assigned crop index is out of range or repeated, the queue scores do not match, or an option
 *   is out of range.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { l2Normalize, swavLoss } from 'tfjs-contrastive';
 *
 * // features: 2 global + 6 local crops, each [B, 128]; prototypes: [3000, 128]
 * const features = [1, 2, 3, 4, 5, 6, 7, 8].map((s) => tf.randomNormal<tf.Rank.R2>([16, 128], 0, 1, 'float32', s));
 * const prototypes = tf.randomNormal<tf.Rank.R2>([3000, 128]);
 * const c = l2Normalize(prototypes);
 * const scores = features.map((f) => tf.matMul<tf.Tensor2D>(l2Normalize(f), c, false, true));
 * const loss = swavLoss(scores, { temperature: 0.1, epsilon: 0.05 });
 * ```
 */
export function swavLoss(
  scoresPerCrop: readonly tf.Tensor2D[],
  options: SwavOptions = {},
): tf.Tensor {
  const caller = 'swavLoss';
  const list: unknown = scoresPerCrop;
  if (!Array.isArray(list) || list.length < 2) {
    throw new ContrastiveError({
      caller,
      argument: 'scoresPerCrop',
      expected: 'an array of at least 2 [B, K] tensors (one per crop)',
      received: describeValue(scoresPerCrop),
    });
  }
  checkTensor(caller, 'scoresPerCrop[0]', scoresPerCrop[0], {
    rank: 2,
    dtype: 'float32',
    layout: '[B, K]',
  });
  const [b, k] = scoresPerCrop[0].shape;
  scoresPerCrop.forEach((s, i) => {
    checkTensor(caller, `scoresPerCrop[${i}]`, s, {
      shape: [b, k],
      dtype: 'float32',
      layout: '[B, K]',
    });
  });
  const temperature = resolveTemperature(caller, options.temperature, 0.1);
  const sk = resolveSinkhornOptions(caller, options);
  const assign = options.assignCrops ?? [0, 1];
  const assignList: unknown = assign;
  if (!Array.isArray(assignList) || assign.length === 0 || new Set(assign).size !== assign.length) {
    throw new ContrastiveError({
      caller,
      argument: 'options.assignCrops',
      expected: 'a non-empty array of distinct crop indices',
      received: describeValue(assign),
    });
  }
  assign.forEach((a, i) => {
    checkNumber(caller, `options.assignCrops[${i}]`, a, {
      integer: true,
      min: 0,
      max: scoresPerCrop.length - 1,
    });
  });
  const queue = options.queueScoresPerCrop;
  if (queue !== undefined) {
    const q: unknown = queue;
    if (!Array.isArray(q) || queue.length !== assign.length) {
      throw new ContrastiveError({
        caller,
        argument: 'options.queueScoresPerCrop',
        expected: `one [Q, ${k}] tensor per assigned crop (${assign.length})`,
        received: describeValue(queue),
      });
    }
    queue.forEach((t, i) => {
      checkTensor(caller, `options.queueScoresPerCrop[${i}]`, t, {
        shape: [null, k],
        dtype: 'float32',
        layout: `[Q, ${k}]`,
      });
    });
  }
  return tf.tidy(() => {
    const logProbs = scoresPerCrop.map((s) => tf.logSoftmax(tf.div(s, temperature)));
    const terms = assign.map((crop, i) => {
      const own = scoresPerCrop[crop] as tf.Tensor2D;
      const input = queue === undefined ? own : tf.concat([own, queue[i] as tf.Tensor2D], 0);
      const all = sinkhorn(input, sk);
      const codes = queue === undefined ? all : tf.slice(all, [0, 0], [b, k]);
      const predictions = logProbs
        .filter((_, v) => v !== crop)
        .map((lp) => tf.mean(tf.neg(tf.sum(tf.mul(codes, lp), 1))));
      return tf.div(sumOf(predictions), predictions.length);
    });
    return tf.div(sumOf(terms), terms.length);
  });
}
