import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { mocoV2Recipe, type ViewSpec } from '../augment/index.js';
import { checkNumber, type JsonValue } from '../core/index.js';
import { registerLayers, simsiamPredictor, simsiamProjector } from '../layers/index.js';
import { simsiamLoss } from '../losses/index.js';
import { SslMethod, type LossOutput, type MethodDefaults } from './method.js';
import { defaultRecipe, projectionDims } from './simclr.js';
import type { SslMethodOptions } from './types.js';

/** Options of {@link simsiam}. */
export interface SimsiamOptions extends SslMethodOptions {
  /** Output width of the projector (and predictor). Default: F (2048 after ResNet-50). */
  readonly projectionDim?: number;
  /** Hidden width of the projector. Default: F. */
  readonly hiddenDim?: number;
  /** Bottleneck of the predictor. Default: a quarter of the projection width (512 of 2048). */
  readonly predictorHiddenDim?: number;
}

/**
 * The defaults of {@link simsiam}: SimSiam's SGD (momentum 0.9, learning rate 0.05 x B / 256,
 * weight decay 1e-4), cosine decay, no warm-up.
 */
export const SIMSIAM_DEFAULTS: MethodDefaults = {
  optimizer: 'momentum',
  learningRate: 0.05,
  weightDecay: 1e-4,
  warmup: 0,
  scaleWithBatch: true,
  smallImages: { optimizer: 'adamw', learningRate: 1e-3, weightDecay: 1e-4, warmup: 0.05 },
};

/**
 * SimSiam (Chen and He, CVPR 2021): two views through one encoder and projector (3 dense layers
 * with batch norm, the last without affine parameters), a predictor (bottleneck F/4) on each, and
 * the symmetric negative cosine `-1/2 [cos(p1, sg(z2)) + cos(p2, sg(z1))]`; the stop-gradient on
 * the projections is what prevents collapse, with no momentum encoder and no negatives. Each view
 * goes through the networks on its own, as in facebookresearch/simsiam.
 *
 * Defaults: the widths of facebookresearch/simsiam scaled to the encoder (projector F -> F -> F,
 * predictor F -> F/4 -> F), SGD momentum 0.9 with learning rate 0.05 x B / 256 and weight decay
 * 1e-4, cosine decay; under 96 px AdamW with learning rate 1e-3 and a 5% warm-up. Views: MoCo v2's recipe (the paper's) from 96 px, {@link index!smallImageRecipe}
 * below. Watch `metrics.embeddingStd`: near 0 means collapse.
 *
 * @param options - the encoder and {@link SimsiamOptions}.
 * @returns the preset.
 * @throws {@link index!ContrastiveError} on bad options.
 *
 * @example
 * <!-- snippet setup="fashion" -->
 * ```ts
 * import { simsiam } from 'tfjs-contrastive/methods';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * const method = simsiam({ encoder: smallConvNet({ inputShape: [28, 28, 1], seed: 1 }) });
 * const { loss, metrics } = await method.trainStep({ images });
 * ```
 */
export function simsiam(options: SimsiamOptions): SimSiam {
  return new SimSiam(options);
}

/**
 * The SimSiam preset; build it with {@link simsiam}.
 *
 * @example
 * <!-- snippet setup="fashion" -->
 * ```ts
 * import { SimSiam, simsiam } from 'tfjs-contrastive/methods';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * const method: SimSiam = simsiam({ encoder: smallConvNet({ inputShape: [28, 28, 1], seed: 1 }) });
 * const { metrics } = await method.trainStep({ images }); // images: [B, 28, 28, 1] in [0, 1]
 * // the collapse monitor: near 0 is collapse, about 1 / sqrt(D) healthy
 * console.log(metrics.embeddingStd);
 * method.dispose();
 * ```
 */
export class SimSiam extends SslMethod {
  /** The method's name. */
  readonly name: string = 'simsiam';
  /** Projector (its output is the stop-gradient target). */
  readonly projector: tfl.Sequential;
  /** Predictor. */
  readonly predictor: tfl.Sequential;

  /**
   * Builds the preset (prefer {@link simsiam}).
   *
   * @param options - see {@link simsiam}.
   */
  constructor(options: SimsiamOptions) {
    super('simsiam', options, SIMSIAM_DEFAULTS);
    registerLayers();
    const f = this.featureDim;
    const dims = projectionDims('simsiam', options, f, { hidden: f, output: f });
    const bottleneck = options.predictorHiddenDim ?? Math.max(1, Math.floor(dims.output / 4));
    checkNumber('simsiam', 'options.predictorHiddenDim', bottleneck, { integer: true, min: 1 });
    const seed = options.seed ?? 0;
    this.projector = simsiamProjector({
      inputDim: f,
      hiddenDim: dims.hidden,
      outputDim: dims.output,
      seed: seed + 1,
    });
    this.predictor = simsiamPredictor({
      inputDim: dims.output,
      hiddenDim: bottleneck,
      outputDim: dims.output,
      seed: seed + 2,
    });
  }

  protected recipe(size: number, channels: number): ViewSpec[] {
    return defaultRecipe(size, channels, mocoV2Recipe);
  }

  protected networks(): Record<string, tfl.LayersModel> {
    return { encoder: this.encoder, projector: this.projector, predictor: this.predictor };
  }

  protected trainedNetworks(): tfl.LayersModel[] {
    return [this.encoder, this.projector, this.predictor];
  }

  protected loss(views: tf.Tensor4D[]): LossOutput {
    const side = (v: tf.Tensor4D): { z: tf.Tensor2D; p: tf.Tensor2D } => {
      const z = SslMethod.train(this.projector, SslMethod.train(this.encoder, v));
      return { z, p: SslMethod.train(this.predictor, z) };
    };
    const a = side(views[0] as tf.Tensor4D);
    const b = side(views[1] as tf.Tensor4D);
    return { loss: simsiamLoss(a.p, b.p, a.z, b.z) as tf.Scalar, embedding: a.z };
  }

  protected describeConfig(): Record<string, JsonValue> {
    return {
      featureDim: this.featureDim,
      projector: this.projector.layers.map((l) => l.getClassName()),
    };
  }
}
