import * as tf from '@tensorflow/tfjs-core';
import {
  ContrastiveError,
  checkBoolean,
  checkTensor,
  describeValue,
  l2Normalize,
} from '../core/index.js';
import {
  crossEntropyFromTarget,
  logAddExp,
  logSumExpRows,
  reduce,
  resolveChunkSize,
  resolveFlag,
  resolveReduction,
  resolveTemperature,
  rowDot,
  similarity,
  similarityToConstant,
  type Reduction,
} from './reduction.js';
import { chunkedLogSumExp } from './chunked.js';

/**
 * Stored negative keys (MoCo's queue, He et al. 2020; a memory bank's entries) in the two layouts
 * InfoNCE's products want, so that a loss step needs no transpose and, for normalised keys, no
 * normalisation: the logits `q . keys^T` are plain
 * products with the [D, k_i] `columns` blocks, the query gradient `dy . keys` plain products with
 * the [k_i, D] `rows` blocks. Block i of `columns` is the transpose of block i of `rows`; the
 * blocks together are the K keys (their order does not matter to a loss). What
 * `MomentumQueue.negatives()` returns, and what any other store of constant keys (a memory bank,
 * say) can hand out; {@link infoNce} takes it as `negatives`.
 *
 * The keys are constants of the loss: no gradient is computed for them.
 *
 * @example
 * <!-- snippet setup="embeddings" -->
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { infoNce, l2Normalize, type NegativeKeys } from 'tfjs-contrastive';
 *
 * // q, k: [N, 128] queries and keys; 4096 stored unit keys as one block in both layouts
 * const rows = l2Normalize(tf.randomNormal<tf.Rank.R2>([4096, 128]));
 * const keys: NegativeKeys = { rows: [rows], columns: [tf.transpose(rows)], normalized: true };
 * const loss = infoNce(q, k, { negatives: keys, temperature: 0.2 });
 * ```
 */
export interface NegativeKeys {
  /** The keys as [k_i, D] row blocks (read by the backward pass). */
  readonly rows: readonly tf.Tensor2D[];
  /** The same keys as [D, k_i] column blocks, `columns[i] = rows[i]^T` (the forward pass). */
  readonly columns: readonly tf.Tensor2D[];
  /**
   * Whether every key already has unit L2 norm: `infoNce` with `normalize: true` then uses the
   * blocks as they are instead of normalising them (which would give the same values).
   */
  readonly normalized: boolean;
}

/**
 * Anything that hands out {@link NegativeKeys}, such as `MomentumQueue` (its `negatives()`):
 * {@link infoNce} takes it as `negatives` directly and reads the keys when it is called. A
 * structural type, so that losses know nothing of the state classes.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { MomentumQueue, infoNce, type NegativeKeysSource } from 'tfjs-contrastive';
 *
 * const queue: NegativeKeysSource = new MomentumQueue(1024, 128);
 * const q = tf.randomNormal<tf.Rank.R2>([8, 128]);
 * const k = tf.randomNormal<tf.Rank.R2>([8, 128]);
 * // the same as { negatives: queue.negatives() }
 * const loss = infoNce(q, k, { negatives: queue, temperature: 0.2 });
 * ```
 */
export interface NegativeKeysSource {
  /** The current keys, in both layouts (read before they change, e.g. before an enqueue). */
  negatives(): NegativeKeys;
}

/** Options of {@link infoNce}. */
export interface InfoNceOptions {
  /**
   * Negatives shared by every query: one [K, D] tensor, a list of [k_i, D] chunks read as their
   * row concatenation (a queue or memory bank need not be concatenated),
   * {@link NegativeKeys} (row and column blocks, e.g. `queue.negatives()`: no transpose and, for
   * normalised keys, no normalisation per step), or a {@link NegativeKeysSource} such as the
   * `MomentumQueue` itself (its `negatives()` are read). They are constants, like MoCo's queue
   * buffer and InstDisc's memory bank: no gradient flows into them. Default: none, in which case
   * the other rows of `positiveKey` are each query's negatives (in-batch, and those do receive
   * gradient).
   */
  readonly negatives?: tf.Tensor2D | readonly tf.Tensor2D[] | NegativeKeys | NegativeKeysSource;
  /** Softmax temperature tau. Default `0.07` (MoCo v1, InstDisc). */
  readonly temperature?: number;
  /** L2-normalise queries, keys and negatives first (cosine similarity). Default `true`. */
  readonly normalize?: boolean;
  /** `'mean'` (default), `'sum'` or `'none'` (the N per-query losses). */
  readonly reduction?: Reduction;
  /**
   * Score the queries against at most this many negatives (key columns) at a time: an online
   * logSumExp over the chunks, and a backward pass that recomputes each chunk's [N, chunkSize]
   * logits instead of keeping the [N, K] ones, so peak memory is O(N x chunkSize) instead of
   * O(N x K) (K the negatives, or N in-batch) for one more [N, D] x [D, K] product per step. The
   * same loss and gradients as unchunked, to float32 rounding. A positive integer; chunks never
   * span two blocks of `negatives` (a queue's blocks of 4096 cap it there). Default: none
   * (unchunked).
   */
  readonly chunkSize?: number;
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

/**
 * @internal What to pass instead of a store of keys that the caller does not take as such; the
 * hint of the error about it.
 */
function storeHint(x: unknown, acceptsKeys: boolean): string {
  const has = (name: string): boolean => typeof x === 'object' && x !== null && name in x;
  if (has('negatives') && has('enqueue')) {
    return acceptsKeys
      ? 'Pass the queue itself or queue.negatives() (its keys, no copy).'
      : 'Pass queue.readConcatenated() (a [K, D] copy of its keys) or queue.read() (its blocks).';
  }
  if (has('sampleNoise') && has('value')) {
    return 'Pass the bank entries: bank.read(bank.sampleNoise(K)) for K noise samples, or bank.value.';
  }
  return acceptsKeys
    ? 'A MomentumQueue is passed itself or as queue.negatives(); a MemoryBank as bank.read(indices).'
    : 'A MomentumQueue is passed as queue.readConcatenated(); a MemoryBank as bank.read(indices).';
}

/**
 * @internal The negatives option as a list of [k_i, D] chunks, checked. `acceptsKeys`: whether
 * the caller also takes {@link NegativeKeys} (for the hint when an object is given).
 */
export function negativeChunks(
  caller: string,
  argument: string,
  negatives: unknown,
  d: number,
  acceptsKeys = false,
): tf.Tensor2D[] {
  if (typeof negatives === 'object' && negatives !== null && !(negatives instanceof tf.Tensor)) {
    if (!Array.isArray(negatives)) {
      throw new ContrastiveError(
        {
          caller,
          argument,
          expected: acceptsKeys
            ? `a [K, ${d}] tensor, a list of [k_i, ${d}] tensors, NegativeKeys { rows, columns, normalized } or a NegativeKeysSource (an object with negatives())`
            : `a [K, ${d}] tensor or a list of [k_i, ${d}] tensors`,
          received: describeValue(negatives),
        },
        storeHint(negatives, acceptsKeys),
      );
    }
  }
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

/** @internal Whether an option value is a {@link NegativeKeysSource} (has `negatives()`). */
export function isNegativeKeysSource(x: unknown): x is NegativeKeysSource {
  return (
    typeof x === 'object' &&
    x !== null &&
    !(x instanceof tf.Tensor) &&
    typeof (x as Partial<NegativeKeysSource>).negatives === 'function'
  );
}

/** @internal Whether an option value is a {@link NegativeKeys} (not a tensor or a list). */
export function isNegativeKeys(x: unknown): x is NegativeKeys {
  return (
    typeof x === 'object' &&
    x !== null &&
    !(x instanceof tf.Tensor) &&
    !Array.isArray(x) &&
    ('rows' in x || 'columns' in x)
  );
}

/** @internal Checks a {@link NegativeKeys}: matching [k_i, D] rows and [D, k_i] columns. */
export function checkNegativeKeys(
  caller: string,
  argument: string,
  keys: NegativeKeys,
  d: number,
): NegativeKeys {
  const rows: unknown = keys.rows;
  const columns: unknown = keys.columns;
  if (!Array.isArray(rows) || rows.length === 0) {
    throw new ContrastiveError({
      caller,
      argument: `${argument}.rows`,
      expected: 'a non-empty list of [k_i, D] tensors',
      received: describeValue(rows),
    });
  }
  if (!Array.isArray(columns) || columns.length !== rows.length) {
    throw new ContrastiveError({
      caller,
      argument: `${argument}.columns`,
      expected: `a list of ${rows.length} [D, k_i] tensors, one per row block`,
      received: describeValue(columns),
    });
  }
  checkBoolean(caller, `${argument}.normalized`, keys.normalized);
  (rows as unknown[]).forEach((block, i) => {
    checkTensor(caller, `${argument}.rows[${i}]`, block, {
      shape: [null, d],
      dtype: 'float32',
      layout: `[k_i, ${d}] (D of the queries)`,
    });
    const k = block.shape[0];
    checkTensor(caller, `${argument}.columns[${i}]`, (columns as unknown[])[i], {
      shape: [d, k],
      dtype: 'float32',
      layout: `[${d}, ${k}] (rows[${i}] transposed)`,
    });
  });
  return keys;
}

/**
 * @internal `a keys^T` for one block of constant keys held in both layouts: the forward pass is
 * the plain product `a . columns` ([N, D] x [D, k]), the backward pass the plain product
 * `dy . rows` ([N, k] x [k, D]); no transpose at all, and, as in `similarityToConstant`, no
 * gradient for the keys.
 */
export function similarityToKeyBlock(
  a: tf.Tensor2D,
  rows: tf.Tensor2D,
  columns: tf.Tensor2D,
): tf.Tensor2D {
  const op = tf.customGrad((x: tf.Tensor | tf.GradSaveFunc, save: tf.Tensor | tf.GradSaveFunc) => {
    // Saved, not just captured: the rows may be intermediates (normalised here) that the caller's
    // tidy disposes before the backward pass, or a queue's block replaced by an enqueue.
    (save as tf.GradSaveFunc)([rows]);
    return {
      value: tf.matMul(x as tf.Tensor2D, columns),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.matMul(dy, saved[0] as tf.Tensor2D),
    };
  });
  return op(a) as tf.Tensor2D;
}

/**
 * @internal Negative keys ready for the loss: normalised in both layouts when asked to and not
 * normalised yet (rows along D, columns along D, i.e. axis 0), else as they are.
 */
export function prepareNegativeKeys(keys: NegativeKeys, normalize: boolean): NegativeKeys {
  if (!normalize || keys.normalized) return keys;
  return {
    rows: keys.rows.map((r) => l2Normalize(r, 1)),
    columns: keys.columns.map((c) => l2Normalize(c, 0)),
    normalized: true,
  };
}

/**
 * @internal The InfoNCE per-query losses of already prepared (normalised or not) queries,
 * positives and negative chunks: `logSumExp([l_pos, l_neg...]) - l_pos` with logits / tau.
 */
export function infoNcePerQuery(
  q: tf.Tensor2D,
  k: tf.Tensor2D,
  chunks: readonly tf.Tensor2D[] | NegativeKeys | undefined,
  temperature: number,
): tf.Tensor1D {
  const qt = tf.div<tf.Tensor2D>(q, temperature);
  const positive = rowDot(qt, k);
  if (chunks === undefined) return crossEntropyFromTarget(similarity(qt, k), positive);
  // logSumExp over [l_pos, q.n_1, ..., q.n_K]: one logSumExp per chunk, folded in with
  // logAddExp, so the [N, K + 1] logits matrix is never concatenated.
  const blocks: tf.Tensor2D[] = isNegativeKeys(chunks)
    ? chunks.rows.map((rows, i) => similarityToKeyBlock(qt, rows, chunks.columns[i] as tf.Tensor2D))
    : chunks.map((chunk) => similarityToConstant(qt, chunk));
  let lse: tf.Tensor = positive;
  for (const logits of blocks) lse = logAddExp(lse, logSumExpRows(logits));
  return tf.sub<tf.Tensor1D>(lse, positive);
}

/**
 * @internal {@link infoNcePerQuery} over chunks of at most `chunkSize` key columns
 * (`chunkedLogSumExp`): the positive logit as there (differentiated by the tape), the
 * negatives' logSumExp in O(N x chunkSize) memory, the two folded in with logAddExp. In-batch
 * keys receive gradient, stored negatives none, as in the unchunked path.
 */
export function infoNceChunkedPerQuery(
  q: tf.Tensor2D,
  k: tf.Tensor2D,
  chunks: readonly tf.Tensor2D[] | NegativeKeys | undefined,
  temperature: number,
  chunkSize: number,
): tf.Tensor1D {
  const qt = tf.div<tf.Tensor2D>(q, temperature);
  const positive = rowDot(qt, k);
  if (chunks === undefined) {
    return tf.sub(chunkedLogSumExp(qt, { trainable: k }, { chunkSize }), positive);
  }
  const keys = isNegativeKeys(chunks)
    ? { rows: chunks.rows, columns: chunks.columns }
    : { rows: chunks };
  const negatives = chunkedLogSumExp(qt, keys, { chunkSize });
  return tf.sub<tf.Tensor1D>(logAddExp(positive, negatives), positive);
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
 * `negatives` may be a [K, D] tensor, a list of [k_i, D] chunks, {@link NegativeKeys} (what
 * `MomentumQueue.negatives()` returns), or the queue itself (any {@link NegativeKeysSource},
 * whose `negatives()` are read at the call): keys held as [k_i, D] rows and [D, k_i] columns, so
 * that the logits are plain products with the columns and the query gradient plain products with
 * the rows, with no transpose per step; keys marked `normalized` are not normalised again (with
 * `normalize: true` that would not change them). The three forms give the same loss and
 * gradients.
 *
 * Gradient flows into the queries and the positive keys; `negatives` are treated as constants
 * (queue or bank entries, which never carry gradient). A MoCo key comes from a momentum encoder
 * and must not receive gradient either: wrap it in {@link stopGradient}. The computation
 * uses logSumExp throughout (no exp-then-log), so temperature 0.01 on unnormalised inputs stays
 * finite.
 *
 * @param query - [N, D] float32 queries q.
 * @param positiveKey - [N, D] float32 positive keys, row i the positive of query i.
 * With `chunkSize`, the logSumExp over the negatives runs over chunks of at most that many
 * columns and the backward pass recomputes each chunk's logits: peak memory O(N x chunkSize)
 * instead of O(N x K) for large batches and queues, the same loss and gradients.
 *
 * @param options - `negatives`, `temperature` (0.07), `normalize` (true), `reduction` ('mean'),
 *   `chunkSize` (none: unchunked).
 * @returns a scalar, or [N] per-query losses with `reduction: 'none'`.
 * @throws {@link ContrastiveError} on a non-[N, D] input, a key or negative of another shape or
 *   dimension, {@link NegativeKeys} whose row and column blocks do not match, an in-batch call
 *   with N < 2 (no negatives at all), temperature <= 0, or a `chunkSize` that is not a positive
 *   integer.
 *
 * @example
 * <!-- snippet setup="queue" -->
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { infoNce, stopGradient } from 'tfjs-contrastive';
 *
 * // MoCo: q [N, 128] from the encoder, k [N, 128] from the momentum encoder, and the negatives
 * // from a MomentumQueue (the queue itself or queue.negatives(), read before the enqueue).
 * const loss = infoNce(q, stopGradient(k), { negatives: queue, temperature: 0.2 });
 * queue.enqueue(k);
 * // Any [K, D] tensor (or list of [k_i, D] chunks) works too, e.g. memory-bank entries.
 * const bankRows = tf.randomNormal<tf.Rank.R2>([4096, 128]);
 * const withBank = infoNce(q, stopGradient(k), { negatives: bankRows });
 * // In-batch (no queue): the other keys are the negatives.
 * const inBatch = infoNce(q, k, { temperature: 0.1 });
 * // Chunked: the same loss, never more than [N, 64] logits at once.
 * const chunked = infoNce(q, stopGradient(k), { negatives: queue, temperature: 0.2, chunkSize: 64 });
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
  const chunkSize = resolveChunkSize(caller, options.chunkSize);
  const given = options.negatives;
  // A source (the queue itself) is read now, once: what its negatives() gives at this call.
  const negatives: unknown = isNegativeKeysSource(given) ? given.negatives() : given;
  const argument = isNegativeKeysSource(given)
    ? 'options.negatives.negatives()'
    : 'options.negatives';
  const chunks =
    negatives === undefined
      ? undefined
      : isNegativeKeys(negatives)
        ? checkNegativeKeys(caller, argument, negatives, d)
        : negativeChunks(caller, argument, negatives, d, true);
  if (chunks === undefined) checkInBatchSize(caller, 'query', query, n);
  return tf.tidy(() => {
    const prep = (x: tf.Tensor2D): tf.Tensor2D => (normalize ? l2Normalize(x) : x);
    const prepared = (): readonly tf.Tensor2D[] | NegativeKeys | undefined =>
      chunks === undefined
        ? undefined
        : isNegativeKeys(chunks)
          ? prepareNegativeKeys(chunks, normalize)
          : chunks.map(prep);
    const perQuery =
      chunkSize === undefined
        ? infoNcePerQuery(prep(query), prep(positiveKey), prepared(), temperature)
        : infoNceChunkedPerQuery(
            prep(query),
            prep(positiveKey),
            prepared(),
            temperature,
            chunkSize,
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
