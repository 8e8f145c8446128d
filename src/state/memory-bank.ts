import * as tf from '@tensorflow/tfjs-core';
import {
  ContrastiveError,
  SeededRandom,
  checkNumber,
  checkTensor,
  l2Normalize,
  toIndexTensor,
  type ComponentState,
  type SeededRandomState,
} from '../core/index.js';
import { checkComponentState } from './momentum-queue.js';

/** Options of {@link MemoryBank}. */
export interface MemoryBankOptions {
  /** Update momentum m of `v <- m v + (1 - m) f`. Default `0.5` (InstDisc, CMC). */
  readonly momentum?: number;
  /** Seed of the initialisation and of the noise sampling. Default `0`. */
  readonly seed?: number | string;
}

/** What {@link MemoryBank.fromState} hands its constructor instead of random entries. */
interface Restored {
  readonly values: tf.Tensor2D;
  readonly rng: SeededRandomState;
}

// Set by fromState for the duration of one constructor call (synchronous): a restored bank is
// built from the saved entries directly, with no random [N, D] initialisation first.
let restoring: Restored | undefined;

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
 * <!-- snippet setup="batch-features" -->
 * ```ts
 * import { MemoryBank, nceLoss } from 'tfjs-contrastive';
 *
 * // features: [B, 128] encoder outputs of the batch; indices: the images' rows in the bank
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
    const restored = restoring;
    restoring = undefined;
    checkNumber('MemoryBank', 'size', size, { integer: true, min: 1 });
    checkNumber('MemoryBank', 'dim', dim, { integer: true, min: 1 });
    const momentum = options.momentum ?? 0.5;
    checkNumber('MemoryBank', 'options.momentum', momentum, { min: 0, lessThan: 1 });
    this.size = size;
    this.dim = dim;
    this.momentum = momentum;
    this.rng = new SeededRandom(options.seed ?? 0);
    if (restored !== undefined) {
      this.rng.setState(restored.rng);
      this.bank = tf.keep(tf.clone(restored.values));
    } else {
      const s = 1 / Math.sqrt(dim / 3);
      this.bank = tf.keep(tf.randomUniform([size, dim], -s, s, 'float32', this.rng.tfSeed()));
    }
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
   * <!-- snippet setup="bank" -->
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
   * <!-- snippet setup="bank" -->
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
   * <!-- snippet setup="bank" -->
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
   * The state for a checkpoint: `config` `{ momentum, dim, size, rng }` (rng: the noise
   * sampler's four-integer state) and `tensors` `{ values }`, the [N, D] entries as a new tensor
   * the caller owns and disposes. Synchronous: nothing is read back from the backend.
   *
   * @returns the bank's {@link ComponentState}.
   *
   * @example
   * <!-- snippet setup="bank" -->
   * ```ts
   * import * as tf from '@tensorflow/tfjs-core';
   * import { MemoryBank } from 'tfjs-contrastive';
   * const state = bank.getState();
   * const copy = MemoryBank.fromState(state);
   * tf.dispose(Object.values(state.tensors));
   * ```
   */
  getState(): ComponentState {
    return {
      config: {
        momentum: this.momentum,
        dim: this.dim,
        size: this.size,
        rng: [...this.rng.getState()],
      },
      tensors: { values: tf.clone(this.bank) },
    };
  }

  /**
   * A bank restored from {@link MemoryBank.getState}: the same entries and the same future noise
   * draws. The entries are copied (the caller still owns and disposes `state`); no random bank is
   * built first.
   *
   * @param state - `config` `{ momentum, dim, size, rng }` (momentum in [0, 1), positive integer
   *   sizes, rng four unsigned 32-bit integers not all zero) and `tensors.values`, a float32
   *   [size, dim] tensor.
   * @returns a new MemoryBank.
   * @throws {@link ContrastiveError} when the state is malformed (a field missing or out of range,
   *   entries of another shape or dtype).
   *
   * @example
   * ```ts
   * import { MemoryBank } from 'tfjs-contrastive';
   * const saved = new MemoryBank(1000, 128, { seed: 1 }).getState(); // e.g. decoded from a checkpoint
   * const bank = MemoryBank.fromState(saved);
   * ```
   */
  static fromState(state: ComponentState): MemoryBank {
    const caller = 'MemoryBank.fromState';
    const { config, tensors } = checkComponentState(caller, state);
    const { momentum, dim, size, rng } = config;
    checkNumber(caller, 'state.config.momentum', momentum, { min: 0, lessThan: 1 });
    checkNumber(caller, 'state.config.dim', dim, { integer: true, min: 1 });
    checkNumber(caller, 'state.config.size', size, { integer: true, min: 1 });
    try {
      new SeededRandom(0).setState(rng as SeededRandomState);
    } catch (e) {
      if (!(e instanceof ContrastiveError)) throw e;
      throw new ContrastiveError({
        caller,
        argument: 'state.config.rng',
        expected: e.expected,
        received: e.received,
      });
    }
    const values = tensors.values;
    checkTensor(caller, 'state.tensors.values', values, {
      shape: [size, dim],
      dtype: 'float32',
      layout: '[size, dim] (the entries)',
    });
    restoring = { values: values as tf.Tensor2D, rng: rng as SeededRandomState };
    try {
      return new MemoryBank(size, dim, { momentum });
    } finally {
      restoring = undefined;
    }
  }

  /**
   * Frees the bank's tensor.
   *
   * @example
   * <!-- snippet setup="bank" -->
   * ```ts
   * bank.dispose();
   * ```
   */
  dispose(): void {
    this.bank.dispose();
  }
}
