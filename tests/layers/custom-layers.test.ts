/**
 * The custom layers: config round trip, a training step changes the weights, save then load gives
 * identical outputs, freezing, WeightNormDense against its formula and finite differences, no
 * leaks (the harness counts tensors around every test).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { l2Normalize } from '../../src/core/index.js';
import {
  BatchNorm,
  ClassTokenPosition,
  L2Normalize,
  MultiHeadSelfAttention,
  Prototypes,
  SelectToken,
  WeightNormDense,
  registerLayers,
} from '../../src/layers/index.js';
import { describeBackends, expectClose, finiteDifferenceGradient } from '../support/backends.js';
import { randomInput, roundTrip, trainSteps, weightsOf } from '../support/layers.js';

registerLayers();

describeBackends('custom layers', ({ tol }) => {
  const layerCases: [string, () => tfl.layers.Layer, number[]][] = [
    ['L2Normalize', () => new L2Normalize({ epsilon: 1e-9 }), [6]],
    ['BatchNorm', () => new BatchNorm({ momentum: 0.2, epsilon: 1e-4 }), [6]],
    ['BatchNorm (gain only)', () => new BatchNorm({ center: false }), [6]],
    ['BatchNorm (no affine)', () => new BatchNorm({ center: false, scale: false }), [6]],
    ['WeightNormDense (gain fixed)', () => new WeightNormDense({ units: 5, seed: 3 }), [6]],
    [
      'WeightNormDense (trainable gain, bias)',
      () => new WeightNormDense({ units: 5, trainableGain: true, useBias: true, seed: 4 }),
      [6],
    ],
    ['Prototypes', () => new Prototypes({ count: 7, freezeSteps: 0, seed: 5 }), [6]],
    ['MultiHeadSelfAttention', () => new MultiHeadSelfAttention({ heads: 2 }), [3, 8]],
    ['ClassTokenPosition', () => new ClassTokenPosition({}), [3, 8]],
    ['SelectToken', () => new SelectToken({ index: 1 }), [3, 8]],
  ];

  for (const [title, make, shape] of layerCases) {
    it(`${title}: config round trip, save/load gives identical outputs`, async () => {
      const layer = make();
      const model = tfl.sequential({
        layers: [tfl.layers.inputLayer({ inputShape: shape }), layer],
      });
      const config = layer.getConfig();
      // Rebuilt through the registry by class name, as loading a model does.
      const [cls, fromConfig] =
        tf.serialization.SerializationMap.getMap().classNameMap[layer.getClassName()]!;
      const rebuilt = fromConfig(cls, config) as unknown as { getConfig(): object };
      expect(rebuilt.getConfig()).toEqual(config);
      const x = randomInput([4, ...shape], 1);
      const loaded = await roundTrip(model);
      const [a, b] = [model.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor];
      expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
      tf.dispose([x, a, b]);
      model.dispose();
      loaded.dispose();
    });
  }

  for (const [title, make, shape] of layerCases.filter(
    ([t]) => !/L2Normalize|SelectToken|no affine/.test(t),
  )) {
    it(`${title}: a training step changes every trainable weight`, () => {
      const layer = make();
      const model = tfl.sequential({
        layers: [tfl.layers.inputLayer({ inputShape: shape }), layer],
      });
      const before = weightsOf(model);
      trainSteps(model, [4, ...shape], 1);
      const after = weightsOf(model);
      expect(model.trainableWeights.length).toBeGreaterThan(0);
      model.trainableWeights.forEach((w) => {
        expect(after[w.name], w.name).not.toEqual(before[w.name]);
      });
      model.dispose();
    });
  }

  it('WeightNormDense computes x (v / ||v||) g + b and its kernel gradient matches finite differences', () => {
    const layer = new WeightNormDense({ units: 3, trainableGain: true, useBias: true, seed: 7 });
    const model = tfl.sequential({ layers: [tfl.layers.inputLayer({ inputShape: [4] }), layer] });
    const [v, g, b] = layer.getWeights(); // the variables themselves: not disposed here
    const x = randomInput([5, 4], 2);
    const y = model.predict(x) as tf.Tensor;
    const expected = tf.tidy(() => tf.add(tf.mul(tf.matMul(x, l2Normalize(v!, 0)), g!), b!));
    expectClose(y, expected, tol);
    // The initial gain is ||v|| (torch weight_norm), so the initial weight is v itself.
    const direct = tf.tidy(() => tf.add(tf.matMul(x, v!), b!));
    expectClose(y, direct, tol);
    const r = randomInput([5, 3], 3);
    const loss = (kernel: tf.Tensor): tf.Scalar =>
      tf.tidy(() => tf.sum(tf.mul(tf.matMul(x, tf.mul(l2Normalize(kernel, 0), g!)), r)));
    const analytic = tf.tidy(() => tf.grad(loss)(v!));
    const numeric = finiteDifferenceGradient(loss, v!, 1e-2);
    expectClose(analytic, numeric, 5e-3);
    tf.dispose([x, y, expected, direct, r, analytic]);
    model.dispose();
  });

  it('WeightNormDense with the gain fixed has only its kernel, and unit-norm columns act as cosines', () => {
    const layer = new WeightNormDense({ units: 4, seed: 1 });
    const model = tfl.sequential({ layers: [tfl.layers.inputLayer({ inputShape: [6] }), layer] });
    expect(layer.getWeights().length).toBe(1);
    const x = tf.tidy(() => l2Normalize(randomInput([3, 6], 4)));
    const y = model.predict(x) as tf.Tensor;
    const largest = tf.tidy(() => tf.max(tf.abs(y)).dataSync()[0]!);
    expect(largest).toBeLessThanOrEqual(1 + 1e-5);
    tf.dispose([x, y]);
    model.dispose();
  });

  it('freezing: WeightNormDense and Prototypes do not change while frozen, then train', () => {
    for (const layer of [
      new WeightNormDense({ units: 3, freezeSteps: 2, seed: 2 }),
      new Prototypes({ count: 3, freezeSteps: 2, seed: 2 }),
    ]) {
      const dense = tfl.layers.dense({ units: 6, inputShape: [4] });
      const model = tfl.sequential({ layers: [dense, layer] });
      const read = () => Array.from(layer.getWeights()[0]!.dataSync());
      for (let step = 0; step < 4; step++) {
        layer.setStep(step);
        const before = read();
        const denseBefore = Array.from(dense.getWeights()[0]!.dataSync());
        trainSteps(model, [5, 4], 1);
        expect(read() === before).toBe(false);
        if (step < 2) expect(read()).toEqual(before);
        else expect(read()).not.toEqual(before);
        expect(Array.from(dense.getWeights()[0]!.dataSync())).not.toEqual(denseBefore);
      }
      model.dispose();
    }
  });

  it('Prototypes.normalize gives unit-norm prototypes (columns)', () => {
    const layer = new Prototypes({ count: 5, seed: 9 });
    const model = tfl.sequential({ layers: [tfl.layers.inputLayer({ inputShape: [4] }), layer] });
    layer.normalize();
    const norms = tf.tidy(() => tf.norm(layer.getWeights()[0]!, 'euclidean', 0));
    expectClose(norms, [1, 1, 1, 1, 1], 1e-6);
    norms.dispose();
    model.dispose();
  });

  it('MultiHeadSelfAttention: permuting the tokens permutes the output (no position information)', () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.inputLayer({ inputShape: [3, 8] }),
        new MultiHeadSelfAttention({ heads: 4 }),
      ],
    });
    const x = randomInput([2, 3, 8], 5);
    const perm = tf.tensor1d([2, 0, 1], 'int32');
    const y = model.predict(x) as tf.Tensor;
    const xp = tf.gather(x, perm, 1);
    const yp = model.predict(xp) as tf.Tensor;
    const expected = tf.gather(y, perm, 1);
    expectClose(yp, expected, tol);
    tf.dispose([x, perm, xp, y, yp, expected]);
    model.dispose();
  });

  it('registerLayers names every class with the stable prefix', () => {
    expect(registerLayers()).toEqual([
      'TfjsContrastive>L2Normalize',
      'TfjsContrastive>BatchNorm',
      'TfjsContrastive>WeightNormDense',
      'TfjsContrastive>Prototypes',
      'TfjsContrastive>ClassTokenPosition',
      'TfjsContrastive>MultiHeadSelfAttention',
      'TfjsContrastive>SelectToken',
      'TfjsContrastive>Gru',
    ]);
  });
});
