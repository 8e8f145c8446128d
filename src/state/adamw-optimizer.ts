import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError, checkNumber, describeValue } from '../core/index.js';
import type { NamedTensor } from './lars-optimizer.js';

/** Options of {@link adamw}. */
export interface AdamWOptions {
  /** The learning rate, > 0 (set per step for a schedule with `setLearningRate`). */
  readonly learningRate: number;
  /** Decay of the first moment, in [0, 1). Default `0.9`. */
  readonly beta1?: number;
  /** Decay of the second moment, in [0, 1). Default `0.999`. */
  readonly beta2?: number;
  /** Added to the denominator, > 0. Default `1e-8` (PyTorch; tfjs's own Adam uses 1e-7). */
  readonly epsilon?: number;
  /**
   * Decoupled weight decay, >= 0: `w <- w (1 - lr weightDecay)` each step. Default `0.01`
   * (PyTorch's default); `0` makes the optimiser PyTorch's Adam without L2.
   */
  readonly weightDecay?: number;
  /**
   * Variables whose name matches get no weight decay (PyTorch: a param group with
   * `weight_decay: 0`). A string is compiled case-insensitively. Default: none excluded, as
   * `torch.optim.AdamW` on `model.parameters()` (MoCo v3). For DINO's rule use
   * `excludeVectors: true`, or a pattern over tfjs-layers' names such as `/(bias|gamma|beta)$/`.
   */
  readonly exclude?: RegExp | string | null;
  /**
   * Also exclude every variable of rank 0 or 1 (biases, layer- and batch-norm scales and shifts):
   * DINO's and timm's `param.ndim <= 1` rule. Default `false`.
   */
  readonly excludeVectors?: boolean;
}

interface AdamWSlot {
  readonly m: tf.Variable;
  readonly v: tf.Variable;
  /** This variable's own step count, as PyTorch's `state[p]['step']`. */
  step: number;
  /** The step count as a tensor for `getWeights`, written there (owned by the optimiser). */
  stepTensor?: tf.Variable;
}

const SLOT_SUFFIX = /\/(m|v|step)$/;

function compileExclude(caller: string, exclude: unknown): RegExp | null {
  if (exclude === undefined || exclude === null) return null;
  if (exclude instanceof RegExp) {
    // A global or sticky pattern keeps `lastIndex` between `test` calls and would alternate.
    return new RegExp(exclude.source, exclude.flags.replace(/[gy]/g, ''));
  }
  if (typeof exclude === 'string') {
    try {
      return new RegExp(exclude, 'i');
    } catch {
      // Reported below as a ContrastiveError.
    }
  }
  throw new ContrastiveError({
    caller,
    argument: 'options.exclude',
    expected: 'a RegExp, a valid regular-expression string or null',
    received: describeValue(exclude),
  });
}

function checkWeightDecay(caller: string, argument: string, value: unknown): number {
  checkNumber(caller, argument, value, { min: 0 });
  return value;
}

/**
 * The AdamW optimiser, Adam with decoupled weight decay (Loshchilov & Hutter 2019, "Decoupled
 * Weight Decay Regularization", ICLR), exactly as PyTorch 1.13's `torch.optim.AdamW`: for each
 * variable w with gradient g and its own step count t,
 * `w <- w (1 - lr wd)`, `m <- beta1 m + (1 - beta1) g`, `v <- beta2 v + (1 - beta2) g^2`,
 * `w <- w - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + epsilon)`.
 * The optimiser of DINO, MoCo v3 (ViT) and iBOT.
 *
 * Unlike `tf.train.adam`, the bias corrections are computed on the host in float64 from the
 * integer step count, so the whole state is each variable's step count and its two moments: a run
 * restored with `setWeights` continues bit for bit (tfjs's Adam recomputes beta^t with `pow` on
 * restore but multiplies it step by step in training). Each variable counts its own steps, as
 * PyTorch does: a variable left out of `applyGradients` (no gradient, e.g. DINO's frozen last
 * layer in the first epoch) is neither decayed nor stepped. Variables are updated one by one,
 * none with a gradient of the wrong shape.
 *
 * A tfjs `Optimizer`: use it with `optimizer.minimize`, `applyGradients` or `model.compile`.
 * `getWeights` / `setWeights` save and restore the state as `iter`, `<variable>/m`,
 * `<variable>/v` and `<variable>/step`, keyed by variable name: to restore into variables of other
 * names (a model rebuilt in the same process gets new layer names), pass the weights through
 * {@link renameOptimizerWeights}. `getConfig` / `fromConfig` serialise it (call
 * {@link registerAdamWOptimizer} once before loading a model saved with it).
 *
 * @example
 * <!-- snippet setup="objective" -->
 * ```ts
 * import { adamw, cosineSchedule, warmupCosineLearningRate } from 'tfjs-contrastive';
 *
 * // DINO: lr 5e-4 x B / 256 with warm-up, weight decay 0.04 -> 0.4, biases and norms undecayed.
 * const optimizer = adamw({ learningRate: 5e-4, weightDecay: 0.04, excludeVectors: true });
 * const lr = warmupCosineLearningRate({ baseLearningRate: 5e-4, warmupSteps: 10, totalSteps: 100 });
 * for (let step = 0; step < 100; step++) {
 *   optimizer.setLearningRate(lr(step));
 *   optimizer.setWeightDecay(cosineSchedule(step, 100, 0.04, 0.4));
 *   optimizer.minimize(() => loss());
 * }
 * ```
 */
export class AdamWOptimizer extends tf.Optimizer {
  /** The serialisation name. */
  static get className(): string {
    return 'tfjsContrastive>AdamW';
  }

  /** Decay of the first moment. */
  readonly beta1: number;
  /** Decay of the second moment. */
  readonly beta2: number;
  /** Added to the denominator. */
  readonly epsilon: number;
  /** Names matching this get no weight decay; `null`: none by name. */
  readonly exclude: RegExp | null;
  /** Whether variables of rank 0 or 1 get no weight decay. */
  readonly excludeVectors: boolean;
  private learningRateValue: number;
  private weightDecayValue: number;
  private readonly slots = new Map<string, AdamWSlot>();

  /**
   * @param options - see {@link AdamWOptions}.
   * @throws {@link ContrastiveError} on a learning rate <= 0, a beta outside [0, 1), an epsilon
   *   <= 0, a negative weight decay or an exclusion that is not a pattern.
   */
  constructor(options: AdamWOptions) {
    super();
    const caller = 'adamw';
    const o = options as Partial<AdamWOptions> | null | undefined;
    if (typeof o !== 'object' || o === null) {
      throw new ContrastiveError({
        caller,
        argument: 'options',
        expected: 'an options object',
        received: describeValue(options),
      });
    }
    checkNumber(caller, 'options.learningRate', o.learningRate, { greaterThan: 0 });
    const beta1 = o.beta1 ?? 0.9;
    const beta2 = o.beta2 ?? 0.999;
    const epsilon = o.epsilon ?? 1e-8;
    checkNumber(caller, 'options.beta1', beta1, { min: 0, lessThan: 1 });
    checkNumber(caller, 'options.beta2', beta2, { min: 0, lessThan: 1 });
    checkNumber(caller, 'options.epsilon', epsilon, { greaterThan: 0 });
    const excludeVectors = o.excludeVectors ?? false;
    if (typeof excludeVectors !== 'boolean') {
      throw new ContrastiveError({
        caller,
        argument: 'options.excludeVectors',
        expected: 'true or false',
        received: describeValue(excludeVectors),
      });
    }
    this.learningRateValue = o.learningRate;
    this.weightDecayValue = checkWeightDecay(caller, 'options.weightDecay', o.weightDecay ?? 0.01);
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.epsilon = epsilon;
    this.exclude = compileExclude(caller, o.exclude);
    this.excludeVectors = excludeVectors;
  }

  /** The learning rate of the next step (assigning it checks it as `setLearningRate` does). */
  get learningRate(): number {
    return this.learningRateValue;
  }

  /** Sets the learning rate of the next step, checked as `setLearningRate` does. */
  set learningRate(learningRate: number) {
    this.setLearningRate(learningRate);
  }

  /** The weight decay of the next step (assigning it checks it as `setWeightDecay` does). */
  get weightDecay(): number {
    return this.weightDecayValue;
  }

  /** Sets the weight decay of the next step, checked as `setWeightDecay` does. */
  set weightDecay(weightDecay: number) {
    this.setWeightDecay(weightDecay);
  }

  /**
   * Sets the learning rate for the next steps (for schedules). The decay is `lr x weightDecay`
   * per step, so it follows the learning-rate schedule too, as in PyTorch.
   *
   * @param learningRate - the new rate, > 0.
   * @throws {@link ContrastiveError} when it is not positive.
   *
   * @example
   * <!-- snippet setup="adamw step" -->
   * ```ts
   * optimizer.setLearningRate(lr(step));
   * ```
   */
  setLearningRate(learningRate: number): void {
    checkNumber('AdamWOptimizer.setLearningRate', 'learningRate', learningRate, {
      greaterThan: 0,
    });
    this.learningRateValue = learningRate;
  }

  /**
   * Sets the weight decay for the next steps (DINO's cosine schedule 0.04 -> 0.4). Excluded
   * variables stay undecayed.
   *
   * @param weightDecay - the new decay, >= 0.
   * @throws {@link ContrastiveError} when it is negative or not finite.
   *
   * @example
   * <!-- snippet setup="adamw step" -->
   * ```ts
   * import { cosineSchedule } from 'tfjs-contrastive';
   * optimizer.setWeightDecay(cosineSchedule(step, totalSteps, 0.04, 0.4));
   * ```
   */
  setWeightDecay(weightDecay: number): void {
    this.weightDecayValue = checkWeightDecay(
      'AdamWOptimizer.setWeightDecay',
      'weightDecay',
      weightDecay,
    );
  }

  /**
   * Whether a variable is excluded from weight decay (by name, or by rank with `excludeVectors`).
   *
   * @param variable - the variable.
   * @returns true when it gets no weight decay.
   *
   * @example
   * ```ts
   * import * as tf from '@tensorflow/tfjs-core';
   * import { adamw } from 'tfjs-contrastive';
   * adamw({ learningRate: 1e-3, excludeVectors: true }).isExcluded(tf.variable(tf.zeros([8]))); // true
   * ```
   */
  isExcluded(variable: tf.Variable): boolean {
    return (
      (this.excludeVectors && variable.rank <= 1) ||
      (this.exclude !== null && this.exclude.test(variable.name))
    );
  }

  /**
   * Applies one AdamW step to every variable named in `variableGradients` (called by
   * `minimize`). Names that are not registered variables, and missing gradients, are skipped.
   *
   * @param variableGradients - gradients by variable name.
   * @throws {@link ContrastiveError} when a gradient's shape differs from its variable's, or a
   *   restored slot's shape does.
   *
   * @example
   * <!-- snippet setup="adamw" -->
   * ```ts
   * import * as tf from '@tensorflow/tfjs-core';
   * // f: () => tf.Scalar, a loss of trainable variables
   * tf.tidy(() => optimizer.applyGradients(tf.variableGrads(f).grads));
   * ```
   */
  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const caller = 'AdamWOptimizer.applyGradients';
    const entries: [string, tf.Tensor | undefined][] = Array.isArray(variableGradients)
      ? variableGradients.map((g) => [g.name, g.tensor as tf.Tensor | undefined])
      : Object.entries(variableGradients);
    const registry = tf.engine().registeredVariables;
    const lr = this.learningRateValue;
    const { beta1, beta2, epsilon } = this;
    for (const [name, gradient] of entries) {
      const w = registry[name];
      if (w === undefined || gradient == null) continue;
      if (gradient.shape.join() !== w.shape.join()) {
        throw new ContrastiveError({
          caller,
          argument: `variableGradients['${name}']`,
          expected: `a gradient of the variable's shape [${w.shape.join(', ')}]`,
          received: describeValue(gradient),
        });
      }
      const slot = this.slotFor(caller, name, w);
      slot.step += 1;
      // Host float64, from the integer count: nothing accumulates, so a restore is exact.
      const stepSize = lr / (1 - beta1 ** slot.step);
      const bc2Sqrt = Math.sqrt(1 - beta2 ** slot.step);
      const decay = this.isExcluded(w) ? 0 : this.weightDecayValue;
      tf.tidy(() => {
        const m = tf.add(tf.mul(slot.m, beta1), tf.mul(gradient, 1 - beta1));
        const v = tf.add(tf.mul(slot.v, beta2), tf.mul(tf.square(gradient), 1 - beta2));
        const denom = tf.add(tf.div(tf.sqrt(v), bc2Sqrt), epsilon);
        // PyTorch decays first (param.mul_(1 - lr wd)), then adds the Adam step.
        const decayed = decay > 0 ? tf.mul(w, 1 - lr * decay) : w;
        slot.m.assign(m);
        slot.v.assign(v);
        w.assign(tf.sub(decayed, tf.mul(tf.div(m, denom), stepSize)));
      });
    }
    this.incrementIterations();
  }

  private slotFor(caller: string, name: string, w: tf.Variable): AdamWSlot {
    let slot = this.slots.get(name);
    if (slot === undefined) {
      slot = tf.tidy(() => ({
        m: tf.variable(tf.zerosLike(w), false),
        v: tf.variable(tf.zerosLike(w), false),
        step: 0,
      }));
      this.slots.set(name, slot);
    } else if (slot.m.shape.join() !== w.shape.join()) {
      throw new ContrastiveError({
        caller,
        argument: `the restored slot '${name}/m'`,
        expected: `a tensor of the variable's shape [${w.shape.join(', ')}]`,
        received: describeValue(slot.m),
      });
    }
    return slot;
  }

  /**
   * The state, for a checkpoint: `iter` (the number of `applyGradients` calls), then per variable
   * `<variable>/m`, `<variable>/v` (float32) and `<variable>/step` (an int32 scalar). As with
   * tfjs's optimisers, `iter` is a new tensor (dispose it); the others are the optimiser's own
   * variables (do not dispose them), valid until the next step: clone them to keep them longer.
   *
   * @returns the named tensors.
   *
   * @example
   * <!-- snippet setup="adamw" -->
   * ```ts
   * const state = await optimizer.getWeights();
   * ```
   */
  override async getWeights(): Promise<NamedTensor[]> {
    const out: NamedTensor[] = [await this.saveIterations()];
    for (const [name, slot] of this.slots) {
      const count = slot.step;
      if (slot.stepTensor === undefined) {
        slot.stepTensor = tf.tidy(() => tf.variable(tf.scalar(count, 'int32'), false));
      } else {
        const target = slot.stepTensor;
        tf.tidy(() => {
          target.assign(tf.scalar(count, 'int32'));
        });
      }
      out.push(
        { name: `${name}/m`, tensor: slot.m },
        { name: `${name}/v`, tensor: slot.v },
        { name: `${name}/step`, tensor: slot.stepTensor },
      );
    }
    return out;
  }

  /**
   * Restores what {@link AdamWOptimizer.getWeights} saved, replacing the whole state. The tensors
   * are copied (dispose yours when you like). A variable without a `/step` entry gets the `iter`
   * count, so the `/m` and `/v` slots of a `tf.train.adam` that stepped every variable each time
   * can be loaded too.
   *
   * @param weightValues - the saved named tensors.
   * @throws {@link ContrastiveError} on an unknown name, a variable with one moment missing,
   *   moments of different shapes or a non-float32 dtype, or a step that is not an integer >= 0.
   *
   * @example
   * <!-- snippet setup="adamw" -->
   * ```ts
   * import { adamw } from 'tfjs-contrastive';
   * const state = await optimizer.getWeights(); // e.g. saved with a checkpoint
   * const resumed = adamw({ learningRate: 1e-3, weightDecay: 0.05 }); // in the resumed run
   * await resumed.setWeights(state);
   * ```
   */
  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const caller = 'AdamWOptimizer.setWeights';
    const fail = (argument: string, expected: string, received: string): never => {
      throw new ContrastiveError({ caller, argument, expected, received });
    };
    if (!Array.isArray(weightValues)) {
      fail('weightValues', 'an array of named tensors', describeValue(weightValues));
    }
    let iterations: number | undefined;
    const parts = new Map<string, { m?: tf.Tensor; v?: tf.Tensor; step?: number }>();
    for (const [i, entry] of weightValues.entries()) {
      const { name, tensor } = entry as Partial<NamedTensor>;
      const argument = `weightValues[${i}]`;
      if (typeof name !== 'string' || !(tensor instanceof tf.Tensor) || tensor.isDisposed) {
        fail(argument, 'a { name, tensor } entry with a live tensor', describeValue(entry));
      }
      const t = tensor as tf.Tensor;
      const n = name as string;
      const count = async (): Promise<number> => {
        const value = t.size === 1 ? ((await t.data())[0] as number) : Number.NaN;
        checkNumber(caller, `${argument} ('${n}')`, value, { integer: true, min: 0 });
        return value;
      };
      if (n === 'iter') {
        iterations = await count();
        continue;
      }
      const match = SLOT_SUFFIX.exec(n);
      if (match === null) {
        fail(
          `${argument}.name`,
          "'iter' or a name ending in '/m', '/v' or '/step'",
          JSON.stringify(n),
        );
      }
      const kind = (match as RegExpExecArray)[1] as 'm' | 'v' | 'step';
      const variable = n.slice(0, n.length - kind.length - 1);
      const part = parts.get(variable) ?? {};
      if (kind === 'step') part.step = await count();
      else {
        if (t.dtype !== 'float32')
          fail(`${argument} ('${n}')`, 'a float32 tensor', describeValue(t));
        part[kind] = t;
      }
      parts.set(variable, part);
    }
    const restored: [string, { m: tf.Tensor; v: tf.Tensor; step: number }][] = [];
    for (const [variable, { m, v, step }] of parts) {
      if (m === undefined || v === undefined) {
        fail(
          'weightValues',
          `both '${variable}/m' and '${variable}/v'`,
          `only '${variable}/${m === undefined ? (v === undefined ? 'step' : 'v') : 'm'}'`,
        );
      }
      if ((m as tf.Tensor).shape.join() !== (v as tf.Tensor).shape.join()) {
        fail(
          `weightValues ('${variable}/v')`,
          `a tensor of the shape of '${variable}/m' ([${(m as tf.Tensor).shape.join(', ')}])`,
          describeValue(v),
        );
      }
      const s = step ?? iterations;
      if (s === undefined) {
        fail('weightValues', `'${variable}/step' or 'iter'`, 'neither');
      }
      restored.push([variable, { m: m as tf.Tensor, v: v as tf.Tensor, step: s as number }]);
    }
    // The new slots first: the saved tensors may be this optimiser's own slots (getWeights hands
    // them out), which must not be freed before they are copied.
    const next = restored.map(
      ([variable, { m, v, step }]) =>
        [variable, { m: tf.variable(m, false), v: tf.variable(v, false), step }] as const,
    );
    this.disposeSlots();
    this.iterations_ = iterations ?? 0;
    for (const [variable, slot] of next) this.slots.set(variable, slot);
  }

  private disposeSlots(): void {
    for (const s of this.slots.values()) {
      s.m.dispose();
      s.v.dispose();
      s.stepTensor?.dispose();
    }
    this.slots.clear();
  }

  /**
   * Frees the moment slots and step tensors.
   *
   * @example
   * <!-- snippet setup="adamw" -->
   * ```ts
   * optimizer.dispose();
   * ```
   */
  override dispose(): void {
    this.disposeSlots();
  }

  /**
   * The serialisable configuration (the current learning rate and weight decay).
   *
   * @returns learning rate, betas, epsilon, weight decay, the exclusion pattern's source and
   *   flags (`null` for none) and `excludeVectors`.
   *
   * @example
   * <!-- snippet setup="adamw" -->
   * ```ts
   * const config = optimizer.getConfig();
   * ```
   */
  override getConfig(): tf.serialization.ConfigDict {
    return {
      learningRate: this.learningRateValue,
      beta1: this.beta1,
      beta2: this.beta2,
      epsilon: this.epsilon,
      weightDecay: this.weightDecayValue,
      exclude: this.exclude === null ? null : this.exclude.source,
      excludeFlags: this.exclude === null ? null : this.exclude.flags,
      excludeVectors: this.excludeVectors,
    };
  }

  /**
   * Rebuilds an optimiser from {@link AdamWOptimizer.getConfig}'s output.
   *
   * @param cls - the class (tfjs's serialisation passes it).
   * @param config - the configuration.
   * @returns a new AdamWOptimizer, without state (restore that with `setWeights`).
   * @throws {@link ContrastiveError} on a value out of range, as the constructor.
   *
   * @example
   * <!-- snippet setup="adamw" -->
   * ```ts
   * import { AdamWOptimizer } from 'tfjs-contrastive';
   * const copy = AdamWOptimizer.fromConfig(AdamWOptimizer, optimizer.getConfig());
   * ```
   */
  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    const { exclude, excludeFlags, ...rest } = config;
    let pattern: RegExp | string | null = null;
    if (typeof exclude === 'string') {
      pattern =
        typeof excludeFlags === 'string'
          ? new RegExp(exclude, excludeFlags.replace(/[gy]/g, ''))
          : exclude;
    }
    return new cls({ ...rest, exclude: pattern });
  }
}

/**
 * The AdamW optimiser (Loshchilov & Hutter 2019), as PyTorch's `torch.optim.AdamW`; see
 * {@link AdamWOptimizer}.
 *
 * @param options - `learningRate` (required), `beta1` (0.9), `beta2` (0.999), `epsilon` (1e-8),
 *   `weightDecay` (0.01; 0 for plain Adam), `exclude` (none), `excludeVectors` (false).
 * @returns a new optimiser; dispose it when done.
 * @throws {@link ContrastiveError} on an option out of range.
 *
 * @example
 * <!-- snippet setup="objective" -->
 * ```ts
 * import { adamw } from 'tfjs-contrastive';
 *
 * // MoCo v3 (ViT): lr 1.5e-4 x B / 256, weight decay 0.1 on every variable.
 * const optimizer = adamw({ learningRate: 1.5e-4 * batchSize / 256, weightDecay: 0.1 });
 * optimizer.minimize(() => loss());
 * ```
 */
export function adamw(options: AdamWOptions): AdamWOptimizer {
  return new AdamWOptimizer(options);
}

/**
 * Registers {@link AdamWOptimizer} with tfjs's serialisation registry, so that models compiled with
 * it can be saved and loaded with their optimiser. Not done at import time (the library has no
 * import side effects).
 *
 * @example
 * ```ts
 * import { registerAdamWOptimizer } from 'tfjs-contrastive';
 *
 * registerAdamWOptimizer();
 * ```
 */
export function registerAdamWOptimizer(): void {
  tf.serialization.registerClass(AdamWOptimizer);
}

/**
 * Renames the variables in optimiser state saved by `getWeights` (`<variable>/<slot>`, split at
 * the last `/`; `iter` and other names without a `/` stay), so that it can be restored into
 * variables of other names: slots are keyed by variable name, and a model rebuilt in the same
 * process gets new layer names. Works for {@link AdamWOptimizer}, {@link LARSOptimizer} and
 * tfjs's own optimisers. The tensors are shared, not copied.
 *
 * @param weights - what `getWeights` returned.
 * @param rename - old variable name -> new name, as a record or a function. A record must name
 *   every variable in `weights` (a slot left under its old name would be silently unused).
 * @returns the same tensors under the new names.
 * @throws {@link ContrastiveError} when a record lacks a variable of `weights`.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { adamw, renameOptimizerWeights, trainableVariables } from 'tfjs-contrastive';
 *
 * // The same architecture built twice (a run resumed in a new model): other variable names.
 * const build = () => tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [4], units: 2 })] });
 * const oldModel = build();
 * const newModel = build();
 * const x = tf.randomNormal([8, 4]);
 * const oldOptimizer = adamw({ learningRate: 1e-3 });
 * oldOptimizer.minimize(
 *   () => tf.mean(tf.square(oldModel.apply(x) as tf.Tensor)) as tf.Scalar,
 *   false,
 *   trainableVariables(oldModel),
 * );
 * // Pair old and new variables by position.
 * const newVariables = trainableVariables(newModel);
 * const names = Object.fromEntries(
 *   trainableVariables(oldModel).map((v, i) => [v.name, newVariables[i]!.name]),
 * );
 * const newOptimizer = adamw({ learningRate: 1e-3 });
 * await newOptimizer.setWeights(renameOptimizerWeights(await oldOptimizer.getWeights(), names));
 * ```
 */
export function renameOptimizerWeights(
  weights: readonly NamedTensor[],
  rename: Readonly<Record<string, string>> | ((variable: string) => string),
): NamedTensor[] {
  const caller = 'renameOptimizerWeights';
  if (
    typeof rename !== 'function' &&
    (typeof rename !== 'object' || (rename as unknown) === null)
  ) {
    throw new ContrastiveError({
      caller,
      argument: 'rename',
      expected: 'a record of variable names or a function',
      received: describeValue(rename),
    });
  }
  return weights.map(({ name, tensor }) => {
    const cut = name.lastIndexOf('/');
    if (cut < 0) return { name, tensor };
    const variable = name.slice(0, cut);
    let renamed: string | undefined;
    if (typeof rename === 'function') renamed = rename(variable);
    else if (Object.hasOwn(rename, variable)) renamed = rename[variable];
    if (typeof renamed !== 'string') {
      throw new ContrastiveError({
        caller,
        argument: `rename['${variable}']`,
        expected: 'the new name of every saved variable',
        received: describeValue(renamed),
      });
    }
    return { name: `${renamed}${name.slice(cut)}`, tensor };
  });
}
