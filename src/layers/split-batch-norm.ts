/**
 * Split and shuffled batch norm on one device: a model applied to groups of the batch, so that
 * batch norm normalises each group with its own statistics, as it does per GPU in MoCo's
 * multi-GPU training.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { checkBoolean, checkNumber, checkTensor, describeValue } from '../core/checks.js';
import { ContrastiveError } from '../core/errors.js';
import { SeededRandom } from '../core/random.js';

/** Options of {@link splitBatchNormApply}. */
export interface SplitBatchNormOptions {
  /**
   * G, the number of batch-norm groups (MoCo: the number of GPUs). An integer from 1 to B / 2
   * (every group needs 2 samples for a batch variance); 1 is `model.apply` itself, allowed for
   * any batch. When G does not divide B the first B mod G groups get one sample more
   * (`torch.tensor_split`'s convention): sizes floor(B / G) + 1, ..., floor(B / G).
   */
  readonly groups: number;
  /**
   * The shuffle (shuffling BN, for MoCo's keys): row j of the shuffled batch is row
   * `permutation[j]` of `inputs`; the shuffled batch is split into contiguous groups, and the
   * outputs are put back in the original order. A permutation of 0 .. B-1, e.g. from
   * {@link randomPermutation}. Default: none (the groups are contiguous rows of `inputs`). With
   * one group it is checked and has no effect (one group's statistics do not depend on order).
   */
  readonly permutation?: ArrayLike<number>;
  /** Passed to every group's `apply`: batch statistics in training. Default `true`. */
  readonly training?: boolean;
}

/**
 * Applies a tfjs-layers model (or layer) to G groups of a batch separately, so that every batch
 * norm inside it normalises each group with the group's own statistics (split batch norm; with
 * a `permutation`, MoCo's shuffling BN), and returns the outputs in the batch's original order.
 *
 * MoCo (He et al., CVPR 2020, section 3.3) trains on 8 GPUs, where batch norm computes statistics
 * per GPU; without care a GPU's queries and keys are the two views of the same images, so a
 * query and its key share batch statistics: an intra-batch communication that leaks information,
 * through which the model "appears to cheat the pretext task and easily finds a low-loss
 * solution" that does not make good representations. MoCo shuffles
 * the key batch across GPUs before the key encoder and unshuffles after
 * (facebookresearch/moco `_batch_shuffle_ddp`), so the statistics behind a key come from another
 * random subset than those behind its query; SimCLR's answer is global batch norm over all
 * devices instead. On one device this function plays the GPUs' part: apply the query encoder with
 * `{ groups }` and the key encoder with `{ groups, permutation }`, a new
 * {@link randomPermutation} every step.
 *
 * The composition (gather, split, one `apply` per group, concatenation, inverse gather) is
 * differentiable: inside `tf.grad`, `tf.variableGrads` or `optimizer.minimize` the gradient of a
 * weight is the sum over the groups of its gradients, and the permutation's gradient is the
 * inverse permutation (a gather, no scatter: it works on every backend).
 *
 * Running averages: each group's forward pass updates the batch-norm moving statistics, so one
 * call updates them G times, in group order, as G consecutive steps on batches of B / G would.
 * With the library's {@link BatchNorm} (PyTorch's momentum m, weight of the new batch) the moving
 * mean becomes `(1 - m)^G mean + sum_g m (1 - m)^(G - 1 - g) mean_g` (group g = 0 .. G-1, later
 * groups weigh more; the variance alike, each group's unbiased over its own n_g samples): an
 * effective momentum of `1 - (1 - m)^G` per call. (In MoCo's multi-GPU runs each GPU updates its
 * own copy from its group once per step and DistributedDataParallel, by default, broadcasts rank
 * 0's copy before each forward pass, so the kept averages follow one group per step; the MoCo
 * CIFAR-10 demo's `SplitBatchNorm` makes one update of momentum m with the mean of the group
 * statistics. A momentum of `1 - (1 - m)^(1/G)` here gives their effective momentum m.) tfjs-layers' `batchNormalization` does the same
 * with its own momentum convention.
 *
 * @param model - a tfjs-layers `LayersModel`, `Sequential` or layer that maps `[n, ...]` to one
 *   tensor `[n, ...]` row by row (any batch-norm coupling aside), e.g. an encoder.
 * @param inputs - the batch `[B, ...]` (images `[B, H, W, C]`, features `[B, D]`).
 * @param options - `groups` (required), `permutation` (none) and `training` (`true`).
 * @returns the model's output `[B, ...]`, row i that of input row i, computed within its group.
 * @throws {@link index!ContrastiveError} when `model` has no `apply`, `inputs` is not a tensor of rank
 *   at least 1, `groups` is not an integer in [1, B / 2] (1 is always allowed), `permutation` is
 *   not a permutation of 0 .. B-1, `training` is not a boolean, or the model returns several
 *   tensors or a batch of another size.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { SeededRandom, cloneAsMomentumEncoder } from 'tfjs-contrastive';
 * import { randomPermutation, smallConvNet, splitBatchNormApply } from 'tfjs-contrastive/layers';
 *
 * const encoder = smallConvNet({ inputShape: [32, 32, 3], widths: [8, 16], seed: 1 });
 * const keyEncoder = cloneAsMomentumEncoder(encoder);
 * const rng = new SeededRandom(0);
 * const [queryView, keyView] = [tf.randomUniform([16, 32, 32, 3]), tf.randomUniform([16, 32, 32, 3])];
 * // queries: 4 batch-norm groups of 4 images (inside the loss, under the optimiser's tape)
 * const q = splitBatchNormApply(encoder, queryView, { groups: 4 }); // [16, 16]
 * // keys: 4 groups of the same batch after a fresh shuffle, back in the original order
 * const permutation = randomPermutation(16, rng);
 * const k = splitBatchNormApply(keyEncoder, keyView, { groups: 4, permutation }); // [16, 16]
 * ```
 */
export function splitBatchNormApply(
  model: tfl.layers.Layer,
  inputs: tf.Tensor,
  options: SplitBatchNormOptions,
): tf.Tensor {
  const caller = 'splitBatchNormApply';
  if (typeof (model as Partial<tfl.layers.Layer> | null)?.apply !== 'function') {
    throw new ContrastiveError({
      caller,
      argument: 'model',
      expected: 'a tfjs-layers model or layer (with an apply method)',
      received: describeValue(model),
    });
  }
  checkTensor(caller, 'inputs', inputs);
  if (inputs.rank === 0) {
    throw new ContrastiveError({
      caller,
      argument: 'inputs',
      expected: 'a batch [B, ...] of rank at least 1',
      received: describeValue(inputs),
    });
  }
  const batch: number = inputs.shape[0];
  const groups: unknown = (options as Partial<SplitBatchNormOptions> | undefined)?.groups;
  checkNumber(caller, 'options.groups', groups, { integer: true, min: 1 });
  if (groups !== 1 && 2 * groups > batch) {
    throw new ContrastiveError(
      {
        caller,
        argument: 'options.groups',
        expected: `at most half the batch, ${Math.floor(batch / 2)} for a batch of ${batch} (every batch-norm group needs 2 samples), or 1`,
        received: String(groups),
      },
      'Use fewer groups or a larger batch.',
    );
  }
  const training = options.training ?? true;
  checkBoolean(caller, 'options.training', training);
  const order =
    options.permutation === undefined
      ? undefined
      : checkPermutation(caller, options.permutation, batch);

  const run = (x: tf.Tensor, rows: number): tf.Tensor => {
    const y: unknown = model.apply(x, { training });
    if (y instanceof tf.Tensor) {
      const out = y as tf.Tensor;
      if (out.shape[0] === rows) return out;
    }
    const received = Array.isArray(y) ? `${y.length} outputs` : describeValue(y);
    // Not returned, so freed here (outside a tidy nothing else would).
    for (const t of Array.isArray(y) ? (y as unknown[]) : [y]) {
      if (t instanceof tf.Tensor) t.dispose();
    }
    throw new ContrastiveError({
      caller,
      argument: 'model',
      expected: `a model that returns one tensor with a row per input row (${rows})`,
      received,
    });
  };
  // One group: exactly model.apply (the order of one group's rows changes nothing but rounding).
  if (groups === 1) return run(inputs, batch);

  const sizes = groupSizes(batch, groups);
  const shuffle = order === undefined ? undefined : { order, inverse: inversePermutation(order) };
  return tf.tidy(() => {
    const shuffled =
      shuffle === undefined ? inputs : permuteRows(inputs, shuffle.order, shuffle.inverse);
    const outputs = tf.split(shuffled, sizes, 0).map((part, g) => run(part, sizes[g] ?? 0));
    const joined = tf.concat(outputs, 0);
    return shuffle === undefined ? joined : permuteRows(joined, shuffle.inverse, shuffle.order);
  });
}

/**
 * A uniformly random permutation of 0 .. batch-1 for {@link splitBatchNormApply}'s shuffle
 * (MoCo's `torch.randperm` in `_batch_shuffle_ddp`), drawn from the library's seeded generator so
 * that a run's shuffles are reproducible and resume from a checkpoint of the generator's state.
 * Draw a new one every step.
 *
 * @param batch - B, the batch size, a positive integer.
 * @param rng - the {@link SeededRandom} to draw from (it advances).
 * @returns an `Int32Array` holding each of 0 .. B-1 once.
 * @throws {@link index!ContrastiveError} when `batch` is not a positive integer or `rng` is not a
 *   `SeededRandom`.
 *
 * @example
 * ```ts
 * import { SeededRandom } from 'tfjs-contrastive';
 * import { randomPermutation } from 'tfjs-contrastive/layers';
 * const rng = new SeededRandom(42);
 * const permutation = randomPermutation(256, rng); // e.g. Int32Array [17, 203, 4, ...]
 * ```
 */
export function randomPermutation(batch: number, rng: SeededRandom): Int32Array {
  checkNumber('randomPermutation', 'batch', batch, { integer: true, min: 1, lessThan: 2 ** 31 });
  if (!(rng instanceof SeededRandom)) {
    throw new ContrastiveError({
      caller: 'randomPermutation',
      argument: 'rng',
      expected: 'a SeededRandom',
      received: describeValue(rng),
    });
  }
  return rng.permutation(batch);
}

/** `torch.tensor_split`'s sizes: the first `batch % groups` groups one sample larger. */
function groupSizes(batch: number, groups: number): number[] {
  const base = Math.floor(batch / groups);
  const extra = batch % groups;
  return Array.from({ length: groups }, (_, g) => base + (g < extra ? 1 : 0));
}

function checkPermutation(caller: string, value: unknown, batch: number): Int32Array {
  const argument = 'options.permutation';
  const expected = `a permutation of 0 .. ${batch - 1} (each once)`;
  const list = value as ArrayLike<unknown> | null;
  if (
    list === null ||
    typeof list !== 'object' ||
    typeof list.length !== 'number' ||
    list.length !== batch
  ) {
    throw new ContrastiveError({
      caller,
      argument,
      expected,
      received:
        list !== null && typeof list === 'object' && typeof list.length === 'number'
          ? `${list.length} entries`
          : describeValue(value),
    });
  }
  const seen = new Uint8Array(batch);
  const order = new Int32Array(batch);
  for (let j = 0; j < batch; j++) {
    const v = list[j];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= batch) {
      throw new ContrastiveError({
        caller,
        argument,
        expected,
        received: `entry ${j} = ${describeValue(v)}`,
      });
    }
    if (seen[v] === 1) {
      throw new ContrastiveError({ caller, argument, expected, received: `${v} twice` });
    }
    seen[v] = 1;
    order[j] = v;
  }
  return order;
}

function inversePermutation(order: Int32Array): Int32Array {
  const inverse = new Int32Array(order.length);
  order.forEach((v, j) => {
    inverse[v] = j;
  });
  return inverse;
}

/**
 * Rows of `x` in `order` (row j = x[order[j]]), whose gradient is the rows of dy in `inverse`:
 * a gather both ways, where tfjs's own gather gradient is a scatter (UnsortedSegmentSum, missing
 * on stock wasm).
 */
function permuteRows(x: tf.Tensor, order: Int32Array, inverse: Int32Array): tf.Tensor {
  const permute = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    // The index tensors live in the forward and backward scopes, which dispose them.
    value: tf.gather(args[0] as tf.Tensor, tf.tensor1d(order, 'int32')),
    gradFunc: (dy: tf.Tensor) => tf.gather(dy, tf.tensor1d(inverse, 'int32')),
  }));
  return permute(x);
}
