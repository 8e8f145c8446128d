/**
 * Deterministic, batched image operations on float32 NHWC images in [0, 1] with 1 or 3
 * channels. Every per-sample parameter is given explicitly (one value per image), so the random
 * augmentations (random.ts) are these operations with drawn parameters, and the operations can be
 * checked exactly. All run on any backend; none needs a gradient.
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkNumber, checkTensor, describeValue } from '../core/checks.js';
import { ContrastiveError } from '../core/errors.js';

/** A batch of images [N, H, W, C], float32 in [0, 1]. */
export type Images = tf.Tensor4D;

/** A crop box in pixels: top row, left column, height, width. */
export interface CropBox {
  /** First row. */
  readonly top: number;
  /** First column. */
  readonly left: number;
  /** Rows. */
  readonly height: number;
  /** Columns. */
  readonly width: number;
}

/**
 * torchvision's greyscale weights (ITU-R 601-2 luma).
 *
 * @example
 * ```ts
 * import { GREY_WEIGHTS } from 'tfjs-contrastive/augment';
 * const [r, g, b] = GREY_WEIGHTS; // luma = r R + g G + b B
 * ```
 */
export const GREY_WEIGHTS: readonly [number, number, number] = [0.2989, 0.587, 0.114];

/** @internal Checks a batch of images; returns [N, H, W, C]. */
export function checkImages(caller: string, images: unknown): [number, number, number, number] {
  checkTensor(caller, 'images', images, { rank: 4, dtype: 'float32', layout: '[N, H, W, C]' });
  const shape = images.shape as [number, number, number, number];
  if (shape[3] !== 1 && shape[3] !== 3) {
    throw new ContrastiveError({
      caller,
      argument: 'images',
      expected: 'images with 1 or 3 channels, [N, H, W, 1 | 3]',
      received: `shape [${shape.join(', ')}]`,
    });
  }
  return shape;
}

function checkPerSample(
  caller: string,
  argument: string,
  values: unknown,
  n: number,
): readonly number[] {
  if (!Array.isArray(values) && !(values instanceof Float32Array)) {
    throw new ContrastiveError({
      caller,
      argument,
      expected: `${n} numbers, one per image`,
      received: describeValue(values),
    });
  }
  const list = Array.from(values as ArrayLike<unknown>);
  if (list.length !== n) {
    throw new ContrastiveError({
      caller,
      argument,
      expected: `${n} numbers, one per image`,
      received: `${list.length}`,
    });
  }
  list.forEach((v, i) => {
    checkNumber(caller, `${argument}[${i}]`, v);
  });
  return list as number[];
}

/** Per-sample values as [N, 1, 1, 1]. */
function column(values: readonly number[]): tf.Tensor4D {
  return tf.tensor4d(Float32Array.from(values), [values.length, 1, 1, 1]);
}

function mask(flags: readonly boolean[]): tf.Tensor4D {
  return tf.tensor4d(Uint8Array.from(flags.map(Number)), [flags.length, 1, 1, 1], 'bool');
}

function checkFlags(
  caller: string,
  argument: string,
  flags: unknown,
  n: number,
): readonly boolean[] {
  if (!Array.isArray(flags) || flags.length !== n || !flags.every((f) => typeof f === 'boolean')) {
    throw new ContrastiveError({
      caller,
      argument,
      expected: `${n} booleans, one per image`,
      received: describeValue(flags),
    });
  }
  return flags;
}

/**
 * Greyscale of [N, H, W, 3] as [N, H, W, 1] (of a 1-channel batch: itself).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { grey } from 'tfjs-contrastive/augment';
 * const images = tf.randomUniform<tf.Rank.R4>([2, 32, 32, 3]); // 2 RGB images in [0, 1]
 * const luma = grey(images); // [N, H, W, 3] -> [N, H, W, 1]
 * ```
 */
export function grey(images: Images): Images {
  if (images.shape[3] === 1) return tf.clone(images);
  return tf.tidy(() => {
    const [n, h, w] = images.shape;
    // One matrix product: wasm splits the channel axis (SplitV) about 100x slower.
    const weights = tf.tensor2d(GREY_WEIGHTS as unknown as number[], [3, 1]);
    return tf.reshape<tf.Rank.R4>(tf.matMul(tf.reshape<tf.Rank.R2>(images, [-1, 3]), weights), [
      n,
      h,
      w,
      1,
    ]);
  });
}

/**
 * The three channels of [N, H, W, 3] as [N, H, W] planes (each a product with a unit column), and
 * back (a stack and a transpose). tfjs-backend-wasm 4.22 splits and concatenates along the last
 * axis about 100x slower, and unstacks slowly too.
 */
function toPlanes(images: Images): [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D] {
  const [n, h, w] = images.shape;
  const pixels = tf.reshape<tf.Rank.R2>(images, [-1, 3]);
  const plane = (c: number): tf.Tensor3D => {
    const unit = tf.tensor2d(
      [0, 1, 2].map((k) => (k === c ? 1 : 0)),
      [3, 1],
    );
    return tf.reshape<tf.Rank.R3>(tf.matMul(pixels, unit), [n, h, w]);
  };
  return [plane(0), plane(1), plane(2)];
}

function fromPlanes(planes: readonly tf.Tensor3D[]): Images {
  return tf.transpose(tf.stack(planes as tf.Tensor3D[]), [1, 2, 3, 0]) as Images;
}

/**
 * Crops box i out of image i and resizes it to `size` (bilinear), mirrored left-right where
 * `flip[i]`, for the whole batch in one crop-and-resize. A box of exactly the output size returns
 * its pixels unchanged.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { cropResize } from 'tfjs-contrastive/augment';
 * const images = tf.randomUniform<tf.Rank.R4>([2, 32, 32, 3]); // 2 RGB images in [0, 1]
 * // The centre 16x16 of the first, the whole second mirrored, both at 24x24.
 * const views = cropResize(
 *   images,
 *   [
 *     { top: 8, left: 8, height: 16, width: 16 },
 *     { top: 0, left: 0, height: 32, width: 32 },
 *   ],
 *   [24, 24],
 *   [false, true],
 * );
 * ```
 */
export function cropResize(
  images: Images,
  boxes: readonly CropBox[],
  size: readonly [number, number],
  flip?: readonly boolean[],
): Images {
  const [n] = checkImages('cropResize', images);
  const given: unknown = boxes;
  if (!Array.isArray(given) || given.length !== n) {
    throw new ContrastiveError({
      caller: 'cropResize',
      argument: 'boxes',
      expected: `${n} boxes, one per image`,
      received: describeValue(boxes),
    });
  }
  return cropResizeFrom(images, boxes, size, flip, 0);
}

/**
 * @internal {@link cropResize} of images first, first + 1, ... (one box each) of a larger batch,
 * without slicing the batch.
 */
export function cropResizeFrom(
  images: Images,
  boxes: readonly CropBox[],
  size: readonly [number, number],
  flip: readonly boolean[] | undefined,
  first: number,
): Images {
  const caller = 'cropResize';
  const [all, h, w] = checkImages(caller, images);
  const n = boxes.length;
  if (first + n > all)
    throw new Error(`tfjs-contrastive: boxes beyond the batch (${first} + ${n} > ${all})`);
  const mirrored = flip === undefined ? undefined : checkFlags(caller, 'flip', flip, n);
  checkNumber(caller, 'size[0]', size[0], { integer: true, min: 1 });
  checkNumber(caller, 'size[1]', size[1], { integer: true, min: 1 });
  const coords = new Float32Array(4 * n);
  boxes.forEach((b, i) => {
    const ok =
      b.top >= 0 &&
      b.left >= 0 &&
      b.height >= 1 &&
      b.width >= 1 &&
      b.top + b.height <= h &&
      b.left + b.width <= w;
    if (!ok) {
      throw new ContrastiveError({
        caller,
        argument: `boxes[${i}]`,
        expected: `a box inside the ${h} x ${w} image`,
        received: JSON.stringify(b),
      });
    }
    // cropAndResize samples the box corners at pixel centres: normalised by (side - 1). A box
    // whose right edge comes first is sampled mirrored, so a flip costs nothing.
    const left = w > 1 ? b.left / (w - 1) : 0;
    const right = w > 1 ? (b.left + b.width - 1) / (w - 1) : 0;
    const flipped = mirrored?.[i] === true;
    coords.set(
      [
        h > 1 ? b.top / (h - 1) : 0,
        flipped ? right : left,
        h > 1 ? (b.top + b.height - 1) / (h - 1) : 0,
        flipped ? left : right,
      ],
      4 * i,
    );
  });
  return tf.tidy(() =>
    tf.image.cropAndResize(
      images,
      tf.tensor2d(coords, [n, 4]),
      tf.range(first, first + n, 1, 'int32'),
      [size[0], size[1]],
      'bilinear',
    ),
  );
}

/**
 * Mirrors image i left-right where `flip[i]`.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { flipHorizontal } from 'tfjs-contrastive/augment';
 * const images = tf.randomUniform<tf.Rank.R4>([2, 32, 32, 3]); // 2 RGB images in [0, 1]
 * const flipped = flipHorizontal(images, [true, false]); // only the first mirrored
 * ```
 */
export function flipHorizontal(images: Images, flip: readonly boolean[]): Images {
  const [n] = checkImages('flipHorizontal', images);
  const flags = checkFlags('flipHorizontal', 'flip', flip, n);
  return tf.tidy(() => tf.where(mask(flags), tf.reverse(images, 2), images));
}

/**
 * x b, clipped: brightness factor b per image (1 = unchanged).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { adjustBrightness } from 'tfjs-contrastive/augment';
 * const images = tf.randomUniform<tf.Rank.R4>([2, 32, 32, 3]); // 2 RGB images in [0, 1]
 * // one factor per image: the first darker, the second brighter
 * const brighter = adjustBrightness(images, [0.6, 1.4]);
 * ```
 */
export function adjustBrightness(images: Images, factors: readonly number[]): Images {
  const [n] = checkImages('adjustBrightness', images);
  const f = checkPerSample('adjustBrightness', 'factors', factors, n);
  return tf.tidy(() => tf.clipByValue(tf.mul<Images>(images, column(f)), 0, 1));
}

/**
 * Blend with the image's mean grey level: c x + (1 - c) mean, clipped (1 = unchanged).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { adjustContrast } from 'tfjs-contrastive/augment';
 * const images = tf.randomUniform<tf.Rank.R4>([2, 32, 32, 3]); // 2 RGB images in [0, 1]
 * const flatter = adjustContrast(images, [0.5, 1]); // the first at half contrast
 * ```
 */
export function adjustContrast(images: Images, factors: readonly number[]): Images {
  const [n] = checkImages('adjustContrast', images);
  const f = checkPerSample('adjustContrast', 'factors', factors, n);
  return tf.tidy(() => {
    const mean = tf.mean(grey(images), [1, 2, 3], true);
    const c = column(f);
    return tf.clipByValue(
      tf.add<Images>(tf.mul<Images>(images, c), tf.mul<Images>(mean, tf.sub<Images>(1, c))),
      0,
      1,
    );
  });
}

/**
 * Blend with the pixel's grey level: s x + (1 - s) grey, clipped (1 = unchanged; 1-channel: identity).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { adjustSaturation } from 'tfjs-contrastive/augment';
 * const images = tf.randomUniform<tf.Rank.R4>([2, 32, 32, 3]); // 2 RGB images in [0, 1]
 * const muted = adjustSaturation(images, [0, 1.5]); // the first grey, the second more vivid
 * ```
 */
export function adjustSaturation(images: Images, factors: readonly number[]): Images {
  const [n, , , c] = checkImages('adjustSaturation', images);
  const f = checkPerSample('adjustSaturation', 'factors', factors, n);
  if (c === 1) return tf.clone(images);
  return tf.tidy(() => {
    const s = column(f);
    return tf.clipByValue(
      tf.add<Images>(tf.mul<Images>(images, s), tf.mul<Images>(grey(images), tf.sub<Images>(1, s))),
      0,
      1,
    );
  });
}

/**
 * RGB [N, H, W, 3] in [0, 1] to HSV, each in [0, 1].
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { hsvToRgb, rgbToHsv } from 'tfjs-contrastive/augment';
 * const images = tf.randomUniform<tf.Rank.R4>([2, 32, 32, 3]); // 2 RGB images in [0, 1]
 * const hsv = rgbToHsv(images);
 * const back = hsvToRgb(hsv); // the images again, to float32 rounding
 * ```
 */
export function rgbToHsv(images: Images): Images {
  return tf.tidy(() => fromPlanes(hsvPlanes(toPlanes(images))));
}

type Planes = [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D];

function hsvPlanes([r, g, b]: Planes): Planes {
  const maxc = tf.maximum<tf.Tensor3D>(tf.maximum<tf.Tensor3D>(r, g), b);
  const minc = tf.minimum<tf.Tensor3D>(tf.minimum<tf.Tensor3D>(r, g), b);
  const delta = tf.sub<tf.Tensor3D>(maxc, minc);
  const s = tf.div<tf.Tensor3D>(delta, tf.where(tf.equal(maxc, 0), tf.onesLike(maxc), maxc));
  const greyish = tf.equal(delta, 0);
  const safeDelta = tf.where(greyish, tf.onesLike(delta), delta);
  const rc = tf.div<tf.Tensor3D>(tf.sub(maxc, r), safeDelta);
  const gc = tf.div<tf.Tensor3D>(tf.sub(maxc, g), safeDelta);
  const bc = tf.div<tf.Tensor3D>(tf.sub(maxc, b), safeDelta);
  const hr = tf.sub<tf.Tensor3D>(bc, gc);
  const hg = tf.add<tf.Tensor3D>(2, tf.sub(rc, bc));
  const hb = tf.add<tf.Tensor3D>(4, tf.sub(gc, rc));
  let h = tf.where(tf.equal(maxc, r), hr, tf.where(tf.equal(maxc, g), hg, hb));
  h = tf.where(greyish, tf.zerosLike(h), h);
  h = fraction(tf.add(tf.div(h, 6), 1));
  return [h, s, maxc];
}

/** x - floor(x), i.e. x mod 1 (tf.mod is slow on wasm). */
function fraction(x: tf.Tensor3D): tf.Tensor3D {
  return tf.sub(x, tf.floor(x));
}

function rgbPlanes([h, s, v]: Planes): Planes {
  const h6 = tf.mul<tf.Tensor3D>(fraction(h), 6);
  const sector = tf.floor(h6);
  const inSector = [0, 1, 2, 3, 4].map((i) => tf.equal(sector, i));
  const f = tf.sub<tf.Tensor3D>(h6, sector);
  const p = tf.mul<tf.Tensor3D>(v, tf.sub(1, s));
  const q = tf.mul<tf.Tensor3D>(v, tf.sub(1, tf.mul(s, f)));
  const t = tf.mul<tf.Tensor3D>(v, tf.sub(1, tf.mul(s, tf.sub(1, f))));
  // Sector 0..5 chooses among v, p, q, t for each channel.
  const pick = (choices: readonly tf.Tensor3D[]): tf.Tensor3D =>
    choices
      .slice(0, -1)
      .reduceRight<tf.Tensor3D>(
        (rest, choice, i) => tf.where(inSector[i] as tf.Tensor3D, choice, rest),
        choices[choices.length - 1] as tf.Tensor3D,
      );
  return [pick([v, q, p, p, t, v]), pick([t, v, v, q, p, p]), pick([p, p, t, v, v, q])];
}

/**
 * HSV [N, H, W, 3] (each in [0, 1]) back to RGB.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { hsvToRgb, rgbToHsv } from 'tfjs-contrastive/augment';
 * const images = tf.randomUniform<tf.Rank.R4>([2, 32, 32, 3]); // 2 RGB images in [0, 1]
 * const rgb = hsvToRgb(rgbToHsv(images));
 * ```
 */
export function hsvToRgb(hsv: Images): Images {
  return tf.tidy(() => fromPlanes(rgbPlanes(toPlanes(hsv))));
}

/**
 * Rotates the hue by `shifts[i]` of a full turn (0 = unchanged, 0.5 = 180 degrees; 1-channel: identity).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { adjustHue } from 'tfjs-contrastive/augment';
 * const images = tf.randomUniform<tf.Rank.R4>([2, 32, 32, 3]); // 2 RGB images in [0, 1]
 * const shifted = adjustHue(images, [0.1, -0.1]); // a tenth of a turn each way
 * ```
 */
export function adjustHue(images: Images, shifts: readonly number[]): Images {
  const [n, , , c] = checkImages('adjustHue', images);
  const f = checkPerSample('adjustHue', 'shifts', shifts, n);
  if (c === 1) return tf.clone(images);
  return tf.tidy(() => {
    const [h, s, v] = hsvPlanes(toPlanes(images));
    const shift = tf.tensor3d(Float32Array.from(f), [n, 1, 1]);
    const shifted = fraction(tf.add(tf.add(h, shift), 1));
    return tf.clipByValue(fromPlanes(rgbPlanes([shifted, s, v])), 0, 1);
  });
}

/**
 * Replaces image i by its greyscale (in every channel) where `apply[i]`.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { toGreyscale } from 'tfjs-contrastive/augment';
 * const images = tf.randomUniform<tf.Rank.R4>([2, 32, 32, 3]); // 2 RGB images in [0, 1]
 * const views = toGreyscale(images, [true, false]); // only the first turns grey
 * ```
 */
export function toGreyscale(images: Images, apply: readonly boolean[]): Images {
  const [n, h, w, c] = checkImages('toGreyscale', images);
  const flags = checkFlags('toGreyscale', 'apply', apply, n);
  if (c === 1) return tf.clone(images);
  return tf.tidy(() => {
    // Every output channel is the weighted sum: one product with a 3 x 3 matrix.
    const weights = tf.tensor2d(
      GREY_WEIGHTS.flatMap((g) => [g, g, g]),
      [3, 3],
    );
    const greys = tf.reshape<tf.Rank.R4>(
      tf.matMul(tf.reshape<tf.Rank.R2>(images, [-1, 3]), weights),
      [n, h, w, 3],
    );
    return tf.where(mask(flags), greys, images);
  });
}

/**
 * 1 - x where x >= threshold, for image i where `apply[i]`.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { solarize } from 'tfjs-contrastive/augment';
 * const images = tf.randomUniform<tf.Rank.R4>([2, 32, 32, 3]); // 2 RGB images in [0, 1]
 * const views = solarize(images, [false, true]); // the second solarised at 0.5
 * ```
 */
export function solarize(images: Images, apply: readonly boolean[], threshold = 0.5): Images {
  const [n] = checkImages('solarize', images);
  const flags = checkFlags('solarize', 'apply', apply, n);
  checkNumber('solarize', 'threshold', threshold);
  return tf.tidy(() => {
    const inverted = tf.where(
      tf.greaterEqual(images, threshold),
      tf.sub<Images>(1, images),
      images,
    );
    return tf.where(mask(flags), inverted, images);
  });
}

/**
 * @internal The normalised taps of a Gaussian of `sigma` pixels over `kernelSize` (odd) taps,
 * rounded to float32; sigma <= 0 gives the identity (1 at the centre).
 */
export function gaussianTaps(sigma: number, kernelSize: number): Float32Array {
  const half = (kernelSize - 1) / 2;
  const kernel = Array.from({ length: kernelSize }, (_, k) =>
    sigma <= 0 ? (k === half ? 1 : 0) : Math.exp(-((k - half) ** 2) / (2 * sigma * sigma)),
  );
  const sum = kernel.reduce((a, b) => a + b, 0);
  return Float32Array.from(kernel, (v) => v / sum);
}

/** @internal Checks gaussianBlur's kernel size for h x w images: odd, and reflect padding fits. */
export function checkKernelSize(kernelSize: number, h: number, w: number): void {
  const caller = 'gaussianBlur';
  checkNumber(caller, 'kernelSize', kernelSize, { integer: true, min: 1 });
  if (kernelSize % 2 === 0) {
    throw new ContrastiveError({
      caller,
      argument: 'kernelSize',
      expected: 'an odd number of taps',
      received: String(kernelSize),
    });
  }
  const half = (kernelSize - 1) / 2;
  if (half >= h || half >= w) {
    throw new ContrastiveError({
      caller,
      argument: 'kernelSize',
      expected: `at most ${2 * Math.min(h, w) - 1} taps for ${h} x ${w} images (reflect padding)`,
      received: String(kernelSize),
    });
  }
}

/**
 * Separable Gaussian blur with one sigma per image (sigma 0 = unchanged) and an odd kernel of
 * `kernelSize` taps, reflect padding (as torchvision). One depthwise convolution per direction for
 * the whole batch: the images become the channels of a single image, each with its own kernel.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { blurKernelSize, gaussianBlur } from 'tfjs-contrastive/augment';
 * const images = tf.randomUniform<tf.Rank.R4>([3, 32, 32, 3]); // 3 RGB images in [0, 1]
 * // the first unchanged, the others blurred more and more
 * const blurred = gaussianBlur(images, [0, 0.5, 2], blurKernelSize(32));
 * ```
 */
export function gaussianBlur(
  images: Images,
  sigmas: readonly number[],
  kernelSize: number,
): Images {
  const caller = 'gaussianBlur';
  const [n, h, w, c] = checkImages(caller, images);
  const s = checkPerSample(caller, 'sigmas', sigmas, n);
  checkKernelSize(kernelSize, h, w);
  const half = (kernelSize - 1) / 2;
  const taps = new Float32Array(kernelSize * n * c);
  s.forEach((sigma, i) => {
    const kernel = gaussianTaps(sigma, kernelSize);
    for (let k = 0; k < kernelSize; k++) {
      for (let ch = 0; ch < c; ch++) taps[k * n * c + i * c + ch] = kernel[k] ?? 0;
    }
  });
  return tf.tidy(() => {
    // [N, H, W, C] -> [1, H, W, N C]: image i's channel ch is channel i C + ch.
    const stacked = tf.reshape<tf.Rank.R4>(tf.transpose(images, [1, 2, 0, 3]), [1, h, w, n * c]);
    const padded = tf.mirrorPad(
      stacked,
      [
        [0, 0],
        [half, half],
        [half, half],
        [0, 0],
      ],
      'reflect',
    );
    const vertical = tf.tensor4d(taps, [kernelSize, 1, n * c, 1]);
    const horizontal = tf.tensor4d(taps, [1, kernelSize, n * c, 1]);
    const blurred = tf.depthwiseConv2d(
      tf.depthwiseConv2d(padded, vertical, 1, 'valid'),
      horizontal,
      1,
      'valid',
    );
    return tf.transpose(tf.reshape(blurred, [h, w, n, c]), [2, 0, 1, 3]);
  });
}

/**
 * (x - mean) / std per channel.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { normalizeImages } from 'tfjs-contrastive/augment';
 * const view = tf.randomUniform<tf.Rank.R4>([8, 32, 32, 3]); // an augmented view in [0, 1]
 * // ImageNet statistics, after augmentation and before the encoder
 * const x = normalizeImages(view, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
 * ```
 */
export function normalizeImages(
  images: Images,
  mean: readonly number[],
  std: readonly number[],
): Images {
  const caller = 'normalizeImages';
  const [, , , c] = checkImages(caller, images);
  for (const [name, v] of [
    ['mean', mean],
    ['std', std],
  ] as const) {
    if (!Array.isArray(v) || v.length !== c) {
      throw new ContrastiveError({
        caller,
        argument: name,
        expected: `${c} numbers, one per channel`,
        received: describeValue(v),
      });
    }
  }
  std.forEach((v, i) => {
    checkNumber(caller, `std[${i}]`, v, { greaterThan: 0 });
  });
  return tf.tidy(() =>
    tf.div<Images>(
      tf.sub<Images>(images, tf.tensor1d(mean as number[])),
      tf.tensor1d(std as number[]),
    ),
  );
}

/**
 * sRGB [N, H, W, 3] in [0, 1] to CIE L*a*b* (D65 white), as CMC's views (L and ab): L in [0, 100],
 * a and b roughly in [-128, 127]. The sRGB transfer curve is undone first.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { rgbToLab } from 'tfjs-contrastive/augment';
 * const images = tf.randomUniform<tf.Rank.R4>([8, 32, 32, 3]); // 8 RGB images in [0, 1]
 * // CMC's two views of each image: the L channel and the ab channels
 * const lab = rgbToLab(images);
 * const [l, ab] = tf.split(lab, [1, 2], 3);
 * ```
 */
export function rgbToLab(images: Images): Images {
  const [, , , c] = checkImages('rgbToLab', images);
  if (c !== 3) {
    throw new ContrastiveError({
      caller: 'rgbToLab',
      argument: 'images',
      expected: 'RGB images [N, H, W, 3]',
      received: `${c} channel`,
    });
  }
  return tf.tidy(() => {
    const linear = tf.where(
      tf.lessEqual(images, 0.04045),
      tf.div<Images>(images, 12.92),
      tf.pow<Images>(tf.div<Images>(tf.add<Images>(images, 0.055), 1.055), 2.4),
    );
    // sRGB (D65) to XYZ, each row divided by the white point's coordinate.
    const m = tf.tensor2d(
      [
        [0.412453 / 0.950456, 0.212671, 0.019334 / 1.088754],
        [0.35758 / 0.950456, 0.71516, 0.119193 / 1.088754],
        [0.180423 / 0.950456, 0.072169, 0.950227 / 1.088754],
      ],
      [3, 3],
    );
    const [n, h, w] = images.shape;
    const xyz = tf.reshape(tf.matMul(tf.reshape(linear, [-1, 3]), m), [n, h, w, 3]);
    const eps = 216 / 24389;
    const f = tf.where(
      tf.greater(xyz, eps),
      tf.pow<Images>(tf.maximum<Images>(xyz, eps), 1 / 3),
      tf.add<Images>(tf.mul<Images>(xyz, 24389 / 27 / 116), 16 / 116),
    );
    const [fx, fy, fz] = toPlanes(f);
    const l = tf.sub<tf.Tensor3D>(tf.mul(fy, 116), 16);
    const a = tf.mul<tf.Tensor3D>(tf.sub(fx, fy), 500);
    const b = tf.mul<tf.Tensor3D>(tf.sub(fy, fz), 200);
    return fromPlanes([l, a, b]);
  });
}
