import type { DataType, Tensor } from '@tensorflow/tfjs-core';
import { Tensor as TensorClass, tensor1d } from '@tensorflow/tfjs-core';
import { ContrastiveError } from './errors.js';

/**
 * Describes any value in words for an error message: a tensor by dtype and shape, a number by its
 * value, anything else by its type.
 *
 * @param value - the value to describe.
 * @returns e.g. `'a float32 tensor of shape [2, 3]'`, `'-1'`, `'NaN'`, `'undefined'`, `'a string "x"'`.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { describeValue } from 'tfjs-contrastive';
 * describeValue(tf.zeros([2, 3])); // 'a float32 tensor of shape [2, 3]'
 * ```
 */
export function describeValue(value: unknown): string {
  if (value instanceof TensorClass) {
    // instanceof narrows to Tensor<any>, whose shape is untyped.
    const t = value as Tensor;
    return t.isDisposed
      ? 'a disposed tensor'
      : `a ${t.dtype} tensor of shape [${t.shape.join(', ')}]`;
  }
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return `a string ${JSON.stringify(value)}`;
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return `an array of length ${(value as unknown[]).length}`;
  if (typeof value === 'object') {
    const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof name === 'string' && name !== '' && name !== 'Object'
      ? `a ${name} object`
      : 'an object';
  }
  return `a ${typeof value}`;
}

/** What {@link checkTensor} requires of a tensor; every field is optional. */
export interface TensorSpec {
  /** Allowed rank or ranks. */
  readonly rank?: number | readonly number[];
  /** Allowed dtype or dtypes. */
  readonly dtype?: DataType | readonly DataType[];
  /** Required shape; `null` leaves a dimension free. Implies the rank. */
  readonly shape?: readonly (number | null)[];
  /** How the expected layout reads in the message, e.g. `'[N, D]'`. */
  readonly layout?: string;
}

function listOf<T>(x: T | readonly T[]): readonly T[] {
  return (Array.isArray(x) ? x : [x]) as readonly T[];
}

function expectedTensor(spec: TensorSpec): string {
  const parts: string[] = [];
  if (spec.dtype !== undefined) parts.push(listOf(spec.dtype).join(' or '));
  let text = parts.length > 0 ? `a ${parts.join(' ')} tensor` : 'a tensor';
  if (spec.shape !== undefined) {
    text += ` of shape [${spec.shape.map((d) => (d === null ? '*' : String(d))).join(', ')}]`;
  } else if (spec.rank !== undefined) {
    text += ` of rank ${listOf(spec.rank).join(' or ')}`;
  }
  if (spec.layout !== undefined) text += ` ${spec.layout}`;
  return text;
}

/**
 * Checks that `value` is a live tensor that satisfies `spec`, and throws a
 * {@link ContrastiveError} naming `caller` and `argument` otherwise.
 *
 * @param caller - the public function doing the check, for the message.
 * @param argument - the argument's name, for the message.
 * @param value - the value to check.
 * @param spec - rank, dtype and shape requirements.
 * @throws {@link ContrastiveError} when `value` is not a tensor, is disposed, or breaks `spec`.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { checkTensor } from 'tfjs-contrastive';
 * // in a loss of your own: z must be a float32 [N, D] tensor
 * function myLoss(z: tf.Tensor2D): tf.Scalar {
 *   checkTensor('myLoss', 'z', z, { rank: 2, dtype: 'float32', layout: '[N, D]' });
 *   return tf.mean(tf.square(z));
 * }
 * myLoss(tf.ones([4, 8]));
 * ```
 */
export function checkTensor(
  caller: string,
  argument: string,
  value: unknown,
  spec: TensorSpec = {},
): asserts value is Tensor {
  const fail = (): never => {
    throw new ContrastiveError({
      caller,
      argument,
      expected: expectedTensor(spec),
      received: describeValue(value),
    });
  };
  if (!(value instanceof TensorClass)) return fail();
  const t = value as Tensor;
  if (t.isDisposed) return fail();
  if (spec.dtype !== undefined && !listOf(spec.dtype).includes(t.dtype)) return fail();
  if (spec.rank !== undefined && !listOf(spec.rank).includes(t.rank)) return fail();
  if (spec.shape !== undefined) {
    const shape = spec.shape;
    if (t.rank !== shape.length) return fail();
    if (!shape.every((d, i) => d === null || d === t.shape[i])) return fail();
  }
}

/**
 * Checks that two tensors have the same shape (no broadcasting).
 *
 * @param caller - the public function doing the check.
 * @param argument - the name of the second tensor, the one reported as wrong.
 * @param value - the second tensor.
 * @param reference - the name of the first tensor, whose shape is the expectation.
 * @param referenceValue - the first tensor.
 * @throws {@link ContrastiveError} when the shapes differ.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { checkSameShape } from 'tfjs-contrastive';
 * const p = tf.ones([4, 8]);
 * const z = tf.zeros([4, 8]);
 * checkSameShape('byolLoss', 'z', z, 'p', p); // passes; a [4, 7] z would throw
 * ```
 */
export function checkSameShape(
  caller: string,
  argument: string,
  value: Tensor,
  reference: string,
  referenceValue: Tensor,
): void {
  const a = referenceValue.shape;
  const b = value.shape;
  if (a.length !== b.length || a.some((d, i) => d !== b[i])) {
    throw new ContrastiveError({
      caller,
      argument,
      expected: `a tensor of the same shape as '${reference}' ([${a.join(', ')}])`,
      received: describeValue(value),
    });
  }
}

/** Range and integrality requirements for {@link checkNumber}. */
export interface NumberSpec {
  /** Require an integer. */
  readonly integer?: boolean;
  /** Inclusive lower bound. */
  readonly min?: number;
  /** Exclusive lower bound. */
  readonly greaterThan?: number;
  /** Inclusive upper bound. */
  readonly max?: number;
  /** Exclusive upper bound. */
  readonly lessThan?: number;
}

function expectedNumber(spec: NumberSpec): string {
  const bounds: string[] = [];
  if (spec.min !== undefined) bounds.push(`>= ${spec.min}`);
  if (spec.greaterThan !== undefined) bounds.push(`> ${spec.greaterThan}`);
  if (spec.max !== undefined) bounds.push(`<= ${spec.max}`);
  if (spec.lessThan !== undefined) bounds.push(`< ${spec.lessThan}`);
  const kind = spec.integer === true ? 'an integer' : 'a finite number';
  return bounds.length > 0 ? `${kind} ${bounds.join(' and ')}` : kind;
}

/**
 * Checks that `value` is a finite number within the given bounds.
 *
 * @param caller - the public function doing the check.
 * @param argument - the argument's or option's name.
 * @param value - the value to check.
 * @param spec - bounds and integrality.
 * @throws {@link ContrastiveError} when `value` is not a finite number or is out of bounds.
 *
 * @example
 * ```ts
 * import { checkNumber } from 'tfjs-contrastive';
 * checkNumber('ntXentLoss', 'options.temperature', 0.5, { greaterThan: 0 });
 * ```
 */
export function checkNumber(
  caller: string,
  argument: string,
  value: unknown,
  spec: NumberSpec = {},
): asserts value is number {
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (spec.integer !== true || Number.isInteger(value)) &&
    (spec.min === undefined || value >= spec.min) &&
    (spec.greaterThan === undefined || value > spec.greaterThan) &&
    (spec.max === undefined || value <= spec.max) &&
    (spec.lessThan === undefined || value < spec.lessThan);
  if (!ok) {
    throw new ContrastiveError({
      caller,
      argument,
      expected: expectedNumber(spec),
      received: describeValue(value),
    });
  }
}

/**
 * Checks that `value` is a boolean (an on/off option such as `normalize`).
 *
 * @param caller - the public function doing the check.
 * @param argument - the option's name.
 * @param value - the value to check.
 * @throws {@link ContrastiveError} when `value` is not `true` or `false`.
 *
 * @example
 * ```ts
 * import { checkBoolean } from 'tfjs-contrastive';
 * checkBoolean('infoNce', 'options.normalize', true);
 * ```
 */
export function checkBoolean(
  caller: string,
  argument: string,
  value: unknown,
): asserts value is boolean {
  if (typeof value !== 'boolean') {
    throw new ContrastiveError({
      caller,
      argument,
      expected: 'true or false',
      received: describeValue(value),
    });
  }
}

/**
 * Checks that `value` is one of a fixed set of strings (an option such as a reduction).
 *
 * @param caller - the public function doing the check.
 * @param argument - the option's name.
 * @param value - the value to check.
 * @param allowed - the accepted values.
 * @throws {@link ContrastiveError} when `value` is not in `allowed`.
 *
 * @example
 * ```ts
 * import { checkOneOf } from 'tfjs-contrastive';
 * checkOneOf('infoNce', 'options.reduction', 'mean', ['mean', 'sum', 'none']);
 * ```
 */
export function checkOneOf<T extends string>(
  caller: string,
  argument: string,
  value: unknown,
  allowed: readonly T[],
): asserts value is T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new ContrastiveError({
      caller,
      argument,
      expected: `one of ${allowed.map((a) => `'${a}'`).join(', ')}`,
      received: describeValue(value),
    });
  }
}

/**
 * Checks that every element of a tensor is finite. This reads the tensor back synchronously
 * (a GPU sync on webgl/webgpu), so the library calls it only where a non-finite value would
 * otherwise pass silently into state, never inside a loss.
 *
 * @param caller - the public function doing the check.
 * @param argument - the tensor's name.
 * @param value - the tensor to check.
 * @throws {@link ContrastiveError} naming the first non-finite element and its index.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { checkFinite } from 'tfjs-contrastive';
 * const features = tf.randomNormal([8, 128]);
 * checkFinite('MemoryBank.update', 'features', features); // a NaN or Infinity would throw
 * ```
 */
export function checkFinite(caller: string, argument: string, value: Tensor): void {
  const data = value.dataSync();
  for (let i = 0; i < data.length; i++) {
    const v = data[i] as number;
    if (!Number.isFinite(v)) {
      throw new ContrastiveError({
        caller,
        argument,
        expected: 'a tensor of finite values',
        received: `${describeValue(value)} with ${String(v)} at flat index ${i}`,
      });
    }
  }
}

/**
 * Resolves a possibly negative axis against a rank, checking that it is in range.
 *
 * @param caller - the public function doing the check.
 * @param argument - the axis argument's name.
 * @param axis - an axis in `[-rank, rank)`.
 * @param rank - the tensor's rank.
 * @returns the axis in `[0, rank)`.
 * @throws {@link ContrastiveError} when the axis is not an integer in range.
 *
 * @example
 * ```ts
 * import { resolveAxis } from 'tfjs-contrastive';
 * resolveAxis('l2Normalize', 'axis', -1, 2); // 1
 * ```
 */
export function resolveAxis(caller: string, argument: string, axis: unknown, rank: number): number {
  checkNumber(caller, argument, axis, { integer: true, min: -rank, max: rank - 1 });
  return axis < 0 ? axis + rank : axis;
}

/**
 * Indices given as an int32 tensor, an `Int32Array` or an array of integers, as a tensor. A tensor
 * is returned as it is (its values are not read back, so they are not range-checked); an array's
 * values are checked against `[0, n)` and the first bad one is named.
 *
 * @param caller - the public function doing the check.
 * @param argument - the argument's name.
 * @param value - the indices.
 * @param n - the number of valid indices.
 * @returns an int32 tensor (a new one for arrays: the caller disposes it, e.g. inside a tidy).
 * @throws {@link ContrastiveError} for another type, a non-int32 tensor, or an array entry out of range.
 *
 * @example
 * ```ts
 * import { toIndexTensor } from 'tfjs-contrastive';
 * const bankSize = 50000;
 * const idx = toIndexTensor('MemoryBank.read', 'indices', [3, 7], bankSize); // int32 [3, 7]
 * ```
 */
export function toIndexTensor(caller: string, argument: string, value: unknown, n: number): Tensor {
  if (value instanceof TensorClass) {
    checkTensor(caller, argument, value, { dtype: 'int32' });
    return value;
  }
  return tensor1d(indexArray(caller, argument, value, n), 'int32');
}

/**
 * Indices given as an array or Int32Array, checked (integers in [0, n)) and copied, for code that
 * reads them on the host; {@link toIndexTensor} makes a tensor of the same.
 *
 * @internal
 */
export function indexArray(
  caller: string,
  argument: string,
  value: unknown,
  n: number,
): Int32Array {
  if (!(value instanceof Int32Array) && !Array.isArray(value)) {
    throw new ContrastiveError({
      caller,
      argument,
      expected: 'an int32 tensor, an Int32Array or an array of integers',
      received: describeValue(value),
    });
  }
  const arr = Array.from(value as ArrayLike<unknown>);
  const bad = arr.findIndex(
    (v) => typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= n,
  );
  if (bad >= 0) {
    throw new ContrastiveError({
      caller,
      argument: `${argument}[${bad}]`,
      expected: `an integer index in [0, ${n})`,
      received: describeValue(arr[bad]),
    });
  }
  return Int32Array.from(arr as number[]);
}
