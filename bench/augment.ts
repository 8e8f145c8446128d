/**
 * Augmentation throughput for `npm run bench`: images per second through the SimCLR recipe (two
 * views of 32x32 and of 224x224 images) and DINO's multi-crop (2 global + 8 local views), batch
 * 256 (32 with --quick for the 224 cases), on each backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  dinoRecipe,
  multiCrop,
  selectBackend,
  simclrRecipe,
  type BackendName,
} from '../src/index.js';
import type { BenchRecord } from './records.js';

/** Markdown rows: backend, recipe, image, batch, ms, images/s; records to `records`. */
export async function augmentRows(
  backends: readonly BackendName[],
  quick: boolean,
  records?: BenchRecord[],
): Promise<string[]> {
  const rows: string[] = [];
  for (const backend of backends) {
    await selectBackend(backend);
    for (const [name, side, batch, recipe] of [
      ['SimCLR, 2 views', 32, 256, simclrRecipe(32)],
      ['SimCLR, 2 views', 224, quick ? 32 : 256, simclrRecipe(224)],
      ['DINO, 2 + 8 views', 224, quick ? 32 : 256, dinoRecipe(224)],
    ] as const) {
      const images = tf.randomUniform([batch, side, side, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
      const run = async (seed: number): Promise<number> => {
        const t0 = performance.now();
        const views = multiCrop(images, { crops: recipe, rng: seed });
        await Promise.all(views.map((v) => v.data()));
        const ms = performance.now() - t0;
        tf.dispose(views);
        return ms;
      };
      await run(0); // warm-up
      const reps = backend === 'cpu' ? 1 : 3;
      const times: number[] = [];
      for (let r = 1; r <= reps; r++) times.push(await run(r));
      const ms = Math.min(...times);
      const what = `${name} ${side}x${side} batch ${batch}`;
      records?.push({ suite: 'augment', backend, case: what, metric: 'ms', value: ms, unit: 'ms' });
      rows.push(
        `| ${backend} | ${name} | ${side}x${side} | ${batch} | ${ms.toFixed(0)} | ${((1000 * batch) / ms).toFixed(0)} |`,
      );
      console.log(rows[rows.length - 1]);
      images.dispose();
    }
  }
  return rows;
}
