import * as tf from '@tensorflow/tfjs-core';
import { checkSameShape, checkTensor, l2Normalize, stopGradient } from '../core/index.js';
import { reduce, resolveReduction, type Reduction } from './reduction.js';

/** Options of {@link negativeCosineSimilarity}, {@link byolLoss} and {@link simsiamLoss}. */
export interface CosineLossOptions {
  /** `'mean'` over the batch (default), `'sum'`, or `'none'` (one value per sample). */
  readonly reduction?: Reduction;
}

/** @internal Checks two [N, D] float32 tensors of one shape. */
export function checkCosinePair(
  caller: string,
  aName: string,
  a: unknown,
  bName: string,
  b: unknown,
): void {
  checkTensor(caller, aName, a, { rank: 2, dtype: 'float32', layout: '[N, D]' });
  checkTensor(caller, bName, b, { rank: 2, dtype: 'float32', layout: '[N, D]' });
  checkSameShape(caller, bName, b, aName, a);
}

/** @internal Checks the two predictions and two projections of a symmetric loss. */
function checkFourViews(caller: string, p1: unknown, p2: unknown, z1: unknown, z2: unknown): void {
  checkCosinePair(caller, 'p1', p1, 'p2', p2);
  checkCosinePair(caller, 'p1', p1, 'z1', z1);
  checkCosinePair(caller, 'p1', p1, 'z2', z2);
}

/**
 * @internal The swapped cosines of the symmetric losses, each view's prediction against the
 * other view's constant target: `cos(p1, sg z2) + cos(p2, sg z1)`, as [N].
 */
function swappedCosines(
  p1: tf.Tensor2D,
  p2: tf.Tensor2D,
  z1: tf.Tensor2D,
  z2: tf.Tensor2D,
): tf.Tensor1D {
  return tf.add(rowCosine(p1, stopGradient(z2)), rowCosine(p2, stopGradient(z1)));
}

/** @internal Rowwise cosine similarity of two [N, D] tensors, as [N]. */
export function rowCosine(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor1D {
  return tf.sum(tf.mul(l2Normalize(a), l2Normalize(b)), 1);
}

/**
 * The negative cosine similarity `-cos(a_i, b_i)`, averaged over the batch, with gradient into
 * both inputs: the plain primitive that SimSiam's and BYOL's losses are built from (they stop the
 * gradient of their targets; this does not).
 *
 * @param a - [N, D] float32.
 * @param b - [N, D] float32, the same shape.
 * @param options - `reduction` ('mean').
 * @returns a scalar in [-1, 1], or [N] values with `reduction: 'none'`.
 * @throws {@link ContrastiveError} when the inputs are not [N, D] float32 tensors of one shape.
 *
 * @example
 * <!-- snippet setup="embeddings" -->
 * ```ts
 * import { negativeCosineSimilarity } from 'tfjs-contrastive';
 *
 * // p1: [N, D] predictions; z2: [N, D] the vectors they should point along
 * const loss = negativeCosineSimilarity(p1, z2); // -1 when aligned
 * ```
 */
export function negativeCosineSimilarity(
  a: tf.Tensor2D,
  b: tf.Tensor2D,
  options: CosineLossOptions = {},
): tf.Tensor {
  const caller = 'negativeCosineSimilarity';
  checkCosinePair(caller, 'a', a, 'b', b);
  const reduction = resolveReduction(caller, options.reduction);
  return tf.tidy(() => reduce(tf.neg(rowCosine(a, b)), reduction));
}

/**
 * BYOL's regression loss (Grill et al. 2020, Eq. 2): the normalised mean squared error between
 * the online prediction and the target projection, `||p/||p|| - z/||z|| ||^2 = 2 - 2 cos(p, z)`,
 * averaged over the batch. The target `z` (the EMA target network's projection of the other view)
 * is treated as a constant. The full BYOL loss is symmetric: {@link symmetricByolLoss}.
 *
 * @param p - [N, D] float32 online predictions q_theta(z_theta).
 * @param z - [N, D] float32 target projections z'_xi; no gradient flows into it.
 * @param options - `reduction` ('mean').
 * @returns a scalar in [0, 4] (0 when aligned), or [N] values with `reduction: 'none'`.
 * @throws {@link ContrastiveError} when the inputs are not [N, D] float32 tensors of one shape.
 *
 * @example
 * <!-- snippet setup="embeddings" -->
 * ```ts
 * import { byolLoss } from 'tfjs-contrastive';
 *
 * // p1: the online network's prediction [N, D] for view 1; z2: the target network's projection of view 2
 * const loss = byolLoss(p1, z2);
 * ```
 */
export function byolLoss(
  p: tf.Tensor2D,
  z: tf.Tensor2D,
  options: CosineLossOptions = {},
): tf.Tensor {
  const caller = 'byolLoss';
  checkCosinePair(caller, 'p', p, 'z', z);
  const reduction = resolveReduction(caller, options.reduction);
  return tf.tidy(() => reduce(tf.sub(2, tf.mul(2, rowCosine(p, stopGradient(z)))), reduction));
}

/**
 * BYOL's symmetrised loss `L + L~` (Grill et al. 2020, Sec. 3.1): each view's prediction regresses
 * the other view's target projection, `byolLoss(p1, z2) + byolLoss(p2, z1)`.
 *
 * @param p1 - [N, D] online predictions of the first views.
 * @param p2 - [N, D] online predictions of the second views.
 * @param z1 - [N, D] target projections of the first views (constant).
 * @param z2 - [N, D] target projections of the second views (constant).
 * @param options - `reduction` ('mean').
 * @returns a scalar in [0, 8], or [N] values with `reduction: 'none'`.
 * @throws {@link ContrastiveError} when the inputs are not [N, D] float32 tensors of one shape.
 *
 * @example
 * <!-- snippet setup="embeddings" -->
 * ```ts
 * import { symmetricByolLoss } from 'tfjs-contrastive';
 *
 * // p1, p2: online predictions of views 1 and 2; z1, z2: the target network's projections of them
 * const loss = symmetricByolLoss(p1, p2, z1, z2);
 * ```
 */
export function symmetricByolLoss(
  p1: tf.Tensor2D,
  p2: tf.Tensor2D,
  z1: tf.Tensor2D,
  z2: tf.Tensor2D,
  options: CosineLossOptions = {},
): tf.Tensor {
  const caller = 'symmetricByolLoss';
  checkFourViews(caller, p1, p2, z1, z2);
  const reduction = resolveReduction(caller, options.reduction);
  return tf.tidy(() => reduce(tf.sub(4, tf.mul(2, swappedCosines(p1, p2, z1, z2))), reduction));
}

/**
 * SimSiam's symmetric loss (Chen and He 2021, Eq. 3 with Eq. 2):
 * `-1/2 [cos(p1, stopgrad(z2)) + cos(p2, stopgrad(z1))]`, averaged over the batch. The
 * stop-gradient on the projections is what prevents collapse without negatives or momentum.
 *
 * @param p1 - [N, D] predictions h(f(x1)).
 * @param p2 - [N, D] predictions h(f(x2)).
 * @param z1 - [N, D] projections f(x1) (treated as constants here).
 * @param z2 - [N, D] projections f(x2) (treated as constants here).
 * @param options - `reduction` ('mean').
 * @returns a scalar in [-1, 1] (-1 when aligned), or [N] values with `reduction: 'none'`.
 * @throws {@link ContrastiveError} when the inputs are not [N, D] float32 tensors of one shape.
 *
 * @example
 * <!-- snippet setup="views" -->
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { simsiamLoss } from 'tfjs-contrastive';
 * import { simsiamPredictor, simsiamProjector, smallConvNet } from 'tfjs-contrastive/layers';
 *
 * const backbone = smallConvNet({ inputShape: [32, 32, 3], widths: [16, 32] }); // [B, 32]
 * const projector = simsiamProjector({ inputDim: 32, hiddenDim: 64, outputDim: 64 });
 * const predictor = simsiamPredictor({ inputDim: 64, hiddenDim: 16, outputDim: 64 });
 * // view1, view2: [B, 32, 32, 3]; in training mode, as every batch norm of a training step
 * const training = { training: true };
 * const project = (x: tf.Tensor4D) =>
 *   projector.apply(backbone.apply(x, training), training) as tf.Tensor2D;
 * const predict = (z: tf.Tensor2D) => predictor.apply(z, training) as tf.Tensor2D;
 * const z1 = project(view1);
 * const z2 = project(view2);
 * const loss = simsiamLoss(predict(z1), predict(z2), z1, z2);
 * ```
 */
export function simsiamLoss(
  p1: tf.Tensor2D,
  p2: tf.Tensor2D,
  z1: tf.Tensor2D,
  z2: tf.Tensor2D,
  options: CosineLossOptions = {},
): tf.Tensor {
  const caller = 'simsiamLoss';
  checkFourViews(caller, p1, p2, z1, z2);
  const reduction = resolveReduction(caller, options.reduction);
  return tf.tidy(() => reduce(tf.mul(-0.5, swappedCosines(p1, p2, z1, z2)), reduction));
}
