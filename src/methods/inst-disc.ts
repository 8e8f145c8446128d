import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { mocoV1Recipe, type ViewSpec } from '../augment/index.js';
import {
  checkNumber,
  checkOneOf,
  l2Normalize,
  type ComponentState,
  type JsonValue,
} from '../core/index.js';
import { mlpHead, registerLayers } from '../layers/index.js';
import { infoNce, nceLoss } from '../losses/index.js';
import { MemoryBank } from '../state/index.js';
import {
  SslMethod,
  type LossOutput,
  type MethodDefaults,
  type StatefulPart,
  type StepContext,
} from './method.js';
import { NceConstant, bankMethodOptions, batchIndices, restoredBank } from './parts.js';
import { defaultRecipe } from './simclr.js';
import type { SslMethodOptions } from './types.js';

/** Options of {@link instDisc}. */
export interface InstDiscOptions extends SslMethodOptions {
  /**
   * N, the number of training images: the memory bank holds one entry per image, and every
   * batch must say which images it holds (`batch.indices` in [0, N); `fit` supplies them for a
   * tensor of images).
   */
  readonly datasetSize: number;
  /** NCE temperature tau. Default `0.07` (Wu et al.). */
  readonly temperature?: number;
  /** K, the noise samples drawn uniformly from the bank per step. Default `4096`. */
  readonly negatives?: number;
  /** Momentum m of the bank update `v <- normalise(m v + (1 - m) f)`. Default `0.5`. */
  readonly bankMomentum?: number;
  /** Width of the embedding (the linear layer after the backbone) and of the bank. Default `128`. */
  readonly projectionDim?: number;
  /**
   * `'nce'` (default): noise-contrastive estimation with Z fixed after the first batch (the
   * paper's main objective). `'softmax'`: the non-parametric softmax the paper approximates,
   * over the image's entry and the K noise entries (`infoNce` against bank entries: no Z, so
   * nothing to estimate; lemniscate.pytorch's `--nce-k 0` takes the softmax over the whole bank).
   * On Fashion-MNIST in runs of minutes NCE lowered kNN below random init at every length
   * measured and the softmax learned given epochs (docs/methods.md): prefer it for short runs.
   */
  readonly objective?: InstDiscObjective;
}

/** InstDisc's objective: see {@link InstDiscOptions.objective}. */
export type InstDiscObjective = 'nce' | 'softmax';

/**
 * The defaults of {@link instDisc}: lemniscate.pytorch's SGD (momentum 0.9, learning rate 0.03,
 * weight decay 5e-4); under 96 px AdamW (see {@link instDisc}).
 */
export const INST_DISC_DEFAULTS: MethodDefaults = {
  optimizer: 'momentum',
  learningRate: 0.03,
  weightDecay: 5e-4,
  warmup: 0,
  smallImages: { optimizer: 'adamw', learningRate: 1e-3, weightDecay: 5e-4, warmup: 0.05 },
};

/**
 * Instance Discrimination (Wu, Xiong, Yu and Lin, CVPR 2018): every image is its own class. One
 * augmented view per image goes through the encoder and a linear layer to 128-d; the L2-normalised
 * feature must pick out its image's entry of a memory bank (one entry per training image) against
 * K = 4,096 noise entries drawn uniformly (P_n = 1/N), by noise-contrastive estimation
 * ({@link index!nceLoss}) at temperature 0.07. The normalisation constant Z is estimated from the
 * first batch and then held fixed (kept in the preset's state and its checkpoint: `z`). After the
 * loss, the batch's entries move to `normalise(0.5 v + 0.5 f)`: the bank is read before it is
 * updated, so an image is scored against its entry from the last time it was seen
 * (zhirongw/lemniscate.pytorch, `lib/NCEAverage.py`, `lib/NCECriterion.py`, `main.py`).
 *
 * The bank ({@link index!MemoryBank}, uniform initialisation) lives in JavaScript memory on cpu
 * and wasm, so a step reads and writes only the rows it needs. Every batch needs its images'
 * data-set indices: `fit` supplies them for a tensor of images; with `trainStep`, pass
 * `batch.indices`. One deviation, for cost: the K noise indices are drawn once per batch and
 * shared by its images (the reference draws K per image, B times the reads for the same estimator
 * in expectation).
 *
 * Defaults (lemniscate.pytorch): SGD with momentum 0.9, learning rate 0.03 and weight decay 5e-4
 * (cosine decay here where the code steps it down), views as its code (crop 0.2-1, colour jitter
 * 0.4 on all four, greyscale 0.2, flip) from 96 px, one view of {@link index!smallImageRecipe}
 * below. Under 96 px, where a run lasts minutes: AdamW with learning rate 1e-3 and a 5% warm-up,
 * MoCo's small-image optimiser; docs/methods.md has the learning measurement. An image's entry
 * changes only when the image is drawn, once an epoch: the method needs epochs, not steps.
 *
 * @param options - the encoder, `datasetSize` and {@link InstDiscOptions}.
 * @returns the preset.
 * @throws {@link index!ContrastiveError} on bad options.
 *
 * @example
 * <!-- snippet setup="fashion" -->
 * ```ts
 * import { instDisc } from 'tfjs-contrastive/methods';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * // images: [N, 28, 28, 1] in [0, 1]; fit passes each batch's indices into the bank
 * const method = instDisc({
 *   encoder: smallConvNet({ inputShape: [28, 28, 1], seed: 1 }),
 *   datasetSize: images.shape[0],
 * });
 * await method.fit(images, { epochs: 1, batchSize: 128 });
 * console.log(method.z); // Z, estimated on the first batch and then fixed
 * ```
 */
export function instDisc(options: InstDiscOptions): InstDisc {
  return new InstDisc(options);
}

/**
 * The InstDisc preset; build it with {@link instDisc}.
 *
 * @example
 * <!-- snippet setup="fashion" -->
 * ```ts
 * import { InstDisc, instDisc } from 'tfjs-contrastive/methods';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * const encoder = smallConvNet({ inputShape: [28, 28, 1], seed: 1 });
 * const method: InstDisc = instDisc({ encoder, datasetSize: 60000, negatives: 1024 });
 * // images: [B, 28, 28, 1]; indices: each image's row in the training set
 * const indices = Int32Array.from({ length: images.shape[0] }, (_, i) => i);
 * await method.trainStep({ images, indices });
 * const entries = method.bank.read(indices); // the batch's entries, just updated
 * entries.dispose();
 * method.dispose();
 * ```
 */
export class InstDisc extends SslMethod {
  /** The method's name. */
  readonly name: string = 'instDisc';
  /** NCE temperature. */
  readonly temperature: number;
  /** Noise samples per step. */
  readonly negatives: number;
  /** The objective: NCE or the sampled softmax. */
  readonly objective: InstDiscObjective;
  /** The linear layer to the embedding. */
  readonly head: tfl.Sequential;
  private bankRef: MemoryBank;
  private readonly zState = new NceConstant();

  /**
   * Builds the preset (prefer {@link instDisc}).
   *
   * @param options - see {@link instDisc}.
   */
  constructor(options: InstDiscOptions) {
    super('instDisc', options, INST_DISC_DEFAULTS);
    registerLayers();
    const caller = 'instDisc';
    checkNumber(caller, 'options.datasetSize', options.datasetSize, { integer: true, min: 2 });
    const { temperature, negatives, momentum, dim } = bankMethodOptions(caller, options);
    this.temperature = temperature;
    this.negatives = negatives;
    this.objective = options.objective ?? 'nce';
    checkOneOf(caller, 'options.objective', this.objective, ['nce', 'softmax']);
    const seed = options.seed ?? 0;
    this.head = mlpHead({
      inputDim: this.featureDim,
      name: 'inst_disc_head',
      blocks: [{ units: dim }],
      seed: seed + 1,
    });
    this.bankRef = new MemoryBank(options.datasetSize, dim, { momentum, seed: seed + 2 });
  }

  /** The memory bank: one entry per training image. */
  get bank(): MemoryBank {
    return this.bankRef;
  }

  /** Z of NCE: `undefined` until the first applied step estimates it, then fixed. */
  get z(): number | undefined {
    return this.zState.value;
  }

  protected recipe(size: number, channels: number): ViewSpec[] {
    const [view] = defaultRecipe(size, channels, mocoV1Recipe);
    return [{ ...(view as ViewSpec), count: 1 }];
  }

  protected networks(): Record<string, tfl.LayersModel> {
    return { encoder: this.encoder, head: this.head };
  }

  protected trainedNetworks(): tfl.LayersModel[] {
    return [this.encoder, this.head];
  }

  protected override prepare(views: tf.Tensor4D[], context: StepContext): tf.Tensor[] {
    const b = (views[0] as tf.Tensor4D).shape[0];
    const indices = batchIndices(
      `${this.name}.trainStep`,
      context.batch.indices,
      b,
      this.bankRef.size,
    );
    return [tf.tensor1d(indices, 'int32'), this.bankRef.sampleNoise(this.negatives)];
  }

  protected loss(views: tf.Tensor4D[], prepared: tf.Tensor[]): LossOutput {
    const [indices, noise] = prepared as [tf.Tensor1D, tf.Tensor1D];
    const f = SslMethod.train(this.head, SslMethod.train(this.encoder, views[0] as tf.Tensor4D));
    if (this.objective === 'softmax') {
      const loss = infoNce(f, this.bankRef.read(indices), {
        negatives: this.bankRef.read(noise),
        temperature: this.temperature,
      }) as tf.Scalar;
      return { loss, embedding: f, keep: [l2Normalize(f)] };
    }
    const z = this.zState.value;
    const out = nceLoss(f, indices, this.bankRef, noise, {
      temperature: this.temperature,
      ...(z === undefined ? {} : { z }),
    });
    return { loss: out.loss, embedding: f, keep: [l2Normalize(f), out.z] };
  }

  protected override update(
    _views: tf.Tensor4D[],
    prepared: tf.Tensor[],
    _context: StepContext,
    kept: readonly tf.Tensor[],
  ): void {
    // Z from the first applied step's batch, then fixed; the bank after the loss read it.
    this.zState.fixFrom(kept[1]);
    this.bankRef.update(prepared[0] as tf.Tensor1D, kept[0] as tf.Tensor2D);
  }

  protected override extraMetrics(): Record<string, number> {
    return this.zState.value === undefined ? {} : { nceZ: this.zState.value };
  }

  protected override stateParts(): Record<string, StatefulPart> {
    return { bank: this.bankRef, z: this.zState };
  }

  protected override restorePart(name: string, state: ComponentState): void {
    const caller = `${this.name}.load`;
    if (name === 'z') {
      this.zState.restore(caller, state);
      return;
    }
    if (name !== 'bank') {
      super.restorePart(name, state);
      return;
    }
    this.bankRef = restoredBank(caller, this.bankRef, state);
  }

  protected override disposeParts(): void {
    this.bankRef.dispose();
  }

  protected describeConfig(): Record<string, JsonValue> {
    return {
      temperature: this.temperature,
      negatives: this.negatives,
      datasetSize: this.bankRef.size,
      bankDim: this.bankRef.dim,
      bankMomentum: this.bankRef.momentum,
      objective: this.objective,
      featureDim: this.featureDim,
      head: this.head.layers.map((l) => l.getClassName()),
    };
  }
}
