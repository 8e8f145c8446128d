import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { dinoRecipe, smallImageRecipe, type ViewSpec } from '../augment/index.js';
import {
  checkBoolean,
  checkNumber,
  checkOneOf,
  stopGradient,
  type ComponentState,
  type JsonValue,
} from '../core/index.js';
import { teacherEntropy, teacherStudentKl } from '../eval/collapse.js';
import { dinoHead, registerLayers } from '../layers/index.js';
import { dinoLoss } from '../losses/index.js';
import {
  Center,
  clipGradNorm,
  cloneAsMomentumEncoder,
  cosineMomentum,
  emaUpdate,
} from '../state/index.js';
import {
  SslMethod,
  type LossOutput,
  type MethodDefaults,
  type StatefulPart,
  type StepContext,
} from './method.js';
import { checkRunPoint, outputsBySize, reached, type RunPoint } from './parts.js';
import { COLLAPSE_WINDOW, type SslMethodOptions, type StepMetrics } from './types.js';

/** How DINO clips gradients: each parameter's own norm (the released code) or all together. */
export type GradientClipMode = 'parameter' | 'global';

/** Options of {@link dino}. */
export interface DinoMethodOptions extends SslMethodOptions {
  /** Prototypes K of the head's last layer. Default `65536` from 96 px, `4096` below. */
  readonly outDim?: number;
  /** Hidden width of the head. Default `min(2048, 4F)`. */
  readonly hiddenDim?: number;
  /** Bottleneck width of the head. Default `min(256, 2F)`. */
  readonly bottleneckDim?: number;
  /** Student softmax temperature. Default `0.1`. */
  readonly studentTemperature?: number;
  /** Teacher temperature after the warm-up. Default `0.07` (DINO's ViT-S/16 recipe). */
  readonly teacherTemperature?: number;
  /** Teacher temperature at the start of the warm-up. Default `0.04`. */
  readonly warmupTeacherTemperature?: number;
  /**
   * Length of the linear teacher-temperature warm-up: a fraction of the run when `< 1`, steps
   * when `>= 1`. Default `0.3` (DINO's 30 of 100 epochs). When the run's length is unknown, a
   * fractional warm-up is over (the temperature is `teacherTemperature`).
   */
  readonly teacherTemperatureWarmup?: number;
  /** Base momentum of the teacher, raised to 1 by a cosine over the run. Default `0.996`. */
  readonly momentum?: number;
  /** Momentum of the center. Default `0.9`. */
  readonly centerMomentum?: number;
  /** Local crops after the two global ones. Default `8`. */
  readonly localCrops?: number;
  /**
   * The head's last layer stays frozen until this point. Default `{ epoch: 1 }` (the released
   * code's `freeze_last_layer`): it needs the epoch's length (`fit` on a tensor or an array of
   * batches, or the `stepsPerEpoch` option); until it is known the layer stays frozen.
   */
  readonly freezeLastLayerUntil?: RunPoint;
  /** Gradients are clipped to this norm, `0` for none. Default `3.0`. */
  readonly clipGradient?: number;
  /**
   * `'parameter'` (default): each parameter's gradient to its own norm, as the released code's
   * `clip_gradients`; `'global'`: all together, as `torch.nn.utils.clip_grad_norm_`.
   */
  readonly clipMode?: GradientClipMode;
  /**
   * Train a frozen ViT patch projection (a layer named `patch_projection*`, as `tinyVit` builds
   * it frozen for MoCo v3). Default `true`: DINO trains it.
   */
  readonly trainPatchProjection?: boolean;
}

/**
 * The defaults of {@link dino}: AdamW with learning rate 5e-4 x B / 256, weight decay 0.04 rising
 * to 0.4 by a cosine, none on biases and norm parameters, a warm-up of 10% (10 of 100 epochs),
 * then cosine; under 96 px the learning rate is 1e-3, not scaled by the batch.
 */
export const DINO_DEFAULTS: MethodDefaults = {
  optimizer: 'adamw',
  learningRate: 5e-4,
  weightDecay: 0.04,
  weightDecayEnd: 0.4,
  excludeVectors: true,
  warmup: 0.1,
  scaleWithBatch: true,
  smallImages: {
    optimizer: 'adamw',
    learningRate: 1e-3,
    weightDecay: 0.04,
    weightDecayEnd: 0.4,
    excludeVectors: true,
    warmup: 0.1,
  },
};

/**
 * DINO (Caron et al., ICCV 2021): self-distillation without labels. A student (encoder + DINO
 * head, {@link layers!dinoHead}) sees all crops; a teacher, the student's exponential moving average
 * (momentum 0.996 rising to 1 by a cosine), sees the two global crops; the student's softmax at
 * temperature 0.1 predicts the teacher's centred, sharpened softmax over K outputs, summed over
 * every pair of a teacher crop and a different student crop ({@link index!dinoLoss}). The center
 * is an EMA (0.9) of the teacher's outputs, updated after the loss ({@link index!Center}); the
 * teacher temperature warms up linearly from 0.04 to 0.07 over the first 30% of the run.
 *
 * As facebookresearch/dino's main_dino.py: 2 global + 8 local crops, the crops of one size
 * through the networks as one batch; the head's last layer (weight-normalised, gain fixed at 1)
 * frozen in the first epoch; gradients clipped to norm 3.0 per parameter; AdamW with learning
 * rate 5e-4 x B / 256, warm-up 10%, cosine, and weight decay 0.04 -> 0.4 by a cosine, none on
 * biases and norm parameters. The teacher runs in training mode (batch norm with its own batch
 * statistics) and moves only by the EMA. A ViT's patch projection is trained (`tinyVit` builds
 * it frozen for MoCo v3). Works with any backbone: `smallConvNet`, `smallResNet`, `tinyVit`.
 *
 * Views: {@link index!dinoRecipe} from 96 px (colour); below, {@link index!smallImageRecipe}'s two
 * asymmetric views with `localCrops` local views. Metrics: `teacherEntropy` (of the centred,
 * sharpened teacher; near 0 or near log K for long means collapse, which `fit` reports),
 * `teacherStudentKl`, `teacherTemperature` and `weightDecay`.
 *
 * @param options - the encoder and {@link DinoMethodOptions}.
 * @returns the preset.
 * @throws {@link index!ContrastiveError} on bad options.
 *
 * @example
 * <!-- snippet setup="fashion" -->
 * ```ts
 * import { dino } from 'tfjs-contrastive/methods';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * const method = dino({ encoder: smallConvNet({ inputShape: [28, 28, 1], seed: 1 }), outDim: 1024 });
 * await method.fit(images, { epochs: 1, batchSize: 32, progress: false }); // last layer frozen in epoch 0
 * method.dispose();
 * ```
 */
export function dino(options: DinoMethodOptions): DINO {
  return new DINO(options);
}

/**
 * The DINO preset; build it with {@link dino}.
 *
 * @example
 * <!-- snippet setup="fashion" -->
 * ```ts
 * import { DINO, dino } from 'tfjs-contrastive/methods';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * const method: DINO = dino({ encoder: smallConvNet({ inputShape: [28, 28, 1], seed: 1 }), outDim: 1024 });
 * const { metrics } = await method.trainStep({ images });
 * console.log(metrics.teacherEntropy, metrics.teacherTemperature);
 * method.dispose();
 * ```
 */
export class DINO extends SslMethod {
  /** The method's name. */
  readonly name: string = 'dino';
  /** Student temperature. */
  readonly studentTemperature: number;
  /** Teacher temperature after the warm-up. */
  readonly teacherTemperature: number;
  /** Teacher temperature at the start of the warm-up. */
  readonly warmupTeacherTemperature: number;
  /** Length of the teacher-temperature warm-up (fraction of the run, or steps). */
  readonly teacherTemperatureWarmup: number;
  /** Base momentum of the teacher. */
  readonly momentum: number;
  /** Local crops per image. */
  readonly localCrops: number;
  /** The last layer is frozen until this point. */
  readonly freezeLastLayerUntil: RunPoint;
  /** Gradient clipping norm (0: none). */
  readonly clipGradient: number;
  /** Gradient clipping mode. */
  readonly clipMode: GradientClipMode;
  /** The student's head. */
  readonly head: tfl.Sequential;
  /** The teacher's encoder (EMA of the encoder). */
  readonly teacherEncoder: tfl.LayersModel;
  /** The teacher's head (EMA of the head). */
  readonly teacherHead: tfl.Sequential;
  private centerRef: Center;
  private teacherTemperatureNow: number;

  /**
   * Builds the preset (prefer {@link dino}).
   *
   * @param options - see {@link dino}.
   */
  constructor(options: DinoMethodOptions) {
    super('dino', options, DINO_DEFAULTS);
    registerLayers();
    const caller = 'dino';
    const positive = (name: string, value: number): number => {
      checkNumber(caller, `options.${name}`, value, { greaterThan: 0 });
      return value;
    };
    this.studentTemperature = positive('studentTemperature', options.studentTemperature ?? 0.1);
    this.teacherTemperature = positive('teacherTemperature', options.teacherTemperature ?? 0.07);
    this.warmupTeacherTemperature = positive(
      'warmupTeacherTemperature',
      options.warmupTeacherTemperature ?? 0.04,
    );
    this.teacherTemperatureWarmup = options.teacherTemperatureWarmup ?? 0.3;
    checkNumber(caller, 'options.teacherTemperatureWarmup', this.teacherTemperatureWarmup, {
      min: 0,
    });
    this.momentum = options.momentum ?? 0.996;
    checkNumber(caller, 'options.momentum', this.momentum, { min: 0, max: 1 });
    const centerMomentum = options.centerMomentum ?? 0.9;
    this.localCrops = options.localCrops ?? 8;
    checkNumber(caller, 'options.localCrops', this.localCrops, { integer: true, min: 0 });
    this.freezeLastLayerUntil = checkRunPoint(
      caller,
      'options.freezeLastLayerUntil',
      options.freezeLastLayerUntil ?? { epoch: 1 },
    );
    this.clipGradient = options.clipGradient ?? 3.0;
    checkNumber(caller, 'options.clipGradient', this.clipGradient, { min: 0 });
    this.clipMode = options.clipMode ?? 'parameter';
    checkOneOf(caller, 'options.clipMode', this.clipMode, ['parameter', 'global']);
    const trainPatch = options.trainPatchProjection ?? true;
    checkBoolean(caller, 'options.trainPatchProjection', trainPatch);
    if (trainPatch) {
      for (const layer of this.encoder.layers) {
        if (layer.name.startsWith('patch_projection')) layer.trainable = true;
      }
    }
    const f = this.featureDim;
    const size = this.imageSize;
    const outDim = options.outDim ?? (size !== undefined && size < 96 ? 4096 : 65536);
    checkNumber(caller, 'options.outDim', outDim, { integer: true, min: 2 });
    const hiddenDim = options.hiddenDim ?? Math.min(2048, 4 * f);
    checkNumber(caller, 'options.hiddenDim', hiddenDim, { integer: true, min: 1 });
    const bottleneckDim = options.bottleneckDim ?? Math.min(256, 2 * f);
    checkNumber(caller, 'options.bottleneckDim', bottleneckDim, { integer: true, min: 1 });
    this.head = dinoHead({
      inputDim: f,
      outDim,
      hiddenDim,
      bottleneckDim,
      seed: (options.seed ?? 0) + 1,
    });
    this.teacherEncoder = cloneAsMomentumEncoder(this.encoder);
    this.teacherHead = cloneAsMomentumEncoder(this.head);
    this.centerRef = new Center(outDim, { momentum: centerMomentum });
    this.teacherTemperatureNow = this.teacherTemperatureAt(0, undefined);
    this.atStep(0, undefined);
  }

  /** The center of the teacher's outputs ([K]; owned by the preset). */
  get center(): tf.Tensor1D {
    return this.centerRef.value;
  }

  /** The head's last layer (weight-normalised; frozen early in the run). */
  get lastLayer(): tfl.layers.Layer {
    return this.head.layers[this.head.layers.length - 1] as tfl.layers.Layer;
  }

  /** The teacher temperature at a step of a run `progress` done. */
  teacherTemperatureAt(step: number, progress: number | undefined): number {
    const w = this.teacherTemperatureWarmup;
    const start = this.warmupTeacherTemperature;
    const end = this.teacherTemperature;
    let t: number;
    if (w === 0) t = 1;
    else if (w >= 1) t = step / w;
    else t = progress === undefined ? 1 : progress / w;
    return start + (end - start) * Math.min(1, t);
  }

  protected recipe(size: number, channels: number): ViewSpec[] {
    if (size >= 96 && channels === 3) return dinoRecipe(size, this.localCrops);
    return smallImageRecipe(size, {
      channels: channels === 3 ? 3 : 1,
      asymmetric: true,
      localCrops: this.localCrops,
    });
  }

  protected networks(): Record<string, tfl.LayersModel> {
    return {
      encoder: this.encoder,
      head: this.head,
      teacherEncoder: this.teacherEncoder,
      teacherHead: this.teacherHead,
    };
  }

  protected trainedNetworks(): tfl.LayersModel[] {
    return [this.encoder, this.head];
  }

  protected override momentumAt(progress: number | undefined): number {
    return progress === undefined ? this.momentum : cosineMomentum(progress, 1, this.momentum);
  }

  protected override atStep(step: number, epoch: number | undefined): void {
    this.lastLayer.trainable = reached(this.freezeLastLayerUntil, step, epoch);
  }

  protected override prepare(views: tf.Tensor4D[]): tf.Tensor[] {
    return outputsBySize(views.slice(0, 2), (x) =>
      SslMethod.train(this.teacherHead, SslMethod.train(this.teacherEncoder, x)),
    );
  }

  protected loss(views: tf.Tensor4D[], prepared: tf.Tensor[], context: StepContext): LossOutput {
    const student = outputsBySize(views, (x) =>
      SslMethod.train(this.head, SslMethod.train(this.encoder, x)),
    );
    const teacher = prepared as tf.Tensor2D[];
    const tau = this.teacherTemperatureAt(context.step, context.progress);
    this.teacherTemperatureNow = tau;
    const center = this.centerRef.value;
    const loss = dinoLoss(student, teacher, center, {
      studentTemperature: this.studentTemperature,
      teacherTemperature: tau,
    }) as tf.Scalar;
    const temperatures = { teacherTemperature: tau, studentTemperature: this.studentTemperature };
    const t0 = teacher[0] as tf.Tensor2D;
    const s1 = stopGradient(student[1] as tf.Tensor2D);
    return {
      loss,
      embedding: stopGradient(student[0] as tf.Tensor2D),
      monitors: {
        teacherEntropy: teacherEntropy(t0, center, temperatures),
        teacherStudentKl: teacherStudentKl(t0, s1, center, temperatures),
      },
    };
  }

  protected override transformGradients(grads: tf.NamedTensorMap): tf.NamedTensorMap {
    const max = this.clipGradient;
    if (max === 0) return grads;
    if (this.clipMode === 'global') {
      const { grads: clipped, totalNorm } = clipGradNorm(grads, max);
      totalNorm.dispose();
      return clipped;
    }
    const out: tf.NamedTensorMap = {};
    for (const [name, g] of Object.entries(grads)) {
      const { grads: clipped, totalNorm } = clipGradNorm([g], max);
      totalNorm.dispose();
      out[name] = clipped[0] as tf.Tensor;
    }
    return out;
  }

  protected override update(
    _views: tf.Tensor4D[],
    prepared: tf.Tensor[],
    context: StepContext,
  ): void {
    this.centerRef.update(prepared as tf.Tensor2D[]);
    const m = context.momentum ?? this.momentum;
    emaUpdate(this.teacherEncoder, this.encoder, m);
    emaUpdate(this.teacherHead, this.head, m);
  }

  protected override extraMetrics(): Record<string, number> {
    return { teacherTemperature: this.teacherTemperatureNow };
  }

  protected override collapseReason(metrics: StepMetrics): string | undefined {
    const h = metrics['teacherEntropy'];
    const logK = Math.log(this.centerRef.dim);
    if (h !== undefined && (h < 0.02 * logK || h > 0.98 * logK)) {
      const uniform = h > 0.98 * logK;
      const kind = uniform ? 'uniform over the outputs' : 'one output for every image';
      const advice = uniform
        ? 'a lower teacher temperature sharpens it'
        : 'a higher teacher temperature or a faster center (lower centerMomentum) spreads it';
      return (
        `the teacher has collapsed (${kind}): its entropy is ${h.toPrecision(3)} of ` +
        `log K = ${logK.toPrecision(3)} for ${COLLAPSE_WINDOW} steps in a row; ${advice}`
      );
    }
    // Not the generic spread of the embeddings: DINO's are K logits of a weight-normalised
    // layer, whose spread is small for a healthy run too; the teacher's entropy is its monitor.
    return undefined;
  }

  protected override stateParts(): Record<string, StatefulPart> {
    return { center: this.centerRef };
  }

  protected override restorePart(name: string, state: ComponentState): void {
    if (name !== 'center') {
      super.restorePart(name, state);
      return;
    }
    const restored = Center.fromState(state);
    this.centerRef.dispose();
    this.centerRef = restored;
  }

  protected override disposeParts(): void {
    this.centerRef.dispose();
  }

  protected describeConfig(): Record<string, JsonValue> {
    return {
      outDim: this.centerRef.dim,
      studentTemperature: this.studentTemperature,
      teacherTemperature: this.teacherTemperature,
      warmupTeacherTemperature: this.warmupTeacherTemperature,
      teacherTemperatureWarmup: this.teacherTemperatureWarmup,
      momentum: this.momentum,
      centerMomentum: this.centerRef.momentum,
      localCrops: this.localCrops,
      freezeLastLayerUntil: { ...this.freezeLastLayerUntil },
      clipGradient: this.clipGradient,
      clipMode: this.clipMode,
      featureDim: this.featureDim,
      head: this.head.layers.map((l) => l.getClassName()),
    };
  }
}
