/**
 * Something to optimise: `w`, a trainable [4, 8] variable, and `loss()`, a scalar function of it
 * (also as `f`); `batchSize` (256) for learning rates scaled by it.
 */
import * as tf$ from '@tensorflow/tfjs-core';
export const w = tf$.variable(tf$.randomNormal([4, 8], 0, 1, 'float32', 61));
export const loss = (): tf$.Scalar => tf$.mean(tf$.square(w));
export const f = loss;
export const batchSize = 256;
