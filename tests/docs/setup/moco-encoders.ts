/**
 * MoCo's encoders and views for a batch of 64 colour images: `encoder` (a `smallConvNet` of
 * widths [8, 16], batch norm in each stage), `keyEncoder` (its momentum copy), `queryView` and
 * `keyView` [64, 32, 32, 3].
 */
import * as tf$ from '@tensorflow/tfjs-core';
import * as tc$ from 'tfjs-contrastive';
import * as layers$ from 'tfjs-contrastive/layers';
export const encoder = layers$.smallConvNet({ inputShape: [32, 32, 3], widths: [8, 16], seed: 1 });
export const keyEncoder = tc$.cloneAsMomentumEncoder(encoder);
export const queryView = tf$.randomUniform([64, 32, 32, 3], 0, 1, 'float32', 71) as tf$.Tensor4D;
export const keyView = tf$.randomUniform([64, 32, 32, 3], 0, 1, 'float32', 72) as tf$.Tensor4D;
