/**
 * Embeddings [8, 128] of a batch of 8: `q` and `k` (queries, and keys from a momentum encoder),
 * `z1` and `z2` (projections of two views), `p1` and `p2` (predictions of them).
 */
import * as tf$ from '@tensorflow/tfjs-core';
const embedding$ = (seed: number): tf$.Tensor2D =>
  tf$.randomNormal([8, 128], 0, 1, 'float32', seed);
export const q = embedding$(11);
export const k = embedding$(12);
export const z1 = embedding$(13);
export const z2 = embedding$(14);
export const p1 = embedding$(15);
export const p2 = embedding$(16);
