/**
 * Per-kernel time of one batch through an augmentation recipe (tf.profile):
 * `npx tsx bench/profile-augment.ts [--backend wasm] [--recipe simclr|dino] [--side 224] [--batch 32]`.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  dinoRecipe,
  multiCrop,
  selectBackend,
  simclrRecipe,
  type BackendName,
} from '../src/index.js';

tf.enableProdMode();
const args = process.argv.slice(2);
const arg = (name: string, fallback: string): string =>
  args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const backend = arg('backend', 'wasm') as BackendName;
const recipeName = arg('recipe', 'simclr');
const side = Number(arg('side', '224'));
const batch = Number(arg('batch', '32'));
const info = await selectBackend(backend);
console.log(`${info.name}, threads ${info.threads}`);
const recipe = recipeName === 'dino' ? dinoRecipe(side) : simclrRecipe(side);
const images = tf.randomUniform([batch, side, side, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
const once = async (seed: number): Promise<number> => {
  const t0 = performance.now();
  const views = multiCrop(images, { crops: recipe, rng: seed });
  await Promise.all(views.map((v) => v.data()));
  tf.dispose(views);
  return performance.now() - t0;
};
await once(0);
const ms = await once(1);
console.log(
  `${recipeName} ${side}px batch ${batch}: ${ms.toFixed(0)} ms, ${((1000 * batch) / ms).toFixed(1)} images/s`,
);
const profile = await tf.profile(async () => {
  const views = multiCrop(images, { crops: recipe, rng: 1 });
  await Promise.all(views.map((v) => v.data()));
  tf.dispose(views);
});
const byKernel = new Map<string, { ms: number; calls: number }>();
for (const k of profile.kernels) {
  const t = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
  const e = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
  e.ms += t;
  e.calls += 1;
  byKernel.set(k.name, e);
}
const total = [...byKernel.values()].reduce((a, b) => a + b.ms, 0);
console.log(`kernel time ${total.toFixed(0)} ms over ${profile.kernels.length} calls`);
for (const [name, e] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 25))
  console.log(
    `${name.padEnd(24)} ${e.ms.toFixed(1).padStart(8)} ms ${String(e.calls).padStart(5)} calls`,
  );
images.dispose();
