/**
 * Small, honest encoders that train in minutes on two CPU cores, for the presets and examples:
 * each returns the feature extractor (images [batch, H, W, C] in, features [batch, D] out) that
 * heads go on.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { checkBoolean, checkNumber } from '../core/checks.js';
import { ContrastiveError } from '../core/errors.js';
import { describeValue } from '../core/checks.js';
import { BatchNorm } from './batch-norm.js';
import { registerLayers } from './register.js';
import { LayerSeeds } from './seeds.js';
import { ClassTokenPosition, MultiHeadSelfAttention, SelectToken } from './vit-layers.js';

type Node = tfl.SymbolicTensor;

function apply(layer: tfl.layers.Layer, x: Node | Node[]): Node {
  return layer.apply(x) as Node;
}

/**
 * [height, width, channels] of positive integers; with `anySize`, height and width may be null (a
 * conv net with global pooling takes any size, e.g. multi-crop's views).
 */
function checkImageShape<AnySize extends boolean>(
  caller: string,
  shape: unknown,
  anySize: AnySize,
): AnySize extends true ? [number | null, number | null, number] : [number, number, number] {
  const positive = (d: unknown): boolean => typeof d === 'number' && Number.isInteger(d) && d >= 1;
  const side = (d: unknown): boolean => positive(d) || (anySize && d === null);
  const ok =
    Array.isArray(shape) &&
    shape.length === 3 &&
    side(shape[0]) &&
    side(shape[1]) &&
    positive(shape[2]);
  if (!ok) {
    throw new ContrastiveError({
      caller,
      argument: 'args.inputShape',
      expected: `the image shape [height, width, channels], e.g. [28, 28, 1] or [32, 32, 3]${
        anySize ? ', or [null, null, channels] for any size' : ''
      }`,
      received: describeValue(shape),
    });
  }
  return shape as never;
}

function checkWidths(caller: string, argument: string, widths: unknown): readonly number[] {
  if (!Array.isArray(widths) || widths.length === 0) {
    throw new ContrastiveError({
      caller,
      argument,
      expected: 'a non-empty array of positive integers',
      received: describeValue(widths),
    });
  }
  widths.forEach((w, i) => {
    checkNumber(caller, `${argument}[${i}]`, w, { integer: true, min: 1 });
  });
  return widths as number[];
}

/**
 * conv (no bias) -> batch norm -> optional ReLU; the conv's kernel seeded from `seeds`. The batch
 * norm is the library's (PyTorch's BatchNorm2d: momentum 0.1, unbiased running variance), whose
 * closed-form gradient runs as fused SIMD passes on wasm.
 */
function convBn(
  x: Node,
  filters: number,
  kernelSize: number,
  strides: number,
  relu: boolean,
  seeds: LayerSeeds,
): Node {
  let y = apply(
    tfl.layers.conv2d({
      filters,
      kernelSize,
      strides,
      padding: 'same',
      useBias: false,
      ...seeds.kernel(),
    }),
    x,
  );
  y = apply(new BatchNorm({ momentum: 0.1, epsilon: 1e-5 }), y);
  return relu ? apply(tfl.layers.reLU(), y) : y;
}

/** Options of {@link smallConvNet}. */
export interface SmallConvNetArgs {
  /**
   * Image shape [height, width, channels], e.g. [28, 28, 1] (Fashion-MNIST) or [32, 32, 3]; height
   * and width may be `null` for a network that takes any size (multi-crop: SwAV, DINO).
   */
  readonly inputShape: readonly [number | null, number | null, number];
  /** Filters of each conv -> BN -> ReLU -> max-pool stage. Default [32, 64, 128]. */
  readonly widths?: readonly number[];
  /** The model's name. Default 'small_conv_net'. */
  readonly name?: string;
  /**
   * Seed of the initial weights: each layer with random initial values gets its own seed, drawn
   * in construction order from `new SeededRandom(seed)`, and keeps its default distribution
   * (tfjs-layers' glorot normal for convolutions). The same seed gives the same weights on every
   * run, machine and backend. Default: unseeded (tfjs's own draws from `Math.random`).
   */
  readonly seed?: number;
}

/**
 * A small convolutional network: per stage a 3x3 convolution (no bias), batch norm (the library's
 * {@link BatchNorm}, PyTorch's BatchNorm2d semantics), ReLU and 2x2 max pooling, then global
 * average pooling. Output: [batch, widths.at(-1)].
 *
 * @throws {@link index!ContrastiveError} when `inputShape`, `widths` or `seed` is invalid.
 *
 * @example
 * ```ts
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 * const encoder = smallConvNet({ inputShape: [28, 28, 1] }); // features [batch, 128]
 * // the same initial weights on every run (a reproducible random-init baseline):
 * const baseline = smallConvNet({ inputShape: [28, 28, 1], seed: 1 });
 * // any image size, e.g. for multi-crop's global and local views:
 * const any = smallConvNet({ inputShape: [null, null, 3] });
 * ```
 */
export function smallConvNet(args: SmallConvNetArgs): tfl.LayersModel {
  const caller = 'smallConvNet';
  // The model holds the library's own layers: registered so that it clones, saves and loads.
  registerLayers();
  const shape = checkImageShape(caller, args.inputShape, true);
  const widths = checkWidths(caller, 'args.widths', args.widths ?? [32, 64, 128]);
  const seeds = new LayerSeeds(caller, 'args.seed', args.seed);
  const input = tfl.input({ shape });
  let x: Node = input;
  for (const w of widths) {
    x = convBn(x, w, 3, 1, true, seeds);
    x = apply(tfl.layers.maxPooling2d({ poolSize: 2, padding: 'same' }), x);
  }
  x = apply(tfl.layers.globalAveragePooling2d({}), x);
  return tfl.model({ inputs: input, outputs: x, name: args.name ?? 'small_conv_net' });
}

/** Options of {@link smallResNet}. */
export interface SmallResNetArgs {
  /** Image shape [height, width, channels]; height and width may be `null` (any size). */
  readonly inputShape: readonly [number | null, number | null, number];
  /** Filters of each stage (each stage after the first halves the resolution). Default [16, 32, 64]. */
  readonly widths?: readonly number[];
  /** Basic blocks per stage. Default 1. */
  readonly blocksPerStage?: number;
  /**
   * The CIFAR stem (one 3x3 convolution, stride 1, no max pooling; for 28x28 and 32x32 images)
   * instead of ImageNet's 7x7 stride-2 convolution and 3x3 stride-2 max pooling. Default `true`.
   */
  readonly cifarStem?: boolean;
  /** The model's name. Default 'small_resnet'. */
  readonly name?: string;
  /**
   * Seed of the initial weights: each layer with random initial values gets its own seed, drawn
   * in construction order from `new SeededRandom(seed)`, and keeps its default distribution
   * (tfjs-layers' glorot normal for convolutions). The same seed gives the same weights on every
   * run, machine and backend. Default: unseeded (tfjs's own draws from `Math.random`).
   */
  readonly seed?: number;
}

/**
 * A small ResNet of basic blocks (two 3x3 conv -> BN, identity shortcut, or 1x1 conv -> BN where
 * the shape changes; ReLU after the sum), then global average pooling. Output:
 * [batch, widths.at(-1)].
 *
 * @throws {@link index!ContrastiveError} when `inputShape`, `widths`, `blocksPerStage`, `cifarStem` or
 *   `seed` is invalid.
 *
 * @example
 * ```ts
 * import { smallResNet } from 'tfjs-contrastive/layers';
 * // ResNet-18's shape (2 blocks per stage) at a quarter of its width, for 32x32 images:
 * const encoder = smallResNet({ inputShape: [32, 32, 3], widths: [16, 32, 64, 128], blocksPerStage: 2 });
 * ```
 */
export function smallResNet(args: SmallResNetArgs): tfl.LayersModel {
  const caller = 'smallResNet';
  // The model holds the library's own layers: registered so that it clones, saves and loads.
  registerLayers();
  const shape = checkImageShape(caller, args.inputShape, true);
  const widths = checkWidths(caller, 'args.widths', args.widths ?? [16, 32, 64]);
  const blocks = args.blocksPerStage ?? 1;
  checkNumber(caller, 'args.blocksPerStage', blocks, { integer: true, min: 1 });
  const cifar = args.cifarStem ?? true;
  checkBoolean(caller, 'args.cifarStem', cifar);
  const seeds = new LayerSeeds(caller, 'args.seed', args.seed);
  const input = tfl.input({ shape });
  let x: Node;
  if (cifar) {
    x = convBn(input, widths[0] ?? 16, 3, 1, true, seeds);
  } else {
    x = convBn(input, widths[0] ?? 16, 7, 2, true, seeds);
    x = apply(tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }), x);
  }
  let channels = widths[0] ?? 16;
  widths.forEach((w, stage) => {
    for (let b = 0; b < blocks; b++) {
      const strides = stage > 0 && b === 0 ? 2 : 1;
      let y = convBn(x, w, 3, strides, true, seeds);
      y = convBn(y, w, 3, 1, false, seeds);
      const shortcut = strides !== 1 || channels !== w ? convBn(x, w, 1, strides, false, seeds) : x;
      x = apply(tfl.layers.reLU(), apply(tfl.layers.add(), [y, shortcut]));
      channels = w;
    }
  });
  x = apply(tfl.layers.globalAveragePooling2d({}), x);
  return tfl.model({ inputs: input, outputs: x, name: args.name ?? 'small_resnet' });
}

/** Options of {@link tinyVit}. */
export interface TinyVitArgs {
  /** Image shape [height, width, channels]; height and width multiples of the patch size. */
  readonly inputShape: readonly [number, number, number];
  /** Patch side. Default 4. */
  readonly patchSize?: number;
  /** Token width. Default 64. */
  readonly dim?: number;
  /** Transformer blocks. Default 4. */
  readonly depth?: number;
  /** Attention heads. Default 4. */
  readonly heads?: number;
  /** MLP width as a multiple of `dim`. Default 2. */
  readonly mlpRatio?: number;
  /**
   * Keep the patch projection at its random initialisation (MoCo v3's stabilising trick: the
   * layer is not trainable). Default `true`.
   */
  readonly frozenPatchProjection?: boolean;
  /** The model's name. Default 'tiny_vit'. */
  readonly name?: string;
  /**
   * Seed of the initial weights: each layer with random initial values gets its own seed, drawn
   * in construction order from `new SeededRandom(seed)`, and keeps its default distribution
   * (tfjs-layers' glorot normal for convolutions and dense layers, glorot uniform for the attention projections, truncated normal with std 0.02 for the class token and position embeddings). The same seed gives the same weights on every
   * run, machine and backend. Default: unseeded (tfjs's own draws from `Math.random`).
   */
  readonly seed?: number;
}

/**
 * A tiny vision transformer: patch embedding (a convolution with kernel and stride = patch size,
 * frozen by default), class token and learned position embeddings, `depth` pre-norm blocks
 * (layer norm -> multi-head self-attention -> residual; layer norm -> MLP with GELU -> residual),
 * a final layer norm, and the class token's output. Output: [batch, dim].
 *
 * The position embeddings are learned for `inputShape`'s patch grid; the model takes images of
 * other sizes too (multiples of the patch size: multi-crop's local views), with the embeddings
 * resized bilinearly to their grid, as DINO does (see {@link ClassTokenPosition}).
 *
 * @throws {@link index!ContrastiveError} when `inputShape`, `patchSize` (not dividing the image), `dim`,
 *   `depth`, `heads` (not dividing `dim`), `mlpRatio` or `seed` is invalid.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { tinyVit } from 'tfjs-contrastive/layers';
 * // 8x8 = 64 patches of 4x4 pixels, 4 blocks of width 64: features [batch, 64]
 * const encoder = tinyVit({ inputShape: [32, 32, 3], patchSize: 4 });
 * // DINO's local views of 12x12 pixels: a 3x3 grid, the position embeddings resized to it
 * const local = encoder.predict(tf.zeros([8, 12, 12, 3]));
 * ```
 */
export function tinyVit(args: TinyVitArgs): tfl.LayersModel {
  const caller = 'tinyVit';
  // The model holds the library's own layers: registered so that it clones, saves and loads.
  registerLayers();
  const [h, w, c] = checkImageShape(caller, args.inputShape, false);
  const patch = args.patchSize ?? 4;
  checkNumber(caller, 'args.patchSize', patch, { integer: true, min: 1 });
  if (h % patch !== 0 || w % patch !== 0) {
    throw new ContrastiveError({
      caller,
      argument: 'args.patchSize',
      expected: `a divisor of the image height and width (${h} x ${w})`,
      received: String(patch),
    });
  }
  const dim = args.dim ?? 64;
  checkNumber(caller, 'args.dim', dim, { integer: true, min: 1 });
  const depth = args.depth ?? 4;
  checkNumber(caller, 'args.depth', depth, { integer: true, min: 1 });
  const heads = args.heads ?? 4;
  checkNumber(caller, 'args.heads', heads, { integer: true, min: 1 });
  if (dim % heads !== 0) {
    throw new ContrastiveError({
      caller,
      argument: 'args.heads',
      expected: `a divisor of dim (${dim})`,
      received: String(heads),
    });
  }
  const mlp = Math.round((args.mlpRatio ?? 2) * dim);
  checkNumber(caller, 'args.mlpRatio * dim', mlp, { integer: true, min: 1 });
  const frozen = args.frozenPatchProjection ?? true;
  checkBoolean(caller, 'args.frozenPatchProjection', frozen);
  const seeds = new LayerSeeds(caller, 'args.seed', args.seed);
  const seed = (): { seed?: number } => {
    const s = seeds.next();
    return s === undefined ? {} : { seed: s };
  };

  // Any image size: position embeddings are learned for inputShape's grid and resized for others.
  const input = tfl.input({ shape: [null, null, c] });
  const projection = tfl.layers.conv2d({
    filters: dim,
    kernelSize: patch,
    strides: patch,
    padding: 'valid',
    name: 'patch_projection',
    trainable: !frozen,
    ...seeds.kernel(),
  });
  let x = apply(projection, input);
  x = apply(new ClassTokenPosition({ grid: [h / patch, w / patch], ...seed() }), x);
  for (let i = 0; i < depth; i++) {
    const attended = apply(
      new MultiHeadSelfAttention({ heads, ...seed() }),
      apply(tfl.layers.layerNormalization({ epsilon: 1e-6 }), x),
    );
    x = apply(tfl.layers.add(), [x, attended]);
    let y = apply(tfl.layers.layerNormalization({ epsilon: 1e-6 }), x);
    y = apply(tfl.layers.dense({ units: mlp, activation: 'gelu', ...seeds.kernel() }), y);
    y = apply(tfl.layers.dense({ units: dim, ...seeds.kernel() }), y);
    x = apply(tfl.layers.add(), [x, y]);
  }
  x = apply(tfl.layers.layerNormalization({ epsilon: 1e-6 }), x);
  x = apply(new SelectToken({ index: 0 }), x);
  // tfjs-layers 4.22 creates a conv kernel with its own trainable flag set even when the layer
  // is built frozen, so optimizer.minimize (which reads the flags) would train it: the setter
  // clears them.
  if (frozen) projection.trainable = false;
  return tfl.model({ inputs: input, outputs: x, name: args.name ?? 'tiny_vit' });
}
