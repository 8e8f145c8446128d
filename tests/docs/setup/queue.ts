/**
 * MoCo's parts: `q` and `k` [8, 128] (queries and momentum keys of a batch of 8) and `queue`, a
 * `MomentumQueue` of 256 keys of dimension 128.
 */
import * as tf$ from '@tensorflow/tfjs-core';
import * as tc$ from 'tfjs-contrastive';
export const q = tf$.randomNormal([8, 128], 0, 1, 'float32', 21) as tf$.Tensor2D;
export const k = tf$.randomNormal([8, 128], 0, 1, 'float32', 22) as tf$.Tensor2D;
export const queue = new tc$.MomentumQueue(256, 128, { seed: 1 });
