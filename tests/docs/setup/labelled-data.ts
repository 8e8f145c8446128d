/**
 * A small labelled image set: `trainImages` [256, 28, 28, 1] with `trainLabels` (an Int32Array
 * of 10 classes) and `testImages` [64, 28, 28, 1] with `testLabels`, in [0, 1].
 */
import * as tf$ from '@tensorflow/tfjs-core';
const labels$ = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => i % 10);
export const trainImages = tf$.randomUniform([256, 28, 28, 1], 0, 1, 'float32', 33) as tf$.Tensor4D;
export const trainLabels = labels$(256);
export const testImages = tf$.randomUniform([64, 28, 28, 1], 0, 1, 'float32', 34) as tf$.Tensor4D;
export const testLabels = labels$(64);
