/**
 * @internal What the library's custom layers share: the tfjs-layers base class, its constructor
 * arguments, and the prefix of their registered class names.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { checkNumber } from '../core/checks.js';

/** The arguments every tfjs-layers layer takes (name, trainable, inputShape, ...). */
export type BaseLayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;

/** Registered class names are `TfjsContrastive>Name`, stable across versions. */
export const CLASS_PREFIX = 'TfjsContrastive>';

/** The one shape of a layer's input (tfjs-layers passes one shape or a list of shapes). */
export function singleShape(shape: tfl.Shape | tfl.Shape[]): tfl.Shape {
  if (Array.isArray(shape[0])) {
    if (shape.length !== 1) {
      throw new Error(`tfjs-contrastive: expected one input, received ${shape.length}`);
    }
    return shape[0];
  }
  return shape as tfl.Shape;
}

/** The last dimension of a layer's input shape, which must be known to build its weights. */
export function knownWidth(layer: string, inputShape: tfl.Shape | tfl.Shape[]): number {
  const shape = singleShape(inputShape);
  const width = shape[shape.length - 1];
  if (typeof width !== 'number') {
    throw new Error(`tfjs-contrastive: ${layer} needs a known input width`);
  }
  return width;
}

/** The input shape with its last dimension replaced by `units`. */
export function withWidth(inputShape: tfl.Shape | tfl.Shape[], units: number): tfl.Shape {
  return [...singleShape(inputShape).slice(0, -1), units];
}

const counters = new Map<string, number>();

/**
 * A unique default layer name, `prefix_N`. (tfjs-layers would derive one from the class name,
 * whose '>' is not allowed in weight names.)
 */
export function defaultName(prefix: string): string {
  const n = (counters.get(prefix) ?? 0) + 1;
  counters.set(prefix, n);
  return `${prefix}_${n}`;
}

/** The single tensor of a layer call (tfjs-layers passes one tensor or a list). */
export function single<T>(inputs: T | T[]): T {
  if (Array.isArray(inputs)) {
    if (inputs.length !== 1) {
      throw new Error(`tfjs-contrastive: expected one input tensor, received ${inputs.length}`);
    }
    return inputs[0] as T;
  }
  return inputs;
}

/**
 * Freezes `layer` (its weights leave the trainable list, so optimizers skip them) while `step` is
 * below `steps`, and unfreezes it from then on. Returns whether the layer is trainable now.
 *
 * @example
 * <!-- snippet setup="step" -->
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { trainableFromStep } from 'tfjs-contrastive/layers';
 * const layer = tfl.layers.dense({ units: 64 });
 * // keep a layer of your own frozen for the first 1000 steps: call it once per step
 * trainableFromStep(layer, step, 1000); // false while step < 1000
 * ```
 */
export function trainableFromStep(layer: tfl.layers.Layer, step: number, steps: number): boolean {
  const trainable = step >= steps;
  layer.trainable = trainable; // also sets each weight's own flag, which optimisers read
  return trainable;
}

/**
 * Re-asserts a frozen layer's weights as not trainable. tfjs-layers 4.22's `Sequential` sets
 * every weight of every layer trainable when it builds itself lazily (on its first predict or
 * apply), ignoring layers frozen before; the library's freezable layers call this in `call`.
 */
export function keepFrozen(layer: tfl.layers.Layer): void {
  if (!layer.trainable) layer.trainable = false;
}

/** The freezing and seed options shared by the freezable layers (WeightNormDense, Prototypes). */
export interface FreezeAndSeed {
  readonly freezeSteps: number;
  readonly seed: number | undefined;
}

/** Reads and checks `freezeSteps` (default `defaultSteps`) and `seed` of a layer's arguments. */
export function freezeAndSeed(
  caller: string,
  args: { readonly freezeSteps?: number; readonly seed?: number },
  defaultSteps: number,
): FreezeAndSeed {
  const freezeSteps = args.freezeSteps ?? defaultSteps;
  checkNumber(caller, 'args.freezeSteps', freezeSteps, { integer: true, min: 0 });
  if (args.seed !== undefined) checkNumber(caller, 'args.seed', args.seed, { integer: true });
  return { freezeSteps, seed: args.seed };
}

/** The config entries of {@link freezeAndSeed} (the seed only when given). */
export function freezeAndSeedConfig(layer: FreezeAndSeed): tf.serialization.ConfigDict {
  return {
    freezeSteps: layer.freezeSteps,
    ...(layer.seed === undefined ? {} : { seed: layer.seed }),
  };
}

/**
 * PyTorch's default nn.Linear initialisation, U(-1/sqrt(fanIn), 1/sqrt(fanIn)), seeded: the
 * initial directions of the weight-normalised and prototype layers of DINO and SwAV.
 */
export function linearInit(
  fanIn: number,
  seed: number | undefined,
): ReturnType<typeof tfl.initializers.randomUniform> {
  const bound = 1 / Math.sqrt(fanIn);
  return tfl.initializers.randomUniform({
    minval: -bound,
    maxval: bound,
    ...(seed === undefined ? {} : { seed }),
  });
}
