import * as tf from '@tensorflow/tfjs-core';
import {
  ContrastiveError,
  checkOneOf,
  checkTensor,
  describeValue,
  l2Normalize,
  stopGradient,
} from '../core/index.js';
import { checkInBatchSize, infoNcePerQuery, negativeChunks } from './info-nce.js';
import { resolveFlag, resolveTemperature, sumOf } from './reduction.js';

/** Options of {@link cmcLoss}. */
export interface CmcOptions {
  /** Softmax temperature tau. Default `0.07` (CMC). */
  readonly temperature?: number;
  /**
   * Negatives for each view, e.g. the entries drawn from that view's memory bank: entry j is a
   * [K_j, D] tensor (or a list of chunks) used as the negatives whenever view j provides the
   * keys. Constants, like memory-bank entries: no gradient flows into them. Default: in-batch
   * negatives (the other samples of view j).
   */
  readonly negativesPerView?: readonly (tf.Tensor2D | readonly tf.Tensor2D[])[];
  /**
   * Positive keys for each view, e.g. the batch's own entries in that view's memory bank: entry j
   * is an [N, D] tensor, row r the positive of sample r, used instead of `views[j]` whenever view
   * j provides the keys. Constants: no gradient flows into them. This is the softmax variant of
   * CMC's released code (HobbitLong/CMC NCE/NCEAverage.py), where the positive of view i's
   * feature is the other view's bank entry of the same image (`idx[:, 0] = y`, detached), not
   * that view's live feature. Default: the live features `views[j]` (gradient flows into both
   * sides).
   */
  readonly positivesPerView?: readonly tf.Tensor2D[];
  /**
   * `'full'` (default): every ordered pair of views (i, j), i != j, the full graph of CMC.
   * `'core'`: view 0 is the core view, paired both ways with each other view.
   */
  readonly pairing?: 'full' | 'core';
  /** L2-normalise the features and negatives first. Default `true`. */
  readonly normalize?: boolean;
}

/**
 * Contrastive Multiview Coding's loss (Tian, Krishnan and Isola, ECCV 2020), softmax form: the
 * same scene seen through different views (e.g. the L and ab channels of Lab, or depth and RGB)
 * must be matched across views.
 *
 * For each directed pair (i, j) the features of view i are the queries and those of view j the
 * keys: `term(i, j) = infoNce(views[i], positivesPerView?.[j] ?? views[j], { negatives:
 * negativesPerView?.[j] })`, the mean over the batch. The loss is the sum of the terms over the
 * pairs: every ordered pair for `'full'` (2 views: L_{1,2} + L_{2,1}, the paper's two-view
 * objective), or (0, j) and (j, 0) for `'core'`. Gradient flows into every view; the given
 * negatives and positives are constants.
 *
 * With `positivesPerView` and `negativesPerView` both taken from memory banks, this is the
 * softmax variant of CMC's code: view i's feature is scored against `[bank_j[y], bank_j[noise]]`
 * / tau, label 0, and only the queries carry gradient.
 *
 * @param views - two or more [N, D] float32 tensors, row i of each the same sample.
 * @param options - `temperature` (0.07), `negativesPerView`, `positivesPerView`, `pairing`
 *   ('full'), `normalize` (true).
 * @returns a scalar: the sum of the pair terms.
 * @throws {@link ContrastiveError} when fewer than 2 views are given, the views differ in shape,
 *   N < 2 without negatives, a negatives entry is missing or of another dimension, a positives
 *   entry is missing or not [N, D], or temperature <= 0.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { MemoryBank, cmcLoss } from 'tfjs-contrastive';
 *
 * // fL, fAb: [B, 128] features of the L and the ab view of the same B images (CMC's two encoders)
 * const fL = tf.randomNormal<tf.Rank.R2>([8, 128]);
 * const fAb = tf.randomNormal<tf.Rank.R2>([8, 128]);
 * // Two views, in-batch negatives.
 * const loss = cmcLoss([fL, fAb], { temperature: 0.07 });
 * // With 4096 negatives per view drawn from each view's memory bank (the same noise indices).
 * const bankL = new MemoryBank(10000, 128);
 * const bankAb = new MemoryBank(10000, 128);
 * const noise = bankL.sampleNoise(4096) as tf.Tensor1D;
 * const withBanks = cmcLoss([fL, fAb], { negativesPerView: [bankL.read(noise), bankAb.read(noise)] });
 * // CMC's softmax variant: the positives too come from the banks (rows y of the batch).
 * const y = Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
 * const softmax = cmcLoss([fL, fAb], {
 *   positivesPerView: [bankL.read(y), bankAb.read(y)],
 *   negativesPerView: [bankL.read(noise), bankAb.read(noise)],
 * });
 * ```
 */
export function cmcLoss(views: readonly tf.Tensor2D[], options: CmcOptions = {}): tf.Tensor {
  const caller = 'cmcLoss';
  const list: unknown = views;
  if (!Array.isArray(list) || list.length < 2) {
    throw new ContrastiveError({
      caller,
      argument: 'views',
      expected: 'an array of at least 2 [N, D] tensors',
      received: describeValue(views),
    });
  }
  checkTensor(caller, 'views[0]', views[0], { rank: 2, dtype: 'float32', layout: '[N, D]' });
  const [n, d] = views[0].shape;
  views.forEach((v, i) => {
    checkTensor(caller, `views[${i}]`, v, {
      shape: [n, d],
      dtype: 'float32',
      layout: '[N, D] like views[0]',
    });
  });
  const temperature = resolveTemperature(caller, options.temperature, 0.07);
  const normalize = resolveFlag(caller, 'options.normalize', options.normalize, true);
  const pairing = options.pairing ?? 'full';
  checkOneOf(caller, 'options.pairing', pairing, ['full', 'core']);
  const { negativesPerView } = options;
  let chunksPerView: tf.Tensor2D[][] | undefined;
  if (negativesPerView === undefined) {
    checkInBatchSize(caller, 'views[0]', views[0], n);
  } else {
    const given: unknown = negativesPerView;
    if (!Array.isArray(given) || given.length !== views.length) {
      throw new ContrastiveError({
        caller,
        argument: 'options.negativesPerView',
        expected: `an array with one entry per view (${views.length})`,
        received: describeValue(negativesPerView),
      });
    }
    chunksPerView = negativesPerView.map((neg, j) =>
      negativeChunks(caller, `options.negativesPerView[${j}]`, neg, d),
    );
  }
  const { positivesPerView } = options;
  if (positivesPerView !== undefined) {
    const given: unknown = positivesPerView;
    if (!Array.isArray(given) || given.length !== views.length) {
      throw new ContrastiveError({
        caller,
        argument: 'options.positivesPerView',
        expected: `an array with one [${n}, ${d}] entry per view (${views.length})`,
        received: describeValue(positivesPerView),
      });
    }
    positivesPerView.forEach((p, j) => {
      checkTensor(caller, `options.positivesPerView[${j}]`, p, {
        shape: [n, d],
        dtype: 'float32',
        layout: `[${n}, ${d}] (row r the positive of sample r)`,
      });
    });
  }
  const pairs = viewPairs(views.length, pairing);
  return tf.tidy(() => {
    const prep = (x: tf.Tensor2D): tf.Tensor2D => (normalize ? l2Normalize(x) : x);
    const v = views.map(prep);
    const negs = chunksPerView?.map((chunks) => chunks.map(prep));
    const keys = positivesPerView?.map((p) => prep(stopGradient(p))) ?? v;
    const terms = pairs.map(([i, j]) =>
      tf.mean(infoNcePerQuery(v[i] as tf.Tensor2D, keys[j] as tf.Tensor2D, negs?.[j], temperature)),
    );
    return sumOf(terms);
  });
}

/**
 * The directed pairs (i, j), i != j, of `count` views that CMC contrasts: every ordered pair for
 * `'full'`, or (0, j) and (j, 0) for `'core'`; in row-major order.
 *
 * @internal
 */
export function viewPairs(count: number, pairing: 'full' | 'core'): [number, number][] {
  const pairs: [number, number][] = [];
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < count; j++) {
      if (i !== j && (pairing === 'full' || i === 0 || j === 0)) pairs.push([i, j]);
    }
  }
  return pairs;
}
