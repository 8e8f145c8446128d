/**
 * Every preset of "Method presets, part 1" through the same checks, on every backend: a step on
 * tiny inputs, 100 steps at a constant tensor count, every trainable weight trains, a step with
 * non-finite input changes nothing, a too small batch is skipped, save -> load into a fresh
 * preset -> continue is bit-identical on cpu, and options reach the computation.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { ContrastiveError } from '../../src/core/index.js';
import { AdamWOptimizer, LARSOptimizer } from '../../src/state/index.js';
import { smallConvNet } from '../../src/layers/index.js';
import {
  byol,
  moco,
  mocoV2,
  mocoV3,
  simclr,
  simclrV2,
  simsiam,
  swav,
  dino,
  instDisc,
  invaSpread,
  type SslMethod,
  type SslMethodOptions,
} from '../../src/methods/index.js';
import { describeBackends } from '../support/backends.js';
import { randomImages } from '../support/layers.js';

const SIDE = 8;
const BATCH = 6;
/** The data set the batches come from (for the memory-bank presets' indices). */
const DATASET = 40;

const tinyEncoder = (seed = 1): tfl.LayersModel =>
  smallConvNet({ inputShape: [SIDE, SIDE, 1], widths: [4, 8], seed });

type Build = (o: SslMethodOptions) => SslMethod;
/** The presets with small heads and queues, so a step takes milliseconds. */
export const PRESETS: Record<string, Build> = {
  simclr: (o) => simclr({ ...o, projectionDim: 8 }),
  simclrV2: (o) => simclrV2({ ...o, projectionDim: 8 }),
  simclrV2Memory: (o) => simclrV2({ ...o, projectionDim: 8, momentum: 0.9, queueSize: 16 }),
  moco: (o) => moco({ ...o, projectionDim: 8, queueSize: 16 }),
  mocoV2: (o) => mocoV2({ ...o, projectionDim: 8, queueSize: 16, batchNormGroups: 2 }),
  byol: (o) => byol({ ...o, projectionDim: 8, hiddenDim: 16 }),
  simsiam: (o) => simsiam(o),
  mocoV3: (o) => mocoV3({ ...o, projectionDim: 8, hiddenDim: 16 }),
  swav: (o) => swav({ ...o, projectionDim: 8, prototypes: 12, localCrops: 2 }),
  swavQueue: (o) =>
    swav({
      ...o,
      projectionDim: 8,
      prototypes: 12,
      localCrops: 2,
      freezePrototypesSteps: 0,
      queueSize: 12,
      queueStart: { step: 0 },
    }),
  dino: (o) => dino({ ...o, outDim: 16, hiddenDim: 16, bottleneckDim: 8, localCrops: 2 }),
  instDisc: (o) => instDisc({ ...o, datasetSize: DATASET, negatives: 12, projectionDim: 8 }),
  instDiscSoftmax: (o) =>
    instDisc({
      ...o,
      datasetSize: DATASET,
      negatives: 12,
      projectionDim: 8,
      objective: 'softmax',
    }),
  invaSpread: (o) => invaSpread({ ...o, projectionDim: 8 }),
  dinoGlobalClip: (o) =>
    dino({
      ...o,
      outDim: 16,
      hiddenDim: 16,
      bottleneckDim: 8,
      localCrops: 0,
      clipMode: 'global',
      freezeLastLayerUntil: { step: 0 },
    }),
};

/** A batch of `n` images, with their indices in a data set of DATASET (other presets ignore them). */
const batchOf = (seed: number, n = BATCH): { images: tf.Tensor4D; indices: Int32Array } => ({
  images: randomImages([n, SIDE, SIDE, 1], seed),
  indices: Int32Array.from({ length: n }, (_, i) => (seed * 7 + i * 5) % DATASET),
});

/** Every weight of the preset's networks (by the checkpoint's names) as arrays. */
async function allWeights(method: SslMethod): Promise<Record<string, number[]>> {
  const bytes = await method.save();
  const { decodeSafetensors } = await import('../../src/core/index.js');
  const { tensors } = decodeSafetensors(bytes);
  const out: Record<string, number[]> = {};
  for (const [name, t] of Object.entries(tensors)) {
    out[name] = Array.from(t.dataSync());
    t.dispose();
  }
  return out;
}

describeBackends('method presets', ({ name: backend }) => {
  for (const [name, build] of Object.entries(PRESETS)) {
    it(`${name}: a step gives a finite loss and trains every trainable weight`, async () => {
      const encoder = tinyEncoder();
      const method = build({ encoder, seed: 3 });
      const trainable = (
        method as unknown as { trainableVariables(): tf.Variable[] }
      ).trainableVariables();
      const before = trainable.map((v) => Array.from(v.dataSync()));
      const batch = batchOf(1);
      const result = await method.trainStep(batch);
      expect(result.skipped).toBe(false);
      expect(Number.isFinite(result.loss)).toBe(true);
      expect(result.step).toBe(1);
      expect(result.metrics.imagesPerSecond).toBeGreaterThan(0);
      expect(Number.isFinite(result.metrics.learningRate)).toBe(true);
      expect(result.metrics.embeddingStd).toBeGreaterThan(0);
      const unchanged = trainable.filter((v, i) => v.dataSync().join() === before[i]?.join());
      expect(unchanged.map((v) => v.name)).toEqual([]);
      batch.images.dispose();
      method.dispose();
      encoder.dispose();
    });

    it(`${name}: 100 steps at a constant tensor count, finite losses`, async () => {
      const encoder = tinyEncoder();
      const method = build({ encoder, seed: 4 });
      const batch = batchOf(2);
      await method.trainStep(batch); // optimiser slots are created on the first step
      const count = tf.memory().numTensors;
      const losses: number[] = [];
      for (let i = 0; i < 100; i++) losses.push((await method.trainStep(batch)).loss);
      expect(tf.memory().numTensors).toBe(count);
      expect(losses.every(Number.isFinite)).toBe(true);
      batch.images.dispose();
      method.dispose();
      encoder.dispose();
    });

    it(`${name}: a step with non-finite input changes nothing and is reported`, async () => {
      const encoder = tinyEncoder();
      const method = build({ encoder, seed: 5, maxConsecutiveSkips: 2 });
      const good = batchOf(3);
      await method.trainStep(good);
      const before = await allWeights(method);
      const bad = {
        ...good,
        images: tf.tidy(() => tf.mul(good.images, tf.scalar(Number.NaN))) as tf.Tensor4D,
      };
      const result = await method.trainStep(bad);
      expect(result.skipped).toBe(true);
      expect(result.reason).toBe('non-finite');
      expect(Number.isNaN(result.loss)).toBe(true);
      expect(result.metrics.skippedSteps).toBe(1);
      expect(result.step).toBe(1);
      const after = await allWeights(method);
      expect(Object.keys(after)).toEqual(Object.keys(before));
      const differing = Object.keys(before).filter((k) => before[k]?.join() !== after[k]?.join());
      expect(differing).toEqual([]);
      // The second skip in a row reaches maxConsecutiveSkips: the error says what is wrong.
      await expect(method.trainStep(bad)).rejects.toThrow(/non-finite loss or gradient/);
      tf.dispose([good.images, bad.images]);
      method.dispose();
      encoder.dispose();
    });

    it(`${name}: a batch of one image is skipped, not a crash`, async () => {
      const encoder = tinyEncoder();
      const method = build({ encoder });
      const one = batchOf(4, 1);
      const result = await method.trainStep(one);
      expect(result).toMatchObject({ skipped: true, reason: 'batch-too-small', step: 0 });
      one.images.dispose();
      method.dispose();
      encoder.dispose();
    });

    if (backend === 'cpu') {
      it(`${name}: save after 2 steps, load into a fresh preset, continue: bit-identical`, async () => {
        const encoderA = tinyEncoder(1);
        const a = build({ encoder: encoderA, seed: 6, totalSteps: 10 });
        const batches = [0, 1, 2, 3, 4].map((i) => batchOf(10 + i));
        for (const b of batches.slice(0, 2)) await a.trainStep(b);
        const bytes = await a.save();
        const encoderB = tinyEncoder(2); // other initial weights: the checkpoint must replace them
        const b = build({ encoder: encoderB, seed: 99, totalSteps: 10 });
        await b.load(bytes);
        expect(b.step).toBe(2);
        for (const batch of batches.slice(2)) {
          const [ra, rb] = [await a.trainStep(batch), await b.trainStep(batch)];
          expect(rb.loss).toBe(ra.loss);
          expect(rb.metrics.learningRate).toBe(ra.metrics.learningRate);
        }
        const [wa, wb] = [await allWeights(a), await allWeights(b)];
        expect(Object.keys(wb)).toEqual(Object.keys(wa));
        const differing = Object.keys(wa).filter((k) => wa[k]?.join() !== wb[k]?.join());
        expect(differing).toEqual([]);
        tf.dispose(batches.map((x) => x.images));
        a.dispose();
        b.dispose();
        encoderA.dispose();
        encoderB.dispose();
      });
    }

    it(`${name}: embed gives the backbone's features in inference mode`, () => {
      const encoder = tinyEncoder();
      const method = build({ encoder });
      const images = randomImages([5, SIDE, SIDE, 1], 7);
      const features = method.embed(images, { batchSize: 2 });
      expect(features.shape).toEqual([5, 8]);
      const direct = encoder.apply(images, { training: false }) as tf.Tensor;
      expect(Array.from(features.dataSync())).toEqual(Array.from(direct.dataSync()));
      tf.dispose([images, features, direct]);
      method.dispose();
      encoder.dispose();
    });
  }

  it("under 96 px the small-image defaults apply (SimCLR: AdamW), from 96 px the paper's (LARS)", async () => {
    const small = tinyEncoder();
    const large = smallConvNet({ inputShape: [96, 96, 3], widths: [4], seed: 1 });
    const a = simclr({ encoder: small, projectionDim: 8 });
    const b = simclr({ encoder: large, projectionDim: 8 });
    const c = simclr({ encoder: small, projectionDim: 8, optimizer: 'lars' });
    expect(a.optimizer).toBeInstanceOf(AdamWOptimizer);
    expect(b.optimizer).toBeInstanceOf(LARSOptimizer);
    expect(c.optimizer).toBeInstanceOf(LARSOptimizer);
    const batch = batchOf(7);
    const result = await a.trainStep(batch);
    // Step 1 of a run of unknown length: the warm-up's first step of the 4e-3 peak.
    expect(result.metrics.learningRate).toBeGreaterThan(0);
    expect(result.metrics.learningRate).toBeLessThanOrEqual(4e-3);
    batch.images.dispose();
    for (const m of [a, b, c]) m.dispose();
    small.dispose();
    large.dispose();
  });

  it('load refuses a checkpoint of another method or architecture', async () => {
    const e1 = tinyEncoder();
    const a = simclr({ encoder: e1, projectionDim: 8 });
    const bytes = await a.save();
    const e2 = tinyEncoder();
    const other = byol({ encoder: e2, projectionDim: 8, hiddenDim: 16 });
    await expect(other.load(bytes)).rejects.toThrow(ContrastiveError);
    await expect(other.load(bytes)).rejects.toThrow(/checkpoint of 'byol'/);
    const e3 = tinyEncoder();
    const wider = simclr({ encoder: e3, projectionDim: 16 });
    await expect(wider.load(bytes)).rejects.toThrow(ContrastiveError);
    for (const m of [a, other, wider]) m.dispose();
    for (const e of [e1, e2, e3]) e.dispose();
  });

  it('the temperature, momentum and head sizes reach the computation', async () => {
    const lossWith = async (make: (e: tfl.LayersModel) => SslMethod): Promise<number> => {
      const encoder = tinyEncoder(1);
      const method = make(encoder);
      const batch = batchOf(20);
      const views = method.makeViews(batch.images, 1);
      const { loss } = await method.trainStep({ images: batch.images, views });
      tf.dispose([batch.images, ...views]);
      method.dispose();
      encoder.dispose();
      return loss;
    };
    const base = await lossWith((e) => simclr({ encoder: e, projectionDim: 8 }));
    expect(await lossWith((e) => simclr({ encoder: e, projectionDim: 8 }))).toBe(base);
    expect(
      await lossWith((e) => simclr({ encoder: e, projectionDim: 8, temperature: 0.5 })),
    ).not.toBe(base);
    expect(await lossWith((e) => simclr({ encoder: e, projectionDim: 16 }))).not.toBe(base);
    const m1 = await lossWith((e) => moco({ encoder: e, projectionDim: 8, queueSize: 16 }));
    expect(
      await lossWith((e) =>
        moco({ encoder: e, projectionDim: 8, queueSize: 16, temperature: 0.5 }),
      ),
    ).not.toBe(m1);
    expect(await lossWith((e) => moco({ encoder: e, projectionDim: 8, queueSize: 32 }))).not.toBe(
      m1,
    );
  });

  it('bad options and batches raise ContrastiveError naming the argument', async () => {
    const encoder = tinyEncoder();
    expect(() => simclr({ encoder, temperature: 0 })).toThrow(/options.temperature/);
    expect(() => simclr({ encoder: {} as unknown as tfl.LayersModel })).toThrow(/options.encoder/);
    expect(() => simclrV2({ encoder: {} as unknown as tfl.LayersModel })).toThrow(
      /options.encoder/,
    );
    expect(() => moco({ encoder, queueSize: 0 })).toThrow(/options.queueSize/);
    expect(() => byol({ encoder, momentum: 1.5 })).toThrow(/options.momentum/);
    expect(() => simclr({ encoder, optimizer: 'adagrad' as never })).toThrow(/options.optimizer/);
    const method = simclr({ encoder, projectionDim: 8 });
    const rank3 = tf.zeros([4, 8, 8]);
    const images = tf.zeros([4, 8, 8, 1]);
    await expect(method.trainStep({ images: rank3 as never })).rejects.toThrow(/batch.images/);
    await expect(method.trainStep(images as never)).rejects.toThrow(/'batch'/);
    await expect(
      method.trainStep({ images: images as tf.Tensor4D, views: [images as tf.Tensor4D] }),
    ).rejects.toThrow(/batch.views/);
    method.dispose();
    await expect(method.trainStep({ images: images as tf.Tensor4D })).rejects.toThrow(/disposed/);
    tf.dispose([rank3, images]);
    encoder.dispose();
  });
});
