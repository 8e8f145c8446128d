import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { ViewSpec } from '../augment/index.js';

/** One training batch. */
export interface Batch {
  /** Images [B, H, W, C], float32 in [0, 1]. */
  readonly images: tf.Tensor4D;
  /** Each image's index in the data set (memory-bank methods need them; `fit` supplies them). */
  readonly indices?: tf.Tensor1D | Int32Array | readonly number[];
  /**
   * The views, made by the caller instead of the method's recipe (your own augmentation, or the
   * exact views of another run to compare against): as many as the method's recipe makes, each
   * [B, h, w, C]. `images` is then used only for its batch size.
   */
  readonly views?: readonly tf.Tensor4D[];
  /** Labels, when known (unused by the self-supervised losses; kept for monitors). */
  readonly labels?: tf.Tensor1D | Int32Array | readonly number[];
}

/** What a training step measured. Every value is a plain number. */
export interface StepMetrics {
  /** The learning rate of this step (`NaN` when a caller's optimiser does not expose it). */
  readonly learningRate: number;
  /** The momentum of the target network's EMA in this step, for methods that have one. */
  readonly momentum?: number;
  /** Images (not views) per second of this step, augmentation included. */
  readonly imagesPerSecond: number;
  /** Steps skipped so far because their loss or gradients were not finite, or their batch too small. */
  readonly skippedSteps: number;
  /**
   * SimSiam's collapse monitor of the projections: the per-dimension standard deviation of the
   * L2-normalised outputs, averaged (0 = collapsed, about 1/sqrt(D) when spread out).
   */
  readonly embeddingStd?: number;
  /**
   * The weight decay of this step, for a method whose default optimiser follows a weight-decay
   * schedule (DINO: 0.04 to 0.4 by a cosine).
   */
  readonly weightDecay?: number;
  /** Method-specific values (e.g. `queueFill`, `teacherEntropy`, `prototypeUsage`). */
  readonly [name: string]: number | undefined;
}

/** What {@link SslMethod.trainStep} resolves to. */
export interface TrainStepResult {
  /** The loss of the step (`NaN` when skipped for a non-finite loss or a too small batch). */
  readonly loss: number;
  /** Whether the step was skipped: nothing changed (weights, optimiser, state). */
  readonly skipped: boolean;
  /** Why it was skipped. */
  readonly reason?: 'non-finite' | 'batch-too-small';
  /** The number of steps applied so far (after this one). */
  readonly step: number;
  /** Learning rate, momentum, images/s, collapse monitors. */
  readonly metrics: StepMetrics;
  /**
   * Set when the method's collapse monitors have said "collapsed" for
   * {@link COLLAPSE_WINDOW} applied steps in a row after the learning rate's warm-up: what they saw (e.g. "teacher entropy 0.003
   * of log K = 6.93"). `fit` warns once per run with it.
   */
  readonly collapse?: string;
}

/** The number of applied steps in a row a collapse monitor must fire before a step reports it. */
export const COLLAPSE_WINDOW = 20;

/** An optimiser by name, built by the preset with its learning rate and weight decay. */
export type OptimizerName = 'adamw' | 'adam' | 'sgd' | 'momentum' | 'lars';

/** Options every preset takes. */
export interface SslMethodOptions {
  /**
   * The backbone: a tfjs-layers model mapping images [B, H, W, C] to features [B, F] (yours, or
   * one of the library's backbones). The preset trains it but does not own it: `dispose()` leaves
   * it to you (pass `disposeEncoder: true` to hand it over).
   */
  readonly encoder: tfl.LayersModel;
  /** Also dispose the encoder in `dispose()`. Default `false`. */
  readonly disposeEncoder?: boolean;
  /**
   * The side of the training images, for the augmentation recipe. Default: the encoder's input
   * height when it is fixed, else the first batch's.
   */
  readonly imageSize?: number;
  /** The augmentation: view specs replacing the method's recipe. */
  readonly views?: readonly ViewSpec[];
  /** Flip views horizontally with probability 0.5 (the papers' default). Default `true`. */
  readonly flip?: boolean;
  /** The default optimiser (used when `trainStep` / `fit` get none). Default per method. */
  readonly optimizer?: OptimizerName | tf.Optimizer;
  /** Peak learning rate of the default optimiser (after warm-up). Default per method. */
  readonly learningRate?: number;
  /** Weight decay of the default optimiser. Default per method. */
  readonly weightDecay?: number;
  /**
   * Warm-up of the learning rate, as a fraction of the run in [0, 1) when `< 1`, or as a number of
   * steps when `>= 1`. Default per method.
   */
  readonly warmup?: number;
  /**
   * The length of the run in steps, for the schedules (cosine learning rate, target momentum)
   * when `trainStep` is called directly. `fit` sets it from its own length. Without it, the
   * learning rate stays at its peak after warm-up and the momentum at its base value.
   */
  readonly totalSteps?: number;
  /**
   * Steps in an epoch, for the schedules a method counts in epochs (DINO's frozen last layer,
   * SwAV's queue start) when `trainStep` is called directly. `fit` sets it when the data's length
   * is known (a tensor or an array of batches).
   */
  readonly stepsPerEpoch?: number;
  /** Seed of the augmentation and of every other random choice of the preset. Default `0`. */
  readonly seed?: number;
  /**
   * After this many consecutive skipped (non-finite) steps, `trainStep` throws a ContrastiveError
   * saying what is likely wrong. Default `10`.
   */
  readonly maxConsecutiveSkips?: number;
}

/** Callbacks of {@link SslMethod.fit}, in tfjs-layers' style. */
export interface FitCallbacks {
  /** Before the first step. */
  onTrainBegin?(logs: FitLogs): void | Promise<void>;
  /** Before each epoch (0-based). */
  onEpochBegin?(epoch: number, logs: FitLogs): void | Promise<void>;
  /** After each step: the step's result. Return `false` (or set `method.stopTraining`) to stop. */
  // A callback written as `() => {}` returns void, so void must stay in the union.
  // eslint-disable-next-line @typescript-eslint/no-invalid-void-type
  onBatchEnd?(step: number, logs: TrainStepResult): void | boolean | Promise<void | boolean>;
  /** After each epoch: the epoch's mean loss. */
  onEpochEnd?(epoch: number, logs: FitLogs): void | Promise<void>;
  /** After the last step. */
  onTrainEnd?(logs: FitLogs): void | Promise<void>;
}

/** Summary values passed to the epoch and train callbacks. */
export interface FitLogs {
  /** Steps applied so far. */
  readonly step: number;
  /** Mean loss of the epoch (or of the run, for onTrainEnd) over applied steps. */
  readonly loss: number;
  /** Seconds since `fit` began. */
  readonly seconds: number;
  /** Steps skipped so far. */
  readonly skippedSteps: number;
}

/** A source of training batches for {@link SslMethod.fit}. */
export type FitData =
  | tf.Tensor4D
  | readonly tf.Tensor4D[]
  | {
      /** A fresh iterator over the data set (one per epoch). */
      iterator(): Promise<AsyncIteratorLike>;
    }
  | AsyncIterable<tf.Tensor4D | Batch>
  | Iterable<tf.Tensor4D | Batch>;

/** The iterator of a tfjs-data Dataset, as far as `fit` needs it. */
export interface AsyncIteratorLike {
  /** The next element: `done` once exhausted, else a batch in `value`. */
  next(): Promise<{
    /** Whether the iterator is exhausted. */
    done: boolean;
    /** The element: a tensor of images or a {@link Batch}. */
    value: unknown;
  }>;
}

/** Options of {@link SslMethod.fit}. */
export interface FitOptions {
  /** Epochs over the data. Default `1` unless `steps` or `seconds` is given. */
  readonly epochs?: number;
  /** Stop after this many applied steps. */
  readonly steps?: number;
  /**
   * A time budget in seconds: the run stops when it is spent, and the schedules follow the
   * elapsed fraction of it (cosine learning rate and momentum reach their end at the budget).
   */
  readonly seconds?: number;
  /** Images per batch when `data` is one tensor of images (or single images). Default `256`. */
  readonly batchSize?: number;
  /** Shuffle a tensor of images each epoch (seeded). Default `true`. */
  readonly shuffle?: boolean;
  /** The optimiser; default the preset's. */
  readonly optimizer?: tf.Optimizer;
  /** tfjs-layers-style callbacks. */
  readonly callbacks?: FitCallbacks | readonly FitCallbacks[];
  /** Cancels the run cleanly after the current step. */
  readonly signal?: AbortSignal;
  /** Save the whole training state here (a file path in Node, `indexeddb://key` in a browser). */
  readonly checkpoint?:
    | string
    | {
        /** Where to save (a Node file path or `indexeddb://key`). */
        readonly target: string;
        /** Save every this many applied steps as well as at the end. */
        readonly everySteps?: number;
      };
  /** A progress line in Node (steps, loss, images/s, time left). Default `true` in Node. */
  readonly progress?: boolean;
  /**
   * Where the run's one collapse warning goes (see {@link TrainStepResult.collapse}). Default
   * `console.warn`.
   */
  readonly onWarning?: (message: string) => void;
}

/** What {@link SslMethod.fit} resolves to. */
export interface FitResult {
  /** The loss of every applied step. */
  readonly losses: number[];
  /** Steps applied by this call. */
  readonly steps: number;
  /** Steps skipped by this call. */
  readonly skippedSteps: number;
  /** Wall time of the call in seconds. */
  readonly seconds: number;
  /** Why the run ended. */
  readonly stoppedBy: 'epochs' | 'steps' | 'seconds' | 'callback' | 'signal' | 'data';
}
