/**
 * For `model.compile`: `model` maps [B, 2, 32] (two views of each sample, stacked) to
 * [B, 2, 16], and `optimizer` is an Adam optimiser.
 */
import * as tf$ from '@tensorflow/tfjs-core';
import * as tfl$ from '@tensorflow/tfjs-layers';
export const model = tfl$.sequential({
  layers: [tfl$.layers.dense({ inputShape: [2, 32], units: 16 })],
});
export const optimizer = tf$.train.adam(1e-3);
