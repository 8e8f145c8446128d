import * as tf from '@tensorflow/tfjs-core';
import { BatchNorm } from './batch-norm.js';
import { Gru } from './gru.js';
import { L2Normalize } from './l2-normalize-layer.js';
import { Prototypes } from './prototypes.js';
import { ClassTokenPosition, MultiHeadSelfAttention, SelectToken } from './vit-layers.js';
import { WeightNormDense } from './weight-norm-dense.js';

/**
 * The library's custom layer classes, by registered class name.
 *
 * @example
 * ```ts
 * import { LAYER_CLASSES } from 'tfjs-contrastive/layers';
 * LAYER_CLASSES.map((cls) => cls.className); // ['TfjsContrastive>L2Normalize', ...]
 * ```
 */
export const LAYER_CLASSES = [
  L2Normalize,
  BatchNorm,
  WeightNormDense,
  Prototypes,
  ClassTokenPosition,
  MultiHeadSelfAttention,
  SelectToken,
  Gru,
] as const;

/**
 * Registers the library's custom layers with tfjs's serialisation registry, so that models that
 * contain them load with `tf.loadLayersModel` (and `model.save` records their class names, each
 * `TfjsContrastive>Name`). Idempotent. Nothing registers at import time except the
 * `tfjs-contrastive/register` entry, which calls this.
 *
 * @returns the registered class names.
 *
 * @example
 * <!-- snippet setup="saved-encoder" -->
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { folderIO } from 'tfjs-contrastive/io';
 * import { registerLayers } from 'tfjs-contrastive/layers';
 * registerLayers();
 * const encoder = await tfl.loadLayersModel(folderIO('./checkpoints/encoder')); // saved with custom layers
 * ```
 */
export function registerLayers(): string[] {
  return LAYER_CLASSES.map((cls) => {
    tf.serialization.registerClass(cls);
    return cls.className;
  });
}
