/**
 * A contrastive loss in `model.compile`, trained with `model.fit`.
 *
 * tfjs-layers calls a compiled loss as `loss(yTrue, yPred)`, one prediction per sample, while a
 * contrastive loss compares several views of each sample with each other. `viewsLoss` bridges the
 * two: the model takes the views of each sample stacked as [B, V, 28, 28, 1] and outputs
 * [B, V, D], so `fit`'s shuffling and batching keep a sample's views together, and `viewsLoss`
 * splits the output into the V views and calls the multi-view loss (here NT-Xent, V = 2). The
 * targets are ignored (zeros of the output's shape).
 *
 * Run:   npx tsx examples/views-loss-compile.ts [--tiny] [--backend cpu|wasm|auto]
 * Takes: under 2 minutes on 2 cores (wasm); `--tiny` a few seconds.
 * Prints: the training loss of every epoch (fresh views each epoch), and before/after training on
 *   held-out test images the loss from `model.evaluate` and the partner retrieval (how often the
 *   nearest neighbour of one view's projection among the second views is its own partner). The
 *   last line is a JSON summary.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  SeededRandom,
  l2Normalize,
  multiCrop,
  ntXentLoss,
  reestimateBatchNorm,
  selectBackend,
  smallImageRecipe,
  viewsLoss,
} from 'tfjs-contrastive';
import { smallConvNet } from 'tfjs-contrastive/layers';
import { exampleArgs, fashionMnist } from './data.js';

const { tiny, backend } = exampleArgs();
tf.enableProdMode();
const info = await selectBackend(backend);
console.log(`backend ${info.name} (SIMD ${info.simd}, ${info.threads} threads)`);

const EPOCHS = tiny ? 2 : 3;
const PER_EPOCH = tiny ? 128 : 2560; // images per epoch (a new random subset and new views each)
const BATCH = tiny ? 32 : 128;
const WIDTHS = tiny ? [8, 16, 32] : [32, 64, 128];
const PROJECTION = 64;
const data = fashionMnist({ train: tiny ? 512 : 20_000, test: tiny ? 200 : 1000 });

// ---------------------------------------------------------------- the model: [B, 2, ...] -> [B, 2, D]
// TimeDistributed applies the same layer (the same weights) to each slice along axis 1, i.e. to
// each view. tfjs-layers runs it view by view, so each batch norm normalises each view with that
// view's batch statistics (SimCLR normalises both views together; for an in-batch loss either
// works) and updates its running averages once per view.
const encoder = smallConvNet({ inputShape: [28, 28, 1], widths: WIDTHS, seed: 1 });
const featureDim = WIDTHS.at(-1)!;
const model = tfl.sequential({
  layers: [
    tfl.layers.timeDistributed({ inputShape: [2, 28, 28, 1], layer: encoder }),
    // SimCLR's projection head, also per view; downstream tasks use `encoder` alone.
    tfl.layers.timeDistributed({
      layer: tfl.layers.dense({
        units: featureDim,
        activation: 'relu',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }),
      }),
    }),
    tfl.layers.timeDistributed({
      layer: tfl.layers.dense({
        units: PROJECTION,
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }),
      }),
    }),
  ],
});
const optimizer = tf.train.adam(2e-3);
model.compile({
  optimizer,
  // v[0], v[1]: the [B, D] projections of the first and second views of the batch. The `views`
  // option makes a model with the wrong output shape fail with a clear message.
  loss: viewsLoss((v) => ntXentLoss(v[0]!, v[1]!, { temperature: 0.1 }), { views: 2 }),
});

// ---------------------------------------------------------------- the data: views stacked on axis 1
const recipe = smallImageRecipe(28, { channels: 1 });
/** Two fresh views of each image, stacked as [N, 2, 28, 28, 1], and the dummy targets. */
function stackedViews(images: tf.Tensor4D, seed: number): [tf.Tensor5D, tf.Tensor3D] {
  const views = multiCrop(images, { crops: recipe, rng: seed });
  const x = tf.stack(views, 1) as tf.Tensor5D;
  tf.dispose(views);
  return [x, tf.zeros([images.shape[0], 2, PROJECTION])];
}

// Held-out evaluation: the same two views of the test images before and after training.
const [testX, testY] = stackedViews(data.testImages, 12345);
const cleanImages = tf.slice(data.trainImages, 0, Math.min(2048, data.trainImages.shape[0]));
async function evaluate(): Promise<{ loss: number; retrieval: number }> {
  // Inference-mode batch norm uses running statistics, which a short run leaves partly at their
  // initial values: re-estimate them on clean images (the encoder is shared with `model`).
  reestimateBatchNorm(encoder, cleanImages);
  const loss = model.evaluate(testX, testY, { batchSize: 256 }) as tf.Scalar;
  const retrieval = tf.tidy(() => {
    const out = model.predict(testX, { batchSize: 256 }) as tf.Tensor3D;
    const [z1, z2] = tf.unstack(out, 1) as [tf.Tensor2D, tf.Tensor2D];
    const nearest = tf.argMax(tf.matMul(l2Normalize(z1), tf.transpose(l2Normalize(z2))), 1);
    return tf.mean(tf.cast(tf.equal(nearest, tf.range(0, z1.shape[0], 1, 'int32')), 'float32'));
  });
  const result = { loss: (await loss.data())[0]!, retrieval: (await retrieval.data())[0]! };
  tf.dispose([loss, retrieval]);
  return result;
}

const before = await evaluate();
const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
console.log(
  `before training: test NT-Xent ${before.loss.toFixed(3)}, partner retrieval ${pct(before.retrieval)} of ${testX.shape[0]}`,
);

// ---------------------------------------------------------------- model.fit, fresh views each epoch
// A fixed pair of views per image would be memorised; so each epoch draws a new subset and new
// views and runs one epoch of fit (initialEpoch keeps tfjs-layers' epoch count going). The
// shuffling and batching of fit keep each sample's two views together in one row.
const rng = new SeededRandom(0);
const epochLosses: number[] = [];
const started = performance.now();
for (let epoch = 0; epoch < EPOCHS; epoch++) {
  // A seeded random subset, in random order: fit's own `shuffle` draws from Math.random, which
  // takes no seed, so it is off and the run repeats exactly.
  const subset = rng.permutation(data.trainImages.shape[0]).slice(0, PER_EPOCH);
  const images = tf.tidy(() => tf.gather(data.trainImages, tf.tensor1d(subset, 'int32')));
  const [x, y] = stackedViews(images, epoch);
  const history = await model.fit(x, y, {
    epochs: epoch + 1,
    initialEpoch: epoch,
    batchSize: BATCH,
    shuffle: false,
  });
  const loss = history.history['loss']![0] as number;
  epochLosses.push(loss);
  console.log(`epoch ${epoch + 1}/${EPOCHS}: mean training NT-Xent ${loss.toFixed(3)}`);
  tf.dispose([images, x, y]);
}
const seconds = (performance.now() - started) / 1000;

const after = await evaluate();
console.log(
  `after ${EPOCHS} epochs of ${PER_EPOCH} images (${seconds.toFixed(1)} s): test NT-Xent ${after.loss.toFixed(3)}, partner retrieval ${pct(after.retrieval)}`,
);
const outputShape = model.outputs[0]!.shape;

tf.dispose([testX, testY, cleanImages]);
data.dispose();
model.dispose(); // also frees the encoder (a functional model inside the Sequential)
optimizer.dispose();
console.log(
  JSON.stringify({
    example: 'views-loss-compile',
    backend: info.name,
    outputShape,
    epochLosses,
    testLossBefore: before.loss,
    testLossAfter: after.loss,
    retrievalBefore: before.retrieval,
    retrievalAfter: after.retrieval,
    seconds,
    tensorsLeft: tf.memory().numTensors,
  }),
);
