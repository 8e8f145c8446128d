/**
 * A small labelled image set and an encoder: `trainImages` [256, 28, 28, 1] with `trainLabels`
 * (Int32Array, 10 classes), `testImages` [64, 28, 28, 1] with `testLabels`, and `encoder`, a
 * `smallConvNet` of widths [8, 16] ([B, 16] features) standing in for a trained one.
 */
import * as tf$ from '@tensorflow/tfjs-core';
import * as layers$ from 'tfjs-contrastive/layers';
const labels$ = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => i % 10);
export const trainImages = tf$.randomUniform([256, 28, 28, 1], 0, 1, 'float32', 33) as tf$.Tensor4D;
export const trainLabels = labels$(256);
export const testImages = tf$.randomUniform([64, 28, 28, 1], 0, 1, 'float32', 34) as tf$.Tensor4D;
export const testLabels = labels$(64);
export const encoder = layers$.smallConvNet({ inputShape: [28, 28, 1], widths: [8, 16], seed: 2 });
