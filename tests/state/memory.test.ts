/**
 * MemoryBank + nceLoss against the independent PyTorch reference (scripts/fixtures/memory.py),
 * and MomentumQueue's FIFO order, wrap-around, cost and state.
 */
import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, it, vi } from 'vitest';
import { ContrastiveError, MemoryBank, MomentumQueue, infoNce, nceLoss } from '../../src/index.js';
import { describeBackends, expectClose, finiteDifferenceGradient } from '../support/backends.js';

interface NceCase {
  name: string;
  options: { temperature: number; normalize: boolean; z?: number };
  features: { shape: number[]; data: number[] };
  memory: { shape: number[]; data: number[] };
  indices: number[];
  noise: { shape: number[]; data: number[] };
  loss: number;
  z: number;
  grad: number[];
  memory_after_update: number[];
}

const cases = (
  JSON.parse(readFileSync(resolve(import.meta.dirname, '../fixtures/memory.json'), 'utf8')) as {
    cases: NceCase[];
  }
).cases;

describeBackends('nceLoss and MemoryBank against the PyTorch reference', ({ tol, name }) => {
  for (const c of cases) {
    it(c.name, async () => {
      const f = tf.tensor2d(c.features.data, c.features.shape as [number, number]);
      const memory = tf.tensor2d(c.memory.data, c.memory.shape as [number, number]);
      const noise = tf.tensor(c.noise.data, c.noise.shape, 'int32');
      const { loss, z } = nceLoss(f, c.indices, memory, noise, c.options);
      expectClose(await loss.data(), c.loss, tol, `${c.name} [${name}]: loss`);
      expectClose(await z.data(), c.z, tol, `${c.name} [${name}]: Z`);
      const g = tf.grad(
        (x: tf.Tensor) => nceLoss(x as tf.Tensor2D, c.indices, memory, noise, c.options).loss,
      )(f);
      expectClose(await g.data(), c.grad, 10 * tol, `${c.name} [${name}]: gradient`);
      const bank = MemoryBank.fromState({
        momentum: 0.5,
        dim: c.memory.shape[1]!,
        values: c.memory.data,
        rng: [1, 2, 3, 4],
      });
      bank.update(c.indices, f);
      expectClose(await bank.value.data(), c.memory_after_update, tol, `${c.name}: bank update`);
      bank.dispose();
      tf.dispose([f, memory, noise, loss, z, g]);
    });
  }
});

describeBackends('nceLoss properties', ({ tol }) => {
  it('a fixed Z is used as given; gradients agree with finite differences; Z has none', async () => {
    const bank = new MemoryBank(30, 6, { seed: 3 });
    const f = tf.randomNormal<tf.Rank.R2>([3, 6], 0, 1, 'float32', 1);
    const noise = bank.sampleNoise(8);
    const { loss, z } = nceLoss(f, [0, 1, 2], bank.value, noise, { z: 2.5 });
    expectClose(await z.data(), 2.5, tol);
    const fd = finiteDifferenceGradient(
      (x) => nceLoss(x as tf.Tensor2D, [0, 1, 2], bank.value, noise, { z: 2.5 }).loss,
      f,
    );
    const g = tf.grad(
      (x: tf.Tensor) => nceLoss(x as tf.Tensor2D, [0, 1, 2], bank.value, noise, { z: 2.5 }).loss,
    )(f);
    expectClose(g, fd, 5e-3, 'gradient vs finite differences');
    // With Z estimated, Z is a constant of the gradient (InstDisc estimates it without gradient).
    const gz = tf.grad((x: tf.Tensor) => nceLoss(x as tf.Tensor2D, [0, 1, 2], bank.value, noise).z)(
      f,
    );
    expect(Array.from(gz.dataSync()).every((v) => v === 0)).toBe(true);
    tf.dispose([f, noise, loss, z, g, gz]);
    bank.dispose();
  });

  it('rejects out-of-range indices and mismatched dimensions', () => {
    const bank = new MemoryBank(10, 4);
    const f = tf.zeros([2, 4]) as tf.Tensor2D;
    const f5 = tf.zeros([2, 5]) as tf.Tensor2D;
    expect(() => nceLoss(f, [0, 10], bank.value, [1, 2])).toThrow(
      "nceLoss: argument 'indices[1]' must be an integer index in [0, 10), but received 10.",
    );
    expect(() => nceLoss(f5, [0, 1], bank.value, [1, 2])).toThrow(
      "nceLoss: argument 'memory' must be a float32 tensor of shape [*, 5]",
    );
    expect(() => nceLoss(f, [0, 1], bank.value, [1, 2], { z: 0 })).toThrow("argument 'options.z'");
    expect(() => {
      bank.update([0, 1, 2], f);
    }).toThrow("MemoryBank.update: argument 'indices'");
    expect(() => new MemoryBank(0)).toThrow(ContrastiveError);
    tf.dispose([f, f5]);
    bank.dispose();
  });
});

describeBackends('MemoryBank', ({ tol }) => {
  it('starts uniform in [-s, s], s = 1/sqrt(D/3), and updates to unit rows', async () => {
    const bank = new MemoryBank(2000, 12, { seed: 5 });
    const v = Array.from(await bank.value.data());
    const s = 1 / Math.sqrt(4);
    expect(Math.max(...v)).toBeLessThanOrEqual(s);
    expect(Math.min(...v)).toBeGreaterThanOrEqual(-s);
    expect(Math.abs(v.reduce((a, b) => a + b, 0) / v.length)).toBeLessThan(0.01);
    const f = tf.ones([2, 12]) as tf.Tensor2D;
    bank.update([3, 7], f);
    const norms = tf.tidy(() => tf.norm(bank.read([3, 7]), 'euclidean', 1));
    expectClose(await norms.data(), [1, 1], tol);
    norms.dispose();
    tf.dispose(f);
    bank.dispose();
  });

  it('sampling is reproducible from the seed and survives save/restore', async () => {
    const a = new MemoryBank(100, 4, { seed: 9 });
    const b = new MemoryBank(100, 4, { seed: 9 });
    const [na, nb] = [a.sampleNoise(16, 2), b.sampleNoise(16, 2)];
    expect(await na.data()).toEqual(await nb.data());
    const restored = MemoryBank.fromState(JSON.parse(JSON.stringify(await a.getState())) as never);
    const [x, y] = [a.sampleNoise(32), restored.sampleNoise(32)];
    expect(await x.data()).toEqual(await y.data());
    expect(await restored.value.data()).toEqual(await a.value.data());
    tf.dispose([na, nb, x, y]);
    [a, b, restored].forEach((m) => {
      m.dispose();
    });
  });
});

describeBackends('MomentumQueue', () => {
  it('is FIFO, wraps when K is not a multiple of B, and read() shows the keys before the batch', async () => {
    const q = new MomentumQueue(5, 2, { chunkSize: 2 });
    const batch = (start: number, n: number): tf.Tensor2D =>
      tf.tensor2d(
        Array.from({ length: n * 2 }, (_, i) => start + Math.floor(i / 2)),
        [n, 2],
      );
    const first = [batch(10, 2), batch(20, 2), batch(30, 2), batch(40, 3)];
    for (const k of first) q.enqueue(k);
    const all = q.readConcatenated();
    // Newest 5 keys, oldest first: 21, 30, 31, 40, 41, 42 -> drop 21.
    expect((await all.array()).map((r) => (r as number[])[0])).toEqual([30, 31, 40, 41, 42]);
    expect(q.read().reduce((n, c) => n + c.shape[0], 0)).toBe(5);
    const big = batch(50, 7);
    q.enqueue(big);
    const after = q.readConcatenated();
    expect((await after.array()).map((r) => (r as number[])[0])).toEqual([52, 53, 54, 55, 56]);
    tf.dispose([...first, all, big, after]);
    q.dispose();
  });

  it('enqueue touches O(B x D): the chunks already stored are not rewritten', () => {
    const q = new MomentumQueue(1024, 8, { chunkSize: 64 });
    const k = tf.ones([64, 8]) as tf.Tensor2D;
    const kept = q.read().slice(1);
    q.enqueue(k);
    // The 15 chunks that stay are the very same tensors; only the oldest left.
    expect(q.read().slice(0, 15)).toEqual(kept);
    expect(q.read().length).toBe(16);
    tf.dispose(k);
    q.dispose();
  });

  it('feeds infoNce as chunks, equal to the concatenated keys; save/restore is exact', async () => {
    const q = new MomentumQueue(40, 6, { chunkSize: 16, seed: 2 });
    const x = tf.randomNormal<tf.Rank.R2>([3, 6], 0, 1, 'float32', 3);
    const y = tf.randomNormal<tf.Rank.R2>([3, 6], 0, 1, 'float32', 4);
    const all = q.readConcatenated();
    const a = infoNce(x, y, { negatives: q.read() });
    const b = infoNce(x, y, { negatives: all });
    expectClose(await a.data(), await b.data(), 1e-5);
    const restored = MomentumQueue.fromState(
      JSON.parse(JSON.stringify(await q.getState())) as never,
    );
    q.enqueue(x);
    restored.enqueue(x);
    const [c1, c2] = [q.readConcatenated(), restored.readConcatenated()];
    expect(await c1.data()).toEqual(await c2.data());
    tf.dispose([x, y, all, a, b, c1, c2]);
    q.dispose();
    restored.dispose();
  });

  it('warns when the queue is longer than the data set, and rejects bad keys', () => {
    const warn = vi.fn();
    const q = new MomentumQueue(100, 4, { datasetSize: 50, onWarning: warn });
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toMatch(/longer than the data set/);
    const bad = tf.zeros([2, 5]) as tf.Tensor2D;
    expect(() => {
      q.enqueue(bad);
    }).toThrow("MomentumQueue.enqueue: argument 'keys' must be a float32 tensor of shape [*, 4]");
    tf.dispose(bad);
    q.dispose();
  });
});
