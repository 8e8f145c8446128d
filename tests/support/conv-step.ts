import * as tf from '@tensorflow/tfjs-core';

/**
 * One conv -> max pool -> mean -> dense step's gradients on the active backend, summarised as the
 * L1 norm of each gradient (input, filter, dense weights).
 */
export function convStepGradientNorms(): number[] {
  return tf.tidy(() => {
    const x = tf.reshape(tf.linspace(-1, 1, 2 * 6 * 6 * 3), [2, 6, 6, 3]);
    const f = tf.reshape(tf.linspace(-1, 1, 3 * 3 * 3 * 4), [3, 3, 3, 4]);
    const w = tf.reshape(tf.linspace(-1, 1, 4 * 5), [4, 5]);
    const gs = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => {
      const y = tf.maxPool(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'), 2, 2, 'valid');
      return tf.sum(tf.matMul(tf.mean(y, [1, 2]), c));
    })([x, f, w]);
    return gs.map((g) => Array.from(g.dataSync()).reduce((s, v) => s + Math.abs(v), 0));
  });
}
