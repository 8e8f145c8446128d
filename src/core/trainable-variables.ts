import type * as tf from '@tensorflow/tfjs-core';
import { describeValue } from './checks.js';
import { ContrastiveError } from './errors.js';

/** What {@link trainableVariables} reads from a model: a tfjs-layers model or layer. */
export interface HasTrainableWeights {
  /** tfjs-layers' `LayerVariable`s; `read()` gives the `tf.Variable` each one holds. */
  readonly trainableWeights: readonly {
    /** The `tf.Variable` this weight holds (typed as a tensor by tfjs-layers). */
    read(): tf.Tensor;
  }[];
}

/**
 * The `tf.Variable`s that an optimiser should update for one or more tfjs-layers models (or
 * layers), in order and without duplicates (a layer shared between two models counts once).
 *
 * tfjs-layers' `model.trainableWeights` are `LayerVariable`s, not `tf.Variable`s: passing them as
 * `optimizer.minimize(f, true, varList)` throws inside `tf.variableGrads`. And
 * `optimizer.minimize` without a list trains every variable whose own trainable flag is set,
 * which includes a momentum encoder's or EMA target's weights (created trainable by tfjs-layers)
 * and those of layers frozen with `trainable: false` at construction. Pass this list instead.
 *
 * A model must be built (called once, or created with an `inputShape`) for its weights to exist.
 *
 * @param models - tfjs-layers models or layers whose trainable weights are trained.
 * @returns their trainable weights' variables, first model first, each once.
 * @throws {@link ContrastiveError} when an argument is not a model or layer.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { trainableVariables } from 'tfjs-contrastive';
 *
 * const encoder = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [4], units: 3 })] });
 * const head = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [3], units: 2 })] });
 * const x = tf.randomNormal([8, 4]);
 * const optimizer = tf.train.adam(1e-3);
 * optimizer.minimize(
 *   () => tf.mean(tf.square(head.apply(encoder.apply(x)) as tf.Tensor)) as tf.Scalar,
 *   false,
 *   trainableVariables(encoder, head), // 4 variables: two kernels, two biases
 * );
 * ```
 */
export function trainableVariables(...models: readonly HasTrainableWeights[]): tf.Variable[] {
  const seen = new Set<number>();
  const out: tf.Variable[] = [];
  models.forEach((model, i) => {
    const weights = (model as Partial<HasTrainableWeights> | null | undefined)?.trainableWeights;
    if (!Array.isArray(weights)) {
      throw new ContrastiveError({
        caller: 'trainableVariables',
        argument: `models[${i}]`,
        expected: 'a tfjs-layers model or layer (with trainableWeights)',
        received: describeValue(model),
      });
    }
    for (const w of weights as HasTrainableWeights['trainableWeights']) {
      // A LayerVariable's value is the tf.Variable it created (typed as a Tensor).
      // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
      const v = w.read() as tf.Variable;
      if (!seen.has(v.id)) {
        seen.add(v.id);
        out.push(v);
      }
    }
  });
  return out;
}
