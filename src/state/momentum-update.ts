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

/**
 * A layer, as far as the EMA needs it: its weights. A tfjs-layers layer also keeps the two lists
 * it creates weights into (`_trainableWeights`: parameters, frozen or not; `_nonTrainableWeights`:
 * buffers such as batch norm's moving statistics), which {@link emaUpdate} reads, duck-typed; a
 * layer without them has only parameters.
 */
export interface WeightedLayer {
  /** The layer's weights. */
  readonly weights: readonly unknown[];
}

/** A tfjs-layers model, as far as the EMA needs it: its layers and their weights. */
export interface WeightedModel {
  /** The layers, in order; a layer that is itself a model is walked into. */
  readonly layers: readonly WeightedLayer[];
}

/**
 * What the momentum update does with buffers: weights a layer creates non-trainable, such as
 * batch norm's moving mean and variance (not frozen parameters, which are always averaged).
 */
export type BufferPolicy = 'ignore' | 'copy' | 'ema';

/** Options of {@link emaUpdate}. */
export interface EmaUpdateOptions {
  /**
   * Buffers (batch-norm moving mean and variance): `'ignore'` (default: the target keeps its own
   * statistics, as MoCo and lightly do and as BYOL's target, which runs its own forward passes),
   * `'copy'` from the online model, or `'ema'` like the parameters.
   */
  readonly buffers?: BufferPolicy;
}

function readOf(w: unknown): tf.Tensor {
  const v = w as { read?: () => tf.Tensor };
  return typeof v.read === 'function' ? v.read() : (w as tf.Tensor);
}

function writable(w: unknown): boolean {
  const v = w as { write?: unknown; assign?: unknown } | null;
  return v !== null && (typeof v.write === 'function' || typeof v.assign === 'function');
}

function writeTo(w: unknown, value: tf.Tensor): void {
  const v = w as { write?: (t: tf.Tensor) => void; assign?: (t: tf.Tensor) => void };
  if (typeof v.write === 'function') v.write(value);
  else if (typeof v.assign === 'function') v.assign(value);
}

/** A weight and whether it is a buffer (created non-trainable) rather than a parameter. */
interface ClassifiedWeight {
  readonly weight: unknown;
  readonly buffer: boolean;
}

interface LayerLists {
  readonly weights?: readonly unknown[];
  readonly _trainableWeights?: readonly unknown[];
  readonly _nonTrainableWeights?: readonly unknown[];
  readonly layers?: readonly unknown[];
  readonly layer?: unknown;
  readonly forwardLayer?: unknown;
  readonly backwardLayer?: unknown;
}

// A layer's weights in a fixed order, each marked parameter or buffer. tfjs-layers puts a weight
// into `_trainableWeights` or `_nonTrainableWeights` once, when the layer creates it (addWeight's
// `trainable` argument), and never moves it: freezing a layer or a weight only clears the
// weight's `trainable` flag. The flag therefore cannot tell a frozen parameter (which PyTorch's
// EMA over `parameters()` averages) from a buffer, and the lists can; their concatenation is also
// an order that freezing does not change (a layer's `weights` lists flagged-trainable weights
// first). Wrappers (TimeDistributed, Bidirectional) keep their weights in the wrapped layers;
// models are walked layer by layer.
function classifyLayer(layer: unknown): ClassifiedWeight[] {
  const l = (layer ?? {}) as LayerLists;
  const list = (x: unknown): readonly unknown[] | undefined =>
    Array.isArray(x) ? (x as readonly unknown[]) : undefined;
  const nested = list(l.layers);
  if (nested !== undefined) return nested.flatMap(classifyLayer);
  const params = list(l._trainableWeights);
  const buffers = list(l._nonTrainableWeights);
  const weights = list(l.weights) ?? [];
  if (
    params !== undefined &&
    buffers !== undefined &&
    params.length + buffers.length === weights.length
  ) {
    return [
      ...params.map((weight) => ({ weight, buffer: false })),
      ...buffers.map((weight) => ({ weight, buffer: true })),
    ];
  }
  const inner = [l.layer, l.forwardLayer, l.backwardLayer].filter((x) => x != null);
  if (inner.length > 0) return inner.flatMap(classifyLayer);
  // Not a tfjs-layers layer: every weight is a parameter.
  return weights.map((weight) => ({ weight, buffer: false }));
}

function weightsOf(
  argument: string,
  x: WeightedModel | readonly tf.Variable[],
): ClassifiedWeight[] {
  // Plain variables carry no layer to say which are buffers: all are parameters.
  if (Array.isArray(x))
    return (x as readonly unknown[]).map((weight) => ({ weight, buffer: false }));
  const m = x as Partial<WeightedModel> | null;
  if (m === null || !Array.isArray(m.layers)) {
    throw new ContrastiveError({
      caller: 'emaUpdate',
      argument,
      expected: 'a tfjs-layers model, or an array of tf.Variable',
      received: describeValue(x),
    });
  }
  return m.layers.flatMap(classifyLayer);
}

const nameOf = (w: unknown): string => {
  const name = (w as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? name : 'unnamed';
};

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
    if (!writable(t)) {
      throw new ContrastiveError({
        caller: 'emaUpdate',
        argument: `target weight ${i} (${nameOf(t)})`,
        expected: 'a writable weight (a tfjs-layers LayerVariable or a tf.Variable)',
        received: describeValue(t),
      });
    }
    const a = (t as WritableWeight).shape;
    const b = (online[i] as WritableWeight).shape;
    if (a.length !== b.length || a.some((d, j) => d !== b[j])) {
      throw new ContrastiveError({
        caller: 'emaUpdate',
        argument: `online weight ${i} (${nameOf(online[i])})`,
        expected: `shape [${a.join(', ')}] like target's ${nameOf(t)}`,
        received: `shape [${b.join(', ')}]`,
      });
    }
  });
}

/**
 * The momentum (exponential moving average) update of a target network, in place:
 * `target <- m target + (1 - m) online` for every parameter (MoCo's key encoder, BYOL's target,
 * DINO's teacher, MoCo v3's momentum encoder), with an explicit policy for the buffers (batch-norm
 * statistics; moco issue #70 shows why it must be a choice).
 *
 * Parameters are all the weights a layer creates trainable, frozen or not, as PyTorch's EMA over
 * `zip(target.parameters(), online.parameters())` covers them: a layer set `trainable = false`
 * (MoCo v3's frozen patch projection, SwAV's prototypes or DINO's last layer during their frozen
 * steps) is averaged too, which keeps the target equal to the online value that did not move.
 * Buffers are the weights a layer creates non-trainable (tfjs-layers' `_nonTrainableWeights`,
 * e.g. batch norm's moving mean and variance, and the library's BatchNorm's); the online model
 * decides which weights are buffers. The layer lists are read duck-typed (this module imports no
 * tfjs-layers code); a layer without them, and a plain array of `tf.Variable`, has parameters only.
 *
 * Weights are paired by position, layer by layer in an order that freezing does not change
 * (models built by the same code, or a {@link cloneAsMomentumEncoder} copy, line up even when one
 * is frozen), and their shapes must match. Each weight is written in place
 * (`LayerVariable.write` / `Variable.assign`): no new model, no leak.
 *
 * @param target - the momentum model (see {@link cloneAsMomentumEncoder}), or an array of variables.
 * @param online - the trained model of the same architecture, or an array of variables.
 * @param momentum - m in [0, 1]: 1 leaves the target, 0 copies the online weights (SimSiam's
 *   degenerate case). MoCo 0.999, BYOL 0.996 rising to 1 (`cosineMomentum`).
 * @param options - `buffers` ('ignore').
 * @throws {@link ContrastiveError} when the architectures do not match, a target weight cannot be
 *   written (neither `write` nor `assign`; checked before anything is written), or m is outside
 *   [0, 1].
 *
 * @example
 * <!-- snippet setup="online step" -->
 * ```ts
 * import { cloneAsMomentumEncoder, cosineMomentum, emaUpdate } from 'tfjs-contrastive';
 *
 * // online: the network being trained (a tfjs-layers model)
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
  const t = weightsOf('target', target).map((w) => w.weight);
  const o = weightsOf('online', online);
  checkPairs(
    t,
    o.map((w) => w.weight),
  );
  const mix = (a: unknown, b: unknown, m: number): void => {
    tf.tidy(() => {
      writeTo(
        a,
        m === 0 ? tf.clone(readOf(b)) : tf.add(tf.mul(readOf(a), m), tf.mul(readOf(b), 1 - m)),
      );
    });
  };
  t.forEach((w, i) => {
    const { weight, buffer } = o[i] as ClassifiedWeight;
    if (!buffer) mix(w, weight, momentum);
    else if (buffers === 'copy') mix(w, weight, 0);
    else if (buffers === 'ema') mix(w, weight, momentum);
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
 * import { cloneAsMomentumEncoder } from 'tfjs-contrastive';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * const queryEncoder = smallConvNet({ inputShape: [32, 32, 3], seed: 1 });
 * const keyEncoder = cloneAsMomentumEncoder(queryEncoder); // MoCo: same weights, frozen
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
