import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { checkBoolean, checkNumber } from '../core/checks.js';
import { l2Normalize } from '../core/l2-normalize.js';
import {
  type BaseLayerArgs,
  CLASS_PREFIX,
  defaultName,
  knownWidth,
  withWidth,
  linearInit,
  single,
  trainableFromStep,
  freezeAndSeed,
  freezeAndSeedConfig,
  keepFrozen,
} from './base.js';

/** Options of {@link WeightNormDense}. */
export interface WeightNormDenseArgs extends BaseLayerArgs {
  /** Output units (DINO: `outDim`, 65536). */
  readonly units: number;
  /**
   * Whether the per-unit gain g is a trainable weight. Default `false`: g is fixed at 1 (DINO's
   * `norm_last_layer=True`), so each output is a cosine-like product with a unit-norm column.
   * When `true`, g starts at the norm of the initial column, as in `torch.nn.utils.weight_norm`.
   */
  readonly trainableGain?: boolean;
  /** Add a bias. Default `false` (DINO's last layer has none). */
  readonly useBias?: boolean;
  /** Steps during which the layer stays frozen (see {@link WeightNormDense.setStep}). Default 0. */
  readonly freezeSteps?: number;
  /** Seed of the initial directions, U(-1/sqrt(in), 1/sqrt(in)) as PyTorch's nn.Linear. */
  readonly seed?: number;
}

/**
 * A dense layer with weight normalisation per output unit: `y = x (v / ||v||) g (+ b)`, where each
 * column of v ([in, units]) is divided by its norm. DINO's last layer, with g fixed at 1 by
 * default. Weights: `kernel` (v), `gain` (g, only when trainable), `bias` (only with `useBias`).
 *
 * DINO freezes this layer for the first epoch; call {@link WeightNormDense.setStep} each step with
 * `freezeSteps` set, or toggle `trainable` yourself.
 *
 * @example
 * ```ts
 * import { WeightNormDense } from 'tfjs-contrastive/layers';
 * const last = new WeightNormDense({ units: 65536, freezeSteps: 1250 });
 * ```
 */
export class WeightNormDense extends tfl.layers.Layer {
  /** The registered class name. */
  static readonly className = `${CLASS_PREFIX}WeightNormDense`;
  /** Output units. */
  readonly units: number;
  /** Whether the gain g is a trainable weight (else fixed at 1). */
  readonly trainableGain: boolean;
  /** Whether the layer adds a bias. */
  readonly useBias: boolean;
  /** Steps during which {@link WeightNormDense.setStep} keeps the layer frozen. */
  readonly freezeSteps: number;
  /** Seed of the initial directions, if given. */
  readonly seed: number | undefined;
  private kernel?: tfl.LayerVariable;
  private gain?: tfl.LayerVariable;
  private bias?: tfl.LayerVariable;

  /**
   * Creates the layer; weights are made when it is first applied.
   *
   * @param args - units, gain, bias, freezing, seed and the usual layer arguments.
   */
  constructor(args: WeightNormDenseArgs) {
    super({ ...args, name: args.name ?? defaultName('weight_norm_dense') });
    const caller = 'WeightNormDense';
    checkNumber(caller, 'args.units', args.units, { integer: true, min: 1 });
    this.units = args.units;
    this.trainableGain = args.trainableGain ?? false;
    checkBoolean(caller, 'args.trainableGain', this.trainableGain);
    this.useBias = args.useBias ?? false;
    checkBoolean(caller, 'args.useBias', this.useBias);
    ({ freezeSteps: this.freezeSteps, seed: this.seed } = freezeAndSeed(caller, args, 0));
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const fanIn = knownWidth('WeightNormDense', inputShape);
    this.kernel = this.addWeight(
      'kernel',
      [fanIn, this.units],
      'float32',
      linearInit(fanIn, this.seed),
    );
    if (this.trainableGain) {
      this.gain = this.addWeight('gain', [this.units], 'float32', tfl.initializers.ones());
      // torch.nn.utils.weight_norm starts g at ||v||, so that the initial weight is v itself.
      const v = this.kernel.read();
      const norms = tf.tidy(() => tf.norm(v, 'euclidean', 0));
      this.gain.write(norms);
      norms.dispose();
    }
    if (this.useBias) {
      this.bias = this.addWeight('bias', [this.units], 'float32', tfl.initializers.zeros());
    }
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return withWidth(inputShape, this.units);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    keepFrozen(this);
    return tf.tidy(() => {
      const x = single(inputs);
      if (this.kernel === undefined) throw new Error('tfjs-contrastive: WeightNormDense not built');
      let w = l2Normalize(this.kernel.read(), 0);
      if (this.gain !== undefined) w = tf.mul(w, this.gain.read());
      const flat = tf.reshape(x, [-1, x.shape[x.rank - 1] ?? 1]);
      let y: tf.Tensor = tf.matMul(flat, w);
      if (this.bias !== undefined) y = tf.add(y, this.bias.read());
      return tf.reshape(y, [...x.shape.slice(0, -1), this.units]);
    });
  }

  /**
   * Freezes the layer while `step < freezeSteps` and unfreezes it after; returns whether it is
   * trainable now. Call once per training step.
   */
  setStep(step: number): boolean {
    checkNumber('WeightNormDense.setStep', 'step', step, { integer: true, min: 0 });
    return trainableFromStep(this, step, this.freezeSteps);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      units: this.units,
      trainableGain: this.trainableGain,
      useBias: this.useBias,
      ...freezeAndSeedConfig(this),
    };
  }
}
