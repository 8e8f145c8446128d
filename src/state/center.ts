import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError, checkNumber, checkTensor, describeValue } from '../core/index.js';

/** Options of {@link Center}. */
export interface CenterOptions {
  /** EMA momentum m of `c <- m c + (1 - m) mean(teacher outputs)`. Default `0.9` (DINO). */
  readonly momentum?: number;
}

/** The saved state of a {@link Center}, plain JSON. */
export interface CenterState {
  /** The momentum. */
  readonly momentum: number;
  /** The center's K values. */
  readonly values: number[];
}

/**
 * DINO's running center of the teacher outputs (Caron et al. 2021, Eq. 4): subtracting it from
 * the teacher's logits before the sharpened softmax keeps one dimension from dominating, the
 * collapse that sharpening alone would cause. Updated after each loss computation with the mean
 * of the teacher outputs over every global crop and sample:
 * `c <- m c + (1 - m) mean(teacher outputs)`. Starts at zero, as in DINO.
 *
 * The center owns one tensor ({@link Center.value}); call {@link Center.dispose} when done.
 *
 * @example
 * ```ts
 * import { Center, dinoLoss } from 'tfjs-contrastive';
 *
 * const center = new Center(4096);
 * const loss = dinoLoss(student, teacher, center.value);
 * center.update(teacher);
 * const saved = await center.getState(); // JSON for a checkpoint
 * ```
 */
export class Center {
  /** The momentum m. */
  readonly momentum: number;
  /** The output dimension K. */
  readonly dim: number;
  private current: tf.Tensor1D;

  /**
   * @param dim - the output dimension K, a positive integer.
   * @param options - `momentum` (0.9).
   * @throws {@link ContrastiveError} when `dim` is not a positive integer or the momentum is not in [0, 1).
   */
  constructor(dim: number, options: CenterOptions = {}) {
    checkNumber('Center', 'dim', dim, { integer: true, min: 1 });
    const momentum = options.momentum ?? 0.9;
    checkNumber('Center', 'options.momentum', momentum, { min: 0, lessThan: 1 });
    this.dim = dim;
    this.momentum = momentum;
    this.current = tf.keep(tf.zeros([dim]));
  }

  /** The current center, [K]. Owned by the Center: do not dispose it. */
  get value(): tf.Tensor1D {
    return this.current;
  }

  /**
   * Moves the center towards the mean of the teacher outputs (no gradient).
   *
   * @param teacherOutputs - the teacher's outputs: one [B, K] tensor or a list of them (one per
   *   global crop).
   * @throws {@link ContrastiveError} when an output is not [*, K] float32.
   *
   * @example
   * ```ts
   * center.update([teacherOut1, teacherOut2]);
   * ```
   */
  update(teacherOutputs: tf.Tensor2D | readonly tf.Tensor2D[]): void {
    const list = (Array.isArray(teacherOutputs) ? teacherOutputs : [teacherOutputs]) as unknown[];
    if (list.length === 0) {
      throw new ContrastiveError({
        caller: 'Center.update',
        argument: 'teacherOutputs',
        expected: `a [B, ${this.dim}] tensor or a non-empty list of them`,
        received: describeValue(teacherOutputs),
      });
    }
    list.forEach((t, i) => {
      const name = Array.isArray(teacherOutputs) ? `teacherOutputs[${i}]` : 'teacherOutputs';
      checkTensor('Center.update', name, t, {
        shape: [null, this.dim],
        dtype: 'float32',
        layout: `[B, ${this.dim}]`,
      });
    });
    const next = tf.tidy(() => {
      const batchMean = tf.mean(tf.concat(list as tf.Tensor2D[], 0), 0);
      return tf.add(tf.mul(this.current, this.momentum), tf.mul(batchMean, 1 - this.momentum));
    });
    this.current.dispose();
    this.current = tf.keep(next) as tf.Tensor1D;
  }

  /**
   * The state for a checkpoint (reads the values back).
   *
   * @returns the momentum and the K values.
   *
   * @example
   * ```ts
   * const json = JSON.stringify(await center.getState());
   * ```
   */
  async getState(): Promise<CenterState> {
    return { momentum: this.momentum, values: Array.from(await this.current.data()) };
  }

  /**
   * A center restored from {@link Center.getState}'s output, so that training resumes exactly.
   *
   * @param state - the saved momentum and values.
   * @returns a new Center.
   * @throws {@link ContrastiveError} when the state is malformed.
   *
   * @example
   * ```ts
   * const center = Center.fromState(JSON.parse(json));
   * ```
   */
  static fromState(state: CenterState): Center {
    const values: unknown = state.values;
    if (
      !Array.isArray(values) ||
      values.length === 0 ||
      !values.every((v) => typeof v === 'number' && Number.isFinite(v))
    ) {
      throw new ContrastiveError({
        caller: 'Center.fromState',
        argument: 'state.values',
        expected: 'a non-empty array of finite numbers',
        received: describeValue(values),
      });
    }
    const center = new Center(values.length, { momentum: state.momentum });
    center.current.dispose();
    center.current = tf.keep(tf.tensor1d(values as number[]));
    return center;
  }

  /**
   * Frees the center's tensor.
   *
   * @example
   * ```ts
   * center.dispose();
   * ```
   */
  dispose(): void {
    this.current.dispose();
  }
}
