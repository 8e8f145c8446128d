import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { SeededRandom } from '../../src/core/index.js';

/** A seeded standard normal tensor. */
export function randomInput(shape: number[], seed: number): tf.Tensor {
  const rng = new SeededRandom(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: size }, () => rng.normal()),
    shape,
  );
}

/** Seeded images in (0, 1): the sigmoid of a seeded standard normal tensor. */
export function randomImages(shape: [number, number, number, number], seed: number): tf.Tensor4D {
  return tf.tidy(() => tf.sigmoid(randomInput(shape, seed)) as tf.Tensor4D);
}

/** Saves the model to memory and loads it back (custom layers must be registered). */
export async function roundTrip(model: tfl.LayersModel): Promise<tfl.LayersModel> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler((artifacts) => {
      saved = artifacts;
      return Promise.resolve({
        modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' },
      });
    }),
  );
  if (saved === undefined) throw new Error('nothing saved');
  return tfl.loadLayersModel(tf.io.fromMemory(saved));
}

/** Every weight's values by name. */
export function weightsOf(model: tfl.LayersModel): Record<string, number[]> {
  return Object.fromEntries(model.weights.map((w) => [w.name, Array.from(w.read().dataSync())]));
}

/** SGD steps on sum((model(x) - target)^2) with fixed random x and target; returns the losses. */
export function trainSteps(model: tfl.LayersModel, inputShape: number[], steps: number): number[] {
  const x = randomInput(inputShape, 11);
  const outShape = model.predict(x) as tf.Tensor;
  const target = randomInput(outShape.shape, 12);
  outShape.dispose();
  const optimizer = tf.train.sgd(0.1);
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    const loss = optimizer.minimize(
      () =>
        tf.sum(
          tf.square(tf.sub(model.apply(x, { training: true }) as tf.Tensor, target)),
        ) as tf.Scalar,
      true,
    );
    losses.push(loss!.dataSync()[0]!);
    loss!.dispose();
  }
  optimizer.dispose();
  tf.dispose([x, target]);
  return losses;
}

/**
 * Multi-crop check: for each side, the model maps [2, side, side, 3] images to [2, width]; then
 * one SGD step on a loss over a 16x16 and an 8x8 view; returns the weights before and after.
 */
export function mixedSizeStep(
  model: tfl.LayersModel,
  sides: readonly number[],
  width: number,
): { before: Record<string, number[]>; after: Record<string, number[]> } {
  for (const side of sides) {
    const x = randomInput([2, side, side, 3], side);
    const y = model.predict(x) as tf.Tensor;
    if (y.shape.join() !== [2, width].join()) {
      throw new Error(`side ${side}: output [${y.shape.join(', ')}], expected [2, ${width}]`);
    }
    tf.dispose([x, y]);
  }
  const before = weightsOf(model);
  const optimizer = tf.train.sgd(0.1);
  const [g, l] = [randomInput([2, 16, 16, 3], 1), randomInput([2, 8, 8, 3], 2)];
  optimizer.minimize(
    () =>
      tf.sum(
        tf.mul(
          model.apply(g, { training: true }) as tf.Tensor,
          model.apply(l, { training: true }) as tf.Tensor,
        ),
      ) as tf.Scalar,
  );
  tf.dispose([g, l]);
  optimizer.dispose();
  return { before, after: weightsOf(model) };
}
