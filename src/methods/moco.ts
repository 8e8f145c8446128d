import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { mocoV1Recipe, type ViewSpec } from '../augment/index.js';
import { checkNumber, l2Normalize, type ComponentState, type JsonValue } from '../core/index.js';
import {
  mlpHead,
  randomPermutation,
  registerLayers,
  splitBatchNormApply,
} from '../layers/index.js';
import { infoNce } from '../losses/index.js';
import { MomentumQueue, cloneAsMomentumEncoder, emaUpdate } from '../state/index.js';
import {
  SslMethod,
  outputWidth,
  type LossOutput,
  type MethodDefaults,
  type StatefulPart,
  type StepContext,
} from './method.js';
import { restoredQueue } from './parts.js';
import { defaultRecipe } from './simclr.js';
import type { SslMethodOptions } from './types.js';

/** Options of {@link moco} and {@link mocoV2}. */
export interface MocoOptions extends SslMethodOptions {
  /** InfoNCE temperature. Default `0.07` (MoCo v1), `0.2` (MoCo v2). */
  readonly temperature?: number;
  /** Queue length K. Default `4096` (the MoCo CIFAR-10 demo; 65,536 for ImageNet's 1.28 M images). */
  readonly queueSize?: number;
  /** Key-encoder momentum m. Default `0.99` (the CIFAR-10 demo; 0.999 in the paper's ImageNet runs). */
  readonly momentum?: number;
  /** Width of the keys. Default `128`. */
  readonly projectionDim?: number;
  /** Hidden width of MoCo v2's MLP head. Default: the encoder's feature width F. */
  readonly hiddenDim?: number;
  /**
   * Batch-norm groups (shuffling batch norm on one device, see `splitBatchNormApply`): the query
   * batch is split into this many groups, the key batch likewise after a random permutation,
   * so a query and its key never share batch statistics. Default: one group per 64 images
   * (the CIFAR-10 demo's 8 splits of 512), at least 1. `1` turns it off.
   */
  readonly batchNormGroups?: number;
  /**
   * The number of training images, when known: a queue longer than the data set holds a
   * sample's own older key among its negatives (moco issue #146), and the preset warns.
   */
  readonly datasetSize?: number;
}

/** The defaults of {@link moco}: the MoCo CIFAR-10 demo's SGD (lr 0.06 at batch 512, wd 5e-4). */
export const MOCO_DEFAULTS: MethodDefaults = {
  optimizer: 'momentum',
  learningRate: 0.06,
  weightDecay: 5e-4,
  warmup: 0,
  smallImages: { optimizer: 'adamw', learningRate: 1e-3, weightDecay: 5e-4, warmup: 0.05 },
};

/** Which MoCo. @internal */
export interface MocoVariant {
  readonly name: string;
  readonly temperature: number;
  readonly recipe: (size: number) => ViewSpec[];
  readonly head: (featureDim: number, options: MocoOptions, seed: number) => tfl.Sequential;
}

const V1: MocoVariant = {
  name: 'moco',
  temperature: 0.07,
  recipe: mocoV1Recipe,
  // MoCo v1 replaces the backbone's classifier by a linear layer to the key width.
  head: (f, o, seed) =>
    mlpHead({
      inputDim: f,
      name: 'moco_v1_head',
      blocks: [{ units: o.projectionDim ?? 128 }],
      seed,
    }),
};

/**
 * MoCo v1 (He et al., CVPR 2020): a query encoder trained with InfoNCE against the key of the
 * same image from a momentum encoder (m = 0.99 here) and K negatives from a queue of earlier
 * keys; keys are computed without gradient after the momentum update, and enqueued after the
 * loss. Batch norm is shuffled as the paper prescribes, on one device by split batch norm
 * (`batchNormGroups`): without it, intra-batch statistics leak which key belongs to which query
 * and the model cheats (the loss falls while features do not improve).
 *
 * Defaults: temperature 0.07 and a linear head to 128-d (the paper); K 4096, m 0.99, SGD with
 * momentum 0.9, learning rate 0.06 and weight decay 5e-4, cosine decay, split batch norm
 * (facebookresearch/moco's CIFAR-10 demo: the paper's K 65,536 exceeds a small data set and
 * m 0.999 moves the keys too slowly for a run of minutes). Under 96 px, where a run lasts
 * minutes: AdamW with learning rate 1e-3 and a 5% warm-up (the SGD above barely moved the
 * features in such runs; docs/methods.md has the measurements). Views: MoCo v1's recipe from
 * 96 px, {@link index!smallImageRecipe} below.
 *
 * @param options - the encoder and {@link MocoOptions}.
 * @returns the preset.
 * @throws {@link index!ContrastiveError} on bad options.
 *
 * @example
 * <!-- snippet setup="fashion" -->
 * ```ts
 * import { moco } from 'tfjs-contrastive/methods';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * const method = moco({ encoder: smallConvNet({ inputShape: [28, 28, 1], seed: 1 }), datasetSize: 60000 });
 * await method.fit(images, { epochs: 1 }); // or { seconds: 300 }: a time budget
 * ```
 */
export function moco(options: MocoOptions): MoCo {
  return new MoCo(options, V1);
}

/**
 * A MoCo preset (v1 or v2); build it with {@link moco} or {@link mocoV2}.
 *
 * @example
 * <!-- snippet setup="images" -->
 * ```ts
 * import { MoCo, mocoV2 } from 'tfjs-contrastive/methods';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * const encoder = smallConvNet({ inputShape: [32, 32, 3], widths: [8, 16], seed: 1 });
 * const method: MoCo = mocoV2({ encoder, queueSize: 1024 });
 * await method.trainStep({ images }); // images: [B, 32, 32, 3] in [0, 1]
 * console.log(method.queue.count); // B real keys in the queue so far
 * method.dispose();
 * ```
 */
export class MoCo extends SslMethod {
  /** The method's name. */
  readonly name: string;
  /** InfoNCE temperature. */
  readonly temperature: number;
  /** Base momentum of the key encoder. */
  readonly momentum: number;
  /** Batch-norm groups (1 = off). */
  readonly batchNormGroups: number | undefined;
  /** The query encoder's head. */
  readonly head: tfl.Sequential;
  /** The momentum copy of the encoder. */
  readonly keyEncoder: tfl.LayersModel;
  /** The momentum copy of the head. */
  readonly keyHead: tfl.Sequential;
  private queueRef: MomentumQueue;
  private readonly variant: MocoVariant;

  /**
   * Builds the preset (prefer {@link moco} or {@link mocoV2}).
   *
   * @param options - see {@link moco}.
   * @param variant - v1 or v2.
   */
  constructor(options: MocoOptions, variant: MocoVariant) {
    super(variant.name, options, MOCO_DEFAULTS);
    registerLayers();
    const caller = variant.name;
    this.variant = variant;
    this.name = variant.name;
    this.temperature = options.temperature ?? variant.temperature;
    checkNumber(caller, 'options.temperature', this.temperature, { greaterThan: 0 });
    this.momentum = options.momentum ?? 0.99;
    checkNumber(caller, 'options.momentum', this.momentum, { min: 0, max: 1 });
    const size = options.queueSize ?? 4096;
    checkNumber(caller, 'options.queueSize', size, { integer: true, min: 1 });
    if (options.batchNormGroups !== undefined) {
      checkNumber(caller, 'options.batchNormGroups', options.batchNormGroups, {
        integer: true,
        min: 1,
      });
    }
    this.batchNormGroups = options.batchNormGroups;
    const seed = options.seed ?? 0;
    this.head = variant.head(this.featureDim, options, seed + 1);
    const dim = outputWidth(this.head);
    this.keyEncoder = cloneAsMomentumEncoder(this.encoder);
    this.keyHead = cloneAsMomentumEncoder(this.head);
    this.queueRef = new MomentumQueue(size, dim, {
      seed: seed + 2,
      ...(options.datasetSize === undefined ? {} : { datasetSize: options.datasetSize }),
    });
  }

  /** The queue of keys (the negatives). */
  get queue(): MomentumQueue {
    return this.queueRef;
  }

  protected recipe(size: number, channels: number): ViewSpec[] {
    return defaultRecipe(size, channels, this.variant.recipe);
  }

  protected networks(): Record<string, tfl.LayersModel> {
    return {
      encoder: this.encoder,
      head: this.head,
      keyEncoder: this.keyEncoder,
      keyHead: this.keyHead,
    };
  }

  protected trainedNetworks(): tfl.LayersModel[] {
    return [this.encoder, this.head];
  }

  protected override momentumAt(): number {
    return this.momentum;
  }

  private groupsFor(batch: number): number {
    const g = this.batchNormGroups ?? Math.max(1, Math.floor(batch / 64));
    return Math.max(1, Math.min(g, Math.floor(batch / 2)));
  }

  protected override prepare(views: tf.Tensor4D[]): tf.Tensor[] {
    const keysView = views[1] as tf.Tensor4D;
    const b = keysView.shape[0];
    const groups = this.groupsFor(b);
    const permutation = groups > 1 ? randomPermutation(b, this.methodRng) : undefined;
    const features = splitBatchNormApply(this.keyEncoder, keysView, {
      groups,
      ...(permutation === undefined ? {} : { permutation }),
    });
    return [l2Normalize(SslMethod.train(this.keyHead, features))];
  }

  protected loss(views: tf.Tensor4D[], prepared: tf.Tensor[]): LossOutput {
    const queryView = views[0] as tf.Tensor4D;
    const groups = this.groupsFor(queryView.shape[0]);
    const q = SslMethod.train(this.head, splitBatchNormApply(this.encoder, queryView, { groups }));
    const keys = prepared[0] as tf.Tensor2D;
    const loss = infoNce(q, keys, {
      negatives: this.queueRef.negatives(),
      temperature: this.temperature,
    }) as tf.Scalar;
    return { loss, embedding: q };
  }

  protected override update(
    _views: tf.Tensor4D[],
    prepared: tf.Tensor[],
    context: StepContext,
  ): void {
    const m = context.momentum ?? this.momentum;
    emaUpdate(this.keyEncoder, this.encoder, m);
    emaUpdate(this.keyHead, this.head, m);
    this.queueRef.enqueue(prepared[0] as tf.Tensor2D);
  }

  protected override extraMetrics(): Record<string, number> {
    return { queueFill: this.queueRef.count / this.queueRef.size };
  }

  protected override stateParts(): Record<string, StatefulPart> {
    return { queue: this.queueRef };
  }

  protected override restorePart(name: string, state: ComponentState): void {
    if (name !== 'queue') {
      super.restorePart(name, state);
      return;
    }
    this.queueRef = restoredQueue(`${this.name}.load`, this.queueRef, state);
  }

  protected override disposeParts(): void {
    this.queueRef.dispose();
  }

  protected describeConfig(): Record<string, JsonValue> {
    return {
      temperature: this.temperature,
      momentum: this.momentum,
      queueSize: this.queueRef.size,
      keyDim: this.queueRef.dim,
      featureDim: this.featureDim,
      head: this.head.layers.map((l) => l.getClassName()),
    };
  }
}
