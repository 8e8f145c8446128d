import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { mocoV1Recipe, type ViewSpec } from '../augment/index.js';
import { checkNumber, type JsonValue } from '../core/index.js';
import { mlpHead, registerLayers } from '../layers/index.js';
import { invaSpreadLoss } from '../losses/index.js';
import { SslMethod, type LossOutput, type MethodDefaults } from './method.js';
import { defaultRecipe } from './simclr.js';
import type { SslMethodOptions } from './types.js';

/** Options of {@link invaSpread}. */
export interface InvaSpreadMethodOptions extends SslMethodOptions {
  /** Softmax temperature tau. Default `0.1` (Ye et al.). */
  readonly temperature?: number;
  /** Width of the embedding (the linear layer after the backbone). Default `128`. */
  readonly projectionDim?: number;
}

/**
 * The defaults of {@link invaSpread}: the authors' SGD (momentum 0.9, learning rate 0.03, weight
 * decay 5e-4, batch 128); under 96 px AdamW, as SimCLR's (see {@link invaSpread}).
 */
export const INVA_SPREAD_DEFAULTS: MethodDefaults = {
  optimizer: 'momentum',
  learningRate: 0.03,
  weightDecay: 5e-4,
  warmup: 0,
  smallImages: { optimizer: 'adamw', learningRate: 4e-3, weightDecay: 1e-6, warmup: 0.1 },
};

/**
 * Invariant and Spreading Instance Feature (Ye, Zhang, Yuen and Chang, CVPR 2019): one encoder,
 * two augmentations of every image in one batch of 2B through it, and the instance-spreading
 * criterion ({@link index!invaSpreadLoss}): each view must be classified as its own image against
 * the other images of the batch, with the features it is compared with detached, as in the
 * authors' code (mangye16/Unsupervised_Embedding_Learning, `BatchAverage.py`, `demo_seen.py`).
 * There is no memory bank and no momentum network: positives and negatives come from the batch.
 *
 * Defaults (the authors' CIFAR run): a linear layer to 128-d on the backbone's features (the
 * loss L2-normalises them), temperature 0.1, SGD with momentum 0.9, learning rate 0.03 and
 * weight decay 5e-4 (cosine decay here where the code steps it down at epoch 120); views as in
 * its code (crop 0.2-1, colour jitter 0.4 on all four, greyscale 0.2, flip: {@link
 * index!mocoV1Recipe}) from 96 px, {@link index!smallImageRecipe} below. Under 96 px, where a run
 * lasts minutes: AdamW with learning rate 4e-3 and a 10% warm-up, SimCLR's small-image
 * optimiser (the loss is SimCLR's softmax over the batch plus its log(1 - P) terms); docs/methods.md
 * has the learning measurement.
 *
 * @param options - the encoder and {@link InvaSpreadMethodOptions}.
 * @returns the preset.
 * @throws {@link index!ContrastiveError} on bad options.
 *
 * @example
 * <!-- snippet setup="fashion" -->
 * ```ts
 * import { invaSpread } from 'tfjs-contrastive/methods';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * const method = invaSpread({ encoder: smallConvNet({ inputShape: [28, 28, 1], seed: 1 }) });
 * await method.fit(images, { epochs: 1, batchSize: 128 }); // images: [N, 28, 28, 1] in [0, 1]
 * const features = method.embed(testImages); // [N, 128] backbone features
 * ```
 */
export function invaSpread(options: InvaSpreadMethodOptions): InvaSpread {
  return new InvaSpread(options);
}

/**
 * The InvaSpread preset; build it with {@link invaSpread}.
 *
 * @example
 * <!-- snippet setup="fashion" -->
 * ```ts
 * import { InvaSpread, invaSpread } from 'tfjs-contrastive/methods';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * const method: InvaSpread = invaSpread({ encoder: smallConvNet({ inputShape: [28, 28, 1], seed: 1 }) });
 * const { loss } = await method.trainStep({ images }); // images: [B, 28, 28, 1] in [0, 1]
 * console.log(loss, method.temperature); // ..., 0.1
 * method.dispose(); // the encoder stays yours
 * ```
 */
export class InvaSpread extends SslMethod {
  /** The method's name. */
  readonly name: string = 'invaSpread';
  /** Softmax temperature. */
  readonly temperature: number;
  /** The linear layer to the embedding. */
  readonly head: tfl.Sequential;

  /**
   * Builds the preset (prefer {@link invaSpread}).
   *
   * @param options - see {@link invaSpread}.
   */
  constructor(options: InvaSpreadMethodOptions) {
    super('invaSpread', options, INVA_SPREAD_DEFAULTS);
    registerLayers();
    this.temperature = options.temperature ?? 0.1;
    checkNumber('invaSpread', 'options.temperature', this.temperature, { greaterThan: 0 });
    const dim = options.projectionDim ?? 128;
    checkNumber('invaSpread', 'options.projectionDim', dim, { integer: true, min: 1 });
    this.head = mlpHead({
      inputDim: this.featureDim,
      name: 'inva_spread_head',
      blocks: [{ units: dim }],
      seed: (options.seed ?? 0) + 1,
    });
  }

  protected recipe(size: number, channels: number): ViewSpec[] {
    return defaultRecipe(size, channels, mocoV1Recipe);
  }

  protected networks(): Record<string, tfl.LayersModel> {
    return { encoder: this.encoder, head: this.head };
  }

  protected trainedNetworks(): tfl.LayersModel[] {
    return [this.encoder, this.head];
  }

  protected loss(views: tf.Tensor4D[]): LossOutput {
    const [a, b] = views as [tf.Tensor4D, tf.Tensor4D];
    const n = a.shape[0];
    // Both views as one batch of 2B, as the authors' code concatenates them.
    const z = SslMethod.train(this.head, SslMethod.train(this.encoder, tf.concat([a, b], 0)));
    const z1 = tf.slice(z, [0, 0], [n, -1]);
    const z2 = tf.slice(z, [n, 0], [n, -1]);
    const loss = invaSpreadLoss(z1, z2, { temperature: this.temperature }) as tf.Scalar;
    return { loss, embedding: z1 };
  }

  protected describeConfig(): Record<string, JsonValue> {
    return {
      temperature: this.temperature,
      featureDim: this.featureDim,
      head: this.head.layers.map((l) => l.getClassName()),
      embeddingDim: this.head.outputs[0]?.shape[1] ?? null,
    };
  }
}
