/**
 * linearProbe against a PyTorch reference written from the definition (tests/fixtures/
 * linear-probe.json, written by scripts/fixtures/linear_probe.py: standardisation, autograd
 * cross-entropy, torch.optim.Adam with coupled weight decay, cosine or constant rate, early
 * stopping), then properties: early stopping keeps the best epoch, separable data, random labels,
 * invariance to the scale of a dimension, the held-out rows, label forms, errors; no leaks.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { ContrastiveError, SeededRandom } from '../../src/core/index.js';
import { linearProbe, type LinearProbeOptions } from '../../src/eval/index.js';
import fixtures from '../fixtures/linear-probe.json';
import { describeBackends, expectClose } from '../support/backends.js';

interface Data {
  train: number[][];
  trainLabels: number[];
  test: number[][];
  testLabels: number[];
}

/** Seeded Gaussian clusters, rounded to float32 (what the tensors hold). */
function clusters(
  nTrain: number,
  nTest: number,
  dim: number,
  classes: number,
  spread: number,
  seed: number,
): Data {
  const rng = new SeededRandom(seed);
  const centers = Array.from({ length: classes }, () =>
    Array.from({ length: dim }, () => rng.normal()),
  );
  const draw = (n: number): [number[][], number[]] => {
    const labels = Array.from({ length: n }, () => rng.integer(classes));
    const rows = labels.map((c) =>
      Array.from({ length: dim }, (_, j) => Math.fround(centers[c]![j]! + spread * rng.normal())),
    );
    return [rows, labels];
  };
  const [train, trainLabels] = draw(nTrain);
  const [test, testLabels] = draw(nTest);
  return { train, trainLabels, test, testLabels };
}

async function run(d: Data, options: LinearProbeOptions): ReturnType<typeof linearProbe> {
  const train = tf.tensor2d(d.train);
  const test = tf.tensor2d(d.test);
  try {
    return await linearProbe(train, d.trainLabels, test, d.testLabels, options);
  } finally {
    tf.dispose([train, test]);
  }
}

interface FixtureCase {
  name: string;
  num_classes: number;
  dim: number;
  train_features: number[];
  train_labels: number[];
  test_features: number[];
  test_labels: number[];
  options: LinearProbeOptions;
  expected: {
    mean: number[];
    scale: number[];
    kernel: number[];
    bias: number[];
    predictions: number[];
    top1: number;
    top5?: number;
    validationTop1?: number;
    epochs: number;
    bestEpoch: number;
  };
}

describeBackends('linearProbe against torch (tests/fixtures/linear-probe.json)', ({ tol }) => {
  for (const c of fixtures.cases as FixtureCase[]) {
    const nTrain = c.train_labels.length;
    const nTest = c.test_labels.length;
    it(`${c.name} (${nTrain} x ${nTest} x ${c.dim}, ${c.num_classes} classes)`, async () => {
      const train = tf.tensor2d(c.train_features, [nTrain, c.dim]);
      const test = tf.tensor2d(c.test_features, [nTest, c.dim]);
      const labels = tf.tensor1d(c.train_labels, 'int32');
      let got;
      try {
        got = await linearProbe(train, labels, test, Int32Array.from(c.test_labels), {
          ...c.options,
          numClasses: c.num_classes,
          returnWeights: true,
        });
      } finally {
        tf.dispose([train, test, labels]);
      }
      const e = c.expected;
      // float64 statistics rounded to float32: only the rounding differs.
      expectClose(got.weights!.mean, e.mean, 1e-6, 'mean');
      expectClose(got.weights!.scale, e.scale, 1e-6, 'scale');
      // Up to 40 full-batch Adam steps in float32 against float64 (measured: 1.5e-6 at most).
      expectClose(got.weights!.kernel, e.kernel, tol, 'kernel');
      expectClose(got.weights!.bias, e.bias, tol, 'bias');
      expect(got.epochs).toBe(e.epochs);
      expect(got.bestEpoch).toBe(e.bestEpoch);
      expect(got.validationTop1).toBe(e.validationTop1);
      expect(Array.from(got.predictions)).toEqual(e.predictions);
      expect(got.top1).toBeCloseTo(e.top1, 12);
      expect(got.top5).toBe(e.top5);
    });
  }

  it('the fixture covers what it claims: a constant dimension, early stopping, top-5', () => {
    const cases = fixtures.cases as FixtureCase[];
    expect(cases.some((c) => c.expected.scale.includes(1) && c.expected.kernel.includes(0))).toBe(
      true,
    );
    const early = cases.filter((c) => c.expected.epochs < c.options.epochs!);
    expect(early.length).toBeGreaterThan(0);
    for (const c of early) {
      expect(c.expected.epochs - c.expected.bestEpoch).toBe(c.options.patience);
    }
    expect(cases.some((c) => c.expected.top5 !== undefined)).toBe(true);
  });
});

describeBackends('linearProbe: early stopping, separability, chance, invariance', () => {
  it('stops after `patience` epochs without improvement and keeps the best epoch', async () => {
    // Overlapping clusters and a high constant rate: the validation top-1 peaks early.
    const d = clusters(300, 100, 6, 3, 2, 5);
    const options: LinearProbeOptions = {
      epochs: 60,
      patience: 3,
      batchSize: 64,
      learningRate: 0.05,
      learningRateSchedule: 'constant',
      weightDecay: 0,
      validationFraction: 0.2,
      seed: 4,
      returnWeights: true,
    };
    const a = await run(d, options);
    expect(a.epochs).toBeLessThan(60);
    expect(a.epochs).toBe(a.bestEpoch + 3);
    expect(a.validationTop1).toBeGreaterThan(0.4);
    // The same run cut at the best epoch: identical draws, so its last weights are the best
    // epoch's, and they must be what the early-stopped run, which went on for 3 more epochs at a
    // constant rate, used.
    const b = await run(d, { ...options, epochs: a.bestEpoch, patience: 60 });
    expect(b.epochs).toBe(a.bestEpoch);
    expect(b.bestEpoch).toBe(a.bestEpoch);
    expect(Array.from(b.weights!.kernel)).toEqual(Array.from(a.weights!.kernel));
    expect(Array.from(b.weights!.bias)).toEqual(Array.from(a.weights!.bias));
    expect(Array.from(b.predictions)).toEqual(Array.from(a.predictions));
    expect(b.top1).toBe(a.top1);
  });

  it('without held-out rows every epoch runs and the last one is used', async () => {
    const d = clusters(100, 20, 4, 3, 1, 6);
    const got = await run(d, { epochs: 7, patience: 1, validationFraction: 0 });
    expect(got.epochs).toBe(7);
    expect(got.bestEpoch).toBe(7);
    expect(got.validationTop1).toBeUndefined();
    expect(got.top5).toBeUndefined();
  });

  it('well-separated classes are classified perfectly (top-1 = top-5 = 1)', async () => {
    // Class c lives near axis c.
    const rng = new SeededRandom(3);
    const point = (c: number): number[] =>
      Array.from({ length: 10 }, (_, j) => (j === c ? 1 : 0) + 0.05 * rng.normal());
    const trainLabels = Array.from({ length: 500 }, (_, i) => i % 10);
    const testLabels = Array.from({ length: 100 }, (_, i) => (i * 7) % 10);
    const got = await run(
      { train: trainLabels.map(point), trainLabels, test: testLabels.map(point), testLabels },
      { epochs: 10 },
    );
    expect(got.top1).toBe(1);
    expect(got.top5).toBe(1);
    expect(got.validationTop1).toBe(1);
    expect(Array.from(got.predictions)).toEqual(testLabels);
  });

  it('labels independent of the features give about chance accuracy', async () => {
    const d = clusters(2000, 1000, 16, 4, 1, 8);
    const rng = new SeededRandom(9);
    const shuffled: Data = {
      ...d,
      trainLabels: d.trainLabels.map(() => rng.integer(4)),
      testLabels: d.testLabels.map(() => rng.integer(4)),
    };
    const got = await run(shuffled, { epochs: 10 });
    // Chance is 0.25; the binomial standard deviation over 1000 test rows is 0.014.
    expect(Math.abs(got.top1 - 0.25)).toBeLessThan(0.06);
    // The same features with their true labels are far above chance: the probe does learn.
    expect((await run(d, { epochs: 10 })).top1).toBeGreaterThan(0.6);
  });

  it('scaling or shifting a dimension changes nothing but rounding', async () => {
    const d = clusters(400, 200, 5, 4, 1.2, 10);
    const transform = (rows: number[][]): number[][] =>
      rows.map((r) =>
        r.map((v, j) => (j === 0 ? v * 1000 : j === 1 ? v * 1e-3 : j === 2 ? v + 500 : v)),
      );
    const t: Data = { ...d, train: transform(d.train), test: transform(d.test) };
    const options: LinearProbeOptions = { epochs: 8, batchSize: 64, returnWeights: true };
    const a = await run(d, options);
    const b = await run(t, options);
    expectClose(b.weights!.scale[0]!, 1000 * a.weights!.scale[0]!, 1e-5, 'scale[0]');
    expectClose(b.weights!.scale[1]!, 1e-3 * a.weights!.scale[1]!, 1e-5, 'scale[1]');
    expectClose(b.weights!.mean[2]!, a.weights!.mean[2]! + 500, 1e-5, 'mean[2]');
    expectClose(b.weights!.kernel, a.weights!.kernel, 1e-3, 'kernel');
    const agree = a.predictions.filter((p, i) => p === b.predictions[i]).length;
    expect(agree).toBeGreaterThanOrEqual(198);
    expect(Math.abs(a.top1 - b.top1)).toBeLessThanOrEqual(0.01);
  });

  it('the statistics come from the training rows only, not the held-out ones', async () => {
    const d = clusters(60, 10, 3, 2, 1, 11);
    const held = [0, 7, 33];
    // Outliers in the held-out rows would move the mean and std by far more than rounding.
    const train = d.train.map((r, i) => (held.includes(i) ? r.map(() => 1e4) : r));
    const got = await run(
      { ...d, train },
      { epochs: 2, validationIndices: held, returnWeights: true },
    );
    const rows = train.filter((_, i) => !held.includes(i));
    for (let j = 0; j < 3; j++) {
      const mean = rows.reduce((s, r) => s + r[j]!, 0) / rows.length;
      const std = Math.sqrt(rows.reduce((s, r) => s + (r[j]! - mean) ** 2, 0) / rows.length);
      expectClose(got.weights!.mean[j]!, mean, 1e-6, `mean[${j}]`);
      expectClose(got.weights!.scale[j]!, std, 1e-6, `scale[${j}]`);
    }
  });

  it('the seed draws the held-out rows and the order; full-batch steps ignore the order', async () => {
    const d = clusters(80, 20, 4, 3, 1.2, 12);
    const base: LinearProbeOptions = { epochs: 3, batchSize: 16, returnWeights: true };
    const a = await run(d, { ...base, seed: 1 });
    const again = await run(d, { ...base, seed: 1 });
    const other = await run(d, { ...base, seed: 2 });
    expect(Array.from(again.weights!.kernel)).toEqual(Array.from(a.weights!.kernel));
    // Another split: other training rows, so other statistics.
    expect(Array.from(other.weights!.mean)).not.toEqual(Array.from(a.weights!.mean));
    // Same split (none), other order: different mini-batches, but one full batch is one batch.
    const none = { ...base, validationFraction: 0 };
    const m1 = await run(d, { ...none, seed: 1 });
    const m2 = await run(d, { ...none, seed: 2 });
    expect(Array.from(m2.weights!.mean)).toEqual(Array.from(m1.weights!.mean));
    expect(Array.from(m2.weights!.kernel)).not.toEqual(Array.from(m1.weights!.kernel));
    const f1 = await run(d, { ...none, batchSize: 80, seed: 1 });
    const f2 = await run(d, { ...none, batchSize: 80, seed: 2 });
    expect(Array.from(f2.weights!.kernel)).toEqual(Array.from(f1.weights!.kernel));
  });

  it('labels as an int32 tensor, an Int32Array or an array give the same answer', async () => {
    const d = clusters(50, 20, 4, 6, 1.2, 13);
    const train = tf.tensor2d(d.train);
    const test = tf.tensor2d(d.test);
    const trainT = tf.tensor1d(d.trainLabels, 'int32');
    const testT = tf.tensor1d(d.testLabels, 'int32');
    try {
      const a = await linearProbe(train, trainT, test, testT, { epochs: 3 });
      const b = await linearProbe(train, Int32Array.from(d.trainLabels), test, d.testLabels, {
        epochs: 3,
      });
      expect(Array.from(a.predictions)).toEqual(Array.from(b.predictions));
      expect(a.top1).toBe(b.top1);
      expect(a.top5).toBe(b.top5);
      expect(a.top5).toBeDefined();
    } finally {
      tf.dispose([train, test, trainT, testT]);
    }
  });
});

describeBackends('linearProbe: errors name the argument, the expectation and the value', () => {
  const d = clusters(10, 4, 3, 3, 1, 1);

  async function rejects(
    call: (t: { train: tf.Tensor2D; test: tf.Tensor2D }) => Promise<unknown>,
    message: string,
  ): Promise<void> {
    const train = tf.tensor2d(d.train);
    const test = tf.tensor2d(d.test);
    try {
      await expect(call({ train, test })).rejects.toThrow(ContrastiveError);
      await expect(call({ train, test })).rejects.toThrow(message);
    } finally {
      tf.dispose([train, test]);
    }
  }

  it('rejects bad features', async () => {
    const rank1 = tf.zeros([10]);
    const ints = tf.zeros([10, 3], 'int32');
    const empty = tf.zeros([0, 3]);
    const wide = tf.zeros([4, 5]);
    try {
      await rejects(
        ({ test }) => linearProbe(rank1 as tf.Tensor2D, d.trainLabels, test, d.testLabels),
        "linearProbe: argument 'trainFeatures' must be a float32 tensor of rank 2 [Ntrain, D], but received a float32 tensor of shape [10].",
      );
      await rejects(
        ({ test }) => linearProbe(ints as tf.Tensor2D, d.trainLabels, test, d.testLabels),
        "argument 'trainFeatures' must be a float32 tensor",
      );
      await rejects(
        ({ train }) => linearProbe(train, d.trainLabels, empty as tf.Tensor2D, []),
        "linearProbe: argument 'testFeatures' must be a float32 tensor [Ntest >= 1, D], but received a float32 tensor of shape [0, 3].",
      );
      await rejects(
        ({ train }) => linearProbe(train, d.trainLabels, wide as tf.Tensor2D, d.testLabels),
        "argument 'testFeatures' must be a float32 tensor [Ntest, 3] (the D of 'trainFeatures'), but received a float32 tensor of shape [4, 5].",
      );
    } finally {
      tf.dispose([rank1, ints, empty, wide]);
    }
  });

  it('rejects labels that do not match the features', async () => {
    const floatLabels = tf.zeros([10]);
    try {
      await rejects(
        ({ train, test }) => linearProbe(train, d.trainLabels.slice(1), test, d.testLabels),
        "linearProbe: argument 'trainLabels' must be 10 labels, one per row of 'trainFeatures', but received an array of length 9.",
      );
      await rejects(
        ({ train, test }) => linearProbe(train, floatLabels as tf.Tensor1D, test, d.testLabels),
        "argument 'trainLabels' must be a int32 tensor of shape [10]",
      );
      await rejects(
        ({ train, test }) => linearProbe(train, d.trainLabels, test, [0, 1, 1.5, 2]),
        "linearProbe: argument 'testLabels[2]' must be a non-negative integer class label, but received 1.5.",
      );
      await rejects(
        ({ train, test }) => linearProbe(train, d.trainLabels, test, 'abc' as unknown as number[]),
        "argument 'testLabels' must be an int32 tensor, an Int32Array or an array of integers",
      );
      await rejects(
        ({ train, test }) =>
          linearProbe(train, d.trainLabels, test, [0, 1, 2, 7], { numClasses: 3 }),
        "linearProbe: argument 'testLabels[3]' must be an integer class label in [0, 3), but received 7.",
      );
    } finally {
      floatLabels.dispose();
    }
  });

  it('rejects features that are not finite', async () => {
    const nan = d.train.map((r, i) => (i === 2 ? [r[0]!, NaN, r[2]!] : r));
    const inf = d.test.map((r, i) => (i === 1 ? [Infinity, r[1]!, r[2]!] : r));
    const train = tf.tensor2d(nan);
    const test = tf.tensor2d(inf);
    const good = tf.tensor2d(d.test);
    try {
      await expect(linearProbe(train, d.trainLabels, good, d.testLabels)).rejects.toThrow(
        "linearProbe: argument 'trainFeatures' must be a tensor of finite values, but received NaN at [2, 1].",
      );
      const fine = tf.tensor2d(d.train);
      try {
        await expect(linearProbe(fine, d.trainLabels, test, d.testLabels)).rejects.toThrow(
          "linearProbe: argument 'testFeatures' must be a tensor of finite values, but received Infinity at [1, 0].",
        );
      } finally {
        fine.dispose();
      }
    } finally {
      tf.dispose([train, test, good]);
    }
  });

  it('rejects bad options', async () => {
    const call =
      (options: LinearProbeOptions) =>
      ({ train, test }: { train: tf.Tensor2D; test: tf.Tensor2D }) =>
        linearProbe(train, d.trainLabels, test, d.testLabels, options);
    const cases: [LinearProbeOptions, string][] = [
      [
        { epochs: 0 },
        "linearProbe: argument 'options.epochs' must be an integer >= 1, but received 0.",
      ],
      [{ epochs: 2.5 }, "argument 'options.epochs' must be an integer >= 1"],
      [{ patience: 0 }, "argument 'options.patience' must be an integer >= 1, but received 0."],
      [{ batchSize: -1 }, "argument 'options.batchSize' must be an integer >= 1, but received -1."],
      [
        { learningRate: 0 },
        "argument 'options.learningRate' must be a finite number > 0, but received 0.",
      ],
      [
        { learningRate: NaN },
        "argument 'options.learningRate' must be a finite number > 0, but received NaN.",
      ],
      [
        { learningRateSchedule: 'step' as 'cosine' },
        "argument 'options.learningRateSchedule' must be one of 'cosine', 'constant', but received a string \"step\".",
      ],
      [
        { weightDecay: -1e-4 },
        "argument 'options.weightDecay' must be a finite number >= 0, but received -0.0001.",
      ],
      [
        { validationFraction: 1 },
        "argument 'options.validationFraction' must be a finite number >= 0 and < 1, but received 1.",
      ],
      [
        { validationFraction: -0.1 },
        "argument 'options.validationFraction' must be a finite number >= 0 and < 1",
      ],
      [
        { validationFraction: 0.96 },
        "linearProbe: argument 'options.validationFraction' must be a fraction that leaves at least one of the 10 training rows to train on (0 to hold out none), but received 0.96.",
      ],
      [
        { validationIndices: 3 as unknown as number[] },
        "argument 'options.validationIndices' must be an Int32Array or an array of distinct row indices in [0, 10), but received 3.",
      ],
      [
        { validationIndices: [1, 10] },
        "argument 'options.validationIndices[1]' must be a row index in [0, 10), but received 10.",
      ],
      [
        { validationIndices: [0.5] },
        "argument 'options.validationIndices[0]' must be a row index in [0, 10), but received 0.5.",
      ],
      [
        { validationIndices: [2, 3, 2] },
        "argument 'options.validationIndices[2]' must be an index not given before, but received 2.",
      ],
      [
        { validationIndices: Array.from({ length: 10 }, (_, i) => i) },
        "argument 'options.validationIndices' must be fewer than 10 indices (at least one row of 'trainFeatures' must be left to train on), but received an array of length 10.",
      ],
      [{ seed: 1.5 }, "argument 'options.seed' must be an integer, but received 1.5."],
      [
        { returnWeights: 1 as unknown as boolean },
        "argument 'options.returnWeights' must be true or false, but received 1.",
      ],
      [{ numClasses: 0 }, "argument 'options.numClasses' must be an integer >= 1, but received 0."],
      [{ numClasses: 2 }, "argument 'trainLabels["],
    ];
    for (const [options, message] of cases) await rejects(call(options), message);
  });
});
