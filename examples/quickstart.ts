/**
 * The quick start as a program: `npm run demo`.
 *
 * Selects the fastest backend here, then trains a small tfjs-layers encoder with SimCLR's NT-Xent
 * on two noisy, randomly masked views of synthetic clustered data, and reports the loss and the
 * partner-retrieval accuracy (how often a view's nearest neighbour among the other views is its
 * own partner) on held-out samples before and after training.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { SeededRandom, l2Normalize, ntXentLoss, selectBackend } from 'tfjs-contrastive';

tf.enableProdMode();
const info = await selectBackend((process.argv[2] ?? 'auto') as 'auto');
console.log(`backend ${info.name} (SIMD ${info.simd}, ${info.threads} threads)`);

const rng = new SeededRandom(0);
const DIM = 32;
const centers = tf.randomNormal([16, DIM], 0, 1, 'float32', rng.tfSeed());

// A batch of samples (a random center plus noise) and two augmented views of each.
function views(batch: number): [tf.Tensor2D, tf.Tensor2D] {
  return tf.tidy(() => {
    const which = tf.tensor1d(rng.integers(batch, 16), 'int32');
    const x = tf.add(
      tf.gather(centers, which),
      tf.randomNormal([batch, DIM], 0, 0.6, 'float32', rng.tfSeed()),
    );
    const augment = (): tf.Tensor2D => {
      const keep = tf.cast(
        tf.greater(tf.randomUniform([batch, DIM], 0, 1, 'float32', rng.tfSeed()), 0.2),
        'float32',
      );
      return tf.mul(
        tf.add(x, tf.randomNormal([batch, DIM], 0, 0.3, 'float32', rng.tfSeed())),
        keep,
      ) as tf.Tensor2D;
    };
    return [augment(), augment()];
  });
}

const encoder = tfl.sequential({
  layers: [
    tfl.layers.dense({ inputShape: [DIM], units: 128, activation: 'relu' }),
    tfl.layers.dense({ units: 64 }),
  ],
});
const optimizer = tf.train.adam(1e-3);
const embed = (x: tf.Tensor2D): tf.Tensor2D => encoder.apply(x) as tf.Tensor2D;

// Held-out evaluation: loss, and top-1 retrieval of each first view's partner among second views.
const [test1, test2] = views(512);
function evaluate(): { loss: number; retrieval: number } {
  return tf.tidy(() => {
    const e1 = l2Normalize(embed(test1));
    const e2 = l2Normalize(embed(test2));
    const nearest = tf.argMax(tf.matMul(e1, e2, false, true), 1);
    const hits = tf.sum(tf.cast(tf.equal(nearest, tf.range(0, 512, 1, 'int32')), 'float32'));
    return {
      loss: ntXentLoss(embed(test1), embed(test2), { temperature: 0.2 }).dataSync()[0]!,
      retrieval: hits.dataSync()[0]! / 512,
    };
  });
}

const before = evaluate();
console.log(
  `before training: NT-Xent ${before.loss.toFixed(3)}, partner retrieval ${(100 * before.retrieval).toFixed(1)}%`,
);
const start = performance.now();
const steps = 300;
for (let step = 1; step <= steps; step++) {
  const [v1, v2] = views(256);
  const loss = optimizer.minimize(
    () => ntXentLoss(embed(v1), embed(v2), { temperature: 0.2 }) as tf.Scalar,
    true,
  );
  if (step % 100 === 0) console.log(`step ${step}: loss ${loss!.dataSync()[0]!.toFixed(3)}`);
  tf.dispose([v1, v2, loss!]);
}
const after = evaluate();
console.log(
  `after ${steps} steps (${((performance.now() - start) / 1000).toFixed(1)} s): NT-Xent ${after.loss.toFixed(3)}, partner retrieval ${(100 * after.retrieval).toFixed(1)}%`,
);
tf.dispose([centers, test1, test2]);
encoder.dispose();
optimizer.dispose();
