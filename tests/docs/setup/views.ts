/** `view1`, `view2`: two augmented views [8, 32, 32, 3] in [0, 1] of the same 8 images. */
import * as tf$ from '@tensorflow/tfjs-core';
export const view1 = tf$.randomUniform([8, 32, 32, 3], 0, 1, 'float32', 4) as tf$.Tensor4D;
export const view2 = tf$.randomUniform([8, 32, 32, 3], 0, 1, 'float32', 5) as tf$.Tensor4D;
