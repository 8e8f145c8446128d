/**
 * The presets' optimisers and schedules: a default optimiser by name, its learning rate set per
 * step, and the warm-up + cosine shape all the methods' papers use, as a function of the
 * fraction of the run done.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError, describeValue } from '../core/index.js';
import { adamw, lars } from '../state/index.js';
import type { OptimizerName } from './types.js';

/** Builds a default optimiser by name. */
export function buildOptimizer(
  name: OptimizerName,
  learningRate: number,
  weightDecay: number,
  excludeVectors = false,
): tf.Optimizer {
  switch (name) {
    case 'adamw':
      return adamw({ learningRate, weightDecay, excludeVectors });
    case 'adam':
      return adamw({ learningRate, weightDecay: 0 });
    case 'sgd':
      return tf.train.sgd(learningRate);
    case 'momentum':
      return tf.train.momentum(learningRate, 0.9);
    case 'lars':
      return lars({ learningRate, weightDecay });
  }
}

/** Sets an optimiser's learning rate for the next step. */
export function setLearningRate(caller: string, optimizer: tf.Optimizer, lr: number): void {
  const o = optimizer as unknown as {
    setLearningRate?: (lr: number) => void;
    learningRate?: unknown;
  };
  if (typeof o.setLearningRate === 'function') o.setLearningRate(lr);
  else if (typeof o.learningRate === 'number') o.learningRate = lr;
  else {
    throw new ContrastiveError({
      caller,
      argument: 'optimizer',
      expected: 'an optimiser whose learning rate can be set (setLearningRate or learningRate)',
      received: describeValue(optimizer),
    });
  }
}

/** An optimiser's current learning rate, or NaN when it does not say. */
export function learningRateOf(optimizer: tf.Optimizer): number {
  const lr = (optimizer as unknown as { learningRate?: unknown }).learningRate;
  return typeof lr === 'number' ? lr : Number.NaN;
}

/**
 * Linear warm-up to `peak` then a half cosine to 0 at the end of the run: the schedule of
 * SimCLR, MoCo v2, BYOL and SimSiam. `progress` is the fraction of the run done, or undefined
 * when the run's length is unknown (then the rate stays at its peak after a warm-up in steps).
 */
export function warmupCosine(
  peak: number,
  warmup: number,
  step: number,
  progress: number | undefined,
): number {
  if (warmup >= 1) {
    // Warm-up in steps.
    if (step < warmup) return (peak * (step + 1)) / warmup;
    if (progress === undefined) return peak;
    return peak * 0.5 * (1 + Math.cos(Math.PI * progress));
  }
  if (progress === undefined) return peak;
  if (progress < warmup) return peak * Math.max(progress / warmup, 1e-3);
  const t = warmup >= 1 ? progress : (progress - warmup) / (1 - warmup);
  return peak * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, t)));
}

/**
 * Whether `x` is a tfjs optimiser. (`x instanceof tf.Optimizer` throws for `undefined` and
 * `null`: tfjs 4.22's Optimizer has a `Symbol.hasInstance` that reads `x.minimize`.)
 */
export function isOptimizer(x: unknown): x is tf.Optimizer {
  return typeof x === 'object' && x !== null && x instanceof tf.Optimizer;
}
