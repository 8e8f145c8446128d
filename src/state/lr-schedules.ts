import { checkNumber } from '../core/index.js';

/**
 * A half-cosine from `start` at step 0 to `end` at `totalSteps`, held at `end` afterwards:
 * `end + (start - end) (1 + cos(pi t / T)) / 2`. The learning-rate decay of SimCLR, MoCo v2, BYOL,
 * SwAV and DINO, and the shape of their momentum and weight-decay schedules.
 *
 * @param step - the current step t >= 0.
 * @param totalSteps - T > 0.
 * @param start - the value at step 0.
 * @param end - the value at step T and after.
 * @returns the scheduled value.
 * @throws {@link ContrastiveError} when the step is negative or T is not positive.
 *
 * @example
 * ```ts
 * import { cosineSchedule } from 'tfjs-contrastive';
 *
 * cosineSchedule(50, 100, 0.1, 0); // 0.05
 * ```
 */
export function cosineSchedule(
  step: number,
  totalSteps: number,
  start: number,
  end: number,
): number {
  const caller = 'cosineSchedule';
  checkNumber(caller, 'step', step, { min: 0 });
  checkNumber(caller, 'totalSteps', totalSteps, { greaterThan: 0 });
  checkNumber(caller, 'start', start);
  checkNumber(caller, 'end', end);
  const t = Math.min(step, totalSteps) / totalSteps;
  return end + ((start - end) * (1 + Math.cos(Math.PI * t))) / 2;
}

/**
 * BYOL's target-network momentum (Grill et al. 2020, Sec. 3.2): `1 - (1 - base)(cos(pi k / K) + 1) / 2`,
 * rising from `base` at step 0 to 1 at step K. Also MoCo v3's (base 0.99) and DINO's (0.996) teacher
 * momentum.
 *
 * @param step - the current step k >= 0.
 * @param totalSteps - K > 0, the total number of training steps.
 * @param base - the momentum at step 0. Default `0.996` (BYOL at 1000 epochs; 0.99 for shorter runs).
 * @returns the momentum for this step, in [base, 1].
 * @throws {@link ContrastiveError} when the step is negative, K is not positive or base is not in [0, 1].
 *
 * @example
 * <!-- snippet setup="online step" -->
 * ```ts
 * import { cloneAsMomentumEncoder, cosineMomentum, emaUpdate } from 'tfjs-contrastive';
 *
 * // online: the trained network; target: its momentum copy, updated after each step
 * const target = cloneAsMomentumEncoder(online);
 * emaUpdate(target, online, cosineMomentum(step, totalSteps, 0.996));
 * ```
 */
export function cosineMomentum(step: number, totalSteps: number, base = 0.996): number {
  checkNumber('cosineMomentum', 'base', base, { min: 0, max: 1 });
  return cosineSchedule(step, totalSteps, base, 1);
}

/**
 * A linear warm-up from 0 to `peak` over `warmupSteps`, then `peak`: `peak * min(1, (t + 1) / W)`,
 * so that the first step already moves (as in SimCLR and BYOL's `learning_rate * step / warmup`).
 *
 * @param step - the current step t >= 0.
 * @param warmupSteps - W >= 0 (0: no warm-up).
 * @param peak - the value after the warm-up.
 * @returns the scheduled value.
 * @throws {@link ContrastiveError} when the step or W is negative.
 *
 * @example
 * ```ts
 * import { linearWarmup } from 'tfjs-contrastive';
 *
 * linearWarmup(9, 10, 0.3); // 0.3
 * ```
 */
export function linearWarmup(step: number, warmupSteps: number, peak: number): number {
  const caller = 'linearWarmup';
  checkNumber(caller, 'step', step, { min: 0 });
  checkNumber(caller, 'warmupSteps', warmupSteps, { integer: true, min: 0 });
  checkNumber(caller, 'peak', peak);
  if (warmupSteps === 0) return peak;
  return peak * Math.min(1, (step + 1) / warmupSteps);
}

/** Options of {@link warmupCosineLearningRate}. */
export interface WarmupCosineOptions {
  /** The learning rate after the warm-up (e.g. SimCLR's 0.3 x batch / 256). */
  readonly baseLearningRate: number;
  /** Steps of linear warm-up (10 epochs in SimCLR and BYOL). */
  readonly warmupSteps: number;
  /** Total steps; the cosine decay runs from the end of the warm-up to here. */
  readonly totalSteps: number;
  /** The learning rate at the end. Default `0`. */
  readonly finalLearningRate?: number;
}

/**
 * The learning-rate schedule of SimCLR, BYOL, SwAV and DINO: linear warm-up to the base rate, then
 * cosine decay to the final rate at `totalSteps`.
 *
 * tfjs optimisers take their learning rate at construction; to follow a schedule, set it before
 * each step: `optimizer.setLearningRate(lr(step))` for `tf.train.sgd` and `tf.train.momentum`
 * (both SGD optimisers), and `adam.learningRate = lr(step)` for `tf.train.adam`, which reads the
 * field at every step (tfjs-core 4.22).
 *
 * @param options - base and final rates, warm-up and total steps.
 * @returns a function of the step returning the learning rate.
 * @throws {@link ContrastiveError} on a negative rate, warm-up longer than the total, or a
 *   non-positive total.
 *
 * @example
 * <!-- snippet setup="step" -->
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { warmupCosineLearningRate } from 'tfjs-contrastive';
 *
 * const lr = warmupCosineLearningRate({ baseLearningRate: 0.3, warmupSteps: 500, totalSteps: 5000 });
 * const sgd = tf.train.sgd(lr(0));
 * // each step:
 * sgd.setLearningRate(lr(step));
 * ```
 */
export function warmupCosineLearningRate(options: WarmupCosineOptions): (step: number) => number {
  const caller = 'warmupCosineLearningRate';
  const { baseLearningRate, warmupSteps, totalSteps } = options;
  const finalLearningRate = options.finalLearningRate ?? 0;
  checkNumber(caller, 'options.baseLearningRate', baseLearningRate, { min: 0 });
  checkNumber(caller, 'options.finalLearningRate', finalLearningRate, { min: 0 });
  checkNumber(caller, 'options.totalSteps', totalSteps, { integer: true, min: 1 });
  checkNumber(caller, 'options.warmupSteps', warmupSteps, {
    integer: true,
    min: 0,
    max: totalSteps,
  });
  return (step: number): number => {
    checkNumber(caller, 'step', step, { min: 0 });
    if (step < warmupSteps) return linearWarmup(step, warmupSteps, baseLearningRate);
    const decaySteps = totalSteps - warmupSteps;
    if (decaySteps === 0) return finalLearningRate;
    return cosineSchedule(step - warmupSteps, decaySteps, baseLearningRate, finalLearningRate);
  };
}
