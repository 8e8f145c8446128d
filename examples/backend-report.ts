/**
 * Selects the fastest backend that works here and prints what is really running, then times a
 * matrix product on it: `npm run demo` (or `npm run demo -- cpu`).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import { selectBackend, type BackendChoice } from 'tfjs-contrastive';

tf.enableProdMode();
const choice = (process.argv[2] ?? 'auto') as BackendChoice;
const info = await selectBackend(choice);
console.log('backend:', JSON.stringify(info, null, 2));

const n = 512;
const a = tf.randomNormal([n, n]);
const b = tf.randomNormal([n, n]);
tf.matMul(a, b).dispose(); // warm-up
const reps = 5;
const start = performance.now();
for (let i = 0; i < reps; i++) {
  const c = tf.matMul(a, b);
  await c.data();
  c.dispose();
}
const seconds = (performance.now() - start) / 1000;
console.log(
  `matMul ${n}^3 on ${info.name}: ${((2 * n ** 3 * reps) / seconds / 1e9).toFixed(1)} GFLOP/s`,
);
tf.dispose([a, b]);
