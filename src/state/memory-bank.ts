import * as tf from '@tensorflow/tfjs-core';
import {
  ContrastiveError,
  SeededRandom,
  checkNumber,
  checkOneOf,
  checkTensor,
  l2Normalize,
  toIndexTensor,
  type ComponentState,
  type SeededRandomState,
} from '../core/index.js';
import { indexArray } from '../core/checks.js';
import { checkComponentState } from './momentum-queue.js';

/** Options of {@link MemoryBank}. */
export interface MemoryBankOptions {
  /** Update momentum m of `v <- m v + (1 - m) f`. Default `0.5` (InstDisc, CMC). */
  readonly momentum?: number;
  /** Seed of the initialisation and of the noise sampling. Default `0`. */
  readonly seed?: number | string;
  /**
   * Where the entries live. `'host'`: a Float32Array in JavaScript memory, so that `read` and
   * `update` touch only the batch's rows (O(B x D) a step, whatever N). `'backend'`: one [N, D]
   * tensor on the backend, updated by a scatter that copies all of it (O(N x D) a step), for
   * backends where reading features back to JavaScript stalls the GPU pipeline. `'auto'`
   * (default): `'host'` on the cpu and wasm backends (whose tensors already live in JavaScript
   * memory), `'backend'` on webgl and webgpu.
   */
  readonly storage?: MemoryBankStorage;
}

/** Where a {@link MemoryBank}'s entries live: see {@link MemoryBankOptions.storage}. */
export type MemoryBankStorage = 'auto' | 'host' | 'backend';

/** What {@link MemoryBank.fromState} hands its constructor instead of random entries. */
interface Restored {
  readonly values: tf.Tensor2D;
  readonly storage: MemoryBankStorage | undefined;
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
 * features. On the cpu and wasm backends the entries live in JavaScript memory (`storage:
 * 'host'`): `read` and `update` touch only the batch's rows, so a step costs O(B x D) whatever N
 * (at N = 60,000, D = 128, B = 256 an update took 0.3 ms against 11-18 ms for a scatter into
 * the whole tensor on cpu and wasm here; `npx tsx bench/bank.ts`). On webgl and webgpu they live on the backend as one [N, D] tensor,
 * which a scatter copies once per update. No gradient is ever taken. Pass the bank itself to
 * {@link nceLoss} (it reads only the rows it needs); `value`, the whole [N, D] tensor, is
 * uploaded from JavaScript memory in host storage each time it is asked for after an update.
 * With duplicate indices in one update, the last row wins in host storage and which one wins is
 * unspecified in backend storage; both mix from the entry as it was before the update.
 *
 * @example
 * <!-- snippet setup="batch-features" -->
 * ```ts
 * import { MemoryBank, nceLoss } from 'tfjs-contrastive';
 *
 * // features: [B, 128] encoder outputs of the batch; indices: the images' rows in the bank
 * const bank = new MemoryBank(60000, 128, { momentum: 0.5, seed: 1 });
 * const noise = bank.sampleNoise(4096);          // K uniform indices, P_n = 1/N
 * const { loss, z } = nceLoss(features, indices, bank, noise); // reads only the rows it needs
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
  /** Where the entries live (`'host'` or `'backend'`, resolved from the option at construction). */
  readonly storage: 'host' | 'backend';
  // Backend storage: the entries. Host storage: the entries as a tensor, built on demand by
  // `value` and dropped when they change.
  private bank: tf.Tensor2D | undefined;
  // Host storage: the entries, row-major [N * D].
  private readonly host: Float32Array | undefined;
  private readonly rng: SeededRandom;

  /**
   * @param size - the number of entries N (training images), a positive integer.
   * @param dim - the entry dimension D. Default `128`.
   * @param options - `momentum` (0.5), `seed` (0), `storage` ('auto').
   * @throws {@link ContrastiveError} when a size is not a positive integer, the momentum is not in
   *   [0, 1) or the storage is unknown.
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
    const storage = (restored === undefined ? options.storage : restored.storage) ?? 'auto';
    checkOneOf('MemoryBank', 'options.storage', storage, ['auto', 'host', 'backend']);
    this.storage =
      storage === 'auto' ? (HOST_BACKENDS.has(tf.getBackend()) ? 'host' : 'backend') : storage;
    this.rng = new SeededRandom(options.seed ?? 0);
    let initial: tf.Tensor2D;
    if (restored !== undefined) {
      this.rng.setState(restored.rng);
      initial = tf.clone(restored.values);
    } else {
      const s = 1 / Math.sqrt(dim / 3);
      initial = tf.randomUniform([size, dim], -s, s, 'float32', this.rng.tfSeed());
    }
    if (this.storage === 'host') {
      // The same draws as backend storage: one read of the initial entries.
      this.host = (initial.dataSync() as Float32Array).slice();
      initial.dispose();
    } else {
      this.bank = tf.keep(initial);
    }
  }

  /**
   * The whole bank, [N, D]. Owned by the bank: do not dispose it; it is replaced on update. In
   * host storage it is uploaded on the first call after each update (O(N x D)): to score a batch,
   * pass the bank itself to {@link nceLoss} or use `read`.
   */
  get value(): tf.Tensor2D {
    if (this.bank === undefined) {
      this.bank = tf.keep(tf.tensor2d(this.hostEntries(), [this.size, this.dim], 'float32'));
    }
    return this.bank;
  }

  private hostEntries(): Float32Array {
    return this.host as Float32Array;
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
    const caller = 'MemoryBank.read';
    if (this.storage === 'host') {
      const idx = hostIndices(caller, 'indices', indices, this.size);
      const d = this.dim;
      const entries = this.hostEntries();
      const rows = new Float32Array(idx.length * d);
      for (let r = 0; r < idx.length; r++) {
        const at = (idx[r] as number) * d;
        rows.set(entries.subarray(at, at + d), r * d);
      }
      return tf.tensor2d(rows, [idx.length, d], 'float32');
    }
    return tf.tidy(() =>
      tf.gather(this.value, toIndexTensor(caller, 'indices', indices, this.size)),
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
    const b = features.shape[0];
    if (this.storage === 'host') {
      const idx = hostIndices(caller, 'indices', indices, this.size);
      if (idx.length !== b) {
        throw new ContrastiveError({
          caller,
          argument: 'indices',
          expected: `${b} indices (one per feature row)`,
          received: `${idx.length}`,
        });
      }
      this.hostUpdate(idx, features.dataSync() as Float32Array);
      return;
    }
    const next = tf.tidy(() => {
      const idx = toIndexTensor(caller, 'indices', indices, this.size);
      checkTensor(caller, 'indices', idx, {
        shape: [b],
        layout: '[B] (one per feature row)',
      });
      const current = this.value;
      const mixed = tf.add(
        tf.mul(tf.gather(current, idx), this.momentum),
        tf.mul(features, 1 - this.momentum),
      );
      return tf.tensorScatterUpdate(
        current,
        tf.reshape(idx, [-1, 1]),
        l2Normalize(mixed as tf.Tensor2D),
      );
    });
    this.value.dispose();
    this.bank = tf.keep(next);
  }

  /** Host storage: `v <- normalise(m v + (1 - m) f)` row by row, mixing from the old entries. */
  private hostUpdate(idx: Int32Array, f: Float32Array): void {
    const d = this.dim;
    const m = this.momentum;
    const entries = this.hostEntries();
    const mixed = new Float32Array(idx.length * d);
    for (let r = 0; r < idx.length; r++) {
      const at = (idx[r] as number) * d;
      let sumSq = 0;
      for (let c = 0; c < d; c++) {
        const v = Math.fround(
          Math.fround((entries[at + c] as number) * m) +
            Math.fround((f[r * d + c] as number) * (1 - m)),
        );
        mixed[r * d + c] = v;
        sumSq += v * v;
      }
      // l2Normalize's floor: the norm is never taken below sqrt(1e-24) (a zero mix stays zero).
      const scale = 1 / Math.sqrt(Math.max(sumSq, 1e-24));
      for (let c = 0; c < d; c++) mixed[r * d + c] = (mixed[r * d + c] as number) * scale;
    }
    for (let r = 0; r < idx.length; r++) {
      entries.set(mixed.subarray(r * d, (r + 1) * d), (idx[r] as number) * d);
    }
    if (this.bank !== undefined) {
      this.bank.dispose();
      this.bank = undefined;
    }
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
   * the caller owns and disposes. Synchronous: nothing is read back from the backend. The
   * storage is not part of the state: a bank saved on one backend restores on any.
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
      tensors: {
        values:
          this.storage === 'host'
            ? tf.tensor2d(this.hostEntries().slice(), [this.size, this.dim], 'float32')
            : tf.clone(this.value),
      },
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
   * @param options - `storage` ('auto'), as in the constructor.
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
  static fromState(
    state: ComponentState,
    options: Pick<MemoryBankOptions, 'storage'> = {},
  ): MemoryBank {
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
    restoring = {
      values: values as tf.Tensor2D,
      rng: rng as SeededRandomState,
      storage: options.storage,
    };
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
    this.bank?.dispose();
    this.bank = undefined;
  }
}

/** The backends whose tensors live in JavaScript memory, where host storage is the default. */
const HOST_BACKENDS = new Set(['cpu', 'wasm']);

/**
 * Indices as a checked Int32Array: a tensor is read back (its values are few, and on the host
 * backends already in JavaScript memory), an array or Int32Array is copied; every index must be
 * an integer in [0, n).
 */
function hostIndices(caller: string, argument: string, value: unknown, n: number): Int32Array {
  if (!(value instanceof tf.Tensor)) return indexArray(caller, argument, value, n);
  checkTensor(caller, argument, value, { rank: 1, dtype: 'int32', layout: '[B] indices' });
  const idx = value.dataSync() as Int32Array;
  const bad = idx.findIndex((v) => v < 0 || v >= n);
  if (bad >= 0) {
    throw new ContrastiveError({
      caller,
      argument: `${argument}[${bad}]`,
      expected: `an integer index in [0, ${n})`,
      received: String(idx[bad]),
    });
  }
  return idx;
}
