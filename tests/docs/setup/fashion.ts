/**
 * `images` [16, 28, 28, 1] and `testImages` [8, 28, 28, 1] in [0, 1]: a stand-in for
 * Fashion-MNIST, small enough that a preset's step or `fit` runs in a moment.
 */
import * as tf$ from '@tensorflow/tfjs-core';
export const images = tf$.randomUniform([16, 28, 28, 1], 0, 1, 'float32', 2) as tf$.Tensor4D;
export const testImages = tf$.randomUniform([8, 28, 28, 1], 0, 1, 'float32', 3) as tf$.Tensor4D;
