/**
 * The pieces of a vision transformer that tfjs-layers lacks (it exports no multi-head attention):
 * a class token with learned position embeddings, multi-head self-attention, and the selection
 * of one token.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { checkNumber } from '../core/checks.js';
import { type BaseLayerArgs, CLASS_PREFIX, defaultName, singleShape, single } from './base.js';

function tokenShape(inputShape: tfl.Shape | tfl.Shape[]): [number, number] {
  const shape = singleShape(inputShape);
  const [, tokens, dim] = shape;
  if (shape.length !== 3 || typeof tokens !== 'number' || typeof dim !== 'number') {
    throw new Error(`tfjs-contrastive: expected tokens [batch, T, D], got [${shape.join(', ')}]`);
  }
  return [tokens, dim];
}

const TRUNC_02 = (): ReturnType<typeof tfl.initializers.truncatedNormal> =>
  tfl.initializers.truncatedNormal({ stddev: 0.02 });

/**
 * Prepends a learned class token to [batch, T, D] tokens and adds learned position embeddings:
 * [batch, T + 1, D]. Weights `cls` [1, 1, D] and `position` [1, T + 1, D], truncated normal with
 * std 0.02 as in the ViT and MoCo v3 code.
 */
export class ClassTokenPosition extends tfl.layers.Layer {
  /** The registered class name. */
  static readonly className = `${CLASS_PREFIX}ClassTokenPosition`;
  private cls?: tfl.LayerVariable;
  private position?: tfl.LayerVariable;

  /**
   * Creates the layer; weights are made when it is first applied.
   *
   * @param args - the usual layer arguments (name, ...).
   */
  constructor(args: BaseLayerArgs = {}) {
    super({ ...args, name: args.name ?? defaultName('class_token_position') });
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const [tokens, dim] = tokenShape(inputShape);
    this.cls = this.addWeight('cls', [1, 1, dim], 'float32', TRUNC_02());
    this.position = this.addWeight('position', [1, tokens + 1, dim], 'float32', TRUNC_02());
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const [tokens, dim] = tokenShape(inputShape);
    return [null, tokens + 1, dim];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = single(inputs);
      if (this.cls === undefined || this.position === undefined) {
        throw new Error('tfjs-contrastive: ClassTokenPosition not built');
      }
      const batch = x.shape[0];
      const cls = tf.tile(this.cls.read(), [batch, 1, 1]);
      return tf.add(tf.concat([cls, x], 1), this.position.read());
    });
  }
}

/** Options of {@link MultiHeadSelfAttention}. */
export interface MultiHeadSelfAttentionArgs extends BaseLayerArgs {
  /** Attention heads; must divide the token width. */
  readonly heads: number;
}

/**
 * Multi-head self-attention over [batch, T, D] tokens: softmax(Q K^T / sqrt(D / heads)) V per
 * head, then an output projection. Weights `qkv` [D, 3D], `qkvBias` [3D], `proj` [D, D],
 * `projBias` [D].
 */
export class MultiHeadSelfAttention extends tfl.layers.Layer {
  /** The registered class name. */
  static readonly className = `${CLASS_PREFIX}MultiHeadSelfAttention`;
  /** Attention heads. */
  readonly heads: number;
  private qkv?: tfl.LayerVariable;
  private qkvBias?: tfl.LayerVariable;
  private proj?: tfl.LayerVariable;
  private projBias?: tfl.LayerVariable;

  /**
   * Creates the layer; weights are made when it is first applied.
   *
   * @param args - `heads` and the usual layer arguments.
   */
  constructor(args: MultiHeadSelfAttentionArgs) {
    super({ ...args, name: args.name ?? defaultName('multi_head_self_attention') });
    checkNumber('MultiHeadSelfAttention', 'args.heads', args.heads, { integer: true, min: 1 });
    this.heads = args.heads;
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const [, dim] = tokenShape(inputShape);
    if (dim % this.heads !== 0) {
      throw new Error(`tfjs-contrastive: ${this.heads} heads do not divide the width ${dim}`);
    }
    const glorot = tfl.initializers.glorotUniform({});
    this.qkv = this.addWeight('qkv', [dim, 3 * dim], 'float32', glorot);
    this.qkvBias = this.addWeight('qkvBias', [3 * dim], 'float32', tfl.initializers.zeros());
    this.proj = this.addWeight('proj', [dim, dim], 'float32', glorot);
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
    return { ...super.getConfig(), heads: this.heads };
  }
}

/** Options of {@link SelectToken}. */
export interface SelectTokenArgs extends BaseLayerArgs {
  /** The token to keep. Default 0 (the class token). */
  readonly index?: number;
}

/** Keeps one token of [batch, T, D] tokens: [batch, D]. */
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
