/**
 * Per-method augmentation recipes with the defaults of the papers' code (see docs/augment.md),
 * scaled by the image side so that 28x28 and 32x32 data work out of the box: global views keep
 * the side, local views are 96/224 of it, the blur kernel is about 10% of the view.
 */
import { checkNumber, describeValue } from '../core/checks.js';
import { ContrastiveError } from '../core/errors.js';
import type { JitterSpec, ViewSpec } from './pipeline.js';

const STRONG: JitterSpec = { brightness: 0.8, contrast: 0.8, saturation: 0.8, hue: 0.2, p: 0.8 };
const BYOL_JITTER: JitterSpec = {
  brightness: 0.4,
  contrast: 0.4,
  saturation: 0.2,
  hue: 0.1,
  p: 0.8,
};

function side(caller: string, size: number): number {
  checkNumber(caller, 'size', size, { integer: true, min: 4 });
  return size;
}

/**
 * The side of a local crop for an image side: 96/224 of it (SwAV, DINO), at least 4.
 *
 * @example
 * ```ts
 * import { localCropSize } from 'tfjs-contrastive/augment';
 * localCropSize(224); // 96
 * localCropSize(32); // 14
 * ```
 */
export function localCropSize(size: number): number {
  return Math.max(4, Math.round((96 / 224) * size));
}

/**
 * SimCLR: two views; crop 0.08-1, flip, jitter (0.8, 0.8, 0.8, 0.2) p 0.8, greyscale 0.2, blur 0.5.
 *
 * @example
 * <!-- snippet setup="images step" -->
 * ```ts
 * import { multiCrop, simclrRecipe } from 'tfjs-contrastive/augment';
 * // images: [N, 32, 32, 3] in [0, 1]; two views of each, reproducible for the seed
 * const [view1, view2] = multiCrop(images, { crops: simclrRecipe(32), rng: step });
 * ```
 */
export function simclrRecipe(size: number): ViewSpec[] {
  const s = side('simclrRecipe', size);
  return [
    { count: 2, size: s, scale: [0.08, 1], jitter: STRONG, greyscale: 0.2, blur: { p: 0.5 } },
  ];
}

/**
 * MoCo v1: two views; crop 0.2-1, flip, jitter (0.4, 0.4, 0.4, 0.4) always, greyscale 0.2.
 *
 * @example
 * <!-- snippet setup="images step" -->
 * ```ts
 * import { multiCrop, mocoV1Recipe } from 'tfjs-contrastive/augment';
 * const [view1, view2] = multiCrop(images, { crops: mocoV1Recipe(32), rng: step });
 * ```
 */
export function mocoV1Recipe(size: number): ViewSpec[] {
  const s = side('mocoV1Recipe', size);
  const jitter: JitterSpec = { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.4, p: 1 };
  return [{ count: 2, size: s, scale: [0.2, 1], jitter, greyscale: 0.2 }];
}

/**
 * MoCo v2 and SimSiam: two views; crop 0.2-1, flip, jitter (0.4, 0.4, 0.4, 0.1) p 0.8, greyscale 0.2, blur 0.5.
 *
 * @example
 * <!-- snippet setup="images step" -->
 * ```ts
 * import { multiCrop, mocoV2Recipe } from 'tfjs-contrastive/augment';
 * const [view1, view2] = multiCrop(images, { crops: mocoV2Recipe(32), rng: step });
 * ```
 */
export function mocoV2Recipe(size: number): ViewSpec[] {
  const s = side('mocoV2Recipe', size);
  const jitter: JitterSpec = { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1, p: 0.8 };
  return [{ count: 2, size: s, scale: [0.2, 1], jitter, greyscale: 0.2, blur: { p: 0.5 } }];
}

/**
 * BYOL and MoCo v3: two asymmetric views; crop 0.08-1, flip, jitter (0.4, 0.4, 0.2, 0.1) p 0.8,
 * greyscale 0.2; view 1 always blurred, view 2 blurred with p 0.1 and solarised with p 0.2.
 *
 * @example
 * <!-- snippet setup="images step" -->
 * ```ts
 * import { multiCrop, byolRecipe } from 'tfjs-contrastive/augment';
 * const [view1, view2] = multiCrop(images, { crops: byolRecipe(32), rng: step });
 * ```
 */
export function byolRecipe(size: number): ViewSpec[] {
  const s = side('byolRecipe', size);
  const common = { size: s, scale: [0.08, 1] as const, jitter: BYOL_JITTER, greyscale: 0.2 };
  return [
    { ...common, blur: { p: 1 } },
    { ...common, blur: { p: 0.1 }, solarize: 0.2 },
  ];
}

/**
 * SwAV: 2 global views (crop 0.14-1) and `localCrops` local views (crop 0.05-0.14, side 96/224 of
 * the image); flip, jitter (0.8, 0.8, 0.8, 0.2) p 0.8, greyscale 0.2, blur 0.5.
 *
 * @example
 * <!-- snippet setup="images step" -->
 * ```ts
 * import { multiCrop, swavRecipe } from 'tfjs-contrastive/augment';
 * // images: [N, 32, 32, 3]: 2 views of 32x32, then 6 of 14x14
 * const views = multiCrop(images, { crops: swavRecipe(32), rng: step });
 * ```
 */
export function swavRecipe(size: number, localCrops = 6): ViewSpec[] {
  const s = side('swavRecipe', size);
  checkNumber('swavRecipe', 'localCrops', localCrops, { integer: true, min: 0 });
  const common = { jitter: STRONG, greyscale: 0.2, blur: { p: 0.5 } };
  const views: ViewSpec[] = [{ ...common, count: 2, size: s, scale: [0.14, 1] }];
  if (localCrops > 0)
    views.push({ ...common, count: localCrops, size: localCropSize(s), scale: [0.05, 0.14] });
  return views;
}

/**
 * DINO: 2 global views (crop 0.4-1; the first always blurred, the second blurred with p 0.1 and
 * solarised with p 0.2) and `localCrops` local views (crop 0.05-0.4, side 96/224, blur 0.5); flip,
 * jitter (0.4, 0.4, 0.2, 0.1) p 0.8, greyscale 0.2.
 *
 * @example
 * <!-- snippet setup="images step" -->
 * ```ts
 * import { dinoRecipe, multiCrop } from 'tfjs-contrastive/augment';
 * // images: [N, 32, 32, 3]: 2 global views of 32x32, then 8 local ones of 14x14
 * const views = multiCrop(images, { crops: dinoRecipe(32), rng: step });
 * ```
 */
export function dinoRecipe(size: number, localCrops = 8): ViewSpec[] {
  const s = side('dinoRecipe', size);
  checkNumber('dinoRecipe', 'localCrops', localCrops, { integer: true, min: 0 });
  const common = { jitter: BYOL_JITTER, greyscale: 0.2 };
  const views: ViewSpec[] = [
    { ...common, size: s, scale: [0.4, 1], blur: { p: 1 } },
    { ...common, size: s, scale: [0.4, 1], blur: { p: 0.1 }, solarize: 0.2 },
  ];
  if (localCrops > 0) {
    views.push({
      ...common,
      count: localCrops,
      size: localCropSize(s),
      scale: [0.05, 0.4],
      blur: { p: 0.5 },
    });
  }
  return views;
}

/** Options of {@link smallImageRecipe}. */
export interface SmallImageRecipeOptions {
  /** Channels of the images: 1 (greyscale) or 3. Default `3`. */
  readonly channels?: number;
  /**
   * BYOL's asymmetric pair (view 1 always blurred; view 2 rarely blurred, sometimes solarised)
   * instead of two views drawn alike. Default `false`.
   */
  readonly asymmetric?: boolean;
  /** Range of the crop's area. Default `[0.3, 1]`. */
  readonly scale?: readonly [number, number];
  /** Probability of a horizontal flip. Default `0.5`; `0` for data where mirroring changes meaning (text, digits). */
  readonly flip?: number;
  /**
   * Multi-crop: this many local views after the two global ones, of side
   * {@link localCropSize}(size), cropped to `localScale` of the area, jittered alike and blurred
   * with p 0.5 (SwAV's and DINO's small views). Default `0`.
   */
  readonly localCrops?: number;
  /**
   * Range of a local view's crop area. Default `[0.1, 0.3]`: below the global views' range, as in
   * SwAV (0.05-0.14 under 0.14-1) and DINO (0.05-0.4 under 0.4-1), and near the local view's
   * own resolution (0.2 of a 28 px image is a 12 px square, the local side at 28 px).
   */
  readonly localScale?: readonly [number, number];
}

/**
 * Two views for small images (28 to 64 px, one or three channels), which the presets use by
 * default at those sizes: the papers' recipes assume 224 px colour photographs, and on small
 * images they hurt. Cropping down to 8% of a 28 px image leaves a few pixels of texture, and their
 * jitter is spent on hue and saturation, which do nothing to one channel (by hand, SimCLR's loss
 * barely fell with `simclrRecipe(28)`: 6.43 -> 4.33 in 217 steps, and fell well with the recipe
 * below: 5.0 -> 2.4). This one crops to 30-100% of the area, flips with p 0.5, jitters brightness
 * and contrast by 0.4 (and, for colour, saturation 0.4 and hue 0.1, then greyscale with p 0.2)
 * with p 0.8, and blurs with a 3-tap kernel with p 0.5 (sigma 0.1-2).
 *
 * @param size - the side of the images (and of the views).
 * @param options - `channels` (3), `asymmetric` (false), `scale` ([0.3, 1]), `flip` (0.5).
 * @returns the view specs: one kind of view drawn twice, or BYOL's two kinds.
 * @throws {@link ContrastiveError} when `size` is not an integer >= 4 or `channels` is not 1 or 3.
 *
 * @example
 * <!-- snippet setup="fashion step" -->
 * ```ts
 * import { multiCrop, smallImageRecipe } from 'tfjs-contrastive/augment';
 * // Fashion-MNIST: [N, 28, 28, 1]
 * const [view1, view2] = multiCrop(images, { crops: smallImageRecipe(28, { channels: 1 }), rng: step });
 * ```
 */
export function smallImageRecipe(size: number, options: SmallImageRecipeOptions = {}): ViewSpec[] {
  const caller = 'smallImageRecipe';
  const s = side(caller, size);
  const channels = options.channels ?? 3;
  if (channels !== 1 && channels !== 3) {
    throw new ContrastiveError({
      caller,
      argument: 'options.channels',
      expected: '1 or 3',
      received: describeValue(channels),
    });
  }
  const colour = channels === 3;
  const jitter: JitterSpec = colour
    ? { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1, p: 0.8 }
    : { brightness: 0.4, contrast: 0.4, saturation: 0, hue: 0, p: 0.8 };
  const common: ViewSpec = {
    size: s,
    scale: options.scale ?? [0.3, 1],
    flip: options.flip ?? 0.5,
    jitter,
    ...(colour ? { greyscale: 0.2 } : {}),
  };
  const localCrops = options.localCrops ?? 0;
  checkNumber(caller, 'options.localCrops', localCrops, { integer: true, min: 0 });
  const local: ViewSpec[] =
    localCrops === 0
      ? []
      : [
          {
            ...common,
            count: localCrops,
            size: localCropSize(s),
            scale: options.localScale ?? [0.1, 0.3],
            blur: { p: 0.5, kernelSize: 3 },
          },
        ];
  if (options.asymmetric === true) {
    return [
      { ...common, blur: { p: 1, kernelSize: 3 } },
      { ...common, blur: { p: 0.1, kernelSize: 3 }, solarize: 0.2 },
      ...local,
    ];
  }
  return [{ ...common, count: 2, blur: { p: 0.5, kernelSize: 3 } }, ...local];
}
