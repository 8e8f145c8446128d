import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { checkNumber } from '../core/checks.js';
import { l2Normalize } from '../core/l2-normalize.js';
import { type BaseLayerArgs, CLASS_PREFIX, defaultName, single } from './base.js';

/** Options of {@link L2Normalize}. */
export interface L2NormalizeArgs extends BaseLayerArgs {
  /** Floor of the norm, so that a zero row stays finite. Default `1e-12` (PyTorch's `normalize`). */
  readonly epsilon?: number;
}

/**
 * A layer that scales each row (the last axis) to unit L2 norm: `x / max(||x||, epsilon)`. No
 * weights. Used in DINO's head before the weight-normalised last layer and in SwAV before the
 * prototypes.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { L2Normalize } from 'tfjs-contrastive/layers';
 * const model = tfl.sequential({ layers: [tfl.layers.dense({ units: 128, inputShape: [512] }), new L2Normalize()] });
 * ```
 */
export class L2Normalize extends tfl.layers.Layer {
  /** The registered class name. */
  static readonly className = `${CLASS_PREFIX}L2Normalize`;
  /** Floor of the norm. */
  readonly epsilon: number;

  /**
   * Creates the layer; weights are made when it is first applied.
   *
   * @param args - `epsilon` and the usual layer arguments (name, ...).
   */
  constructor(args: L2NormalizeArgs = {}) {
    super({ ...args, name: args.name ?? defaultName('l2_normalize') });
    this.epsilon = args.epsilon ?? 1e-12;
    checkNumber('L2Normalize', 'args.epsilon', this.epsilon, { greaterThan: 0 });
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return l2Normalize(single(inputs), -1, this.epsilon);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), epsilon: this.epsilon };
  }
}
