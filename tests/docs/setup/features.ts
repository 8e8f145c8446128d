/**
 * Frozen features of a labelled data set: `trainFeatures` [256, 128] with `trainLabels` (an
 * Int32Array of 10 classes) and `testFeatures` [64, 128] with `testLabels`.
 */
import * as tf$ from '@tensorflow/tfjs-core';
const labels$ = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => i % 10);
export const trainFeatures = tf$.randomNormal([256, 128], 0, 1, 'float32', 31) as tf$.Tensor2D;
export const trainLabels = labels$(256);
export const testFeatures = tf$.randomNormal([64, 128], 0, 1, 'float32', 32) as tf$.Tensor2D;
export const testLabels = labels$(64);
