import * as tf from '@tensorflow/tfjs-core';
import {
  ContrastiveError,
  SeededRandom,
  checkNumber,
  checkTensor,
  describeValue,
  l2Normalize,
  type ComponentState,
} from '../core/index.js';
import type { NegativeKeys } from '../losses/index.js';

/** Rows per block when `blockSize` is not given (or K, when the queue is shorter). */
const DEFAULT_BLOCK_SIZE = 4096;

/** Options of {@link MomentumQueue}. */
export interface MomentumQueueOptions {
  /** Seed of the random initial keys. Default `0`. */
  readonly seed?: number | string;
  /**
   * Rows per stored block. Default `4096`, or K when the queue is shorter. The queue holds
   * ceil(K / blockSize) blocks in each of two layouts, and an enqueue rewrites only the blocks
   * the new keys land in, so it costs O(blockSize x D), independent of K. Smaller blocks make an
   * enqueue cheaper and a loss step dispatch more products; on webgl and webgpu, where each
   * kernel dispatch costs more than a small product, keep them large.
   */
  readonly blockSize?: number;
  /**
   * The number of samples in the data set, when known: a queue longer than it holds a sample's
   * own older key among its negatives (moco issue #146), and the queue warns once.
   */
  readonly datasetSize?: number;
  /** Where the warning goes. Default `console.warn`. */
  readonly onWarning?: (message: string) => void;
}

/** A piece of one enqueue: `len` new keys from row `from` of the batch, at row `at` of a block. */
interface Piece {
  readonly at: number;
  readonly from: number;
  readonly len: number;
}

/** What {@link MomentumQueue.fromState} hands its constructor instead of random keys. */
interface Restored {
  readonly keys: tf.Tensor2D;
  readonly count: number;
}

// Set by fromState for the duration of one constructor call (synchronous), so that a restored
// queue is built from the saved keys directly, with no random keys built first. A module
// variable rather than a constructor parameter keeps the public signature clean, and rather than
// a Symbol-keyed option keeps the module free of top-level calls (tree shaking).
let restoring: Restored | undefined;

/**
 * @internal Checks that `state` has the {@link ComponentState} shape (a `config` object and a
 * `tensors` object) and returns both; the fields themselves are checked by the caller.
 */
export function checkComponentState(
  caller: string,
  state: unknown,
): { config: Record<string, unknown>; tensors: Record<string, unknown> } {
  const isObject = (x: unknown): x is Record<string, unknown> =>
    typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof tf.Tensor);
  const fail = (argument: string, expected: string, value: unknown): never => {
    throw new ContrastiveError({ caller, argument, expected, received: describeValue(value) });
  };
  if (!isObject(state)) return fail('state', 'a ComponentState { config, tensors }', state);
  const { config, tensors } = state;
  if (!isObject(config)) return fail('state.config', 'an object of JSON values', config);
  if (!isObject(tensors)) return fail('state.tensors', 'an object of named tensors', tensors);
  return { config, tensors };
}

/**
 * MoCo's dictionary (He et al. CVPR 2020): a FIFO queue of the K most recent keys of dimension D,
 * the negatives of {@link infoNce}. Also SwAV's feature queue.
 *
 * The keys start as random unit vectors, as in facebookresearch/moco, which are not real keys
 * ({@link MomentumQueue.count} counts the real ones). `enqueue(keys)` stores the batch's keys
 * L2-normalised, once: `infoNce` with `normalize: true` (its default, and MoCo's) would normalise
 * them anyway, so the loss values are unchanged, and no step normalises the queue again.
 *
 * Storage is a ring buffer, like moco's `queue_ptr`: ceil(K / blockSize) fixed blocks and a write
 * pointer at the oldest key. Each block is held in both layouts the loss's products want: [k, D]
 * rows (the gradient `dy . keys`) and [D, k] columns (the logits `q . keys^T` as a plain product,
 * no transpose per step; transposed products run about 10x slower on wasm). tfjs tensors are
 * immutable, so an enqueue rebuilds the block(s) its B keys land in: O(blockSize x D) per touched
 * block and layout, independent of K, and never a copy of the whole queue. The two layouts double
 * the memory: 2 x K x D floats (64 MiB at K 65536, D 128).
 *
 * K need not be a multiple of the batch size (the original asserts K % B == 0, which breaks on a
 * short last batch, moco PR #100): the ring simply wraps. A batch larger than K keeps its newest K
 * keys.
 *
 * Read the negatives before the batch is enqueued: `negatives()` (for `infoNce`), `read()` (the
 * row blocks), `readConcatenated()` (one [K, D] copy, oldest first).
 *
 * @example
 * <!-- snippet setup="embeddings" -->
 * ```ts
 * import { MomentumQueue, infoNce, stopGradient } from 'tfjs-contrastive';
 *
 * // q, k: [N, 128] queries, and keys from the momentum encoder
 * const queue = new MomentumQueue(65536, 128, { datasetSize: 50000 }); // warns: K > N
 * const loss = infoNce(q, stopGradient(k), { negatives: queue.negatives(), temperature: 0.2 });
 * queue.enqueue(k); // after the loss
 * ```
 */
export class MomentumQueue {
  /** Queue length K. */
  readonly size: number;
  /** Key dimension D. */
  readonly dim: number;
  /** Rows per block (the last block may be shorter). */
  readonly blockSize: number;
  private rowBlocks: tf.Tensor2D[] = [];
  private columnBlocks: tf.Tensor2D[] = [];
  /** Ring position of the oldest key, where the next enqueue writes. */
  private pointer = 0;
  private filled = 0;

  /**
   * @param size - the queue length K (65536 in MoCo).
   * @param dim - the key dimension D (128 in MoCo v1/v2).
   * @param options - `seed` (0), `blockSize` (min(4096, K)), `datasetSize`, `onWarning`
   *   (`console.warn`).
   * @throws {@link ContrastiveError} when `size`, `dim`, `blockSize` or `datasetSize` is not a
   *   positive integer.
   */
  constructor(size: number, dim: number, options: MomentumQueueOptions = {}) {
    const restored = restoring;
    restoring = undefined;
    const caller = restored === undefined ? 'MomentumQueue' : 'MomentumQueue.fromState';
    checkNumber(caller, 'size', size, { integer: true, min: 1 });
    checkNumber(caller, 'dim', dim, { integer: true, min: 1 });
    const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
    checkNumber(caller, 'options.blockSize', blockSize, { integer: true, min: 1 });
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
    this.blockSize = Math.min(blockSize, size);
    const blocks = Math.ceil(size / this.blockSize);
    const rng = new SeededRandom(options.seed ?? 0);
    for (let b = 0; b < blocks; b++) {
      const rows = this.blockRows(b);
      const [r, c] = tf.tidy(() => {
        const keys =
          restored === undefined
            ? l2Normalize(tf.randomNormal<tf.Rank.R2>([rows, dim], 0, 1, 'float32', rng.tfSeed()))
            : tf.slice(restored.keys, [b * this.blockSize, 0], [rows, dim]);
        return [keys, tf.transpose(keys)];
      });
      this.rowBlocks.push(tf.keep(r));
      this.columnBlocks.push(tf.keep(c));
    }
    this.filled = restored?.count ?? 0;
  }

  /**
   * The number of real keys enqueued so far, capped at K: the first K - count keys in oldest-first
   * order are still the random initial ones. SwAV uses only the filled part of its queue.
   */
  get count(): number {
    return this.filled;
  }

  /**
   * The K keys before the current batch as [k_i, D] row blocks, in storage order (once the ring
   * has wrapped this is not oldest first; a loss does not care, `readConcatenated()` does). Owned
   * by the queue: do not dispose them, and do not keep them past the next `enqueue`.
   *
   * @returns the row blocks, e.g. for `infoNce(q, k, { negatives })`.
   *
   * @example
   * <!-- snippet setup="queue" -->
   * ```ts
   * import { infoNce } from 'tfjs-contrastive';
   * const loss = infoNce(q, k, { negatives: queue.read() });
   * ```
   */
  read(): readonly tf.Tensor2D[] {
    return [...this.rowBlocks];
  }

  /**
   * The K keys before the current batch as {@link NegativeKeys}: [k_i, D] row blocks, the same
   * blocks as [D, k_i] columns, marked normalised. `infoNce` takes it as `negatives` and then
   * neither normalises nor transposes the queue. Owned by the queue: do not dispose the blocks,
   * and do not keep them past the next `enqueue`.
   *
   * @returns the keys in both layouts.
   *
   * @example
   * <!-- snippet setup="queue" -->
   * ```ts
   * import { infoNce, stopGradient } from 'tfjs-contrastive';
   * const loss = infoNce(q, stopGradient(k), { negatives: queue.negatives(), temperature: 0.2 });
   * ```
   */
  negatives(): NegativeKeys {
    return { rows: [...this.rowBlocks], columns: [...this.columnBlocks], normalized: true };
  }

  /**
   * All K keys as one [K, D] tensor, oldest first (a copy: O(K x D); dispose it).
   *
   * @returns the keys, oldest first, L2-normalised.
   *
   * @example
   * <!-- snippet setup="queue" -->
   * ```ts
   * const keys = queue.readConcatenated();
   * ```
   */
  readConcatenated(): tf.Tensor2D {
    return tf.tidy(() => {
      const all = tf.concat(this.rowBlocks, 0);
      const p = this.pointer;
      if (p === 0) return all;
      return tf.concat(
        [tf.slice(all, [p, 0], [this.size - p, this.dim]), tf.slice(all, [0, 0], [p, this.dim])],
        0,
      );
    });
  }

  /**
   * Appends a batch of keys, L2-normalised, over the oldest ones. Rewrites only the block(s) the
   * keys land in, in both layouts: O(blockSize x D) per touched block (at most ceil(B / blockSize)
   * + 1 blocks), independent of K. The keys are copied (the caller keeps ownership of its tensor)
   * and carry no gradient.
   *
   * @param keys - [B, D] float32 keys (the momentum encoder's outputs); B may exceed K (the newest
   *   K are kept) and need not divide it.
   * @throws {@link ContrastiveError} when `keys` is not [B, D] float32.
   *
   * @example
   * <!-- snippet setup="queue" -->
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
    const n = Math.min(b, this.size);
    // Where the n newest keys land, block by block (a batch that wraps can touch one block twice).
    const pieces = new Map<number, Piece[]>();
    let pos = this.pointer;
    for (let from = 0; from < n;) {
      const block = Math.floor(pos / this.blockSize);
      const at = pos - block * this.blockSize;
      const len = Math.min(this.blockRows(block) - at, n - from);
      const list = pieces.get(block) ?? [];
      list.push({ at, from, len });
      pieces.set(block, list);
      from += len;
      pos = (pos + len) % this.size;
    }
    const touched = [...pieces.keys()];
    const rebuilt = tf.tidy(() => {
      const fresh = l2Normalize(b > n ? tf.slice(keys, [b - n, 0], [n, this.dim]) : keys);
      const freshColumns = tf.transpose(fresh);
      return touched.flatMap((block) =>
        this.rebuild(block, pieces.get(block) ?? [], fresh, freshColumns),
      );
    });
    touched.forEach((block, i) => {
      this.rowBlocks[block]?.dispose();
      this.columnBlocks[block]?.dispose();
      this.rowBlocks[block] = tf.keep(rebuilt[2 * i] as tf.Tensor2D);
      this.columnBlocks[block] = tf.keep(rebuilt[2 * i + 1] as tf.Tensor2D);
    });
    this.pointer = pos;
    this.filled = Math.min(this.size, this.filled + n);
  }

  /**
   * The state for a checkpoint: `config` `{ size, dim, blockSize, count }` and `tensors`
   * `{ keys }`, the [K, D] keys oldest first (L2-normalised), a new tensor the caller owns and
   * disposes. Synchronous: nothing is read back from the backend.
   *
   * @returns the queue's {@link ComponentState}.
   *
   * @example
   * <!-- snippet setup="queue" -->
   * ```ts
   * import * as tf from '@tensorflow/tfjs-core';
   * import { MomentumQueue } from 'tfjs-contrastive';
   * const state = queue.getState();
   * const copy = MomentumQueue.fromState(state);
   * tf.dispose(Object.values(state.tensors));
   * ```
   */
  getState(): ComponentState {
    return {
      config: { size: this.size, dim: this.dim, blockSize: this.blockSize, count: this.filled },
      tensors: { keys: this.readConcatenated() },
    };
  }

  /**
   * A queue restored from {@link MomentumQueue.getState}: the same keys in the same order and the
   * same `count`, so that it evolves exactly as the saved one would. The blocks are built from the
   * saved keys directly (copies: the caller still owns and disposes `state`), with no random keys
   * built first. The keys are taken as they are and must be L2-normalised rows, as `getState`
   * writes them (`negatives()` marks them normalised, so `infoNce` will not normalise them):
   * normalise keys from elsewhere first. Synchronous and free of read-backs (which webgpu cannot do
   * synchronously), so the values themselves are not inspected.
   *
   * @param state - `config` `{ size, dim, blockSize, count }` (integers, 0 <= count <= size) and
   *   `tensors.keys`, a float32 [size, dim] tensor, oldest first.
   * @returns a new MomentumQueue.
   * @throws {@link ContrastiveError} when the state is malformed: a missing or non-integer size,
   *   a count outside [0, size], keys of another shape or dtype.
   *
   * @example
   * ```ts
   * import { MomentumQueue } from 'tfjs-contrastive';
   * const saved = new MomentumQueue(4096, 128).getState(); // e.g. decoded from a checkpoint
   * const queue = MomentumQueue.fromState(saved);
   * ```
   */
  static fromState(state: ComponentState): MomentumQueue {
    const caller = 'MomentumQueue.fromState';
    const { config, tensors } = checkComponentState(caller, state);
    const { size, dim, blockSize, count } = config;
    checkNumber(caller, 'state.config.size', size, { integer: true, min: 1 });
    checkNumber(caller, 'state.config.dim', dim, { integer: true, min: 1 });
    checkNumber(caller, 'state.config.blockSize', blockSize, { integer: true, min: 1 });
    checkNumber(caller, 'state.config.count', count, { integer: true, min: 0, max: size });
    const keys = tensors.keys;
    checkTensor(caller, 'state.tensors.keys', keys, {
      shape: [size, dim],
      dtype: 'float32',
      layout: '[size, dim] (the keys, oldest first)',
    });
    restoring = { keys: keys as tf.Tensor2D, count };
    try {
      return new MomentumQueue(size, dim, { blockSize });
    } finally {
      restoring = undefined;
    }
  }

  /**
   * Frees the queue's tensors.
   *
   * @example
   * <!-- snippet setup="queue" -->
   * ```ts
   * queue.dispose();
   * ```
   */
  dispose(): void {
    tf.dispose([...this.rowBlocks, ...this.columnBlocks]);
    this.rowBlocks = [];
    this.columnBlocks = [];
  }

  private blockRows(block: number): number {
    return Math.min(this.blockSize, this.size - block * this.blockSize);
  }

  /** Block `block` with `pieces` of the fresh keys written in: [rows, columns] (in a tidy). */
  private rebuild(
    block: number,
    pieces: readonly Piece[],
    fresh: tf.Tensor2D,
    freshColumns: tf.Tensor2D,
  ): [tf.Tensor2D, tf.Tensor2D] {
    const d = this.dim;
    const oldRows = this.rowBlocks[block] as tf.Tensor2D;
    const oldColumns = this.columnBlocks[block] as tf.Tensor2D;
    const rows: tf.Tensor2D[] = [];
    const columns: tf.Tensor2D[] = [];
    const keep = (start: number, len: number): void => {
      if (len <= 0) return;
      rows.push(tf.slice(oldRows, [start, 0], [len, d]));
      columns.push(tf.slice(oldColumns, [0, start], [d, len]));
    };
    let cursor = 0;
    for (const p of [...pieces].sort((x, y) => x.at - y.at)) {
      keep(cursor, p.at - cursor);
      rows.push(tf.slice(fresh, [p.from, 0], [p.len, d]));
      columns.push(tf.slice(freshColumns, [0, p.from], [d, p.len]));
      cursor = p.at + p.len;
    }
    keep(cursor, this.blockRows(block) - cursor);
    return [
      rows.length === 1 ? (rows[0] as tf.Tensor2D) : tf.concat(rows, 0),
      columns.length === 1 ? (columns[0] as tf.Tensor2D) : tf.concat(columns, 1),
    ];
  }
}
