/**
 * `model`: a small tfjs-layers encoder [B, 32] -> [B, 16], also saved with `folderIO` to
 * `./checkpoints/encoder` (model.json and weights.bin).
 */
import * as tfl$ from '@tensorflow/tfjs-layers';
import * as io$ from 'tfjs-contrastive/io';
export const model = tfl$.sequential({
  layers: [tfl$.layers.dense({ inputShape: [32], units: 16 })],
});
await model.save(io$.folderIO('./checkpoints/encoder'));
