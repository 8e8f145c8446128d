/** `images`: a batch of 8 colour images [8, 32, 32, 3] in [0, 1] (CIFAR-sized). */
import * as tf$ from '@tensorflow/tfjs-core';
export const images = tf$.randomUniform([8, 32, 32, 3], 0, 1, 'float32', 1) as tf$.Tensor4D;
