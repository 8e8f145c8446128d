import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { smallImageRecipe, swavRecipe, type ViewSpec } from '../augment/index.js';
import { checkNumber, stopGradient, type ComponentState, type JsonValue } from '../core/index.js';
import { Prototypes, registerLayers, swavProjectionHead } from '../layers/index.js';
import { sinkhorn, swavLoss } from '../losses/index.js';
import { MomentumQueue } from '../state/index.js';
import { SslMethod, type LossOutput, type MethodDefaults, type StatefulPart } from './method.js';
import type { StepContext } from './method.js';
import { checkRunPoint, outputsBySize, reached, restoredQueue, type RunPoint } from './parts.js';
import { projectionDims } from './simclr.js';
import { COLLAPSE_WINDOW, type SslMethodOptions, type StepMetrics } from './types.js';

/** Options of {@link swav}. */
export interface SwavMethodOptions extends SslMethodOptions {
  /** The number of prototypes K. Default `3000` (SwAV on ImageNet and CIFAR). */
  readonly prototypes?: number;
  /** Temperature of the softmax over prototypes. Default `0.1`. */
  readonly temperature?: number;
  /** Entropic regularisation of the Sinkhorn codes. Default `0.05`. */
  readonly epsilon?: number;
  /** Sinkhorn-Knopp iterations. Default `3`. */
  readonly sinkhornIterations?: number;
  /** Steps during which the prototypes stay frozen. Default `313` (`freeze_prototypes_niters`). */
  readonly freezePrototypesSteps?: number;
  /**
   * Local crops after the two global ones. Default `6` (SwAV's 2 x 224 + 6 x 96; side
   * `localCropSize(size)`).
   */
  readonly localCrops?: number;
  /**
   * Length of the queue of earlier embeddings per global crop, whose scores join the Sinkhorn
   * input (more samples for the equal partition when the batch is small against K). Default `0`,
   * no queue (the released code's default; its batch-256 recipe uses 3840).
   */
  readonly queueSize?: number;
  /**
   * When the queue starts filling; it is used once full. Default `{ epoch: 15 }` (the released
   * code's `epoch_queue_starts`). An epoch-based start needs the epoch's length: `fit` on a
   * tensor or an array of batches knows it, `trainStep` needs the `stepsPerEpoch` option (until
   * then the queue waits).
   */
  readonly queueStart?: RunPoint;
  /** Output width of the projection head. Default `min(128, F)`. */
  readonly projectionDim?: number;
  /** Hidden width of the projection head. Default `F` (2048 after a ResNet-50). */
  readonly hiddenDim?: number;
}

/**
 * The defaults of {@link swav}: the released batch-256 recipe, LARS with learning rate
 * 0.6 x B / 256, weight decay 1e-6 (biases and batch-norm parameters excluded), no warm-up,
 * cosine decay; under 96 px AdamW 1e-3 with a 10% warm-up, as the other presets' short runs.
 */
export const SWAV_DEFAULTS: MethodDefaults = {
  optimizer: 'lars',
  learningRate: 0.6,
  weightDecay: 1e-6,
  warmup: 0,
  scaleWithBatch: true,
  smallImages: { optimizer: 'adamw', learningRate: 1e-3, weightDecay: 1e-6, warmup: 0.1 },
};

/**
 * SwAV (Caron et al., NeurIPS 2020): every crop's L2-normalised projection is scored against K
 * learned prototypes; the codes of each global crop come from the Sinkhorn-Knopp algorithm on
 * its scores (an equal partition of the batch over the prototypes, eps 0.05, 3 iterations, no
 * gradient), and every other crop predicts them with a softmax at temperature 0.1 (swapped
 * prediction, {@link index!swavLoss}). Multi-crop: 2 global and 6 local crops, the crops of one
 * size through the networks as one batch (as the released code groups them by resolution).
 *
 * As facebookresearch/swav: the prototypes are a bias-free linear layer ({@link layers!Prototypes}),
 * normalised to unit length after every step (the released code normalises before each
 * forward pass: the same sequence), and frozen for the first 313 steps. The optional queue
 * (`queueSize`) starts empty at `queueStart` (epoch 15), stores the global crops' embeddings,
 * and once full its scores against the current prototypes join the Sinkhorn input only.
 *
 * Views: {@link index!swavRecipe} from 96 px (colour); below, {@link index!smallImageRecipe}'s two
 * views with `localCrops` local views. Optimiser: LARS 0.6 x B / 256, weight decay 1e-6,
 * cosine; under 96 px AdamW 1e-3 with a 10% warm-up. Metrics: `prototypeUsage`, the share of the
 * batch's possible prototypes (min(B, K)) that the codes of the first crop use (1/min(B, K) when
 * every image goes to one prototype, which `fit` reports as a collapse), and `queueFill`.
 *
 * @param options - the encoder and {@link SwavMethodOptions}.
 * @returns the preset.
 * @throws {@link index!ContrastiveError} on bad options.
 *
 * @example
 * <!-- snippet setup="fashion" -->
 * ```ts
 * import { swav } from 'tfjs-contrastive/methods';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * const method = swav({ encoder: smallConvNet({ inputShape: [28, 28, 1], seed: 1 }), prototypes: 300 });
 * const { metrics } = await method.trainStep({ images }); // images: [B, 28, 28, 1] in [0, 1]
 * console.log(metrics.prototypeUsage); // share of the prototypes the codes use
 * method.dispose();
 * ```
 */
export function swav(options: SwavMethodOptions): SwAV {
  return new SwAV(options);
}

/**
 * The SwAV preset; build it with {@link swav}.
 *
 * @example
 * <!-- snippet setup="fashion" -->
 * ```ts
 * import { SwAV, swav } from 'tfjs-contrastive/methods';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * const encoder = smallConvNet({ inputShape: [28, 28, 1], seed: 1 });
 * const method: SwAV = swav({ encoder, prototypes: 300, queueSize: 512, queueStart: { step: 0 } });
 * await method.trainStep({ images });
 * console.log(method.queues[0]?.count); // B embeddings of the first crop stored so far
 * method.dispose();
 * ```
 */
export class SwAV extends SslMethod {
  /** The method's name. */
  readonly name: string = 'swav';
  /** Softmax temperature. */
  readonly temperature: number;
  /** Sinkhorn epsilon. */
  readonly epsilon: number;
  /** Sinkhorn iterations. */
  readonly sinkhornIterations: number;
  /** Local crops per image. */
  readonly localCrops: number;
  /** When the queue starts. */
  readonly queueStart: RunPoint;
  /** Projection head (ending in L2 normalisation). */
  readonly projector: tfl.Sequential;
  /** The prototypes as a one-layer model (its layer: {@link SwAV.prototypeLayer}). */
  readonly prototypes: tfl.Sequential;
  /** The prototypes layer (normalised and frozen by the preset). */
  readonly prototypeLayer: Prototypes;
  private queueList: MomentumQueue[];
  private lastBatch = 0;

  /**
   * Builds the preset (prefer {@link swav}).
   *
   * @param options - see {@link swav}.
   */
  constructor(options: SwavMethodOptions) {
    super('swav', options, SWAV_DEFAULTS);
    registerLayers();
    const caller = 'swav';
    this.temperature = options.temperature ?? 0.1;
    checkNumber(caller, 'options.temperature', this.temperature, { greaterThan: 0 });
    this.epsilon = options.epsilon ?? 0.05;
    checkNumber(caller, 'options.epsilon', this.epsilon, { greaterThan: 0 });
    this.sinkhornIterations = options.sinkhornIterations ?? 3;
    checkNumber(caller, 'options.sinkhornIterations', this.sinkhornIterations, {
      integer: true,
      min: 1,
      max: 1000,
    });
    this.localCrops = options.localCrops ?? 6;
    checkNumber(caller, 'options.localCrops', this.localCrops, { integer: true, min: 0 });
    const count = options.prototypes ?? 3000;
    checkNumber(caller, 'options.prototypes', count, { integer: true, min: 2 });
    const freezeSteps = options.freezePrototypesSteps ?? 313;
    checkNumber(caller, 'options.freezePrototypesSteps', freezeSteps, { integer: true, min: 0 });
    const queueSize = options.queueSize ?? 0;
    checkNumber(caller, 'options.queueSize', queueSize, { integer: true, min: 0 });
    this.queueStart = checkRunPoint(
      caller,
      'options.queueStart',
      options.queueStart ?? { epoch: 15 },
    );
    const f = this.featureDim;
    const dims = projectionDims(caller, options, f, { hidden: f, output: Math.min(128, f) });
    const seed = options.seed ?? 0;
    this.projector = swavProjectionHead({
      inputDim: f,
      hiddenDim: dims.hidden,
      outputDim: dims.output,
      seed: seed + 1,
    });
    this.prototypeLayer = new Prototypes({
      count,
      freezeSteps,
      seed: seed + 2,
      inputShape: [dims.output],
    });
    this.prototypes = tfl.sequential({ layers: [this.prototypeLayer], name: 'swav_prototypes' });
    this.prototypeLayer.normalize();
    this.prototypeLayer.setStep(0);
    this.queueList =
      queueSize === 0
        ? []
        : [0, 1].map((i) => new MomentumQueue(queueSize, dims.output, { seed: seed + 3 + i }));
  }

  /** The queues of the two global crops' embeddings (empty without `queueSize`). */
  get queues(): readonly MomentumQueue[] {
    return this.queueList;
  }

  protected recipe(size: number, channels: number): ViewSpec[] {
    if (size >= 96 && channels === 3) return swavRecipe(size, this.localCrops);
    return smallImageRecipe(size, {
      channels: channels === 3 ? 3 : 1,
      localCrops: this.localCrops,
    });
  }

  protected networks(): Record<string, tfl.LayersModel> {
    return { encoder: this.encoder, projector: this.projector, prototypes: this.prototypes };
  }

  protected trainedNetworks(): tfl.LayersModel[] {
    return [this.encoder, this.projector, this.prototypes];
  }

  protected override atStep(step: number): void {
    this.prototypeLayer.setStep(step);
  }

  /** Whether the queue fills at this step. */
  private queueStarted(context: StepContext): boolean {
    return this.queueList.length > 0 && reached(this.queueStart, context.step, context.epoch);
  }

  protected override prepare(_views: tf.Tensor4D[], context: StepContext): tf.Tensor[] {
    // The full queues' scores against the current prototypes (constants of the Sinkhorn input).
    const full = this.queueList.every((q) => q.count === q.size);
    if (!this.queueStarted(context) || !full) return [];
    const kernel = this.prototypeLayer.getWeights()[0] as tf.Tensor2D;
    return this.queueList.map((q) => tf.matMul(tf.concat([...q.read()], 0), kernel));
  }

  protected loss(views: tf.Tensor4D[], prepared: tf.Tensor[], context: StepContext): LossOutput {
    const b = (views[0] as tf.Tensor4D).shape[0];
    this.lastBatch = b;
    const embeddings = outputsBySize(views, (x) =>
      SslMethod.train(this.projector, SslMethod.train(this.encoder, x)),
    );
    const scores = embeddings.map((z) => SslMethod.train(this.prototypes, z));
    const loss = swavLoss(scores, {
      temperature: this.temperature,
      epsilon: this.epsilon,
      iterations: this.sinkhornIterations,
      ...(prepared.length === 0 ? {} : { queueScoresPerCrop: prepared as tf.Tensor2D[] }),
    }) as tf.Scalar;
    const k = this.prototypeLayer.count;
    const codes = sinkhorn(stopGradient(scores[0] as tf.Tensor2D), {
      epsilon: this.epsilon,
      iterations: this.sinkhornIterations,
    });
    const used = tf.sum(tf.max(tf.oneHot(tf.argMax(codes, 1), k), 0));
    const prototypeUsage = tf.div<tf.Scalar>(used, Math.min(b, k));
    return {
      loss,
      embedding: embeddings[0],
      monitors: { prototypeUsage },
      keep: this.queueStarted(context) ? embeddings.slice(0, 2).map((z) => stopGradient(z)) : [],
    };
  }

  protected override update(
    _views: tf.Tensor4D[],
    _prepared: tf.Tensor[],
    _context: StepContext,
    kept: readonly tf.Tensor[],
  ): void {
    this.prototypeLayer.normalize();
    kept.forEach((z, i) => this.queueList[i]?.enqueue(z as tf.Tensor2D));
  }

  protected override extraMetrics(): Record<string, number> {
    const q = this.queueList[0];
    return q === undefined ? {} : { queueFill: q.count / q.size };
  }

  protected override collapseReason(
    metrics: StepMetrics,
    embeddingDim: number,
  ): string | undefined {
    const usage = metrics['prototypeUsage'];
    const possible = Math.min(this.lastBatch, this.prototypeLayer.count);
    if (usage !== undefined && possible > 1 && usage * possible < 1.5) {
      return (
        'the codes have collapsed: every image of the batch goes to one prototype ' +
        `(prototypeUsage ${usage.toPrecision(3)} = 1 / ${possible}) for ${COLLAPSE_WINDOW} steps in a row`
      );
    }
    return super.collapseReason(metrics, embeddingDim);
  }

  protected override stateParts(): Record<string, StatefulPart> {
    return Object.fromEntries(this.queueList.map((q, i) => [`queue${i}`, q]));
  }

  protected override restorePart(name: string, state: ComponentState): void {
    const i = ['queue0', 'queue1'].indexOf(name);
    const current = this.queueList[i];
    if (current === undefined) {
      super.restorePart(name, state);
      return;
    }
    this.queueList[i] = restoredQueue(`${this.name}.load`, current, state);
  }

  protected override disposeParts(): void {
    for (const q of this.queueList) q.dispose();
  }

  protected describeConfig(): Record<string, JsonValue> {
    return {
      prototypes: this.prototypeLayer.count,
      freezePrototypesSteps: this.prototypeLayer.freezeSteps,
      temperature: this.temperature,
      epsilon: this.epsilon,
      sinkhornIterations: this.sinkhornIterations,
      localCrops: this.localCrops,
      queueSize: this.queueList[0]?.size ?? 0,
      queueStart: { ...this.queueStart },
      featureDim: this.featureDim,
      projector: this.projector.layers.map((l) => l.getClassName()),
    };
  }
}
