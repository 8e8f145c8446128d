import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError, checkNumber, checkTensor, describeValue } from '../core/index.js';

/** Options of {@link viewsLoss}. */
export interface ViewsLossOptions {
  /** The number of views V the model's output must stack. Default: whatever the output has. */
  readonly views?: number;
}

/**
 * Adapts a multi-view loss to tfjs-layers' `model.compile({ loss })`, which calls a loss as
 * `(yTrue, yPred)`: the model's output `yPred` must stack the views of each sample along axis 1,
 * as [B, V, D] (e.g. an encoder wrapped in `tf.layers.timeDistributed` over [B, V, H, W, C]
 * inputs). Keeping a sample's views in one row keeps them together when `fit` shuffles and
 * batches. `yTrue` is ignored: pass any targets of the output's shape (zeros).
 *
 * @param loss - a function of the V views, each [B, D], returning a scalar, e.g.
 *   `(v) => ntXentLoss(v[0], v[1])`.
 * @param options - `views`, the required V.
 * @returns a `(yTrue, yPred) => Scalar` function for `model.compile`.
 * @throws {@link ContrastiveError} (when the loss is called) if `yPred` is not [B, V, D] or has
 *   another number of views than `options.views`.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { ntXentLoss, viewsLoss } from 'tfjs-contrastive';
 *
 * // n samples, two views of each stacked as [n, 2, 32]; the model maps each view to 16 features
 * const n = 64;
 * const twoViews = tf.randomNormal<tf.Rank.R3>([n, 2, 32]);
 * const model = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [2, 32], units: 16 })] });
 * model.compile({
 *   optimizer: tf.train.adam(1e-3),
 *   loss: viewsLoss(([v1, v2]) => ntXentLoss(v1!, v2!, { temperature: 0.5 }), { views: 2 }),
 * });
 * await model.fit(twoViews, tf.zeros([n, 2, 16]), { batchSize: 32, epochs: 1, verbose: 0 });
 * ```
 */
export function viewsLoss(
  loss: (views: tf.Tensor2D[]) => tf.Tensor,
  options: ViewsLossOptions = {},
): (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor {
  const caller = 'viewsLoss';
  if (typeof loss !== 'function') {
    throw new ContrastiveError({
      caller,
      argument: 'loss',
      expected: 'a function of the list of views',
      received: describeValue(loss),
    });
  }
  if (options.views !== undefined) {
    checkNumber(caller, 'options.views', options.views, { integer: true, min: 1 });
  }
  return (_yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor => {
    checkTensor(caller, 'yPred', yPred, {
      rank: 3,
      dtype: 'float32',
      ...(options.views === undefined ? {} : { shape: [null, options.views, null] }),
      layout: '[B, V, D] (the views stacked along axis 1)',
    });
    return tf.tidy(() => loss(tf.unstack(yPred, 1) as tf.Tensor2D[]));
  };
}
