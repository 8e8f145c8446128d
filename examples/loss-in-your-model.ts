/**
 * A contrastive loss in your own model and training loop.
 *
 * You have a tfjs-layers model and an `optimizer.minimize` loop; you want self-supervised
 * pre-training without adopting a framework. This example takes one function from the library,
 * SimCLR's NT-Xent loss (`ntXentLoss`), plus its augmentation (`multiCrop` with
 * `smallImageRecipe`), and trains a plain tfjs-layers conv net on unlabelled Fashion-MNIST images.
 * Nothing else of the library is needed; `trainableVariables` saves you one tfjs pitfall.
 *
 * Run:   npx tsx examples/loss-in-your-model.ts [--tiny] [--backend cpu|wasm|auto]
 * Takes: a little over a minute on 2 cores (wasm); `--tiny` a few seconds.
 * Prints: the backend, the loss every few steps, and before/after training on held-out test
 *   images: partner retrieval (how often the nearest neighbour of a view's features among the
 *   other views is its own partner, chance 1/N) and a kNN classifier's accuracy on the backbone
 *   features (labels are used only for this evaluation). The last line is a JSON summary.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  SeededRandom,
  knnEvaluate,
  l2Normalize,
  multiCrop,
  ntXentLoss,
  reestimateBatchNorm,
  selectBackend,
  smallImageRecipe,
  trainableVariables,
} from 'tfjs-contrastive';
import { exampleArgs, fashionMnist } from './data.js';

const { tiny, backend } = exampleArgs();
tf.enableProdMode();
// In Node 'auto' is the wasm backend with SIMD and 2 threads here; the report says what runs.
const info = await selectBackend(backend);
console.log(`backend ${info.name} (SIMD ${info.simd}, ${info.threads} threads)`);

const STEPS = tiny ? 6 : 60;
const BATCH = tiny ? 32 : 128;
const WIDTH = tiny ? 8 : 32; // filters of the first conv stage (doubling per stage)
const data = fashionMnist({ train: tiny ? 512 : 20_000, test: tiny ? 200 : 1000 });
const n = data.trainImages.shape[0];

// ---------------------------------------------------------------- your model
// A plain tfjs-layers conv net, the kind of model you already have: three conv -> batch norm ->
// ReLU -> max-pool stages, then global average pooling to a feature vector. Seeded initialisers
// make the run reproducible (seed 0 means "unseeded" to tfjs's normal samplers, so start at 1).
let seed = 1;
const stage = (filters: number, first: boolean): tfl.layers.Layer[] => [
  tfl.layers.conv2d({
    ...(first ? { inputShape: [28, 28, 1] } : {}),
    filters,
    kernelSize: 3,
    padding: 'same',
    useBias: false, // batch norm's offset makes a bias redundant
    kernelInitializer: tfl.initializers.heNormal({ seed: seed++ }),
  }),
  tfl.layers.batchNormalization(),
  tfl.layers.activation({ activation: 'relu' }),
  tfl.layers.maxPooling2d({ poolSize: 2, padding: 'same' }),
];
const encoder = tfl.sequential({
  layers: [
    ...stage(WIDTH, true),
    ...stage(2 * WIDTH, false),
    ...stage(4 * WIDTH, false),
    tfl.layers.globalAveragePooling2d({}),
  ],
});
const featureDim = 4 * WIDTH;

// SimCLR trains a small projection head g on top of the encoder and computes the loss on its
// output; downstream tasks drop g and use the encoder's features (the paper's Sec. 4.2: the
// features before g are better, since g learns to discard what the augmentation changes).
const head = tfl.sequential({
  layers: [
    tfl.layers.dense({
      inputShape: [featureDim],
      units: featureDim,
      activation: 'relu',
      kernelInitializer: tfl.initializers.glorotUniform({ seed: seed++ }),
    }),
    tfl.layers.dense({
      units: 64,
      kernelInitializer: tfl.initializers.glorotUniform({ seed: seed++ }),
    }),
  ],
});

// ---------------------------------------------------------------- evaluation (labels only here)
const rng = new SeededRandom(0);
const evalViews = multiCrop(data.testImages, {
  crops: smallImageRecipe(28, { channels: 1 }),
  rng: 12345, // the same two views of the test images before and after training
}) as [tf.Tensor4D, tf.Tensor4D];
const knnTrain = tf.slice(data.trainImages, 0, Math.min(n, 5000));
const knnLabels = tf.slice(data.trainLabels, 0, Math.min(n, 5000));

async function evaluate(): Promise<{ retrieval: number; knn: number }> {
  // Batch norm in inference mode uses running statistics, which after a short run still hold much
  // of their initial (0, 1): re-estimate them on clean training images for a fair comparison.
  reestimateBatchNorm(encoder, knnTrain, { maxImages: 2048 });
  const features = (x: tf.Tensor): tf.Tensor2D =>
    encoder.predict(x, { batchSize: 256 }) as tf.Tensor2D;
  const retrieval = tf.tidy(() => {
    const e1 = l2Normalize(features(evalViews[0]));
    const e2 = l2Normalize(features(evalViews[1]));
    const nearest = tf.argMax(tf.matMul(e1, tf.transpose(e2)), 1);
    const m = e1.shape[0];
    return tf.mean(tf.cast(tf.equal(nearest, tf.range(0, m, 1, 'int32')), 'float32'));
  });
  const trainFeatures = features(knnTrain);
  const testFeatures = features(data.testImages);
  const knn = await knnEvaluate(trainFeatures, knnLabels, testFeatures, data.testLabels, { k: 20 });
  const result = { retrieval: (await retrieval.data())[0]!, knn: knn.top1 };
  tf.dispose([retrieval, trainFeatures, testFeatures]);
  return result;
}

const before = await evaluate();
const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
console.log(
  `before training: partner retrieval ${pct(before.retrieval)} of ${evalViews[0].shape[0]}, kNN accuracy ${pct(before.knn)}`,
);

// ---------------------------------------------------------------- the training loop
// Views: Fashion-MNIST is 28 px and greyscale, where SimCLR's own recipe (`simclrRecipe`: crops
// down to 8% of the image, colour jitter) leaves a few pixels and jitters hue on one channel;
// `smallImageRecipe` is the library's recipe for 28-64 px images (crops 30-100%, brightness and
// contrast jitter, light blur). On 96 px colour images, use `simclrRecipe(96)` instead.
const recipe = smallImageRecipe(28, { channels: 1 });
const optimizer = tf.train.adam(2e-3);
// The variables to train. `optimizer.minimize` without a list trains every tf.Variable in the
// program whose trainable flag is set (other models' too, and those of a layer frozen with
// `trainable: false` at construction, a tfjs-layers pitfall), and `encoder.trainableWeights` are
// tfjs-layers LayerVariables, which minimize cannot take.
const variables = trainableVariables(encoder, head);
const losses: number[] = [];
const started = performance.now();

for (let step = 0; step < STEPS; step++) {
  const index = tf.tensor1d(rng.integers(BATCH, n), 'int32'); // a random batch (with replacement)
  const images = tf.gather(data.trainImages, index) as tf.Tensor4D;
  // Two random views of every image, reproducible from the seeded `rng`.
  const [view1, view2] = multiCrop(images, { crops: recipe, rng }) as [tf.Tensor4D, tf.Tensor4D];
  // minimize inside tidy: the returned loss is kept, every intermediate tensor freed.
  const loss = tf.tidy(() =>
    optimizer.minimize(
      () => {
        // Both views through the networks as one batch of 2B, so batch norm normalises them with
        // the same statistics (SimCLR's global batch norm). `training: true` makes batch norm use
        // the batch's statistics and update its running averages, as model.fit would.
        const both = tf.concat([view1, view2], 0);
        const z = head.apply(encoder.apply(both, { training: true }), {
          training: true,
        }) as tf.Tensor2D;
        const [z1, z2] = tf.split(z, 2, 0) as [tf.Tensor2D, tf.Tensor2D];
        // Each view's partner is its positive, the other 2B - 2 views are negatives;
        // temperature 0.1 as in google-research/simclr.
        return ntXentLoss(z1, z2, { temperature: 0.1 }) as tf.Scalar;
      },
      true,
      variables,
    )!,
  );
  losses.push((await loss.data())[0]!);
  tf.dispose([index, images, view1, view2, loss]);
  if (step % Math.max(1, Math.floor(STEPS / 6)) === 0 || step === STEPS - 1) {
    console.log(`step ${step + 1}/${STEPS}: NT-Xent ${losses[step]!.toFixed(3)}`);
  }
}
const seconds = (performance.now() - started) / 1000;

const after = await evaluate();
console.log(
  `after ${STEPS} steps of batch ${BATCH} (${seconds.toFixed(1)} s): partner retrieval ${pct(after.retrieval)}, kNN accuracy ${pct(after.knn)}`,
);
// The loss of a random network on B images is about log(2B - 1) (all views alike); falling
// below it means the network tells the images apart.
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const k = Math.max(1, Math.floor(STEPS / 5));
const summary = {
  example: 'loss-in-your-model',
  backend: info.name,
  steps: STEPS,
  lossFirst: mean(losses.slice(0, k)),
  lossLast: mean(losses.slice(-k)),
  retrievalBefore: before.retrieval,
  retrievalAfter: after.retrieval,
  knnBefore: before.knn,
  knnAfter: after.knn,
  seconds,
};
tf.dispose([...evalViews, knnTrain, knnLabels]);
data.dispose();
encoder.dispose();
head.dispose();
optimizer.dispose();
console.log(JSON.stringify({ ...summary, tensorsLeft: tf.memory().numTensors }));
