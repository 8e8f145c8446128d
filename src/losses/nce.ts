import * as tf from '@tensorflow/tfjs-core';
import {
  checkNumber,
  checkTensor,
  l2Normalize,
  stopGradient,
  toIndexTensor,
} from '../core/index.js';
import { resolveFlag, resolveTemperature, similarityToConstant } from './reduction.js';

/** Options of {@link nceLoss}. */
export interface NceOptions {
  /** Temperature tau of `exp(v . f / tau)`. Default `0.07` (InstDisc, CMC). */
  readonly temperature?: number;
  /**
   * The normalisation constant Z of `P(i | f) = exp(v_i . f / tau) / Z`. Default: estimated from
   * this batch as `N * mean(exp(v . f / tau))` over the sampled pairs, as InstDisc does on its first
   * batch; pass the returned `z` back on later steps to hold it fixed, as the paper does.
   */
  readonly z?: number | tf.Scalar;
  /** L2-normalise the features first (InstDisc's features are normalised). Default `true`. */
  readonly normalize?: boolean;
}

/** What {@link nceLoss} returns. */
export interface NceResult {
  /** The NCE loss, a scalar: mean over the batch. Gradient flows into the features. */
  readonly loss: tf.Scalar;
  /** The normalisation constant Z used (estimated or given), a scalar without gradient. */
  readonly z: tf.Scalar;
}

/**
 * Noise-contrastive estimation of Instance Discrimination (Wu et al. CVPR 2018, Eq. 5-7,
 * zhirongw/lemniscate.pytorch NCEAverage/NCECriterion), also CMC's NCE (Tian et al.): each
 * feature must be told apart from K noise samples drawn uniformly from the memory bank,
 * `P_n = 1 / N`.
 *
 * With `P(i | f) = exp(v_i . f / tau) / Z` and `h(i, f) = P(i | f) / (P(i | f) + K P_n)`:
 * `L = -E[ log h(i, f_i) ] - K E[ log(1 - h(j, f_i)) ]` (the mean over the batch of
 * `-log h(positive) - sum_noise log(1 - h(noise))`). It is computed in the log domain as
 * softplus terms, `-log h = softplus(log(K P_n) - log P)` and `-log(1 - h) = softplus(log P -
 * log(K P_n))`, which never divides by a probability that underflowed (the reference code adds
 * 1e-7 for that; the difference is below 1e-6 relative).
 *
 * Read the bank before updating it, so that a batch never scores against its own fresh features.
 * The bank and Z carry no gradient.
 *
 * @param features - [B, D] float32 features f_i.
 * @param indices - [B] int32 indices of the samples in the bank (their positives v_i).
 * @param memory - [N, D] float32 memory bank (e.g. `MemoryBank.value`).
 * @param noiseIndices - [K] indices shared by the batch, or [B, K] per sample (the paper), int32
 *   (a tensor, Int32Array or array); e.g. from `MemoryBank.sampleNoise`.
 * @param options - `temperature` (0.07), `z` (estimated), `normalize` (true).
 * @returns `{ loss, z }`; dispose both.
 * @throws {@link ContrastiveError} on shapes that do not fit, indices out of range (arrays are
 *   checked; tensors are not read back), or a non-positive temperature or Z.
 *
 * @example
 * <!-- snippet setup="batch-features" -->
 * ```ts
 * import { MemoryBank, nceLoss } from 'tfjs-contrastive';
 *
 * // features: [B, 128] encoder outputs of the batch; indices: the images' rows in the bank
 * const numImages = 1000;
 * const bank = new MemoryBank(numImages, 128);
 * let z: number | undefined;
 * // in each step (inside optimizer.minimize):
 * const noise = bank.sampleNoise(4096);
 * const { loss, z: zUsed } = nceLoss(features, indices, bank.value, noise, { z });
 * z ??= (await zUsed.data())[0]; // fix Z after the first batch, as InstDisc
 * bank.update(indices, features); // after the loss
 * ```
 */
export function nceLoss(
  features: tf.Tensor2D,
  indices: tf.Tensor1D | Int32Array | readonly number[],
  memory: tf.Tensor2D,
  noiseIndices: tf.Tensor | Int32Array | readonly number[],
  options: NceOptions = {},
): NceResult {
  const caller = 'nceLoss';
  checkTensor(caller, 'features', features, { rank: 2, dtype: 'float32', layout: '[B, D]' });
  const [b, d] = features.shape;
  checkTensor(caller, 'memory', memory, {
    shape: [null, d],
    dtype: 'float32',
    layout: `[N, ${d}]`,
  });
  const n = memory.shape[0];
  const temperature = resolveTemperature(caller, options.temperature, 0.07);
  const normalize = resolveFlag(caller, 'options.normalize', options.normalize, true);
  const { z } = options;
  if (z !== undefined && typeof z === 'number')
    checkNumber(caller, 'options.z', z, { greaterThan: 0 });
  else if (z !== undefined) checkTensor(caller, 'options.z', z, { rank: 0, dtype: 'float32' });
  return tf.tidy(() => {
    const idx = toIndexTensor(caller, 'indices', indices, n);
    checkTensor(caller, 'indices', idx, { shape: [b], dtype: 'int32', layout: '[B]' });
    const noise = toIndexTensor(caller, 'noiseIndices', noiseIndices, n);
    if (!(noise.rank === 1 || (noise.rank === 2 && noise.shape[0] === b))) {
      checkTensor(caller, 'noiseIndices', noise, { shape: [b, null], layout: '[K] or [B, K]' });
    }
    const k = noise.shape[noise.rank - 1] as number;
    const f = normalize ? l2Normalize(features) : features;
    const ft = tf.div<tf.Tensor2D>(f, temperature);
    const bank = stopGradient(memory);
    // Scores s = v . f / tau of the positives [B] and of the noise [B, K].
    const positive = tf.sum(tf.mul(ft, tf.gather(bank, idx)), 1);
    const noiseScores =
      noise.rank === 1
        ? similarityToConstant(ft, tf.gather<tf.Tensor2D>(bank, noise))
        : tf.sum(tf.mul(tf.expandDims(ft, 1), tf.gather(bank, noise)), 2);
    const logZ =
      z === undefined
        ? stopGradient(
            tf.add(
              Math.log(n),
              tf.sub(
                tf.logSumExp(
                  tf.concat([tf.reshape(positive, [-1]), tf.reshape(noiseScores, [-1])]),
                ),
                Math.log(b * (k + 1)),
              ),
            ),
          )
        : tf.log(typeof z === 'number' ? tf.scalar(z) : stopGradient(z));
    const logKPn = Math.log(k / n);
    const logPPositive = tf.sub(positive, logZ);
    const logPNoise = tf.sub(noiseScores, logZ);
    const perSample = tf.add(
      tf.softplus(tf.sub(logKPn, logPPositive)),
      tf.sum(tf.softplus(tf.sub(logPNoise, logKPn)), 1),
    );
    return { loss: tf.mean<tf.Scalar>(perSample), z: tf.exp(logZ) as tf.Scalar };
  });
}
