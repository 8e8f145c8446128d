/**
 * DINO's head outputs for a batch of 8 with K = 256: `teacherOut` (the 2 global crops) and
 * `studentOut` (2 global then 2 local crops), each [8, 256].
 */
import * as tf$ from '@tensorflow/tfjs-core';
const out$ = (seed: number): tf$.Tensor2D => tf$.randomNormal([8, 256], 0, 1, 'float32', seed);
export const teacherOut: [tf$.Tensor2D, tf$.Tensor2D] = [out$(41), out$(42)];
export const studentOut: [tf$.Tensor2D, tf$.Tensor2D, tf$.Tensor2D, tf$.Tensor2D] = [
  out$(43),
  out$(44),
  out$(45),
  out$(46),
];
