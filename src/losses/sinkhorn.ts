import * as tf from '@tensorflow/tfjs-core';
import { checkBoolean, checkNumber, checkTensor } from '../core/index.js';

/** Options of {@link sinkhorn}. */
export interface SinkhornOptions {
  /** Entropic regularisation epsilon: codes are computed from exp(scores / epsilon). Default `0.05`. */
  readonly epsilon?: number;
  /** Number of Sinkhorn-Knopp iterations. Default `3`. */
  readonly iterations?: number;
  /**
   * Iterate on log Q with logSumExp (default `true`): exact for any epsilon and any spread of
   * scores. `false` runs SwAV's plain algorithm on exp((scores - max) / epsilon): a little faster,
   * but entries below exp(-87) underflow float32 to 0 and a prototype (row) whose entries all
   * underflow gives NaN.
   */
  readonly logDomain?: boolean;
}

/** @internal Checked Sinkhorn options with their defaults. */
export function resolveSinkhornOptions(
  caller: string,
  options: SinkhornOptions,
): Required<SinkhornOptions> {
  const epsilon = options.epsilon ?? 0.05;
  checkNumber(caller, 'options.epsilon', epsilon, { greaterThan: 0 });
  const iterations = options.iterations ?? 3;
  checkNumber(caller, 'options.iterations', iterations, { integer: true, min: 1, max: 1000 });
  const logDomain = options.logDomain ?? true;
  checkBoolean(caller, 'options.logDomain', logDomain);
  return { epsilon, iterations, logDomain };
}

/** @internal The Sinkhorn-Knopp iterations, untaped inputs assumed. */
export function sinkhornCodes(scores: tf.Tensor2D, o: Required<SinkhornOptions>): tf.Tensor2D {
  return tf.tidy(() => {
    const [b, k] = scores.shape;
    // Q is K x B in the paper; here Q^T (B x K): "rows" of Q are columns here.
    const logits = tf.div(tf.sub(scores, tf.max(scores)), o.epsilon);
    if (o.logDomain) {
      let logQ = tf.sub(logits, tf.logSumExp(logits));
      for (let i = 0; i < o.iterations; i++) {
        // Each prototype receives total mass 1/K, then each sample 1/B.
        logQ = tf.sub(logQ, tf.add(tf.logSumExp(logQ, 0, true), Math.log(k)));
        logQ = tf.sub(logQ, tf.add(tf.logSumExp(logQ, 1, true), Math.log(b)));
      }
      return tf.exp(tf.add(logQ, Math.log(b))) as tf.Tensor2D;
    }
    let q = tf.exp(logits);
    q = tf.div(q, tf.sum(q));
    for (let i = 0; i < o.iterations; i++) {
      q = tf.div(q, tf.mul(tf.sum(q, 0, true), k));
      q = tf.div(q, tf.mul(tf.sum(q, 1, true), b));
    }
    return tf.mul<tf.Tensor2D>(q, b);
  });
}

/**
 * SwAV's online code assignment (Caron et al. 2020, Algorithm 1 / Eq. 3): the Sinkhorn-Knopp
 * algorithm turns prototype scores into soft codes Q that are equipartitioned over the K
 * prototypes across the batch, `Q = Diag(u) exp(C^T Z / epsilon) Diag(v)`.
 *
 * Each row of the result (one sample) sums to 1; after the final normalisation every prototype
 * receives about B/K of the mass. The maximum score is subtracted before exp (exact: the
 * normalisations cancel it), so scores / epsilon of any size cannot overflow, which would happen
 * in float16 WebGL textures and in float32 beyond 88. By default the iterations run in the log
 * domain, exact for any epsilon. Codes are targets: no gradient flows back through them.
 *
 * @param scores - [B, K] float32 scores of B samples against K prototypes (cosine similarities).
 * @param options - `epsilon` (0.05), `iterations` (3), `logDomain` (true).
 * @returns [B, K] codes, rows summing to 1.
 * @throws {@link ContrastiveError} when `scores` is not [B, K] float32, or an option is out of range.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { sinkhorn } from 'tfjs-contrastive';
 *
 * // scores: [B, K] cosine similarities of B features with K prototypes
 * const scores = tf.randomUniform<tf.Rank.R2>([16, 300], -1, 1);
 * const codes = sinkhorn(scores, { epsilon: 0.05, iterations: 3 }); // [B, K]
 * ```
 */
export function sinkhorn(scores: tf.Tensor2D, options: SinkhornOptions = {}): tf.Tensor2D {
  const caller = 'sinkhorn';
  checkTensor(caller, 'scores', scores, { rank: 2, dtype: 'float32', layout: '[B, K]' });
  const o = resolveSinkhornOptions(caller, options);
  return noGradient(scores, o);
}

// The codes are constants of the computation: run the iterations off the tape and give the
// scores a zero gradient (SwAV computes them under torch.no_grad()).
function noGradient(scores: tf.Tensor2D, o: Required<SinkhornOptions>): tf.Tensor2D {
  const op = tf.customGrad((x: tf.Tensor | tf.GradSaveFunc) => ({
    value: sinkhornCodes(x as tf.Tensor2D, o),
    gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
  }));
  return op(scores) as tf.Tensor2D;
}
