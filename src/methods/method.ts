import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { multiCrop, type ViewSpec } from '../augment/index.js';
import {
  ContrastiveError,
  SeededRandom,
  checkBoolean,
  checkNumber,
  checkTensor,
  decodeSafetensors,
  describeValue,
  encodeSafetensors,
  readCheckpointBytes,
  trainableVariables,
  writeCheckpointBytes,
  type ComponentState,
  type JsonValue,
  type SeededRandomState,
} from '../core/index.js';
import { embeddingStd } from '../eval/collapse.js';
import {
  buildOptimizer,
  isOptimizer,
  learningRateOf,
  setLearningRate,
  warmupCosine,
} from './schedule.js';
import { now, runFit } from './fit.js';
import type {
  Batch,
  FitData,
  FitOptions,
  FitResult,
  OptimizerName,
  SslMethodOptions,
  StepMetrics,
  TrainStepResult,
} from './types.js';
import { COLLAPSE_WINDOW } from './types.js';
import { namedWeights, type LayerWeight } from './weights.js';

/** What a method's loss closure returns: the loss and, optionally, embeddings to monitor. */
export interface LossOutput {
  /** The scalar loss to minimise. */
  readonly loss: tf.Scalar;
  /** Projections whose spread {@link StepMetrics.embeddingStd} reports. */
  readonly embedding?: tf.Tensor2D;
  /**
   * Scalar monitors (teacher entropy, prototype usage) reported in the step's metrics under
   * their names; read back with the loss, in the same transfer.
   */
  readonly monitors?: Readonly<Record<string, tf.Scalar>>;
  /**
   * Tensors of the forward pass `update` needs (the embeddings SwAV enqueues): kept past the
   * gradient tape, passed to `update` when the step is applied, then disposed.
   */
  readonly keep?: readonly tf.Tensor[];
}

/** The defaults a method gives its options. */
export interface MethodDefaults {
  /** The default optimiser. */
  readonly optimizer: OptimizerName;
  /** The peak learning rate (before any batch-size scaling the method applies). */
  readonly learningRate: number;
  /** The weight decay. */
  readonly weightDecay: number;
  /** The fraction of the run spent in linear warm-up. */
  readonly warmup: number;
  /**
   * The weight decay at the end of the run: the default optimiser's decay then follows a cosine
   * from `weightDecay` to it (DINO's 0.04 to 0.4). Default: constant.
   */
  readonly weightDecayEnd?: number;
  /**
   * No weight decay on vectors (biases, norm scales and shifts), DINO's and timm's rule, for the
   * default AdamW. Default `false`.
   */
  readonly excludeVectors?: boolean;
  /** Whether the learning rate is `learningRate x B / 256` (BYOL, SimSiam). Default `false`. */
  readonly scaleWithBatch?: boolean;
  /**
   * What replaces the above for images under 96 px (a preset's run there lasts minutes, not the
   * paper's hundreds of epochs; each preset documents its values and the measurement behind them).
   */
  readonly smallImages?: Omit<MethodDefaults, 'smallImages'>;
}

/** The schedule values of one step. */
export interface StepContext {
  /** Steps applied before this one. */
  readonly step: number;
  /** Fraction of the run done, when its length is known. */
  readonly progress: number | undefined;
  /** The target momentum of this step (methods with a target network). */
  readonly momentum: number | undefined;
  /** The epoch of this step (0-based), when the length of an epoch is known. */
  readonly epoch: number | undefined;
  /** The batch. */
  readonly batch: Batch;
}

/** A stateful part of a method (queue, bank, center) in the checkpoint. */
export interface StatefulPart {
  /** The part's state: a small config and named tensors (the checkpoint owns nothing). */
  getState(): ComponentState;
}

/** The run length `fit` sets for the schedules. */
interface RunLength {
  readonly steps?: number;
  readonly seconds?: number;
  readonly startedAt: number;
  readonly startStep: number;
  readonly stepsPerEpoch?: number;
}

const FORMAT = 'tfjs-contrastive/checkpoint';

/**
 * The base of every method preset: one training step (`trainStep`), a training loop (`fit`),
 * features for downstream use (`embed`), the whole training state in one checkpoint
 * (`save` / `load`) and `dispose`. A preset supplies its networks, its augmentation recipe, its
 * loss and its state updates; the data flow of a step is the same for all:
 *
 * images -> augmentation (the method's views) -> encoder(s) -> heads -> loss -> gradients ->
 * optimiser, then the state updates (EMA, enqueue, ...).
 *
 * A step whose loss or gradients are not finite changes nothing (weights, batch-norm
 * statistics, optimiser slots, queue, target network) and is reported as skipped.
 *
 * @example
 * <!-- snippet setup="fashion" -->
 * ```ts
 * import type * as tf from '@tensorflow/tfjs-core';
 * import { byol, simclr, type SslMethod } from 'tfjs-contrastive/methods';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * // Every preset is an SslMethod: one function pre-trains and embeds with any of them.
 * async function pretrain(method: SslMethod, data: tf.Tensor4D): Promise<tf.Tensor2D> {
 *   const { losses, stoppedBy } = await method.fit(data, { epochs: 1, progress: false });
 *   console.log(method.name, losses.length, 'steps, stopped by', stoppedBy);
 *   return method.embed(data); // [N, F] backbone features
 * }
 * for (const preset of [simclr, byol]) {
 *   const method = preset({ encoder: smallConvNet({ inputShape: [28, 28, 1], seed: 1 }), disposeEncoder: true });
 *   const features = await pretrain(method, images); // images: [N, 28, 28, 1] in [0, 1]
 *   method.dispose(); // with the encoder (disposeEncoder)
 * }
 * ```
 */
export abstract class SslMethod {
  /** The method's name, e.g. `'simclr'`. */
  abstract readonly name: string;
  /** The backbone being trained (the caller's model; see `disposeEncoder`). */
  readonly encoder: tfl.LayersModel;
  /** Width F of the encoder's features. */
  readonly featureDim: number;
  /** Set to `true` (e.g. in a callback) to stop `fit` after the current step. */
  stopTraining = false;

  /** The options the preset was built with. */
  protected readonly options: SslMethodOptions;
  /** The method's optimiser defaults (what the options override). */
  protected readonly defaults: MethodDefaults;
  /** Random source of the augmentation. */
  protected readonly augmentRng: SeededRandom;
  /** Random source of the data order in `fit`. */
  protected readonly dataRng: SeededRandom;
  /** Random source for the method's own choices (e.g. the shuffled batch norm's permutation). */
  protected readonly methodRng: SeededRandom;
  private stepCount = 0;
  private skipped = 0;
  private consecutiveSkips = 0;
  private collapsedSteps = 0;
  private ownOptimizer: tf.Optimizer | undefined;
  private lastOptimizer: tf.Optimizer | undefined;
  private recipeCache: { size: number; views: readonly ViewSpec[] } | undefined;
  private run: RunLength | undefined;
  private disposed = false;

  /**
   * Checks the common options and sets up the random sources; subclasses build their networks.
   *
   * @param caller - the preset's name for error messages.
   * @param options - the common options.
   * @param defaults - the method's optimiser defaults.
   */
  protected constructor(caller: string, options: SslMethodOptions, defaults: MethodDefaults) {
    if (typeof options !== 'object' || (options as unknown) === null) {
      throw new ContrastiveError({
        caller,
        argument: 'options',
        expected: 'an options object { encoder, ... }',
        received: describeValue(options),
      });
    }
    this.encoder = checkEncoder(caller, options.encoder);
    this.featureDim = featureWidth(caller, options.encoder);
    const seed = options.seed ?? 0;
    checkNumber(caller, 'options.seed', seed, { integer: true });
    if (options.imageSize !== undefined)
      checkNumber(caller, 'options.imageSize', options.imageSize, { integer: true, min: 4 });
    if (options.flip !== undefined) checkBoolean(caller, 'options.flip', options.flip);
    if (options.learningRate !== undefined)
      checkNumber(caller, 'options.learningRate', options.learningRate, { greaterThan: 0 });
    if (options.weightDecay !== undefined)
      checkNumber(caller, 'options.weightDecay', options.weightDecay, { min: 0 });
    if (options.warmup !== undefined)
      checkNumber(caller, 'options.warmup', options.warmup, { min: 0 });
    if (options.totalSteps !== undefined)
      checkNumber(caller, 'options.totalSteps', options.totalSteps, { integer: true, min: 1 });
    if (options.stepsPerEpoch !== undefined)
      checkNumber(caller, 'options.stepsPerEpoch', options.stepsPerEpoch, {
        integer: true,
        min: 1,
      });
    if (options.maxConsecutiveSkips !== undefined) {
      checkNumber(caller, 'options.maxConsecutiveSkips', options.maxConsecutiveSkips, {
        integer: true,
        min: 1,
      });
    }
    const opt = options.optimizer;
    if (opt !== undefined && !isOptimizer(opt)) {
      if (!['adamw', 'adam', 'sgd', 'momentum', 'lars'].includes(opt)) {
        throw new ContrastiveError({
          caller,
          argument: 'options.optimizer',
          expected: "'adamw', 'adam', 'sgd', 'momentum', 'lars' or a tf.Optimizer",
          received: describeValue(opt),
        });
      }
    }
    this.options = options;
    this.defaults = defaults;
    const root = new SeededRandom(seed);
    this.augmentRng = root.fork();
    this.dataRng = root.fork();
    this.methodRng = root.fork();
  }

  // ---------------------------------------------------------------- what a preset supplies

  /** The augmentation recipe for images of side `size` with `channels` channels. */
  protected abstract recipe(size: number, channels: number): ViewSpec[];
  /** Every network of the method by name (the encoder as `encoder`), for checkpoints. */
  protected abstract networks(): Record<string, tfl.LayersModel>;
  /** The networks the optimiser trains. */
  protected abstract trainedNetworks(): tfl.LayersModel[];
  /**
   * Work outside the gradient tape before the loss (momentum keys, target projections): the
   * returned tensors are passed to `loss` and `update`, then disposed.
   */
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  protected prepare(views: tf.Tensor4D[], context: StepContext): tf.Tensor[] {
    return [];
  }
  /** The loss, inside the gradient tape. */
  protected abstract loss(
    views: tf.Tensor4D[],
    prepared: tf.Tensor[],
    context: StepContext,
  ): LossOutput;
  /**
   * State updates after the optimiser step (EMA, enqueue); `kept` holds the loss's
   * {@link LossOutput.keep} tensors (owned by the step).
   */
  protected update(
    // eslint-disable-next-line @typescript-eslint/no-unused-vars
    views: tf.Tensor4D[],
    // eslint-disable-next-line @typescript-eslint/no-unused-vars
    prepared: tf.Tensor[],
    // eslint-disable-next-line @typescript-eslint/no-unused-vars
    context: StepContext,
    // eslint-disable-next-line @typescript-eslint/no-unused-vars
    kept: readonly tf.Tensor[],
  ): void {}
  /**
   * Sets what depends on the step count alone (which weights are frozen) before a step, and
   * after `load` before the optimiser's slots are matched to the variables.
   */
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  protected atStep(step: number, epoch: number | undefined): void {}
  /** Changes the gradients before the finiteness check and the optimiser (DINO clips them). */
  protected transformGradients(grads: tf.NamedTensorMap): tf.NamedTensorMap {
    return grads;
  }
  /**
   * Whether the step's monitors say the run has collapsed, and what they saw; `fit` warns once
   * when it has said so for {@link COLLAPSE_WINDOW} steps in a row after the learning rate's
   * warm-up (during which the monitors describe the initialisation). Default: the embeddings'
   * spread {@link StepMetrics.embeddingStd} below a tenth of 1/sqrt(D), its value for embeddings
   * spread over the sphere (SimSiam's criterion: every image mapped to one point).
   */
  protected collapseReason(metrics: StepMetrics, embeddingDim: number): string | undefined {
    const std = metrics.embeddingStd;
    const spread = 1 / Math.sqrt(Math.max(1, embeddingDim));
    if (std === undefined || std >= 0.1 * spread) return undefined;
    return (
      `the embeddings have collapsed: their spread (embeddingStd) is ${std.toPrecision(3)}, ` +
      `under a tenth of 1/sqrt(${embeddingDim}) = ${spread.toPrecision(3)}, for ${COLLAPSE_WINDOW} steps in a row`
    );
  }
  /** The target momentum at a point of the run, for methods with a target network. */
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  protected momentumAt(progress: number | undefined): number | undefined {
    return undefined;
  }
  /** Stateful parts (queue, bank) by name, saved in the checkpoint. */
  protected stateParts(): Record<string, StatefulPart> {
    return {};
  }
  /** Restores a stateful part from a checkpoint. */
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  protected restorePart(name: string, state: ComponentState): void {
    throw new ContrastiveError({
      caller: `${this.name}.load`,
      argument: 'source',
      expected: `a checkpoint of this method's state`,
      received: `a state part '${name}' this method does not have`,
    });
  }
  /** The smallest batch the method can train on. Default 2 (batch norm, in-batch negatives). */
  protected minBatchSize(): number {
    return 2;
  }
  /** Method-specific metrics after an applied step. */
  protected extraMetrics(): Record<string, number> {
    return {};
  }
  /** Method-specific configuration saved in (and checked on loading) a checkpoint. */
  protected abstract describeConfig(): Record<string, JsonValue>;

  // ---------------------------------------------------------------- shared helpers for presets

  /** `model.apply(x)` in training mode. */
  protected static train(model: tfl.LayersModel, x: tf.Tensor): tf.Tensor2D {
    return model.apply(x, { training: true }) as tf.Tensor2D;
  }

  /** The image side the recipe is built for. */
  protected get imageSize(): number | undefined {
    return this.options.imageSize ?? this.recipeCache?.size ?? fixedSide(this.encoder);
  }

  // ---------------------------------------------------------------- the public interface

  /** Steps applied so far. */
  get step(): number {
    return this.stepCount;
  }

  /** Steps skipped so far (non-finite loss or gradients, or a batch too small). */
  get skippedSteps(): number {
    return this.skipped;
  }

  /**
   * The optimiser `trainStep` uses when it is given none: the method's default (see each
   * preset), built on first use, with the warm-up + cosine schedule applied at each step.
   */
  get optimizer(): tf.Optimizer {
    if (this.ownOptimizer === undefined) {
      const o = this.options.optimizer ?? this.activeDefaults.optimizer;
      this.ownOptimizer = isOptimizer(o)
        ? o
        : buildOptimizer(
            o,
            this.peakLearningRate(256),
            this.options.weightDecay ?? this.activeDefaults.weightDecay,
            this.activeDefaults.excludeVectors === true,
          );
    }
    return this.ownOptimizer;
  }

  /** The views of the method's recipe for a batch (for inspection; dispose them). */
  makeViews(images: tf.Tensor4D, rng: SeededRandom | number = 0): tf.Tensor4D[] {
    checkImages(`${this.name}.makeViews`, 'images', images);
    return multiCrop(images, { crops: this.viewSpecs(images), rng });
  }

  /**
   * One training step: the method's views of `batch.images`, forward, loss, one optimiser step
   * and the state updates. Skips (and reports) a step whose loss or gradients are not finite,
   * leaving every weight and state unchanged, and a batch too small for the method.
   *
   * @param batch - `{ images }` [B, H, W, C] float32 in [0, 1] (and `indices` for bank methods).
   * @param optimizer - the optimiser; default the preset's own, with its schedule.
   * @returns the loss, whether the step was skipped, and the step's metrics.
   * @throws {@link index!ContrastiveError} on bad input, or after `maxConsecutiveSkips` skipped steps in
   *   a row.
   */
  async trainStep(batch: Batch, optimizer?: tf.Optimizer): Promise<TrainStepResult> {
    const caller = `${this.name}.trainStep`;
    this.checkAlive(caller);
    const started = now();
    checkBatch(caller, batch);
    const images = batch.images;
    const b = images.shape[0];
    if (optimizer !== undefined && !isOptimizer(optimizer)) {
      throw new ContrastiveError({
        caller,
        argument: 'optimizer',
        expected: 'a tf.Optimizer or undefined',
        received: describeValue(optimizer),
      });
    }
    const opt = optimizer ?? this.optimizer;
    this.lastOptimizer = opt;
    const progress = this.progress();
    let lr = learningRateOf(opt);
    if (optimizer === undefined) {
      lr = this.learningRateAt(progress, b);
      setLearningRate(caller, opt, lr);
    }
    const momentum = this.momentumAt(progress);
    const weightDecay =
      optimizer === undefined ? this.scheduledWeightDecay(opt, progress) : undefined;
    const baseMetrics = {
      learningRate: lr,
      ...(momentum === undefined ? {} : { momentum }),
      ...(weightDecay === undefined ? {} : { weightDecay }),
    };
    if (b < this.minBatchSize()) {
      this.skipped++;
      return {
        loss: Number.NaN,
        skipped: true,
        reason: 'batch-too-small',
        step: this.stepCount,
        metrics: { ...baseMetrics, imagesPerSecond: 0, skippedSteps: this.skipped },
      };
    }
    const epoch = this.epochOf(this.stepCount);
    const context: StepContext = { step: this.stepCount, progress, momentum, epoch, batch };
    this.atStep(this.stepCount, epoch);
    const views =
      batch.views === undefined
        ? multiCrop(images, { crops: this.viewSpecs(images), rng: this.augmentRng })
        : checkViews(
            caller,
            batch.views,
            b,
            this.viewSpecs(images).reduce((n, v) => n + (v.count ?? 1), 0),
          );
    const buffers = this.bufferWeights();
    const saved = buffers.map((w) => tf.clone(w.read()));
    let prepared: tf.Tensor[] = [];
    let embedding: tf.Tensor2D | undefined;
    let monitors: [string, tf.Scalar][] = [];
    let kept: tf.Tensor[] = [];
    let grads: tf.NamedTensorMap = {};
    let value: tf.Scalar | undefined;
    try {
      prepared = tf.tidy(() => this.prepare(views, context));
      const { value: v, grads: g } = tf.variableGrads(() => {
        const out = this.loss(views, prepared, context);
        if (out.embedding !== undefined) embedding = tf.keep(out.embedding);
        monitors = Object.entries(out.monitors ?? {}).map(([k, t]) => [k, tf.keep(t)]);
        kept = (out.keep ?? []).map((t) => tf.keep(t));
        return out.loss;
      }, this.trainableVariables());
      value = v;
      grads = g;
      const decay = this.coupledWeightDecay(opt);
      if (decay > 0) {
        // SGD's weight decay as PyTorch applies it: wd x w added to every gradient.
        const byName = new Map(this.trainableVariables().map((x) => [x.name, x]));
        const decayed = tf.tidy(() =>
          Object.fromEntries(
            Object.entries(g).map(([name, t]) => {
              const w = byName.get(name);
              return [name, w === undefined ? tf.clone(t) : tf.add(t, tf.mul(w, decay))];
            }),
          ),
        );
        tf.dispose(Object.values(g));
        grads = decayed;
      }
      const transformed = this.transformGradients(grads);
      if (transformed !== grads) {
        tf.dispose(Object.values(grads));
        grads = transformed;
      }
      const probe = tf.tidy(() => {
        // 0 when the loss and every gradient are finite, NaN otherwise (x * 0 is NaN for
        // x = +-Infinity or NaN): one read-back decides whether the step is applied.
        let bad = tf.mul(v, 0);
        for (const t of Object.values(grads)) bad = tf.add(bad, tf.sum(tf.mul(t, 0)));
        const monitor = embedding === undefined ? tf.scalar(Number.NaN) : embeddingStd(embedding);
        return tf.stack([v, bad, monitor, ...monitors.map(([, t]) => tf.reshape(t, []))]);
      });
      const probed = await probe.data();
      probe.dispose();
      const [lossValue = Number.NaN, badValue = Number.NaN, stdValue = Number.NaN] = probed;
      if (!Number.isFinite(lossValue) || !Number.isFinite(badValue)) {
        buffers.forEach((w, i) => w.write(saved[i] as tf.Tensor));
        return this.skip(caller, baseMetrics);
      }
      opt.applyGradients(grads);
      this.update(views, prepared, context, kept);
      this.stepCount++;
      this.consecutiveSkips = 0;
      const seconds = Math.max(now() - started, 1e-9);
      const metrics: StepMetrics = {
        ...baseMetrics,
        imagesPerSecond: b / seconds,
        skippedSteps: this.skipped,
        ...(Number.isFinite(stdValue) ? { embeddingStd: stdValue } : {}),
        ...Object.fromEntries(monitors.map(([k], i) => [k, probed[3 + i] as number])),
        ...this.extraMetrics(),
      };
      // The monitors describe the initialisation during the warm-up: judged only after it.
      const reason = this.inWarmup(context.step, progress)
        ? undefined
        : this.collapseReason(metrics, embedding?.shape[1] ?? 0);
      this.collapsedSteps = reason === undefined ? 0 : this.collapsedSteps + 1;
      return {
        loss: lossValue,
        skipped: false,
        step: this.stepCount,
        metrics,
        ...(reason !== undefined && this.collapsedSteps >= COLLAPSE_WINDOW
          ? { collapse: reason }
          : {}),
      };
    } finally {
      tf.dispose([
        ...(batch.views === undefined ? views : []),
        ...prepared,
        ...saved,
        ...Object.values(grads),
      ]);
      if (value !== undefined) value.dispose();
      if (embedding !== undefined) embedding.dispose();
      tf.dispose([...monitors.map(([, t]) => t), ...kept]);
    }
  }

  /**
   * Trains on `data` for a number of epochs, steps or seconds, with callbacks, cancellation,
   * checkpoints and a progress line in Node. With a tensor of images, each epoch visits them in
   * a new seeded order in batches of `batchSize` (the last, shorter batch included; one too small
   * for the method is skipped and reported).
   *
   * Schedules: the learning rate (default optimiser) and the target momentum follow the run's
   * length, `steps`, or `epochs` x batches per epoch when the data's length is known, or the
   * elapsed fraction of `seconds`. Otherwise they stay at their post-warm-up values.
   *
   * @param data - a [N, H, W, C] tensor of images, an array of batches, a tfjs-data Dataset, or an
   *   (async) iterable of batches (tensors or `{ images, indices }`).
   * @param options - epochs / steps / seconds, batchSize, optimizer, callbacks, signal,
   *   checkpoint, progress.
   * @returns the losses, steps, skipped steps, seconds and why the run stopped.
   * @throws {@link index!ContrastiveError} on bad data or options.
   */
  fit(data: FitData, options: FitOptions = {}): Promise<FitResult> {
    this.checkAlive(`${this.name}.fit`);
    return runFit(this, data, options, {
      dataRng: this.dataRng,
      setRun: (steps, seconds, stepsPerEpoch) => {
        this.run =
          steps === undefined && seconds === undefined && stepsPerEpoch === undefined
            ? undefined
            : { steps, seconds, stepsPerEpoch, startedAt: now(), startStep: this.stepCount };
      },
    });
  }

  /**
   * Backbone features of `images` in inference mode (batch norm with its running statistics):
   * what a downstream task (kNN, a linear probe) uses; not the projection. (CPC gives its pooled
   * context, CMC every view encoder's features concatenated: see {@link SslMethod.embedBatch}.)
   *
   * @param images - [N, H, W, C] float32 images in [0, 1].
   * @param options - `batchSize` (256): images per forward pass.
   * @returns [N, F] features; dispose them.
   * @throws {@link index!ContrastiveError} on bad images.
   */
  embed(images: tf.Tensor4D, options: { batchSize?: number } = {}): tf.Tensor2D {
    const caller = `${this.name}.embed`;
    this.checkAlive(caller);
    checkImages(caller, 'images', images);
    const batchSize = options.batchSize ?? 256;
    checkNumber(caller, 'options.batchSize', batchSize, { integer: true, min: 1 });
    const n = images.shape[0];
    const parts: tf.Tensor2D[] = [];
    for (let start = 0; start < n; start += batchSize) {
      const size = Math.min(batchSize, n - start);
      parts.push(
        tf.tidy(() =>
          this.embedBatch(tf.slice(images, [start, 0, 0, 0], [size, -1, -1, -1]), caller),
        ),
      );
    }
    if (parts.length === 1) return parts[0] as tf.Tensor2D;
    const out = tf.concat(parts, 0);
    tf.dispose(parts);
    return out;
  }

  /**
   * The downstream features of one chunk of `embed`'s images, inference mode, inside its tidy.
   * Default: the encoder's output. Presets whose downstream features are another function of the
   * images (CPC, CMC) override it.
   *
   * @param images - [b, H, W, C] images, a chunk of `embed`'s.
   * @param caller - the name for error messages (`<method>.embed`).
   * @returns [b, featureDim] features.
   */
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  protected embedBatch(images: tf.Tensor4D, caller: string): tf.Tensor2D {
    return this.encoder.apply(images, { training: false }) as tf.Tensor2D;
  }

  /**
   * The whole training state as one safetensors checkpoint: every network (online, target),
   * stateful parts (queue, ...), the optimiser's slots, the step counters, the random
   * generators' states and the configuration. Written to `target` when given (a file path in
   * Node, `indexeddb://key` in a browser), and returned as bytes.
   *
   * @param target - where to write; omit for the bytes only.
   * @returns the checkpoint bytes.
   */
  async save(target?: string): Promise<Uint8Array> {
    this.checkAlive(`${this.name}.save`);
    const tensors: Record<string, tf.Tensor> = {};
    const owned: tf.Tensor[] = [];
    const shapes: Record<string, number[]> = {};
    for (const [key, model] of Object.entries(this.networks())) {
      for (const { name, weight } of namedWeights(model as never)) {
        tensors[`networks.${key}.${name}`] = weight.read();
        shapes[`networks.${key}.${name}`] = [...weight.shape];
      }
    }
    const parts: Record<string, JsonValue> = {};
    for (const [key, part] of Object.entries(this.stateParts())) {
      const state = part.getState();
      parts[key] = state.config;
      for (const [name, t] of Object.entries(state.tensors)) {
        tensors[`state.${key}.${name}`] = t;
        owned.push(t);
      }
    }
    const opt = this.lastOptimizer ?? this.ownOptimizer;
    let optimizerConfig: JsonValue = null;
    if (opt !== undefined) {
      const slots = await opt.getWeights();
      slots.forEach((s, i) => {
        tensors[`optimizer.${String(i).padStart(4, '0')}`] = s.tensor;
        if (!(s.tensor instanceof tf.Variable)) owned.push(s.tensor);
      });
      optimizerConfig = {
        className: opt.getClassName(),
        slots: slots.map((s) => s.name),
        variables: this.trainableVariables().map((v) => v.name),
      };
    }
    const config: Record<string, JsonValue> = {
      method: this.name,
      method_config: this.describeConfig(),
      step: this.stepCount,
      skipped: this.skipped,
      image_size: this.imageSize ?? null,
      rng: {
        augment: [...this.augmentRng.getState()],
        data: [...this.dataRng.getState()],
        method: [...this.methodRng.getState()],
      },
      parts,
      optimizer: optimizerConfig,
    };
    try {
      const bytes = await encodeSafetensors(tensors, {
        format: FORMAT,
        version: '1',
        method: this.name,
        config: JSON.stringify(config),
      });
      if (target !== undefined) await writeCheckpointBytes(target, bytes);
      return bytes;
    } finally {
      tf.dispose(owned);
    }
  }

  /**
   * Restores a checkpoint written by {@link SslMethod.save} into this preset, built with the
   * same architecture: networks, state parts, the default optimiser's slots (when the checkpoint
   * has them), step counters and random generators, so that training continues exactly.
   *
   * @param source - checkpoint bytes, a file path (Node) or `indexeddb://key` (browser).
   * @throws {@link index!ContrastiveError} when the checkpoint is of another method or architecture.
   */
  async load(source: string | Uint8Array): Promise<void> {
    const caller = `${this.name}.load`;
    this.checkAlive(caller);
    const bytes =
      typeof source === 'string' ? await readCheckpointBytes(source) : checkBytes(caller, source);
    const { tensors, metadata } = decodeSafetensors(bytes);
    try {
      const fail = (expected: string, received: string): never => {
        throw new ContrastiveError({ caller, argument: 'source', expected, received });
      };
      if (metadata['format'] !== FORMAT) fail('a tfjs-contrastive checkpoint', 'another file');
      const config = JSON.parse(metadata['config'] ?? 'null') as Record<string, JsonValue> | null;
      if (config === null || config['method'] !== this.name) {
        fail(
          `a checkpoint of '${this.name}'`,
          `one of ${JSON.stringify(config?.['method'] ?? null)}`,
        );
      }
      const cfg = config as Record<string, JsonValue>;
      const mine = JSON.stringify(this.describeConfig());
      const theirs = JSON.stringify(cfg['method_config']);
      if (mine !== theirs) fail(`a checkpoint of this configuration (${mine})`, theirs);
      // Networks: every weight present with its shape, before anything is written.
      const writes: [LayerWeight, tf.Tensor][] = [];
      const problems: string[] = [];
      for (const [key, model] of Object.entries(this.networks())) {
        for (const { name, weight } of namedWeights(model as never)) {
          const t = tensors[`networks.${key}.${name}`];
          if (t === undefined) problems.push(`missing ${key}.${name}`);
          else if (t.shape.join() !== weight.shape.join())
            problems.push(
              `${key}.${name}: [${t.shape.join(', ')}] for [${weight.shape.join(', ')}]`,
            );
          else writes.push([weight, t]);
        }
      }
      if (problems.length > 0) fail('weights of the same architecture', problems.join('; '));
      for (const [w, t] of writes) w.write(t);
      const parts = (cfg['parts'] ?? {}) as Record<string, Record<string, JsonValue>>;
      for (const [key, partConfig] of Object.entries(parts)) {
        const prefix = `state.${key}.`;
        const partTensors = Object.fromEntries(
          Object.entries(tensors)
            .filter(([n]) => n.startsWith(prefix))
            .map(([n, t]) => [n.slice(prefix.length), t]),
        );
        this.restorePart(key, { config: partConfig, tensors: partTensors });
      }
      this.stepCount = cfg['step'] as number;
      this.skipped = cfg['skipped'] as number;
      this.atStep(this.stepCount, this.epochOf(this.stepCount));
      const opt = cfg['optimizer'] as {
        className: string;
        slots: string[];
        variables: string[];
      } | null;
      if (opt !== null && opt.slots.length > 0) {
        const target = this.optimizer;
        if (target.getClassName() !== opt.className) {
          fail(`optimiser slots for ${target.getClassName()}`, `slots of ${opt.className}`);
        }
        const current = this.trainableVariables().map((v) => v.name);
        const rename = slotRenamer(opt.variables, current);
        await target.setWeights(
          opt.slots.map((name, i) => ({
            name: rename(name),
            tensor: tensors[`optimizer.${String(i).padStart(4, '0')}`] as tf.Tensor,
          })),
        );
        this.lastOptimizer = target;
      }
      const rng = cfg['rng'] as Record<string, number[]>;
      this.augmentRng.setState(rng['augment'] as unknown as SeededRandomState);
      this.dataRng.setState(rng['data'] as unknown as SeededRandomState);
      this.methodRng.setState(rng['method'] as unknown as SeededRandomState);
    } finally {
      tf.dispose(Object.values(tensors));
    }
  }

  /**
   * Frees what the preset created: heads, target networks, state, its default optimiser. The
   * encoder is the caller's and stays, unless the preset was built with `disposeEncoder: true`.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const [key, model] of Object.entries(this.networks())) {
      if (key === 'encoder' && this.options.disposeEncoder !== true) continue;
      disposeModel(model);
    }
    this.disposeParts();
    if (this.ownOptimizer !== undefined && !isOptimizer(this.options.optimizer)) {
      disposeOptimizer(this.ownOptimizer);
    }
  }

  /** Frees the state parts (queue, bank); presets with parts override it. */
  protected disposeParts(): void {}

  // ---------------------------------------------------------------- internals

  /** Peak learning rate of the default optimiser for a batch of `batch` images. */
  protected peakLearningRate(batch: number): number {
    const d = this.activeDefaults;
    return (
      this.options.learningRate ??
      (d.scaleWithBatch === true ? (d.learningRate * batch) / 256 : d.learningRate)
    );
  }

  /**
   * The defaults in force: the method's, or its small-image ones when the view size (from
   * `imageSize`, the encoder's fixed input or the first batch) is under 96 px.
   */
  protected get activeDefaults(): Omit<MethodDefaults, 'smallImages'> {
    const small = this.defaults.smallImages;
    const size = this.imageSize;
    return small !== undefined && size !== undefined && size < 96 ? small : this.defaults;
  }

  /**
   * The epoch of a step (0-based, over all the steps the preset has trained, across resumed runs)
   * when the length of an epoch is known: from `fit` (a tensor or an array of batches) or the
   * `stepsPerEpoch` option.
   */
  protected epochOf(step: number): number | undefined {
    const per = this.run?.stepsPerEpoch ?? this.options.stepsPerEpoch;
    // Counted from the preset's first step, so that a resumed run continues its epochs.
    return per === undefined ? undefined : Math.floor(step / per);
  }

  /**
   * Sets the default optimiser's weight decay for this step when the method schedules it
   * (`weightDecayEnd`): a cosine from the start value to the end over the run. Returns it.
   */
  private scheduledWeightDecay(
    opt: tf.Optimizer,
    progress: number | undefined,
  ): number | undefined {
    const end = this.activeDefaults.weightDecayEnd;
    const name = this.options.optimizer ?? this.activeDefaults.optimizer;
    // Only the default AdamW follows the schedule ('adam' is AdamW with no decay).
    if (end === undefined || opt !== this.ownOptimizer || name !== 'adamw') return undefined;
    const setter = (opt as { setWeightDecay?: (wd: number) => void }).setWeightDecay;
    if (typeof setter !== 'function') return undefined;
    const start = this.options.weightDecay ?? this.activeDefaults.weightDecay;
    const t = progress ?? 0;
    const wd = end + ((start - end) * (1 + Math.cos(Math.PI * t))) / 2;
    setter.call(opt, wd);
    return wd;
  }

  /** Whether a step is in the learning rate's warm-up. */
  private inWarmup(step: number, progress: number | undefined): boolean {
    const warmup = this.options.warmup ?? this.activeDefaults.warmup;
    if (warmup >= 1) return step < warmup;
    return progress !== undefined && progress < warmup;
  }

  private learningRateAt(progress: number | undefined, batch: number): number {
    const warmup = this.options.warmup ?? this.activeDefaults.warmup;
    return warmupCosine(this.peakLearningRate(batch), warmup, this.stepCount, progress);
  }

  /** The weight decay `trainStep` adds to the gradients: the default SGD optimisers' (PyTorch's coupled L2). */
  private coupledWeightDecay(opt: tf.Optimizer): number {
    if (opt !== this.ownOptimizer || isOptimizer(this.options.optimizer)) return 0;
    const name = this.options.optimizer ?? this.activeDefaults.optimizer;
    if (name !== 'sgd' && name !== 'momentum') return 0;
    return this.options.weightDecay ?? this.activeDefaults.weightDecay;
  }

  /** Fraction of the run done, when its length is known. */
  protected progress(): number | undefined {
    const run = this.run;
    if (run?.seconds !== undefined) return Math.min(1, (now() - run.startedAt) / run.seconds);
    if (run?.steps !== undefined) return Math.min(1, (this.stepCount - run.startStep) / run.steps);
    const total = this.options.totalSteps;
    return total === undefined ? undefined : Math.min(1, this.stepCount / total);
  }

  private viewSpecs(images: tf.Tensor4D): readonly ViewSpec[] {
    if (this.options.views !== undefined) return this.options.views;
    const size = this.options.imageSize ?? fixedSide(this.encoder) ?? images.shape[1];
    if (this.recipeCache?.size !== size) {
      let views = this.recipe(size, images.shape[3]);
      if (this.options.flip === false) views = views.map((v) => ({ ...v, flip: 0 }));
      this.recipeCache = { size, views };
    }
    return this.recipeCache.views;
  }

  /** The variables the optimiser updates, in a fixed order. */
  protected trainableVariables(): tf.Variable[] {
    return trainableVariables(...this.trainedNetworks());
  }

  private bufferWeights(): LayerWeight[] {
    const out: LayerWeight[] = [];
    for (const model of Object.values(this.networks())) {
      for (const { weight, buffer } of namedWeights(model as never)) if (buffer) out.push(weight);
    }
    return out;
  }

  private skip(caller: string, base: { learningRate: number; momentum?: number }): TrainStepResult {
    this.skipped++;
    this.consecutiveSkips++;
    const limit = this.options.maxConsecutiveSkips ?? 10;
    if (this.consecutiveSkips >= limit) {
      throw new ContrastiveError(
        {
          caller,
          argument: 'batch',
          expected: 'inputs giving a finite loss and finite gradients',
          received: `${this.consecutiveSkips} steps in a row with a non-finite loss or gradient (all skipped)`,
        },
        'Likely causes: images with NaN or Infinity values, a learning rate so high that the ' +
          'weights diverged, or a temperature far too small. The weights are those of the last finite step.',
      );
    }
    return {
      loss: Number.NaN,
      skipped: true,
      reason: 'non-finite',
      step: this.stepCount,
      metrics: { ...base, imagesPerSecond: 0, skippedSteps: this.skipped },
    };
  }

  /** Throws a ContrastiveError naming `caller` once the preset has been disposed. */
  protected checkAlive(caller: string): void {
    if (this.disposed) {
      throw new ContrastiveError({
        caller,
        argument: 'this',
        expected: 'a preset that has not been disposed',
        received: 'a disposed preset',
      });
    }
  }
}

function checkEncoder(caller: string, encoder: unknown): tfl.LayersModel {
  const m = encoder as Partial<tfl.LayersModel> | null | undefined;
  if (
    m === null ||
    typeof m !== 'object' ||
    typeof m.apply !== 'function' ||
    !Array.isArray(m.layers) ||
    !Array.isArray(m.trainableWeights)
  ) {
    throw new ContrastiveError({
      caller,
      argument: 'options.encoder',
      expected: 'a tfjs-layers model mapping images [B, H, W, C] to features [B, F]',
      received: describeValue(encoder),
    });
  }
  return encoder as tfl.LayersModel;
}

function featureWidth(caller: string, encoder: tfl.LayersModel): number {
  const shape = encoder.outputs[0]?.shape;
  const f = shape?.[1];
  if (shape?.length !== 2 || typeof f !== 'number') {
    throw new ContrastiveError({
      caller,
      argument: 'options.encoder',
      expected: 'a model whose output is [B, F] features (e.g. ending in global pooling)',
      received: `a model with output shape [${(shape ?? []).map(String).join(', ')}]`,
    });
  }
  return f;
}

/** The output width of a head. @internal */
export function outputWidth(model: tfl.LayersModel): number {
  const d = model.outputs[0]?.shape[1];
  return typeof d === 'number' ? d : 0;
}

/** The encoder's fixed input height, when it has one. */
function fixedSide(encoder: tfl.LayersModel): number | undefined {
  const h = encoder.inputs[0]?.shape[1];
  return typeof h === 'number' ? h : undefined;
}

function checkImages(caller: string, argument: string, images: unknown): void {
  checkTensor(caller, argument, images, {
    rank: 4,
    dtype: 'float32',
    layout: '[B, H, W, C] images in [0, 1]',
  });
}

function checkBatch(caller: string, batch: unknown): void {
  const b = batch as Partial<Batch> | null;
  if (b === null || typeof b !== 'object' || b instanceof tf.Tensor) {
    throw new ContrastiveError({
      caller,
      argument: 'batch',
      expected: 'a batch { images, indices?, labels? }',
      received: describeValue(batch),
    });
  }
  checkImages(caller, 'batch.images', b.images);
}

function checkViews(caller: string, views: unknown, batch: number, count: number): tf.Tensor4D[] {
  if (!Array.isArray(views) || views.length !== count) {
    throw new ContrastiveError({
      caller,
      argument: 'batch.views',
      expected: `${count} views (the method's recipe makes ${count})`,
      received: describeValue(views),
    });
  }
  views.forEach((v, i) => {
    checkTensor(caller, `batch.views[${i}]`, v, {
      shape: [batch, null, null, null],
      dtype: 'float32',
      layout: `[${batch}, h, w, C] (the batch size of batch.images)`,
    });
  });
  return views as tf.Tensor4D[];
}

function checkBytes(caller: string, source: unknown): Uint8Array {
  if (!(source instanceof Uint8Array)) {
    throw new ContrastiveError({
      caller,
      argument: 'source',
      expected: 'checkpoint bytes (Uint8Array), a file path or indexeddb://key',
      received: describeValue(source),
    });
  }
  return source;
}

/**
 * Maps optimiser slot names (`<variable>/<slot>`) saved under one build's variable names to
 * another build's, position by position.
 */
function slotRenamer(saved: readonly string[], current: readonly string[]): (n: string) => string {
  const map = new Map<string, string>();
  saved.forEach((name, i) => {
    const next = current[i];
    if (next !== undefined) map.set(name, next);
  });
  const byLength = [...map.keys()].sort((a, b) => b.length - a.length);
  return (slot: string): string => {
    for (const old of byLength) {
      if (slot === old || slot.startsWith(`${old}/`))
        return `${map.get(old) ?? old}${slot.slice(old.length)}`;
    }
    return slot;
  };
}

/**
 * Disposes an optimiser. tfjs 4.22's `MomentumOptimizer.dispose` forgets the learning-rate scalar
 * its SGD base keeps (`c`): freed here too.
 */
function disposeOptimizer(optimizer: tf.Optimizer): void {
  optimizer.dispose();
  const c = (optimizer as unknown as { c?: unknown }).c;
  if (c instanceof tf.Tensor && !c.isDisposed) c.dispose();
}

/**
 * Disposes a model and the Sequential models used inside it as layers (tfjs-layers 4.22 keeps
 * a reference of their own, so the outer dispose leaves their weights).
 *
 * @param model - the model to free, with the Sequentials nested in it.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { simclrV1Projector } from 'tfjs-contrastive/layers';
 * import { disposeModel } from 'tfjs-contrastive/methods';
 *
 * const encoder = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [32], units: 64 })] });
 * const head = simclrV1Projector({ inputDim: 64 });
 * const model = tfl.sequential({ layers: [encoder, head] });
 * disposeModel(model); // the head's weights too, which model.dispose() would leave
 * ```
 */
export function disposeModel(model: tfl.LayersModel): void {
  const nested = nestedModels(model);
  model.dispose();
  for (const part of nested) releaseNested(part);
}

function nestedModels(model: tfl.LayersModel): tfl.LayersModel[] {
  return model.layers.filter((l): l is tfl.LayersModel =>
    Array.isArray((l as Partial<tfl.LayersModel>).layers),
  );
}

// After the outer model's dispose: a nested model still referenced (tfjs-layers counts its own
// construction and each use) is disposed in turn; one the outer dispose already freed may still
// hold nested models of its own with references left.
function releaseNested(part: tfl.LayersModel): void {
  const refs = (part as unknown as { _refCount?: number | null })._refCount;
  if (typeof refs === 'number' && refs > 0) disposeModel(part);
  else for (const inner of nestedModels(part)) releaseNested(inner);
}
