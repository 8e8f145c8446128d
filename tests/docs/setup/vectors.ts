/** `view1`, `view2`: two views [16, 32] of the same 16 samples (the README's quick start). */
import * as tf$ from '@tensorflow/tfjs-core';
export const view1 = tf$.randomNormal([16, 32], 0, 1, 'float32', 6) as tf$.Tensor2D;
export const view2 = tf$.randomNormal([16, 32], 0, 1, 'float32', 7) as tf$.Tensor2D;
