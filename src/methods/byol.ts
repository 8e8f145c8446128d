import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { byolRecipe, type ViewSpec } from '../augment/index.js';
import { checkNumber, type JsonValue } from '../core/index.js';
import { byolPredictor, byolProjector, registerLayers } from '../layers/index.js';
import { symmetricByolLoss } from '../losses/index.js';
import { cloneAsMomentumEncoder, cosineMomentum, emaUpdate } from '../state/index.js';
import { SslMethod, type LossOutput, type MethodDefaults, type StepContext } from './method.js';
import { defaultRecipe, projectionDims } from './simclr.js';
import type { SslMethodOptions } from './types.js';

/** Options of {@link byol}. */
export interface ByolOptions extends SslMethodOptions {
  /**
   * Base momentum tau_base of the target, raised to 1 by a cosine over the run. Default `0.99`
   * (BYOL's value for runs shorter than its 1000 epochs, where it uses 0.996).
   */
  readonly momentum?: number;
  /** Output width of projector and predictor. Default `min(256, F)` (256 after a 2048-wide ResNet-50). */
  readonly projectionDim?: number;
  /** Hidden width of projector and predictor. Default `2F` (4096 after a 2048-wide ResNet-50). */
  readonly hiddenDim?: number;
}

/**
 * The defaults of {@link byol}: BYOL's LARS (learning rate 0.2 x B / 256, weight decay 1.5e-6,
 * biases and batch-norm parameters excluded) with a 10% warm-up and cosine decay.
 */
export const BYOL_DEFAULTS: MethodDefaults = {
  optimizer: 'lars',
  learningRate: 0.2,
  weightDecay: 1.5e-6,
  warmup: 0.1,
  scaleWithBatch: true,
  smallImages: { optimizer: 'adamw', learningRate: 1e-3, weightDecay: 1.5e-6, warmup: 0.1 },
};

/**
 * BYOL (Grill et al., NeurIPS 2020): the online network (encoder -> projector -> predictor)
 * predicts the target network's projection of the other view; the target (encoder + projector)
 * is an exponential moving average of the online one, with momentum rising from 0.99 to 1 by a
 * cosine over the run; the loss `2 - 2 cos` is summed over both directions, with no negatives.
 * Each view goes through the networks on its own; the target runs in training mode with its own
 * batch-norm statistics, as in deepmind-research/byol.
 *
 * Defaults: projector and predictor dense(2F) -> BN -> ReLU -> dense(min(256, F)) (the paper's
 * 4096 -> 256 after 2048 features), LARS lr 0.2 x B / 256 (B the batch), weight decay 1.5e-6,
 * warm-up 10%, cosine decay; under 96 px AdamW with learning rate 1e-3 (not scaled by the batch).
 * Views: BYOL's asymmetric recipe from 96 px, {@link index!smallImageRecipe}
 * with `asymmetric: true` below. BYOL needs more steps than the contrastive methods before its
 * features beat random ones: measure it with `npm run bench:learn -- --method byol`.
 *
 * @param options - the encoder and {@link ByolOptions}.
 * @returns the preset.
 * @throws {@link index!ContrastiveError} on bad options.
 *
 * @example
 * <!-- snippet setup="fashion" -->
 * ```ts
 * import { byol } from 'tfjs-contrastive/methods';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * const method = byol({ encoder: smallConvNet({ inputShape: [28, 28, 1], seed: 1 }) });
 * await method.fit(images, { epochs: 2 }); // images: [N, 28, 28, 1] in [0, 1]
 * ```
 */
export function byol(options: ByolOptions): BYOL {
  return new BYOL(options);
}

/**
 * The BYOL preset; build it with {@link byol}.
 *
 * @example
 * <!-- snippet setup="fashion" -->
 * ```ts
 * import { BYOL, byol } from 'tfjs-contrastive/methods';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * const method: BYOL = byol({ encoder: smallConvNet({ inputShape: [28, 28, 1], seed: 1 }) });
 * const { metrics } = await method.trainStep({ images }); // images: [B, 28, 28, 1] in [0, 1]
 * console.log(metrics.momentum); // the target network's EMA momentum at this step
 * const target = method.targetEncoder; // the EMA copy of the encoder
 * method.dispose();
 * ```
 */
export class BYOL extends SslMethod {
  /** The method's name. */
  readonly name: string = 'byol';
  /** Base momentum of the target. */
  readonly momentum: number;
  /** Online projector. */
  readonly projector: tfl.Sequential;
  /** Online predictor. */
  readonly predictor: tfl.Sequential;
  /** Target encoder (EMA of the encoder). */
  readonly targetEncoder: tfl.LayersModel;
  /** Target projector (EMA of the projector). */
  readonly targetProjector: tfl.Sequential;

  /**
   * Builds the preset (prefer {@link byol}).
   *
   * @param options - see {@link byol}.
   */
  constructor(options: ByolOptions) {
    super('byol', options, BYOL_DEFAULTS);
    registerLayers();
    this.momentum = options.momentum ?? 0.99;
    checkNumber('byol', 'options.momentum', this.momentum, { min: 0, max: 1 });
    const f = this.featureDim;
    const dims = projectionDims('byol', options, f, { hidden: 2 * f, output: Math.min(256, f) });
    const seed = options.seed ?? 0;
    this.projector = byolProjector({
      inputDim: f,
      hiddenDim: dims.hidden,
      outputDim: dims.output,
      seed: seed + 1,
    });
    this.predictor = byolPredictor({
      inputDim: dims.output,
      hiddenDim: dims.hidden,
      outputDim: dims.output,
      seed: seed + 2,
    });
    this.targetEncoder = cloneAsMomentumEncoder(this.encoder);
    this.targetProjector = cloneAsMomentumEncoder(this.projector);
  }

  protected recipe(size: number, channels: number): ViewSpec[] {
    return defaultRecipe(size, channels, byolRecipe, true);
  }

  protected networks(): Record<string, tfl.LayersModel> {
    return {
      encoder: this.encoder,
      projector: this.projector,
      predictor: this.predictor,
      targetEncoder: this.targetEncoder,
      targetProjector: this.targetProjector,
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
      .map((v) => SslMethod.train(this.targetProjector, SslMethod.train(this.targetEncoder, v)));
  }

  protected loss(views: tf.Tensor4D[], prepared: tf.Tensor[]): LossOutput {
    const online = (v: tf.Tensor4D): { z: tf.Tensor2D; p: tf.Tensor2D } => {
      const z = SslMethod.train(this.projector, SslMethod.train(this.encoder, v));
      return { z, p: SslMethod.train(this.predictor, z) };
    };
    const a = online(views[0] as tf.Tensor4D);
    const b = online(views[1] as tf.Tensor4D);
    const [t1, t2] = prepared as [tf.Tensor2D, tf.Tensor2D];
    return { loss: symmetricByolLoss(a.p, b.p, t1, t2) as tf.Scalar, embedding: a.z };
  }

  protected override update(
    _views: tf.Tensor4D[],
    _prepared: tf.Tensor[],
    context: StepContext,
  ): void {
    const m = context.momentum ?? this.momentum;
    emaUpdate(this.targetEncoder, this.encoder, m);
    emaUpdate(this.targetProjector, this.projector, m);
  }

  protected describeConfig(): Record<string, JsonValue> {
    return {
      momentum: this.momentum,
      featureDim: this.featureDim,
      projector: this.projector.layers.map((l) => l.getClassName()),
    };
  }
}
