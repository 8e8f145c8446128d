/**
 * @internal Batch norm's fused kernels: names the wasm kernel fixes register (computed by the
 * SIMD kernels of ./simd.ts) and the calls the BatchNorm layer makes when the active backend has
 * them.
 */
import * as tf from '@tensorflow/tfjs-core';
import { simdColumns, simdKernels } from './simd.js';
import { lookupKernel } from './scratch.js';

/** The kernel names, registered for wasm by installKernelFixes. */
export const BATCH_NORM_KERNELS = {
  centredSquares: 'TfjsContrastiveCentredSquares',
  centredAffine: 'TfjsContrastiveCentredAffine',
  gradSums: 'TfjsContrastiveBatchNormGradSums',
  inputGrad: 'TfjsContrastiveBatchNormInputGrad',
} as const;

/** Batch norm's passes over x [m, c], each one kernel. */
export interface FusedBatchNorm {
  /** The biased variance about `mean` [c]: mean over rows of (x - mean)^2. */
  centredSquares(x: tf.Tensor, mean: tf.Tensor): tf.Tensor;
  /** (x - mean) scale + shift. */
  centredAffine(x: tf.Tensor, mean: tf.Tensor, scale: tf.Tensor, shift: tf.Tensor): tf.Tensor;
  /** [2, c]: the column sums of dy and of dy (x - mean). */
  gradSums(dy: tf.Tensor, x: tf.Tensor, mean: tf.Tensor): tf.Tensor;
  /** dy s + (x - mean) b + o. */
  inputGrad(
    dy: tf.Tensor,
    x: tf.Tensor,
    mean: tf.Tensor,
    s: tf.Tensor,
    b: tf.Tensor,
    o: tf.Tensor,
  ): tf.Tensor;
}

const run = (name: string, inputs: tf.NamedTensorMap): tf.Tensor =>
  tf.engine().runKernel<tf.Tensor>(name, inputs);

const FUSED: FusedBatchNorm = {
  centredSquares: (x, mean) => run(BATCH_NORM_KERNELS.centredSquares, { x, mean }),
  centredAffine: (x, mean, scale, shift) =>
    run(BATCH_NORM_KERNELS.centredAffine, { x, mean, scale, shift }),
  gradSums: (dy, x, mean) => run(BATCH_NORM_KERNELS.gradSums, { dy, x, mean }),
  inputGrad: (dy, x, mean, s, b, o) => run(BATCH_NORM_KERNELS.inputGrad, { dy, x, mean, s, b, o }),
};

/**
 * The fused kernels for float32 features of width `c`, when the active backend has them
 * registered (the wasm kernel fixes) and can run them (WebAssembly SIMD); else undefined.
 */
export function fusedBatchNorm(c: number): FusedBatchNorm | undefined {
  if (!simdColumns(c)) return undefined;
  const backendName = tf.getBackend();
  for (const kernel of Object.values(BATCH_NORM_KERNELS)) {
    if (lookupKernel(kernel, backendName) === undefined) return undefined;
  }
  return simdKernels(tf.backend()) === undefined ? undefined : FUSED;
}
