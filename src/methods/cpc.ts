import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { ViewSpec } from '../augment/index.js';
import {
  ContrastiveError,
  SeededRandom,
  checkNumber,
  checkOneOf,
  checkTensor,
  type JsonValue,
} from '../core/index.js';
import { Gru, registerLayers } from '../layers/index.js';
import { LayerSeeds } from '../layers/seeds.js';
import { cpcLoss } from '../losses/index.js';
import { SslMethod, type LossOutput, type MethodDefaults, type StepContext } from './method.js';
import type { Batch, SslMethodOptions, TrainStepResult } from './types.js';

/** How {@link cpc} cuts an input into the patches its encoder sees. */
export type CpcInput = 'grid' | 'sequence';

/** Which features {@link CPC.embed} returns. */
export type CpcEmbedding = 'context' | 'latent';

/** Options of {@link cpc}. */
export interface CpcMethodOptions extends SslMethodOptions {
  /**
   * `'grid'` (default): each image [B, H, W, C] is cut into a grid of overlapping square patches
   * (CPC's vision setting), the context runs down the rows. `'sequence'`: each input is a 1-D
   * sequence stored as a [B, T, 1, C] (or [B, T, W, C]) tensor, cut into overlapping windows
   * [p, W] along T, the context runs along T.
   */
  readonly input?: CpcInput;
  /**
   * Patch side p (grid) or window length (sequence), in pixels / samples. Default: the encoder's
   * fixed input height when it has one, else `max(2, 2 round(S / 8))` for an image of side S
   * (CPC's 64 px at 256 px; 8 px at 28 and 32 px), or `max(2, 2 round(T / 32))` for a sequence
   * of length T.
   */
  readonly patchSize?: number;
  /** Stride between patches / windows. Default `max(1, patchSize / 2)` (CPC's 50% overlap). */
  readonly patchStride?: number;
  /** Width of the context vectors c (the GRU's state). Default `256` (CPC's audio GRU). */
  readonly contextDim?: number;
  /**
   * Prediction steps K: rows (grid) or windows (sequence) ahead, one W_k each. Default `3` for a
   * grid (CPC predicts up to 5 of 7 rows at 256 px; the small-image grids have 6 or 7 rows), `12`
   * for a sequence (CPC's audio). Must be below the number of rows.
   */
  readonly predictionSteps?: number;
  /**
   * Negatives of each prediction ({@link index!cpcLoss}): `'batch'` (default, CPC's vision
   * setting: every other patch of every image of the batch, at every position) or `'sameStep'`
   * (the other images' patches at the same grid position).
   */
  readonly negatives?: 'batch' | 'sameStep';
  /** Softmax temperature of the scores `z^T W_k c`. Default `1` (the paper's unscaled score). */
  readonly temperature?: number;
  /**
   * What {@link CPC.embed} returns: `'context'` (default: the context vectors averaged over the
   * grid, [N, contextDim]) or `'latent'` (the encoder's patch features averaged over the grid,
   * [N, F], CPC v2's evaluation).
   */
  readonly embedding?: CpcEmbedding;
  /** Seed of the context network's and predictors' initial weights. Default: from `seed`. */
  readonly headSeed?: number;
}

/**
 * The defaults of {@link cpc}: Adam with learning rate 2e-4 and no weight decay (the paper), no
 * warm-up; under 96 px (runs of minutes) Adam with 1e-3 and a 5% warm-up. Both are Adam, so the
 * optimiser is the same whether or not the image size is known when it is built.
 */
export const CPC_DEFAULTS: MethodDefaults = {
  optimizer: 'adam',
  learningRate: 2e-4,
  weightDecay: 0,
  warmup: 0,
  smallImages: { optimizer: 'adam', learningRate: 1e-3, weightDecay: 0, warmup: 0.05 },
};

/** Where the patches of an input lie. */
interface Geometry {
  readonly patchHeight: number;
  readonly patchWidth: number;
  readonly strideHeight: number;
  readonly strideWidth: number;
  readonly rows: number;
  readonly cols: number;
}

/**
 * Contrastive Predictive Coding (van den Oord, Li and Vinyals 2018): an encoder maps every patch
 * (grid) or window (sequence) to a latent z, an autoregressive context network summarises the
 * latents so far into c, and one linear map W_k per step k = 1..K (`predictionSteps`) predicts
 * the latent k rows (or windows) ahead, `W_k c_{i,j} ~ z_{i+k,j}`, scored by InfoNCE against the
 * other latents of the batch ({@link index!cpcLoss}). The loss is the mean over k of the mean over
 * positions (positions without a future at offset k are left out). The encoder and the targets
 * both train: nothing is stopped.
 *
 * - Grid (`input: 'grid'`, CPC's vision setting): each view [B, S, S, C] is cut into a G x G grid of
 *   overlapping p x p patches at stride s (default p = 2 round(S / 8), s = p / 2: the paper's 64 px
 *   at stride 32 on 256 px gives 7 x 7; 28 px images give 6 x 6 patches of 8 px). Every patch of
 *   the batch goes through the encoder as one batch [B G G, p, p, C] (so the encoder must take
 *   p x p inputs: e.g. `smallConvNet({ inputShape: [null, null, C] })`, or one built for
 *   [p, p, C]). The patches are cut with `tf.slice` and stacked, which have gradients on every
 *   backend.
 * - Context network: a GRU ({@link layers!Gru}, written from functional ops: tfjs-layers' own GRU
 *   needs chained ops that tfjs-core alone lacks) runs down each column of the grid, top to bottom,
 *   so c_{i,j} depends only on the patches of column j in rows <= i. (The paper's vision model was
 *   a PixelCNN-style masked convolution stack, whose context also sees the other columns of the
 *   rows above; the GRU is its audio model, kept here for both settings.)
 * - Sequence (`input: 'sequence'`): inputs [B, T, W, C] (W = 1 for a 1-D signal) are cut into
 *   overlapping windows [p, W] along T (default p = 2 round(T / 32), stride p / 2), and the GRU runs
 *   along T. No augmentation, as in CPC's audio experiments: the loss reads `batch.images` (or
 *   your `batch.views[0]`); the recipe's one view is a 4 px placeholder.
 * - Augmentation (grid): one view per image, a random resized crop of 70-100% of the area and a
 *   horizontal flip with p 0.5 (CPC v1 cropped 256 px from 300 px, about 73% of the area, and
 *   flipped); the paper's further per-patch crops are not applied.
 * - {@link CPC.embed}: the context vectors averaged over the grid ([N, contextDim], CPC v1 evaluated
 *   the context), or with `embedding: 'latent'` the patch latents averaged over the grid ([N, F],
 *   CPC v2's evaluation); {@link CPC.featureDim} is that width.
 *
 * Defaults: contextDim 256, K = 3 (grid) or 12 (sequence), batch negatives, temperature 1, Adam
 * with learning rate 2e-4 and no weight decay (the paper); under 96 px Adam 1e-3 with a 5%
 * warm-up. The encoder's batch norm (if any) sees the statistics of all B G G patches (CPC v1 had
 * none; CPC v2 used layer norm so that patches share no statistics).
 *
 * @param options - the encoder and {@link CpcMethodOptions}.
 * @returns the preset.
 * @throws {@link index!ContrastiveError} on bad options, and in `trainStep` / `embed` when the
 *   patches do not fit the input or the encoder.
 *
 * @example
 * <!-- snippet setup="fashion" -->
 * ```ts
 * import { cpc } from 'tfjs-contrastive/methods';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * // 28 px images: a 6 x 6 grid of 8 px patches at stride 4, each encoded by the conv net
 * const encoder = smallConvNet({ inputShape: [null, null, 1], widths: [32, 64], seed: 1 });
 * const method = cpc({ encoder, contextDim: 64, predictionSteps: 3 });
 * await method.fit(images, { epochs: 1, batchSize: 32, progress: false }); // [N, 28, 28, 1]
 * const features = method.embed(testImages); // [N, 64]: the context averaged over the grid
 * method.dispose();
 * ```
 */
export function cpc(options: CpcMethodOptions): CPC {
  return new CPC(options);
}

/**
 * The CPC preset; build it with {@link cpc}.
 *
 * @example
 * <!-- snippet setup="fashion" -->
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { CPC, cpc } from 'tfjs-contrastive/methods';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * const encoder = smallConvNet({ inputShape: [null, null, 1], widths: [16, 32], seed: 1 });
 * const method: CPC = cpc({ encoder, contextDim: 32, embedding: 'latent' });
 * const { loss } = await method.trainStep({ images }); // images [B, 28, 28, 1] in [0, 1]
 * const [z, c] = method.encode(images); // [B, 6, 6, 32] latents, [B, 6, 6, 32] context
 * console.log(loss, method.featureDim); // ..., 32 (the latent width F)
 * tf.dispose([z, c]);
 * method.dispose(); // the encoder stays yours
 * ```
 */
export class CPC extends SslMethod {
  /** The method's name. */
  readonly name: string = 'cpc';
  /** Grid of patches or windows of a sequence. */
  readonly input: CpcInput;
  /** Width of the context vectors. */
  readonly contextDim: number;
  /** Width F of the encoder's patch latents. */
  readonly latentDim: number;
  /** The number K of prediction steps (one W_k each). */
  readonly predictionSteps: number;
  /** Where the negatives come from. */
  readonly negatives: 'batch' | 'sameStep';
  /** Softmax temperature. */
  readonly temperature: number;
  /** What `embed` returns. */
  readonly embedding: CpcEmbedding;
  /** The autoregressive context network: [N, T, F] latents to [N, T, contextDim] (a GRU). */
  readonly contextNetwork: tfl.Sequential;
  /** W_1 .. W_K: each a dense layer without bias, contextDim -> F. */
  readonly predictors: readonly tfl.Sequential[];
  private readonly cpcOptions: CpcMethodOptions;
  private seenSide: number | undefined;

  /**
   * Builds the preset (prefer {@link cpc}).
   *
   * @param options - see {@link cpc}.
   */
  constructor(options: CpcMethodOptions) {
    const caller = 'cpc';
    super(caller, options, CPC_DEFAULTS);
    this.cpcOptions = options;
    this.input = options.input ?? 'grid';
    checkOneOf(caller, 'options.input', this.input, ['grid', 'sequence']);
    if (options.patchSize !== undefined)
      checkNumber(caller, 'options.patchSize', options.patchSize, { integer: true, min: 1 });
    if (options.patchStride !== undefined)
      checkNumber(caller, 'options.patchStride', options.patchStride, { integer: true, min: 1 });
    this.contextDim = options.contextDim ?? 256;
    checkNumber(caller, 'options.contextDim', this.contextDim, { integer: true, min: 1 });
    this.predictionSteps = options.predictionSteps ?? (this.input === 'grid' ? 3 : 12);
    checkNumber(caller, 'options.predictionSteps', this.predictionSteps, { integer: true, min: 1 });
    this.negatives = options.negatives ?? 'batch';
    checkOneOf(caller, 'options.negatives', this.negatives, ['batch', 'sameStep']);
    this.temperature = options.temperature ?? 1;
    checkNumber(caller, 'options.temperature', this.temperature, { greaterThan: 0 });
    this.embedding = options.embedding ?? 'context';
    checkOneOf(caller, 'options.embedding', this.embedding, ['context', 'latent']);
    const headSeed = options.headSeed ?? (options.seed ?? 0) + 1;
    checkNumber(caller, 'options.headSeed', headSeed, { integer: true });
    const fixed = this.encoder.inputs[0]?.shape;
    const fixedHeight = fixed?.[1];
    if (
      options.patchSize !== undefined &&
      typeof fixedHeight === 'number' &&
      fixedHeight !== options.patchSize
    ) {
      throw new ContrastiveError({
        caller,
        argument: 'options.patchSize',
        expected: `the encoder's fixed input height ${fixedHeight} (or an encoder taking any size, inputShape [null, null, C])`,
        received: String(options.patchSize),
      });
    }
    this.latentDim = this.featureDim;
    // The features embed returns: the context's width unless the latents are asked for.
    if (this.embedding === 'context') (this as { featureDim: number }).featureDim = this.contextDim;
    registerLayers();
    const seeds = new LayerSeeds(caller, 'options.headSeed', headSeed);
    this.contextNetwork = tfl.sequential({
      name: 'cpc_context',
      layers: [
        new Gru({ units: this.contextDim, inputShape: [null, this.latentDim], seed: seeds.next() }),
      ],
    });
    this.predictors = Array.from({ length: this.predictionSteps }, (_, i) =>
      tfl.sequential({
        name: `cpc_predictor_${i + 1}`,
        layers: [
          tfl.layers.dense({
            units: this.latentDim,
            useBias: false,
            inputShape: [this.contextDim],
            ...seeds.kernel(),
          }),
        ],
      }),
    );
  }

  /**
   * The side of the training images: `imageSize`, else the first batch's (an encoder's fixed
   * input is the patch's side here, not the image's).
   */
  protected override get imageSize(): number | undefined {
    return this.options.imageSize ?? this.seenSide;
  }

  /** One training step (see {@link SslMethod.trainStep}); checks the patch grid first. */
  override async trainStep(batch: Batch, optimizer?: tf.Optimizer): Promise<TrainStepResult> {
    const images = (batch as Partial<Batch> | null | undefined)?.images;
    if (images instanceof tf.Tensor && images.rank === 4) {
      this.seenSide ??= images.shape[1];
      const view = batch.views?.[0];
      const shape =
        view instanceof tf.Tensor && view.rank === 4
          ? view.shape
          : this.input === 'sequence'
            ? images.shape
            : [
                images.shape[0],
                this.imageSize ?? images.shape[1],
                this.imageSize ?? images.shape[2],
                images.shape[3],
              ];
      this.geometry(`${this.name}.trainStep`, shape);
    }
    return super.trainStep(batch, optimizer);
  }

  /** The method's views of `images` (see {@link SslMethod.makeViews}); dispose them. */
  override makeViews(images: tf.Tensor4D, rng: SeededRandom | number = 0): tf.Tensor4D[] {
    if (images instanceof tf.Tensor && images.rank === 4) this.seenSide ??= images.shape[1];
    return super.makeViews(images, rng);
  }

  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  protected recipe(size: number, channels: number): ViewSpec[] {
    if (this.input === 'sequence') return [{ size: 4, scale: [1, 1], ratio: [1, 1], flip: 0 }];
    // The base passes an encoder's fixed input side (the patch here): the image's side instead.
    return [{ size: this.imageSize ?? size, scale: [0.7, 1], flip: 0.5 }];
  }

  protected networks(): Record<string, tfl.LayersModel> {
    const out: Record<string, tfl.LayersModel> = {
      encoder: this.encoder,
      context: this.contextNetwork,
    };
    this.predictors.forEach((p, i) => (out[`predictor${i + 1}`] = p));
    return out;
  }

  protected trainedNetworks(): tfl.LayersModel[] {
    return [this.encoder, this.contextNetwork, ...this.predictors];
  }

  /**
   * The patch latents z [B, rows, cols, F] and the context c [B, rows, cols, contextDim] of
   * inputs, in inference mode (or training mode with `training: true`). A sequence has one column.
   *
   * @param inputs - [B, H, W, C] images (grid) or [B, T, W, C] sequences.
   * @param training - batch norm with batch statistics. Default `false`.
   * @returns `[z, c]`; dispose them.
   * @throws {@link index!ContrastiveError} when the patches do not fit the input or the encoder.
   */
  encode(inputs: tf.Tensor4D, training = false): [tf.Tensor4D, tf.Tensor4D] {
    const caller = `${this.name}.encode`;
    this.checkAlive(caller);
    checkTensor(caller, 'inputs', inputs, { rank: 4, dtype: 'float32', layout: '[B, H, W, C]' });
    const g = this.geometry(caller, inputs.shape);
    return tf.tidy(() => {
      const z = this.latents(inputs, g, training);
      return [z, this.contextOf(z, training)];
    });
  }

  protected loss(views: tf.Tensor4D[], prepared: tf.Tensor[], context: StepContext): LossOutput {
    const x =
      this.input === 'sequence'
        ? (context.batch.views?.[0] ?? context.batch.images)
        : (views[0] as tf.Tensor4D);
    const g = this.geometry(`${this.name}.trainStep`, x.shape);
    const z = this.latents(x, g, true);
    const c = this.contextOf(z, true);
    const [b, rows, cols] = z.shape;
    const terms: tf.Scalar[] = this.predictors.map((w, i) => {
      const k = i + 1;
      const n = rows - k;
      const ck = tf.reshape(tf.slice(c, [0, 0, 0, 0], [b, n, cols, this.contextDim]), [
        b * n * cols,
        this.contextDim,
      ]);
      const prediction = tf.reshape(SslMethod.train(w, ck), [b, n * cols, this.latentDim]);
      const target = tf.reshape(tf.slice(z, [0, k, 0, 0], [b, n, cols, this.latentDim]), [
        b,
        n * cols,
        this.latentDim,
      ]);
      return cpcLoss(prediction as tf.Tensor3D, target as tf.Tensor3D, {
        negatives: this.negatives,
        temperature: this.temperature,
      }) as tf.Scalar;
    });
    const loss = tf.div<tf.Scalar>(tf.addN(terms), terms.length);
    return { loss, embedding: tf.mean<tf.Tensor2D>(c, [1, 2]) };
  }

  /**
   * The features downstream tasks use (`embed`), in inference mode: the context vectors (or, with
   * `embedding: 'latent'`, the patch latents) averaged over the grid.
   */
  protected override embedBatch(images: tf.Tensor4D, caller: string): tf.Tensor2D {
    const z = this.latents(images, this.geometry(caller, images.shape), false);
    const f = this.embedding === 'latent' ? z : this.contextOf(z, false);
    return tf.mean<tf.Tensor2D>(f, [1, 2]);
  }

  protected describeConfig(): Record<string, JsonValue> {
    const o = this.cpcOptions;
    return {
      input: this.input,
      patchSize: o.patchSize ?? null,
      patchStride: o.patchStride ?? null,
      contextDim: this.contextDim,
      latentDim: this.latentDim,
      predictionSteps: this.predictionSteps,
      negatives: this.negatives,
      temperature: this.temperature,
      embedding: this.embedding,
    };
  }

  // ---------------------------------------------------------------- internals

  /** The patch geometry of an input of `shape` [B, H, W, C], checked against the encoder. */
  private geometry(caller: string, shape: readonly number[]): Geometry {
    const [, h = 0, w = 0, channels = 0] = shape;
    const encoderShape = this.encoder.inputs[0]?.shape ?? [];
    const fixedHeight = encoderShape[1];
    const fixedWidth = encoderShape[2];
    const sequence = this.input === 'sequence';
    const side = sequence ? h : Math.min(h, w);
    const auto = sequence
      ? Math.max(2, 2 * Math.round(side / 32))
      : Math.max(2, 2 * Math.round(side / 8));
    const p = this.cpcOptions.patchSize ?? (typeof fixedHeight === 'number' ? fixedHeight : auto);
    const s = this.cpcOptions.patchStride ?? Math.max(1, Math.floor(p / 2));
    const patchWidth = sequence ? w : p;
    if (p > h || patchWidth > w) {
      throw new ContrastiveError({
        caller,
        argument: 'options.patchSize',
        expected: `patches that fit the ${sequence ? 'sequences' : 'images'} (${h} x ${w})`,
        received: `${p} x ${patchWidth}`,
      });
    }
    const rows = Math.floor((h - p) / s) + 1;
    const cols = sequence ? 1 : Math.floor((w - p) / s) + 1;
    if (rows <= this.predictionSteps) {
      throw new ContrastiveError({
        caller,
        argument: 'options.predictionSteps',
        expected: `fewer prediction steps than the ${rows} ${sequence ? 'windows' : 'rows of patches'} (patch ${p}, stride ${s} on ${h} ${sequence ? 'steps' : 'px'})`,
        received: String(this.predictionSteps),
      });
    }
    const fits = (fixed: number | null | undefined, size: number): boolean =>
      typeof fixed !== 'number' || fixed === size;
    const fixedChannels = encoderShape[3];
    if (!fits(fixedHeight, p) || !fits(fixedWidth, patchWidth) || !fits(fixedChannels, channels)) {
      throw new ContrastiveError({
        caller,
        argument: 'options.encoder',
        expected: `an encoder taking the patches [${p}, ${patchWidth}, ${channels}] (e.g. inputShape [null, null, ${channels}])`,
        received: `an encoder for inputs [${encoderShape.slice(1).map(String).join(', ')}]`,
      });
    }
    return {
      patchHeight: p,
      patchWidth,
      strideHeight: s,
      strideWidth: s,
      rows,
      cols,
    };
  }

  /** Latents [B, rows, cols, F] of every patch, the patches through the encoder as one batch. */
  private latents(x: tf.Tensor4D, g: Geometry, training: boolean): tf.Tensor4D {
    return tf.tidy(() => {
      const [b, , , channels] = x.shape;
      const patches: tf.Tensor4D[] = [];
      for (let i = 0; i < g.rows; i++) {
        for (let j = 0; j < g.cols; j++) {
          patches.push(
            tf.slice(
              x,
              [0, i * g.strideHeight, j * g.strideWidth, 0],
              [b, g.patchHeight, g.patchWidth, channels],
            ),
          );
        }
      }
      // [B, rows * cols, p, p, C] -> [B rows cols, p, p, C]: image-major, then row, then column.
      const all = tf.reshape(tf.stack(patches, 1), [
        b * g.rows * g.cols,
        g.patchHeight,
        g.patchWidth,
        channels,
      ]);
      const z = this.encoder.apply(all, { training }) as tf.Tensor2D;
      return tf.reshape(z, [b, g.rows, g.cols, this.latentDim]);
    });
  }

  /** The context [B, rows, cols, D]: the GRU down each column (rows are its time axis). */
  private contextOf(z: tf.Tensor4D, training: boolean): tf.Tensor4D {
    return tf.tidy(() => {
      const [b, rows, cols, f] = z.shape;
      const columns = tf.reshape(tf.transpose(z, [0, 2, 1, 3]), [b * cols, rows, f]);
      const c = this.contextNetwork.apply(columns, { training }) as tf.Tensor3D;
      return tf.transpose(tf.reshape(c, [b, cols, rows, this.contextDim]), [0, 2, 1, 3]);
    });
  }
}
