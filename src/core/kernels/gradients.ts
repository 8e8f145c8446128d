/**
 * @internal Gradients the kernel fixes replace. tfjs-core 4.22's gradient of Tile adds one slice
 * of dy per repetition: tfjs-layers' LayerNormalization tiles its gain and offset [1, 1, D] to
 * every token of the batch and its statistics to every feature, so each layer norm's backward
 * pass made about B x T + D slice and add kernels (some 37,000 a ViT step at batch 16, most of the
 * step). Here each tiled axis is summed in one reduction of dy seen as [..., reps, size, ...].
 */
import * as tf from '@tensorflow/tfjs-core';

/** dx of Tile: dy [..., reps_i x_i, ...] summed over the repetitions of every axis. */
export function sumOfTiles(
  dy: tf.Tensor,
  shape: readonly number[],
  reps: readonly number[],
): tf.Tensor {
  let g = dy;
  for (let i = shape.length - 1; i >= 0; i--) {
    const r = reps[i] ?? 1;
    if (r === 1) continue;
    const split = [...g.shape.slice(0, i), r, shape[i] ?? 1, ...g.shape.slice(i + 1)];
    g = tf.sum(tf.reshape(g, split), i);
  }
  return tf.reshape(g, [...shape]);
}

/** The replacement gradient of Tile (any rank; tfjs-core's stops at rank 4). */
export const TILE_GRADIENT: tf.GradConfig = {
  kernelName: 'Tile',
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const x = saved[0] as tf.Tensor;
    const { reps } = attrs as unknown as tf.TileAttrs;
    return { x: () => sumOfTiles(dy as tf.Tensor, x.shape, reps) };
  },
};
