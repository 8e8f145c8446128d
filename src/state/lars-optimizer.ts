import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError, checkNumber, describeValue } from '../core/index.js';

/** Options of {@link lars}. */
export interface LarsOptions {
  /** The learning rate (set per step for a schedule with `setLearningRate`). */
  readonly learningRate: number;
  /** Momentum. Default `0.9`. */
  readonly momentum?: number;
  /** Weight decay, added to the gradient of adapted variables. Default `1e-6` (SimCLR). */
  readonly weightDecay?: number;
  /** Trust coefficient eta. Default `0.001`. */
  readonly eta?: number;
  /**
   * Variables whose name matches are excluded from adaptation and weight decay: plain momentum
   * SGD. Default: biases and batch-norm parameters, `/bias|beta|gamma|batch_?norm|(^|[/_])bn/i`,
   * as SimCLR and BYOL exclude them.
   */
  readonly exclude?: RegExp | string;
}

/** A named tensor, as tfjs optimisers save their state. */
export interface NamedTensor {
  /** The name (`<variable>/momentum`, or `iter` for the iteration count). */
  name: string;
  /** The value. */
  tensor: tf.Tensor;
}

const DEFAULT_EXCLUDE = '(bias|beta|gamma|batch_?norm|(^|[/_])bn)';

/**
 * The LARS optimiser (You, Gitman and Ginsburg 2017), as SimCLR, BYOL and SwAV train with it.
 * For each variable w with gradient g: unless excluded, `g' = g + weightDecay w` and
 * `u = eta ||w|| / ||g'|| g'` (trust ratio 1 when either norm is 0); excluded variables use
 * `u = g`. Then `v <- momentum v + lr u` and `w <- w - v` (the learning rate inside the momentum, as
 * in SimCLR's implementation).
 *
 * A tfjs `Optimizer`: use it with `optimizer.minimize` or `model.compile`. Momentum slots are
 * saved and restored by `getWeights` / `setWeights`, keyed by variable name, so training resumes
 * exactly; `getConfig` / `fromConfig` serialise it (call {@link registerLarsOptimizer} once before
 * loading a model saved with it).
 *
 * @example
 * <!-- snippet setup="objective step" -->
 * ```ts
 * import { lars, warmupCosineLearningRate } from 'tfjs-contrastive';
 *
 * const optimizer = lars({ learningRate: 0.3 });
 * const lr = warmupCosineLearningRate({ baseLearningRate: 0.3, warmupSteps: 100, totalSteps: 1000 });
 * optimizer.setLearningRate(lr(step));
 * optimizer.minimize(() => loss());
 * ```
 */
export class LARSOptimizer extends tf.Optimizer {
  /** The serialisation name. */
  static get className(): string {
    return 'tfjsContrastive>LARS';
  }

  /** Current learning rate. */
  learningRate: number;
  /** Momentum. */
  readonly momentum: number;
  /** Weight decay. */
  readonly weightDecay: number;
  /** Trust coefficient. */
  readonly eta: number;
  /** Names matching this are excluded from adaptation and decay. */
  readonly exclude: RegExp;
  private readonly slots = new Map<string, tf.Variable>();

  /**
   * @param options - see {@link LarsOptions}.
   * @throws {@link ContrastiveError} on a non-positive learning rate or an option out of range.
   */
  constructor(options: LarsOptions) {
    super();
    const caller = 'lars';
    const o = options as Partial<LarsOptions> | undefined;
    if (typeof o !== 'object') {
      throw new ContrastiveError({
        caller,
        argument: 'options',
        expected: 'an options object',
        received: describeValue(options),
      });
    }
    checkNumber(caller, 'options.learningRate', o.learningRate, { greaterThan: 0 });
    const momentum = o.momentum ?? 0.9;
    const weightDecay = o.weightDecay ?? 1e-6;
    const eta = o.eta ?? 0.001;
    checkNumber(caller, 'options.momentum', momentum, { min: 0, lessThan: 1 });
    checkNumber(caller, 'options.weightDecay', weightDecay, { min: 0 });
    checkNumber(caller, 'options.eta', eta, { greaterThan: 0 });
    const exclude = o.exclude ?? DEFAULT_EXCLUDE;
    this.learningRate = o.learningRate;
    this.momentum = momentum;
    this.weightDecay = weightDecay;
    this.eta = eta;
    this.exclude = typeof exclude === 'string' ? new RegExp(exclude, 'i') : exclude;
  }

  /**
   * Sets the learning rate for the next steps (for schedules).
   *
   * @param learningRate - the new rate, > 0.
   * @throws {@link ContrastiveError} when it is not positive.
   *
   * @example
   * <!-- snippet setup="lars step" -->
   * ```ts
   * optimizer.setLearningRate(lr(step));
   * ```
   */
  setLearningRate(learningRate: number): void {
    checkNumber('LARSOptimizer.setLearningRate', 'learningRate', learningRate, { greaterThan: 0 });
    this.learningRate = learningRate;
  }

  /**
   * Applies one LARS step (called by `minimize`).
   *
   * @param variableGradients - gradients by variable name.
   *
   * @example
   * <!-- snippet setup="lars" -->
   * ```ts
   * import * as tf from '@tensorflow/tfjs-core';
   * // f: () => tf.Scalar, a loss of trainable variables
   * tf.tidy(() => optimizer.applyGradients(tf.variableGrads(f).grads));
   * ```
   */
  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const entries: [string, tf.Tensor][] = Array.isArray(variableGradients)
      ? variableGradients.map((g) => [g.name, g.tensor])
      : Object.entries(variableGradients);
    const registry = tf.engine().registeredVariables;
    for (const [name, gradient] of entries) {
      const w = registry[name];
      if (w === undefined) continue;
      let slot = this.slots.get(name);
      if (slot === undefined) {
        slot = tf.tidy(() => tf.variable(tf.zerosLike(w), false));
        this.slots.set(name, slot);
      }
      const v = slot;
      tf.tidy(() => {
        let update: tf.Tensor = gradient;
        if (!this.exclude.test(name)) {
          const decayed = tf.add(gradient, tf.mul(w, this.weightDecay));
          const wn = tf.norm(w);
          const gn = tf.norm(decayed);
          const usable = tf.logicalAnd(tf.greater(wn, 0), tf.greater(gn, 0));
          const trust = tf.where(
            usable,
            tf.div(tf.mul(wn, this.eta), tf.maximum(gn, 1e-30)),
            tf.onesLike(wn),
          );
          update = tf.mul(decayed, trust);
        }
        const next = tf.add(tf.mul(v, this.momentum), tf.mul(update, this.learningRate));
        v.assign(next);
        w.assign(tf.sub(w, next));
      });
    }
    this.incrementIterations();
  }

  /**
   * The iteration count and the momentum slots, for a checkpoint.
   *
   * @returns named tensors (`<variable>/momentum`).
   *
   * @example
   * <!-- snippet setup="lars" -->
   * ```ts
   * const state = await optimizer.getWeights();
   * ```
   */
  override async getWeights(): Promise<NamedTensor[]> {
    const slots = [...this.slots.entries()].map(([name, tensor]) => ({
      name: `${name}/momentum`,
      tensor,
    }));
    return [await this.saveIterations(), ...slots];
  }

  /**
   * Restores what {@link LARSOptimizer.getWeights} saved.
   *
   * @param weightValues - the saved named tensors.
   *
   * @example
   * <!-- snippet setup="lars" -->
   * ```ts
   * import { lars } from 'tfjs-contrastive';
   * const state = await optimizer.getWeights(); // e.g. saved with a checkpoint
   * const resumed = lars({ learningRate: 0.3 }); // in the resumed run
   * await resumed.setWeights(state);
   * ```
   */
  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const rest = await this.extractIterations(weightValues);
    // The new slots first: the saved tensors may be this optimiser's own slots (getWeights hands
    // them out), which must not be freed before they are copied.
    const next = rest.map(
      ({ name, tensor }) => [name.replace(/\/momentum$/, ''), tf.variable(tensor, false)] as const,
    );
    for (const s of this.slots.values()) s.dispose();
    this.slots.clear();
    for (const [name, slot] of next) this.slots.set(name, slot);
  }

  /**
   * Frees the momentum slots.
   *
   * @example
   * <!-- snippet setup="lars" -->
   * ```ts
   * optimizer.dispose();
   * ```
   */
  override dispose(): void {
    for (const s of this.slots.values()) s.dispose();
    this.slots.clear();
  }

  /**
   * The serialisable configuration.
   *
   * @returns learning rate, momentum, weight decay, eta and the exclusion pattern.
   *
   * @example
   * <!-- snippet setup="lars" -->
   * ```ts
   * const config = optimizer.getConfig();
   * ```
   */
  override getConfig(): tf.serialization.ConfigDict {
    return {
      learningRate: this.learningRate,
      momentum: this.momentum,
      weightDecay: this.weightDecay,
      eta: this.eta,
      exclude: this.exclude.source,
    };
  }

  /**
   * Rebuilds an optimiser from {@link LARSOptimizer.getConfig}'s output.
   *
   * @param cls - the class (tfjs's serialisation passes it).
   * @param config - the configuration.
   * @returns a new LARSOptimizer.
   *
   * @example
   * <!-- snippet setup="lars" -->
   * ```ts
   * import { LARSOptimizer } from 'tfjs-contrastive';
   * const copy = LARSOptimizer.fromConfig(LARSOptimizer, optimizer.getConfig());
   * ```
   */
  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    return new cls(config);
  }
}

/**
 * The LARS optimiser; see {@link LARSOptimizer}.
 *
 * @param options - `learningRate` (required), `momentum` (0.9), `weightDecay` (1e-6), `eta`
 *   (0.001), `exclude` (biases and batch-norm parameters).
 * @returns a new optimiser; dispose it when done.
 * @throws {@link ContrastiveError} on an option out of range.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { lars } from 'tfjs-contrastive';
 *
 * const batchSize = 256;
 * const model = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [32], units: 10 })] });
 * model.compile({ optimizer: lars({ learningRate: (0.3 * batchSize) / 256 }), loss: 'meanSquaredError' });
 * ```
 */
export function lars(options: LarsOptions): LARSOptimizer {
  return new LARSOptimizer(options);
}

/**
 * Registers {@link LARSOptimizer} with tfjs's serialisation registry, so that models compiled with
 * it can be saved and loaded with their optimiser. Not done at import time (the library has no
 * import side effects).
 *
 * @example
 * ```ts
 * import { registerLarsOptimizer } from 'tfjs-contrastive';
 *
 * registerLarsOptimizer();
 * ```
 */
export function registerLarsOptimizer(): void {
  tf.serialization.registerClass(LARSOptimizer);
}
