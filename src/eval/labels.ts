/**
 * Internal: the argument checks that the classifiers of frozen features (knnEvaluate,
 * linearProbe) share: a pair of [N, D] float32 feature tensors and their class labels. Not
 * exported from the package; each public function passes its own name for the messages.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError, checkNumber, checkTensor, describeValue } from '../core/index.js';

/** Labels: an int32 tensor [N], an `Int32Array` or an array of integers, one per feature row. */
export type KnnLabels = tf.Tensor1D | Int32Array | readonly number[];

/** Throws the library's error for `caller`'s `argument`. */
export function fail(caller: string, argument: string, expected: string, value: unknown): never {
  throw new ContrastiveError({ caller, argument, expected, received: describeValue(value) });
}

/**
 * Checks `trainFeatures` [Ntrain, D] and `testFeatures` [Ntest, D]: float32, rank 2, at least
 * one row, and the same D.
 *
 * @returns `[nTrain, nTest, dim]`.
 */
export function checkFeaturePair(
  caller: string,
  trainFeatures: unknown,
  testFeatures: unknown,
): [number, number, number] {
  checkTensor(caller, 'trainFeatures', trainFeatures, {
    rank: 2,
    dtype: 'float32',
    layout: '[Ntrain, D]',
  });
  checkTensor(caller, 'testFeatures', testFeatures, {
    rank: 2,
    dtype: 'float32',
    layout: '[Ntest, D]',
  });
  const [nTrain, dim] = trainFeatures.shape as [number, number];
  const [nTest, testDim] = testFeatures.shape as [number, number];
  if (nTrain < 1) {
    fail(caller, 'trainFeatures', 'a float32 tensor [Ntrain >= 1, D]', trainFeatures);
  }
  if (nTest < 1) fail(caller, 'testFeatures', 'a float32 tensor [Ntest >= 1, D]', testFeatures);
  if (testDim !== dim) {
    fail(
      caller,
      'testFeatures',
      `a float32 tensor [Ntest, ${dim}] (the D of 'trainFeatures')`,
      testFeatures,
    );
  }
  return [nTrain, nTest, dim];
}

/**
 * Labels on the host, checked to be one non-negative integer per row of the features named
 * `of`; the upper bound is checked by {@link checkLabelRange} once the number of classes is known.
 */
export async function readLabels(
  caller: string,
  argument: string,
  labels: unknown,
  n: number,
  of: string,
): Promise<Int32Array> {
  const count = `${n} labels, one per row of '${of}'`;
  if (labels instanceof tf.Tensor) {
    checkTensor(caller, argument, labels, {
      dtype: 'int32',
      shape: [n],
      layout: `[${n}] (${count})`,
    });
    return (await labels.data()) as Int32Array;
  }
  if (!(labels instanceof Int32Array) && !Array.isArray(labels)) {
    fail(
      caller,
      argument,
      `an int32 tensor, an Int32Array or an array of integers (${count})`,
      labels,
    );
  }
  const values = labels as ArrayLike<unknown>;
  if (values.length !== n) fail(caller, argument, count, labels);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 2 ** 31 - 1) {
      fail(caller, `${argument}[${i}]`, 'a non-negative integer class label', v);
    }
    out[i] = v;
  }
  return out;
}

/**
 * The number of classes: `option` when given (checked to be a positive integer), else the largest
 * label of `train` and `test` plus one; then every label is checked to be below it.
 */
export function resolveNumClasses(
  caller: string,
  option: number | undefined,
  train: Int32Array,
  test: Int32Array,
): number {
  let numClasses = option;
  if (numClasses === undefined) {
    let max = 0;
    for (const v of train) max = Math.max(max, v);
    for (const v of test) max = Math.max(max, v);
    numClasses = max + 1;
  } else {
    checkNumber(caller, 'options.numClasses', numClasses, { integer: true, min: 1 });
  }
  checkLabelRange(caller, 'trainLabels', train, numClasses);
  checkLabelRange(caller, 'testLabels', test, numClasses);
  return numClasses;
}

/** Checks that every label is in [0, numClasses). */
export function checkLabelRange(
  caller: string,
  argument: string,
  labels: Int32Array,
  numClasses: number,
): void {
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i] as number;
    if (v < 0 || v >= numClasses) {
      fail(caller, `${argument}[${i}]`, `an integer class label in [0, ${numClasses})`, v);
    }
  }
}
