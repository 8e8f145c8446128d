/**
 * Pieces the demo (demo/main.ts) and the learning benchmark (bench/learn.ts) share: the presets by
 * name, and frozen features of many images computed in chunks.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  byol,
  moco,
  mocoV2,
  mocoV3,
  simclr,
  simclrV2,
  simsiam,
  swav,
  dino,
  instDisc,
  invaSpread,
  type SslMethod,
  type SslMethodOptions,
} from 'tfjs-contrastive/methods';
import { knnEvaluate } from 'tfjs-contrastive/eval';

/** The options every preset takes (MoCo's queue checks its size against `datasetSize`). */
export type PresetOptions = SslMethodOptions & { readonly datasetSize?: number };

/** Every preset, by the name the command lines take. */
export const PRESETS: Readonly<Record<string, (options: PresetOptions) => SslMethod>> = {
  simclr: (o) => simclr(o),
  simclrV2: (o) => simclrV2(o),
  moco: (o) => moco(o),
  mocoV2: (o) => mocoV2(o),
  mocoV3: (o) => mocoV3(o),
  byol: (o) => byol(o),
  simsiam: (o) => simsiam(o),
  swav: (o) => swav(o),
  dino: (o) => dino(o),
  // The bank holds one entry per training image: without datasetSize, instDisc's own error says so.
  instDisc: (o) => instDisc({ ...o, datasetSize: o.datasetSize ?? Number.NaN }),
  invaSpread: (o) => invaSpread(o),
};

/** The papers' names of the presets, for titles. */
export const PRESET_TITLES: Readonly<Record<string, string>> = {
  simclr: 'SimCLR',
  simclrV2: 'SimCLR v2',
  moco: 'MoCo v1',
  mocoV2: 'MoCo v2',
  mocoV3: 'MoCo v3',
  byol: 'BYOL',
  simsiam: 'SimSiam',
  swav: 'SwAV',
  dino: 'DINO',
  instDisc: 'InstDisc',
  invaSpread: 'InvaSpread',
};

/** A model's outputs for `x` in inference mode, `chunk` images at a time, concatenated. */
export function featuresOf(
  model: { apply(x: tf.Tensor, kwargs: { training: boolean }): unknown },
  x: tf.Tensor4D,
  chunk = 500,
): tf.Tensor2D {
  const parts: tf.Tensor2D[] = [];
  for (let s = 0; s < x.shape[0]; s += chunk) {
    const n = Math.min(chunk, x.shape[0] - s);
    parts.push(
      tf.tidy(
        () =>
          model.apply(tf.slice(x, [s, 0, 0, 0], [n, -1, -1, -1]), {
            training: false,
          }) as tf.Tensor2D,
      ),
    );
  }
  const out = tf.concat(parts);
  tf.dispose(parts);
  return out;
}

/** Raw pixels as features: [N, H * W * C]. */
export function pixelsOf(x: tf.Tensor4D): tf.Tensor2D {
  return tf.reshape(x, [x.shape[0], -1]);
}

/**
 * Weighted kNN top-1 (k 200, T 0.1, the learning benchmark's) of the features `features` gives
 * for a training and a test set; the features are freed.
 */
export async function knnOf(
  features: (x: tf.Tensor4D) => tf.Tensor2D,
  train: tf.Tensor4D,
  trainLabels: Int32Array,
  test: tf.Tensor4D,
  testLabels: Int32Array,
): Promise<number> {
  const a = features(train);
  const b = features(test);
  const { top1 } = await knnEvaluate(a, trainLabels, b, testLabels, { k: 200, temperature: 0.1 });
  tf.dispose([a, b]);
  return top1;
}

/** {@link knnOf} of a preset's own `embed` features (CPC's pooled context, CMC's both views). */
export function embedKnn(
  method: { embed(x: tf.Tensor4D, options: { batchSize?: number }): tf.Tensor2D },
  train: tf.Tensor4D,
  trainLabels: Int32Array,
  test: tf.Tensor4D,
  testLabels: Int32Array,
): Promise<number> {
  return knnOf((x) => method.embed(x, { batchSize: 500 }), train, trainLabels, test, testLabels);
}
