import * as tf from '@tensorflow/tfjs-core';
import {
  ContrastiveError,
  SeededRandom,
  checkNumber,
  checkTensor,
  describeValue,
  l2Normalize,
} from '../core/index.js';

/** Options of {@link MomentumQueue}. */
export interface MomentumQueueOptions {
  /** Seed of the random initial keys. Default `0`. */
  readonly seed?: number | string;
  /**
   * Rows per stored chunk of the initial keys. Default `256`. Eviction slices at most one chunk,
   * so an enqueue costs O(chunk x D), never a copy of the whole queue.
   */
  readonly chunkSize?: number;
  /**
   * The number of samples in the data set, when known: a queue longer than it holds a sample's
   * own older key among its negatives (moco issue #146), and the queue warns once.
   */
  readonly datasetSize?: number;
  /** Where the warning goes. Default `console.warn`. */
  readonly onWarning?: (message: string) => void;
}

/** The saved state of a {@link MomentumQueue}, plain JSON. */
export interface MomentumQueueState {
  /** Queue length K. */
  readonly size: number;
  /** Key dimension D. */
  readonly dim: number;
  /** The K x D keys, row-major, oldest first. */
  readonly keys: number[];
}

/**
 * MoCo's dictionary (He et al. CVPR 2020): a FIFO queue of the K most recent keys of dimension D,
 * the negatives of {@link infoNce}. Also SwAV's feature queue.
 *
 * The keys start as random unit vectors, as in facebookresearch/moco. `read()` returns the keys
 * before the current batch is added, as a list of [k_i, D] chunks that `infoNce({ negatives })`
 * takes as is; `enqueue(keys)` appends the batch's keys and drops the oldest. The queue is kept
 * as chunks precisely so that an enqueue costs O(B x D): tfjs tensors are immutable, and one
 * [K, D] tensor would be copied whole at every step. K need not be a multiple of the batch size
 * (the original asserts K % B == 0, which breaks on a short last batch): the oldest chunk is cut
 * where needed. A batch larger than K keeps its newest K keys.
 *
 * @example
 * ```ts
 * import { MomentumQueue, infoNce, stopGradient } from 'tfjs-contrastive';
 *
 * const queue = new MomentumQueue(65536, 128, { datasetSize: 50000 }); // warns: K > N
 * const loss = infoNce(q, stopGradient(k), { negatives: queue.read(), temperature: 0.2 });
 * queue.enqueue(k); // after the loss
 * ```
 */
export class MomentumQueue {
  /** Queue length K. */
  readonly size: number;
  /** Key dimension D. */
  readonly dim: number;
  private chunks: tf.Tensor2D[] = [];

  /**
   * @param size - the queue length K (65536 in MoCo).
   * @param dim - the key dimension D (128 in MoCo v1/v2).
   * @param options - `seed`, `chunkSize`, `datasetSize`, `onWarning`.
   * @throws {@link ContrastiveError} when a size is not a positive integer.
   */
  constructor(size: number, dim: number, options: MomentumQueueOptions = {}) {
    const caller = 'MomentumQueue';
    checkNumber(caller, 'size', size, { integer: true, min: 1 });
    checkNumber(caller, 'dim', dim, { integer: true, min: 1 });
    const chunkSize = options.chunkSize ?? 256;
    checkNumber(caller, 'options.chunkSize', chunkSize, { integer: true, min: 1 });
    if (options.datasetSize !== undefined) {
      checkNumber(caller, 'options.datasetSize', options.datasetSize, { integer: true, min: 1 });
      if (size > options.datasetSize) {
        (options.onWarning ?? console.warn)(
          `MomentumQueue: the queue (${size} keys) is longer than the data set (${options.datasetSize} samples): ` +
            "a sample's own older key will be among its negatives (moco issue #146).",
        );
      }
    }
    this.size = size;
    this.dim = dim;
    const rng = new SeededRandom(options.seed ?? 0);
    for (let start = 0; start < size; start += chunkSize) {
      const rows = Math.min(chunkSize, size - start);
      this.chunks.push(
        tf.keep(
          tf.tidy(() =>
            l2Normalize(tf.randomNormal<tf.Rank.R2>([rows, dim], 0, 1, 'float32', rng.tfSeed())),
          ),
        ),
      );
    }
  }

  /**
   * The K keys before the current batch, oldest first, as [k_i, D] chunks. Owned by the queue:
   * do not dispose them, and do not keep them past the next `enqueue`.
   *
   * @returns the chunks, for `infoNce(q, k, { negatives })`.
   *
   * @example
   * ```ts
   * const loss = infoNce(q, k, { negatives: queue.read() });
   * ```
   */
  read(): readonly tf.Tensor2D[] {
    return this.chunks;
  }

  /**
   * All K keys as one [K, D] tensor (a copy: O(K x D); dispose it).
   *
   * @returns the keys, oldest first.
   *
   * @example
   * ```ts
   * const keys = queue.readConcatenated();
   * ```
   */
  readConcatenated(): tf.Tensor2D {
    return tf.concat(this.chunks, 0);
  }

  /**
   * Appends a batch of keys and drops the oldest, in O(B x D). The keys are copied (the caller
   * keeps ownership of its tensor) and carry no gradient.
   *
   * @param keys - [B, D] float32 keys (the momentum encoder's outputs, normalised as the loss
   *   expects).
   * @throws {@link ContrastiveError} when `keys` is not [B, D] float32.
   *
   * @example
   * ```ts
   * queue.enqueue(k);
   * ```
   */
  enqueue(keys: tf.Tensor2D): void {
    checkTensor('MomentumQueue.enqueue', 'keys', keys, {
      shape: [null, this.dim],
      dtype: 'float32',
      layout: `[B, ${this.dim}]`,
    });
    const b = keys.shape[0];
    if (b === 0) return;
    const incoming = tf.keep(
      b > this.size ? tf.slice(keys, [b - this.size, 0], [this.size, this.dim]) : tf.clone(keys),
    );
    this.chunks.push(incoming);
    let excess = this.rows() - this.size;
    while (excess > 0) {
      const oldest = this.chunks[0] as tf.Tensor2D;
      const rows = oldest.shape[0];
      if (rows <= excess) {
        this.chunks.shift();
        oldest.dispose();
        excess -= rows;
      } else {
        this.chunks[0] = tf.keep(tf.slice(oldest, [excess, 0], [rows - excess, this.dim]));
        oldest.dispose();
        excess = 0;
      }
    }
  }

  /**
   * The state for a checkpoint (reads the keys back).
   *
   * @returns plain JSON, keys oldest first.
   *
   * @example
   * ```ts
   * const json = JSON.stringify(await queue.getState());
   * ```
   */
  async getState(): Promise<MomentumQueueState> {
    const all = this.readConcatenated();
    const keys = Array.from(await all.data());
    all.dispose();
    return { size: this.size, dim: this.dim, keys };
  }

  /**
   * A queue restored from {@link MomentumQueue.getState}: same keys in the same order.
   *
   * @param state - the saved state.
   * @returns a new MomentumQueue.
   * @throws {@link ContrastiveError} when the state is malformed.
   *
   * @example
   * ```ts
   * const queue = MomentumQueue.fromState(JSON.parse(json));
   * ```
   */
  static fromState(state: MomentumQueueState): MomentumQueue {
    const keys: unknown = state.keys;
    checkNumber('MomentumQueue.fromState', 'state.size', state.size, { integer: true, min: 1 });
    checkNumber('MomentumQueue.fromState', 'state.dim', state.dim, { integer: true, min: 1 });
    if (!Array.isArray(keys) || keys.length !== state.size * state.dim) {
      throw new ContrastiveError({
        caller: 'MomentumQueue.fromState',
        argument: 'state.keys',
        expected: `an array of size * dim = ${state.size * state.dim} numbers`,
        received: describeValue(keys),
      });
    }
    const queue = new MomentumQueue(state.size, state.dim, { chunkSize: state.size });
    queue.dispose();
    queue.chunks = [tf.keep(tf.tensor2d(keys as number[], [state.size, state.dim]))];
    return queue;
  }

  /**
   * Frees the queue's tensors.
   *
   * @example
   * ```ts
   * queue.dispose();
   * ```
   */
  dispose(): void {
    for (const c of this.chunks) c.dispose();
    this.chunks = [];
  }

  private rows(): number {
    return this.chunks.reduce((n, c) => n + c.shape[0], 0);
  }
}
