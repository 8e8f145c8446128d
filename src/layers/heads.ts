/**
 * Projection and prediction heads: a generic builder of dense blocks and the per-method presets
 * with the defaults of the papers' released code, every dimension overridable.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { checkBoolean, checkNumber, checkOneOf } from '../core/checks.js';
import { ContrastiveError } from '../core/errors.js';
import { describeValue } from '../core/checks.js';
import { BatchNorm } from './batch-norm.js';
import { L2Normalize } from './l2-normalize-layer.js';
import { LayerSeeds } from './seeds.js';
import { WeightNormDense } from './weight-norm-dense.js';

/** Batch norm after a block's dense layer; `center` and `scale` are its offset and gain. */
export interface HeadBatchNorm {
  /** Learn an offset (beta). Default `true`. */
  readonly center?: boolean;
  /** Learn a gain (gamma). Default `true`. */
  readonly scale?: boolean;
}

/** One block of a head: dense, then optional batch norm, then optional activation. */
export interface HeadBlock {
  /** Output units of the dense layer. */
  readonly units: number;
  /** Batch norm after the dense layer (`true` = with offset and gain). A dense layer followed by batch norm has no bias. Default `false`. */
  readonly batchNorm?: boolean | HeadBatchNorm;
  /** Activation after it. Default `'linear'` (none). */
  readonly activation?: 'relu' | 'gelu' | 'linear';
  /** Bias of the dense layer when there is no batch norm. Default `true`. */
  readonly useBias?: boolean;
}

/** Options of {@link mlpHead}. */
export interface MlpHeadArgs {
  /** Width of the features the head receives. */
  readonly inputDim: number;
  /** The blocks, in order. */
  readonly blocks: readonly HeadBlock[];
  /** The model's name. */
  readonly name?: string;
  /**
   * Initialiser of the dense kernels (a tfjs-layers initialiser). Default tfjs-layers' dense
   * default, glorot normal (truncated at two standard deviations).
   */
  readonly kernelInitializer?: ReturnType<typeof tfl.initializers.glorotUniform>;
  /**
   * Seed of the initial weights: each dense layer gets its own seed, drawn in order from
   * `new SeededRandom(seed)`, for its kernel initialiser (a seeded copy of `kernelInitializer`,
   * whose own seed it replaces). The same seed gives the same weights on every run, machine and
   * backend. Default: unseeded (tfjs's own draws from `Math.random`).
   */
  readonly seed?: number;
}

/**
 * A head of dense blocks (dense -> optional batch norm -> optional activation) as a tfjs-layers
 * `Sequential` model taking `[batch, inputDim]`. Batch norm is the library's {@link BatchNorm}
 * with PyTorch's `BatchNorm1d` defaults (momentum 0.1, epsilon 1e-5, unbiased running variance):
 * tfjs-layers' own fails in training without offset or gain.
 *
 * @throws {@link index!ContrastiveError} when `inputDim`, a block or `seed` is invalid.
 *
 * @example
 * ```ts
 * import { mlpHead } from 'tfjs-contrastive/layers';
 * const head = mlpHead({
 *   inputDim: 512,
 *   blocks: [
 *     { units: 2048, batchNorm: true, activation: 'relu' },
 *     { units: 128 },
 *   ],
 *   seed: 7, // the same initial weights on every run
 * });
 * ```
 */
export function mlpHead(args: MlpHeadArgs): tfl.Sequential {
  const caller = 'mlpHead';
  checkNumber(caller, 'args.inputDim', args.inputDim, { integer: true, min: 1 });
  const blocks: unknown = args.blocks;
  if (!Array.isArray(blocks) || blocks.length === 0) {
    throw new ContrastiveError({
      caller,
      argument: 'args.blocks',
      expected: 'a non-empty array of blocks { units, batchNorm?, activation?, useBias? }',
      received: describeValue(blocks),
    });
  }
  const seeds = new LayerSeeds(caller, 'args.seed', args.seed);
  const model = tfl.sequential(args.name === undefined ? {} : { name: args.name });
  args.blocks.forEach((block, i) => {
    const at = `args.blocks[${i}]`;
    checkNumber(caller, `${at}.units`, block.units, { integer: true, min: 1 });
    const bn = block.batchNorm ?? false;
    if (typeof bn === 'boolean') checkBoolean(caller, `${at}.batchNorm`, bn);
    const activation = block.activation ?? 'linear';
    checkOneOf(caller, `${at}.activation`, activation, ['relu', 'gelu', 'linear']);
    const useBias = bn === false && (block.useBias ?? true);
    model.add(
      tfl.layers.dense({
        units: block.units,
        useBias,
        ...(i === 0 ? { inputShape: [args.inputDim] } : {}),
        ...seeds.kernel(args.kernelInitializer),
      }),
    );
    if (bn !== false) {
      const options = bn === true ? {} : bn;
      const center = options.center ?? true;
      checkBoolean(caller, `${at}.batchNorm.center`, center);
      const scale = options.scale ?? true;
      checkBoolean(caller, `${at}.batchNorm.scale`, scale);
      model.add(new BatchNorm({ center, scale }));
    }
    if (activation !== 'linear') model.add(tfl.layers.activation({ activation }));
  });
  return model;
}

/** Dimensions of a preset head; each has the paper's default. */
export interface HeadDims {
  /** Width of the features the head receives (the backbone's output or the projector's). */
  readonly inputDim: number;
  /** Hidden width. */
  readonly hiddenDim?: number;
  /** Output width. */
  readonly outputDim?: number;
  /**
   * Seed of the initial weights (each dense layer its own, drawn in order from
   * `new SeededRandom(seed)`; glorot normal as unseeded). Default: unseeded.
   */
  readonly seed?: number;
}

/** A preset's mlpHead, its seed checked as the preset's `dims.seed`. */
function presetHead(
  caller: string,
  name: string,
  dims: HeadDims,
  blocks: readonly HeadBlock[],
): tfl.Sequential {
  if (dims.seed !== undefined) checkNumber(caller, 'dims.seed', dims.seed, { integer: true });
  return mlpHead({ inputDim: dims.inputDim, name, blocks, seed: dims.seed });
}

const NO_AFFINE: HeadBatchNorm = { center: false, scale: false };

/**
 * SimCLR v1 projection head: dense(hidden) -> BN -> ReLU -> dense(out) -> BN without offset
 * (google-research/simclr: `use_bn=True`, the last layer without bias, so no BN centre).
 * Defaults: hidden = inputDim, out = 128.
 *
 * @example
 * ```ts
 * import { simclrV1Projector } from 'tfjs-contrastive/layers';
 * const projector = simclrV1Projector({ inputDim: 2048 }); // 2048 -> 2048 -> 128
 * ```
 */
export function simclrV1Projector(dims: HeadDims): tfl.Sequential {
  const hidden = dims.hiddenDim ?? dims.inputDim;
  return presetHead('simclrV1Projector', 'simclr_v1_projector', dims, [
    { units: hidden, batchNorm: true, activation: 'relu' },
    { units: dims.outputDim ?? 128, batchNorm: { center: false } },
  ]);
}

/**
 * SimCLR v2 projection head: 3 layers, BN on every layer, ReLU (and BN offset) on all but the
 * last. Defaults: hidden = inputDim, out = 128.
 *
 * @example
 * <!-- snippet setup="views" -->
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { ntXentLoss } from 'tfjs-contrastive';
 * import { simclrV2Projector, smallResNet } from 'tfjs-contrastive/layers';
 *
 * const encoder = smallResNet({ inputShape: [32, 32, 3] }); // features [batch, 64]
 * const projector = simclrV2Projector({ inputDim: 64 }); // 64 -> 64 -> 64 -> 128
 * const project = (x: tf.Tensor4D) =>
 *   projector.apply(encoder.apply(x, { training: true }), { training: true }) as tf.Tensor2D;
 * // view1, view2: [batch, 32, 32, 3], two augmentations of the same images
 * const loss = ntXentLoss(project(view1), project(view2), { temperature: 0.5 });
 * ```
 */
export function simclrV2Projector(dims: HeadDims): tfl.Sequential {
  const hidden = dims.hiddenDim ?? dims.inputDim;
  return presetHead('simclrV2Projector', 'simclr_v2_projector', dims, [
    { units: hidden, batchNorm: true, activation: 'relu' },
    { units: hidden, batchNorm: true, activation: 'relu' },
    { units: dims.outputDim ?? 128, batchNorm: { center: false } },
  ]);
}

/**
 * MoCo v2 head: dense(hidden) -> ReLU -> dense(out), biases, no BN. Defaults: hidden = inputDim, out = 128.
 *
 * @example
 * ```ts
 * import { mocoV2Projector } from 'tfjs-contrastive/layers';
 * const head = mocoV2Projector({ inputDim: 2048 }); // 2048 -> 2048 -> 128
 * ```
 */
export function mocoV2Projector(dims: HeadDims): tfl.Sequential {
  return presetHead('mocoV2Projector', 'moco_v2_projector', dims, [
    { units: dims.hiddenDim ?? dims.inputDim, activation: 'relu' },
    { units: dims.outputDim ?? 128 },
  ]);
}

/**
 * MoCo v3's MLP (`_build_mlp`): `layers` dense layers without bias, BN + ReLU between, and a BN
 * without affine parameters last when `lastBatchNorm`.
 */
function mocoV3Mlp(
  caller: string,
  name: string,
  layers: number,
  dims: HeadDims,
  lastBatchNorm: boolean,
): tfl.Sequential {
  const hidden = dims.hiddenDim ?? 4096;
  const blocks: HeadBlock[] = [];
  for (let i = 0; i < layers - 1; i++)
    blocks.push({ units: hidden, batchNorm: true, activation: 'relu' });
  const units = dims.outputDim ?? 256;
  blocks.push(lastBatchNorm ? { units, batchNorm: NO_AFFINE } : { units, useBias: false });
  return presetHead(caller, name, dims, blocks);
}

/**
 * MoCo v3 projector (facebookresearch/moco-v3 `_build_mlp`): 2 layers after a ResNet, 3 after a
 * ViT (`layers`). Defaults: hidden 4096, out 256.
 *
 * @example
 * ```ts
 * import { mocoV3Predictor, mocoV3Projector, tinyVit } from 'tfjs-contrastive/layers';
 * const encoder = tinyVit({ inputShape: [32, 32, 3] }); // [batch, 64]
 * const projector = mocoV3Projector({ inputDim: 64, layers: 3, hiddenDim: 512 }); // -> 256
 * const predictor = mocoV3Predictor({ inputDim: 256, hiddenDim: 512 }); // -> 256
 * ```
 */
export function mocoV3Projector(dims: HeadDims & { readonly layers?: 2 | 3 }): tfl.Sequential {
  const layers = dims.layers ?? 2;
  checkNumber('mocoV3Projector', 'dims.layers', layers, { integer: true, min: 2, max: 3 });
  return mocoV3Mlp('mocoV3Projector', 'moco_v3_projector', layers, dims, true);
}

/**
 * MoCo v3 predictor: 2 layers, hidden 4096, out 256 (inputDim is the projector's 256). The
 * released code ends the ViT's predictor in a batch norm without affine parameters and the
 * ResNet's without one (`MoCo_ResNet` builds it with `last_bn=False`): `lastBatchNorm`, default
 * `true` (the ViT's); pass `false` after a ResNet or conv net.
 *
 * @param dims - `inputDim`, `hiddenDim` (4096), `outputDim` (256), and `lastBatchNorm` (`true`).
 * @returns the predictor, a tfjs-layers Sequential [B, inputDim] -> [B, outputDim].
 * @throws {@link index!ContrastiveError} when a width is not a positive integer or
 *   `lastBatchNorm` is not a boolean.
 *
 * @example
 * ```ts
 * import { mocoV3Predictor } from 'tfjs-contrastive/layers';
 * const forVit = mocoV3Predictor({ inputDim: 256 }); // 256 -> 4096 -> 256, then BN (no affine)
 * const forResNet = mocoV3Predictor({ inputDim: 256, lastBatchNorm: false }); // ends in the dense
 * ```
 */
export function mocoV3Predictor(
  dims: HeadDims & { readonly lastBatchNorm?: boolean },
): tfl.Sequential {
  const lastBatchNorm = (dims as { lastBatchNorm?: unknown } | undefined)?.lastBatchNorm ?? true;
  checkBoolean('mocoV3Predictor', 'dims.lastBatchNorm', lastBatchNorm);
  return mocoV3Mlp('mocoV3Predictor', 'moco_v3_predictor', 2, dims, lastBatchNorm);
}

/** BYOL's MLP: dense(hidden) -> BN -> ReLU -> dense(out). Defaults: hidden 4096, out 256. */
function byolMlp(caller: string, name: string, dims: HeadDims): tfl.Sequential {
  return presetHead(caller, name, dims, [
    { units: dims.hiddenDim ?? 4096, batchNorm: true, activation: 'relu' },
    { units: dims.outputDim ?? 256 },
  ]);
}

/**
 * BYOL projector: dense(4096) -> BN -> ReLU -> dense(256).
 *
 * @example
 * ```ts
 * import { byolPredictor, byolProjector } from 'tfjs-contrastive/layers';
 * // The paper's widths after a 512-wide backbone; smaller ones for a small encoder:
 * const projector = byolProjector({ inputDim: 512 }); // 512 -> 4096 -> 256
 * const predictor = byolPredictor({ inputDim: 256 }); // 256 -> 4096 -> 256
 * const small = byolProjector({ inputDim: 128, hiddenDim: 512, outputDim: 64 });
 * ```
 */
export function byolProjector(dims: HeadDims): tfl.Sequential {
  return byolMlp('byolProjector', 'byol_projector', dims);
}

/**
 * BYOL predictor: the same shape, 256 -> 4096 -> 256.
 *
 * @example
 * ```ts
 * import { byolPredictor } from 'tfjs-contrastive/layers';
 * const predictor = byolPredictor({ inputDim: 256 }); // 256 -> 4096 -> 256
 * ```
 */
export function byolPredictor(dims: HeadDims): tfl.Sequential {
  return byolMlp('byolPredictor', 'byol_predictor', dims);
}

/**
 * SimSiam projector (facebookresearch/simsiam): 3 dense layers without bias, BN + ReLU after the
 * first two, BN without affine after the last. Defaults: hidden 2048, out 2048.
 *
 * @example
 * ```ts
 * import { simsiamPredictor, simsiamProjector } from 'tfjs-contrastive/layers';
 * const projector = simsiamProjector({ inputDim: 512 }); // 512 -> 2048 -> 2048 -> 2048
 * const predictor = simsiamPredictor({ inputDim: 2048 }); // 2048 -> 512 -> 2048
 * ```
 */
export function simsiamProjector(dims: HeadDims): tfl.Sequential {
  const hidden = dims.hiddenDim ?? 2048;
  return presetHead('simsiamProjector', 'simsiam_projector', dims, [
    { units: hidden, batchNorm: true, activation: 'relu' },
    { units: hidden, batchNorm: true, activation: 'relu' },
    { units: dims.outputDim ?? 2048, batchNorm: NO_AFFINE },
  ]);
}

/**
 * SimSiam predictor: dense(512, no bias) -> BN -> ReLU -> dense(2048, bias). Input 2048.
 *
 * @example
 * ```ts
 * import { simsiamPredictor } from 'tfjs-contrastive/layers';
 * const predictor = simsiamPredictor({ inputDim: 2048 }); // 2048 -> 512 -> 2048
 * ```
 */
export function simsiamPredictor(dims: HeadDims): tfl.Sequential {
  return presetHead('simsiamPredictor', 'simsiam_predictor', dims, [
    { units: dims.hiddenDim ?? 512, batchNorm: true, activation: 'relu' },
    { units: dims.outputDim ?? 2048 },
  ]);
}

/**
 * SwAV projection head: dense(hidden) -> BN -> ReLU -> dense(out) -> L2 normalisation (the
 * prototypes, a {@link Prototypes} layer, come after it). Defaults: hidden 2048, out 128.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { Prototypes, swavProjectionHead } from 'tfjs-contrastive/layers';
 * const head = swavProjectionHead({ inputDim: 128, hiddenDim: 512 }); // unit vectors [batch, 128]
 * const prototypes = new Prototypes({ count: 300 });
 * const scores = tfl.sequential({ layers: [head, prototypes] }); // [batch, 300]
 * ```
 */
export function swavProjectionHead(dims: HeadDims): tfl.Sequential {
  const head = presetHead('swavProjectionHead', 'swav_projection_head', dims, [
    { units: dims.hiddenDim ?? 2048, batchNorm: true, activation: 'relu' },
    { units: dims.outputDim ?? 128 },
  ]);
  head.add(new L2Normalize());
  return head;
}

/** Options of {@link dinoHead}. */
export interface DinoHeadArgs {
  /** Width of the backbone's features. */
  readonly inputDim: number;
  /** Prototypes K of the last layer. Default 65536. */
  readonly outDim?: number;
  /** Hidden width. Default 2048. */
  readonly hiddenDim?: number;
  /** Bottleneck width before the L2 normalisation. Default 256. */
  readonly bottleneckDim?: number;
  /** Dense layers before the bottleneck output, counting it (DINO's `nlayers`). Default 3. */
  readonly layers?: number;
  /** Batch norm after the hidden layers. Default `false`. */
  readonly useBatchNorm?: boolean;
  /** Fix the last layer's gain at 1 (DINO's `norm_last_layer`). Default `true`. */
  readonly normLastLayer?: boolean;
  /** Steps the last layer stays frozen (DINO: the first epoch). Default 0. */
  readonly freezeLastLayerSteps?: number;
  /**
   * Seed of the initial weights: the dense layers and the last layer each get their own seed,
   * drawn from `new SeededRandom(seed)` (the first draw seeds the dense part as an
   * {@link mlpHead} seed, the second the last layer), and keep DINO's distributions. Default:
   * unseeded.
   */
  readonly seed?: number;
}

/**
 * DINO's head: dense(hidden) -> GELU, (layers - 2) x [dense(hidden) -> GELU], dense(bottleneck)
 * -> L2 normalisation -> {@link WeightNormDense}(outDim, no bias, gain fixed at 1). Dense kernels
 * start truncated-normal with std 0.02 and zero biases, as in facebookresearch/dino. The last
 * layer is `head.layers[head.layers.length - 1]`; call its `setStep(step)` each step to keep it
 * frozen for `freezeLastLayerSteps`.
 *
 * @example
 * <!-- snippet setup="step" -->
 * ```ts
 * import { WeightNormDense, dinoHead } from 'tfjs-contrastive/layers';
 * const head = dinoHead({ inputDim: 64, outDim: 4096, freezeLastLayerSteps: 469 });
 * const last = head.layers[head.layers.length - 1] as WeightNormDense;
 * // each step, before the loss: frozen for the first 469 steps
 * last.setStep(step);
 * ```
 */
export function dinoHead(args: DinoHeadArgs): tfl.Sequential {
  const caller = 'dinoHead';
  checkNumber(caller, 'args.inputDim', args.inputDim, { integer: true, min: 1 });
  const layers = args.layers ?? 3;
  checkNumber(caller, 'args.layers', layers, { integer: true, min: 1 });
  const hidden = args.hiddenDim ?? 2048;
  const bottleneck = args.bottleneckDim ?? 256;
  const useBn = args.useBatchNorm ?? false;
  checkBoolean(caller, 'args.useBatchNorm', useBn);
  const seeds = new LayerSeeds(caller, 'args.seed', args.seed);
  const mlpSeed = seeds.next();
  const lastSeed = seeds.next();
  const blocks: HeadBlock[] = [];
  for (let i = 0; i < layers - 1; i++) {
    blocks.push({ units: hidden, batchNorm: useBn, activation: 'gelu' });
  }
  blocks.push({ units: bottleneck });
  const head = mlpHead({
    inputDim: args.inputDim,
    name: 'dino_head',
    blocks,
    kernelInitializer: tfl.initializers.truncatedNormal({ stddev: 0.02 }),
    seed: mlpSeed,
  });
  head.add(new L2Normalize());
  head.add(
    new WeightNormDense({
      units: args.outDim ?? 65536,
      trainableGain: !(args.normLastLayer ?? true),
      freezeSteps: args.freezeLastLayerSteps ?? 0,
      ...(lastSeed === undefined ? {} : { seed: lastSeed }),
    }),
  );
  return head;
}
