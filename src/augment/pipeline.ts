/**
 * Random augmentation views: per-sample parameters drawn from the library's seeded random source
 * (in a fixed order, so a seed reproduces every view), then the batched operations of ops.ts.
 * Order within a view (torchvision / the papers): random resized crop -> horizontal flip ->
 * colour jitter (with probability p, its four parts in a random order per image) -> random
 * greyscale -> Gaussian blur -> solarize.
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkNumber, describeValue } from '../core/checks.js';
import { ContrastiveError } from '../core/errors.js';
import { SeededRandom } from '../core/random.js';
import {
  type CropBox,
  type Images,
  adjustBrightness,
  adjustContrast,
  adjustHue,
  adjustSaturation,
  checkImages,
  checkKernelSize,
  cropResizeFrom,
  gaussianBlur,
  solarize,
  toGreyscale,
} from './ops.js';
import { type ColourOp, type HostPlan, canAugmentOnHost, hostAugment } from './host.js';

/** Colour jitter strengths (torchvision's ColorJitter) and the probability of applying it. */
export interface JitterSpec {
  /** Brightness factor drawn from [max(0, 1 - b), 1 + b]. */
  readonly brightness: number;
  /** Contrast factor drawn from [max(0, 1 - c), 1 + c]. */
  readonly contrast: number;
  /** Saturation factor drawn from [max(0, 1 - s), 1 + s]. */
  readonly saturation: number;
  /** Hue shift drawn from [-h, h] of a full turn (h <= 0.5). */
  readonly hue: number;
  /** Probability that an image is jittered at all. */
  readonly p: number;
}

/** Gaussian blur of a view. */
export interface BlurSpec {
  /** Probability that an image is blurred. */
  readonly p: number;
  /** Range of sigma in pixels, drawn per image. Default [0.1, 2]. */
  readonly sigma?: readonly [number, number];
  /** Kernel taps, odd. Default: about 10% of the view side ({@link blurKernelSize}). */
  readonly kernelSize?: number;
}

/** One kind of view: its crop and the augmentations applied to it. */
export interface ViewSpec {
  /** How many views of this kind. Default 1. */
  readonly count?: number;
  /** Output side in pixels (square views). */
  readonly size: number;
  /** Range of the crop's area as a fraction of the image. Default [0.08, 1]. */
  readonly scale?: readonly [number, number];
  /** Range of the crop's aspect ratio (width / height). Default [3/4, 4/3]. */
  readonly ratio?: readonly [number, number];
  /** Probability of a horizontal flip. Default 0.5. */
  readonly flip?: number;
  /** Colour jitter, or none. */
  readonly jitter?: JitterSpec;
  /** Probability of greyscale. Default 0. */
  readonly greyscale?: number;
  /** Gaussian blur, or none. */
  readonly blur?: BlurSpec;
  /** Probability of solarisation (threshold 0.5). Default 0. */
  readonly solarize?: number;
}

/**
 * torchvision's RandomResizedCrop box: up to 10 tries of an area in `scale` and a log-uniform
 * aspect ratio in `ratio` that fit, else the largest centred box within the ratio range.
 *
 * @example
 * ```ts
 * import { SeededRandom } from 'tfjs-contrastive';
 * import { randomCropBox } from 'tfjs-contrastive/augment';
 * const box = randomCropBox(new SeededRandom(1), 32, 32, [0.08, 1], [3 / 4, 4 / 3]);
 * // { top, left, height, width } inside the 32x32 image
 * ```
 */
export function randomCropBox(
  rng: SeededRandom,
  height: number,
  width: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
): CropBox {
  const area = height * width;
  const [logLow, logHigh] = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * rng.uniformRange(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniformRange(logLow, logHigh));
    const w = Math.round(Math.sqrt(target * aspect));
    const h = Math.round(Math.sqrt(target / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      return {
        top: rng.integer(height - h + 1),
        left: rng.integer(width - w + 1),
        height: h,
        width: w,
      };
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < ratio[0]) h = Math.round(w / ratio[0]);
  else if (inRatio > ratio[1]) w = Math.round(h * ratio[1]);
  return {
    top: Math.floor((height - h) / 2),
    left: Math.floor((width - w) / 2),
    height: h,
    width: w,
  };
}

/** Options of {@link randomResizedCrop}. */
export interface RandomResizedCropOptions {
  /** Output side in pixels (square). */
  readonly size: number;
  /** Range of the crop's area as a fraction of the image. Default [0.08, 1]. */
  readonly scale?: readonly [number, number];
  /** Range of the crop's aspect ratio (width / height). Default [3/4, 4/3]. */
  readonly ratio?: readonly [number, number];
  /** The random source (or a seed for a new one). Default seed 0. */
  readonly rng?: SeededRandom | number;
}

/**
 * torchvision's RandomResizedCrop for a whole batch: one random box per image
 * ({@link randomCropBox}), all cropped and resized by one crop-and-resize. [N, size, size, C].
 *
 * @example
 * <!-- snippet setup="images" -->
 * ```ts
 * import { randomResizedCrop } from 'tfjs-contrastive/augment';
 * const crops = randomResizedCrop(images, { size: 24, scale: [0.2, 1], rng: 3 });
 * ```
 */
export function randomResizedCrop(images: Images, options: RandomResizedCropOptions): Images {
  const caller = 'randomResizedCrop';
  const [n, h, w] = checkImages(caller, images);
  checkNumber(caller, 'options.size', options.size, { integer: true, min: 1 });
  const scale = checkRange(caller, 'options.scale', options.scale ?? [0.08, 1], 0);
  const ratio = checkRange(caller, 'options.ratio', options.ratio ?? [3 / 4, 4 / 3], 1e-6);
  const rng =
    options.rng instanceof SeededRandom ? options.rng : new SeededRandom(options.rng ?? 0);
  const boxes = Array.from({ length: n }, () => randomCropBox(rng, h, w, scale, ratio));
  return cropResizeFrom(images, boxes, [options.size, options.size], undefined, 0);
}

/**
 * The default blur kernel for a view side: about 10% of it, odd (BYOL: 23 taps at 224).
 *
 * @example
 * ```ts
 * import { blurKernelSize } from 'tfjs-contrastive/augment';
 * blurKernelSize(224); // 23
 * blurKernelSize(32); // 3
 * ```
 */
export function blurKernelSize(size: number): number {
  const k = Math.max(3, Math.floor(0.1 * size));
  return k % 2 === 0 ? k + 1 : k;
}

function checkProbability(caller: string, argument: string, p: number | undefined): number {
  const value = p ?? 0;
  checkNumber(caller, argument, value, { min: 0, max: 1 });
  return value;
}

function checkRange(
  caller: string,
  argument: string,
  range: unknown,
  min: number,
): readonly [number, number] {
  const ok =
    Array.isArray(range) &&
    range.length === 2 &&
    range.every((v) => typeof v === 'number' && Number.isFinite(v)) &&
    (range[0] as number) >= min &&
    (range[0] as number) <= (range[1] as number);
  if (!ok) {
    throw new ContrastiveError({
      caller,
      argument,
      expected: `[low, high] with ${min} <= low <= high`,
      received: describeValue(range),
    });
  }
  return range as [number, number];
}

/**
 * One random view of every image of the batch (the output is [N, size, size, C]), drawn from
 * `rng`. The input is not disposed.
 *
 * @example
 * <!-- snippet setup="images" -->
 * ```ts
 * import { SeededRandom } from 'tfjs-contrastive';
 * import { augmentView, simclrRecipe } from 'tfjs-contrastive/augment';
 * const rng = new SeededRandom(0);
 * const spec = simclrRecipe(32)[0]!; // the spec of SimCLR's first view
 * const v1 = augmentView(images, spec, rng);
 * ```
 */
export function augmentView(images: Images, spec: ViewSpec, rng: SeededRandom): Images {
  const caller = 'augmentView';
  const [n, h, w] = checkImages(caller, images);
  checkNumber(caller, 'spec.size', spec.size, { integer: true, min: 1 });
  const scale = checkRange(caller, 'spec.scale', spec.scale ?? [0.08, 1], 0);
  const ratio = checkRange(caller, 'spec.ratio', spec.ratio ?? [3 / 4, 4 / 3], 1e-6);
  const pFlip = checkProbability(caller, 'spec.flip', spec.flip ?? 0.5);
  const pGrey = checkProbability(caller, 'spec.greyscale', spec.greyscale);
  const pSolarize = checkProbability(caller, 'spec.solarize', spec.solarize);
  const jitter = spec.jitter;
  if (jitter !== undefined) {
    for (const key of ['brightness', 'contrast', 'saturation'] as const) {
      checkNumber(caller, `spec.jitter.${key}`, jitter[key], { min: 0 });
    }
    checkNumber(caller, 'spec.jitter.hue', jitter.hue, { min: 0, max: 0.5 });
    checkProbability(caller, 'spec.jitter.p', jitter.p);
  }
  const blur = spec.blur;
  let sigmaRange: readonly [number, number] = [0.1, 2];
  let kernelSize = blurKernelSize(spec.size);
  if (blur !== undefined) {
    checkProbability(caller, 'spec.blur.p', blur.p);
    sigmaRange = checkRange(caller, 'spec.blur.sigma', blur.sigma ?? sigmaRange, 0);
    kernelSize = blur.kernelSize ?? kernelSize;
  }

  const hueStrength = jitter?.hue ?? 0;
  // Every random choice, per image, in a fixed order.
  const boxes: CropBox[] = [];
  const flips: boolean[] = [];
  const factors = {
    brightness: [] as number[],
    contrast: [] as number[],
    saturation: [] as number[],
    hue: [] as number[],
  };
  const orders: number[][] = [];
  const greys: boolean[] = [];
  const sigmas: number[] = [];
  const solarized: boolean[] = [];
  for (let i = 0; i < n; i++) {
    boxes.push(randomCropBox(rng, h, w, scale, ratio));
    flips.push(rng.uniform() < pFlip);
    const jittered = jitter !== undefined && rng.uniform() < jitter.p;
    const draw = (strength: number): number =>
      jittered && strength > 0 ? rng.uniformRange(Math.max(0, 1 - strength), 1 + strength) : 1;
    factors.brightness.push(draw(jitter?.brightness ?? 0));
    factors.contrast.push(draw(jitter?.contrast ?? 0));
    factors.saturation.push(draw(jitter?.saturation ?? 0));
    factors.hue.push(jittered && hueStrength > 0 ? rng.uniformRange(-hueStrength, hueStrength) : 0);
    const order = [0, 1, 2, 3];
    if (jittered) {
      for (let k = 3; k > 0; k--) {
        const j = rng.integer(k + 1);
        [order[k], order[j]] = [order[j] ?? 0, order[k] ?? 0];
      }
    }
    orders.push(order);
    greys.push(rng.uniform() < pGrey);
    sigmas.push(
      blur !== undefined && rng.uniform() < blur.p
        ? rng.uniformRange(sigmaRange[0], sigmaRange[1])
        : 0,
    );
    solarized.push(rng.uniform() < pSolarize);
  }

  const params: ChunkParams = {
    boxes,
    flips,
    jitter: jitter === undefined ? undefined : { ...factors, orders },
    greys,
    sigmas,
    kernelSize,
    solarized,
  };
  if (canAugmentOnHost()) return viewOnHost(images, spec.size, params);

  // Bounded memory: the operations run on chunks of at most CHUNK_PIXELS input pixels (hue
  // jitter alone keeps about thirty intermediates of the chunk's size alive).
  const chunk = Math.max(1, Math.floor(CHUNK_PIXELS / (h * w)));
  const parts: Images[] = [];
  try {
    for (let start = 0; start < n; start += chunk) {
      const end = Math.min(n, start + chunk);
      const pick = <T>(xs: readonly T[]): T[] => xs.slice(start, end);
      const j = params.jitter;
      parts.push(
        viewOfChunk(images, start, spec.size, {
          boxes: pick(boxes),
          flips: pick(flips),
          jitter:
            j === undefined
              ? undefined
              : {
                  brightness: pick(j.brightness),
                  contrast: pick(j.contrast),
                  saturation: pick(j.saturation),
                  hue: pick(j.hue),
                  orders: pick(j.orders),
                },
          greys: pick(greys),
          sigmas: pick(sigmas),
          kernelSize,
          solarized: pick(solarized),
        }),
      );
    }
  } catch (e) {
    tf.dispose(parts);
    throw e;
  }
  if (parts.length === 1) return parts[0] as Images;
  const joined = tf.concat(parts);
  tf.dispose(parts);
  return joined;
}

/** Input pixels (N H W) per chunk of {@link augmentView}. */
const CHUNK_PIXELS = 1 << 20;

interface ChunkParams {
  boxes: CropBox[];
  flips: boolean[];
  jitter:
    | {
        brightness: number[];
        contrast: number[];
        saturation: number[];
        hue: number[];
        orders: number[][];
      }
    | undefined;
  greys: boolean[];
  sigmas: number[];
  kernelSize: number;
  solarized: boolean[];
}

/**
 * Applies `f` to the images at `chosen` only (ascending indices), leaving the others: the subset
 * is gathered, transformed, and put back with one more gather over [x, f(subset)].
 */
function onSubset(x: Images, chosen: readonly number[], f: (subset: Images) => Images): Images {
  const n = x.shape[0];
  if (chosen.length === n) return f(x);
  return tf.tidy(() => {
    const changed = f(tf.gather(x, tf.tensor1d(chosen as number[], 'int32')));
    const where = Int32Array.from({ length: n }, (_, i) => i);
    chosen.forEach((i, k) => (where[i] = n + k));
    return tf.gather(tf.concat([x, changed]), tf.tensor1d(where, 'int32'));
  });
}

function indicesWhere(flags: readonly boolean[]): number[] {
  return flags.flatMap((f, i) => (f ? [i] : []));
}

/** The jitter transforms in the order of {@link ChunkParams.jitter}'s orders (0..3). */
const JITTER_OPS: readonly { op: ColourOp; neutral: number }[] = [
  { op: 'brightness', neutral: 1 },
  { op: 'contrast', neutral: 1 },
  { op: 'saturation', neutral: 1 },
  { op: 'hue', neutral: 0 },
];

/**
 * One view of the whole batch on cpu and wasm: one crop-and-resize, then every image's colour
 * steps, greyscale, blur and solarisation in host loops (host.ts), in the same order and with
 * the same neutral steps left out as {@link viewOfChunk}.
 */
function viewOnHost(images: Images, size: number, p: ChunkParams): Images {
  const jitter = p.jitter;
  const plans: HostPlan[] = p.boxes.map((_, i) => ({
    steps:
      jitter === undefined
        ? []
        : (jitter.orders[i] ?? []).flatMap((t) => {
            const kind = JITTER_OPS[t];
            const value = kind === undefined ? undefined : jitter[kind.op][i];
            return kind === undefined || value === undefined || value === kind.neutral
              ? []
              : [{ op: kind.op, value }];
          }),
    grey: p.greys[i] === true,
    sigma: p.sigmas[i] ?? 0,
    solarize: p.solarized[i] === true,
  }));
  if (plans.some((plan) => plan.sigma > 0)) checkKernelSize(p.kernelSize, size, size);
  const x = cropResizeFrom(images, p.boxes, [size, size], p.flips, 0);
  try {
    const y = hostAugment(x, plans, p.kernelSize, 0.5);
    if (y === undefined) throw new Error('tfjs-contrastive: host augmentation is not available');
    return y;
  } finally {
    x.dispose();
  }
}

/** The operations of one view on a chunk, each intermediate freed as soon as it is used. */
function viewOfChunk(images: Images, first: number, size: number, p: ChunkParams): Images {
  // The crop reads the chunk's images straight from the batch, and the flip is part of the crop
  // (a mirrored box), so neither costs a pass of its own.
  let x = cropResizeFrom(images, p.boxes, [size, size], p.flips, first);
  const step = (next: Images): void => {
    x.dispose();
    x = next;
  };
  try {
    const jitter = p.jitter;
    if (jitter !== undefined) {
      // Slot k applies, to each image, the transform its order puts k-th; the others get the
      // neutral factor (1, or a hue shift of 0), which is the identity.
      const ops = [
        { apply: adjustBrightness, values: jitter.brightness, neutral: 1 },
        { apply: adjustContrast, values: jitter.contrast, neutral: 1 },
        { apply: adjustSaturation, values: jitter.saturation, neutral: 1 },
        { apply: adjustHue, values: jitter.hue, neutral: 0 },
      ];
      // Each image meets each transform once, in its own order: slot k transforms, on the subset
      // of images whose order puts it k-th, only them.
      for (let slot = 0; slot < 4; slot++) {
        ops.forEach(({ apply, values, neutral }, t) => {
          const chosen = indicesWhere(
            values.map((f, i) => jitter.orders[i]?.[slot] === t && f !== neutral),
          );
          if (chosen.length > 0) {
            step(
              onSubset(x, chosen, (subset) =>
                apply(
                  subset,
                  chosen.map((i) => values[i] ?? neutral),
                ),
              ),
            );
          }
        });
      }
    }
    const greys = indicesWhere(p.greys);
    if (greys.length > 0) {
      step(
        onSubset(x, greys, (subset) =>
          toGreyscale(
            subset,
            greys.map(() => true),
          ),
        ),
      );
    }
    const blurred = indicesWhere(p.sigmas.map((v) => v > 0));
    if (blurred.length > 0) {
      step(
        onSubset(x, blurred, (subset) =>
          gaussianBlur(
            subset,
            blurred.map((i) => p.sigmas[i] ?? 0),
            p.kernelSize,
          ),
        ),
      );
    }
    const solarized = indicesWhere(p.solarized);
    if (solarized.length > 0) {
      step(
        onSubset(x, solarized, (subset) =>
          solarize(
            subset,
            solarized.map(() => true),
            0.5,
          ),
        ),
      );
    }
  } catch (e) {
    // A step that throws (a blur kernel too wide, say) leaves no intermediate behind.
    x.dispose();
    throw e;
  }
  return x;
}

/** Options of {@link multiCrop}. */
export interface MultiCropOptions {
  /** The kinds of view, global ones first (each `count` times). */
  readonly crops: readonly ViewSpec[];
  /** The random source (or a seed for a new one). Default seed 0. */
  readonly rng?: SeededRandom | number;
}

/**
 * All the views of a recipe for a batch: for each kind of view, `count` random views, in order
 * (global crops first, as SwAV and DINO expect). Each is [N, size, size, C]; dispose them after use.
 *
 * @example
 * <!-- snippet setup="images" -->
 * ```ts
 * import { dinoRecipe, multiCrop } from 'tfjs-contrastive/augment';
 * const views = multiCrop(images, { crops: dinoRecipe(32), rng: 1 }); // 2 global + 8 local
 * ```
 */
export function multiCrop(images: Images, options: MultiCropOptions): Images[] {
  const caller = 'multiCrop';
  checkImages(caller, images);
  const crops: unknown = options.crops;
  if (!Array.isArray(crops) || crops.length === 0) {
    throw new ContrastiveError({
      caller,
      argument: 'options.crops',
      expected: 'a non-empty array of view specs',
      received: describeValue(crops),
    });
  }
  const rng =
    options.rng instanceof SeededRandom ? options.rng : new SeededRandom(options.rng ?? 0);
  const views: Images[] = [];
  try {
    options.crops.forEach((spec, i) => {
      const count = spec.count ?? 1;
      checkNumber(caller, `options.crops[${i}].count`, count, { integer: true, min: 1 });
      for (let k = 0; k < count; k++) views.push(augmentView(images, spec, rng));
    });
  } catch (e) {
    tf.dispose(views);
    throw e;
  }
  return views;
}
