/**
 * Random views: the crop sampler's ranges and fallback, shapes and value ranges, reproducibility
 * for a seed, per-sample randomness, the recipes' view counts and sizes, errors.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { ContrastiveError, SeededRandom } from '../../src/core/index.js';
import {
  augmentView,
  blurKernelSize,
  byolRecipe,
  dinoRecipe,
  localCropSize,
  mocoV1Recipe,
  mocoV2Recipe,
  multiCrop,
  randomCropBox,
  randomResizedCrop,
  cropResize,
  simclrRecipe,
  swavRecipe,
} from '../../src/augment/index.js';
import { describeBackends } from '../support/backends.js';
import { randomImages as images } from '../support/layers.js';

it('randomCropBox: inside the image, area and aspect ratio within their ranges; centred fallback', () => {
  const rng = new SeededRandom(3);
  for (let i = 0; i < 500; i++) {
    const b = randomCropBox(rng, 32, 28, [0.08, 1], [3 / 4, 4 / 3]);
    expect(b.top >= 0 && b.left >= 0 && b.top + b.height <= 32 && b.left + b.width <= 28).toBe(
      true,
    );
    const area = (b.height * b.width) / (32 * 28);
    // Rounding of the sides moves the area and ratio slightly outside the continuous ranges.
    expect(area).toBeGreaterThan(0.05);
    expect(b.width / b.height).toBeGreaterThan(0.6);
    expect(b.width / b.height).toBeLessThan(1.6);
  }
  // No box of ratio 5-6 fits a square's area range [0.9, 1]: the centred fallback, width / 5.
  expect(randomCropBox(new SeededRandom(1), 30, 30, [0.9, 1], [5, 6])).toEqual({
    top: 12,
    left: 0,
    height: 6,
    width: 30,
  });
  expect(blurKernelSize(224)).toBe(23);
  expect(blurKernelSize(32)).toBe(3);
  expect(localCropSize(224)).toBe(96);
  expect(localCropSize(32)).toBe(14);
});

it('the recipes: view counts, sizes and the papers parameters', () => {
  expect(simclrRecipe(32)).toEqual([
    expect.objectContaining({
      count: 2,
      size: 32,
      scale: [0.08, 1],
      greyscale: 0.2,
      blur: { p: 0.5 },
    }),
  ]);
  expect(mocoV1Recipe(32)[0]!.jitter).toEqual({
    brightness: 0.4,
    contrast: 0.4,
    saturation: 0.4,
    hue: 0.4,
    p: 1,
  });
  expect(mocoV2Recipe(32)[0]!.scale).toEqual([0.2, 1]);
  const [v1, v2] = byolRecipe(32);
  expect([v1!.blur, v1!.solarize, v2!.blur, v2!.solarize]).toEqual([
    { p: 1 },
    undefined,
    { p: 0.1 },
    0.2,
  ]);
  const swav = swavRecipe(224);
  expect(swav.map((v) => [v.count, v.size, v.scale])).toEqual([
    [2, 224, [0.14, 1]],
    [6, 96, [0.05, 0.14]],
  ]);
  const dino = dinoRecipe(28, 4);
  expect(dino.map((v) => [v.count ?? 1, v.size, v.scale])).toEqual([
    [1, 28, [0.4, 1]],
    [1, 28, [0.4, 1]],
    [4, 12, [0.05, 0.4]],
  ]);
  expect(() => simclrRecipe(2)).toThrow(ContrastiveError);
  expect(() => swavRecipe(32, -1)).toThrow(/localCrops/);
});

describeBackends('augmentation views', () => {
  it('augmentView: shape, values in [0, 1], reproducible for a seed, different per image and per seed', () => {
    const x = tf.tidy(() => tf.tile(images([1, 20, 20, 3], 1), [4, 1, 1, 1]) as tf.Tensor4D);
    const [spec] = simclrRecipe(16);
    const a = augmentView(x, spec!, new SeededRandom(7));
    const b = augmentView(x, spec!, new SeededRandom(7));
    const c = augmentView(x, spec!, new SeededRandom(8));
    expect(a.shape).toEqual([4, 16, 16, 3]);
    const va = Array.from(a.dataSync());
    expect(Math.min(...va)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...va)).toBeLessThanOrEqual(1);
    expect(Array.from(b.dataSync())).toEqual(va);
    expect(Array.from(c.dataSync())).not.toEqual(va);
    // Four copies of one image get four different views.
    const rows = tf.tidy(() => tf.unstack(a).map((t) => Array.from(t.dataSync()).join()));
    expect(new Set(rows).size).toBe(4);
    tf.dispose([x, a, b, c]);
  });

  it('randomResizedCrop: the boxes randomCropBox draws, cropped by cropResize', () => {
    const x = images([3, 20, 16, 3], 8);
    const y = randomResizedCrop(x, { size: 8, scale: [0.2, 1], rng: 4 });
    const rng = new SeededRandom(4);
    const boxes = [0, 1, 2].map(() => randomCropBox(rng, 20, 16, [0.2, 1], [3 / 4, 4 / 3]));
    const expected = cropResize(x, boxes, [8, 8]);
    expect(Array.from(y.dataSync())).toEqual(Array.from(expected.dataSync()));
    expect(() => randomResizedCrop(x, { size: 8, ratio: [2, 1] })).toThrow(/options\.ratio/);
    tf.dispose([x, y, expected]);
  });

  it('large batches run in chunks with the same per-image parameters (full crop + flip = mirror)', () => {
    const x = images([3, 600, 600, 1], 9); // 2 images per chunk of 2^20 pixels
    const y = augmentView(
      x,
      { size: 600, scale: [1, 1], ratio: [1, 1], flip: 1 },
      new SeededRandom(1),
    );
    const mirrored = tf.reverse(x, 2);
    expect(Array.from(y.dataSync())).toEqual(Array.from(mirrored.dataSync()));
    tf.dispose([x, y, mirrored]);
  });

  it('every augmentation at probability 1 runs, on 3-channel and 1-channel images', () => {
    for (const channels of [3, 1]) {
      const x = images([3, 12, 12, channels], 2);
      const y = augmentView(
        x,
        {
          size: 8,
          flip: 1,
          jitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1, p: 1 },
          greyscale: 1,
          blur: { p: 1 },
          solarize: 1,
        },
        new SeededRandom(1),
      );
      expect(y.shape).toEqual([3, 8, 8, channels]);
      const v = Array.from(y.dataSync());
      expect(v.every((e) => e >= 0 && e <= 1)).toBe(true);
      if (channels === 3) {
        // Greyscale at p = 1: the three channels are equal.
        const [r, g] = tf.tidy(() => tf.split(y, 3, 3).map((t) => Array.from(t.dataSync())));
        r!.forEach((e, i) => expect(e).toBeCloseTo(g![i]!, 5));
      }
      tf.dispose([x, y]);
    }
  });

  it('multiCrop: DINO 2 global + 8 local views in order, SwAV 2 + 6; a seed reproduces them', () => {
    const x = images([2, 32, 32, 3], 3);
    const dino = multiCrop(x, { crops: dinoRecipe(32), rng: 5 });
    expect(dino.map((v) => v.shape)).toEqual([
      [2, 32, 32, 3],
      [2, 32, 32, 3],
      ...Array.from({ length: 8 }, () => [2, 14, 14, 3]),
    ]);
    const again = multiCrop(x, { crops: dinoRecipe(32), rng: 5 });
    again.forEach((v, i) =>
      expect(Array.from(v.dataSync())).toEqual(Array.from(dino[i]!.dataSync())),
    );
    const swav = multiCrop(x, { crops: swavRecipe(32), rng: new SeededRandom(1) });
    expect(swav.length).toBe(8);
    tf.dispose([x, ...dino, ...again, ...swav]);
  });

  it('bad specs raise the library error naming the argument, and nothing leaks', () => {
    const x = images([2, 8, 8, 3], 4);
    expect(() => augmentView(x, { size: 0 }, new SeededRandom(1))).toThrow(/spec\.size/);
    expect(() => augmentView(x, { size: 4, scale: [0.5, 0.1] }, new SeededRandom(1))).toThrow(
      /spec\.scale/,
    );
    expect(() => augmentView(x, { size: 4, flip: 2 }, new SeededRandom(1))).toThrow(/spec\.flip/);
    expect(() =>
      augmentView(
        x,
        { size: 4, jitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.7, p: 1 } },
        new SeededRandom(1),
      ),
    ).toThrow(/jitter\.hue/);
    expect(() => multiCrop(x, { crops: [] })).toThrow(/options\.crops/);
    expect(() => multiCrop(x, { crops: [{ size: 4 }, { size: 4, count: 0 }] })).toThrow(/count/);
    x.dispose();
  });
});
