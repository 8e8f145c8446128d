import * as tf from '@tensorflow/tfjs-core';
import { checkNumber, checkSameShape, checkTensor, l2Normalize } from '../core/index.js';

/**
 * SimSiam's collapse signal (Chen and He 2021, Sec. 4.1): the standard deviation over the batch
 * of each dimension of the L2-normalised outputs, averaged over the D dimensions. It is 0 when
 * every output is the same vector (collapse) and about 1/sqrt(D) for outputs spread uniformly on
 * the sphere.
 *
 * @param z - [N, D] float32 outputs (projections or predictions), N >= 2.
 * @returns a scalar.
 * @throws {@link ContrastiveError} when `z` is not [N, D] float32 with N >= 2.
 *
 * @example
 * <!-- snippet setup="embeddings" -->
 * ```ts
 * import { embeddingStd } from 'tfjs-contrastive';
 *
 * // z1: [N, D] projections of one view
 * const s = (await embeddingStd(z1).data())[0]; // compare with 1 / Math.sqrt(D)
 * ```
 */
export function embeddingStd(z: tf.Tensor2D): tf.Scalar {
  checkTensor('embeddingStd', 'z', z, { rank: 2, dtype: 'float32', layout: '[N, D]' });
  if (z.shape[0] < 2) {
    checkTensor('embeddingStd', 'z', z, {
      shape: [2, null],
      dtype: 'float32',
      layout: '[N >= 2, D]',
    });
  }
  return tf.tidy(() => {
    const { variance } = tf.moments(l2Normalize(z), 0);
    return tf.mean(tf.sqrt(variance));
  });
}

/** Temperatures for {@link teacherEntropy} and {@link teacherStudentKl}. */
export interface DinoMonitorOptions {
  /** Teacher temperature. Default `0.04`. */
  readonly teacherTemperature?: number;
  /** Student temperature. Default `0.1`. */
  readonly studentTemperature?: number;
}

// log softmax((t - c) / tau), the centred, sharpened teacher distribution of DINO, in logs.
function teacherLogProbs(teacher: tf.Tensor2D, center: tf.Tensor, tau: number): tf.Tensor2D {
  return tf.logSoftmax(tf.div<tf.Tensor2D>(tf.sub(teacher, tf.reshape(center, [1, -1])), tau));
}

function checkMonitorInputs(caller: string, teacher: unknown, center: unknown): number {
  checkTensor(caller, 'teacherOutputs', teacher, { rank: 2, dtype: 'float32', layout: '[B, K]' });
  const k = teacher.shape[1] as number;
  checkTensor(caller, 'center', center, { dtype: 'float32', rank: [1, 2], layout: `[${k}]` });
  if (center.size !== k) checkTensor(caller, 'center', center, { shape: [k], layout: `[${k}]` });
  return k;
}

/**
 * DINO's teacher entropy: the mean over the batch of the entropy of the centred, sharpened teacher
 * distribution `softmax((t - c) / tau_t)`, in nats. Near log(K) the teacher is uniform (collapse
 * by centering); near 0 it is one-hot on one dimension (collapse by sharpening, when the same
 * dimension wins for every image). DINO's paper tracks it with {@link teacherStudentKl}.
 *
 * @param teacherOutputs - [B, K] teacher head outputs.
 * @param center - [K] center (see `Center`).
 * @param options - `teacherTemperature` (0.04).
 * @returns a scalar in [0, log K].
 * @throws {@link ContrastiveError} on shapes that do not match or a temperature <= 0.
 *
 * @example
 * <!-- snippet setup="dino" -->
 * ```ts
 * import { teacherEntropy } from 'tfjs-contrastive';
 *
 * // teacherOut: the teacher's [B, K] outputs per global crop; center: DINO's Center
 * const h = teacherEntropy(teacherOut[0], center.value, { teacherTemperature: 0.04 });
 * ```
 */
export function teacherEntropy(
  teacherOutputs: tf.Tensor2D,
  center: tf.Tensor,
  options: DinoMonitorOptions = {},
): tf.Scalar {
  const caller = 'teacherEntropy';
  checkMonitorInputs(caller, teacherOutputs, center);
  const tau = options.teacherTemperature ?? 0.04;
  checkNumber(caller, 'options.teacherTemperature', tau, { greaterThan: 0 });
  return tf.tidy(() => {
    const logP = teacherLogProbs(teacherOutputs, center, tau);
    return tf.mean(tf.neg(tf.sum(tf.mul(tf.exp(logP), logP), 1)));
  });
}

/**
 * The KL divergence KL(P_t || P_s) between the centred, sharpened teacher distribution and the
 * student distribution of the same crop, averaged over the batch, in nats: 0 when the student
 * matches the teacher exactly, which together with a teacher entropy at 0 or log K signals
 * collapse. DINO's cross entropy for a pair is the teacher entropy plus this KL.
 *
 * @param teacherOutputs - [B, K] teacher head outputs.
 * @param studentOutputs - [B, K] student head outputs.
 * @param center - [K] center.
 * @param options - `teacherTemperature` (0.04), `studentTemperature` (0.1).
 * @returns a scalar >= 0.
 * @throws {@link ContrastiveError} on shapes that do not match or a temperature <= 0.
 *
 * @example
 * <!-- snippet setup="dino" -->
 * ```ts
 * import { teacherStudentKl } from 'tfjs-contrastive';
 *
 * const kl = teacherStudentKl(teacherOut[0], studentOut[0], center.value);
 * ```
 */
export function teacherStudentKl(
  teacherOutputs: tf.Tensor2D,
  studentOutputs: tf.Tensor2D,
  center: tf.Tensor,
  options: DinoMonitorOptions = {},
): tf.Scalar {
  const caller = 'teacherStudentKl';
  checkMonitorInputs(caller, teacherOutputs, center);
  checkTensor(caller, 'studentOutputs', studentOutputs, { rank: 2, dtype: 'float32' });
  checkSameShape(caller, 'studentOutputs', studentOutputs, 'teacherOutputs', teacherOutputs);
  const tauT = options.teacherTemperature ?? 0.04;
  const tauS = options.studentTemperature ?? 0.1;
  checkNumber(caller, 'options.teacherTemperature', tauT, { greaterThan: 0 });
  checkNumber(caller, 'options.studentTemperature', tauS, { greaterThan: 0 });
  return tf.tidy(() => {
    const logPt = teacherLogProbs(teacherOutputs, center, tauT);
    const logPs = tf.logSoftmax(tf.div(studentOutputs, tauS));
    return tf.mean(tf.sum(tf.mul(tf.exp(logPt), tf.sub(logPt, logPs)), 1));
  });
}
