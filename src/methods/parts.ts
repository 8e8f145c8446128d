import * as tf from '@tensorflow/tfjs-core';
import {
  ContrastiveError,
  checkNumber,
  describeValue,
  type ComponentState,
} from '../core/index.js';
import { MemoryBank, MomentumQueue } from '../state/index.js';

/**
 * A queue restored from a checkpoint's state in place of `current`, which it disposes: the same
 * length and key width, or a ContrastiveError naming the checkpoint (and `current` stays).
 *
 * @internal
 */
export function restoredQueue(
  caller: string,
  current: MomentumQueue,
  state: ComponentState,
): MomentumQueue {
  const restored = MomentumQueue.fromState(state);
  if (restored.size !== current.size || restored.dim !== current.dim) {
    restored.dispose();
    throw new ContrastiveError({
      caller,
      argument: 'source',
      expected: `a queue of ${current.size} x ${current.dim} keys`,
      received: `one of ${restored.size} x ${restored.dim}`,
    });
  }
  current.dispose();
  return restored;
}

/**
 * A point of a run, at an epoch (the unit of the papers' released schedules) or a step: where
 * SwAV's queue starts, where DINO's last layer stops being frozen.
 */
export type RunPoint =
  | {
      /** The first step of this epoch (0-based; needs the length of an epoch). */
      readonly epoch: number;
    }
  | {
      /** This step (0-based: the steps applied before it). */
      readonly step: number;
    };

/** Checks a {@link RunPoint} option. @internal */
export function checkRunPoint(caller: string, argument: string, point: unknown): RunPoint {
  const p = point as Partial<{ epoch: number; step: number }> | null;
  const keys = p !== null && typeof p === 'object' ? Object.keys(p) : [];
  const key = keys[0];
  if (keys.length !== 1 || (key !== 'epoch' && key !== 'step')) {
    throw new ContrastiveError({
      caller,
      argument,
      expected: '{ epoch: n } or { step: n }',
      received: describeValue(point),
    });
  }
  checkNumber(caller, `${argument}.${key}`, p?.[key], { integer: true, min: 0 });
  return point as RunPoint;
}

/**
 * Whether a run at `step` (in `epoch`, when the length of an epoch is known) has reached
 * `point`. An epoch point other than 0 is not reached while the epoch is unknown.
 *
 * @internal
 */
export function reached(point: RunPoint, step: number, epoch: number | undefined): boolean {
  if ('step' in point) return step >= point.step;
  if (point.epoch === 0) return true;
  return epoch !== undefined && epoch >= point.epoch;
}

/**
 * `apply` of every view, with the consecutive views of one size concatenated into one batch (as
 * SwAV's and DINO's released code run the crops of one resolution together, so batch norm sees
 * them together), split back into one [B, D] output per view.
 *
 * @internal
 */
export function outputsBySize(
  views: readonly tf.Tensor4D[],
  apply: (x: tf.Tensor4D) => tf.Tensor2D,
): tf.Tensor2D[] {
  const groups: tf.Tensor4D[][] = [];
  for (const v of views) {
    const last = groups[groups.length - 1];
    if (last !== undefined && (last[0] as tf.Tensor4D).shape[1] === v.shape[1]) last.push(v);
    else groups.push([v]);
  }
  return groups.flatMap((group) => {
    const b = (group[0] as tf.Tensor4D).shape[0];
    const out = apply(group.length === 1 ? (group[0] as tf.Tensor4D) : tf.concat(group, 0));
    return group.length === 1 ? [out] : group.map((_, i) => tf.slice(out, [i * b, 0], [b, -1]));
  });
}

/**
 * The normalisation constant Z of NCE (InstDisc, CMC): estimated from the first batch, then held
 * fixed for the rest of the run, as the papers' code does; a state part, so a checkpoint carries
 * it. `value` is `undefined` until the first applied step sets it.
 *
 * @internal
 */
export class NceConstant {
  /** Z, once estimated. */
  value: number | undefined;

  /** Sets Z from the step's estimate (a scalar kept past the tape) if it is not yet fixed. */
  fixFrom(estimate: tf.Tensor | undefined): void {
    if (this.value !== undefined || estimate === undefined) return;
    this.value = (estimate.dataSync() as Float32Array)[0];
  }

  /** The state: `{ z }` (null before the first step), no tensors. */
  getState(): ComponentState {
    return { config: { z: this.value ?? null }, tensors: {} };
  }

  /** Restores Z from a checkpoint's state, or throws a ContrastiveError naming the checkpoint. */
  restore(caller: string, state: ComponentState): void {
    const z = (state.config as { z?: unknown }).z;
    if (z !== null && !(typeof z === 'number' && Number.isFinite(z) && z > 0)) {
      throw new ContrastiveError({
        caller,
        argument: 'source',
        expected: 'an NCE constant Z that is a positive number or null',
        received: describeValue(z),
      });
    }
    this.value = z ?? undefined;
  }
}

/**
 * The batch's data-set indices, checked: present, one per image, integers in [0, N) (the
 * preset's `datasetSize`). For the presets with memory banks (InstDisc, CMC).
 *
 * @internal
 */
export function batchIndices(caller: string, given: unknown, b: number, n: number): Int32Array {
  if (given === undefined) {
    throw new ContrastiveError(
      {
        caller,
        argument: 'batch.indices',
        expected: `each image's index in the training set (${b} integers in [0, ${n})): a memory-bank method keeps one entry per training image and needs them`,
        received: 'no indices',
      },
      'fit(images) supplies them; with trainStep pass { images, indices }.',
    );
  }
  let values: ArrayLike<number>;
  if (given instanceof tf.Tensor) {
    if (given.dtype !== 'int32' || given.rank !== 1) {
      throw new ContrastiveError({
        caller,
        argument: 'batch.indices',
        expected: `an int32 tensor [${b}], an Int32Array or an array of integers`,
        received: describeValue(given),
      });
    }
    values = given.dataSync();
  } else if (Array.isArray(given) || given instanceof Int32Array) {
    values = given as ArrayLike<number>;
  } else {
    throw new ContrastiveError({
      caller,
      argument: 'batch.indices',
      expected: `an int32 tensor [${b}], an Int32Array or an array of integers`,
      received: describeValue(given),
    });
  }
  const arr = Array.from(values as ArrayLike<unknown>);
  if (arr.length !== b) {
    throw new ContrastiveError({
      caller,
      argument: 'batch.indices',
      expected: `${b} indices (one per image)`,
      received: `${arr.length}`,
    });
  }
  const bad = arr.findIndex(
    (v) => typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= n,
  );
  if (bad >= 0) {
    throw new ContrastiveError({
      caller,
      argument: `batch.indices[${bad}]`,
      expected: `an integer index in [0, ${n}) (the preset's datasetSize)`,
      received: describeValue(arr[bad]),
    });
  }
  return Int32Array.from(arr as number[]);
}

/**
 * A bank restored from a checkpoint's state in place of `current`, which it disposes: the same
 * size and width, or a ContrastiveError naming the checkpoint (and `current` stays).
 *
 * @internal
 */
export function restoredBank(
  caller: string,
  current: MemoryBank,
  state: ComponentState,
): MemoryBank {
  const restored = MemoryBank.fromState(state, { storage: current.storage });
  if (restored.size !== current.size || restored.dim !== current.dim) {
    restored.dispose();
    throw new ContrastiveError({
      caller,
      argument: 'source',
      expected: `a memory bank of ${current.size} x ${current.dim} entries`,
      received: `one of ${restored.size} x ${restored.dim}`,
    });
  }
  current.dispose();
  return restored;
}

/**
 * The options InstDisc and CMC share, with their papers' defaults, checked: the NCE temperature
 * (0.07), the noise samples K (4096), the bank momentum (0.5) and the embedding width (128).
 *
 * @internal
 */
export function bankMethodOptions(
  caller: string,
  options: {
    readonly temperature?: number;
    readonly negatives?: number;
    readonly bankMomentum?: number;
    readonly projectionDim?: number;
  },
): { temperature: number; negatives: number; momentum: number; dim: number } {
  const temperature = options.temperature ?? 0.07;
  checkNumber(caller, 'options.temperature', temperature, { greaterThan: 0 });
  const negatives = options.negatives ?? 4096;
  checkNumber(caller, 'options.negatives', negatives, { integer: true, min: 1 });
  const momentum = options.bankMomentum ?? 0.5;
  checkNumber(caller, 'options.bankMomentum', momentum, { min: 0, lessThan: 1 });
  const dim = options.projectionDim ?? 128;
  checkNumber(caller, 'options.projectionDim', dim, { integer: true, min: 1 });
  return { temperature, negatives, momentum, dim };
}
