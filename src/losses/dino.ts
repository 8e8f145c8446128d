import * as tf from '@tensorflow/tfjs-core';
import {
  ContrastiveError,
  checkNumber,
  checkTensor,
  describeValue,
  stopGradient,
} from '../core/index.js';
import { sumOf } from './reduction.js';

/** Options of {@link dinoLoss}. */
export interface DinoOptions {
  /** Student softmax temperature. Default `0.1`. */
  readonly studentTemperature?: number;
  /**
   * Teacher softmax temperature (sharpening). Default `0.04`; DINO warms it up linearly to 0.07
   * over the first 30 epochs (`dinoTeacherTemperature`), and values above 0.07 are unstable.
   */
  readonly teacherTemperature?: number;
}

/** @internal Checks a list of [B, K] tensors of one shape and returns [B, K]. */
export function checkCropList(
  caller: string,
  argument: string,
  crops: unknown,
  min: number,
  shape?: readonly [number, number],
): [number, number] {
  if (!Array.isArray(crops) || crops.length < min) {
    throw new ContrastiveError({
      caller,
      argument,
      expected: `an array of at least ${min} [B, K] tensors`,
      received: describeValue(crops),
    });
  }
  const list = crops as unknown[];
  checkTensor(caller, `${argument}[0]`, list[0], {
    dtype: 'float32',
    ...(shape === undefined ? { rank: 2 } : { shape }),
    layout: '[B, K]',
  });
  const [b, k] = (list[0] as tf.Tensor2D).shape;
  list.forEach((t, i) => {
    checkTensor(caller, `${argument}[${i}]`, t, {
      shape: [b, k],
      dtype: 'float32',
      layout: '[B, K]',
    });
  });
  return [b, k];
}

/**
 * DINO's self-distillation loss (Caron et al. 2021, Eq. 2-3 and Algorithm 1,
 * facebookresearch/dino main_dino.py `DINOLoss`): the student's distribution over K outputs must
 * match the centred, sharpened teacher distribution of a different view of the same image.
 *
 * `P_t = softmax((t - center) / tau_t)` for each global crop of the teacher (a constant),
 * `log P_s = log_softmax(s / tau_s)` for every crop of the student, and the loss is the mean over
 * all pairs (teacher crop i, student crop v) with v != i of `mean_batch [-sum_k P_t log P_s]`.
 * The student's crops must list the global crops first, in the teacher's order. Update the
 * {@link Center} with the teacher outputs after computing the loss. A loss stuck at log(K) is the
 * collapse DINO's centering and sharpening prevent (monitor it with `dinoCollapseMetrics`).
 *
 * @param studentOutputsPerCrop - V tensors [B, K]: the student head's outputs, global crops first.
 * @param teacherOutputsPerGlobalCrop - G >= 1 tensors [B, K] (G <= V): the teacher's outputs of
 *   the global crops. No gradient flows into them.
 * @param center - [K] or [1, K] running center of the teacher outputs. No gradient.
 * @param options - `studentTemperature` (0.1), `teacherTemperature` (0.04).
 * @returns a scalar. Gradient flows into the student outputs only.
 * @throws {@link ContrastiveError} when the crops differ in shape, there are more teacher crops
 *   than student crops or no pair at all, the center is not [K], or a temperature is not positive.
 *
 * @example
 * <!-- snippet setup="dino-outputs" -->
 * ```ts
 * import { Center, dinoLoss } from 'tfjs-contrastive';
 *
 * // studentOut: [B, K] head outputs per crop (global crops first); teacherOut: per global crop.
 * // K = 256 here; DINO's head has 65536.
 * const center = new Center(256, { momentum: 0.9 });
 * const loss = dinoLoss(studentOut, teacherOut, center.value, { teacherTemperature: 0.04 });
 * center.update(teacherOut); // after the loss, as in DINO
 * ```
 */
export function dinoLoss(
  studentOutputsPerCrop: readonly tf.Tensor2D[],
  teacherOutputsPerGlobalCrop: readonly tf.Tensor2D[],
  center: tf.Tensor,
  options: DinoOptions = {},
): tf.Tensor {
  const caller = 'dinoLoss';
  const [b, k] = checkCropList(caller, 'studentOutputsPerCrop', studentOutputsPerCrop, 1);
  checkCropList(caller, 'teacherOutputsPerGlobalCrop', teacherOutputsPerGlobalCrop, 1, [b, k]);
  const v = studentOutputsPerCrop.length;
  const g = teacherOutputsPerGlobalCrop.length;
  if (g > v || (g === 1 && v === 1)) {
    throw new ContrastiveError({
      caller,
      argument: 'teacherOutputsPerGlobalCrop',
      expected: `at most as many crops as the student (${v}), with at least one cross-view pair`,
      received: `${g} crops`,
    });
  }
  checkTensor(caller, 'center', center, {
    dtype: 'float32',
    rank: [1, 2],
    layout: `[${k}] or [1, ${k}]`,
  });
  if (center.size !== k || (center.rank === 2 && center.shape[0] !== 1)) {
    checkTensor(caller, 'center', center, {
      shape: [k],
      dtype: 'float32',
      layout: `[${k}] or [1, ${k}]`,
    });
  }
  const studentTemperature = options.studentTemperature ?? 0.1;
  checkNumber(caller, 'options.studentTemperature', studentTemperature, { greaterThan: 0 });
  const teacherTemperature = options.teacherTemperature ?? 0.04;
  checkNumber(caller, 'options.teacherTemperature', teacherTemperature, { greaterThan: 0 });
  return tf.tidy(() => {
    const c = stopGradient(tf.reshape(center, [1, k]));
    const teacher = teacherOutputsPerGlobalCrop.map((t) =>
      tf.softmax(tf.div(tf.sub(stopGradient(t), c), teacherTemperature)),
    );
    const student = studentOutputsPerCrop.map((s) => tf.logSoftmax(tf.div(s, studentTemperature)));
    const terms: tf.Tensor[] = [];
    teacher.forEach((pt, i) => {
      student.forEach((ls, j) => {
        if (i !== j) terms.push(tf.mean(tf.neg(tf.sum(tf.mul(pt, ls), 1))));
      });
    });
    return tf.div(sumOf(terms), terms.length);
  });
}
