/**
 * `online`: a small tfjs-layers network [B, 32] -> [B, 16] with batch norm (an online encoder
 * whose momentum copy a method keeps), built.
 */
import * as tfl$ from '@tensorflow/tfjs-layers';
export const online = tfl$.sequential({
  layers: [
    tfl$.layers.dense({ inputShape: [32], units: 16, useBias: false }),
    tfl$.layers.batchNormalization(),
  ],
});
