import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { simclrRecipe, smallImageRecipe, type ViewSpec } from '../augment/index.js';
import { checkNumber, type JsonValue } from '../core/index.js';
import { registerLayers, simclrV1Projector, type HeadDims } from '../layers/index.js';
import { ntXentLoss } from '../losses/index.js';
import { SslMethod, type LossOutput, type MethodDefaults } from './method.js';
import type { SslMethodOptions } from './types.js';

/** Options of {@link simclr}. */
export interface SimclrOptions extends SslMethodOptions {
  /**
   * NT-Xent temperature. Default `0.1` (google-research/simclr's default and the paper's
   * ImageNet value; its CIFAR-10 runs use 0.5 at batch 512 for hundreds of epochs, which learned
   * less in short runs here: see docs/methods.md).
   */
  readonly temperature?: number;
  /** Output width of the projection head. Default `128`. */
  readonly projectionDim?: number;
  /** Hidden width of the projection head. Default: the encoder's feature width F. */
  readonly hiddenDim?: number;
  /** Seed of the head's initial weights. Default: from `seed`. */
  readonly headSeed?: number;
}

/** The defaults of {@link simclr}; see its documentation for where each comes from. */
export const SIMCLR_DEFAULTS: MethodDefaults = {
  optimizer: 'lars',
  learningRate: 1.0,
  weightDecay: 1e-6,
  warmup: 0.1,
  smallImages: { optimizer: 'adamw', learningRate: 4e-3, weightDecay: 1e-6, warmup: 0.1 },
};

/**
 * The SimCLR recipe for a view size: the paper's (crops 0.08-1, strong colour jitter, blur) for
 * images of 96 px and more, {@link index!smallImageRecipe} below.
 *
 * @internal
 */
export function defaultRecipe(
  size: number,
  channels: number,
  large: (size: number) => ViewSpec[],
  asymmetric = false,
): ViewSpec[] {
  if (size >= 96 && channels === 3) return large(size);
  return smallImageRecipe(size, { channels: channels === 3 ? 3 : 1, asymmetric });
}

/**
 * SimCLR v1 (Chen et al., ICML 2020): two views of every image through one encoder and a 2-layer
 * projection head with batch norm (`simclrV1Projector`), NT-Xent over the 2B views with the
 * other 2B - 2 views as negatives. Both views go through the networks as one batch of 2B, as in
 * google-research/simclr, so batch norm sees both (global batch norm).
 *
 * Defaults (google-research/simclr): temperature 0.1, projection 128-d with hidden width F,
 * LARS with learning rate 1.0 (the released CIFAR-10 runs use 1.0 at batch 512; at ImageNet
 * scale 0.3 x B / 256), weight decay 1e-6 (biases and batch-norm parameters excluded), 10% linear
 * warm-up then cosine decay. Under 96 px, where a run lasts minutes rather than the paper's
 * hundreds of epochs: AdamW with learning rate 4e-3 (LARS at 1.0 gained 1.7 kNN points in 5
 * minutes on Fashion-MNIST where AdamW gained about 3; docs/methods.md has the measurements).
 * Views: the paper's recipe from 96 px, {@link index!smallImageRecipe} below (milder crops, no
 * hue on one channel).
 * The loss is the mean over the 2B anchors (google-research/simclr reports twice this).
 *
 * @param options - the encoder and {@link SimclrOptions}.
 * @returns the preset.
 * @throws {@link index!ContrastiveError} on bad options.
 *
 * @example
 * <!-- snippet setup="fashion" -->
 * ```ts
 * import { simclr } from 'tfjs-contrastive/methods';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * const method = simclr({ encoder: smallConvNet({ inputShape: [28, 28, 1], seed: 1 }) });
 * await method.fit(images, { epochs: 5, batchSize: 256 }); // images: [N, 28, 28, 1] in [0, 1]
 * const features = method.embed(testImages); // [N, 128] backbone features
 * ```
 */
export function simclr(options: SimclrOptions): SimCLR {
  return new SimCLR(options);
}

/**
 * The SimCLR v1 preset; build it with {@link simclr}.
 *
 * @example
 * <!-- snippet setup="fashion" -->
 * ```ts
 * import { SimCLR, simclr } from 'tfjs-contrastive/methods';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * const method: SimCLR = simclr({ encoder: smallConvNet({ inputShape: [28, 28, 1], seed: 1 }) });
 * // one step by hand: images [B, 28, 28, 1] in [0, 1]
 * const { loss, step, metrics } = await method.trainStep({ images });
 * console.log(step, loss, metrics.learningRate, method.temperature); // 1, ..., ..., 0.1
 * method.dispose(); // the encoder stays yours
 * ```
 */
export class SimCLR extends SslMethod {
  /** The method's name. */
  readonly name: string = 'simclr';
  /** NT-Xent temperature. */
  readonly temperature: number;
  /** The projection head g (dropped downstream). */
  readonly projector: tfl.Sequential;

  /**
   * Builds the preset (prefer {@link simclr}); subclasses pass their own name and head.
   *
   * @param options - see {@link simclr}.
   * @param caller - the name in error messages.
   * @param head - builds the projection head for the checked feature width (SimCLR v2 passes
   *   its 3-layer head).
   */
  constructor(
    options: SimclrOptions,
    caller = 'simclr',
    head: (dims: HeadDims) => tfl.Sequential = simclrV1Projector,
  ) {
    super(caller, options, SIMCLR_DEFAULTS);
    registerLayers();
    this.temperature = options.temperature ?? 0.1;
    checkNumber(caller, 'options.temperature', this.temperature, { greaterThan: 0 });
    const dims = projectionDims(caller, options, this.featureDim);
    this.projector = head({
      inputDim: this.featureDim,
      hiddenDim: dims.hidden,
      outputDim: dims.output,
      seed: options.headSeed ?? (options.seed ?? 0) + 1,
    });
  }

  protected recipe(size: number, channels: number): ViewSpec[] {
    return defaultRecipe(size, channels, simclrRecipe);
  }

  protected networks(): Record<string, tfl.LayersModel> {
    return { encoder: this.encoder, projector: this.projector };
  }

  protected trainedNetworks(): tfl.LayersModel[] {
    return [this.encoder, this.projector];
  }

  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  protected loss(views: tf.Tensor4D[], prepared: tf.Tensor[] = []): LossOutput {
    const [a, b] = views as [tf.Tensor4D, tf.Tensor4D];
    const n = a.shape[0];
    const z = SslMethod.train(this.projector, SslMethod.train(this.encoder, tf.concat([a, b], 0)));
    const z1 = tf.slice(z, [0, 0], [n, -1]);
    const z2 = tf.slice(z, [n, 0], [n, -1]);
    const loss = ntXentLoss(z1, z2, { temperature: this.temperature }) as tf.Scalar;
    return { loss, embedding: z1 };
  }

  protected describeConfig(): Record<string, JsonValue> {
    return {
      temperature: this.temperature,
      featureDim: this.featureDim,
      projector: this.projector.layers.map((l) => l.getClassName()),
    };
  }
}

/** The projection head's widths from the options, checked. @internal */
export function projectionDims(
  caller: string,
  options: { projectionDim?: number; hiddenDim?: number },
  featureDim: number,
  defaults: { hidden?: number; output?: number } = {},
): { hidden: number; output: number } {
  const hidden = options.hiddenDim ?? defaults.hidden ?? featureDim;
  const output = options.projectionDim ?? defaults.output ?? 128;
  checkNumber(caller, 'options.hiddenDim', hidden, { integer: true, min: 1 });
  checkNumber(caller, 'options.projectionDim', output, { integer: true, min: 1 });
  return { hidden, output };
}
