import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { checkNumber } from '../core/checks.js';
import { type BaseLayerArgs, CLASS_PREFIX, defaultName, knownWidth, single } from './base.js';
import { SeededRandom } from '../core/random.js';
import { weightSeeds } from './seeds.js';

/** Options of {@link Gru}. */
export interface GruArgs extends BaseLayerArgs {
  /** Width D of the hidden state (and of every output step). */
  readonly units: number;
  /**
   * Seed of the initial weights (glorot uniform input kernel, orthogonal recurrent kernel, as
   * Keras's GRU; zero biases). Default: unseeded.
   */
  readonly seed?: number;
}

/**
 * A gated recurrent unit (Cho et al. 2014) over the time axis of [N, T, F] inputs, returning
 * every step's hidden state [N, T, D] (Keras's `returnSequences: true`, initial state 0), written
 * from functional tfjs-core ops: tfjs-layers 4.22's own `GRU` calls chained ops (`x.add(y)`),
 * which tfjs-core alone does not register in Node, and a deep import that would register them
 * loads a second tfjs-core. The reset gate applies before the recurrent product (Cho's form,
 * Keras's `reset_after=False`):
 *
 * z = sigmoid(x W_z + h U_z + b_z), r = sigmoid(x W_r + h U_r + b_r),
 * h~ = tanh(x W_h + (r * h) U_h + b_h), h' = (1 - z) * h + z * h~.
 *
 * Weights: `kernel` [F, 3D], `recurrent_kernel` [D, 3D], `bias` [3D] (gates in the order z, r,
 * h). The output at step t depends only on inputs at steps <= t (the autoregressive context of
 * CPC). The loop is unrolled over T, so T should be small (a grid's rows, a few dozen windows).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { Gru } from 'tfjs-contrastive/layers';
 *
 * // context vectors [N, T, 32] of latent sequences [N, T, 64]
 * const context = tfl.sequential({ layers: [new Gru({ units: 32, inputShape: [null, 64], seed: 1 })] });
 * const c = context.apply(tf.randomNormal([4, 7, 64])) as tf.Tensor3D; // [4, 7, 32]
 * ```
 */
export class Gru extends tfl.layers.Layer {
  /** The registered class name. */
  static readonly className = `${CLASS_PREFIX}Gru`;
  /** Width D of the hidden state. */
  readonly units: number;
  /** Seed of the initial weights, if given. */
  readonly seed: number | undefined;
  private kernel?: tfl.LayerVariable;
  private recurrentKernel?: tfl.LayerVariable;
  private bias?: tfl.LayerVariable;

  /**
   * Creates the layer; weights are made when it is first applied.
   *
   * @param args - `units`, `seed` and the usual layer arguments.
   */
  constructor(args: GruArgs) {
    super({ ...args, name: args.name ?? defaultName('gru') });
    const caller = 'Gru';
    this.units = args.units;
    checkNumber(caller, 'args.units', this.units, { integer: true, min: 1 });
    if (args.seed !== undefined) checkNumber(caller, 'args.seed', args.seed, { integer: true });
    this.seed = args.seed;
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const f = knownWidth('Gru', inputShape);
    const d = this.units;
    const [s1, s2] = weightSeeds(this.seed, 2);
    const seeded = <T extends object>(o: T, seed: number | undefined): T =>
      seed === undefined ? o : { ...o, seed };
    this.kernel = this.addWeight(
      'kernel',
      [f, 3 * d],
      'float32',
      tfl.initializers.glorotUniform(seeded({}, s1)),
    );
    this.recurrentKernel = this.addWeight(
      'recurrent_kernel',
      [d, 3 * d],
      'float32',
      tfl.initializers.zeros(),
    );
    // tfjs-layers' orthogonal initialiser calls chained ops (it fails with tfjs-core alone).
    const orthogonal = orthonormalRows(
      d,
      3 * d,
      new SeededRandom(s2 ?? Math.floor(Math.random() * 2 ** 31)),
    );
    const initial = tf.tensor2d(orthogonal, [d, 3 * d]);
    this.recurrentKernel.write(initial);
    initial.dispose();
    this.bias = this.addWeight('bias', [3 * d], 'float32', tfl.initializers.zeros());
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shape = Array.isArray(inputShape[0]) ? inputShape[0] : (inputShape as tfl.Shape);
    return [shape[0] ?? null, shape[1] ?? null, this.units];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const { kernel, recurrentKernel, bias } = this;
      if (kernel === undefined || recurrentKernel === undefined || bias === undefined) {
        throw new Error('tfjs-contrastive: Gru not built');
      }
      const x = single(inputs) as tf.Tensor3D;
      const [n, t, f] = x.shape;
      const d = this.units;
      const u = recurrentKernel.read() as tf.Tensor2D;
      const uzr = tf.slice(u, [0, 0], [d, 2 * d]);
      const uh = tf.slice(u, [0, 2 * d], [d, d]);
      // The input projections of every step in one product.
      const projected = tf.reshape(
        tf.add(tf.matMul(tf.reshape(x, [n * t, f]), kernel.read() as tf.Tensor2D), bias.read()),
        [n, t, 3 * d],
      );
      let h: tf.Tensor2D = tf.zeros([n, d]);
      const outputs: tf.Tensor2D[] = [];
      for (let step = 0; step < t; step++) {
        const xt = tf.reshape(tf.slice(projected, [0, step, 0], [n, 1, 3 * d]), [n, 3 * d]);
        const gates = tf.sigmoid(
          tf.add(tf.slice(xt, [0, 0], [n, 2 * d]), tf.matMul(h, uzr)),
        ) as tf.Tensor2D;
        const z = tf.slice(gates, [0, 0], [n, d]);
        const r = tf.slice(gates, [0, d], [n, d]);
        const candidate = tf.tanh(
          tf.add(tf.slice(xt, [0, 2 * d], [n, d]), tf.matMul(tf.mul(r, h), uh)),
        );
        h = tf.add<tf.Tensor2D>(h, tf.mul(z, tf.sub(candidate, h)));
        outputs.push(h);
      }
      return tf.stack(outputs, 1);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      units: this.units,
      ...(this.seed === undefined ? {} : { seed: this.seed }),
    };
  }
}

/**
 * A [rows, cols] matrix (rows <= cols) with orthonormal rows: Gram-Schmidt (twice, for float
 * stability) on standard normal rows, in float64 on the host, as Keras's orthogonal initialiser
 * (the Q of a normal matrix's QR decomposition, up to the signs of its rows).
 */
function orthonormalRows(rows: number, cols: number, rng: SeededRandom): Float32Array {
  const m = Array.from({ length: rows }, () =>
    Float64Array.from({ length: cols }, () => rng.normal()),
  );
  for (let i = 0; i < rows; i++) {
    const v = m[i] as Float64Array;
    for (let pass = 0; pass < 2; pass++) {
      for (let j = 0; j < i; j++) {
        const u = m[j] as Float64Array;
        let dot = 0;
        for (let k = 0; k < cols; k++) dot += (v[k] as number) * (u[k] as number);
        for (let k = 0; k < cols; k++) v[k] = (v[k] as number) - dot * (u[k] as number);
      }
    }
    let norm = 0;
    for (let k = 0; k < cols; k++) norm += (v[k] as number) ** 2;
    norm = Math.sqrt(norm);
    for (let k = 0; k < cols; k++) v[k] = (v[k] as number) / norm;
  }
  const out = new Float32Array(rows * cols);
  m.forEach((row, i) => out.set(row, i * cols));
  return out;
}
