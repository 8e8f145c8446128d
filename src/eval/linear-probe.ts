import * as tf from '@tensorflow/tfjs-core';
import {
  ContrastiveError,
  SeededRandom,
  checkBoolean,
  checkNumber,
  checkOneOf,
} from '../core/index.js';
import { checkFeaturePair, fail, readLabels, resolveNumClasses, type KnnLabels } from './labels.js';

/** Options of {@link linearProbe}. */
export interface LinearProbeOptions {
  /** The most epochs (passes over the training rows) to run. Default `30`. */
  readonly epochs?: number;
  /**
   * Early stopping: training stops once the validation top-1 has not improved for this many
   * epochs. Default `10`: under the cosine schedule the validation accuracy mostly still rises
   * until the last epochs, with epoch-to-epoch noise of a few tenths of a point on 6,000
   * held-out rows; a patience of 5 stopped a Fashion-MNIST probe at epoch 14, 0.4 points of
   * top-1 below the full run. A value `>= epochs` runs every epoch (the best epoch's weights are
   * still the ones used); without held-out rows it has no effect.
   */
  readonly patience?: number;
  /**
   * Training rows per Adam step; the last step of an epoch takes the rest. Default `512`:
   * smaller batches reach a slightly better optimum in 30 epochs (Fashion-MNIST features: 256
   * 0.8273, 512 0.8263, 1024 0.8255, 2048 0.8228), but on wasm with 2 threads (selectBackend's
   * default on 2 cores) a step's small ops cost mostly thread synchronisation, and 256 took twice
   * as long as 1024.
   */
  readonly batchSize?: number;
  /**
   * Adam's (peak) learning rate; betas 0.9 and 0.999 and epsilon 1e-8 are fixed (PyTorch's
   * defaults). Default `1e-2`, for standardised features.
   */
  readonly learningRate?: number;
  /**
   * How the learning rate moves over the steps: `'cosine'` decays it from `learningRate` as
   * `learningRate * (1 + cos(pi * s / S)) / 2` at step s = 0 .. S - 1 of S = `epochs` x
   * (steps per epoch), without restarts or warm-up (SGDR's half cosine, Loshchilov and Hutter
   * 2017, which DINO's linear evaluation also uses); `'constant'` keeps it. Default `'cosine'`:
   * with a constant rate the mini-batch noise kept the probe's top-1 on Fashion-MNIST features
   * 0.5 points below the cosine run and 0.7 below the exact optimum of the same objective.
   */
  readonly learningRateSchedule?: 'cosine' | 'constant';
  /**
   * L2 weight decay `lambda` on the weight matrix W (not the bias): `(lambda / 2) ||W||^2` is
   * added to the loss, so `lambda W` to W's gradient, as `torch.optim.Adam(weight_decay=lambda)`
   * does (coupled, not AdamW's decoupled decay), so that the probe minimises one well-defined
   * convex objective whatever the optimiser. Default `1e-4`: small enough not to bias a
   * 60,000-sample probe (the exact optimum's test top-1 on Fashion-MNIST features is the same as
   * without decay to 0.03 points; `5e-4` costs 0.3), large enough to keep W bounded on small or
   * separable training sets, whose unregularised optimum lies at infinity.
   */
  readonly weightDecay?: number;
  /**
   * The fraction of the training rows held out, at random (seeded), for early stopping, in
   * [0, 1). `round(fraction x Ntrain)` rows, at least one when the fraction is positive. Default
   * `0.1`. With `0` every training row is used for training and the last epoch's weights are used.
   */
  readonly validationFraction?: number;
  /**
   * The rows of `trainFeatures` to hold out for early stopping, distinct indices in [0, Ntrain),
   * fewer than Ntrain; replaces the random `validationFraction` split (for a fixed, published
   * split, or to reproduce a run elsewhere).
   */
  readonly validationIndices?: Int32Array | readonly number[];
  /** The seed of the held-out split and of the order of the rows in each epoch. Default `0`. */
  readonly seed?: number;
  /** The number of classes C. Default: the largest label (train or test) plus one. */
  readonly numClasses?: number;
  /** Also return the standardisation and the classifier's weights (`weights`). Default `false`. */
  readonly returnWeights?: boolean;
}

/**
 * The fitted probe, on the host: `logits = ((x - mean) / scale) . kernel + bias` for a feature row
 * `x` [D].
 */
export interface LinearProbeWeights {
  /** The per-dimension mean of the training rows (held-out rows excluded), [D]. */
  readonly mean: Float32Array;
  /**
   * The per-dimension standard deviation of the training rows (population, divided by n), [D];
   * `1` for a dimension treated as constant (see {@link linearProbe}).
   */
  readonly scale: Float32Array;
  /** The weight matrix W of the best epoch, [D, C] row-major (`kernel[d * C + c]`). */
  readonly kernel: Float32Array;
  /** The bias b of the best epoch, [C]. */
  readonly bias: Float32Array;
}

/** What {@link linearProbe} returns. */
export interface LinearProbeResult {
  /** The fraction of test samples whose predicted class is their label, in [0, 1]. */
  readonly top1: number;
  /**
   * The fraction of test samples whose label is among the 5 classes of largest logit, in [0, 1];
   * present only when `numClasses > 5`.
   */
  readonly top5?: number;
  /** The predicted class (largest logit) of each test sample, [Ntest]. */
  readonly predictions: Int32Array;
  /** The validation top-1 of the best epoch, in [0, 1]; absent when no row is held out. */
  readonly validationTop1?: number;
  /** The number of epochs actually run (fewer than `epochs` when early stopping stopped it). */
  readonly epochs: number;
  /**
   * The epoch (1-based) whose weights classify the test set: the first epoch of the largest
   * validation top-1, or the last epoch run when no row is held out.
   */
  readonly bestEpoch: number;
  /** The standardisation and the weights used on the test set; only with `returnWeights`. */
  readonly weights?: LinearProbeWeights;
}

/**
 * A dimension whose standard deviation is at most this fraction of its root mean square is treated
 * as constant: float32 carries 24 bits (6e-8 relative), so a smaller spread is rounding noise,
 * which dividing by the standard deviation would blow up to unit variance.
 */
const CONSTANT_RELATIVE_STD = 1e-6;
/** The smallest normal float32: a smaller scale would be flushed or lose its digits. */
const FLOAT32_MIN_NORMAL = 2 ** -126;

// Adam's constants: PyTorch's defaults (tfjs's tf.train.adam would take its epsilon from the
// backend: 1e-7 on cpu/wasm, 1e-4 on a float16 webgl).
const BETA1 = 0.9;
const BETA2 = 0.999;
const ADAM_EPSILON = 1e-8;

/**
 * The held-out rows: the given indices (checked) or a seeded random `round(fraction x n)` of them.
 * Both lists are returned in ascending order.
 */
function splitRows(
  caller: string,
  n: number,
  options: LinearProbeOptions,
  rng: SeededRandom,
): { fit: Int32Array; validation: Int32Array } {
  const held = new Uint8Array(n);
  let count = 0;
  if (options.validationIndices !== undefined) {
    const given = options.validationIndices as unknown;
    if (!(given instanceof Int32Array) && !Array.isArray(given)) {
      fail(
        caller,
        'options.validationIndices',
        `an Int32Array or an array of distinct row indices in [0, ${n})`,
        given,
      );
    }
    const values = given as ArrayLike<unknown>;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= n) {
        fail(caller, `options.validationIndices[${i}]`, `a row index in [0, ${n})`, v);
      }
      if (held[v] === 1) {
        fail(caller, `options.validationIndices[${i}]`, 'an index not given before', v);
      }
      held[v] = 1;
      count++;
    }
    if (count >= n) {
      fail(
        caller,
        'options.validationIndices',
        `fewer than ${n} indices (at least one row of 'trainFeatures' must be left to train on)`,
        given,
      );
    }
  } else {
    const fraction = options.validationFraction ?? 0.1;
    checkNumber(caller, 'options.validationFraction', fraction, { min: 0, lessThan: 1 });
    count = fraction > 0 ? Math.max(1, Math.round(fraction * n)) : 0;
    if (count >= n) {
      fail(
        caller,
        'options.validationFraction',
        `a fraction that leaves at least one of the ${n} training rows to train on (0 to hold out none)`,
        fraction,
      );
    }
    const order = rng.permutation(n);
    for (let i = 0; i < count; i++) held[order[i] as number] = 1;
  }
  const fit = new Int32Array(n - count);
  const validation = new Int32Array(count);
  let f = 0;
  let v = 0;
  for (let i = 0; i < n; i++) {
    if (held[i] === 1) validation[v++] = i;
    else fit[f++] = i;
  }
  return { fit, validation };
}

function notFinite(caller: string, argument: string, i: number, dim: number, v: unknown): never {
  throw new ContrastiveError({
    caller,
    argument,
    expected: 'a tensor of finite values',
    received: `${String(v)} at [${Math.floor(i / dim)}, ${i % dim}]`,
  });
}

/**
 * The per-dimension mean and standard deviation of the given rows, in float64 on the host (a
 * device reduction loses digits over many rows on wasm); a constant dimension gets scale 1.
 */
function standardisation(
  caller: string,
  values: Float32Array,
  rows: Int32Array,
  dim: number,
): { mean: Float32Array; scale: Float32Array } {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) notFinite(caller, 'trainFeatures', i, dim, values[i]);
  }
  const sum = new Float64Array(dim);
  for (const r of rows) {
    const base = r * dim;
    for (let d = 0; d < dim; d++) sum[d] = (sum[d] as number) + (values[base + d] as number);
  }
  const mean64 = sum.map((s) => s / rows.length);
  const squares = new Float64Array(dim);
  for (const r of rows) {
    const base = r * dim;
    for (let d = 0; d < dim; d++) {
      const c = (values[base + d] as number) - (mean64[d] as number);
      squares[d] = (squares[d] as number) + c * c;
    }
  }
  const mean = new Float32Array(dim);
  const scale = new Float32Array(dim);
  for (let d = 0; d < dim; d++) {
    const m = mean64[d] as number;
    const variance = (squares[d] as number) / rows.length;
    const std = Math.sqrt(variance);
    const rms = Math.sqrt(m * m + variance);
    mean[d] = m;
    scale[d] = std > CONSTANT_RELATIVE_STD * rms && std >= FLOAT32_MIN_NORMAL ? std : 1;
  }
  return { mean, scale };
}

// The predicted class of each row of host logits [n, c] (ties: the smaller class index), and how
// many rows' labels are the prediction / among the 5 largest logits.
function score(
  logits: Float32Array,
  labels: Int32Array,
  rows: Int32Array | null,
  c: number,
): { predictions: Int32Array; hits1: number; hits5: number } {
  const n = logits.length / c;
  const predictions = new Int32Array(n);
  let hits1 = 0;
  let hits5 = 0;
  for (let i = 0; i < n; i++) {
    const base = i * c;
    let best = 0;
    for (let j = 1; j < c; j++) {
      if ((logits[base + j] as number) > (logits[base + best] as number)) best = j;
    }
    predictions[i] = best;
    const label = labels[rows === null ? i : (rows[i] as number)] as number;
    if (best === label) hits1++;
    const s = logits[base + label] as number;
    let rank = 0;
    for (let j = 0; j < c && rank < 5; j++) {
      const v = logits[base + j] as number;
      if (v > s || (v === s && j < label)) rank++;
    }
    if (rank < 5) hits5++;
  }
  return { predictions, hits1, hits5 };
}

/**
 * The linear-evaluation protocol on frozen features: a softmax-regression classifier (one dense
 * layer, W [D, C] and b [C], no hidden layer) trained on the standardised training features with
 * cross-entropy, L2 weight decay and Adam, early-stopped on held-out training rows, and scored on
 * the test set. It sits beside {@link knnEvaluate} as the second standard measure of a
 * self-supervised representation (Zhang et al. 2016, "Colorful Image Colorization"; reported by
 * SimCLR, MoCo, BYOL and DINO), here as a fast probe on fixed features rather than the papers'
 * long training on augmented images (see docs/eval.md).
 *
 * The procedure, in order:
 * 1. **Split.** `options.validationIndices`, or `round(validationFraction x Ntrain)` rows drawn
 *    at random with `seed` (default 10 %), are held out of training for early stopping.
 * 2. **Standardise.** The per-dimension mean and population standard deviation of the remaining
 *    training rows (in float64 on the host) turn every feature `x` into `(x - mean) / scale`, for
 *    the training, held-out and test rows alike. A dimension whose standard deviation is at most
 *    1e-6 of its root mean square (a constant one, or float32 rounding noise) gets `scale` 1, so
 *    it is only centred (to 0 when constant), as scikit-learn's `StandardScaler` does; the rule is
 *    relative, so scaling a dimension changes nothing.
 * 3. **Train.** W and b start at zero (the problem is convex, so no random initialisation is
 *    needed, and runs are reproducible). Each epoch visits the training rows in a new seeded
 *    random order in mini-batches of `batchSize` (the last one smaller); each mini-batch takes
 *    one Adam step (betas 0.9 and 0.999, epsilon 1e-8; the update of `torch.optim.Adam`) at the
 *    step's `learningRate` (cosine-decayed by default) on the batch's mean cross-entropy plus
 *    `(weightDecay / 2) ||W||^2` (the bias is not decayed). The gradient is the closed form
 *    `dW = X^T (softmax(XW + b) - Y) / B + weightDecay W`, `db = mean(softmax(XW + b) - Y)`, so
 *    nothing needs a registered gradient (in Node tfjs-core alone registers none) and every
 *    backend runs it.
 * 4. **Early stopping.** After each epoch the held-out top-1 is measured; the weights of the
 *    first epoch with the largest one are kept, and training stops after `patience` epochs
 *    without an improvement, or after `epochs`. With no held-out rows every epoch runs and the
 *    last weights are kept.
 * 5. **Test.** The kept weights classify the test features: the prediction is the class of
 *    largest logit (ties: the smaller class index); top-5 counts the label among the 5 largest
 *    logits (in the same order).
 *
 * The training features are read back to the host once (for the statistics); training,
 * validation and test run on the device. With the defaults, 60,000 x 128 features and 10
 * classes take about 4 s of CPU time on the wasm backend with one thread (docs/eval.md).
 *
 * @param trainFeatures - [Ntrain, D] float32 features of the labelled training set.
 * @param trainLabels - [Ntrain] class labels: an int32 tensor, an `Int32Array` or integers.
 * @param testFeatures - [Ntest, D] float32 features to classify.
 * @param testLabels - [Ntest] class labels of the test samples.
 * @param options - `epochs` (30), `patience` (10), `batchSize` (512), `learningRate` (1e-2),
 *   `learningRateSchedule` ('cosine'), `weightDecay` (1e-4), `validationFraction` (0.1) or
 *   `validationIndices`, `seed` (0), `numClasses` (largest label + 1), `returnWeights` (false).
 * @returns a promise of `{ top1, top5 (when numClasses > 5), predictions, validationTop1 (when
 *   rows are held out), epochs, bestEpoch, weights (with returnWeights) }`, fractions in [0, 1].
 * @throws {@link ContrastiveError} when a feature tensor is not [N, D] float32 with N >= 1, D
 *   differs between train and test, the labels do not give one integer per row, `epochs`,
 *   `patience` or `batchSize` is not a positive integer, `learningRate` <= 0,
 *   `learningRateSchedule` is not `'cosine'` or `'constant'`, `weightDecay` < 0,
 *   `validationFraction` is outside [0, 1) or leaves no row to train on, `validationIndices` are
 *   not distinct row indices leaving a row to train on, `seed` is not an integer, `returnWeights`
 *   is not a boolean, `numClasses` is not a positive integer, a label is outside
 *   [0, numClasses), or a feature is NaN or infinite (the training features are checked before
 *   training, the test features through their logits, at the end). The promise rejects with it
 *   (the function is async).
 *
 * @example
 * <!-- snippet setup="features" -->
 * ```ts
 * import { linearProbe } from 'tfjs-contrastive';
 *
 * // features: encoder outputs [60000, 128] and [10000, 128]; labels: Int32Array
 * const probe = await linearProbe(trainFeatures, trainLabels, testFeatures, testLabels, {
 *   seed: 1,
 * });
 * console.log(`linear top-1 ${(100 * probe.top1).toFixed(2)} %, epoch ${probe.bestEpoch}`);
 * ```
 */
export async function linearProbe(
  trainFeatures: tf.Tensor2D,
  trainLabels: KnnLabels,
  testFeatures: tf.Tensor2D,
  testLabels: KnnLabels,
  options: LinearProbeOptions = {},
): Promise<LinearProbeResult> {
  const caller = 'linearProbe';
  const [nTrain, nTest, dim] = checkFeaturePair(caller, trainFeatures, testFeatures);
  const train = await readLabels(caller, 'trainLabels', trainLabels, nTrain, 'trainFeatures');
  const test = await readLabels(caller, 'testLabels', testLabels, nTest, 'testFeatures');
  const epochs = options.epochs ?? 30;
  checkNumber(caller, 'options.epochs', epochs, { integer: true, min: 1 });
  const patience = options.patience ?? 10;
  checkNumber(caller, 'options.patience', patience, { integer: true, min: 1 });
  const batchSize = options.batchSize ?? 512;
  checkNumber(caller, 'options.batchSize', batchSize, { integer: true, min: 1 });
  const learningRate = options.learningRate ?? 1e-2;
  checkNumber(caller, 'options.learningRate', learningRate, { greaterThan: 0 });
  const weightDecay = options.weightDecay ?? 1e-4;
  checkNumber(caller, 'options.weightDecay', weightDecay, { min: 0 });
  const seed = options.seed ?? 0;
  checkNumber(caller, 'options.seed', seed, { integer: true });
  const schedule = options.learningRateSchedule ?? 'cosine';
  checkOneOf(caller, 'options.learningRateSchedule', schedule, ['cosine', 'constant']);
  const returnWeights = options.returnWeights ?? false;
  checkBoolean(caller, 'options.returnWeights', returnWeights);
  const numClasses = resolveNumClasses(caller, options.numClasses, train, test);

  // Two independent streams: changing the split does not change the epochs' orders.
  const root = new SeededRandom(seed);
  const splitRng = root.fork();
  const orderRng = root.fork();
  const { fit, validation } = splitRows(caller, nTrain, options, splitRng);
  const nFit = fit.length;
  const nVal = validation.length;

  const values = (await trainFeatures.data()) as Float32Array;
  const { mean, scale } = standardisation(caller, values, fit, dim);

  const onehot = new Float32Array(nFit * numClasses);
  for (let i = 0; i < nFit; i++) onehot[i * numClasses + (train[fit[i] as number] as number)] = 1;

  const owned: tf.Tensor[] = [];
  // The best epoch's parameters (a copy); theta itself is used when nothing is held out.
  let kept: tf.Tensor2D | undefined;
  const own = <T extends tf.Tensor>(t: T): T => {
    owned.push(t);
    return t;
  };
  try {
    const meanT = own(tf.tensor2d(mean, [1, dim]));
    const scaleT = own(tf.tensor2d(scale, [1, dim]));
    // Standardised features with a column of ones appended: W and b are one parameter matrix
    // theta = [W; b] of [D + 1, C], so a step takes one product and one Adam update, not two
    // (the wasm backend's time here is mostly per-op overhead on small tensors).
    const augment = (x: tf.Tensor2D): tf.Tensor2D =>
      tf.tidy(() =>
        tf.concat2d([tf.div<tf.Tensor2D>(tf.sub(x, meanT), scaleT), tf.ones([x.shape[0], 1])], 1),
      );
    const rowsOf = (rows: Int32Array): tf.Tensor2D =>
      rows.length === nTrain
        ? augment(trainFeatures)
        : tf.tidy(() => augment(tf.gather(trainFeatures, tf.tensor1d(rows, 'int32'))));
    const xFit = own(rowsOf(fit));
    const yFit = own(tf.tensor2d(onehot, [nFit, numClasses]));
    const xVal = nVal > 0 ? own(rowsOf(validation)) : undefined;
    const decay = new Float32Array(dim + 1).fill(weightDecay);
    decay[dim] = 0; // the bias is not decayed
    const decayT = own(tf.tensor2d(decay, [dim + 1, 1]));

    // tidy frees the zeros; it never frees variables.
    const zeros = (): tf.Variable<tf.Rank.R2> =>
      own(tf.tidy(() => tf.variable(tf.zeros<tf.Rank.R2>([dim + 1, numClasses]), false)));
    const theta = zeros();
    const m = zeros();
    const v = zeros();
    const stepsPerEpoch = Math.ceil(nFit / batchSize);
    const totalSteps = epochs * stepsPerEpoch;
    let t = 0;
    // One Adam step on the batch's mean cross-entropy plus (weightDecay / 2) ||W||^2, written as
    // torch.optim.Adam computes it (torch/optim/adam.py, _single_tensor_adam), with the gradient
    // in closed form.
    const step = (x: tf.Tensor2D, y: tf.Tensor2D, rows: number): void => {
      t++;
      const lr =
        schedule === 'cosine'
          ? 0.5 * learningRate * (1 + Math.cos((Math.PI * (t - 1)) / totalSteps))
          : learningRate;
      const bias1 = 1 - BETA1 ** t;
      const bias2 = 1 - BETA2 ** t;
      tf.tidy(() => {
        const residual = tf.sub(tf.softmax(tf.matMul(x, theta)), y);
        // An explicit transpose then a plain product: transposed products are slow on wasm.
        let grad: tf.Tensor = tf.div(tf.matMul(tf.transpose(x), residual), rows);
        if (weightDecay > 0) grad = tf.add(grad, tf.mul(theta, decayT));
        const m1 = tf.add(tf.mul(m, BETA1), tf.mul(grad, 1 - BETA1));
        const v1 = tf.add(tf.mul(v, BETA2), tf.mul(tf.square(grad), 1 - BETA2));
        const denom = tf.add(tf.div(tf.sqrt(v1), Math.sqrt(bias2)), ADAM_EPSILON);
        theta.assign(tf.sub(theta, tf.mul(tf.div(m1, denom), lr / bias1)));
        m.assign(m1 as tf.Tensor2D);
        v.assign(v1 as tf.Tensor2D);
      });
    };

    let bestTop1 = -1;
    let bestEpoch = 0;
    let ran = 0;
    for (let epoch = 1; epoch <= epochs; epoch++) {
      const order = orderRng.permutation(nFit);
      if (stepsPerEpoch === 1) {
        // One full-batch step: the order does not matter (it is still drawn, so that the stream
        // does not depend on the batch size).
        step(xFit, yFit, nFit);
      } else {
        for (let start = 0; start < nFit; start += batchSize) {
          const rows = Math.min(batchSize, nFit - start);
          tf.tidy(() => {
            const idx = tf.tensor1d(order.subarray(start, start + rows), 'int32');
            step(tf.gather(xFit, idx), tf.gather(yFit, idx), rows);
          });
        }
      }
      ran = epoch;
      if (xVal === undefined) {
        bestEpoch = epoch;
        continue;
      }
      const logits = tf.tidy(() => tf.matMul(xVal, theta));
      let host: Float32Array;
      try {
        host = (await logits.data()) as Float32Array;
      } finally {
        logits.dispose();
      }
      const top1 = score(host, train, validation, numClasses).hits1 / nVal;
      if (top1 > bestTop1) {
        bestTop1 = top1;
        bestEpoch = epoch;
        kept?.dispose();
        kept = tf.clone(theta);
      } else if (epoch - bestEpoch >= patience) {
        break;
      }
    }

    const best = kept ?? theta;
    const logits = own(tf.tidy(() => tf.matMul(augment(testFeatures), best)));
    const testLogits = (await logits.data()) as Float32Array;
    const bad = testLogits.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) {
      // The weights are finite (standardised, finite training rows): the test row is not.
      const row = Math.floor(bad / numClasses);
      const rowT = tf.slice(testFeatures, [row, 0], [1, dim]);
      let values: Float32Array;
      try {
        values = (await rowT.data()) as Float32Array;
      } finally {
        rowT.dispose();
      }
      const d = values.findIndex((x) => !Number.isFinite(x));
      throw new ContrastiveError({
        caller,
        argument: 'testFeatures',
        expected: 'a tensor of finite values',
        received:
          d >= 0
            ? `${String(values[d])} at [${row}, ${d}]`
            : `row ${row}, whose logits overflow float32`,
      });
    }
    const { predictions, hits1, hits5 } = score(testLogits, test, null, numClasses);
    let result: LinearProbeResult = {
      top1: hits1 / nTest,
      predictions,
      epochs: ran,
      bestEpoch,
    };
    if (numClasses > 5) result = { ...result, top5: hits5 / nTest };
    if (nVal > 0) result = { ...result, validationTop1: bestTop1 };
    if (returnWeights) {
      const values = (await best.data()) as Float32Array;
      const kernel = values.slice(0, dim * numClasses);
      const bias = values.slice(dim * numClasses);
      result = { ...result, weights: { mean, scale, kernel, bias } };
    }
    return result;
  } finally {
    tf.dispose(owned);
    kept?.dispose();
  }
}
