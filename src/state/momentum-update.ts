import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError, checkNumber, checkOneOf, describeValue } from '../core/index.js';

/**
 * A weight as tfjs-layers exposes it (`LayerVariable`): readable, writable, named. A plain
 * `tf.Variable` fits too.
 */
export interface WritableWeight {
  /** The weight's name (for error messages). */
  readonly name: string;
  /** The weight's shape. */
  readonly shape: readonly number[];
}

/** A layer, as far as the EMA needs it. */
export interface WeightedLayer {
  /** The layer's weights, in the layer's own order. */
  readonly weights: readonly unknown[];
}

/** A tfjs-layers model, as far as the EMA needs it: its layers and their weights. */
export interface WeightedModel {
  /** The layers, in order; a layer that is itself a model is walked into. */
  readonly layers: readonly WeightedLayer[];
}

/** What the momentum update does with non-trainable weights (batch-norm moving statistics). */
export type BufferPolicy = 'ignore' | 'copy' | 'ema';

/** Options of {@link emaUpdate}. */
export interface EmaUpdateOptions {
  /**
   * Non-trainable weights (batch-norm moving mean and variance): `'ignore'` (default: the target
   * keeps its own statistics, as MoCo and lightly do and as BYOL's target, which runs its own
   * forward passes), `'copy'` from the online model, or `'ema'` like the trainable ones.
   */
  readonly buffers?: BufferPolicy;
}

function readOf(w: unknown): tf.Tensor {
  const v = w as { read?: () => tf.Tensor };
  return typeof v.read === 'function' ? v.read() : (w as tf.Tensor);
}

function writeTo(w: unknown, value: tf.Tensor): void {
  const v = w as { write?: (t: tf.Tensor) => void; assign?: (t: tf.Tensor) => void };
  if (typeof v.write === 'function') v.write(value);
  else if (typeof v.assign === 'function') v.assign(value);
}

// Weights in layer order, each layer's own order: unlike a model's `weights` (trainable ones
// first), this order does not change when a model is frozen (`trainable = false`), so a frozen
// momentum copy pairs with its online model.
function layerWeights(model: WeightedModel): unknown[] {
  return model.layers.flatMap((layer) => {
    const nested = layer as Partial<WeightedModel>;
    return Array.isArray(nested.layers)
      ? layerWeights(nested as WeightedModel)
      : [...layer.weights];
  });
}

function weightsOf(argument: string, x: WeightedModel | readonly tf.Variable[]): unknown[] {
  if (Array.isArray(x)) return [...(x as readonly tf.Variable[])];
  const m = x as Partial<WeightedModel> | null;
  if (m === null || !Array.isArray(m.layers)) {
    throw new ContrastiveError({
      caller: 'emaUpdate',
      argument,
      expected: 'a tfjs-layers model, or an array of tf.Variable',
      received: describeValue(x),
    });
  }
  return layerWeights(m as WeightedModel);
}

function checkPairs(target: readonly unknown[], online: readonly unknown[]): void {
  if (target.length !== online.length) {
    throw new ContrastiveError({
      caller: 'emaUpdate',
      argument: 'online',
      expected: `the same architecture as 'target' (${target.length} weights)`,
      received: `${online.length} weights`,
    });
  }
  target.forEach((t, i) => {
    const a = (t as WritableWeight).shape;
    const b = (online[i] as WritableWeight).shape;
    if (a.length !== b.length || a.some((d, j) => d !== b[j])) {
      throw new ContrastiveError({
        caller: 'emaUpdate',
        argument: `online weight ${i} (${(online[i] as WritableWeight).name})`,
        expected: `shape [${a.join(', ')}] like target's ${(t as WritableWeight).name}`,
        received: `shape [${b.join(', ')}]`,
      });
    }
  });
}

/**
 * The momentum (exponential moving average) update of a target network, in place:
 * `target <- m target + (1 - m) online` for every trainable weight (MoCo's key encoder, BYOL's
 * target, DINO's teacher, MoCo v3's momentum encoder), with an explicit policy for the
 * non-trainable ones (batch-norm statistics; moco issue #70 shows why it must be a choice).
 *
 * Weights are paired by position, layer by layer (models built by the same code, or a
 * {@link cloneAsMomentumEncoder} copy, line up even when one is frozen), and their shapes must
 * match; the online model's non-trainable weights are the buffers. Each weight is written
 * in place (`LayerVariable.write` / `Variable.assign`): no new model, no leak.
 *
 * @param target - the momentum model (see {@link cloneAsMomentumEncoder}), or an array of variables.
 * @param online - the trained model of the same architecture, or an array of variables.
 * @param momentum - m in [0, 1]: 1 leaves the target, 0 copies the online weights (SimSiam's
 *   degenerate case). MoCo 0.999, BYOL 0.996 rising to 1 (`cosineMomentum`).
 * @param options - `buffers` ('ignore').
 * @throws {@link ContrastiveError} when the architectures do not match or m is outside [0, 1].
 *
 * @example
 * ```ts
 * import { cloneAsMomentumEncoder, cosineMomentum, emaUpdate } from 'tfjs-contrastive';
 *
 * const target = cloneAsMomentumEncoder(online);
 * // after each optimiser step:
 * emaUpdate(target, online, cosineMomentum(step, totalSteps, 0.996));
 * ```
 */
export function emaUpdate(
  target: WeightedModel | readonly tf.Variable[],
  online: WeightedModel | readonly tf.Variable[],
  momentum: number,
  options: EmaUpdateOptions = {},
): void {
  checkNumber('emaUpdate', 'momentum', momentum, { min: 0, max: 1 });
  const buffers = options.buffers ?? 'ignore';
  checkOneOf('emaUpdate', 'options.buffers', buffers, ['ignore', 'copy', 'ema']);
  const t = weightsOf('target', target);
  const o = weightsOf('online', online);
  checkPairs(t, o);
  const mix = (a: unknown, b: unknown, m: number): void => {
    tf.tidy(() => {
      writeTo(
        a,
        m === 0 ? tf.clone(readOf(b)) : tf.add(tf.mul(readOf(a), m), tf.mul(readOf(b), 1 - m)),
      );
    });
  };
  t.forEach((w, i) => {
    // Buffers are the online model's non-trainable weights (batch-norm moving statistics).
    const buffer = (o[i] as { trainable?: boolean }).trainable === false;
    if (!buffer) mix(w, o[i], momentum);
    else if (buffers === 'copy') mix(w, o[i], 0);
    else if (buffers === 'ema') mix(w, o[i], momentum);
  });
}

/** A tfjs-layers model as far as {@link cloneAsMomentumEncoder} needs it. */
export interface CloneableModel extends WeightedModel {
  /** All weights. */
  readonly weights: readonly unknown[];
  /** The model's configuration (architecture). */
  getConfig(): unknown;
  /** The current weight values. */
  getWeights(): tf.Tensor[];
  /** Sets all weight values. */
  setWeights(weights: tf.Tensor[]): void;
  /** Whether the model's weights are trained. */
  trainable: boolean;
}

/**
 * A momentum encoder for `model`: a new model of the same architecture (rebuilt from its config
 * through its own class, so that no tfjs-layers code is imported here), with copies of its
 * current weights, and `trainable = false`. Keep it in sync with {@link emaUpdate}; it keeps its own
 * batch-norm statistics unless the update copies or averages them.
 *
 * @param model - a tfjs-layers `Sequential` or functional `LayersModel` (custom layers must be
 *   registered, as for loading a saved model).
 * @returns the copy; dispose it when done.
 * @throws {@link ContrastiveError} when `model` is not a tfjs-layers model.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { cloneAsMomentumEncoder } from 'tfjs-contrastive';
 *
 * const keyEncoder = cloneAsMomentumEncoder(queryEncoder); // MoCo
 * ```
 */
export function cloneAsMomentumEncoder<M extends CloneableModel>(model: M): M {
  const cls = (model as { constructor?: unknown } | null)?.constructor as
    { fromConfig?: (cls: unknown, config: unknown) => M } | undefined;
  if (
    cls === undefined ||
    typeof cls.fromConfig !== 'function' ||
    typeof (model as Partial<CloneableModel>).getConfig !== 'function'
  ) {
    throw new ContrastiveError({
      caller: 'cloneAsMomentumEncoder',
      argument: 'model',
      expected: 'a tfjs-layers model (Sequential or LayersModel)',
      received: describeValue(model),
    });
  }
  const copy = cls.fromConfig(cls, model.getConfig());
  copy.setWeights(model.getWeights());
  copy.trainable = false;
  return copy;
}
