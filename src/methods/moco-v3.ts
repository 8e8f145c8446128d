import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { byolRecipe, type ViewSpec } from '../augment/index.js';
import { checkNumber, checkOneOf, stopGradient, type JsonValue } from '../core/index.js';
import { mocoV3Predictor, mocoV3Projector, registerLayers } from '../layers/index.js';
import { mocoV3Loss } from '../losses/index.js';
import { cloneAsMomentumEncoder, cosineMomentum, emaUpdate } from '../state/index.js';
import { SslMethod, type LossOutput, type MethodDefaults, type StepContext } from './method.js';
import { defaultRecipe, projectionDims } from './simclr.js';
import type { SslMethodOptions } from './types.js';

/** The two backbone families of MoCo v3, which differ in head depth and temperature. */
export type MocoV3Backbone = 'vit' | 'resnet';

/** Options of {@link mocoV3}. */
export interface MocoV3Options extends SslMethodOptions {
  /**
   * `'vit'` (3-layer projector, predictor ending in batch norm, tau 0.2) or `'resnet'` (any conv
   * net: 2-layer projector, predictor without the last batch norm, tau 1.0), as
   * facebookresearch/moco-v3's `MoCo_ViT` and `MoCo_ResNet`. Default: `'vit'` when the encoder
   * contains the library's self-attention layer (`tinyVit`), else `'resnet'`.
   */
  readonly backbone?: MocoV3Backbone;
  /** Softmax temperature. Default `0.2` for a ViT, `1.0` for a ResNet (the released code's). */
  readonly temperature?: number;
  /** Base momentum of the momentum encoder, raised to 1 by a cosine over the run. Default `0.99`. */
  readonly momentum?: number;
  /** Output width of projector and predictor. Default `min(256, F)` (the paper's 256). */
  readonly projectionDim?: number;
  /** Hidden width of projector and predictor. Default `2F` (the paper's 4096 after a ResNet-50). */
  readonly hiddenDim?: number;
}

/**
 * The defaults of {@link mocoV3}: the ViT recipe of facebookresearch/moco-v3, AdamW with learning
 * rate 1.5e-4 x B / 256, weight decay 0.1 and a warm-up of 40 of 300 epochs, then cosine; under
 * 96 px AdamW 1e-3 (not scaled by the batch) with weight decay 1e-6, as the other presets' short
 * runs.
 */
export const MOCO_V3_DEFAULTS: MethodDefaults = {
  optimizer: 'adamw',
  learningRate: 1.5e-4,
  weightDecay: 0.1,
  warmup: 40 / 300,
  scaleWithBatch: true,
  smallImages: { optimizer: 'adamw', learningRate: 1e-3, weightDecay: 1e-6, warmup: 0.1 },
};

/**
 * MoCo v3 (Chen, Xie and He, ICCV 2021): the encoder with a projector and a predictor produces
 * queries of both views; a momentum copy of encoder and projector produces the keys; the loss is
 * the symmetric in-batch InfoNCE `ctr(q1, k2) + ctr(q2, k1)`, each `CE(q k^T / tau) * 2 tau`
 * ({@link index!mocoV3Loss}), with the keys under {@link index!stopGradient}. No queue: the other
 * images of the batch are the negatives. The momentum rises from 0.99 to 1 by a cosine over the
 * run; the momentum encoder is updated before the keys are computed (here: after each step, which
 * is the same order), and runs in training mode with its own batch statistics.
 *
 * Per backbone, as the released code: after a ViT a 3-layer projector, a predictor ending in a
 * batch norm without affine parameters and tau 0.2; after a ResNet (or any conv net) a 2-layer
 * projector, a predictor without that last batch norm (`last_bn=False`) and tau 1.0. A ViT's
 * patch projection stays random and frozen (`tinyVit` freezes it by default), MoCo v3's trick
 * for stability. Views: BYOL's asymmetric recipe from 96 px, {@link index!smallImageRecipe} with
 * `asymmetric: true` below. Optimiser: AdamW lr 1.5e-4 x B / 256, weight decay 0.1, warm-up
 * 40/300 of the run, cosine; under 96 px AdamW 1e-3.
 *
 * @param options - the encoder and {@link MocoV3Options}.
 * @returns the preset.
 * @throws {@link index!ContrastiveError} on bad options.
 *
 * @example
 * <!-- snippet setup="fashion" -->
 * ```ts
 * import { mocoV3 } from 'tfjs-contrastive/methods';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * const method = mocoV3({ encoder: smallConvNet({ inputShape: [28, 28, 1], seed: 1 }) });
 * console.log(method.backbone, method.temperature); // 'resnet' 1
 * await method.fit(images, { epochs: 1, batchSize: 32, progress: false });
 * method.dispose();
 * ```
 */
export function mocoV3(options: MocoV3Options): MoCoV3 {
  return new MoCoV3(options);
}

interface LayerTree {
  readonly layers: readonly { getClassName(): string; layers?: unknown }[];
}

function hasSelfAttention(model: LayerTree): boolean {
  return model.layers.some(
    (layer) =>
      layer.getClassName().endsWith('MultiHeadSelfAttention') ||
      (Array.isArray(layer.layers) && hasSelfAttention(layer as LayerTree)),
  );
}

/**
 * The MoCo v3 preset; build it with {@link mocoV3}.
 *
 * @example
 * <!-- snippet setup="fashion" -->
 * ```ts
 * import { MoCoV3, mocoV3 } from 'tfjs-contrastive/methods';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * const method: MoCoV3 = mocoV3({ encoder: smallConvNet({ inputShape: [28, 28, 1], seed: 1 }) });
 * const { metrics } = await method.trainStep({ images }); // images: [B, 28, 28, 1] in [0, 1]
 * console.log(metrics.momentum); // the momentum encoder's EMA momentum at this step
 * method.dispose();
 * ```
 */
export class MoCoV3 extends SslMethod {
  /** The method's name. */
  readonly name: string = 'mocoV3';
  /** The backbone family the heads and temperature follow. */
  readonly backbone: MocoV3Backbone;
  /** Softmax temperature. */
  readonly temperature: number;
  /** Base momentum of the momentum encoder. */
  readonly momentum: number;
  /** Projector. */
  readonly projector: tfl.Sequential;
  /** Predictor. */
  readonly predictor: tfl.Sequential;
  /** Momentum encoder (EMA of the encoder). */
  readonly momentumEncoder: tfl.LayersModel;
  /** Momentum projector (EMA of the projector). */
  readonly momentumProjector: tfl.Sequential;

  /**
   * Builds the preset (prefer {@link mocoV3}).
   *
   * @param options - see {@link mocoV3}.
   */
  constructor(options: MocoV3Options) {
    super('mocoV3', options, MOCO_V3_DEFAULTS);
    registerLayers();
    const caller = 'mocoV3';
    const backbone = options.backbone ?? (hasSelfAttention(this.encoder) ? 'vit' : 'resnet');
    checkOneOf(caller, 'options.backbone', backbone, ['vit', 'resnet']);
    this.backbone = backbone;
    this.temperature = options.temperature ?? (backbone === 'vit' ? 0.2 : 1.0);
    checkNumber(caller, 'options.temperature', this.temperature, { greaterThan: 0 });
    this.momentum = options.momentum ?? 0.99;
    checkNumber(caller, 'options.momentum', this.momentum, { min: 0, max: 1 });
    const f = this.featureDim;
    const dims = projectionDims(caller, options, f, { hidden: 2 * f, output: Math.min(256, f) });
    const seed = options.seed ?? 0;
    this.projector = mocoV3Projector({
      inputDim: f,
      hiddenDim: dims.hidden,
      outputDim: dims.output,
      layers: backbone === 'vit' ? 3 : 2,
      seed: seed + 1,
    });
    this.predictor = mocoV3Predictor({
      inputDim: dims.output,
      hiddenDim: dims.hidden,
      outputDim: dims.output,
      lastBatchNorm: backbone === 'vit',
      seed: seed + 2,
    });
    this.momentumEncoder = cloneAsMomentumEncoder(this.encoder);
    this.momentumProjector = cloneAsMomentumEncoder(this.projector);
  }

  protected recipe(size: number, channels: number): ViewSpec[] {
    return defaultRecipe(size, channels, byolRecipe, true);
  }

  protected networks(): Record<string, tfl.LayersModel> {
    return {
      encoder: this.encoder,
      projector: this.projector,
      predictor: this.predictor,
      momentumEncoder: this.momentumEncoder,
      momentumProjector: this.momentumProjector,
    };
  }

  protected trainedNetworks(): tfl.LayersModel[] {
    return [this.encoder, this.projector, this.predictor];
  }

  protected override momentumAt(progress: number | undefined): number {
    return progress === undefined ? this.momentum : cosineMomentum(progress, 1, this.momentum);
  }

  protected override prepare(views: tf.Tensor4D[]): tf.Tensor[] {
    return views
      .slice(0, 2)
      .map((v) =>
        SslMethod.train(this.momentumProjector, SslMethod.train(this.momentumEncoder, v)),
      );
  }

  protected loss(views: tf.Tensor4D[], prepared: tf.Tensor[]): LossOutput {
    const query = (v: tf.Tensor4D): { z: tf.Tensor2D; q: tf.Tensor2D } => {
      const z = SslMethod.train(this.projector, SslMethod.train(this.encoder, v));
      return { z, q: SslMethod.train(this.predictor, z) };
    };
    const a = query(views[0] as tf.Tensor4D);
    const b = query(views[1] as tf.Tensor4D);
    const [k1, k2] = prepared as [tf.Tensor2D, tf.Tensor2D];
    const options = { temperature: this.temperature };
    const loss = tf.add<tf.Scalar>(
      mocoV3Loss(a.q, stopGradient(k2), options),
      mocoV3Loss(b.q, stopGradient(k1), options),
    );
    return { loss, embedding: a.z };
  }

  protected override update(
    _views: tf.Tensor4D[],
    _prepared: tf.Tensor[],
    context: StepContext,
  ): void {
    const m = context.momentum ?? this.momentum;
    emaUpdate(this.momentumEncoder, this.encoder, m);
    emaUpdate(this.momentumProjector, this.projector, m);
  }

  protected describeConfig(): Record<string, JsonValue> {
    return {
      backbone: this.backbone,
      temperature: this.temperature,
      momentum: this.momentum,
      featureDim: this.featureDim,
      projector: this.projector.layers.map((l) => l.getClassName()),
      predictor: this.predictor.layers.map((l) => l.getClassName()),
    };
  }
}
