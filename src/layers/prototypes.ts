import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { checkNumber } from '../core/checks.js';
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

/** Options of {@link Prototypes}. */
export interface PrototypesArgs extends BaseLayerArgs {
  /** The number of prototypes K. Default 3000 (SwAV on ImageNet). */
  readonly count?: number;
  /** Steps during which the prototypes stay frozen. Default 313 (SwAV's `freeze_prototypes_niters`). */
  readonly freezeSteps?: number;
  /** Seed of the initial prototypes, U(-1/sqrt(D), 1/sqrt(D)) as PyTorch's nn.Linear. */
  readonly seed?: number;
}

/**
 * SwAV's prototypes: a dense layer without bias, `scores = z C` with C of shape [D, K] (one
 * prototype per column; PyTorch stores them as rows of a [K, D] weight). Feed it L2-normalised
 * features. After each optimiser step call {@link Prototypes.normalize} (SwAV re-normalises every
 * prototype to unit length each iteration) and {@link Prototypes.setStep} (frozen for the first
 * `freezeSteps` steps).
 *
 * @example
 * <!-- snippet setup="step" -->
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { L2Normalize, Prototypes } from 'tfjs-contrastive/layers';
 * const prototypes = new Prototypes({ count: 3000 });
 * // scores [batch, 3000] of unit features [batch, 128]
 * const scores = tfl.sequential({ layers: [new L2Normalize({ inputShape: [128] }), prototypes] });
 * // each step: loss, optimiser, then
 * prototypes.normalize();
 * prototypes.setStep(step);
 * ```
 */
export class Prototypes extends tfl.layers.Layer {
  /** The registered class name. */
  static readonly className = `${CLASS_PREFIX}Prototypes`;
  /** The number of prototypes K. */
  readonly count: number;
  /** Steps during which {@link Prototypes.setStep} keeps the prototypes frozen. */
  readonly freezeSteps: number;
  /** Seed of the initial prototypes, if given. */
  readonly seed: number | undefined;
  private kernel?: tfl.LayerVariable;

  /**
   * Creates the layer; weights are made when it is first applied.
   *
   * @param args - count, freezing, seed and the usual layer arguments.
   */
  constructor(args: PrototypesArgs = {}) {
    super({ ...args, name: args.name ?? defaultName('prototypes') });
    const caller = 'Prototypes';
    this.count = args.count ?? 3000;
    checkNumber(caller, 'args.count', this.count, { integer: true, min: 1 });
    ({ freezeSteps: this.freezeSteps, seed: this.seed } = freezeAndSeed(caller, args, 313));
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const d = knownWidth('Prototypes', inputShape);
    this.kernel = this.addWeight('kernel', [d, this.count], 'float32', linearInit(d, this.seed));
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return withWidth(inputShape, this.count);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    keepFrozen(this);
    return tf.tidy(() => {
      if (this.kernel === undefined) throw new Error('tfjs-contrastive: Prototypes not built');
      return tf.matMul(single(inputs), this.kernel.read());
    });
  }

  /** Scales every prototype (column) to unit L2 norm, in place. */
  normalize(): void {
    if (this.kernel === undefined) throw new Error('tfjs-contrastive: Prototypes not built');
    const kernel = this.kernel;
    tf.tidy(() => {
      kernel.write(l2Normalize(kernel.read(), 0));
    });
  }

  /**
   * Freezes the prototypes while `step < freezeSteps`, unfreezes them after; returns whether they
   * are trainable now.
   */
  setStep(step: number): boolean {
    checkNumber('Prototypes.setStep', 'step', step, { integer: true, min: 0 });
    return trainableFromStep(this, step, this.freezeSteps);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      count: this.count,
      ...freezeAndSeedConfig(this),
    };
  }
}
