import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { ContrastiveError, ntXentLoss, viewsLoss } from '../../src/index.js';
import { describeBackends, expectClose } from '../support/backends.js';

describeBackends('viewsLoss (tfjs-layers compile adapter)', ({ tol }) => {
  it('splits [B, V, D] into the views and calls the loss', () => {
    const z1 = tf.randomNormal([4, 6], 0, 1, 'float32', 1) as tf.Tensor2D;
    const z2 = tf.randomNormal([4, 6], 0, 1, 'float32', 2) as tf.Tensor2D;
    const stacked = tf.stack([z1, z2], 1);
    const dummy = tf.zeros([4, 2, 6]);
    const f = viewsLoss((v) => ntXentLoss(v[0]!, v[1]!), { views: 2 });
    const a = f(dummy, stacked);
    const b = ntXentLoss(z1, z2);
    expectClose(a, b, tol);
    tf.dispose([z1, z2, stacked, dummy, a, b]);
  });

  it('trains a tfjs-layers model with model.fit and lowers the loss', async () => {
    // [B, 2, 8] inputs: two noisy views per sample; a shared dense encoder over the views.
    const model = tfl.sequential({
      layers: [
        tfl.layers.timeDistributed({
          inputShape: [2, 8],
          layer: tfl.layers.dense({
            units: 16,
            activation: 'relu',
            kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }),
          }),
        }),
        tfl.layers.timeDistributed({
          layer: tfl.layers.dense({
            units: 8,
            kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }),
          }),
        }),
      ],
    });
    const optimizer = tf.train.adam(0.01);
    model.compile({
      optimizer,
      loss: viewsLoss((v) => ntXentLoss(v[0]!, v[1]!, { temperature: 0.5 }), { views: 2 }),
    });
    const [x, y] = tf.tidy(() => {
      const base = tf.randomNormal([64, 1, 8], 0, 1, 'float32', 3);
      const views = tf.add(
        tf.concat([base, base], 1),
        tf.randomNormal([64, 2, 8], 0, 0.1, 'float32', 4),
      );
      return [views, tf.zeros([64, 2, 8])];
    });
    const history = await model.fit(x!, y!, {
      epochs: 8,
      batchSize: 16,
      shuffle: true,
    });
    const losses = history.history.loss as number[];
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses.at(-1)!).toBeLessThan(losses[0]! * 0.9);
    tf.dispose([x!, y!]);
    model.dispose();
    optimizer.dispose(); // Adam's moment slots belong to the optimizer, not the model
  });

  it('rejects outputs that do not stack the views', () => {
    const f = viewsLoss((v) => ntXentLoss(v[0]!, v[1]!), { views: 2 });
    const flat = tf.zeros([4, 12]);
    const three = tf.zeros([4, 3, 6]);
    expect(() => f(flat, flat)).toThrow(
      "viewsLoss: argument 'yPred' must be a float32 tensor of shape [*, 2, *] [B, V, D] (the views stacked along axis 1), but received a float32 tensor of shape [4, 12].",
    );
    expect(() => f(three, three)).toThrow(ContrastiveError);
    expect(() => viewsLoss('ntXent' as unknown as () => tf.Tensor)).toThrow(
      "viewsLoss: argument 'loss' must be a function",
    );
    tf.dispose([flat, three]);
  });
});
