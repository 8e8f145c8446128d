import * as tf from '@tensorflow/tfjs-core';
import {
  ContrastiveError,
  SeededRandom,
  checkNumber,
  checkTensor,
  describeValue,
  l2Normalize,
  toIndexTensor,
  type SeededRandomState,
} from '../core/index.js';

/** Options of {@link MemoryBank}. */
export interface MemoryBankOptions {
  /** Update momentum m of `v <- m v + (1 - m) f`. Default `0.5` (InstDisc, CMC). */
  readonly momentum?: number;
  /** Seed of the initialisation and of the noise sampling. Default `0`. */
  readonly seed?: number | string;
}

/** The saved state of a {@link MemoryBank}, plain JSON. */
export interface MemoryBankState {
  /** Update momentum. */
  readonly momentum: number;
  /** Feature dimension D. */
  readonly dim: number;
  /** The N x D entries, row-major. */
  readonly values: number[];
  /** The noise sampler's random state. */
  readonly rng: SeededRandomState;
}

/**
 * The memory bank of Instance Discrimination (Wu et al. CVPR 2018) and CMC (Tian et al. 2020):
 * one D-dimensional entry per training image, read as the positives and the noise samples of
 * {@link nceLoss}, and updated with each batch's features by a moving average.
 *
 * Entries start uniform in [-s, s] with s = 1 / sqrt(D / 3), as in lemniscate.pytorch
 * (NCEAverage). `update(indices, features)` sets `v <- normalise(m v + (1 - m) f)` for the batch's
 * rows (m = 0.5). Read before you update, so that a batch never scores against its own fresh
 * features. The bank lives on the backend as one [N, D] tensor; an update writes the B rows with
 * a scatter, which on tfjs copies the [N, D] tensor once per step (no gradient is ever taken).
 * With duplicate indices in one update, which row wins is unspecified.
 *
 * @example
 * ```ts
 * import { MemoryBank, nceLoss } from 'tfjs-contrastive';
 *
 * const bank = new MemoryBank(60000, 128, { momentum: 0.5, seed: 1 });
 * const noise = bank.sampleNoise(4096);          // K uniform indices, P_n = 1/N
 * const { loss, z } = nceLoss(features, indices, bank.value, noise);
 * bank.update(indices, features);                // after the loss
 * ```
 */
export class MemoryBank {
  /** Number of entries N. */
  readonly size: number;
  /** Entry dimension D. */
  readonly dim: number;
  /** Update momentum m. */
  readonly momentum: number;
  private bank: tf.Tensor2D;
  private readonly rng: SeededRandom;

  /**
   * @param size - the number of entries N (training images), a positive integer.
   * @param dim - the entry dimension D. Default `128`.
   * @param options - `momentum` (0.5), `seed` (0).
   * @throws {@link ContrastiveError} when a size is not a positive integer or the momentum is not in [0, 1).
   */
  constructor(size: number, dim = 128, options: MemoryBankOptions = {}) {
    checkNumber('MemoryBank', 'size', size, { integer: true, min: 1 });
    checkNumber('MemoryBank', 'dim', dim, { integer: true, min: 1 });
    const momentum = options.momentum ?? 0.5;
    checkNumber('MemoryBank', 'options.momentum', momentum, { min: 0, lessThan: 1 });
    this.size = size;
    this.dim = dim;
    this.momentum = momentum;
    this.rng = new SeededRandom(options.seed ?? 0);
    const s = 1 / Math.sqrt(dim / 3);
    this.bank = tf.keep(tf.randomUniform([size, dim], -s, s, 'float32', this.rng.tfSeed()));
  }

  /** The whole bank, [N, D]. Owned by the bank: do not dispose it; it changes on update. */
  get value(): tf.Tensor2D {
    return this.bank;
  }

  /**
   * The entries at `indices` (a new tensor; dispose it).
   *
   * @param indices - [B] int32 indices (tensor, Int32Array or array).
   * @returns [B, D] entries.
   * @throws {@link ContrastiveError} on an index out of range (arrays are checked) or a wrong type.
   *
   * @example
   * ```ts
   * const positives = bank.read(indices);
   * ```
   */
  read(indices: tf.Tensor1D | Int32Array | readonly number[]): tf.Tensor2D {
    return tf.tidy(() =>
      tf.gather(this.bank, toIndexTensor('MemoryBank.read', 'indices', indices, this.size)),
    );
  }

  /**
   * `v <- normalise(m v + (1 - m) f)` for the rows at `indices` (no gradient).
   *
   * @param indices - [B] int32 indices of the batch's images.
   * @param features - [B, D] float32 features of the batch (normalised or not: the mix is
   *   renormalised).
   * @throws {@link ContrastiveError} on shapes that do not match or indices out of range.
   *
   * @example
   * ```ts
   * bank.update(indices, features);
   * ```
   */
  update(indices: tf.Tensor1D | Int32Array | readonly number[], features: tf.Tensor2D): void {
    const caller = 'MemoryBank.update';
    checkTensor(caller, 'features', features, {
      shape: [null, this.dim],
      dtype: 'float32',
      layout: `[B, ${this.dim}]`,
    });
    const next = tf.tidy(() => {
      const idx = toIndexTensor(caller, 'indices', indices, this.size);
      checkTensor(caller, 'indices', idx, {
        shape: [features.shape[0]],
        layout: '[B] (one per feature row)',
      });
      const mixed = tf.add(
        tf.mul(tf.gather(this.bank, idx), this.momentum),
        tf.mul(features, 1 - this.momentum),
      );
      return tf.tensorScatterUpdate(
        this.bank,
        tf.reshape(idx, [-1, 1]),
        l2Normalize(mixed as tf.Tensor2D),
      );
    });
    this.bank.dispose();
    this.bank = tf.keep(next);
  }

  /**
   * Noise indices drawn uniformly with replacement (P_n = 1 / N) from the bank's seeded source.
   *
   * @param count - K, the number of noise samples (4096 in InstDisc and CMC).
   * @param batch - when given, K indices per sample ([batch, K], as in the paper); otherwise one
   *   set shared by the batch ([K], much cheaper).
   * @returns an int32 tensor [K] or [batch, K]; dispose it.
   * @throws {@link ContrastiveError} when a count is not a positive integer.
   *
   * @example
   * ```ts
   * const shared = bank.sampleNoise(4096);
   * const perSample = bank.sampleNoise(4096, 64);
   * ```
   */
  sampleNoise(count: number, batch?: number): tf.Tensor {
    checkNumber('MemoryBank.sampleNoise', 'count', count, { integer: true, min: 1 });
    if (batch !== undefined)
      checkNumber('MemoryBank.sampleNoise', 'batch', batch, { integer: true, min: 1 });
    const draws = this.rng.integers(count * (batch ?? 1), this.size);
    return batch === undefined
      ? tf.tensor1d(draws, 'int32')
      : tf.tensor2d(draws, [batch, count], 'int32');
  }

  /**
   * The state for a checkpoint: entries and the noise sampler's state (reads the bank back).
   *
   * @returns plain JSON.
   *
   * @example
   * ```ts
   * const json = JSON.stringify(await bank.getState());
   * ```
   */
  async getState(): Promise<MemoryBankState> {
    return {
      momentum: this.momentum,
      dim: this.dim,
      values: Array.from(await this.bank.data()),
      rng: this.rng.getState(),
    };
  }

  /**
   * A bank restored from {@link MemoryBank.getState}: same entries, same future noise.
   *
   * @param state - the saved state.
   * @returns a new MemoryBank.
   * @throws {@link ContrastiveError} when the state is malformed.
   *
   * @example
   * ```ts
   * const bank = MemoryBank.fromState(JSON.parse(json));
   * ```
   */
  static fromState(state: MemoryBankState): MemoryBank {
    const values: unknown = state.values;
    checkNumber('MemoryBank.fromState', 'state.dim', state.dim, { integer: true, min: 1 });
    if (!Array.isArray(values) || values.length === 0 || values.length % state.dim !== 0) {
      throw new ContrastiveError({
        caller: 'MemoryBank.fromState',
        argument: 'state.values',
        expected: `a non-empty array whose length is a multiple of dim (${state.dim})`,
        received: describeValue(values),
      });
    }
    const bank = new MemoryBank(values.length / state.dim, state.dim, { momentum: state.momentum });
    bank.bank.dispose();
    bank.bank = tf.keep(tf.tensor2d(values as number[], [values.length / state.dim, state.dim]));
    bank.rng.setState(state.rng);
    return bank;
  }

  /**
   * Frees the bank's tensor.
   *
   * @example
   * ```ts
   * bank.dispose();
   * ```
   */
  dispose(): void {
    this.bank.dispose();
  }
}
