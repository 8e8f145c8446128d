import * as tf from '@tensorflow/tfjs-core';
import {
  ContrastiveError,
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
   * batch; pass the returned `z` back (as a number) on later steps to hold it fixed, as the paper
   * does. The `instDisc` preset keeps it in its state (and its checkpoint).
   */
  readonly z?: number | tf.Scalar;
  /** L2-normalise the features first (InstDisc's features are normalised). Default `true`. */
  readonly normalize?: boolean;
}

/**
 * A memory read row by row, such as a `MemoryBank`: what {@link nceLoss} needs of a bank to read
 * only the rows it scores (the batch's positives and the noise samples).
 */
export interface MemoryRows {
  /** The number of entries N. */
  readonly size: number;
  /** The entry dimension D. */
  readonly dim: number;
  /** The entries at `indices`, [len, D], a new tensor. */
  read(indices: tf.Tensor1D | Int32Array | readonly number[]): tf.Tensor2D;
}

/** What {@link nceLoss} returns. */
export interface NceResult {
  /** The NCE loss, a scalar: mean over the batch. Gradient flows into the features. */
  readonly loss: tf.Scalar;
  /**
   * The normalisation constant Z used (estimated or given), a scalar without gradient. Inside
   * `optimizer.minimize` or `tf.tidy`, `tf.keep` it to read it after the closure returns.
   */
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
 * @param memory - the memory bank: a `MemoryBank` (or any {@link MemoryRows}), of which only the
 *   scored rows are read, or its [N, D] float32 entries as one tensor.
 * @param noiseIndices - [K] indices shared by the batch, or [B, K] per sample (the paper), int32
 *   (a tensor, Int32Array or array); e.g. from `MemoryBank.sampleNoise`.
 * @param options - `temperature` (0.07), `z` (estimated), `normalize` (true).
 * @returns `{ loss, z }`; dispose both.
 * @throws {@link ContrastiveError} on shapes that do not fit, indices out of range (arrays are
 *   checked; tensors are not read back), or a non-positive temperature or Z.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { MemoryBank, nceLoss } from 'tfjs-contrastive';
 *
 * const encoder = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [32], units: 128 })] });
 * const bank = new MemoryBank(1000, 128); // one entry per training image
 * const optimizer = tf.train.adam(1e-3);
 * let z: number | undefined; // InstDisc: estimated on the first batch, then fixed
 *
 * async function step(x: tf.Tensor2D, indices: Int32Array): Promise<void> {
 *   const noise = bank.sampleNoise(4096); // K uniform indices, P_n = 1/N
 *   let features: tf.Tensor2D | undefined;
 *   let zUsed: tf.Scalar | undefined;
 *   optimizer.minimize(() => {
 *     features = tf.keep(encoder.apply(x, { training: true }) as tf.Tensor2D);
 *     const out = nceLoss(features, indices, bank, noise, { z }); // reads only the rows it scores
 *     zUsed = tf.keep(out.z); // minimize frees what its closure made: keep Z to read it after
 *     return out.loss;
 *   });
 *   z ??= (await (zUsed as tf.Scalar).data())[0];
 *   bank.update(indices, features as tf.Tensor2D); // after the loss: read before update
 *   tf.dispose([noise, features as tf.Tensor2D, zUsed as tf.Scalar]);
 * }
 * const x = tf.randomNormal<tf.Rank.R2>([8, 32]);
 * await step(x, Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7]));
 * ```
 */
export function nceLoss(
  features: tf.Tensor2D,
  indices: tf.Tensor1D | Int32Array | readonly number[],
  memory: tf.Tensor2D | MemoryRows,
  noiseIndices: tf.Tensor | Int32Array | readonly number[],
  options: NceOptions = {},
): NceResult {
  const caller = 'nceLoss';
  checkTensor(caller, 'features', features, { rank: 2, dtype: 'float32', layout: '[B, D]' });
  const [b, d] = features.shape;
  const rows = isMemoryRows(memory) ? memory : undefined;
  if (rows === undefined) {
    checkTensor(caller, 'memory', memory, {
      shape: [null, d],
      dtype: 'float32',
      layout: `[N, ${d}] or a MemoryBank`,
    });
  } else if (rows.dim !== d) {
    throw new ContrastiveError({
      caller,
      argument: 'memory',
      expected: `a bank of ${d}-dimensional entries (the features' width)`,
      received: `a bank of ${rows.dim}-dimensional entries`,
    });
  }
  const n = rows === undefined ? (memory as tf.Tensor2D).shape[0] : rows.size;
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
    const bank = rows === undefined ? stopGradient(memory as tf.Tensor2D) : undefined;
    const gathered = (at: tf.Tensor): tf.Tensor =>
      bank !== undefined
        ? tf.gather(bank, at)
        : at.rank === 1
          ? (rows as MemoryRows).read(at as tf.Tensor1D)
          : tf.reshape((rows as MemoryRows).read(tf.reshape(at, [-1])), [...at.shape, d]);
    // Scores s = v . f / tau of the positives [B] and of the noise [B, K].
    const positive = tf.sum(tf.mul(ft, gathered(idx)), 1);
    const noiseScores =
      noise.rank === 1
        ? similarityToConstant(ft, gathered(noise) as tf.Tensor2D)
        : tf.sum(tf.mul(tf.expandDims(ft, 1), gathered(noise)), 2);
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

function isMemoryRows(memory: unknown): memory is MemoryRows {
  const m = memory as Partial<MemoryRows> | null;
  return (
    m !== null &&
    typeof m === 'object' &&
    !(m instanceof tf.Tensor) &&
    typeof m.read === 'function' &&
    typeof m.size === 'number' &&
    typeof m.dim === 'number'
  );
}
