import * as tf from '@tensorflow/tfjs-core';
import {
  ContrastiveError,
  checkNumber,
  checkTensor,
  describeValue,
  type ComponentState,
} from '../core/index.js';
import { checkComponentState } from './momentum-queue.js';

/** Options of {@link Center}. */
export interface CenterOptions {
  /** EMA momentum m of `c <- m c + (1 - m) mean(teacher outputs)`. Default `0.9` (DINO). */
  readonly momentum?: number;
}

// Set by fromState for the duration of one constructor call (synchronous): a restored center
// is built from the saved value directly.
let restoring: tf.Tensor1D | undefined;

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
 * <!-- snippet setup="dino-outputs" -->
 * ```ts
 * import { Center, dinoLoss } from 'tfjs-contrastive';
 *
 * // studentOut, teacherOut: lists of [B, K] head outputs per crop (K = 256 here)
 * const center = new Center(256);
 * const loss = dinoLoss(studentOut, teacherOut, center.value);
 * center.update(teacherOut); // after the loss
 * const saved = center.getState(); // { config: { momentum, dim }, tensors: { value } }
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
    const restored = restoring;
    restoring = undefined;
    checkNumber('Center', 'dim', dim, { integer: true, min: 1 });
    const momentum = options.momentum ?? 0.9;
    checkNumber('Center', 'options.momentum', momentum, { min: 0, lessThan: 1 });
    this.dim = dim;
    this.momentum = momentum;
    this.current = tf.keep(restored === undefined ? tf.zeros([dim]) : tf.clone(restored));
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
   * <!-- snippet setup="dino" -->
   * ```ts
   * // teacherOut: the teacher's [B, K] outputs of the two global crops
   * center.update([teacherOut[0], teacherOut[1]]);
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
   * The state for a checkpoint: `config` `{ momentum, dim }` and `tensors` `{ value }`, the [K]
   * center as a new tensor the caller owns and disposes. Synchronous: nothing is read back.
   *
   * @returns the center's {@link ComponentState}.
   *
   * @example
   * <!-- snippet setup="dino" -->
   * ```ts
   * import * as tf from '@tensorflow/tfjs-core';
   * import { Center } from 'tfjs-contrastive';
   * const state = center.getState();
   * const copy = Center.fromState(state);
   * tf.dispose(Object.values(state.tensors));
   * ```
   */
  getState(): ComponentState {
    return {
      config: { momentum: this.momentum, dim: this.dim },
      tensors: { value: tf.clone(this.current) },
    };
  }

  /**
   * A center restored from {@link Center.getState}, so that training resumes exactly. The value is
   * copied (the caller still owns and disposes `state`). Synchronous and free of read-backs (which
   * webgpu cannot do synchronously), so the values themselves are not inspected.
   *
   * @param state - `config` `{ momentum, dim }` (momentum in [0, 1), dim a positive integer) and
   *   `tensors.value`, a float32 [dim] tensor.
   * @returns a new Center.
   * @throws {@link ContrastiveError} when the state is malformed (a field missing or out of range,
   *   a value of another shape or dtype).
   *
   * @example
   * ```ts
   * import { Center } from 'tfjs-contrastive';
   * const saved = new Center(256).getState(); // e.g. decoded from a checkpoint
   * const center = Center.fromState(saved);
   * ```
   */
  static fromState(state: ComponentState): Center {
    const caller = 'Center.fromState';
    const { config, tensors } = checkComponentState(caller, state);
    const { momentum, dim } = config;
    checkNumber(caller, 'state.config.momentum', momentum, { min: 0, lessThan: 1 });
    checkNumber(caller, 'state.config.dim', dim, { integer: true, min: 1 });
    const value = tensors.value;
    checkTensor(caller, 'state.tensors.value', value, {
      shape: [dim],
      dtype: 'float32',
      layout: '[dim] (the center)',
    });
    restoring = value as tf.Tensor1D;
    try {
      return new Center(dim, { momentum });
    } finally {
      restoring = undefined;
    }
  }

  /**
   * Frees the center's tensor.
   *
   * @example
   * <!-- snippet setup="dino" -->
   * ```ts
   * center.dispose();
   * ```
   */
  dispose(): void {
    this.current.dispose();
  }
}
