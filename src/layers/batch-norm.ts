import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { checkBoolean, checkNumber } from '../core/checks.js';
import { ContrastiveError } from '../core/errors.js';
import { type BaseLayerArgs, CLASS_PREFIX, defaultName, knownWidth, single } from './base.js';

/** Options of {@link BatchNorm}. */
export interface BatchNormArgs extends BaseLayerArgs {
  /**
   * Weight of the new batch's statistics in the running averages, PyTorch's convention:
   * `running = (1 - momentum) running + momentum batch`. Default 0.1. (tfjs-layers'
   * `batchNormalization` counts the other way: its `momentum: 0.9` is this 0.1.)
   */
  readonly momentum?: number;
  /** Added to the variance. Default 1e-5 (PyTorch's). */
  readonly epsilon?: number;
  /** Learn an offset (beta). Default `true`. */
  readonly center?: boolean;
  /** Learn a gain (gamma). Default `true`. */
  readonly scale?: boolean;
}

/**
 * Batch normalisation of features (the last axis) with PyTorch's `BatchNorm1d` semantics, as the
 * heads of SimCLR, MoCo v3, BYOL and SimSiam use it. In training the batch's mean and biased
 * variance normalise it and the running averages take the unbiased variance; outside training
 * the running averages normalise. `center: false` / `scale: false` drop beta / gamma.
 *
 * tfjs-layers 4.22's `batchNormalization` fails in training when `center` or `scale` is false
 * (it reads the missing weight), which every "BN without affine" head needs; this layer is the
 * replacement. Weights: `gamma`, `beta` (when learned), `moving_mean`, `moving_variance`
 * (not trainable).
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { BatchNorm } from 'tfjs-contrastive/layers';
 * // MoCo v3's last projector layer: dense without bias, BN without affine parameters.
 * const last = tfl.sequential({
 *   layers: [
 *     tfl.layers.dense({ inputShape: [4096], units: 256, useBias: false }),
 *     new BatchNorm({ center: false, scale: false }),
 *   ],
 * });
 * ```
 */
export class BatchNorm extends tfl.layers.Layer {
  /** The registered class name. */
  static readonly className = `${CLASS_PREFIX}BatchNorm`;
  /** Weight of a new batch in the running averages (PyTorch's convention). */
  readonly momentum: number;
  /** Added to the variance. */
  readonly epsilon: number;
  /** Whether the layer learns an offset. */
  readonly center: boolean;
  /** Whether the layer learns a gain. */
  readonly scale: boolean;
  private gamma?: tfl.LayerVariable;
  private beta?: tfl.LayerVariable;
  private movingMean?: tfl.LayerVariable;
  private movingVariance?: tfl.LayerVariable;

  /**
   * Creates the layer; weights are made when it is first applied.
   *
   * @param args - momentum, epsilon, center, scale and the usual layer arguments.
   */
  constructor(args: BatchNormArgs = {}) {
    super({ ...args, name: args.name ?? defaultName('batch_norm') });
    const caller = 'BatchNorm';
    this.momentum = args.momentum ?? 0.1;
    checkNumber(caller, 'args.momentum', this.momentum, { min: 0, max: 1 });
    this.epsilon = args.epsilon ?? 1e-5;
    checkNumber(caller, 'args.epsilon', this.epsilon, { greaterThan: 0 });
    this.center = args.center ?? true;
    checkBoolean(caller, 'args.center', this.center);
    this.scale = args.scale ?? true;
    checkBoolean(caller, 'args.scale', this.scale);
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const width = knownWidth('BatchNorm', inputShape);
    if (this.scale)
      this.gamma = this.addWeight('gamma', [width], 'float32', tfl.initializers.ones());
    if (this.center)
      this.beta = this.addWeight('beta', [width], 'float32', tfl.initializers.zeros());
    // Running statistics: mean from 0, variance from 1, not trainable.
    const running = (name: string, start: 0 | 1): tfl.LayerVariable =>
      this.addWeight(
        name,
        [width],
        'float32',
        start === 0 ? tfl.initializers.zeros() : tfl.initializers.ones(),
        undefined,
        false,
      );
    this.movingMean = running('moving_mean', 0);
    this.movingVariance = running('moving_variance', 1);
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    return inputShape;
  }

  override call(
    inputs: tf.Tensor | tf.Tensor[],
    kwargs: Parameters<tfl.layers.Layer['call']>[1],
  ): tf.Tensor {
    const x = single(inputs);
    const { movingMean, movingVariance } = this;
    if (movingMean === undefined || movingVariance === undefined) {
      throw new Error('tfjs-contrastive: BatchNorm not built');
    }
    const training = kwargs['training'] === true;
    return tf.tidy(() => {
      let mean: tf.Tensor = movingMean.read();
      let variance: tf.Tensor = movingVariance.read();
      if (training) {
        const width = x.shape[x.rank - 1] ?? 1;
        const n = x.size / width;
        if (n < 2) {
          throw new ContrastiveError({
            caller: 'BatchNorm',
            argument: 'inputs',
            expected: 'at least 2 samples per feature in training (a batch variance)',
            received: `shape [${x.shape.join(', ')}]`,
          });
        }
        const moments = tf.moments(tf.reshape(x, [n, width]), 0);
        mean = moments.mean;
        variance = moments.variance;
        // The running averages never reach the loss: no gradient flows through these writes.
        const m = this.momentum;
        movingMean.write(tf.add(tf.mul(movingMean.read(), 1 - m), tf.mul(mean, m)));
        movingVariance.write(
          tf.add(tf.mul(movingVariance.read(), 1 - m), tf.mul(variance, (m * n) / (n - 1))),
        );
      }
      let y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.epsilon)));
      if (this.gamma !== undefined) y = tf.mul(y, this.gamma.read());
      if (this.beta !== undefined) y = tf.add(y, this.beta.read());
      return y;
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      momentum: this.momentum,
      epsilon: this.epsilon,
      center: this.center,
      scale: this.scale,
    };
  }
}
