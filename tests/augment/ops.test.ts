/**
 * The deterministic image operations: exact checks where they exist (solarize, flip, greyscale
 * weights, crop boxes, HSV round trip, Lab reference colours), statistical ones elsewhere
 * (brightness scales the mean, blur keeps the mean and lowers the variance), errors.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { ContrastiveError } from '../../src/core/index.js';
import {
  adjustBrightness,
  adjustContrast,
  adjustHue,
  adjustSaturation,
  cropResize,
  flipHorizontal,
  gaussianBlur,
  hsvToRgb,
  normalizeImages,
  rgbToHsv,
  rgbToLab,
  solarize,
  toGreyscale,
} from '../../src/augment/index.js';
import { describeBackends, expectClose } from '../support/backends.js';
import { randomImages as images } from '../support/layers.js';

function values(t: tf.Tensor): number[] {
  return Array.from(t.dataSync());
}

describeBackends('augmentation ops', ({ tol }) => {
  it('solarize inverts pixels >= threshold, only in the chosen images', () => {
    const x = tf.tensor4d([0.2, 0.5, 0.7, 1, 0.2, 0.5, 0.7, 1], [2, 2, 2, 1]);
    const y = solarize(x, [true, false]);
    expectClose(y, [0.2, 0.5, 0.3, 0, 0.2, 0.5, 0.7, 1], 1e-7);
    tf.dispose([x, y]);
  });

  it('flip mirrors the columns of the chosen images exactly', () => {
    const x = images([2, 3, 4, 3], 1);
    const y = flipHorizontal(x, [false, true]);
    const expected = tf.tidy(() =>
      tf.concat([tf.slice(x, [0], [1]), tf.reverse(tf.slice(x, [1], [1]), 2)]),
    );
    expect(values(y)).toEqual(values(expected));
    tf.dispose([x, y, expected]);
  });

  it('greyscale uses 0.2989 R + 0.587 G + 0.114 B in every channel', () => {
    const x = tf.tensor4d([0.1, 0.5, 0.9, 1, 0, 0], [2, 1, 1, 3]);
    const y = toGreyscale(x, [true, false]);
    const g = 0.2989 * 0.1 + 0.587 * 0.5 + 0.114 * 0.9;
    expectClose(y, [g, g, g, 1, 0, 0], 1e-6);
    tf.dispose([x, y]);
  });

  it('a crop box of the output size returns exactly its pixels; boxes differ per image', () => {
    const x = tf.tidy(() => tf.reshape(tf.range(0, 2 * 5 * 6 * 1), [2, 5, 6, 1]) as tf.Tensor4D);
    const boxes = [
      { top: 1, left: 2, height: 3, width: 3 },
      { top: 0, left: 0, height: 3, width: 3 },
    ];
    const y = cropResize(x, boxes, [3, 3]);
    const expected = tf.tidy(() =>
      tf.concat([tf.slice(x, [0, 1, 2, 0], [1, 3, 3, 1]), tf.slice(x, [1, 0, 0, 0], [1, 3, 3, 1])]),
    );
    expect(values(y)).toEqual(values(expected));
    // Resizing keeps the box's corner pixels at the output's corners (bilinear at pixel centres).
    const z = cropResize(x, boxes, [5, 7]);
    const at = (t: tf.Tensor, i: number, r: number, c: number): number =>
      tf.tidy(() => tf.slice(t, [i, r, c, 0], [1, 1, 1, 1]).dataSync()[0]!);
    expect(at(z, 0, 0, 0)).toBeCloseTo(at(x, 0, 1, 2), 4);
    expect(at(z, 0, 4, 6)).toBeCloseTo(at(x, 0, 3, 4), 4);
    tf.dispose([x, y, expected, z]);
  });

  it('brightness scales the mean by the factor; contrast 0 gives the mean grey; saturation 0 the greyscale', () => {
    tf.tidy(() => {
      const x = tf.tidy(() => tf.mul(images([2, 8, 8, 3], 2), 0.5) as tf.Tensor4D);
      const bright = adjustBrightness(x, [1.5, 1]);
      const means = (t: tf.Tensor): number[] => values(tf.tidy(() => tf.mean(t, [1, 2, 3])));
      const [m0, m1] = means(x);
      expectClose(means(bright), [1.5 * m0!, m1!], 1e-5);
      const flat = adjustContrast(x, [0, 1]);
      const grey = tf.tidy(() => tf.mean(toGreyscale(x, [true, true]), [1, 2, 3]));
      const first = tf.tidy(() => tf.slice(flat, [0], [1]));
      expectClose(first, new Array<number>(8 * 8 * 3).fill(values(grey)[0]!), 1e-5);
      expectClose(
        tf.tidy(() => tf.slice(flat, [1], [1])),
        tf.tidy(() => tf.slice(x, [1], [1])),
        1e-6,
      );
      const desaturated = adjustSaturation(x, [0, 0]);
      const greyscale = toGreyscale(x, [true, true]);
      expectClose(desaturated, greyscale, 1e-6);
      tf.dispose([x, bright, flat, grey, first, desaturated, greyscale]);
    });
  });

  it('hue: RGB -> HSV -> RGB is the identity, a shift of 0 or of two half turns is the identity, 1/3 turns red to green', () => {
    const x = images([3, 4, 4, 3], 3);
    const round = tf.tidy(() => hsvToRgb(rgbToHsv(x)));
    expectClose(round, x, 1e-5);
    const none = adjustHue(x, [0, 0, 0]);
    expectClose(none, x, 1e-5);
    const twice = tf.tidy(() => adjustHue(adjustHue(x, [0.5, 0.5, 0.5]), [0.5, 0.5, 0.5]));
    expectClose(twice, x, 1e-5);
    const red = tf.tensor4d([1, 0, 0, 0, 1, 0], [2, 1, 1, 3]);
    const turned = adjustHue(red, [1 / 3, 1 / 3]);
    expectClose(turned, [0, 1, 0, 0, 0, 1], 1e-5);
    tf.dispose([x, round, none, twice, red, turned]);
  });

  it('blur: sigma 0 is the identity, a constant image stays constant, the mean stays and the variance drops', () => {
    tf.tidy(() => {
      const x = images([2, 16, 16, 3], 4);
      const same = gaussianBlur(x, [0, 0], 5);
      expect(values(same)).toEqual(values(x));
      const flat = tf.fill([1, 8, 8, 1], 0.3) as tf.Tensor4D;
      const flatBlur = gaussianBlur(flat, [1.5], 5);
      expectClose(flatBlur, flat, 1e-6);
      const blurred = gaussianBlur(x, [2, 0], 7);
      const stats = (t: tf.Tensor): { mean: number; variance: number } =>
        tf.tidy(() => {
          const m = tf.moments(tf.slice(t, [0], [1]));
          return { mean: m.mean.dataSync()[0]!, variance: m.variance.dataSync()[0]! };
        });
      const before = stats(x);
      const after = stats(blurred);
      expect(Math.abs(after.mean - before.mean)).toBeLessThan(0.01);
      expect(after.variance).toBeLessThan(0.5 * before.variance);
      // The second image (sigma 0) is untouched.
      expectClose(
        tf.tidy(() => tf.slice(blurred, [1], [1])),
        tf.tidy(() => tf.slice(x, [1], [1])),
        tol,
      );
      tf.dispose([x, same, flat, flatBlur, blurred]);
    });
  });

  it('rgbToLab gives the standard L*a*b* of white, black and the sRGB primaries (D65)', () => {
    const x = tf.tensor4d([1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1], [1, 1, 5, 3]);
    const lab = rgbToLab(x);
    expectClose(
      lab,
      [100, 0, 0, 0, 0, 0, 53.24, 80.09, 67.2, 87.73, -86.18, 83.18, 32.3, 79.19, -107.86],
      2e-3,
    );
    tf.dispose([x, lab]);
  });

  it('normalizeImages subtracts the mean and divides by the std per channel', () => {
    const x = tf.tensor4d([0.5, 0.5, 0.5], [1, 1, 1, 3]);
    const y = normalizeImages(x, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
    expectClose(y, [(0.5 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (0.5 - 0.406) / 0.225], 1e-6);
    tf.dispose([x, y]);
  });

  it('one-channel images: greyscale, saturation and hue leave them unchanged', () => {
    const x = images([2, 4, 4, 1], 5);
    for (const y of [
      toGreyscale(x, [true, true]),
      adjustSaturation(x, [0, 2]),
      adjustHue(x, [0.3, -0.2]),
    ]) {
      expect(values(y)).toEqual(values(x));
      y.dispose();
    }
    x.dispose();
  });

  it('bad input raises the library error naming the argument', () => {
    const x = images([2, 4, 4, 3], 6);
    const bad = tf.zeros([2, 4, 4, 2]);
    expect(() => solarize(bad as tf.Tensor4D, [true, true])).toThrow(/1 or 3 channels/);
    expect(() => flipHorizontal(x, [true])).toThrow(ContrastiveError);
    expect(() => adjustBrightness(x, [1, Number.NaN])).toThrow(/factors\[1\]/);
    expect(() => gaussianBlur(x, [1, 1], 4)).toThrow(/odd/);
    expect(() => gaussianBlur(x, [1, 1], 9)).toThrow(/kernelSize/);
    expect(() =>
      cropResize(
        x,
        [
          { top: 0, left: 0, height: 5, width: 2 },
          { top: 0, left: 0, height: 1, width: 1 },
        ],
        [2, 2],
      ),
    ).toThrow(/boxes\[0\]/);
    expect(() => normalizeImages(x, [0, 0], [1, 1])).toThrow(/mean/);
    tf.dispose([x, bad]);
  });
});

it('rgbToLab rejects one-channel images', () => {
  const x = tf.zeros([1, 2, 2, 1]) as tf.Tensor4D;
  expect(() => rgbToLab(x)).toThrow(/RGB/);
  x.dispose();
});
