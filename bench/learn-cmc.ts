/**
 * A quick learning check of the cmc preset on Fashion-MNIST: two small conv nets, one for the
 * image and one for its Sobel gradient magnitude (the preset's default split for grey images),
 * pre-trained for a time budget; weighted kNN (k 200, T 0.1) on `embed` (both encoders' features,
 * concatenated) of held-out images, against the same two networks at their random
 * initialisation. Batch-norm statistics are re-estimated on clean training views for both.
 *
 *   npx tsx bench/learn-cmc.ts --minutes 2 --backend wasm --batch 128 --loss nce
 *
 * Other flags: --train 60000 (pre-train on the first N training images: a memory bank's positives
 * are its random initial entries until each image has been visited once, so a run shorter than an
 * epoch learns little; a smaller N gives several epochs in minutes), --knn-train 10000
 * --knn-test 2000, --split gradient (or halves), --jitter, --widths 16,32,64, --negatives 4096, --seed 0, --lr (the small-image AdamW's
 * 1e-3 by default).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import { selectBackend, type BackendName } from '../src/core/index.js';
import { reestimateBatchNorm } from '../src/eval/index.js';
import { smallConvNet } from '../src/layers/index.js';
import { cmc, type CMC } from '../src/methods/cmc.js';
import { embedKnn as knn } from '../demo/shared.js';
import { loadFashionMnist } from './fashion-mnist.js';

tf.enableProdMode();

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? (argv[i + 1] as string) : fallback;
};

/** Re-estimates every encoder's batch-norm statistics on its own view of clean images. */
function reestimate(method: CMC, images: tf.Tensor4D): void {
  const split = (
    method as unknown as { splitViews(c: string, x: tf.Tensor4D): tf.Tensor4D[] }
  ).splitViews('bench', images);
  method.encoders.forEach((e, v) =>
    reestimateBatchNorm(e, split[v] as tf.Tensor4D, { batchSize: 256 }),
  );
  tf.dispose(split);
}

async function main(): Promise<void> {
  const minutes = Number(flag('minutes', '2'));
  const backend = flag('backend', 'wasm') as BackendName;
  const batchSize = Number(flag('batch', '128'));
  const seed = Number(flag('seed', '0'));
  const loss = flag('loss', 'nce') as 'nce' | 'softmax';
  const split = flag('split', 'gradient') as 'gradient' | 'halves';
  const widths = flag('widths', '16,32,64').split(',').map(Number);
  const negatives = Number(flag('negatives', '4096'));
  const lr = argv.includes('--lr') ? Number(flag('lr', '0')) : undefined;
  const knnTrain = Number(flag('knn-train', '10000'));
  const knnTest = Number(flag('knn-test', '2000'));
  const info = await selectBackend(backend);
  console.log(`backend ${info.name}, ${info.threads} thread(s)`);
  const data = loadFashionMnist();
  const toTensor = (images: Float32Array, n: number): tf.Tensor4D =>
    tf.tensor4d(images.subarray(0, n * 784), [n, 28, 28, 1]);
  const trainCount = Math.min(data.train.count, Number(flag('train', String(data.train.count))));
  const trainAll = toTensor(data.train.images, trainCount);
  const knnTrainImages = toTensor(data.train.images, knnTrain);
  const knnTestImages = toTensor(data.test.images, knnTest);
  const knnTrainLabels = data.train.labels.slice(0, knnTrain);
  const knnTestLabels = data.test.labels.slice(0, knnTest);
  const bnImages = tf.slice(knnTrainImages, [0, 0, 0, 0], [2560, -1, -1, -1]);

  const make = (): CMC =>
    cmc({
      encoders: [1, 2].map((s) =>
        smallConvNet({
          inputShape: [split === 'halves' ? 14 : 28, 28, 1],
          widths,
          seed: seed * 10 + s,
        }),
      ),
      datasetSize: trainCount,
      split,
      loss,
      negatives,
      // --jitter: brightness and contrast 0.4 with p 0.8 (smallImageRecipe's grey jitter) on top
      // of the preset's crop and flip.
      ...(argv.includes('--jitter')
        ? {
            views: [
              {
                size: 28,
                scale: [0.3, 1] as const,
                flip: 0.5,
                jitter: { brightness: 0.4, contrast: 0.4, saturation: 0, hue: 0, p: 0.8 },
              },
            ],
          }
        : {}),
      seed,
      disposeEncoder: true,
      ...(lr === undefined ? {} : { learningRate: lr }),
    });
  const initial = make();
  reestimate(initial, bnImages);
  const init = await knn(initial, knnTrainImages, knnTrainLabels, knnTestImages, knnTestLabels);
  initial.dispose();
  console.log(`kNN at random init: ${(100 * init).toFixed(2)}%`);

  const method = make();
  const started = performance.now();
  const result = await method.fit(trainAll, {
    seconds: minutes * 60,
    batchSize,
    progress: false,
    callbacks: {
      onBatchEnd: (step, r) => {
        if (step % 20 === 0) console.log(`step ${step}: loss ${r.loss.toFixed(3)}`);
      },
    },
  });
  const seconds = (performance.now() - started) / 1000;
  reestimate(method, bnImages);
  const trained = await knn(method, knnTrainImages, knnTrainLabels, knnTestImages, knnTestLabels);
  const first = result.losses.slice(0, 10);
  const last = result.losses.slice(-10);
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  console.log(
    JSON.stringify({
      loss,
      split,
      jitter: argv.includes('--jitter'),
      backend: info.name,
      trainImages: trainCount,
      epochs: (result.steps * batchSize) / trainCount,
      batchSize,
      widths,
      steps: result.steps,
      seconds: Math.round(seconds),
      lossFirst10: mean(first),
      lossLast10: mean(last),
      normalizers: method.normalizers,
      knnInit: init,
      knnTrained: trained,
    }),
  );
  method.dispose();
  tf.dispose([trainAll, knnTrainImages, knnTestImages, bnImages]);
}

await main();
