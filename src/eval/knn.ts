import * as tf from '@tensorflow/tfjs-core';
import { checkNumber, l2Normalize } from '../core/index.js';
import { checkFeaturePair, readLabels, resolveNumClasses, type KnnLabels } from './labels.js';

export type { KnnLabels } from './labels.js';

/** Options of {@link knnEvaluate}. */
export interface KnnOptions {
  /** The number of neighbours that vote. Default `200` (InstDisc, MoCo, lightly). */
  readonly k?: number;
  /** The temperature of the vote weights `exp(sim / temperature)`. Default `0.1`. */
  readonly temperature?: number;
  /**
   * Test rows per chunk: each chunk builds one [batchSize, Ntrain] similarity matrix. Default
   * `min(256, max(1, floor(2^24 / Ntrain)))`, which keeps that matrix at or under 64 MiB
   * (256 rows for 60,000 training samples).
   */
  readonly batchSize?: number;
  /** The number of classes C. Default: the largest label (train or test) plus one. */
  readonly numClasses?: number;
}

/** What {@link knnEvaluate} returns. */
export interface KnnResult {
  /** The fraction of test samples whose predicted class is their label, in [0, 1]. */
  readonly top1: number;
  /**
   * The fraction of test samples whose label is among the 5 classes with the largest vote and
   * received a vote at all, in [0, 1]; present only when `numClasses > 5`.
   */
  readonly top5?: number;
  /** The predicted class of each test sample, [Ntest]. */
  readonly predictions: Int32Array;
}

/** Elements of one chunk's similarity matrix that the default chunk size allows (64 MiB). */
const SIMILARITY_BUDGET = 2 ** 24;

/**
 * The weighted k-nearest-neighbour classifier of InstDisc (Wu et al., CVPR 2018, "Unsupervised
 * Feature Learning via Non-Parametric Instance Discrimination", Sec. 3.4), the kNN monitor of
 * lemniscate.pytorch, MoCo and lightly: features are L2-normalised; for each test sample the k
 * training samples of largest cosine similarity vote for their labels with weight
 * `exp(sim / temperature)`; the predicted class is the one with the largest summed vote.
 *
 * The test set is processed in chunks of `batchSize` rows: one [chunk, Ntrain] similarity product
 * (against the normalised training features, transposed once to [D, Ntrain] so that the product
 * needs no transpose flag, which is slow on wasm), `tf.topk`, and a read-back of only the
 * [chunk, k] similarities and indices; the votes are summed on the host in float64. Memory stays
 * bounded by the training features and one chunk: 60,000 x 10,000 x 128 runs on the wasm backend.
 *
 * Ties: among neighbours of equal similarity at the k-th place `tf.topk` decides; among classes
 * of equal summed vote the smaller class index wins (top-1 and the top-5 order). A class that no
 * neighbour voted for never counts as a top-5 hit (with k < 5 or few voting classes, the rest of
 * a top-5 list would otherwise be filled by arbitrary zero-vote classes). Each row's weights are
 * computed as `exp((sim - maxSim) / temperature)`, which scales every vote of the row alike and
 * so changes no prediction, and cannot overflow for small temperatures.
 *
 * @param trainFeatures - [Ntrain, D] float32 features of the labelled "memory" (training) set.
 * @param trainLabels - [Ntrain] class labels: an int32 tensor, an `Int32Array` or integers.
 * @param testFeatures - [Ntest, D] float32 features to classify.
 * @param testLabels - [Ntest] class labels of the test samples.
 * @param options - `k` (200), `temperature` (0.1), `batchSize` (min(256, 2^24 / Ntrain)),
 *   `numClasses` (largest label + 1).
 * @returns a promise of `{ top1, top5 (when numClasses > 5), predictions }`, fractions in [0, 1].
 * @throws {@link ContrastiveError} when a feature tensor is not [N, D] float32 with N >= 1, the
 *   labels do not give one integer per row, D differs between train and test, `k` is not an
 *   integer in [1, Ntrain], `temperature` <= 0, `batchSize` is not a positive integer,
 *   `numClasses` is not a positive integer, or a label is outside [0, numClasses). The promise
 *   rejects with it (the function is async).
 *
 * @example
 * <!-- snippet setup="features" -->
 * ```ts
 * import { knnEvaluate } from 'tfjs-contrastive';
 *
 * // features: encoder outputs [60000, 128] and [10000, 128]; labels: Int32Array
 * const { top1, top5 } = await knnEvaluate(trainFeatures, trainLabels, testFeatures, testLabels, {
 *   k: 200,
 *   temperature: 0.1,
 * });
 * console.log(`kNN top-1 ${(100 * top1).toFixed(2)} %`);
 * ```
 */
export async function knnEvaluate(
  trainFeatures: tf.Tensor2D,
  trainLabels: KnnLabels,
  testFeatures: tf.Tensor2D,
  testLabels: KnnLabels,
  options: KnnOptions = {},
): Promise<KnnResult> {
  const caller = 'knnEvaluate';
  const [nTrain, nTest, dim] = checkFeaturePair(caller, trainFeatures, testFeatures);
  const train = await readLabels(caller, 'trainLabels', trainLabels, nTrain, 'trainFeatures');
  const test = await readLabels(caller, 'testLabels', testLabels, nTest, 'testFeatures');
  const k = options.k ?? 200;
  checkNumber(caller, 'options.k', k, { integer: true, min: 1, max: nTrain });
  const temperature = options.temperature ?? 0.1;
  checkNumber(caller, 'options.temperature', temperature, { greaterThan: 0 });
  const batchSize =
    options.batchSize ?? Math.min(256, Math.max(1, Math.floor(SIMILARITY_BUDGET / nTrain)));
  checkNumber(caller, 'options.batchSize', batchSize, { integer: true, min: 1 });
  const numClasses = resolveNumClasses(caller, options.numClasses, train, test);

  const predictions = new Int32Array(nTest);
  const withTop5 = numClasses > 5;
  let hits1 = 0;
  let hits5 = 0;
  const scores = new Float64Array(numClasses);
  // voted[c] === row + 1 marks a class that received a vote in this row (no clearing per row).
  const voted = new Int32Array(numClasses);

  // [D, Ntrain]: an explicit transpose once, then plain products (transposed ones are slow on wasm).
  const bank = tf.tidy(() => tf.transpose(l2Normalize(trainFeatures)));
  try {
    for (let start = 0; start < nTest; start += batchSize) {
      const rows = Math.min(batchSize, nTest - start);
      const [values, indices] = tf.tidy(() => {
        const q = l2Normalize(tf.slice(testFeatures, [start, 0], [rows, dim]));
        const top = tf.topk(tf.matMul(q, bank), k, true);
        return [top.values, top.indices];
      });
      let sims: Float32Array;
      let idx: Int32Array;
      try {
        [sims, idx] = (await Promise.all([values.data(), indices.data()])) as [
          Float32Array,
          Int32Array,
        ];
      } finally {
        tf.dispose([values, indices]);
      }
      for (let r = 0; r < rows; r++) {
        const row = start + r;
        scores.fill(0);
        const base = r * k;
        // topk sorts descending: the first similarity is the row's largest.
        const top = sims[base] as number;
        for (let j = 0; j < k; j++) {
          const c = train[idx[base + j] as number] as number;
          scores[c] =
            (scores[c] as number) + Math.exp(((sims[base + j] as number) - top) / temperature);
          voted[c] = row + 1;
        }
        let best = 0;
        for (let c = 1; c < numClasses; c++) {
          if ((scores[c] as number) > (scores[best] as number)) best = c;
        }
        predictions[row] = best;
        const label = test[row] as number;
        if (best === label) hits1++;
        if (withTop5 && voted[label] === row + 1) {
          // Rank of the label in the order (score descending, class index ascending).
          const s = scores[label] as number;
          let rank = 0;
          for (let c = 0; c < numClasses && rank < 5; c++) {
            const sc = scores[c] as number;
            if (sc > s || (sc === s && c < label)) rank++;
          }
          if (rank < 5) hits5++;
        }
      }
    }
  } finally {
    bank.dispose();
  }
  const result: KnnResult = { top1: hits1 / nTest, predictions };
  return withTop5 ? { ...result, top5: hits5 / nTest } : result;
}
