/**
 * What is particular to InstDisc and InvaSpread (the checks every preset shares, including 100
 * steps at a constant tensor count and bit-identical resume with the bank and Z, are in
 * presets.test.ts). InstDisc: a step's loss is NCE of the batch's features against the bank as it
 * was before the step (read before update), with the noise the bank's own sampler draws; only the
 * batch's entries change, to normalise(m v + (1 - m) f); Z is estimated on the first step and then
 * fixed; indices are required and checked. InvaSpread: a step's loss is the instance-spreading
 * criterion of the two views through one encoder.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { ContrastiveError, l2Normalize } from '../../src/core/index.js';
import { smallConvNet } from '../../src/layers/index.js';
import { infoNce, invaSpreadLoss, nceLoss } from '../../src/losses/index.js';
import { instDisc, invaSpread, type InstDisc } from '../../src/methods/index.js';
import { MemoryBank } from '../../src/state/index.js';
import { describeBackends, expectClose } from '../support/backends.js';
import { randomImages } from '../support/layers.js';

const SIDE = 8;
const N = 30;
const conv = (seed = 1): tfl.LayersModel =>
  smallConvNet({ inputShape: [SIDE, SIDE, 1], widths: [4, 8], seed });
const images = (n: number, seed: number): tf.Tensor4D => randomImages([n, SIDE, SIDE, 1], seed);
const values = (t: tf.Tensor): number[] => Array.from(t.dataSync());

/** A copy of the preset's bank as it is now (same entries, same future noise draws). */
function bankCopy(method: InstDisc): MemoryBank {
  const state = method.bank.getState();
  const copy = MemoryBank.fromState(state, { storage: method.bank.storage });
  tf.dispose(Object.values(state.tensors));
  return copy;
}

/** The preset's embedding of a view in training mode (what its loss sees). */
function features(method: InstDisc, view: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(
    () =>
      method.head.apply(method.encoder.apply(view, { training: true }), {
        training: true,
      }) as tf.Tensor2D,
  );
}

describeBackends('instDisc and invaSpread presets', ({ tol }) => {
  it('instDisc: the loss is NCE against the bank before the step; only the batch rows change, to normalise(m v + (1 - m) f)', async () => {
    const encoder = conv();
    const method = instDisc({ encoder, datasetSize: N, negatives: 10, projectionDim: 8, seed: 2 });
    const batch = { images: images(5, 1), indices: [3, 17, 0, 29, 8] };
    const [view] = method.makeViews(batch.images, 4) as [tf.Tensor4D];
    // Expected, from the parts: the features the step will see, the bank before it, its noise.
    const f = features(method, view);
    const before = bankCopy(method);
    const entriesBefore = values(before.value);
    const noise = before.sampleNoise(10);
    const expected = nceLoss(f, batch.indices, before, noise, { temperature: 0.07 });
    const result = await method.trainStep({ ...batch, views: [view] });
    expectClose(result.loss, (await expected.loss.data())[0]!, tol, 'loss');
    // Z was estimated on this first batch, as nceLoss estimates it, and is now fixed.
    expectClose(method.z!, (await expected.z.data())[0]!, tol, 'Z');
    expect(result.metrics['nceZ']).toBe(method.z);
    const unit = l2Normalize(f);
    before.update(batch.indices, unit);
    unit.dispose();
    expectClose(values(method.bank.value), values(before.value), tol, 'bank after the update');
    const after = values(method.bank.value);
    const changedRows = new Set<number>();
    after.forEach((v, i) => {
      if (v !== entriesBefore[i]) changedRows.add(Math.floor(i / 8));
    });
    expect([...changedRows].sort((a, b) => a - b)).toEqual([0, 3, 8, 17, 29]);
    tf.dispose([view, f, noise, expected.loss, expected.z, batch.images]);
    before.dispose();
    method.dispose();
    encoder.dispose();
  });

  it('instDisc: Z is estimated on the first applied step and then held fixed', async () => {
    const encoder = conv();
    const method = instDisc({ encoder, datasetSize: N, negatives: 10, projectionDim: 8 });
    expect(method.z).toBeUndefined();
    const first = images(6, 2);
    await method.trainStep({ images: first, indices: [0, 1, 2, 3, 4, 5] });
    first.dispose();
    const z = method.z;
    expect(z).toBeGreaterThan(0);
    for (let i = 0; i < 3; i++) {
      const batch = { images: images(6, 3 + i), indices: [6, 7, 8, 9, 10, 11].map((j) => j + i) };
      await method.trainStep(batch);
      batch.images.dispose();
    }
    expect(method.z).toBe(z);
    // A step with a fixed Z uses it: the loss equals NCE with that Z passed in.
    const batch = { images: images(6, 9), indices: [20, 21, 22, 23, 24, 25] };
    const [view] = method.makeViews(batch.images, 1) as [tf.Tensor4D];
    const f = features(method, view);
    const copy = bankCopy(method);
    const noise = copy.sampleNoise(10);
    const expected = nceLoss(f, batch.indices, copy, noise, { z: z! });
    const result = await method.trainStep({ ...batch, views: [view] });
    expectClose(result.loss, (await expected.loss.data())[0]!, tol, 'loss with the fixed Z');
    tf.dispose([view, f, noise, expected.loss, expected.z, batch.images]);
    copy.dispose();
    method.dispose();
    encoder.dispose();
  });

  it("instDisc objective 'softmax': InfoNCE of the features against the image's entry and the noise entries before the step; no Z", async () => {
    const encoder = conv();
    const method = instDisc({
      encoder,
      datasetSize: N,
      negatives: 10,
      projectionDim: 8,
      objective: 'softmax',
      temperature: 0.2,
    });
    const batch = { images: images(5, 11), indices: [4, 9, 1, 22, 13] };
    const [view] = method.makeViews(batch.images, 2) as [tf.Tensor4D];
    const f = features(method, view);
    const before = bankCopy(method);
    const noise = before.sampleNoise(10) as tf.Tensor1D;
    const expected = tf.tidy(() =>
      infoNce(f, before.read(batch.indices), { negatives: before.read(noise), temperature: 0.2 }),
    );
    const result = await method.trainStep({ ...batch, views: [view] });
    expectClose(result.loss, (await expected.data())[0]!, tol, 'loss');
    expect(method.z).toBeUndefined();
    expect(() => instDisc({ encoder, datasetSize: N, objective: 'nca' as never })).toThrow(
      /options.objective/,
    );
    tf.dispose([view, f, noise, expected, batch.images]);
    before.dispose();
    method.dispose();
    encoder.dispose();
  });

  it('instDisc: indices are required, one per image, in [0, datasetSize)', async () => {
    const encoder = conv();
    const method = instDisc({ encoder, datasetSize: N, negatives: 10, projectionDim: 8 });
    const x = images(4, 5);
    await expect(method.trainStep({ images: x })).rejects.toThrow(
      /instDisc.trainStep: argument 'batch.indices' must be each image's index in the training set/,
    );
    await expect(method.trainStep({ images: x, indices: [0, 1, 2] })).rejects.toThrow(
      /argument 'batch.indices' must be 4 indices \(one per image\)/,
    );
    await expect(method.trainStep({ images: x, indices: [0, 1, 2, 30] })).rejects.toThrow(
      /argument 'batch.indices\[3\]' must be an integer index in \[0, 30\)/,
    );
    const floats = tf.tensor1d([0, 1, 2, 3], 'float32');
    await expect(method.trainStep({ images: x, indices: floats as tf.Tensor1D })).rejects.toThrow(
      ContrastiveError,
    );
    const ok = tf.tensor1d([0, 1, 2, 3], 'int32');
    expect((await method.trainStep({ images: x, indices: ok })).skipped).toBe(false);
    expect(() => instDisc({ encoder, datasetSize: undefined as never })).toThrow(
      /options.datasetSize/,
    );
    expect(() => instDisc({ encoder, datasetSize: N, negatives: 0 })).toThrow(/options.negatives/);
    expect(() => instDisc({ encoder, datasetSize: N, bankMomentum: 1 })).toThrow(
      /options.bankMomentum/,
    );
    expect(() => instDisc({ encoder, datasetSize: N, temperature: -1 })).toThrow(
      /options.temperature/,
    );
    tf.dispose([x, floats, ok]);
    method.dispose();
    encoder.dispose();
  });

  it('instDisc: the temperature and the number of negatives reach the loss; a checkpoint of another bank size is refused', async () => {
    const lossWith = async (o: { temperature?: number; negatives?: number }): Promise<number> => {
      const encoder = conv();
      const method = instDisc({ encoder, datasetSize: N, projectionDim: 8, negatives: 10, ...o });
      const x = images(4, 6);
      const [view] = method.makeViews(x, 1) as [tf.Tensor4D];
      const { loss } = await method.trainStep({ images: x, indices: [1, 2, 3, 4], views: [view] });
      tf.dispose([x, view]);
      method.dispose();
      encoder.dispose();
      return loss;
    };
    const base = await lossWith({});
    expect(await lossWith({})).toBe(base);
    expect(await lossWith({ temperature: 0.5 })).not.toBe(base);
    expect(await lossWith({ negatives: 20 })).not.toBe(base);
    const e1 = conv();
    const e2 = conv();
    const a = instDisc({ encoder: e1, datasetSize: N, projectionDim: 8 });
    const b = instDisc({ encoder: e2, datasetSize: N + 1, projectionDim: 8 });
    await expect(b.load(await a.save())).rejects.toThrow(ContrastiveError);
    a.dispose();
    b.dispose();
    e1.dispose();
    e2.dispose();
  });

  it('invaSpread: the loss is the instance-spreading criterion of both views through one encoder and head', async () => {
    const encoder = conv();
    const method = invaSpread({ encoder, projectionDim: 8, temperature: 0.2 });
    const x = images(5, 7);
    const views = method.makeViews(x, 3);
    const z = tf.tidy(
      () =>
        method.head.apply(method.encoder.apply(tf.concat(views, 0), { training: true }), {
          training: true,
        }) as tf.Tensor2D,
    );
    const expected = tf.tidy(() =>
      invaSpreadLoss(tf.slice(z, [0, 0], [5, -1]), tf.slice(z, [5, 0], [5, -1]), {
        temperature: 0.2,
      }),
    );
    const result = await method.trainStep({ images: x, views });
    expectClose(result.loss, (await expected.data())[0]!, tol, 'loss');
    expect(() => invaSpread({ encoder, projectionDim: 0 })).toThrow(/options.projectionDim/);
    tf.dispose([x, ...views, z, expected]);
    method.dispose();
    encoder.dispose();
  });
});
