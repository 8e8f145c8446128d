/**
 * reestimateBatchNorm: the moving statistics after re-estimation equal the mean over the passes of
 * each pass's batch statistics, computed here independently from the inputs each batch-norm
 * layer sees (biased variances for tfjs-layers' BatchNormalization, unbiased for the library's
 * BatchNorm); nested models; trainable weights bit-identical; momenta restored; roll-back when a
 * pass throws; errors; no leaks.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { ContrastiveError } from '../../src/core/index.js';
import { reestimateBatchNorm } from '../../src/eval/index.js';
import { BatchNorm, simclrV1Projector, smallConvNet } from '../../src/layers/index.js';
import { describeBackends, expectClose } from '../support/backends.js';
import { randomImages, randomInput } from '../support/layers.js';

interface Stats {
  mean: number[];
  variance: number[];
}

/** Per-channel (last axis) mean and variance of a tensor in float64, biased or unbiased. */
function channelStats(x: tf.Tensor, unbiased: boolean): Stats {
  const c = x.shape[x.rank - 1]!;
  const v = x.dataSync();
  const n = v.length / c;
  const mean = new Array<number>(c).fill(0);
  const sq = new Array<number>(c).fill(0);
  for (let i = 0; i < v.length; i++) mean[i % c]! += v[i]! / n;
  for (let i = 0; i < v.length; i++) sq[i % c]! += (v[i]! - mean[i % c]!) ** 2;
  return { mean, variance: sq.map((s) => s / (unbiased ? n - 1 : n)) };
}

/** The elementwise mean of several statistics. */
function average(all: Stats[]): Stats {
  const mean = all[0]!.mean.map((_, j) => all.reduce((s, a) => s + a.mean[j]!, 0) / all.length);
  const variance = all[0]!.variance.map(
    (_, j) => all.reduce((s, a) => s + a.variance[j]!, 0) / all.length,
  );
  return { mean, variance };
}

/** A layer's moving statistics by weight name suffix. */
function moving(layer: tfl.layers.Layer): Stats {
  const get = (suffix: string): number[] =>
    Array.from(
      layer.weights
        .find((w) => w.name.endsWith(suffix))!
        .read()
        .dataSync(),
    );
  return { mean: get('moving_mean'), variance: get('moving_variance') };
}

function trainableValues(model: tfl.LayersModel): Float32Array[] {
  return model.trainableWeights.map((w) => w.read().dataSync() as Float32Array);
}

/** channelStats of rows [start, start + size) of x. */
function sliceStats(x: tf.Tensor, start: number, size: number, unbiased: boolean): Stats {
  const part = rows(x, start, size);
  const stats = channelStats(part, unbiased);
  part.dispose();
  return stats;
}

function rows(x: tf.Tensor, start: number, size: number): tf.Tensor {
  return tf.slice(
    x,
    x.shape.map((_, i) => (i === 0 ? start : 0)),
    x.shape.map((d, i) => (i === 0 ? size : d)),
  );
}

/**
 * A small conv net with tfjs-layers' own BatchNormalization (smallConvNet uses the library's
 * BatchNorm): conv 3x3 -> BN -> ReLU -> max pooling per width, then global average pooling.
 */
function tfjsBnConvNet(inputShape: [number, number, number], widths: number[], seed: number) {
  const input = tfl.input({ shape: inputShape });
  let x = input;
  widths.forEach((filters, i) => {
    const kernelInitializer = tfl.initializers.glorotNormal({ seed: seed + i });
    x = tfl.layers
      .conv2d({ filters, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer })
      .apply(x) as tfl.SymbolicTensor;
    x = tfl.layers
      .batchNormalization({ momentum: 0.9, epsilon: 1e-5 })
      .apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.reLU().apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.maxPooling2d({ poolSize: 2, padding: 'same' }).apply(x) as tfl.SymbolicTensor;
  });
  x = tfl.layers.globalAveragePooling2d({}).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: x });
}

const tfjsBn = (x: tfl.layers.Layer): boolean => x.getClassName() === 'BatchNormalization';
const libraryBn = (x: tfl.layers.Layer): boolean => x.getClassName() === BatchNorm.className;

describeBackends('reestimateBatchNorm on one layer', ({ tol }) => {
  it("tfjs-layers' BatchNormalization: mean over passes of the batch mean and biased variance", () => {
    const bn = tfl.layers.batchNormalization({ momentum: 0.99 });
    const model = tfl.sequential({ layers: [tfl.layers.inputLayer({ inputShape: [5] }), bn] });
    const x = tf.tidy(() => tf.add(tf.mul(randomInput([10, 5], 1), 3), 2));
    const result = reestimateBatchNorm(model, x, { batchSize: 4 });
    expect(result).toEqual({ layers: [bn.name], passes: 3, images: 10 });
    const expected = average(
      [
        [0, 4],
        [4, 4],
        [8, 2],
      ].map(([s, n]) => sliceStats(x, s!, n!, false)),
    );
    const got = moving(bn);
    expectClose(got.mean, expected.mean, tol, 'moving mean');
    expectClose(got.variance, expected.variance, tol, 'moving variance');
    // Not the statistics of all 10 rows at once (passes weigh the same, whatever their size).
    const all = channelStats(x, false);
    expect(Math.abs(got.mean[0]! - all.mean[0]!)).toBeGreaterThan(1e-3);
    expect((bn as unknown as { momentum: number }).momentum).toBe(0.99);
    model.dispose();
    x.dispose();
  });

  it("the library's BatchNorm: mean over passes of the batch mean and unbiased variance", () => {
    const bn = new BatchNorm({ momentum: 0.3 });
    const model = tfl.sequential({ layers: [tfl.layers.inputLayer({ inputShape: [3] }), bn] });
    const x = tf.tidy(() => tf.sub(tf.mul(randomInput([12, 3], 2), 0.5), 1));
    const result = reestimateBatchNorm(model, x, { batchSize: 5 });
    expect(result.passes).toBe(3);
    const expected = average(
      [
        [0, 5],
        [5, 5],
        [10, 2],
      ].map(([s, n]) => sliceStats(x, s!, n!, true)),
    );
    const got = moving(bn);
    expectClose(got.mean, expected.mean, tol, 'running mean');
    expectClose(got.variance, expected.variance, tol, 'running variance');
    expect(bn.momentum).toBe(0.3);
    model.dispose();
    x.dispose();
  });

  it('one pass over the whole batch: the statistics are exactly that batch’s', () => {
    const bn = tfl.layers.batchNormalization({});
    const model = tfl.sequential({ layers: [tfl.layers.inputLayer({ inputShape: [4] }), bn] });
    const x = randomInput([7, 4], 3);
    reestimateBatchNorm(model, x);
    const expected = channelStats(x, false);
    expectClose(moving(bn).mean, expected.mean, tol);
    expectClose(moving(bn).variance, expected.variance, tol);
    model.dispose();
    x.dispose();
  });

  it('a last batch of one image joins the one before; maxImages uses the first images', () => {
    const bn = new BatchNorm({});
    const model = tfl.sequential({ layers: [tfl.layers.inputLayer({ inputShape: [2] }), bn] });
    const x = randomInput([9, 2], 4);
    expect(reestimateBatchNorm(model, x, { batchSize: 4 })).toMatchObject({ passes: 2, images: 9 });
    let expected = average(
      [
        [0, 4],
        [4, 5],
      ].map(([s, n]) => sliceStats(x, s!, n!, true)),
    );
    expectClose(moving(bn).mean, expected.mean, tol);
    expectClose(moving(bn).variance, expected.variance, tol);
    expect(reestimateBatchNorm(model, x, { batchSize: 3, maxImages: 6 })).toMatchObject({
      passes: 2,
      images: 6,
    });
    expected = average(
      [
        [0, 3],
        [3, 3],
      ].map(([s, n]) => sliceStats(x, s!, n!, true)),
    );
    expectClose(moving(bn).mean, expected.mean, tol);
    expectClose(moving(bn).variance, expected.variance, tol);
    model.dispose();
    x.dispose();
  });

  it('an array of batches: one pass each, of any sizes', () => {
    const bn = tfl.layers.batchNormalization({ momentum: 0.5 });
    const model = tfl.sequential({ layers: [tfl.layers.inputLayer({ inputShape: [3] }), bn] });
    const batches = [randomInput([3, 3], 5), randomInput([6, 3], 6), randomInput([2, 3], 7)];
    expect(reestimateBatchNorm(model, batches, { batchSize: 1 })).toMatchObject({
      passes: 3,
      images: 11,
    });
    const expected = average(batches.map((b) => channelStats(b, false)));
    expectClose(moving(bn).mean, expected.mean, tol);
    expectClose(moving(bn).variance, expected.variance, tol);
    model.dispose();
    tf.dispose(batches);
  });

  it('a model without batch norm: nothing to do, nothing run', () => {
    const model = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [3], units: 2 })] });
    const x = randomInput([4, 3], 8);
    expect(reestimateBatchNorm(model, x)).toEqual({ layers: [], passes: 0, images: 0 });
    model.dispose();
    x.dispose();
  });
});

describeBackends('reestimateBatchNorm on a conv net and a head', ({ tol }) => {
  it('a conv net (tfjs BatchNormalization, biased over batch x H x W) nested with a head (BatchNorm, unbiased)', () => {
    const encoder = tfjsBnConvNet([8, 8, 2], [4, 6], 1);
    const head = simclrV1Projector({ inputDim: 6, hiddenDim: 5, outputDim: 3, seed: 2 });
    const input = tfl.input({ shape: [8, 8, 2] });
    const full = tfl.model({
      inputs: input,
      outputs: head.apply(encoder.apply(input)) as tfl.SymbolicTensor,
    });
    const images = randomImages([10, 8, 8, 2], 9);
    const encoderBns = encoder.layers.filter(tfjsBn);
    const headBns = head.layers.filter(libraryBn);
    expect(encoderBns.length).toBe(2);
    expect(headBns.length).toBe(2);

    // Independently: in training mode (earlier batch norms normalise with batch statistics),
    // what every batch-norm layer receives in each pass, by probe models over the same layers.
    // The probes' own training passes move the statistics: the re-estimation must reset them.
    const encoderProbe = tfl.model({
      inputs: encoder.inputs,
      outputs: [...encoderBns.map((l) => l.input as tfl.SymbolicTensor), encoder.outputs[0]!],
    });
    const headProbe = tfl.model({
      inputs: head.inputs,
      outputs: headBns.map((l) => l.input as tfl.SymbolicTensor),
    });
    const perPass: { encoder: Stats[]; head: Stats[] }[] = [];
    for (const [s, n] of [
      [0, 4],
      [4, 4],
      [8, 2],
    ] as const) {
      tf.tidy(() => {
        const outs = encoderProbe.apply(rows(images, s, n), { training: true }) as tf.Tensor[];
        const features = outs[outs.length - 1]!;
        const headIns = headProbe.apply(features, { training: true }) as tf.Tensor[];
        perPass.push({
          encoder: outs.slice(0, -1).map((t) => channelStats(t, false)),
          head: headIns.map((t) => channelStats(t, true)),
        });
      });
    }

    const weightsBefore = trainableValues(full);
    const result = reestimateBatchNorm(full, images, { batchSize: 4 });
    expect(result.layers).toEqual([...encoderBns, ...headBns].map((l) => l.name));
    expect(result.passes).toBe(3);

    encoderBns.forEach((l, i) => {
      const expected = average(perPass.map((p) => p.encoder[i]!));
      expectClose(moving(l).mean, expected.mean, 10 * tol, `${l.name} moving mean`);
      expectClose(moving(l).variance, expected.variance, 10 * tol, `${l.name} moving variance`);
      expect((l as unknown as { momentum: number }).momentum).toBe(0.9);
    });
    headBns.forEach((l, i) => {
      const expected = average(perPass.map((p) => p.head[i]!));
      expectClose(moving(l).mean, expected.mean, 10 * tol, `${l.name} running mean`);
      expectClose(moving(l).variance, expected.variance, 10 * tol, `${l.name} running variance`);
      expect((l as unknown as { momentum: number }).momentum).toBe(0.1);
    });
    // Bit-identical trainable weights.
    const weightsAfter = trainableValues(full);
    expect(weightsAfter.length).toBe(weightsBefore.length);
    weightsAfter.forEach((w, i) => expect(w).toEqual(weightsBefore[i]));
    full.dispose();
    images.dispose();
  });

  it("smallConvNet's batch norms (the library's, unbiased over batch x H x W) get one pass's statistics", () => {
    const encoder = smallConvNet({ inputShape: [8, 8, 1], widths: [3, 5], seed: 4 });
    const bns = encoder.layers.filter(libraryBn);
    expect(bns.length).toBe(2);
    const images = randomImages([6, 8, 8, 1], 10);
    const probe = tfl.model({
      inputs: encoder.inputs,
      outputs: bns.map((l) => l.input as tfl.SymbolicTensor),
    });
    const inputs = probe.apply(images, { training: true }) as tf.Tensor[];
    const expected = inputs.map((t) => channelStats(t, true));
    tf.dispose(inputs);
    reestimateBatchNorm(encoder, images);
    bns.forEach((l, i) => {
      expectClose(moving(l).mean, expected[i]!.mean, 10 * tol, `${l.name} running mean`);
      expectClose(
        moving(l).variance,
        expected[i]!.variance,
        10 * tol,
        `${l.name} running variance`,
      );
    });
    images.dispose();
    encoder.dispose();
  });

  it('after one pass over a batch, inference reproduces training mode on it (tfjs BN is biased)', () => {
    const encoder = tfjsBnConvNet([8, 8, 1], [3, 5], 4);
    const images = randomImages([6, 8, 8, 1], 10);
    const training = encoder.apply(images, { training: true }) as tf.Tensor;
    const before = encoder.predict(images) as tf.Tensor;
    reestimateBatchNorm(encoder, images);
    const after = encoder.predict(images) as tf.Tensor;
    expectClose(after, training, 10 * tol, 'inference after re-estimation');
    // With the initial statistics inference was far from it.
    const gap = tf.tidy(() => tf.max(tf.abs(tf.sub(before, training))).dataSync()[0]!);
    expect(gap).toBeGreaterThan(0.01);
    tf.dispose([training, before, after, images]);
    encoder.dispose();
  });
});

/** A layer that throws on its n-th call in training, to test the roll-back. */
class Tripwire extends tfl.layers.Layer {
  static readonly className = 'Tripwire';
  calls = 0;
  constructor(private readonly at: number) {
    super({});
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    this.calls++;
    if (this.calls === this.at) throw new Error('tripwire');
    return tf.clone(Array.isArray(inputs) ? inputs[0]! : inputs);
  }
}

/** A batch norm of an unknown class: moving statistics the function cannot re-estimate. */
class OtherNorm extends tfl.layers.Layer {
  static readonly className = 'OtherNorm';
  override build(shape: tfl.Shape | tfl.Shape[]): void {
    const width = (shape as number[])[(shape as number[]).length - 1]!;
    this.addWeight('moving_mean', [width], 'float32', tfl.initializers.zeros(), undefined, false);
    this.built = true;
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.clone(Array.isArray(inputs) ? inputs[0]! : inputs);
  }
}

describeBackends('reestimateBatchNorm: roll-back and errors', () => {
  it('a pass that throws leaves the statistics and momenta as they were', () => {
    const bn = tfl.layers.batchNormalization({ momentum: 0.8 });
    const lib = new BatchNorm({ momentum: 0.2 });
    const wire = new Tripwire(2);
    const model = tfl.sequential({
      layers: [tfl.layers.inputLayer({ inputShape: [3] }), bn, lib, wire],
    });
    const init = [tf.tensor1d([1, 2, 3]), tf.tensor1d([4, 5, 6])];
    bn.setWeights([...bn.getWeights().slice(0, 2), ...init]);
    lib.setWeights([...lib.getWeights().slice(0, 2), ...init]);
    const x = randomInput([8, 3], 11);
    expect(() => reestimateBatchNorm(model, x, { batchSize: 4 })).toThrow('tripwire');
    expect(wire.calls).toBe(2);
    for (const l of [bn, lib]) {
      expect(moving(l)).toEqual({ mean: [1, 2, 3], variance: [4, 5, 6] });
    }
    expect((bn as unknown as { momentum: number }).momentum).toBe(0.8);
    expect(lib.momentum).toBe(0.2);
    tf.dispose([...init, x]);
    model.dispose();
  });

  it('rejects what is not a one-input tfjs-layers model, and unbuilt or unknown batch norms', () => {
    const x = randomInput([4, 3], 12);
    for (const bad of [null, {}, x, { apply: () => 0 }]) {
      expect(() => reestimateBatchNorm(bad as never, x)).toThrow(ContrastiveError);
    }
    expect(() => reestimateBatchNorm({} as never, x)).toThrow(
      "reestimateBatchNorm: argument 'model' must be a tfjs-layers model (LayersModel or Sequential, with apply and layers), but received an object.",
    );
    // A duck-typed model whose batch norm has never been applied (so has no weights yet).
    const unbuiltBn = tfl.layers.batchNormalization({});
    const unbuilt = { apply: (t: tf.Tensor) => unbuiltBn.apply(t), layers: [unbuiltBn] };
    expect(() => reestimateBatchNorm(unbuilt, x)).toThrow(
      "argument 'model' must be a built model (every batch-norm layer with its moving statistics)",
    );
    const other = tfl.sequential({
      layers: [tfl.layers.inputLayer({ inputShape: [3] }), new OtherNorm({})],
    });
    expect(() => reestimateBatchNorm(other, x)).toThrow(
      'of class OtherNorm with moving statistics',
    );
    const a = tfl.input({ shape: [3] });
    const b = tfl.input({ shape: [3] });
    const twoInputs = tfl.model({
      inputs: [a, b],
      outputs: tfl.layers.add().apply([a, b]) as tfl.SymbolicTensor,
    });
    expect(() => reestimateBatchNorm(twoInputs, x)).toThrow('a model with one input');
    x.dispose();
    for (const m of [other, twoInputs]) m.dispose();
  });

  it('rejects bad images and options', () => {
    const model = tfl.sequential({
      layers: [tfl.layers.inputLayer({ inputShape: [3] }), tfl.layers.batchNormalization({})],
    });
    const ints = tf.zeros([4, 3], 'int32');
    const wide = tf.zeros([4, 5]);
    const one = tf.zeros([1, 3]);
    const ok = tf.zeros([4, 3]);
    const weightsBefore = model.getWeights().map((w) => Array.from(w.dataSync()));
    expect(() => reestimateBatchNorm(model, 'x' as never)).toThrow(
      'argument \'images\' must be a float32 tensor [n, 3], but received a string "x".',
    );
    expect(() => reestimateBatchNorm(model, ints)).toThrow("argument 'images' must be a float32");
    expect(() => reestimateBatchNorm(model, wide)).toThrow(
      "argument 'images' must be a float32 tensor [n, 3] (the model's input), but received a float32 tensor of shape [4, 5].",
    );
    expect(() => reestimateBatchNorm(model, [ok, wide])).toThrow("argument 'images[1]'");
    expect(() => reestimateBatchNorm(model, [])).toThrow("argument 'images'");
    expect(() => reestimateBatchNorm(model, one)).toThrow(
      "argument 'images' must be batches of at least 2 images (a batch variance), but received a batch of 1 image.",
    );
    expect(() => reestimateBatchNorm(model, [ok, one])).toThrow("argument 'images[1]'");
    expect(() => reestimateBatchNorm(model, [ok, ok], { maxImages: 5 })).toThrow(
      'a batch of 1 image (after options.maxImages)',
    );
    expect(() => reestimateBatchNorm(model, ok, { batchSize: 0 })).toThrow(
      "argument 'options.batchSize' must be an integer >= 1, but received 0.",
    );
    expect(() => reestimateBatchNorm(model, ok, { maxImages: 1 })).toThrow(
      "argument 'options.maxImages' must be an integer >= 2, but received 1.",
    );
    // The rejected calls changed nothing; the same batches within bounds are accepted.
    expect(model.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(weightsBefore);
    expect(reestimateBatchNorm(model, [ok, ok], { maxImages: 6 }).passes).toBe(2);
    expect(moving(model.layers.find(tfjsBn)!)).toEqual({ mean: [0, 0, 0], variance: [0, 0, 0] });
    tf.dispose([ints, wide, one, ok]);
    model.dispose();
  });
});
