/**
 * Pre-train with a preset, then fine-tune with 1% of the labels.
 *
 * The usual reason for self-supervised learning: many images, few labels. This example
 * pre-trains `smallConvNet` with the `simclr` preset on unlabelled Fashion-MNIST images, then
 * trains classifiers on a small labelled subset (600 images, 1% of the training set, 60 per class)
 * with plain tfjs-layers `model.compile` + `model.fit`: a linear probe (a softmax layer on the
 * frozen features) and full fine-tuning (the encoder and a softmax layer), and compares their
 * test accuracy with the same two classifiers built on the encoder's random initialisation (the
 * same seed, so the only difference is the pre-training).
 *
 * Run:   npx tsx examples/pretrain-finetune.ts [--tiny] [--backend cpu|wasm|auto]
 * Takes: about 3 minutes on 2 cores (wasm; half of it pre-training); `--tiny` a few seconds.
 * Prints: the pre-training loss, then the test accuracy of the four classifiers and the
 *   differences, with the standard error of one accuracy. The last line is a JSON summary. How
 *   much pre-training helps depends on its length: a minute here, against the papers' hundreds
 *   of epochs (the README's learning benchmark runs 5 minutes per method).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { reestimateBatchNorm, selectBackend } from 'tfjs-contrastive';
import { smallConvNet } from 'tfjs-contrastive/layers';
import { simclr } from 'tfjs-contrastive/methods';
import { exampleArgs, fashionMnist } from './data.js';

const { tiny, backend } = exampleArgs();
tf.enableProdMode();
const info = await selectBackend(backend);
console.log(`backend ${info.name} (SIMD ${info.simd}, ${info.threads} threads)`);

const PRETRAIN_STEPS = tiny ? 4 : 60;
const PRETRAIN_BATCH = tiny ? 32 : 128;
const LABELLED = tiny ? 200 : 600;
const FINETUNE_EPOCHS = tiny ? 3 : 8;
const PROBE_EPOCHS = tiny ? 20 : 200;
const WIDTHS = tiny ? [8, 16, 32] : [32, 64, 128];
// The loader returns class-balanced prefixes: the first 600 training images are 60 per class.
const data = fashionMnist({ train: tiny ? 512 : 30_000, test: tiny ? 200 : 2000 });

// ---------------------------------------------------------------- 1. self-supervised pre-training
// The encoder is ours; the preset builds SimCLR's projection head around it, makes two views of
// every image with its small-image recipe, and trains both with NT-Xent (its defaults under 96 px:
// AdamW, learning rate 4e-3 with warm-up and cosine decay, temperature 0.1). No labels.
const encoder = smallConvNet({ inputShape: [28, 28, 1], widths: WIDTHS, seed: 1 });
const method = simclr({ encoder, seed: 0 });
console.log(`pre-training SimCLR for ${PRETRAIN_STEPS} steps of ${PRETRAIN_BATCH} images...`);
const pretrain = await method.fit(data.trainImages, {
  steps: PRETRAIN_STEPS,
  batchSize: PRETRAIN_BATCH,
  progress: !tiny,
});
const quarter = Math.max(1, Math.floor(pretrain.losses.length / 4));
const head = pretrain.losses.slice(0, quarter); // mean of the first and of the last quarter
const tail = pretrain.losses.slice(-quarter);
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
console.log(
  `pre-training: ${pretrain.steps} steps in ${pretrain.seconds.toFixed(1)} s, NT-Xent ${mean(head).toFixed(3)} -> ${mean(tail).toFixed(3)}`,
);
// The projection head is dropped (SimCLR's finding: the features before it transfer better).
// dispose() frees the head and the optimiser; the encoder stays ours.
method.dispose();

// ---------------------------------------------------------------- 2. fine-tuning on 600 labels
const labelledImages = tf.slice(data.trainImages, 0, LABELLED);
const labelledTargets = tf.tidy(() =>
  tf.cast(tf.oneHot(tf.slice(data.trainLabels, 0, LABELLED), 10), 'float32'),
);

/** Test accuracy of a classifier's predictions [N, 10] against the test labels. */
async function testAccuracy(predict: (images: tf.Tensor4D) => tf.Tensor): Promise<number> {
  const accuracy = tf.tidy(() =>
    tf.mean(tf.cast(tf.equal(tf.argMax(predict(data.testImages), 1), data.testLabels), 'float32')),
  );
  const value = (await accuracy.data())[0]!;
  accuracy.dispose();
  return value;
}

/**
 * A linear probe: a softmax layer trained on the backbone's frozen features of the labelled
 * images (the standard measure of what pre-training learned; fast, since the backbone runs once).
 */
async function linearProbe(backbone: tfl.LayersModel): Promise<number> {
  // tfjs-layers' batch norm keeps running averages (momentum 0.99) that a short run leaves partly
  // at their start values, and inference mode uses them: re-estimate them on the labelled images
  // (the same treatment for both encoders).
  reestimateBatchNorm(backbone, labelledImages);
  const features = backbone.predict(labelledImages, { batchSize: 256 }) as tf.Tensor2D;
  const probe = tfl.sequential({
    layers: [
      tfl.layers.dense({
        inputShape: [features.shape[1]],
        units: 10,
        activation: 'softmax',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 7 }),
      }),
    ],
  });
  const optimizer = tf.train.adam(1e-2);
  probe.compile({ optimizer, loss: 'categoricalCrossentropy' });
  await probe.fit(features, labelledTargets, {
    epochs: PROBE_EPOCHS,
    batchSize: LABELLED,
    shuffle: false,
  });
  const accuracy = await testAccuracy(
    (images) => probe.predict(backbone.predict(images, { batchSize: 256 })) as tf.Tensor,
  );
  features.dispose();
  probe.dispose();
  optimizer.dispose();
  return accuracy;
}

/** Fine-tunes the whole backbone with a softmax layer on the labelled subset. */
async function fineTune(backbone: tfl.LayersModel): Promise<number> {
  // Every weight is trained, with the same optimiser, learning rate, epochs and seeds for both
  // encoders.
  const classifier = tfl.sequential({
    layers: [
      backbone,
      tfl.layers.dense({
        units: 10,
        activation: 'softmax',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 8 }),
      }),
    ],
  });
  const optimizer = tf.train.adam(1e-3);
  classifier.compile({ optimizer, loss: 'categoricalCrossentropy' });
  await classifier.fit(labelledImages, labelledTargets, {
    epochs: FINETUNE_EPOCHS,
    batchSize: 50,
    // The labelled images come interleaved by class, so every batch of 50 holds 5 of each class.
    // fit's `shuffle` draws from Math.random, which takes no seed: off, so the run repeats.
    shuffle: false,
  });
  reestimateBatchNorm(classifier, labelledImages); // as in linearProbe
  const accuracy = await testAccuracy(
    (images) => classifier.predict(images, { batchSize: 256 }) as tf.Tensor,
  );
  // A functional model used as a layer goes with the Sequential around it: this frees the
  // backbone too. The optimiser's slots belong to the optimiser.
  classifier.dispose();
  optimizer.dispose();
  return accuracy;
}

async function evaluate(name: string, backbone: tfl.LayersModel): Promise<[number, number]> {
  const started = performance.now();
  const probe = await linearProbe(backbone);
  const fineTuned = await fineTune(backbone);
  console.log(
    `${name}: linear probe ${(100 * probe).toFixed(1)}%, fine-tuned ${(100 * fineTuned).toFixed(1)}% test accuracy (${((performance.now() - started) / 1000).toFixed(1)} s)`,
  );
  return [probe, fineTuned];
}

console.log(
  `classifiers on ${LABELLED} labelled images (linear probe: ${PROBE_EPOCHS} epochs on frozen features; fine-tuning: ${FINETUNE_EPOCHS} epochs of the whole network):`,
);
const [probePretrained, pretrained] = await evaluate('  SimCLR-pretrained encoder', encoder);
// The same architecture and seed: the initial weights the pre-training started from.
const [probeRandomInit, randomInit] = await evaluate(
  '  random-init encoder      ',
  smallConvNet({ inputShape: [28, 28, 1], widths: WIDTHS, seed: 1 }),
);
const nTest = data.testImages.shape[0];
// One accuracy on n test images has a standard error of about sqrt(p (1 - p) / n).
const se = 100 * Math.sqrt((pretrained * (1 - pretrained)) / nTest);
const points = (x: number): string => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}`;
console.log(
  `pre-training: linear probe ${points(probePretrained - probeRandomInit)} points, fine-tuned ${points(pretrained - randomInit)} points (one accuracy on ${nTest} test images: +-${se.toFixed(1)} points standard error)`,
);
tf.dispose([labelledImages, labelledTargets]);
data.dispose();
console.log(
  JSON.stringify({
    example: 'pretrain-finetune',
    backend: info.name,
    pretrainSteps: pretrain.steps,
    lossFirst: mean(head),
    lossLast: mean(tail),
    labelled: LABELLED,
    probePretrained,
    probeRandomInit,
    accuracyPretrained: pretrained,
    accuracyRandomInit: randomInit,
    tensorsLeft: tf.memory().numTensors, // everything was disposed: 0
  }),
);
