/**
 * Every loss in its layout for wasm: forward and backward use plain matrix products only (no
 * transpose flags, which stock tfjs-backend-wasm runs about 10x slower; the kernel fixes would
 * hide that, so the spy sits in front of whatever BatchMatMul is registered).
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { SeededRandom } from '../../src/core/index.js';
import {
  byolLoss,
  cmcLoss,
  cpcLoss,
  dinoLoss,
  infoNce,
  invaSpreadLoss,
  mocoV3Loss,
  nceLoss,
  ntXentLoss,
  simsiamLoss,
  supConLoss,
  swavLoss,
} from '../../src/losses/index.js';
import { describeBackends } from '../support/backends.js';

function randn(shape: [number, number], seed: number): tf.Tensor2D {
  const rng = new SeededRandom(seed);
  return tf.tensor2d(
    Float32Array.from({ length: shape[0] * shape[1] }, () => rng.normal()),
    shape,
  );
}

describeBackends('loss layouts', ({ name }) => {
  const flagged: string[] = [];
  let original: tf.KernelConfig | undefined;
  beforeEach(() => {
    original = tf.getKernel('BatchMatMul', name);
    const base = original;
    tf.unregisterKernel('BatchMatMul', name);
    tf.registerKernel({
      ...base,
      kernelFunc: (args) => {
        const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
        if (transposeA || transposeB) flagged.push(`A^T ${transposeA}, B^T ${transposeB}`);
        return base.kernelFunc(args);
      },
    });
    flagged.length = 0;
  });
  afterEach(() => {
    tf.unregisterKernel('BatchMatMul', name);
    if (original !== undefined) tf.registerKernel(original);
  });

  // [the number of [6, 8] inputs, the loss of them]
  const cases: Record<string, [number, (xs: tf.Tensor2D[]) => tf.Tensor]> = {
    'infoNce in-batch': [2, ([a, b]) => infoNce(a!, b!)],
    'infoNce queue chunks': [
      2,
      ([a, b]) => infoNce(a!, b!, { negatives: [randn([5, 8], 1), randn([3, 8], 2)] }),
    ],
    'infoNce negative keys (rows + columns, as a queue holds them)': [
      2,
      ([a, b]) => {
        const rows = [randn([5, 8], 1), randn([3, 8], 2)];
        const keys = { rows, columns: rows.map((r) => tf.transpose(r)) };
        // Unnormalised (normalised here in both layouts) and marked normalised (used as is).
        return tf.add(
          infoNce(a!, b!, { negatives: { ...keys, normalized: false } }),
          infoNce(a!, b!, { negatives: { ...keys, normalized: true } }),
        );
      },
    ],
    ntXentLoss: [2, ([a, b]) => ntXentLoss(a!, b!)],
    supConLoss: [1, ([a]) => supConLoss(a!, [0, 1, 0, 1, 2, 2])],
    mocoV3Loss: [2, ([a, b]) => mocoV3Loss(a!, b!)],
    invaSpreadLoss: [2, ([a, b]) => invaSpreadLoss(a!, b!)],
    cmcLoss: [3, ([a, b, c]) => cmcLoss([a!, b!, c!])],
    cpcLoss: [2, ([a, b]) => cpcLoss(a!, b!)],
    nceLoss: [1, ([a]) => nceLoss(a!, [0, 1, 2, 3, 4, 5], randn([6, 8], 3), [1, 3, 5, 2]).loss],
    swavLoss: [3, ([a, b, c]) => swavLoss([a!, b!, c!])],
    dinoLoss: [3, ([a, b, c]) => dinoLoss([a!, b!, c!], [a!, b!], tf.zeros([8]))],
    byolLoss: [2, ([a, b]) => byolLoss(a!, b!)],
    simsiamLoss: [4, ([a, b, c, d]) => simsiamLoss(a!, b!, c!, d!)],
  };
  it('the spy sees a flagged product (the check can fail)', () => {
    tf.tidy(() => {
      tf.matMul(randn([6, 8], 1), randn([5, 8], 2), false, true);
    });
    expect(flagged).toEqual(['A^T false, B^T true']);
  });

  for (const [title, [count, loss]] of Object.entries(cases)) {
    it(`${title}: no transposed matrix product, forward or backward`, () => {
      tf.tidy(() => {
        const xs = Array.from({ length: count }, (_, i) => randn([6, 8], 10 + i));
        const { grads } = tf.valueAndGrads(
          (...args: tf.Tensor[]) => tf.sum(loss(args as tf.Tensor2D[])) as tf.Scalar,
        )(xs);
        expect(grads.length).toBe(count);
      });
      expect(flagged).toEqual([]);
    });
  }
});
