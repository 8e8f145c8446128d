import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { rgbToLab, type ViewSpec } from '../augment/index.js';
import {
  ContrastiveError,
  checkNumber,
  checkOneOf,
  describeValue,
  l2Normalize,
  type ComponentState,
  type JsonValue,
} from '../core/index.js';
import { mlpHead, registerLayers } from '../layers/index.js';
import { cmcLoss, nceLoss } from '../losses/index.js';
import { viewPairs } from '../losses/cmc.js';
import { MemoryBank } from '../state/index.js';
import {
  SslMethod,
  outputWidth,
  type LossOutput,
  type MethodDefaults,
  type StatefulPart,
  type StepContext,
} from './method.js';
import { NceConstant, bankMethodOptions, batchIndices, restoredBank } from './parts.js';
import type { SslMethodOptions } from './types.js';

/**
 * How {@link cmc} turns one augmented image batch [B, H, W, C] into its views (CMC's
 * "modalities"), one tensor [B, h, w, c_v] per encoder:
 *
 * - `'lab'` (the default for RGB, C = 3; CMC's ImageNet setting): the L and the ab channels of
 *   CIE L*a*b* ({@link index!rgbToLab}), each scaled to about [-1, 1] by CMC's normalisation
 *   (L: mean 50, std 50; a: 6.025, 92.208; b: -6.69, 101.17). Views [B, H, W, 1] and [B, H, W, 2].
 * - `'gradient'` (the default for grey images, C = 1, e.g. Fashion-MNIST, where L/ab needs
 *   colour): the image itself and its Sobel gradient magnitude (divided by 4, the response to a
 *   unit step, edges replicated at the border). Views [B, H, W, 1] and [B, H, W, 1]: intensity
 *   and edges, two descriptions of one scene as L and ab are.
 * - `'halves'`: the top and the bottom halves of the image, [B, floor(H/2), W, C] each (the middle
 *   row dropped for odd H), a spatial split for any channel count.
 * - a function: any split into one view per encoder (e.g. depth and RGB stacked as channels).
 *   It runs outside the gradient tape; when it changes the side of the views, pass the images'
 *   side as `imageSize`.
 */
export type CmcViewSplit =
  'lab' | 'gradient' | 'halves' | ((images: tf.Tensor4D) => readonly tf.Tensor4D[]);

/** Options of {@link cmc}. */
export interface CmcMethodOptions extends Omit<SslMethodOptions, 'encoder'> {
  /**
   * One tfjs-layers model per view, each mapping its view [B, h, w, c_v] to features [B, F_v]
   * (CMC's `[forL, forAb]`), in the order of the split's views. The preset trains all of them and
   * disposes none unless `disposeEncoder` is `true` (then all). `encoders[0]` is the preset's
   * `encoder`.
   */
  readonly encoders: readonly tfl.LayersModel[];
  /** `encoders[0]`, or nothing: the base options' encoder, accepted only as view 0's. */
  readonly encoder?: tfl.LayersModel;
  /** How an augmented image becomes its views. Default `'lab'` for RGB, `'gradient'` for grey. */
  readonly split?: CmcViewSplit;
  /**
   * The number of training images N: each view keeps a memory bank of N entries, and every
   * `batch.indices` must be below N (for `fit(images)`, `images.shape[0]`). Required.
   */
  readonly datasetSize: number;
  /**
   * `'nce'` (default, CMC's main results): NCE against each other view's memory bank with K noise
   * samples and a normalisation constant Z per directed pair fixed on the first batch;
   * `'softmax'`: cross-entropy over [other view's bank entry of the image, its K noise entries] /
   * tau, label 0 (CMC's NCESoftmaxLoss). On Fashion-MNIST in runs of minutes NCE lowered kNN
   * below random init and the softmax learned given epochs (docs/methods.md): prefer it for short
   * runs.
   */
  readonly loss?: 'nce' | 'softmax';
  /** Noise samples K drawn from each bank per step, shared by the batch. Default `4096` (nce_k). */
  readonly negatives?: number;
  /** Temperature tau. Default `0.07` (nce_t). */
  readonly temperature?: number;
  /** Momentum of the memory banks' update `v <- normalise(m v + (1 - m) f)`. Default `0.5` (nce_m). */
  readonly bankMomentum?: number;
  /** Width of each view's linear head (then L2-normalised) and of the banks. Default `128` (feat_dim). */
  readonly projectionDim?: number;
  /**
   * Which directed pairs of views are contrasted when there are more than 2: `'full'` (default,
   * every ordered pair, CMC's full graph) or `'core'` (view 0 with each other view, both ways).
   * Two views: the same.
   */
  readonly pairing?: 'full' | 'core';
}

/**
 * The defaults of {@link cmc}: CMC's SGD (momentum 0.9, learning rate 0.03, weight decay 1e-4,
 * HobbitLong/CMC train_CMC.py) from 96 px; under 96 px AdamW with learning rate 1e-3 and a 5%
 * warm-up, as MoCo's small-image defaults (a run of minutes, not CMC's hundreds of epochs).
 */
export const CMC_DEFAULTS: MethodDefaults = {
  optimizer: 'momentum',
  learningRate: 0.03,
  weightDecay: 1e-4,
  warmup: 0,
  smallImages: { optimizer: 'adamw', learningRate: 1e-3, weightDecay: 1e-4, warmup: 0.05 },
};

// CMC's Normalize of L*a*b*: the middle of each channel's range and half its width.
const LAB_MEAN = [50, (-86.183 + 98.233) / 2, (-107.857 + 94.478) / 2];
const LAB_STD = [50, (86.183 + 98.233) / 2, (107.857 + 94.478) / 2];

/**
 * Contrastive Multiview Coding (Tian, Krishnan and Isola, ECCV 2020): views are modalities of one
 * image (by default the L and the ab channels of L*a*b*), each with an encoder of its own, a
 * linear head to 128-d and L2 normalisation, and a memory bank of one entry per training image.
 * Each view's feature must pick out its image among K noise images in the other view's bank:
 * for views l and ab, `NCE(f_l against bank_ab[y, noise]) + NCE(f_ab against bank_l[y, noise])`
 * (HobbitLong/CMC NCE/NCEAverage.py), with a normalisation constant Z per directed pair estimated
 * on the first batch (`N * mean(exp(v . f / tau))`) and then fixed, and kept in checkpoints.
 * With `loss: 'softmax'` each term is instead a cross-entropy over the other view's bank rows
 * `[y, noise]` / tau, label 0: the positive is the other view's bank entry of the image
 * (detached), as in CMC's code, not its live feature. After the optimiser step each view's bank
 * takes its own view's features at the batch's rows (`v <- normalise(0.5 v + 0.5 f)`): the loss
 * reads the banks before they change. More than two views: every ordered pair (`pairing: 'full'`)
 * or view 0 with each other (`'core'`).
 *
 * Each step augments every image once (CMC: random resized crop, area 0.08-1 as train_CMC.py's
 * crop_low default, and a flip, no colour jitter, from 96 px; crop 0.3-1 and flip below), then
 * splits it into its views (`split`): the views of one image share their crop. The noise indices
 * (K, default 4096) are drawn once per step and shared by the batch and by every view (CMC draws
 * K per sample: [B, K] rows of D floats a step instead of [K]; shared noise costs B times less,
 * for the same expected loss). The preset needs each image's data-set index,
 * `batch.indices` (`fit` supplies them for a tensor of images), and `datasetSize`.
 *
 * `embed` returns the concatenation of every view encoder's features ([N, sum F_v], CMC's
 * evaluation concatenates the L and ab features), in inference mode; `featureDim` is that sum.
 *
 * Defaults (train_CMC.py): NCE, K 4096, tau 0.07, bank momentum 0.5, 128-d; SGD with momentum
 * 0.9, learning rate 0.03, weight decay 1e-4. Under 96 px: AdamW, learning rate 1e-3, 5% warm-up.
 *
 * @param options - the encoders, `datasetSize` and {@link CmcMethodOptions}.
 * @returns the preset.
 * @throws {@link index!ContrastiveError} on bad options: encoders not an array of at least 2
 *   distinct models, a count or channel count that does not fit the split, no `datasetSize`.
 *
 * @example
 * <!-- snippet setup="fashion" -->
 * ```ts
 * import { cmc } from 'tfjs-contrastive/methods';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * // Grey images: the image and its gradient magnitude, one encoder each.
 * const encoders = [1, 2].map((seed) => smallConvNet({ inputShape: [28, 28, 1], widths: [8, 16], seed }));
 * const method = cmc({ encoders, datasetSize: images.shape[0], negatives: 8 });
 * await method.fit(images, { epochs: 1, batchSize: 8, progress: false }); // fit passes the indices
 * const features = method.embed(testImages); // [8, 32]: both encoders' features
 * ```
 */
export function cmc(options: CmcMethodOptions): CMC {
  return new CMC(options);
}

/**
 * The CMC preset; build it with {@link cmc}.
 *
 * @example
 * <!-- snippet setup="images" -->
 * ```ts
 * import { CMC, cmc } from 'tfjs-contrastive/methods';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * // RGB: the L view (1 channel) and the ab view (2 channels)
 * const forL = smallConvNet({ inputShape: [32, 32, 1], widths: [8, 16], seed: 1 });
 * const forAb = smallConvNet({ inputShape: [32, 32, 2], widths: [8, 16], seed: 2 });
 * const method: CMC = cmc({ encoders: [forL, forAb], datasetSize: 100, loss: 'softmax', negatives: 64 });
 * const indices = Int32Array.from({ length: 8 }, (_, i) => i); // the images' rows in the banks
 * const { loss } = await method.trainStep({ images, indices }); // images: [8, 32, 32, 3]
 * console.log(loss, method.banks.length); // ..., 2
 * method.dispose(); // the encoders stay yours
 * ```
 */
export class CMC extends SslMethod {
  /** The method's name. */
  readonly name: string = 'cmc';
  /** Width of `embed`'s features: the sum of the encoders' widths. */
  override readonly featureDim: number;
  /** The encoders, one per view. */
  readonly encoders: readonly tfl.LayersModel[];
  /** The linear heads to `projectionDim`, one per view. */
  readonly heads: readonly tfl.Sequential[];
  /** The loss form. */
  readonly lossKind: 'nce' | 'softmax';
  /** The pairing of the views. */
  readonly pairing: 'full' | 'core';
  /** Temperature tau. */
  readonly temperature: number;
  /** Noise samples K a step. */
  readonly negatives: number;
  /** The number of training images N (the banks' size). */
  readonly datasetSize: number;
  /** The directed pairs (query view, bank view) of the loss, in order. */
  readonly pairs: readonly (readonly [number, number])[];
  private bankList: MemoryBank[];
  // One Z per directed pair (NCE only), in the order of `pairs`.
  private readonly zs: NceConstant[];
  private readonly split: CmcViewSplit | undefined;
  private disposing = false;

  /**
   * Builds the preset (prefer {@link cmc}).
   *
   * @param options - see {@link cmc}.
   */
  constructor(options: CmcMethodOptions) {
    super('cmc', baseOptions(options), CMC_DEFAULTS);
    registerLayers();
    const caller = 'cmc';
    this.encoders = [...options.encoders];
    this.split = options.split;
    const v = this.encoders.length;
    this.featureDim = this.encoders.reduce((s, e) => s + outputWidth(e), 0);
    this.lossKind = options.loss ?? 'nce';
    checkOneOf(caller, 'options.loss', this.lossKind, ['nce', 'softmax']);
    this.pairing = options.pairing ?? 'full';
    checkOneOf(caller, 'options.pairing', this.pairing, ['full', 'core']);
    const { temperature, negatives, momentum, dim } = bankMethodOptions(caller, options);
    this.temperature = temperature;
    this.negatives = negatives;
    if ((options.datasetSize as number | undefined) === undefined) {
      throw new ContrastiveError(
        {
          caller,
          argument: 'options.datasetSize',
          expected:
            'the number of training images N (each view keeps a memory bank of N entries; every batch.indices must be below N)',
          received: 'undefined',
        },
        'For fit(images) it is images.shape[0].',
      );
    }
    checkNumber(caller, 'options.datasetSize', options.datasetSize, { integer: true, min: 1 });
    this.datasetSize = options.datasetSize;
    const seed = options.seed ?? 0;
    this.heads = this.encoders.map((e, i) =>
      mlpHead({
        inputDim: outputWidth(e),
        name: `cmc_head_${i}`,
        blocks: [{ units: dim }],
        seed: seed + 1 + i,
      }),
    );
    this.bankList = this.encoders.map(
      (_, i) => new MemoryBank(this.datasetSize, dim, { momentum, seed: seed + 101 + i }),
    );
    const pairs = viewPairs(v, this.pairing);
    this.pairs = pairs;
    this.zs = this.lossKind === 'nce' ? pairs.map(() => new NceConstant()) : [];
  }

  /** The memory banks, one per view (bank v holds view v's features). */
  get banks(): readonly MemoryBank[] {
    return this.bankList;
  }

  /**
   * The NCE constants Z by directed pair `'i-j'` (view i's features against view j's bank), or
   * `undefined` before the first step; empty for the softmax loss.
   */
  get normalizers(): Record<string, number | undefined> {
    return Object.fromEntries(this.pairs.map(([i, j], p) => [`${i}-${j}`, this.zs[p]?.value]));
  }

  protected recipe(size: number): ViewSpec[] {
    // CMC augments once and splits into views: one view spec. Crop and flip only (train_CMC.py);
    // its crop_low default 0.08 from 96 px, the small-image recipe's milder 0.3 below.
    return [{ size, scale: size >= 96 ? [0.08, 1] : [0.3, 1], flip: 0.5 }];
  }

  protected networks(): Record<string, tfl.LayersModel> {
    const out: Record<string, tfl.LayersModel> = {};
    this.encoders.forEach((e, i) => {
      // The base's dispose skips only `encoder`: the other encoders are the caller's too.
      if (i === 0) out['encoder'] = e;
      else if (!this.disposing || this.options.disposeEncoder === true) out[`encoder${i}`] = e;
    });
    this.heads.forEach((h, i) => (out[`head${i}`] = h));
    return out;
  }

  protected trainedNetworks(): tfl.LayersModel[] {
    return [...this.encoders, ...this.heads];
  }

  protected override prepare(views: tf.Tensor4D[], context: StepContext): tf.Tensor[] {
    const caller = `${this.name}.trainStep`;
    const image = views[0] as tf.Tensor4D;
    const idx = batchIndices(caller, context.batch.indices, image.shape[0], this.datasetSize);
    const noise = this.methodRng.integers(this.negatives, this.datasetSize);
    const parts = this.splitViews(caller, image);
    return [tf.tensor1d(idx, 'int32'), tf.tensor1d(noise, 'int32'), ...parts];
  }

  protected loss(_views: tf.Tensor4D[], prepared: tf.Tensor[]): LossOutput {
    const [idx, noise, ...parts] = prepared as [tf.Tensor1D, tf.Tensor1D, ...tf.Tensor4D[]];
    const features = parts.map((x, v) =>
      l2Normalize(
        SslMethod.train(
          this.heads[v] as tfl.Sequential,
          SslMethod.train(this.encoders[v] as tfl.LayersModel, x),
        ),
      ),
    );
    const estimates: tf.Scalar[] = [];
    let loss: tf.Scalar;
    if (this.lossKind === 'nce') {
      const terms = this.pairs.map(([i, j], p) => {
        const z = (this.zs[p] as NceConstant).value;
        const out = nceLoss(
          features[i] as tf.Tensor2D,
          idx,
          this.bankList[j] as MemoryBank,
          noise,
          {
            temperature: this.temperature,
            normalize: false,
            ...(z === undefined ? {} : { z }),
          },
        );
        if (z === undefined) estimates.push(out.z);
        return out.loss;
      });
      loss = tf.addN(terms);
    } else {
      // CMC's softmax variant: positives and negatives both from the banks, as constants; the
      // banks' raw entries, as the code scores them (normalize: false).
      loss = cmcLoss(features, {
        temperature: this.temperature,
        pairing: this.pairing,
        positivesPerView: this.bankList.map((b) => b.read(idx)),
        negativesPerView: this.bankList.map((b) => b.read(noise)),
        normalize: false,
      }) as tf.Scalar;
    }
    return { loss, embedding: features[0], keep: [...features, ...estimates] };
  }

  protected override update(
    _views: tf.Tensor4D[],
    prepared: tf.Tensor[],
    _context: StepContext,
    kept: readonly tf.Tensor[],
  ): void {
    const idx = prepared[0] as tf.Tensor1D;
    const v = this.encoders.length;
    // Z first (its estimates are from this step's scores), then the banks, read before this.
    let at = v;
    for (const z of this.zs) if (z.value === undefined) z.fixFrom(kept[at++]);
    this.bankList.forEach((bank, i) => bank.update(idx, kept[i] as tf.Tensor2D));
  }

  protected override stateParts(): Record<string, StatefulPart> {
    const parts: Record<string, StatefulPart> = {};
    this.bankList.forEach((b, i) => (parts[`bank${i}`] = b));
    this.pairs.forEach(([i, j], p) => {
      const z = this.zs[p];
      if (z !== undefined) parts[`z${i}_${j}`] = z;
    });
    return parts;
  }

  protected override restorePart(name: string, state: ComponentState): void {
    const caller = `${this.name}.load`;
    const bank = /^bank(\d+)$/.exec(name);
    const current = bank === null ? undefined : this.bankList[Number(bank[1])];
    if (current !== undefined) {
      const restored = restoredBank(caller, current, state);
      this.bankList[Number((bank as RegExpExecArray)[1])] = restored;
      return;
    }
    const pair = this.pairs.findIndex(([i, j]) => name === `z${i}_${j}`);
    const z = this.zs[pair];
    if (z === undefined) {
      super.restorePart(name, state);
      return;
    }
    z.restore(caller, state);
  }

  protected override disposeParts(): void {
    for (const b of this.bankList) b.dispose();
  }

  /**
   * Frees the heads, the banks and the default optimiser; the encoders stay the caller's unless
   * the preset was built with `disposeEncoder: true` (then all of them go).
   */
  override dispose(): void {
    this.disposing = true;
    try {
      super.dispose();
    } finally {
      this.disposing = false;
    }
  }

  /**
   * CMC's features for downstream use (`embed`): every view encoder's features of the images'
   * views (no augmentation), concatenated in view order, in inference mode; featureDim is the sum
   * of the encoders' widths.
   */
  protected override embedBatch(images: tf.Tensor4D, caller: string): tf.Tensor2D {
    const features = this.splitViews(caller, images).map(
      (x, v) => (this.encoders[v] as tfl.LayersModel).apply(x, { training: false }) as tf.Tensor2D,
    );
    return tf.concat(features, 1);
  }

  protected describeConfig(): Record<string, JsonValue> {
    const split = this.split;
    return {
      views: this.encoders.length,
      split: typeof split === 'function' ? 'custom' : (split ?? 'auto'),
      loss: this.lossKind,
      pairing: this.pairing,
      temperature: this.temperature,
      negatives: this.negatives,
      datasetSize: this.datasetSize,
      bankMomentum: (this.bankList[0] as MemoryBank).momentum,
      projectionDim: (this.bankList[0] as MemoryBank).dim,
      featureDims: this.encoders.map(outputWidth),
    };
  }

  /** The views of a batch by the split, checked against the encoders' inputs. */
  private splitViews(caller: string, images: tf.Tensor4D): tf.Tensor4D[] {
    const c = images.shape[3];
    const split = this.split ?? (c === 3 ? 'lab' : c === 1 ? 'gradient' : undefined);
    if (split === undefined) {
      throw new ContrastiveError({
        caller,
        argument: 'options.split',
        expected: `a split for ${c}-channel images ('halves' or a function; the default is 'lab' for 3 channels, 'gradient' for 1)`,
        received: 'undefined',
      });
    }
    if ((split === 'lab' && c !== 3) || (split === 'gradient' && c !== 1)) {
      throw new ContrastiveError({
        caller,
        argument: 'options.split',
        expected: `a split that fits ${c}-channel images ('${split}' needs ${split === 'lab' ? 3 : 1})`,
        received: `'${split}'`,
      });
    }
    let views: readonly unknown[];
    if (split === 'lab') views = labViews(images);
    else if (split === 'gradient') views = gradientViews(images);
    else if (split === 'halves') views = halves(images);
    else {
      const out: unknown = split(images);
      if (!Array.isArray(out)) {
        throw new ContrastiveError({
          caller,
          argument: 'options.split',
          expected: `a function returning ${this.encoders.length} views [B, h, w, c]`,
          received: `one returning ${describeValue(out)}`,
        });
      }
      // A view that is the input itself is copied, so that the step owns every view it frees.
      views = (out as unknown[]).map((x) => (x === images ? tf.clone(images) : x));
    }
    const fail = (received: string): never => {
      throw new ContrastiveError(
        {
          caller,
          argument: 'options.split',
          expected: `${this.encoders.length} views, view v of [${images.shape[0]}, h, w, c] fitting options.encoders[v]'s input`,
          received,
        },
        "Each encoder must take its view: e.g. for split 'lab' [H, W, 1] and [H, W, 2].",
      );
    };
    if (views.length !== this.encoders.length) {
      tf.dispose(views.filter((x): x is tf.Tensor => x instanceof tf.Tensor));
      fail(`${views.length} views for ${this.encoders.length} encoders`);
    }
    views.forEach((x: unknown, v) => {
      const shape = (this.encoders[v] as tfl.LayersModel).inputs[0]?.shape ?? [];
      const t = x instanceof tf.Tensor ? (x as tf.Tensor) : undefined;
      const got = t?.shape ?? [];
      const ok =
        t !== undefined &&
        t.rank === 4 &&
        t.dtype === 'float32' &&
        got[0] === images.shape[0] &&
        shape.length === 4 &&
        shape.slice(1).every((d, k) => d === null || d === got[k + 1]);
      if (!ok) {
        tf.dispose(views.filter((y): y is tf.Tensor => y instanceof tf.Tensor));
        fail(
          `view ${v} ${t === undefined ? describeValue(x) : `[${got.join(', ')}]`} for an encoder taking [${shape.map((d) => (d === null ? 'B' : String(d))).join(', ')}]`,
        );
      }
    });
    return views as tf.Tensor4D[];
  }
}

/** The base class's options: `encoders[0]` as the encoder, after checking the encoders. */
function baseOptions(options: CmcMethodOptions): SslMethodOptions {
  const caller = 'cmc';
  if (typeof options !== 'object' || (options as unknown) === null) {
    throw new ContrastiveError({
      caller,
      argument: 'options',
      expected: 'an options object { encoders, datasetSize, ... }',
      received: describeValue(options),
    });
  }
  const list: unknown = options.encoders;
  if (!Array.isArray(list) || list.length < 2) {
    throw new ContrastiveError({
      caller,
      argument: 'options.encoders',
      expected: 'an array of 2 or more tfjs-layers models, one per view (e.g. [forL, forAb])',
      received: describeValue(list),
    });
  }
  const encoders = list as unknown[];
  encoders.forEach((e, i) => {
    const m = e as Partial<tfl.LayersModel> | null;
    const shape = m?.outputs?.[0]?.shape;
    if (
      m === null ||
      typeof m !== 'object' ||
      typeof m.apply !== 'function' ||
      !Array.isArray(m.layers) ||
      shape?.length !== 2 ||
      typeof shape[1] !== 'number'
    ) {
      throw new ContrastiveError({
        caller,
        argument: `options.encoders[${i}]`,
        expected: 'a tfjs-layers model mapping its view [B, h, w, c] to features [B, F]',
        received: describeValue(e),
      });
    }
    if (encoders.indexOf(e) !== i) {
      throw new ContrastiveError({
        caller,
        argument: `options.encoders[${i}]`,
        expected: 'a model of its own (CMC trains one encoder per view)',
        received: `the same model as options.encoders[${encoders.indexOf(e)}]`,
      });
    }
  });
  if (options.encoder !== undefined && options.encoder !== encoders[0]) {
    throw new ContrastiveError({
      caller,
      argument: 'options.encoder',
      expected: 'options.encoders[0] or nothing (options.encoders gives every view its encoder)',
      received: 'another model',
    });
  }
  const split = options.split;
  if (typeof split !== 'function' && split !== undefined) {
    checkOneOf(caller, 'options.split', split, ['lab', 'gradient', 'halves']);
  }
  if (typeof split !== 'function' && encoders.length !== 2) {
    throw new ContrastiveError({
      caller,
      argument: 'options.encoders',
      expected: `2 encoders, one per view of the split ${split === undefined ? "('lab' or 'gradient' by the images' channels)" : `'${split}'`}`,
      received: `${encoders.length} encoders (a split function makes any number of views)`,
    });
  }
  const channels = (encoders as tfl.LayersModel[]).map((e) => e.inputs[0]?.shape[3]);
  const want = split === 'lab' ? [1, 2] : split === 'gradient' ? [1, 1] : undefined;
  want?.forEach((c, i) => {
    const has = channels[i];
    if (typeof has === 'number' && has !== c) {
      throw new ContrastiveError({
        caller,
        argument: `options.encoders[${i}]`,
        expected: `a model taking the ${c}-channel view ${i} of the split '${split as string}'`,
        received: `one taking ${has} channels`,
      });
    }
  });
  if (options.views !== undefined) {
    const count = options.views.reduce((n, s) => n + (s.count ?? 1), 0);
    if (count !== 1) {
      throw new ContrastiveError({
        caller,
        argument: 'options.views',
        expected: 'one view spec of count 1 (cmc augments each image once, then splits it)',
        received: `specs making ${count} views`,
      });
    }
  }
  // The halves of an image are half as high as it: the recipe's side is twice the encoder's.
  const h = (encoders[0] as tfl.LayersModel).inputs[0]?.shape[1];
  const imageSize =
    options.imageSize ?? (split === 'halves' && typeof h === 'number' ? 2 * h : undefined);
  return {
    ...options,
    encoder: encoders[0] as tfl.LayersModel,
    ...(imageSize === undefined ? {} : { imageSize }),
  };
}

/** L and ab of L*a*b*, each scaled to about [-1, 1] as CMC normalises them. */
function labViews(images: tf.Tensor4D): tf.Tensor4D[] {
  return tf.tidy(() => {
    const lab = tf.div<tf.Tensor4D>(
      tf.sub(rgbToLab(images), tf.tensor1d(LAB_MEAN)),
      tf.tensor1d(LAB_STD),
    );
    return tf.split(lab, [1, 2], 3);
  });
}

/** The grey image and its Sobel gradient magnitude / 4 (edges replicated at the border). */
function gradientViews(images: tf.Tensor4D): tf.Tensor4D[] {
  const grad = tf.tidy(() => {
    const [, h, w] = images.shape;
    const rows = tf.concat(
      [
        tf.slice(images, [0, 0, 0, 0], [-1, 1, -1, -1]),
        images,
        tf.slice(images, [0, h - 1, 0, 0], [-1, 1, -1, -1]),
      ],
      1,
    );
    const padded = tf.concat(
      [
        tf.slice(rows, [0, 0, 0, 0], [-1, -1, 1, -1]),
        rows,
        tf.slice(rows, [0, 0, w - 1, 0], [-1, -1, 1, -1]),
      ],
      2,
    );
    const gx = [
      [-1, 0, 1],
      [-2, 0, 2],
      [-1, 0, 1],
    ];
    const data: number[] = [];
    for (let r = 0; r < 3; r++) {
      for (let c = 0; c < 3; c++) data.push(gx[r]?.[c] as number, gx[c]?.[r] as number);
    }
    const g = tf.conv2d(padded, tf.tensor4d(data, [3, 3, 1, 2]), 1, 'valid');
    return tf.div<tf.Tensor4D>(tf.sqrt(tf.sum(tf.square(g), 3, true)), 4);
  });
  return [tf.clone(images), grad];
}

/** The top and bottom halves of the images (the middle row dropped for an odd height). */
function halves(images: tf.Tensor4D): tf.Tensor4D[] {
  const [, h] = images.shape;
  const half = Math.floor(h / 2);
  return [
    tf.slice(images, [0, 0, 0, 0], [-1, half, -1, -1]),
    tf.slice(images, [0, h - half, 0, 0], [-1, half, -1, -1]),
  ];
}
