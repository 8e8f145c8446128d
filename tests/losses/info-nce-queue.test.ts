/**
 * infoNce takes a store of keys itself (a MomentumQueue, or any NegativeKeysSource): the same
 * loss and gradient as its negatives() and as the concatenated keys, read at the call, no leak;
 * and stores that a loss does not take (a queue for cmcLoss, a memory bank) give an error that
 * says what to pass instead.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import {
  ContrastiveError,
  MemoryBank,
  MomentumQueue,
  cmcLoss,
  infoNce,
  type InfoNceOptions,
  type NegativeKeysSource,
} from '../../src/index.js';
import { describeBackends, expectClose } from '../support/backends.js';

const randn = (shape: [number, number], seed: number): tf.Tensor2D =>
  tf.randomNormal(shape, 0, 1, 'float32', seed);

/** The loss and the query's gradient of infoNce(q, k, { negatives }) as numbers. */
function lossAndGrad(
  q: tf.Tensor2D,
  k: tf.Tensor2D,
  negatives: InfoNceOptions['negatives'],
): { loss: number; grad: Float32Array } {
  return tf.tidy(() => {
    const { value, grads } = tf.valueAndGrads((x: tf.Tensor) =>
      infoNce(x as tf.Tensor2D, k, { negatives, temperature: 0.2 }),
    )([q]);
    return {
      loss: value.dataSync()[0] as number,
      grad: grads[0]?.dataSync() as Float32Array,
    };
  });
}

describeBackends('infoNce with a queue as negatives', ({ tol }) => {
  it('the queue itself gives the loss and gradient of queue.negatives() and of its [K, D] keys', () => {
    // K 10 in blocks of 4: three row/column blocks, the last one short.
    const queue = new MomentumQueue(10, 6, { seed: 3, blockSize: 4 });
    const q = randn([5, 6], 1);
    const k = randn([5, 6], 2);
    const keys = queue.readConcatenated();
    const viaQueue = lossAndGrad(q, k, queue);
    const viaKeys = lossAndGrad(q, k, queue.negatives());
    const viaTensor = lossAndGrad(q, k, keys);
    expect(Number.isFinite(viaQueue.loss)).toBe(true);
    expectClose(viaQueue.loss, viaKeys.loss, tol, 'queue vs negatives()');
    expectClose(viaQueue.loss, viaTensor.loss, tol, 'queue vs readConcatenated()');
    expectClose(viaQueue.grad, viaKeys.grad, tol, 'query gradient, queue vs negatives()');
    expectClose(viaQueue.grad, viaTensor.grad, tol, 'query gradient, queue vs readConcatenated()');
    tf.dispose([q, k, keys]);
    queue.dispose();
  });

  it('reads the keys at the call: after an enqueue the loss sees the new keys', () => {
    const queue = new MomentumQueue(8, 4, { seed: 1 });
    const q = randn([3, 4], 4);
    const k = randn([3, 4], 5);
    const before = lossAndGrad(q, k, queue).loss;
    const fresh = randn([3, 4], 6);
    queue.enqueue(fresh);
    const after = lossAndGrad(q, k, queue).loss;
    const keys = queue.readConcatenated();
    expect(after).not.toBeCloseTo(before, 4);
    expectClose(after, lossAndGrad(q, k, keys).loss, tol, 'after the enqueue');
    tf.dispose([q, k, keys, fresh]);
    queue.dispose();
  });

  it('any object with negatives() is a source; its keys are constants (no gradient)', () => {
    const rows = tf.tidy(() => tf.variable(randn([7, 4], 7), true));
    const columns = tf.transpose(rows);
    const source: NegativeKeysSource = {
      negatives: () => ({ rows: [rows], columns: [columns], normalized: false }),
    };
    const q = tf.tidy(() => tf.variable(randn([3, 4], 8), true));
    const k = randn([3, 4], 9);
    const { value, grads } = tf.variableGrads(
      () => infoNce(q, k, { negatives: source, temperature: 0.2 }) as tf.Scalar,
      [q, rows],
    );
    expect(Object.keys(grads)).toEqual([q.name]);
    expectClose(value, lossAndGrad(q, k, rows).loss, tol, 'source vs the row tensor');
    tf.dispose([rows, columns, q, k, value, ...Object.values(grads)]);
  });

  it('a memory bank or an unknown object as negatives: an error that says what to pass', () => {
    const q = randn([3, 4], 10);
    const bank = new MemoryBank(16, 4, { seed: 1 });
    expect(() => infoNce(q, q, { negatives: bank as unknown as tf.Tensor2D })).toThrow(
      "infoNce: argument 'options.negatives' must be a [K, 4] tensor, a list of [k_i, 4] tensors, NegativeKeys { rows, columns, normalized } or a NegativeKeysSource (an object with negatives()), but received a MemoryBank object. Pass the bank entries: bank.read(bank.sampleNoise(K)) for K noise samples, or bank.value.",
    );
    expect(() => infoNce(q, q, { negatives: {} as unknown as tf.Tensor2D })).toThrow(
      /but received an object\. A MomentumQueue is passed itself or as queue\.negatives\(\)/,
    );
    // A source whose keys are of another dimension names the call that produced them.
    const wrong = new MomentumQueue(8, 5, { seed: 1 });
    expect(() => infoNce(q, q, { negatives: wrong })).toThrow(
      "infoNce: argument 'options.negatives.negatives().rows[0]' must be a float32 tensor of shape [*, 4]",
    );
    tf.dispose(q);
    bank.dispose();
    wrong.dispose();
  });

  it('cmcLoss, which takes tensors per view, says how to pass a queue', () => {
    const a = randn([3, 4], 11);
    const queue = new MomentumQueue(8, 4, { seed: 1 });
    let error: unknown;
    try {
      cmcLoss([a, a], { negativesPerView: [queue as unknown as tf.Tensor2D, a] });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ContrastiveError);
    expect((error as ContrastiveError).message).toBe(
      "cmcLoss: argument 'options.negativesPerView[0]' must be a [K, 4] tensor or a list of [k_i, 4] tensors, but received a MomentumQueue object. Pass queue.readConcatenated() (a [K, D] copy of its keys) or queue.read() (its blocks).",
    );
    tf.dispose(a);
    queue.dispose();
  });
});
