/**
 * A short learning check of the CPC preset on Fashion-MNIST: pre-train for a time budget, then
 * weighted kNN (k 200, T 0.1) on `embed` features of held-out images, against the same networks
 * (encoder, GRU, W_k) at their random initialisation, and raw pixels. Batch-norm statistics are
 * re-estimated on clean training patches (the encoder sees 8 px patches, not images) for the
 * random-init and the trained encoder alike.
 *
 *   npx tsx bench/learn-cpc.ts --minutes 2 --backend wasm --batch 32 --knn-train 10000 --knn-test 2000
 *
 * Other flags: --context 128, --steps-ahead 3, --negatives batch|sameStep, --lr, --seed 0.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import { selectBackend, type BackendName } from '../src/core/index.js';
import { reestimateBatchNorm } from '../src/eval/index.js';
import { smallConvNet } from '../src/layers/index.js';
import { cpc, type CPC } from '../src/methods/cpc.js';
import { embedKnn as knn, knnOf, pixelsOf } from '../demo/shared.js';
import { loadFashionMnist } from './fashion-mnist.js';

tf.enableProdMode();

const argv = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? undefined : argv[i + 1];
};
const num = (name: string, fallback: number): number => Number(flag(name) ?? fallback);

/** The 6 x 6 grid of 8 px patches at stride 4 of 28 px images, [N 36, 8, 8, 1]. */
function patchesOf(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const parts: tf.Tensor4D[] = [];
    for (let i = 0; i < 6; i++)
      for (let j = 0; j < 6; j++) parts.push(tf.slice(x, [0, 4 * i, 4 * j, 0], [-1, 8, 8, -1]));
    return tf.reshape(tf.stack(parts, 1), [-1, 8, 8, 1]);
  });
}

async function main(): Promise<void> {
  const backend = (flag('backend') ?? 'wasm') as BackendName;
  const info = await selectBackend(backend);
  const minutes = num('minutes', 2);
  const batchSize = num('batch', 32);
  const seed = num('seed', 0);
  const knnTrain = num('knn-train', 10000);
  const knnTest = num('knn-test', 2000);
  const contextDim = num('context', 128);
  const predictionSteps = num('steps-ahead', 3);
  const negatives = (flag('negatives') ?? 'batch') as 'batch' | 'sameStep';
  const lr = flag('lr');
  console.log(`backend ${info.name}, ${info.threads} thread(s)`);
  const data = loadFashionMnist();
  const toTensor = (images: Float32Array, n: number): tf.Tensor4D =>
    tf.tensor4d(images.subarray(0, n * 784), [n, 28, 28, 1]);
  const trainAll = toTensor(data.train.images, data.train.count);
  const knnTrainImages = toTensor(data.train.images, knnTrain);
  const knnTestImages = toTensor(data.test.images, knnTest);
  const trainLabels = data.train.labels.slice(0, knnTrain);
  const testLabels = data.test.labels.slice(0, knnTest);
  const bnPatches = tf.tidy(() =>
    patchesOf(tf.slice(knnTrainImages, [0, 0, 0, 0], [512, -1, -1, -1])),
  );
  const raw = await knnOf(pixelsOf, knnTrainImages, trainLabels, knnTestImages, testLabels);

  const build = (embedding: 'context' | 'latent'): CPC =>
    cpc({
      encoder: smallConvNet({ inputShape: [null, null, 1], widths: [32, 64], seed }),
      disposeEncoder: true,
      seed,
      contextDim,
      predictionSteps,
      negatives,
      embedding,
      ...(lr === undefined ? {} : { learningRate: Number(lr) }),
    });
  // Random init: the same seeds, so the same initial encoder, GRU and W_k as the trained one.
  const initial = build('context');
  reestimateBatchNorm(initial.encoder, bnPatches, { batchSize: 2304 });
  const initContext = await knn(initial, knnTrainImages, trainLabels, knnTestImages, testLabels);
  const initialLatent = build('latent');
  reestimateBatchNorm(initialLatent.encoder, bnPatches, { batchSize: 2304 });
  const initLatent = await knn(
    initialLatent,
    knnTrainImages,
    trainLabels,
    knnTestImages,
    testLabels,
  );
  initial.dispose();
  initialLatent.dispose();
  console.log(
    `kNN before training: context ${(100 * initContext).toFixed(2)}%, latent ${(100 * initLatent).toFixed(2)}%, raw pixels ${(100 * raw).toFixed(2)}%`,
  );

  const method = build('context');
  const started = performance.now();
  const result = await method.fit(trainAll, {
    seconds: minutes * 60,
    batchSize,
    progress: true,
  });
  const seconds = (performance.now() - started) / 1000;
  reestimateBatchNorm(method.encoder, bnPatches, { batchSize: 2304 });
  const trainedContext = await knn(method, knnTrainImages, trainLabels, knnTestImages, testLabels);
  // The latent embedding of the trained encoder: a second preset reading the same weights.
  const latent = build('latent');
  latent.encoder.setWeights(method.encoder.getWeights());
  const trainedLatent = await knn(latent, knnTrainImages, trainLabels, knnTestImages, testLabels);
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const row = {
    method: 'cpc',
    backend: info.name,
    batchSize,
    contextDim,
    predictionSteps,
    negatives,
    steps: result.steps,
    skipped: result.skippedSteps,
    minutes: seconds / 60,
    lossStart: mean(result.losses.slice(0, 10)),
    lossEnd: mean(result.losses.slice(-10)),
    knnRandomInitContext: initContext,
    knnTrainedContext: trainedContext,
    knnRandomInitLatent: initLatent,
    knnTrainedLatent: trainedLatent,
    knnRawPixels: raw,
    knnTrain,
    knnTest,
    seed,
  };
  console.log(JSON.stringify(row));
  method.dispose();
  latent.dispose();
}

await main();
