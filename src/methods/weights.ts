/**
 * Weights of tfjs-layers models by stable names, for checkpoints and skipped steps.
 *
 * tfjs-layers names every weight after its layer, and layer names carry a process-wide counter
 * (`dense_Dense7/kernel`), so the same architecture built twice has other names. The names here
 * are positions instead: the layer's index in its model (nested models walked into) and the
 * weight's own short name, e.g. `3.kernel` or `5.2.moving_mean`, the same for every build. tfjs
 * also uniquifies variable names process-wide (a momentum copy's `kernel` becomes `kernel_1`);
 * that suffix is dropped unless a layer's own names would then collide.
 */
import type * as tf from '@tensorflow/tfjs-core';

/** A weight as tfjs-layers exposes it (`LayerVariable`). */
export interface LayerWeight {
  readonly name: string;
  readonly shape: readonly number[];
  read(): tf.Tensor;
  write(value: tf.Tensor): void;
}

interface LayerLike {
  readonly weights: readonly LayerWeight[];
  readonly layers?: readonly LayerLike[];
  readonly _trainableWeights?: readonly LayerWeight[];
  readonly _nonTrainableWeights?: readonly LayerWeight[];
}

/** The short name of a weight: the part after the layer's name. */
function shortName(w: LayerWeight): string {
  const slash = w.name.lastIndexOf('/');
  return slash < 0 ? w.name : w.name.slice(slash + 1);
}

// A layer's own weights in an order that does not depend on trainable flags (a frozen layer's
// `weights` list puts its parameters after its buffers).
function ownWeights(layer: LayerLike): { weight: LayerWeight; buffer: boolean }[] {
  const params = layer._trainableWeights;
  const buffers = layer._nonTrainableWeights;
  if (params !== undefined && buffers !== undefined) {
    return [
      ...params.map((weight) => ({ weight, buffer: false })),
      ...buffers.map((weight) => ({ weight, buffer: true })),
    ];
  }
  return layer.weights.map((weight) => ({
    weight,
    buffer: /moving_(mean|variance)/.test(weight.name),
  }));
}

/** Every weight of a model under its positional name, and whether it is a buffer (statistic). */
export function namedWeights(
  model: LayerLike,
  prefix = '',
): { name: string; weight: LayerWeight; buffer: boolean }[] {
  const out: { name: string; weight: LayerWeight; buffer: boolean }[] = [];
  (model.layers ?? []).forEach((layer, i) => {
    if (Array.isArray(layer.layers)) {
      out.push(...namedWeights(layer, `${prefix}${i}.`));
      return;
    }
    const own = ownWeights(layer);
    const stripped = own.map(({ weight }) => shortName(weight).replace(/_\d+$/, ''));
    const unique = new Set(stripped).size === stripped.length;
    own.forEach(({ weight, buffer }, j) => {
      const short = unique ? stripped[j] : shortName(weight);
      out.push({ name: `${prefix}${i}.${short}`, weight, buffer });
    });
  });
  return out;
}
