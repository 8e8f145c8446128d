import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { checkBoolean, checkNumber } from '../core/checks.js';
import { ContrastiveError } from '../core/errors.js';
import { type FusedBatchNorm, fusedBatchNorm } from '../core/kernels/batch-norm.js';
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
      if (!training) {
        let y = tf.mul(
          tf.sub(x, movingMean.read()),
          tf.rsqrt(tf.add(movingVariance.read(), this.epsilon)),
        );
        if (this.gamma !== undefined) y = tf.mul(y, this.gamma.read());
        if (this.beta !== undefined) y = tf.add(y, this.beta.read());
        return y;
      }
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
      const { y, mean, variance } = normalizeInTraining(
        tf.reshape(x, [n, width]),
        this.gamma?.read(),
        this.beta?.read(),
        this.epsilon,
      );
      // The running averages never reach the loss: no gradient flows through these writes.
      const m = this.momentum;
      movingMean.write(tf.add(tf.mul(movingMean.read(), 1 - m), tf.mul(mean, m)));
      movingVariance.write(
        tf.add(tf.mul(movingVariance.read(), 1 - m), tf.mul(variance, (m * n) / (n - 1))),
      );
      return tf.reshape(y, x.shape);
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

/**
 * Training-mode batch normalisation of x [n, C] over its rows, with the gradient written out in
 * closed form. Left to autodiff, the mean, the variance and the normalisation cost tfjs about
 * twenty full passes over x backwards (broadcasts, reductions and products for each of them),
 * which made batch norm about 40% of a conv-net training step on wasm; the closed form is two
 * reductions and four elementwise passes:
 *
 *   x_hat = (x - mean) r, r = 1 / sqrt(var + eps), y = gamma x_hat + beta
 *   dbeta = sum(dy), dgamma = sum(dy x_hat)
 *   dx = gamma r (dy - dbeta / n - x_hat dgamma / n)
 *
 * (Ioffe and Szegedy 2015, section 3). The mean and the biased variance come back for the running
 * averages; the op's tape node has only x, gamma and beta as inputs, so nothing differentiates
 * through them.
 */
function normalizeInTraining(
  x: tf.Tensor2D,
  gamma: tf.Tensor | undefined,
  beta: tf.Tensor | undefined,
  epsilon: number,
): { y: tf.Tensor2D; mean: tf.Tensor; variance: tf.Tensor } {
  const [n, c] = x.shape;
  const mean = tf.mean(x, 0);
  // On wasm each pass is one SIMD kernel of the library's (core/kernels/simd.wat).
  const passes = batchNormPasses(x, mean, fusedBatchNorm(c));
  const variance = passes.variance();
  const r = tf.rsqrt(tf.add(variance, epsilon));
  const scale = gamma === undefined ? r : tf.mul(gamma, r);
  const params = [gamma, beta].filter((p): p is tf.Tensor => p !== undefined);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    save([...passes.saved, r, scale]);
    return {
      value: passes.normalize(scale, beta),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const k = passes.saved.length;
        const kept = saved.slice(0, k);
        const rs = saved[k] as tf.Tensor;
        const s = saved[k + 1] as tf.Tensor;
        const { dBeta, dyCentred } = passes.gradSums(dy, kept);
        // dx = s dy + (x - mean) (-s r^2 dyCentred / n) + (-s dBeta / n): per-column factors
        // on [C], then one pass over the full-size operands.
        const onCentred = tf.mul(tf.mul(s, tf.square(rs)), tf.mul(dyCentred, -1 / n));
        const offset = tf.mul(s, tf.mul(dBeta, -1 / n));
        const grads = [passes.inputGrad(dy, kept, s, onCentred, offset)];
        if (gamma !== undefined) grads.push(tf.mul(dyCentred, rs));
        if (beta !== undefined) grads.push(dBeta);
        return grads;
      },
    };
  });
  const y = op(x, ...params) as tf.Tensor2D;
  return { y, mean, variance };
}

/** Batch norm's full-size passes over x [n, C], by tfjs ops or by the fused kernels. */
interface BatchNormPasses {
  /** The biased variance of x about its mean. */
  variance(): tf.Tensor;
  /** What the backward pass needs of x, saved with the op. */
  readonly saved: readonly tf.Tensor[];
  /** (x - mean) scale + shift (no shift when undefined). */
  normalize(scale: tf.Tensor, shift: tf.Tensor | undefined): tf.Tensor;
  /** The column sums of dy and of dy (x - mean), from the saved tensors. */
  gradSums(dy: tf.Tensor, saved: tf.Tensor[]): { dBeta: tf.Tensor; dyCentred: tf.Tensor };
  /** dy s + (x - mean) b + o. */
  inputGrad(dy: tf.Tensor, saved: tf.Tensor[], s: tf.Tensor, b: tf.Tensor, o: tf.Tensor): tf.Tensor;
}

function batchNormPasses(
  x: tf.Tensor2D,
  mean: tf.Tensor,
  fused: FusedBatchNorm | undefined,
): BatchNormPasses {
  const part = (saved: tf.Tensor[], i: number): tf.Tensor => saved[i] as tf.Tensor;
  if (fused !== undefined) {
    // x and its mean are kept; each pass recomputes x - mean on the fly.
    return {
      variance: () => fused.centredSquares(x, mean),
      saved: [x, mean],
      normalize: (scale, shift) =>
        fused.centredAffine(x, mean, scale, shift ?? tf.zerosLike(scale)),
      gradSums: (dy, saved) => {
        const [dBeta, dyCentred] = tf.unstack(fused.gradSums(dy, part(saved, 0), part(saved, 1)));
        return { dBeta: dBeta as tf.Tensor, dyCentred: dyCentred as tf.Tensor };
      },
      inputGrad: (dy, saved, s, b, o) =>
        fused.inputGrad(dy, part(saved, 0), part(saved, 1), s, b, o),
    };
  }
  const centred = tf.sub(x, mean);
  return {
    variance: () => tf.mean(tf.square(centred), 0),
    saved: [centred],
    normalize: (scale, shift) =>
      shift === undefined ? tf.mul(centred, scale) : tf.add(tf.mul(centred, scale), shift),
    // sum(dy x_hat) = r sum(dy (x - mean)).
    gradSums: (dy, saved) => ({
      dBeta: tf.sum(dy, 0),
      dyCentred: tf.sum(tf.mul(dy, part(saved, 0)), 0),
    }),
    inputGrad: (dy, saved, s, b, o) => tf.add(tf.add(tf.mul(dy, s), tf.mul(part(saved, 0), b)), o),
  };
}
