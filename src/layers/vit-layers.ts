/**
 * The pieces of a vision transformer that tfjs-layers lacks (it exports no multi-head attention):
 * a class token with learned position embeddings, multi-head self-attention, and the selection
 * of one token.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { checkNumber, describeValue } from '../core/checks.js';
import { ContrastiveError } from '../core/errors.js';
import { type BaseLayerArgs, CLASS_PREFIX, defaultName, singleShape, single } from './base.js';
import { weightSeeds } from './seeds.js';

/** [T, D] of [batch, T, D] tokens; T may be unknown, D must be known. */
function tokenShape(inputShape: tfl.Shape | tfl.Shape[]): [number | null, number] {
  const shape = singleShape(inputShape);
  const [, tokens = null, dim] = shape;
  if (shape.length !== 3 || typeof dim !== 'number') {
    throw new Error(`tfjs-contrastive: expected tokens [batch, T, D], got [${shape.join(', ')}]`);
  }
  return [tokens, dim];
}

const TRUNC_02 = (seed: number | undefined): ReturnType<typeof tfl.initializers.truncatedNormal> =>
  tfl.initializers.truncatedNormal({ stddev: 0.02, ...(seed === undefined ? {} : { seed }) });

/** Checks an optional integer `args.seed` of a layer. */
function checkSeed(caller: string, seed: unknown): number | undefined {
  if (seed !== undefined) checkNumber(caller, 'args.seed', seed, { integer: true });
  return seed;
}

/**
 * The [out, in] matrix of 1-D linear interpolation with half-pixel centres (PyTorch's
 * `interpolate(mode='bilinear', align_corners=False)` along one axis): output i samples the input
 * at (i + 0.5) in / out - 0.5, clamped to the ends.
 */
function linearResizeMatrix(out: number, size: number): Float32Array {
  const m = new Float32Array(out * size);
  for (let i = 0; i < out; i++) {
    const src = Math.min(Math.max(((i + 0.5) * size) / out - 0.5, 0), size - 1);
    const lo = Math.floor(src);
    const hi = Math.min(lo + 1, size - 1);
    const t = src - lo;
    m[i * size + lo] = (m[i * size + lo] ?? 0) + 1 - t;
    m[i * size + hi] = (m[i * size + hi] ?? 0) + t;
  }
  return m;
}

/**
 * Bilinear resize of a [h, w, D] grid to [oh, ow, D] as two plain matrix products (differentiable
 * on every backend; tfjs's resize gradient ignores half-pixel centres).
 */
function resizeGrid(grid: tf.Tensor3D, oh: number, ow: number): tf.Tensor3D {
  const [h, w, d] = grid.shape;
  const rows = tf.tensor2d(linearResizeMatrix(oh, h), [oh, h]);
  const cols = tf.tensor2d(linearResizeMatrix(ow, w), [ow, w]);
  // [oh, h] x [h, w d] -> [oh, w, d] -> [w, oh d]; [ow, w] x [w, oh d] -> [ow, oh, d] -> [oh, ow, d]
  const byRows = tf.reshape(tf.matMul(rows, tf.reshape(grid, [h, w * d])), [oh, w, d]);
  const swapped = tf.reshape(tf.transpose(byRows, [1, 0, 2]), [w, oh * d]);
  const byCols = tf.reshape<tf.Rank.R3>(tf.matMul(cols, swapped), [ow, oh, d]);
  return tf.transpose(byCols, [1, 0, 2]);
}

/** Options of {@link ClassTokenPosition}. */
export interface ClassTokenPositionArgs extends BaseLayerArgs {
  /**
   * The patch grid [rows, columns] whose position embeddings are learned. Needed when the input
   * grid's size is unknown when the layer is built (a ViT that takes any image size); otherwise
   * taken from the input.
   */
  readonly grid?: readonly [number, number];
  /**
   * Seed of the initial class token and position embeddings (each weight its own seed drawn
   * from `new SeededRandom(seed)`). Default: unseeded (tfjs's own draws).
   */
  readonly seed?: number;
}

/**
 * Flattens a grid of patch embeddings [batch, rows, cols, D] into tokens, prepends a learned class
 * token and adds learned position embeddings: [batch, 1 + rows cols, D]. Weights `cls` [1, 1, D]
 * and `position` [1, 1 + R C, D] for the learned grid R x C, truncated normal with std 0.02 as in
 * the ViT and MoCo v3 code (seeded with `seed`).
 *
 * A grid of another size (multi-crop's local views in DINO) gets the patch position embeddings
 * resized bilinearly to it (half-pixel centres; DINO's `interpolate_pos_encoding` is bicubic), the
 * class token's unchanged. Tokens [batch, T, D] are also accepted when T is the learned count.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { ClassTokenPosition } from 'tfjs-contrastive/layers';
 * const patches = tfl.input({ shape: [null, null, 64] }); // a grid of patch embeddings
 * const tokens = new ClassTokenPosition({ grid: [8, 8] }).apply(patches); // [batch, 1 + R C, 64]
 * ```
 */
export class ClassTokenPosition extends tfl.layers.Layer {
  /** The registered class name. */
  static readonly className = `${CLASS_PREFIX}ClassTokenPosition`;
  /** Seed of the initial weights, if given. */
  readonly seed: number | undefined;
  private learnedGrid: readonly [number, number] | undefined;
  private cls?: tfl.LayerVariable;
  private position?: tfl.LayerVariable;

  /**
   * Creates the layer; weights are made when it is first applied.
   *
   * @param args - the learned grid (optional), the seed (optional) and the usual layer arguments.
   */
  constructor(args: ClassTokenPositionArgs = {}) {
    super({ ...args, name: args.name ?? defaultName('class_token_position') });
    this.seed = checkSeed('ClassTokenPosition', args.seed);
    if (args.grid !== undefined) {
      const grid: unknown = args.grid;
      if (!Array.isArray(grid) || grid.length !== 2) {
        throw new ContrastiveError({
          caller: 'ClassTokenPosition',
          argument: 'args.grid',
          expected: '[rows, columns] of the patch grid',
          received: describeValue(grid),
        });
      }
      checkNumber('ClassTokenPosition', 'args.grid[0]', grid[0], { integer: true, min: 1 });
      checkNumber('ClassTokenPosition', 'args.grid[1]', grid[1], { integer: true, min: 1 });
      this.learnedGrid = [args.grid[0], args.grid[1]];
    }
  }

  /** The patch grid [rows, columns] whose position embeddings are learned, once known. */
  get grid(): readonly [number, number] | undefined {
    return this.learnedGrid;
  }

  /** [rows, cols, D] of a patch grid input, or [T, 1, D] of tokens. */
  private static inputGrid(
    inputShape: tfl.Shape | tfl.Shape[],
  ): [number | null, number | null, number] {
    const shape = singleShape(inputShape);
    if (shape.length === 4) {
      const [, rows = null, cols = null, dim] = shape;
      if (typeof dim !== 'number')
        throw new Error('tfjs-contrastive: ClassTokenPosition needs a known width');
      return [rows, cols, dim];
    }
    const [tokens, dim] = tokenShape(shape);
    return [tokens, 1, dim];
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const [rows, cols, dim] = ClassTokenPosition.inputGrid(inputShape);
    if (this.learnedGrid === undefined) {
      if (rows === null || cols === null) {
        throw new ContrastiveError({
          caller: 'ClassTokenPosition',
          argument: 'args.grid',
          expected: 'the learned patch grid, since the input grid has no known size',
          received: 'undefined',
        });
      }
      this.learnedGrid = [rows, cols];
    }
    const count = this.learnedGrid[0] * this.learnedGrid[1];
    const [clsSeed, positionSeed] = weightSeeds(this.seed, 2);
    this.cls = this.addWeight('cls', [1, 1, dim], 'float32', TRUNC_02(clsSeed));
    this.position = this.addWeight(
      'position',
      [1, count + 1, dim],
      'float32',
      TRUNC_02(positionSeed),
    );
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const [rows, cols, dim] = ClassTokenPosition.inputGrid(inputShape);
    return [null, rows === null || cols === null ? null : rows * cols + 1, dim];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = single(inputs);
      const { cls, position, grid } = this;
      if (cls === undefined || position === undefined || grid === undefined) {
        throw new Error('tfjs-contrastive: ClassTokenPosition not built');
      }
      const [batch = 1, rows = 1] = x.shape;
      const dim = x.shape[x.rank - 1] ?? 1;
      const cols = x.rank === 4 ? (x.shape[2] ?? 1) : 1;
      const learned = grid[0] * grid[1];
      const count = rows * cols;
      let pos: tf.Tensor = position.read();
      // A grid of patches must match the learned one in both sides (a 2x8 grid is not a 4x4 one);
      // tokens only in their count.
      const same = x.rank === 4 ? rows === grid[0] && cols === grid[1] : count === learned;
      if (!same) {
        if (x.rank !== 4) {
          throw new ContrastiveError({
            caller: 'ClassTokenPosition',
            argument: 'inputs',
            expected: `${learned} tokens, or a patch grid [batch, rows, cols, D] of any size`,
            received: `tokens [${x.shape.join(', ')}]`,
          });
        }
        const patches = tf.reshape<tf.Rank.R3>(tf.slice(pos, [0, 1, 0], [1, learned, dim]), [
          grid[0],
          grid[1],
          dim,
        ]);
        const resized = tf.reshape(resizeGrid(patches, rows, cols), [1, count, dim]);
        pos = tf.concat([tf.slice(pos, [0, 0, 0], [1, 1, dim]), resized], 1);
      }
      const tokens = tf.reshape(x, [batch, count, dim]);
      const clsTokens = tf.tile(cls.read(), [batch, 1, 1]);
      return tf.add(tf.concat([clsTokens, tokens], 1), pos);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      ...(this.grid === undefined ? {} : { grid: [...this.grid] }),
      ...(this.seed === undefined ? {} : { seed: this.seed }),
    };
  }
}

/** Options of {@link MultiHeadSelfAttention}. */
export interface MultiHeadSelfAttentionArgs extends BaseLayerArgs {
  /** Attention heads; must divide the token width. */
  readonly heads: number;
  /**
   * Seed of the initial projections (glorot uniform, each weight its own seed drawn from
   * `new SeededRandom(seed)`). Default: unseeded (tfjs's own draws).
   */
  readonly seed?: number;
}

/**
 * Multi-head self-attention over [batch, T, D] tokens: softmax(Q K^T / sqrt(D / heads)) V per
 * head, then an output projection. Weights `qkv` [D, 3D], `qkvBias` [3D], `proj` [D, D],
 * `projBias` [D]. The projections start glorot uniform (seeded with `seed`), the biases at 0.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { MultiHeadSelfAttention } from 'tfjs-contrastive/layers';
 * const tokens = tfl.input({ shape: [65, 64] });
 * const mixed = new MultiHeadSelfAttention({ heads: 4, seed: 1 }).apply(tokens); // [batch, 65, 64]
 * ```
 */
export class MultiHeadSelfAttention extends tfl.layers.Layer {
  /** The registered class name. */
  static readonly className = `${CLASS_PREFIX}MultiHeadSelfAttention`;
  /** Attention heads. */
  readonly heads: number;
  /** Seed of the initial projections, if given. */
  readonly seed: number | undefined;
  private qkv?: tfl.LayerVariable;
  private qkvBias?: tfl.LayerVariable;
  private proj?: tfl.LayerVariable;
  private projBias?: tfl.LayerVariable;

  /**
   * Creates the layer; weights are made when it is first applied.
   *
   * @param args - `heads`, the seed (optional) and the usual layer arguments.
   */
  constructor(args: MultiHeadSelfAttentionArgs) {
    super({ ...args, name: args.name ?? defaultName('multi_head_self_attention') });
    checkNumber('MultiHeadSelfAttention', 'args.heads', args.heads, { integer: true, min: 1 });
    this.heads = args.heads;
    this.seed = checkSeed('MultiHeadSelfAttention', args.seed);
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const [, dim] = tokenShape(inputShape);
    if (dim % this.heads !== 0) {
      throw new Error(`tfjs-contrastive: ${this.heads} heads do not divide the width ${dim}`);
    }
    const glorot = (seed: number | undefined): ReturnType<typeof tfl.initializers.glorotUniform> =>
      tfl.initializers.glorotUniform(seed === undefined ? {} : { seed });
    const [qkvSeed, projSeed] = weightSeeds(this.seed, 2);
    this.qkv = this.addWeight('qkv', [dim, 3 * dim], 'float32', glorot(qkvSeed));
    this.qkvBias = this.addWeight('qkvBias', [3 * dim], 'float32', tfl.initializers.zeros());
    this.proj = this.addWeight('proj', [dim, dim], 'float32', glorot(projSeed));
    this.projBias = this.addWeight('projBias', [dim], 'float32', tfl.initializers.zeros());
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return singleShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = single(inputs);
      const { qkv, qkvBias, proj, projBias } = this;
      if (
        qkv === undefined ||
        qkvBias === undefined ||
        proj === undefined ||
        projBias === undefined
      ) {
        throw new Error('tfjs-contrastive: MultiHeadSelfAttention not built');
      }
      const [b = 1, t = 1, d = 1] = x.shape;
      const h = this.heads;
      const dh = d / h;
      const flat = tf.reshape(x, [b * t, d]);
      const projected = tf.add(tf.matMul(flat, qkv.read() as tf.Tensor2D), qkvBias.read());
      // [b t, 3 d] -> [3, b, h, t, dh]
      const split = tf.transpose(tf.reshape(projected, [b, t, 3, h, dh]), [2, 0, 3, 1, 4]);
      const part = (i: number): tf.Tensor3D =>
        tf.reshape(tf.slice(split, [i, 0, 0, 0, 0], [1, b, h, t, dh]), [b * h, t, dh]);
      const q = tf.mul(part(0), 1 / Math.sqrt(dh));
      const keysT = tf.transpose(part(1), [0, 2, 1]);
      const attention = tf.softmax(tf.matMul(q, keysT));
      const mixed = tf.matMul(attention, part(2)); // [b h, t, dh]
      const merged = tf.reshape(tf.transpose(tf.reshape(mixed, [b, h, t, dh]), [0, 2, 1, 3]), [
        b * t,
        d,
      ]);
      const out = tf.add(tf.matMul(merged, proj.read() as tf.Tensor2D), projBias.read());
      return tf.reshape(out, [b, t, d]);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      heads: this.heads,
      ...(this.seed === undefined ? {} : { seed: this.seed }),
    };
  }
}

/** Options of {@link SelectToken}. */
export interface SelectTokenArgs extends BaseLayerArgs {
  /** The token to keep. Default 0 (the class token). */
  readonly index?: number;
}

/**
 * Keeps one token of [batch, T, D] tokens: [batch, D].
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { SelectToken } from 'tfjs-contrastive/layers';
 * const tokens = tfl.input({ shape: [65, 64] });
 * const cls = new SelectToken({ index: 0 }).apply(tokens); // [batch, 64]
 * ```
 */
export class SelectToken extends tfl.layers.Layer {
  /** The registered class name. */
  static readonly className = `${CLASS_PREFIX}SelectToken`;
  /** The token kept. */
  readonly index: number;

  /**
   * Creates the layer; weights are made when it is first applied.
   *
   * @param args - `index` and the usual layer arguments.
   */
  constructor(args: SelectTokenArgs = {}) {
    super({ ...args, name: args.name ?? defaultName('select_token') });
    this.index = args.index ?? 0;
    checkNumber('SelectToken', 'args.index', this.index, { integer: true, min: 0 });
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shape = singleShape(inputShape);
    return [shape[0] ?? null, shape[2] ?? null];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = single(inputs);
      const [b = 1, , d = 1] = x.shape;
      return tf.reshape(tf.slice(x, [0, this.index, 0], [b, 1, d]), [b, d]);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), index: this.index };
  }
}
