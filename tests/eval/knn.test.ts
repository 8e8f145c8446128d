/**
 * knnEvaluate against a brute-force weighted kNN written here in float64 (double loops), against
 * lightly's / MoCo's `knn_predict` in PyTorch (tests/fixtures/knn.json, written by
 * scripts/fixtures/knn.py), closed-form cases, chunking, label forms, and errors; no leaks.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { ContrastiveError, SeededRandom } from '../../src/core/index.js';
import { knnEvaluate, type KnnOptions } from '../../src/eval/index.js';
import fixtures from '../fixtures/knn.json';
import { describeBackends } from '../support/backends.js';

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
    const labels = Array.from({ length: n }, () => Math.floor(rng.uniform() * classes));
    const rows = labels.map((c) =>
      Array.from(
        { length: dim },
        (_, j) => Math.fround(centers[c]![j]! + spread * rng.normal()) as number,
      ),
    );
    return [rows, labels];
  };
  const [train, trainLabels] = draw(nTrain);
  const [test, testLabels] = draw(nTest);
  return { train, trainLabels, test, testLabels };
}

interface Reference {
  top1: number;
  top5: number | undefined;
  predictions: number[];
  /** Rows where float32 rounding could flip the answer (a near tie): must be none. */
  nearTies: number;
}

/**
 * The weighted kNN of InstDisc, by brute force in float64: cosine similarities by double loops,
 * a full sort, weights exp(sim / t), votes per class; classes ordered by score then index; a top-5
 * hit needs a vote.
 */
function bruteForce(d: Data, k: number, t: number, numClasses: number): Reference {
  const unit = (v: number[]): number[] => {
    const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    return v.map((x) => x / n);
  };
  const train = d.train.map(unit);
  let hits1 = 0;
  let hits5 = 0;
  let nearTies = 0;
  const predictions: number[] = [];
  d.test.forEach((row, i) => {
    const q = unit(row);
    const sims = train.map((x, j) => ({ j, s: x.reduce((acc, v, a) => acc + v * q[a]!, 0) }));
    sims.sort((a, b) => b.s - a.s);
    if (k < sims.length && sims[k - 1]!.s - sims[k]!.s < 1e-5) nearTies++;
    const scores = new Array<number>(numClasses).fill(0);
    const voted = new Array<boolean>(numClasses).fill(false);
    for (let n = 0; n < k; n++) {
      const c = d.trainLabels[sims[n]!.j]!;
      scores[c] = scores[c]! + Math.exp(sims[n]!.s / t);
      voted[c] = true;
    }
    const order = scores.map((s, c) => ({ s, c })).sort((a, b) => b.s - a.s || a.c - b.c);
    if (numClasses > 1 && (order[0]!.s - order[1]!.s) / order[0]!.s < 1e-5) nearTies++;
    const label = d.testLabels[i]!;
    predictions.push(order[0]!.c);
    if (order[0]!.c === label) hits1++;
    const rank = order.findIndex((o) => o.c === label);
    if (voted[label] && rank < 5) hits5++;
  });
  const n = d.test.length;
  return {
    top1: hits1 / n,
    top5: numClasses > 5 ? hits5 / n : undefined,
    predictions,
    nearTies,
  };
}

function tensors(d: Data): { train: tf.Tensor2D; test: tf.Tensor2D } {
  return { train: tf.tensor2d(d.train), test: tf.tensor2d(d.test) };
}

async function run(d: Data, options: KnnOptions): ReturnType<typeof knnEvaluate> {
  const { train, test } = tensors(d);
  try {
    return await knnEvaluate(train, d.trainLabels, test, d.testLabels, options);
  } finally {
    tf.dispose([train, test]);
  }
}

describeBackends('knnEvaluate against a brute-force weighted kNN', () => {
  const data = clusters(60, 40, 8, 7, 1.3, 11);
  for (const k of [1, 4, 17, 60]) {
    for (const temperature of [0.05, 0.1, 1]) {
      it(`k ${k}, temperature ${temperature}: predictions, top-1 and top-5`, async () => {
        const ref = bruteForce(data, k, temperature, 7);
        expect(ref.nearTies, 'the seeded data has no near ties').toBe(0);
        const got = await run(data, { k, temperature });
        expect(Array.from(got.predictions)).toEqual(ref.predictions);
        expect(got.top1).toBe(ref.top1);
        expect(got.top5).toBe(ref.top5);
        // The data is neither trivial nor hopeless for the classifier.
        expect(got.top1).toBeGreaterThan(0.3);
        expect(got.top1).toBeLessThan(1);
      });
    }
  }

  it('the defaults (k 200, temperature 0.1) on a larger set', async () => {
    const big = clusters(400, 64, 16, 10, 1.5, 21);
    const ref = bruteForce(big, 200, 0.1, 10);
    expect(ref.nearTies).toBe(0);
    const got = await run(big, {});
    expect(Array.from(got.predictions)).toEqual(ref.predictions);
    expect(got.top1).toBe(ref.top1);
    expect(got.top5).toBe(ref.top5);
  });
});

interface FixtureCase {
  k: number;
  temperature: number;
  predictions: number[];
  top1: number;
}

interface FixtureData {
  num_classes: number;
  dim: number;
  train_features: number[];
  train_labels: number[];
  test_features: number[];
  test_labels: number[];
  cases: FixtureCase[];
}

describeBackends("knnEvaluate against lightly's knn_predict (tests/fixtures/knn.json)", () => {
  (fixtures.datasets as FixtureData[]).forEach((ds, n) => {
    const nTrain = ds.train_labels.length;
    const nTest = ds.test_labels.length;
    for (const c of ds.cases) {
      it(`data set ${n} (${nTrain} x ${nTest} x ${ds.dim}, ${ds.num_classes} classes), k ${c.k}, temperature ${c.temperature}`, async () => {
        const train = tf.tensor2d(ds.train_features, [nTrain, ds.dim]);
        const test = tf.tensor2d(ds.test_features, [nTest, ds.dim]);
        const labels = tf.tensor1d(ds.train_labels, 'int32');
        const got = await knnEvaluate(train, labels, test, Int32Array.from(ds.test_labels), {
          k: c.k,
          temperature: c.temperature,
          numClasses: ds.num_classes,
        });
        tf.dispose([train, test, labels]);
        expect(Array.from(got.predictions)).toEqual(c.predictions);
        expect(got.top1).toBeCloseTo(c.top1, 12);
        expect(got.top5 === undefined).toBe(ds.num_classes <= 5);
      });
    }
  });
});

describeBackends('knnEvaluate: closed forms, chunks and labels', () => {
  it('well-separated clusters are classified perfectly (top-1 = top-5 = 1)', async () => {
    // Class c lives near axis c: every neighbour of the same class is closer than any other.
    const rng = new SeededRandom(3);
    const point = (c: number): number[] =>
      Array.from({ length: 10 }, (_, j) => (j === c ? 1 : 0) + 0.05 * rng.normal());
    const trainLabels = Array.from({ length: 100 }, (_, i) => i % 10);
    const testLabels = Array.from({ length: 30 }, (_, i) => (i * 7) % 10);
    const got = await run(
      {
        train: trainLabels.map(point),
        trainLabels,
        test: testLabels.map(point),
        testLabels,
      },
      { k: 10 },
    );
    expect(got.top1).toBe(1);
    expect(got.top5).toBe(1);
    expect(Array.from(got.predictions)).toEqual(testLabels);
  });

  it('one class: top-1 is 1, no top-5, every prediction 0', async () => {
    const d = clusters(20, 9, 4, 1, 1, 8);
    const got = await run(d, { k: 5 });
    expect(got.top1).toBe(1);
    expect(got.top5).toBeUndefined();
    expect(Array.from(got.predictions)).toEqual(new Array<number>(9).fill(0));
  });

  it('k 1 on the training set itself returns the training labels, whatever they are', async () => {
    const d = clusters(30, 1, 6, 8, 1, 9);
    const shuffled = d.trainLabels.map((_, i) => (i * 5 + 3) % 8);
    const got = await run(
      { train: d.train, trainLabels: shuffled, test: d.train, testLabels: shuffled },
      { k: 1 },
    );
    expect(Array.from(got.predictions)).toEqual(shuffled);
    expect(got.top1).toBe(1);
  });

  it('the temperature weighs the vote: one close neighbour against two farther ones', async () => {
    // cos = 1 for class 0, cos = 0.5 for the two of class 1: class 0 wins iff
    // exp(1 / t) > 2 exp(0.5 / t), i.e. t < 0.5 / ln 2 = 0.7213.
    const s = Math.sqrt(3) / 2;
    const d: Data = {
      train: [
        [1, 0, 0],
        [0.5, s, 0],
        [0.5, 0, s],
      ],
      trainLabels: [0, 1, 1],
      test: [[2, 0, 0]],
      testLabels: [0],
    };
    expect((await run(d, { k: 3, temperature: 0.7 })).predictions[0]).toBe(0);
    expect((await run(d, { k: 3, temperature: 0.75 })).predictions[0]).toBe(1);
    // Plain majority over the two nearest would be a tie; with k 1 only the closest votes.
    expect((await run(d, { k: 1, temperature: 100 })).predictions[0]).toBe(0);
  });

  it('top-5 is present only with more than 5 classes', async () => {
    const d = clusters(20, 6, 4, 3, 1, 2);
    expect((await run(d, { k: 3 })).top5).toBeUndefined();
    expect((await run(d, { k: 3, numClasses: 5 })).top5).toBeUndefined();
    const six = await run(d, { k: 3, numClasses: 6 });
    // Only classes 0-2 exist, so every label that got a vote is in the top 5.
    expect(six.top5).toBe(bruteForce(d, 3, 0.1, 6).top5);
    expect(six.top5).toBeGreaterThanOrEqual(six.top1);
  });

  it('with k 1 a class without votes never counts for top-5, so top-5 = top-1', async () => {
    const d = clusters(50, 40, 8, 10, 2, 4);
    const got = await run(d, { k: 1 });
    expect(got.top5).toBe(got.top1);
    expect(got.top1).toBeLessThan(1);
  });

  it('chunking changes nothing: batch sizes 1, 7, 40 and 1000 give the same answer', async () => {
    const d = clusters(80, 40, 8, 7, 1.4, 6);
    const results = [];
    for (const batchSize of [1, 7, 40, 1000]) results.push(await run(d, { k: 9, batchSize }));
    for (const r of results.slice(1)) {
      expect(Array.from(r.predictions)).toEqual(Array.from(results[0]!.predictions));
      expect(r.top1).toBe(results[0]!.top1);
      expect(r.top5).toBe(results[0]!.top5);
    }
  });

  it('labels as an int32 tensor, an Int32Array or an array give the same answer', async () => {
    const d = clusters(30, 12, 5, 6, 1.2, 7);
    const { train, test } = tensors(d);
    const trainT = tf.tensor1d(d.trainLabels, 'int32');
    const testT = tf.tensor1d(d.testLabels, 'int32');
    const a = await knnEvaluate(train, trainT, test, testT, { k: 4 });
    const b = await knnEvaluate(train, Int32Array.from(d.trainLabels), test, d.testLabels, {
      k: 4,
    });
    tf.dispose([train, test, trainT, testT]);
    expect(Array.from(a.predictions)).toEqual(Array.from(b.predictions));
    expect(a.top1).toBe(b.top1);
    expect(a.top5).toBe(b.top5);
  });

  it('a tiny temperature does not overflow (weights relative to the best neighbour)', async () => {
    const d = clusters(40, 20, 6, 7, 1.2, 12);
    const got = await run(d, { k: 10, temperature: 1e-4 });
    // exp(sim / 1e-4) overflows float64; the nearest neighbour's class wins, as with k 1.
    const nearest = await run(d, { k: 1 });
    expect(Array.from(got.predictions)).toEqual(Array.from(nearest.predictions));
  });
});

describeBackends('knnEvaluate: errors name the argument, the expectation and the value', () => {
  const d = clusters(10, 4, 3, 3, 1, 1);

  async function rejects(
    call: (t: { train: tf.Tensor2D; test: tf.Tensor2D }) => Promise<unknown>,
    message: string,
  ): Promise<void> {
    const t = tensors(d);
    try {
      await expect(call(t)).rejects.toThrow(ContrastiveError);
      await expect(call(t)).rejects.toThrow(message);
    } finally {
      tf.dispose([t.train, t.test]);
    }
  }

  it('rejects bad features', async () => {
    const rank1 = tf.zeros([10]);
    const ints = tf.zeros([10, 3], 'int32');
    const empty = tf.zeros([0, 3]);
    const wide = tf.zeros([4, 5]);
    await rejects(
      ({ test }) => knnEvaluate(rank1 as tf.Tensor2D, d.trainLabels, test, d.testLabels),
      "knnEvaluate: argument 'trainFeatures' must be a float32 tensor of rank 2 [Ntrain, D], but received a float32 tensor of shape [10].",
    );
    await rejects(
      ({ test }) => knnEvaluate(ints as tf.Tensor2D, d.trainLabels, test, d.testLabels),
      "argument 'trainFeatures' must be a float32 tensor",
    );
    await rejects(
      ({ train }) => knnEvaluate(train, d.trainLabels, empty as tf.Tensor2D, []),
      "argument 'testFeatures' must be a float32 tensor [Ntest >= 1, D], but received a float32 tensor of shape [0, 3].",
    );
    await rejects(
      ({ train }) => knnEvaluate(train, d.trainLabels, wide as tf.Tensor2D, d.testLabels),
      "argument 'testFeatures' must be a float32 tensor [Ntest, 3] (the D of 'trainFeatures'), but received a float32 tensor of shape [4, 5].",
    );
    tf.dispose([rank1, ints, empty, wide]);
  });

  it('rejects labels that do not match the features', async () => {
    const floatLabels = tf.zeros([10]);
    const shortLabels = tf.zeros([9], 'int32');
    await rejects(
      ({ train, test }) => knnEvaluate(train, d.trainLabels.slice(1), test, d.testLabels),
      "argument 'trainLabels' must be 10 labels, one per row of 'trainFeatures', but received an array of length 9.",
    );
    await rejects(
      ({ train, test }) => knnEvaluate(train, floatLabels as tf.Tensor1D, test, d.testLabels),
      "argument 'trainLabels' must be a int32 tensor of shape [10] [10] (10 labels, one per row of 'trainFeatures'), but received a float32 tensor of shape [10].",
    );
    await rejects(
      ({ train, test }) => knnEvaluate(train, shortLabels as tf.Tensor1D, test, d.testLabels),
      'but received a int32 tensor of shape [9]',
    );
    await rejects(
      ({ train, test }) => knnEvaluate(train, d.trainLabels, test, [0, 1, 1.5, 2]),
      "argument 'testLabels[2]' must be a non-negative integer class label, but received 1.5.",
    );
    await rejects(
      ({ train, test }) => knnEvaluate(train, d.trainLabels, test, [0, -1, 1, 2]),
      "argument 'testLabels[1]' must be a non-negative integer class label, but received -1.",
    );
    await rejects(
      ({ train, test }) =>
        knnEvaluate(train, d.trainLabels, test, d.testLabels, { k: 3, numClasses: 1 }),
      "argument 'trainLabels[",
    );
    await rejects(
      ({ train, test }) => knnEvaluate(train, d.trainLabels, test, 'abc' as unknown as number[]),
      "argument 'testLabels' must be an int32 tensor, an Int32Array or an array of integers",
    );
    tf.dispose([floatLabels, shortLabels]);
  });

  it('rejects a label of a tensor outside [0, numClasses)', async () => {
    const labels = tf.tensor1d([0, 1, 2, 7], 'int32');
    await rejects(
      ({ train, test }) =>
        knnEvaluate(train, d.trainLabels, test, labels as tf.Tensor1D, { k: 3, numClasses: 3 }),
      "argument 'testLabels[3]' must be an integer class label in [0, 3), but received 7.",
    );
    labels.dispose();
  });

  it('rejects bad options', async () => {
    const call =
      (options: KnnOptions) =>
      ({ train, test }: { train: tf.Tensor2D; test: tf.Tensor2D }) =>
        knnEvaluate(train, d.trainLabels, test, d.testLabels, options);
    await rejects(
      call({ k: 0 }),
      "knnEvaluate: argument 'options.k' must be an integer >= 1 and <= 10, but received 0.",
    );
    await rejects(call({ k: 11 }), "argument 'options.k' must be an integer >= 1 and <= 10");
    await rejects(call({ k: 2.5 }), "argument 'options.k' must be an integer");
    // The default k (200) is larger than this training set.
    await rejects(
      call({}),
      "argument 'options.k' must be an integer >= 1 and <= 10, but received 200.",
    );
    await rejects(
      call({ k: 3, temperature: 0 }),
      "argument 'options.temperature' must be a finite number > 0, but received 0.",
    );
    await rejects(call({ k: 3, temperature: -1 }), "argument 'options.temperature'");
    await rejects(call({ k: 3, batchSize: 0 }), "argument 'options.batchSize'");
    await rejects(call({ k: 3, numClasses: 0 }), "argument 'options.numClasses'");
  });
});
