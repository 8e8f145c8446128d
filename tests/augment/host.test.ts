/**
 * The host path of augmentation (src/augment/host.ts: colour, greyscale, blur and solarize in
 * JavaScript loops over the backend's memory, on cpu and wasm) against the tensor operations it
 * replaces there (still the path of webgl and webgpu): the same views for the same seed, for
 * every recipe, on 3- and 1-channel images, to float32 rounding.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, expect, it } from 'vitest';
import { SeededRandom } from '../../src/core/index.js';
import {
  byolRecipe,
  dinoRecipe,
  mocoV1Recipe,
  mocoV2Recipe,
  multiCrop,
  simclrRecipe,
  smallImageRecipe,
  swavRecipe,
  augmentView,
  type ViewSpec,
} from '../../src/augment/index.js';
import { canAugmentOnHost, setHostAugmentation } from '../../src/augment/host.js';
import { describeBackends, expectClose } from '../support/backends.js';
import { randomImages as images } from '../support/layers.js';

function bothPaths(
  x: tf.Tensor4D,
  crops: readonly ViewSpec[],
  seed: number,
): [number[][], number[][]] {
  const run = (host: boolean): number[][] => {
    const before = setHostAugmentation(host);
    try {
      expect(canAugmentOnHost()).toBe(host);
      const views = multiCrop(x, { crops, rng: seed });
      const out = views.map((v) => Array.from(v.dataSync()));
      tf.dispose(views);
      return out;
    } finally {
      setHostAugmentation(before);
    }
  };
  return [run(true), run(false)];
}

afterEach(() => {
  setHostAugmentation(true);
});

describeBackends('host augmentation = tensor augmentation', ({ tol }) => {
  // Both paths compute in float32 on this backend; they differ only in summation order.
  const close = Math.max(tol, 1e-5);

  it('every recipe, three seeds: the same views', () => {
    const x = images([3, 36, 36, 3], 11);
    const recipes: [string, ViewSpec[]][] = [
      ['simclr', simclrRecipe(36)],
      ['mocoV1', mocoV1Recipe(36)],
      ['mocoV2', mocoV2Recipe(36)],
      ['byol', byolRecipe(36)],
      ['swav', swavRecipe(36, 2)],
      ['dino', dinoRecipe(36, 2)],
      ['small', smallImageRecipe(36, { asymmetric: true, localCrops: 2 })],
    ];
    for (const [name, crops] of recipes) {
      for (const seed of [0, 1, 2]) {
        const [host, tensors] = bothPaths(x, crops, seed);
        expect(host.length).toBe(tensors.length);
        host.forEach((v, i) =>
          expectClose(v, tensors[i]!, close, `${name} seed ${seed} view ${i}`),
        );
      }
    }
    x.dispose();
  });

  it('every step at probability 1, wide blur (23 taps, sigma up to 2), 3 and 1 channels', () => {
    for (const channels of [3, 1]) {
      const x = images([4, 40, 40, channels], 12 + channels);
      const spec: ViewSpec = {
        size: 32,
        flip: 0.5,
        jitter: { brightness: 0.8, contrast: 0.8, saturation: 0.8, hue: 0.5, p: 1 },
        greyscale: 0.5,
        blur: { p: 1, kernelSize: 23, sigma: [0.1, 2] },
        solarize: 0.5,
      };
      for (const seed of [3, 4]) {
        const [host, tensors] = bothPaths(x, [spec], seed);
        expectClose(host[0]!, tensors[0]!, close, `${channels} channels seed ${seed}`);
      }
      x.dispose();
    }
  });

  it('saturated and grey pixels (hue sector edges, zero delta, black)', () => {
    // Pure and mixed primaries, greys, black and white: the hue round trip's special cases.
    const colours = [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
      [1, 1, 0],
      [0, 1, 1],
      [1, 0, 1],
      [0.5, 0.5, 0.5],
      [0, 0, 0],
      [1, 1, 1],
      [0.2, 0.2, 0.7],
      [0.7, 0.2, 0.2],
      [0.3, 0.9, 0.3],
    ];
    const x = tf.tidy(() =>
      tf.tile(tf.tensor4d(colours.flat(), [1, 3, 4, 3]), [6, 2, 2, 1]),
    ) as tf.Tensor4D;
    const spec: ViewSpec = {
      size: 6,
      scale: [1, 1],
      ratio: [8 / 6, 8 / 6],
      jitter: { brightness: 0, contrast: 0, saturation: 0, hue: 0.5, p: 1 },
    };
    const [host, tensors] = bothPaths(x, [spec], 5);
    expectClose(host[0]!, tensors[0]!, close, 'hue of special colours');
    x.dispose();
  });

  it('the same errors: a kernel too wide for the view, an even kernel', () => {
    const x = images([2, 12, 12, 3], 6);
    for (const host of [true, false]) {
      setHostAugmentation(host);
      expect(() =>
        augmentView(x, { size: 8, blur: { p: 1, kernelSize: 17 } }, new SeededRandom(1)),
      ).toThrow(/kernelSize/);
      expect(() =>
        augmentView(x, { size: 8, blur: { p: 1, kernelSize: 4 } }, new SeededRandom(1)),
      ).toThrow(/odd/);
    }
    x.dispose();
  });
});
