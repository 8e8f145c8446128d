import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError, checkTensor, describeValue, l2Normalize } from '../core/index.js';
import {
  crossEntropyFromTarget,
  logAddExp,
  logSumExpRows,
  reduce,
  resolveFlag,
  resolveReduction,
  resolveTemperature,
  rowDot,
  similarity,
  similarityToConstant,
  type Reduction,
} from './reduction.js';

/** Options of {@link infoNce}. */
export interface InfoNceOptions {
  /**
   * Negatives shared by every query: one [K, D] tensor, or a list of [k_i, D] chunks read as
   * their row concatenation (a queue or memory bank need not be concatenated). They are
   * constants, like MoCo's queue buffer and InstDisc's memory bank: no gradient flows into them.
   * Default: none, in which case the other rows of `positiveKey` are each query's negatives
   * (in-batch, and those do receive gradient).
   */
  readonly negatives?: tf.Tensor2D | readonly tf.Tensor2D[];
  /** Softmax temperature tau. Default `0.07` (MoCo v1, InstDisc). */
  readonly temperature?: number;
  /** L2-normalise queries, keys and negatives first (cosine similarity). Default `true`. */
  readonly normalize?: boolean;
  /** `'mean'` (default), `'sum'` or `'none'` (the N per-query losses). */
  readonly reduction?: Reduction;
}

/** @internal Checks a query/key pair of [N, D] tensors and returns N and D. */
export function checkPair(
  caller: string,
  aName: string,
  a: unknown,
  bName: string,
  b: unknown,
): [number, number] {
  checkTensor(caller, aName, a, { rank: 2, dtype: 'float32', layout: '[N, D]' });
  const [n, d] = a.shape as [number, number];
  checkTensor(caller, bName, b, {
    shape: [n, d],
    dtype: 'float32',
    layout: `[N, D] like '${aName}'`,
  });
  return [n, d];
}

/** @internal The negatives option as a list of [k_i, D] chunks, checked. */
export function negativeChunks(
  caller: string,
  argument: string,
  negatives: unknown,
  d: number,
): tf.Tensor2D[] {
  const list: unknown[] = Array.isArray(negatives) ? (negatives as unknown[]) : [negatives];
  if (list.length === 0) {
    throw new ContrastiveError({
      caller,
      argument,
      expected: 'a [K, D] tensor or a non-empty list of [k_i, D] tensors',
      received: describeValue(negatives),
    });
  }
  list.forEach((chunk, i) => {
    checkTensor(caller, Array.isArray(negatives) ? `${argument}[${i}]` : argument, chunk, {
      shape: [null, d],
      dtype: 'float32',
      layout: `[K, ${d}] (D of the queries)`,
    });
  });
  return list as tf.Tensor2D[];
}

/**
 * @internal The InfoNCE per-query losses of already prepared (normalised or not) queries,
 * positives and negative chunks: `logSumExp([l_pos, l_neg...]) - l_pos` with logits / tau.
 */
export function infoNcePerQuery(
  q: tf.Tensor2D,
  k: tf.Tensor2D,
  chunks: readonly tf.Tensor2D[] | undefined,
  temperature: number,
): tf.Tensor1D {
  const qt = tf.div<tf.Tensor2D>(q, temperature);
  const positive = rowDot(qt, k);
  if (chunks === undefined) return crossEntropyFromTarget(similarity(qt, k), positive);
  // logSumExp over [l_pos, q.n_1, ..., q.n_K]: one logSumExp per chunk, folded in with
  // logAddExp, so the [N, K + 1] logits matrix is never concatenated.
  let lse: tf.Tensor = positive;
  for (const chunk of chunks) lse = logAddExp(lse, logSumExpRows(similarityToConstant(qt, chunk)));
  return tf.sub<tf.Tensor1D>(lse, positive);
}

/**
 * InfoNCE (van den Oord et al. 2018; MoCo's Eq. 1, He et al. 2020): each query must pick its
 * positive key out of the negatives, `-log exp(q.k+ / tau) / (exp(q.k+ / tau) + sum_j exp(q.n_j / tau))`.
 *
 * With `negatives` (a MoCo queue, memory bank entries) every query is scored against its own
 * positive and all K negatives: logits `[l_pos, q . negatives^T] / tau`, label 0. Without them it
 * is the in-batch form: logits `q . k^T / tau`, label i for query i (the other rows' keys are the
 * negatives), as in CLIP or MoCo v3.
 *
 * Gradient flows into the queries and the positive keys; `negatives` are treated as constants
 * (queue or bank entries, which never carry gradient). A MoCo key comes from a momentum encoder
 * and must not receive gradient either: wrap it in {@link stopGradient}. The computation
 * uses logSumExp throughout (no exp-then-log), so temperature 0.01 on unnormalised inputs stays
 * finite.
 *
 * @param query - [N, D] float32 queries q.
 * @param positiveKey - [N, D] float32 positive keys, row i the positive of query i.
 * @param options - `negatives`, `temperature` (0.07), `normalize` (true), `reduction` ('mean').
 * @returns a scalar, or [N] per-query losses with `reduction: 'none'`.
 * @throws {@link ContrastiveError} on a non-[N, D] input, a key or negative of another shape or
 *   dimension, an in-batch call with N < 2 (no negatives at all), or temperature <= 0.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { infoNce, stopGradient } from 'tfjs-contrastive';
 *
 * // MoCo: queries from the encoder, keys from the momentum encoder, negatives from the queue.
 * const loss = infoNce(q, stopGradient(k), { negatives: queue, temperature: 0.2 });
 * // In-batch (no queue): the other keys are the negatives.
 * const inBatch = infoNce(q, k, { temperature: 0.1 });
 * ```
 */
export function infoNce(
  query: tf.Tensor2D,
  positiveKey: tf.Tensor2D,
  options: InfoNceOptions = {},
): tf.Tensor {
  const caller = 'infoNce';
  const [n, d] = checkPair(caller, 'query', query, 'positiveKey', positiveKey);
  const temperature = resolveTemperature(caller, options.temperature, 0.07);
  const normalize = resolveFlag(caller, 'options.normalize', options.normalize, true);
  const reduction = resolveReduction(caller, options.reduction);
  const chunks =
    options.negatives === undefined
      ? undefined
      : negativeChunks(caller, 'options.negatives', options.negatives, d);
  if (chunks === undefined) checkInBatchSize(caller, 'query', query, n);
  return tf.tidy(() => {
    const prep = (x: tf.Tensor2D): tf.Tensor2D => (normalize ? l2Normalize(x) : x);
    const perQuery = infoNcePerQuery(
      prep(query),
      prep(positiveKey),
      chunks?.map(prep),
      temperature,
    );
    return reduce(perQuery, reduction);
  });
}

/** @internal In-batch losses need a second sample to have any negative. */
export function checkInBatchSize(caller: string, argument: string, x: tf.Tensor, n: number): void {
  if (n < 2) {
    throw new ContrastiveError(
      {
        caller,
        argument,
        expected: 'at least 2 rows (in-batch negatives are the other rows)',
        received: describeValue(x),
      },
      'With one sample there is no negative and the loss is identically 0.',
    );
  }
}
