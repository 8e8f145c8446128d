/**
 * What is particular to MoCo v3 (the checks every preset shares are in presets.test.ts and
 * rules.test.ts): the heads and temperature follow the backbone as in facebookresearch/moco-v3,
 * the step's loss is ctr(q1, k2) + ctr(q2, k1) with the keys from the momentum networks, the
 * temperature reaches the loss, and bad options are named.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { smallConvNet, tinyVit } from '../../src/layers/index.js';
import { mocoV3Loss } from '../../src/losses/index.js';
import { mocoV3 } from '../../src/methods/index.js';
import { describeBackends } from '../support/backends.js';
import { randomImages } from '../support/layers.js';

const conv = (): tfl.LayersModel =>
  smallConvNet({ inputShape: [8, 8, 1], widths: [4, 8], seed: 1 });
const train = (model: tfl.LayersModel, x: tf.Tensor): tf.Tensor2D =>
  model.apply(x, { training: true }) as tf.Tensor2D;
const classes = (m: tfl.LayersModel): string[] => m.layers.map((l) => l.getClassName());

describeBackends('mocoV3', ({ tol }) => {
  it('after a conv net: 2-layer projector, predictor without the last batch norm, tau 1.0', () => {
    const encoder = conv();
    const method = mocoV3({ encoder, projectionDim: 8, hiddenDim: 16 });
    expect(method.backbone).toBe('resnet');
    expect(method.temperature).toBe(1);
    expect(classes(method.projector).filter((c) => c === 'Dense')).toHaveLength(2);
    expect(classes(method.predictor).at(-1)).toBe('Dense');
    method.dispose();
    encoder.dispose();
  });

  it('after a tiny ViT: 3-layer projector, predictor ending in batch norm, tau 0.2', () => {
    const encoder = tinyVit({
      inputShape: [8, 8, 1],
      patchSize: 4,
      dim: 8,
      depth: 1,
      heads: 2,
      seed: 1,
    });
    const method = mocoV3({ encoder, projectionDim: 8, hiddenDim: 16 });
    expect(method.backbone).toBe('vit');
    expect(method.temperature).toBe(0.2);
    expect(classes(method.projector).filter((c) => c === 'Dense')).toHaveLength(3);
    expect(classes(method.predictor).at(-1)).not.toBe('Dense');
    const forced = mocoV3({ encoder, backbone: 'resnet', temperature: 0.5 });
    expect([forced.backbone, forced.temperature]).toEqual(['resnet', 0.5]);
    forced.dispose();
    method.dispose();
    encoder.dispose();
  });

  it("a step's loss is ctr(q1, k2) + ctr(q2, k1) with the momentum networks' keys", async () => {
    const encoder = conv();
    const method = mocoV3({ encoder, projectionDim: 8, hiddenDim: 16, temperature: 0.3, seed: 2 });
    const images = randomImages([6, 8, 8, 1], 7);
    const views = method.makeViews(images);
    // The networks before the step: batch norm in training mode everywhere, as in the step.
    const expected = tf.tidy(() => {
      const q = (v: tf.Tensor): tf.Tensor2D =>
        train(method.predictor, train(method.projector, train(method.encoder, v)));
      const k = (v: tf.Tensor): tf.Tensor2D =>
        train(method.momentumProjector, train(method.momentumEncoder, v));
      const [v1, v2] = views as [tf.Tensor4D, tf.Tensor4D];
      return tf.add(
        mocoV3Loss(q(v1), k(v2), { temperature: 0.3 }),
        mocoV3Loss(q(v2), k(v1), { temperature: 0.3 }),
      );
    });
    const want = (await expected.data())[0]!;
    const result = await method.trainStep({ images, views });
    expect(result.skipped).toBe(false);
    expect(Math.abs(result.loss - want)).toBeLessThan(10 * tol);
    tf.dispose([expected, images, ...views]);
    method.dispose();
    encoder.dispose();
  });

  it('the temperature reaches the loss', async () => {
    const losses: number[] = [];
    for (const temperature of [0.2, 1.0]) {
      const encoder = conv();
      const method = mocoV3({ encoder, projectionDim: 8, hiddenDim: 16, temperature, seed: 2 });
      const images = randomImages([6, 8, 8, 1], 7);
      losses.push((await method.trainStep({ images })).loss);
      images.dispose();
      method.dispose();
      encoder.dispose();
    }
    expect(Math.abs(losses[0]! - losses[1]!)).toBeGreaterThan(1e-3);
  });

  it('names bad options', () => {
    const encoder = conv();
    expect(() => mocoV3({ encoder, backbone: 'vgg' as 'vit' })).toThrow(
      /mocoV3: argument 'options.backbone' must be one of/,
    );
    expect(() => mocoV3({ encoder, temperature: 0 })).toThrow(
      /mocoV3: argument 'options.temperature'/,
    );
    expect(() => mocoV3({ encoder, momentum: 1.5 })).toThrow(/mocoV3: argument 'options.momentum'/);
    encoder.dispose();
  });
});
