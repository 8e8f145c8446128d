/**
 * A batch of 8 for InstDisc: `features` [8, 128] (the encoder's outputs) and `indices` (the
 * samples' rows in the memory bank, below 1000).
 */
import * as tf$ from '@tensorflow/tfjs-core';
export const features = tf$.randomNormal([8, 128], 0, 1, 'float32', 51) as tf$.Tensor2D;
export const indices = Int32Array.from([3, 14, 15, 92, 65, 35, 89, 79]);
