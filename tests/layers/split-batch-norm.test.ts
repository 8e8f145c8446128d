/**
 * splitBatchNormApply (split / shuffled batch norm) and randomPermutation: the output against
 * model.apply on each group computed separately and put back in place by the test; a row depends
 * only on its own group (and on every row with one group); one group is model.apply exactly;
 * remainders; gradients with respect to the inputs and the weights are the sums over the groups;
 * the running statistics take one update per group (closed form); a training step; errors; no
 * leaks (the harness counts tensors around every test).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { ContrastiveError, SeededRandom } from '../../src/core/index.js';
import {
  BatchNorm,
  mlpHead,
  randomPermutation,
  smallConvNet,
  splitBatchNormApply,
} from '../../src/layers/index.js';
import { describeBackends, expectClose } from '../support/backends.js';
import { randomInput } from '../support/layers.js';

/** dense(6) -> BN -> ReLU -> dense(3) on [batch, 4], the same weights for the same seed. */
const head = (seed = 1): tfl.Sequential =>
  mlpHead({
    inputDim: 4,
    blocks: [{ units: 6, batchNorm: true, activation: 'relu' }, { units: 3 }],
    seed,
  });

/** The rows of each group: `order` (default identity) cut into consecutive runs of `sizes`. */
function groupRows(sizes: readonly number[], order?: readonly number[]): number[][] {
  const all = order ?? Array.from({ length: sizes.reduce((a, b) => a + b, 0) }, (_, i) => i);
  let start = 0;
  return sizes.map((n) => {
    const rows = all.slice(start, start + n);
    start += n;
    return rows;
  });
}

/**
 * The reference: model.apply in training on each group's rows of x separately (gathered here),
 * each output row written back at its input row's index; as nested arrays.
 */
function byGroups(model: tfl.LayersModel, x: tf.Tensor, groups: number[][]): number[][] {
  const out: number[][] = [];
  for (const rows of groups) {
    const y = tf.tidy(
      () => model.apply(tf.gather(x, tf.tensor1d(rows, 'int32')), { training: true }) as tf.Tensor,
    );
    const values = y.arraySync() as number[][];
    rows.forEach((r, k) => (out[r] = values[k]!));
    y.dispose();
  }
  return out;
}

function rowsOf(t: tf.Tensor): number[][] {
  return tf.tidy(() => tf.reshape(t, [t.shape[0]!, -1]).arraySync() as number[][]);
}

/** x with row `row` replaced by other values. */
function withRow(x: tf.Tensor, row: number, seed: number): tf.Tensor {
  return tf.tidy(() => {
    const rows = tf.unstack(x);
    rows[row] = tf.reshape(randomInput(rows[row]!.shape, seed), rows[row]!.shape);
    return tf.stack(rows);
  });
}

describeBackends('splitBatchNormApply', ({ tol }) => {
  it('equals model.apply on each group separately, put back in place (dense + BN head)', () => {
    const model = head();
    const x = randomInput([8, 4], 1);
    for (const permutation of [undefined, [5, 2, 7, 0, 3, 6, 1, 4]]) {
      const y = splitBatchNormApply(model, x, {
        groups: 2,
        ...(permutation === undefined ? {} : { permutation }),
      });
      expect(y.shape).toEqual([8, 3]);
      expectClose(y, byGroups(model, x, groupRows([4, 4], permutation)).flat(), tol);
      y.dispose();
    }
    x.dispose();
    model.dispose();
  });

  it('equals model.apply on each group for a conv backbone (tfjs-layers batch norm), 4 shuffled groups', () => {
    const model = smallConvNet({ inputShape: [6, 6, 2], widths: [4], seed: 2 });
    const x = randomInput([8, 6, 6, 2], 2);
    const permutation = Array.from(randomPermutation(8, new SeededRandom(3)));
    const y = splitBatchNormApply(model, x, { groups: 4, permutation });
    expect(y.shape).toEqual([8, 4]);
    expectClose(y, byGroups(model, x, groupRows([2, 2, 2, 2], permutation)).flat(), tol);
    tf.dispose([x, y]);
    model.dispose();
  });

  it('a row depends only on its group: other groups change nothing, its own group does; one group couples all', () => {
    const model = head();
    const x = randomInput([8, 4], 3);
    const permutation = [6, 1, 4, 3, 0, 7, 2, 5]; // groups {6, 1, 4, 3} and {0, 7, 2, 5}
    const run = (input: tf.Tensor, groups: number): number[][] => {
      const y = splitBatchNormApply(model, input, { groups, permutation });
      const rows = rowsOf(y);
      y.dispose();
      return rows;
    };
    const base = run(x, 2);
    const otherGroup = withRow(x, 0, 10); // row 0 is in the second group
    const sameGroup = withRow(x, 6, 11); // row 6 is in the first
    const changedOther = run(otherGroup, 2);
    const changedSame = run(sameGroup, 2);
    for (const r of [6, 1, 4, 3]) expect(changedOther[r], `row ${r}`).toEqual(base[r]);
    for (const r of [1, 4, 3]) expect(changedSame[r], `row ${r}`).not.toEqual(base[r]);
    // With one group, row 1 sees row 0 through the batch statistics.
    const one = run(x, 1);
    const oneChanged = run(otherGroup, 1);
    for (const r of [6, 1, 4, 3]) expect(oneChanged[r], `row ${r}`).not.toEqual(one[r]);
    tf.dispose([x, otherGroup, sameGroup]);
    model.dispose();
  });

  it('with one group it is model.apply exactly (outputs and running statistics), with or without a permutation', () => {
    const x = randomInput([6, 4], 4);
    for (const permutation of [undefined, [3, 1, 5, 0, 2, 4]]) {
      const [a, b] = [head(5), head(5)];
      const y = splitBatchNormApply(a, x, {
        groups: 1,
        ...(permutation === undefined ? {} : { permutation }),
      });
      const z = b.apply(x, { training: true }) as tf.Tensor;
      expect(Array.from(y.dataSync())).toEqual(Array.from(z.dataSync()));
      const [wa, wb] = [a.getWeights(), b.getWeights()];
      wa.forEach((w, i) => expect(Array.from(w.dataSync())).toEqual(Array.from(wb[i]!.dataSync())));
      tf.dispose([y, z]);
      a.dispose();
      b.dispose();
    }
    x.dispose();
  });

  it('a remainder goes to the first groups (torch.tensor_split): 7 rows in 3 groups are 3 + 2 + 2', () => {
    const model = head();
    const x = randomInput([7, 4], 5);
    const permutation = [4, 0, 6, 2, 5, 1, 3];
    const y = splitBatchNormApply(model, x, { groups: 3, permutation });
    expectClose(y, byGroups(model, x, groupRows([3, 2, 2], permutation)).flat(), tol);
    // Not the other split of the same sizes.
    const other = byGroups(model, x, groupRows([2, 2, 3], permutation)).flat();
    const got = Array.from(y.dataSync());
    expect(got.some((v, i) => Math.abs(v - other[i]!) > 1e-3)).toBe(true);
    tf.dispose([x, y]);
    model.dispose();
  });

  it("the gradient with respect to the inputs is each group's own gradient, in place", () => {
    const model = head();
    const x = randomInput([8, 4], 6);
    const w = randomInput([8, 3], 7);
    const permutation = [2, 7, 0, 5, 1, 6, 3, 4];
    const dx = tf.grad((input: tf.Tensor) =>
      tf.sum(tf.mul(splitBatchNormApply(model, input, { groups: 2, permutation }), w)),
    )(x);
    const expected: number[][] = [];
    for (const rows of groupRows([4, 4], permutation)) {
      const g = tf.tidy(() => {
        const idx = tf.tensor1d(rows, 'int32');
        const [xg, wg] = [tf.gather(x, idx), tf.gather(w, idx)];
        return tf.grad((input: tf.Tensor) =>
          tf.sum(tf.mul(model.apply(input, { training: true }) as tf.Tensor, wg)),
        )(xg);
      });
      const values = g.arraySync() as number[][];
      rows.forEach((r, k) => (expected[r] = values[k]!));
      g.dispose();
    }
    expectClose(dx, expected.flat(), tol, 'd loss / d x');
    tf.dispose([x, w, dx]);
    model.dispose();
  });

  it("the gradient of every weight (variableGrads) is the sum of the groups' gradients", () => {
    const model = head();
    const x = randomInput([6, 4], 8);
    const w = randomInput([6, 3], 9);
    const permutation = [5, 3, 1, 0, 2, 4];
    // The tf.Variables behind the layers' weights (a LayerVariable names its variable alike).
    const vars = model.trainableWeights.map((v) => tf.engine().registeredVariables[v.name]!);
    const { value, grads } = tf.variableGrads(
      () => tf.sum(tf.mul(splitBatchNormApply(model, x, { groups: 3, permutation }), w)),
      vars,
    );
    const summed: tf.Tensor[] = vars.map((v) => tf.zerosLike(v as tf.Tensor));
    for (const rows of groupRows([2, 2, 2], permutation)) {
      const idx = tf.tensor1d(rows, 'int32');
      const [xg, wg] = [tf.gather(x, idx), tf.gather(w, idx)];
      const part = tf.variableGrads(
        () => tf.sum(tf.mul(model.apply(xg, { training: true }) as tf.Tensor, wg)),
        vars,
      );
      vars.forEach((v, i) => {
        const next = tf.add(summed[i]!, part.grads[v.name]!);
        summed[i]!.dispose();
        summed[i] = next;
      });
      tf.dispose([idx, xg, wg, part.value, ...Object.values(part.grads)]);
    }
    expect(vars.length).toBe(5); // kernel, gamma, beta, kernel, bias
    vars.forEach((v, i) => expectClose(grads[v.name]!, summed[i]!, tol, `d loss / d ${v.name}`));
    tf.dispose([x, w, value, ...Object.values(grads), ...summed]);
    model.dispose();
  });

  it('the running statistics take one update per group, later groups weighing more (closed form)', () => {
    const m = 0.25;
    const layer = new BatchNorm({ momentum: m });
    const model = tfl.sequential({ layers: [tfl.layers.inputLayer({ inputShape: [3] }), layer] });
    const x = randomInput([6, 3], 10);
    const permutation = [4, 1, 5, 0, 3, 2];
    const y = splitBatchNormApply(model, x, { groups: 3, permutation });
    const data = x.arraySync() as number[][];
    const groups = groupRows([2, 2, 2], permutation);
    const G = groups.length;
    const mean = [0, 0, 0].map((_, c) =>
      // running mean from 0: sum_g m (1 - m)^(G - 1 - g) mean_g
      groups.reduce((s, rows, g) => {
        const mu = rows.reduce((a, r) => a + data[r]![c]!, 0) / rows.length;
        return s + m * (1 - m) ** (G - 1 - g) * mu;
      }, 0),
    );
    const variance = [0, 0, 0].map((_, c) =>
      // running variance from 1: (1 - m)^G + sum_g m (1 - m)^(G - 1 - g) unbiased var_g
      groups.reduce(
        (s, rows, g) => {
          const mu = rows.reduce((a, r) => a + data[r]![c]!, 0) / rows.length;
          const v = rows.reduce((a, r) => a + (data[r]![c]! - mu) ** 2, 0) / (rows.length - 1);
          return s + m * (1 - m) ** (G - 1 - g) * v;
        },
        (1 - m) ** G,
      ),
    );
    const [movingMean, movingVariance] = layer.getWeights().slice(-2);
    expectClose(movingMean!, mean, tol, 'moving mean');
    expectClose(movingVariance!, variance, tol, 'moving variance');
    tf.dispose([x, y]);
    model.dispose();
  });

  it("tfjs-layers' batchNormalization is updated once per group too (its momentum convention)", () => {
    const bn = tfl.layers.batchNormalization({ momentum: 0.75 }); // moving = 0.75 moving + 0.25 batch
    const model = tfl.sequential({ layers: [tfl.layers.inputLayer({ inputShape: [2] }), bn] });
    const x = randomInput([4, 2], 11);
    const y = splitBatchNormApply(model, x, { groups: 2 });
    const data = x.arraySync() as number[][];
    const mu = (rows: number[], c: number): number =>
      rows.reduce((a, r) => a + data[r]![c]!, 0) / 2;
    const expected = [0, 1].map((c) => 0.25 * 0.75 * mu([0, 1], c) + 0.25 * mu([2, 3], c));
    const movingMean = bn.getWeights()[2]!;
    expectClose(movingMean, expected, tol, 'moving mean');
    tf.dispose([x, y]);
    model.dispose();
  });

  it('trains inside optimizer.minimize with a fresh shuffle each step, without leaking', () => {
    const model = head();
    const x = randomInput([8, 4], 12);
    const target = randomInput([8, 3], 13);
    const rng = new SeededRandom(14);
    const optimizer = tf.train.sgd(0.05);
    const before = model.getWeights().map((t) => Array.from(t.dataSync()));
    const count = tf.memory().numTensors;
    for (let step = 0; step < 3; step++) {
      const permutation = randomPermutation(8, rng);
      tf.tidy(() => {
        optimizer.minimize(
          () =>
            tf.sum(
              tf.square(tf.sub(splitBatchNormApply(model, x, { groups: 2, permutation }), target)),
            ) as tf.Scalar,
        );
      });
      expect(tf.memory().numTensors, `tensors after step ${step}`).toBe(count);
    }
    const after = model.getWeights().map((t) => Array.from(t.dataSync()));
    model.trainableWeights.forEach((_, i) => expect(after[i]).not.toEqual(before[i]));
    optimizer.dispose();
    tf.dispose([x, target]);
    model.dispose();
  });

  it('rejects bad arguments with a ContrastiveError naming them, without leaking', () => {
    const model = head();
    const x = randomInput([8, 4], 15);
    const call =
      (options: object, input: unknown = x, m: unknown = model) =>
      () =>
        splitBatchNormApply(
          m as tfl.LayersModel,
          input as tf.Tensor,
          options as { groups: number },
        );
    expect(call({ groups: 0 })).toThrow(/options\.groups/);
    expect(call({ groups: 1.5 })).toThrow(ContrastiveError);
    expect(call({})).toThrow(/options\.groups/);
    expect(call({ groups: 5 })).toThrow(/options\.groups.*at most half the batch, 4.*received 5/s);
    expect(call({ groups: 2, permutation: [0, 1, 2, 3, 4, 5, 6] })).toThrow(
      /options\.permutation.*0 \.\. 7.*7 entries/s,
    );
    expect(call({ groups: 2, permutation: [0, 1, 2, 3, 4, 5, 6, 6] })).toThrow(/6 twice/);
    expect(call({ groups: 2, permutation: [0, 1, 2, 3, 4, 5, 6, 8] })).toThrow(/entry 7 = 8/);
    expect(call({ groups: 2, permutation: [0, 1, 2, 3, 4, 5, 6, 0.5] })).toThrow(/entry 7/);
    expect(call({ groups: 2, permutation: 3 })).toThrow(/options\.permutation/);
    expect(call({ groups: 2, training: 'yes' })).toThrow(/options\.training/);
    expect(call({ groups: 2 }, [1, 2])).toThrow(/inputs/);
    const scalar = tf.scalar(1);
    expect(call({ groups: 1 }, scalar)).toThrow(/inputs.*rank at least 1/s);
    expect(call({ groups: 2 }, x, {})).toThrow(/argument 'model'/);
    // A model that does not keep the batch: refused, its output freed.
    const pooled = { apply: () => tf.zeros([1, 3]) };
    for (const groups of [1, 2]) {
      expect(call({ groups }, x, pooled)).toThrow(/argument 'model'.*row per input row/s);
    }
    const twoOutputs = { apply: () => [tf.zeros([4, 3]), tf.zeros([4, 3])] };
    expect(call({ groups: 2 }, x, twoOutputs)).toThrow(/2 outputs/);
    // One group is model.apply for any batch, one sample included (a model without batch norm).
    const dense = mlpHead({ inputDim: 4, blocks: [{ units: 2 }], seed: 1 });
    const one = randomInput([1, 4], 16);
    const y = splitBatchNormApply(dense, one, { groups: 1 });
    expect(y.shape).toEqual([1, 2]);
    tf.dispose([x, scalar, one, y]);
    model.dispose();
    dense.dispose();
  });
});

it('randomPermutation: a permutation of 0 .. B-1, the SeededRandom permutation draw, reproducible', () => {
  const a = randomPermutation(256, new SeededRandom(42));
  const b = randomPermutation(256, new SeededRandom(42));
  expect(a).toBeInstanceOf(Int32Array);
  expect(Array.from(a)).toEqual(Array.from(b));
  expect(Array.from(a).sort((p, q) => p - q)).toEqual(Array.from({ length: 256 }, (_, i) => i));
  expect(Array.from(a)).toEqual(Array.from(new SeededRandom(42).permutation(256)));
  // Each draw advances the generator: consecutive steps get different shuffles.
  const rng = new SeededRandom(42);
  expect(Array.from(randomPermutation(256, rng))).not.toEqual(
    Array.from(randomPermutation(256, rng)),
  );
  expect(() => randomPermutation(0, new SeededRandom(1))).toThrow(/batch/);
  expect(() => randomPermutation(4, { permutation: () => [0] } as unknown as SeededRandom)).toThrow(
    /argument 'rng'/,
  );
});
