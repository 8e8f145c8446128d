/**
 * The cmc preset on every backend: the loss is NCE (or the softmax CE) of each view's feature
 * against the OTHER view's memory bank, checked against the loss functions on independently
 * computed features and the same noise draws; 100 steps at a constant tensor count; only the
 * batch's bank rows change, to normalise(0.5 v + 0.5 f); Z fixed per directed pair on the first
 * step and kept; bit-identical resume on cpu; every weight of every encoder and head trains; a
 * non-finite batch changes nothing; options reach the computation; errors name the argument.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import {
  ContrastiveError,
  SeededRandom,
  decodeSafetensors,
  l2Normalize,
  type SeededRandomState,
} from '../../src/core/index.js';
import { smallConvNet } from '../../src/layers/index.js';
import { cmcLoss, nceLoss } from '../../src/losses/index.js';
import { cmc, type CMC, type CmcMethodOptions } from '../../src/methods/cmc.js';
import { describeBackends, expectClose } from '../support/backends.js';
import { randomImages } from '../support/layers.js';

const SIDE = 8;
const N = 20;
const B = 6;

const conv = (seed: number, channels = 1, side = SIDE): tfl.LayersModel =>
  smallConvNet({ inputShape: [side, side, channels], widths: [4, 8], seed });

type Options = Omit<CmcMethodOptions, 'encoders' | 'datasetSize'> & {
  encoders?: readonly tfl.LayersModel[];
  datasetSize?: number;
};

/** A tiny preset that owns its encoders (disposeEncoder). */
const build = (o: Options = {}, seeds: [number, number] = [1, 2]): CMC =>
  cmc({
    encoders: o.encoders ?? seeds.map((s) => conv(s)),
    datasetSize: N,
    negatives: 8,
    projectionDim: 8,
    disposeEncoder: true,
    ...o,
  });

const batchOf = (
  seed: number,
  indices: readonly number[] = [0, 3, 5, 8, 13, 19],
): { images: tf.Tensor4D; indices: Int32Array } => ({
  images: randomImages([indices.length, SIDE, SIDE, 1], seed),
  indices: Int32Array.from(indices),
});

const rows = (method: CMC, v: number): number[][] => {
  const all = method.banks[v]!.read(Int32Array.from({ length: N }, (_, i) => i));
  const values = all.arraySync();
  all.dispose();
  return values;
};

/** Every tensor of the checkpoint (networks, banks, optimiser slots) as arrays. */
async function everything(method: CMC): Promise<Record<string, number[]>> {
  const { tensors } = decodeSafetensors(await method.save());
  const out: Record<string, number[]> = {};
  for (const [name, t] of Object.entries(tensors)) {
    out[name] = Array.from(t.dataSync());
    t.dispose();
  }
  return out;
}

const trainable = (m: CMC): tf.Variable[] =>
  (m as unknown as { trainableVariables(): tf.Variable[] }).trainableVariables();
const viewsOf = (m: CMC, image: tf.Tensor4D): tf.Tensor4D[] =>
  (m as unknown as { splitViews(c: string, x: tf.Tensor4D): tf.Tensor4D[] }).splitViews(
    'test',
    image,
  );
const methodRng = (m: CMC): SeededRandom => (m as unknown as { methodRng: SeededRandom }).methodRng;

/** The step's normalised projections, computed outside the preset (training mode, as the step). */
function projections(m: CMC, image: tf.Tensor4D): tf.Tensor2D[] {
  return tf.tidy(() =>
    viewsOf(m, image).map((x, v) =>
      l2Normalize(
        m.heads[v]!.apply(m.encoders[v]!.apply(x, { training: true }), {
          training: true,
        }) as tf.Tensor2D,
      ),
    ),
  );
}

describeBackends('cmc preset', ({ name: backend, tol }) => {
  for (const loss of ['nce', 'softmax'] as const) {
    it(`${loss}: the loss scores each view against the other view's bank at [y, noise]`, async () => {
      const method = build({ loss, seed: 3 });
      const batch = batchOf(1);
      const [view] = method.makeViews(batch.images, 5);
      // The noise the step will draw: the preset's own random source, copied.
      const noise = new SeededRandom(0);
      noise.setState([...methodRng(method).getState()] as unknown as SeededRandomState);
      const k = noise.integers(8, N);
      const [f0, f1] = projections(method, view!) as [tf.Tensor2D, tf.Tensor2D];
      const expected = tf.tidy(() => {
        if (loss === 'softmax') {
          const [b0, b1] = method.banks as [CMC['banks'][0], CMC['banks'][0]];
          return cmcLoss([f0, f1], {
            temperature: 0.07,
            positivesPerView: [b0.read(batch.indices), b1.read(batch.indices)],
            negativesPerView: [b0.read(k), b1.read(k)],
            normalize: false,
          });
        }
        const l0 = nceLoss(f0, batch.indices, method.banks[1]!, k, { normalize: false });
        const l1 = nceLoss(f1, batch.indices, method.banks[0]!, k, { normalize: false });
        return tf.add(l0.loss, l1.loss);
      });
      const swapped = tf.tidy(() => {
        // The wrong pairing (each view against its own bank) gives another number.
        if (loss === 'softmax') {
          const [b0, b1] = method.banks as [CMC['banks'][0], CMC['banks'][0]];
          return cmcLoss([f0, f1], {
            positivesPerView: [b1.read(batch.indices), b0.read(batch.indices)],
            negativesPerView: [b1.read(k), b0.read(k)],
            normalize: false,
          });
        }
        const l0 = nceLoss(f0, batch.indices, method.banks[0]!, k, { normalize: false });
        const l1 = nceLoss(f1, batch.indices, method.banks[1]!, k, { normalize: false });
        return tf.add(l0.loss, l1.loss);
      });
      const result = await method.trainStep({ ...batch, views: [view!] });
      expect(result.skipped).toBe(false);
      const want = expected.dataSync()[0] as number;
      expectClose(result.loss, want, 10 * tol, 'loss');
      expect(Math.abs((swapped.dataSync()[0] as number) - want)).toBeGreaterThan(1e-3);
      tf.dispose([batch.images, view!, f0, f1, expected, swapped]);
      method.dispose();
    });

    it(`${loss}: a step trains every trainable weight of every encoder and head`, async () => {
      const method = build({ loss, seed: 3 });
      const vars = trainable(method);
      // Both encoders and both heads are trained.
      const owners = [...method.encoders, ...method.heads].map((m) => m.trainableWeights.length);
      expect(vars.length).toBe(owners.reduce((a, b) => a + b, 0));
      const before = vars.map((v) => Array.from(v.dataSync()));
      const batch = batchOf(2);
      const result = await method.trainStep(batch);
      expect(result.skipped).toBe(false);
      expect(Number.isFinite(result.loss)).toBe(true);
      expect(result.metrics.embeddingStd).toBeGreaterThan(0);
      const unchanged = vars.filter((v, i) => v.dataSync().join() === before[i]?.join());
      expect(unchanged.map((v) => v.name)).toEqual([]);
      batch.images.dispose();
      method.dispose();
    });

    it(`${loss}: 100 steps at a constant tensor count, finite losses`, async () => {
      const method = build({ loss, seed: 4 });
      const batch = batchOf(3);
      await method.trainStep(batch); // optimiser slots are created on the first step
      const count = tf.memory().numTensors;
      const losses: number[] = [];
      for (let i = 0; i < 100; i++) losses.push((await method.trainStep(batch)).loss);
      expect(tf.memory().numTensors).toBe(count);
      expect(losses.every(Number.isFinite)).toBe(true);
      batch.images.dispose();
      method.dispose();
    });
  }

  it("the batch's bank rows become normalise(0.5 v + 0.5 f) of their own view, no other row changes", async () => {
    const method = build({ seed: 5 });
    const batch = batchOf(4, [2, 4, 6, 10, 11, 17]);
    const [view] = method.makeViews(batch.images, 1);
    const projected = projections(method, view!);
    const features = projected.map((f) => f.arraySync());
    tf.dispose(projected);
    const before = [rows(method, 0), rows(method, 1)];
    await method.trainStep({ ...batch, views: [view!] });
    const after = [rows(method, 0), rows(method, 1)];
    const batchRows = Array.from(batch.indices);
    for (let v = 0; v < 2; v++) {
      for (let r = 0; r < N; r++) {
        const at = batchRows.indexOf(r);
        if (at < 0) {
          expect(after[v]![r], `bank ${v} row ${r} untouched`).toEqual(before[v]![r]);
          continue;
        }
        const mixed = before[v]![r]!.map((x, c) => 0.5 * x + 0.5 * features[v]![at]![c]!);
        const norm = Math.hypot(...mixed);
        expectClose(
          after[v]![r]!,
          mixed.map((x) => x / norm),
          10 * tol,
          `bank ${v} row ${r}`,
        );
      }
    }
    tf.dispose([batch.images, view!]);
    method.dispose();
  });

  it('Z is estimated per directed pair on the first applied step, then fixed and kept', async () => {
    const method = build({ seed: 6 });
    expect(method.normalizers).toEqual({ '0-1': undefined, '1-0': undefined });
    const bad = {
      images: tf.fill([B, SIDE, SIDE, 1], Number.NaN) as tf.Tensor4D,
      indices: [0, 1, 2, 3, 4, 5],
    };
    expect((await method.trainStep(bad)).skipped).toBe(true);
    expect(method.normalizers).toEqual({ '0-1': undefined, '1-0': undefined });
    const batch = batchOf(5);
    await method.trainStep(batch);
    const z = method.normalizers;
    expect(z['0-1']).toBeGreaterThan(0);
    expect(z['1-0']).toBeGreaterThan(0);
    expect(z['0-1']).not.toBe(z['1-0']);
    for (let i = 0; i < 3; i++) await method.trainStep(batch);
    expect(method.normalizers).toEqual(z);
    const softmax = build({ loss: 'softmax' });
    expect(softmax.normalizers).toEqual({});
    tf.dispose([bad.images, batch.images]);
    method.dispose();
    softmax.dispose();
  });

  it('a step with non-finite input changes nothing (weights, banks, Z, optimiser)', async () => {
    const method = build({ seed: 7, maxConsecutiveSkips: 2 });
    const good = batchOf(6);
    await method.trainStep(good);
    const before = await everything(method);
    const z = method.normalizers;
    const bad = {
      images: tf.tidy(() => tf.mul(good.images, Number.NaN)) as tf.Tensor4D,
      indices: good.indices,
    };
    const result = await method.trainStep(bad);
    expect(result).toMatchObject({ skipped: true, reason: 'non-finite', step: 1 });
    const after = await everything(method);
    expect(Object.keys(after)).toEqual(Object.keys(before));
    expect(Object.keys(before).filter((k) => before[k]?.join() !== after[k]?.join())).toEqual([]);
    expect(Object.keys(before).some((k) => k.startsWith('state.bank1.'))).toBe(true);
    expect(method.normalizers).toEqual(z);
    await expect(method.trainStep(bad)).rejects.toThrow(/non-finite loss or gradient/);
    tf.dispose([good.images, bad.images]);
    method.dispose();
  });

  if (backend === 'cpu') {
    for (const loss of ['nce', 'softmax'] as const) {
      it(`${loss}: save after 2 steps, load into a fresh preset, continue: bit-identical`, async () => {
        const a = build({ loss, seed: 8, totalSteps: 10 }, [1, 2]);
        const batches = [0, 1, 2, 3, 4].map((i) =>
          batchOf(
            10 + i,
            [i, i + 5, i + 10, (i * 7) % N, 15 + (i % 5), (i * 3 + 1) % N].filter(
              (x, j, all) => all.indexOf(x) === j,
            ),
          ),
        );
        for (const b of batches.slice(0, 2)) await a.trainStep(b);
        const bytes = await a.save();
        const b = build({ loss, seed: 99, totalSteps: 10 }, [3, 4]); // other weights, other seed
        await b.load(bytes);
        expect(b.step).toBe(2);
        expect(b.normalizers).toEqual(a.normalizers);
        for (const batch of batches.slice(2)) {
          const [ra, rb] = [await a.trainStep(batch), await b.trainStep(batch)];
          expect(rb.loss).toBe(ra.loss);
        }
        const [wa, wb] = [await everything(a), await everything(b)];
        expect(Object.keys(wb)).toEqual(Object.keys(wa));
        expect(Object.keys(wa).filter((k) => wa[k]?.join() !== wb[k]?.join())).toEqual([]);
        expect(b.normalizers).toEqual(a.normalizers);
        tf.dispose(batches.map((x) => x.images));
        a.dispose();
        b.dispose();
      });
    }
  }

  it('options reach the computation', async () => {
    const lossWith = async (o: Options, seeds?: [number, number]): Promise<number> => {
      const method = build({ seed: 9, ...o }, seeds);
      const batch = batchOf(20);
      const [view] = method.makeViews(batch.images, 1);
      await method.trainStep({ ...batch, views: [view!] });
      // The second step sees the banks (bank momentum) and the fixed Z of the first.
      const { loss } = await method.trainStep({ ...batch, views: [view!] });
      tf.dispose([batch.images, view!]);
      method.dispose();
      return loss;
    };
    const base = await lossWith({});
    expect(await lossWith({})).toBe(base);
    for (const o of [
      { temperature: 0.2 },
      { negatives: 12 },
      { loss: 'softmax' },
      { projectionDim: 16 },
      { bankMomentum: 0.9 },
      { split: 'halves', imageSize: SIDE },
    ] as Options[]) {
      // The halves of an 8 x 8 image are 4 x 8.
      const half = (seed: number): tfl.LayersModel =>
        smallConvNet({ inputShape: [SIDE / 2, SIDE, 1], widths: [4, 8], seed });
      const encoders = o.split === 'halves' ? [half(1), half(2)] : undefined;
      const other = await lossWith({ ...o, ...(encoders ? { encoders } : {}) });
      expect(other, JSON.stringify(o)).not.toBe(base);
      expect(Number.isFinite(other)).toBe(true);
    }
    // Three views (a custom split): full graph (6 directed pairs) against core view (4).
    const three = (x: tf.Tensor4D): tf.Tensor4D[] => [x, tf.sub(1, x), tf.square(x)];
    const threeViews = (pairing: 'full' | 'core'): Options => ({
      split: three,
      pairing,
      encoders: [conv(1), conv(2), conv(3)],
    });
    const full = build(threeViews('full'));
    const core = build(threeViews('core'));
    expect(full.pairs).toEqual([
      [0, 1],
      [0, 2],
      [1, 0],
      [1, 2],
      [2, 0],
      [2, 1],
    ]);
    expect(core.pairs).toEqual([
      [0, 1],
      [0, 2],
      [1, 0],
      [2, 0],
    ]);
    const batch = batchOf(21);
    const [rf, rc] = [await full.trainStep(batch), await core.trainStep(batch)];
    expect(Number.isFinite(rf.loss) && Number.isFinite(rc.loss)).toBe(true);
    expect(rf.loss).not.toBe(rc.loss);
    expect(Object.keys(full.normalizers)).toEqual(['0-1', '0-2', '1-0', '1-2', '2-0', '2-1']);
    batch.images.dispose();
    full.dispose();
    core.dispose();
  });

  it("RGB: the default split is L and ab of L*a*b*; embed concatenates both encoders' features", async () => {
    const forL = conv(1, 1);
    const forAb = conv(2, 2);
    const method = cmc({ encoders: [forL, forAb], datasetSize: N, negatives: 8, projectionDim: 8 });
    const images = randomImages([B, SIDE, SIDE, 3], 30);
    const result = await method.trainStep({ images, indices: [0, 1, 2, 3, 4, 5] });
    expect(result.skipped).toBe(false);
    expect(method.featureDim).toBe(16);
    const features = method.embed(images, { batchSize: 4 });
    expect(features.shape).toEqual([B, 16]);
    const direct = tf.tidy(() => {
      const [l, ab] = viewsOf(method, images) as [tf.Tensor4D, tf.Tensor4D];
      // CMC's normalisation of L: (L - 50) / 50, so a white pixel has L view 1.
      return tf.concat(
        [
          forL.apply(l, { training: false }) as tf.Tensor2D,
          forAb.apply(ab, { training: false }) as tf.Tensor2D,
        ],
        1,
      );
    });
    expectClose(features, direct, tol, 'embed');
    const white = tf.ones([1, SIDE, SIDE, 3]) as tf.Tensor4D;
    const [l, ab] = viewsOf(method, white);
    expectClose(l!, new Array<number>(SIDE * SIDE).fill(1), 1e-3, 'L view of white');
    expect(ab!.shape).toEqual([1, SIDE, SIDE, 2]);
    tf.dispose([images, features, direct, white, l!, ab!]);
    method.dispose();
    // The encoders are the caller's.
    expect(() => forL.getWeights()).not.toThrow();
    forL.dispose();
    forAb.dispose();
  });

  it('grey: the default split is the image and its Sobel gradient magnitude / 4', () => {
    const method = build();
    // A vertical step edge: the gradient magnitude is 4 x 1 / 4 = 1 beside it, 0 away from it.
    const step = tf.tidy(() =>
      tf.tile(tf.reshape(tf.tensor1d([0, 0, 0, 0, 1, 1, 1, 1]), [1, 1, SIDE, 1]), [1, SIDE, 1, 1]),
    ) as tf.Tensor4D;
    const [image, grad] = viewsOf(method, step);
    expectClose(image!, step, 0, 'the image view');
    const row = (grad!.arraySync() as number[][][][])[0]![1]!.map((p) => p[0]!);
    expectClose(row, [0, 0, 0, 1, 1, 0, 0, 0], 1e-5, 'gradient view');
    const images = randomImages([3, SIDE, SIDE, 1], 1);
    const features = method.embed(images);
    expect(features.shape).toEqual([3, 16]);
    tf.dispose([step, image!, grad!, images, features]);
    method.dispose();
  });

  it('fit on a tensor of images supplies the indices', async () => {
    const method = build({ seed: 10 });
    const images = randomImages([N, SIDE, SIDE, 1], 40);
    const before = rows(method, 0);
    const { steps, losses } = await method.fit(images, {
      epochs: 1,
      batchSize: 7,
      progress: false,
    });
    expect(steps).toBe(3);
    expect(losses.every(Number.isFinite)).toBe(true);
    const after = rows(method, 0);
    // One epoch visits every image: every row of the bank has moved.
    expect(after.filter((r, i) => r.join() === before[i]!.join()).length).toBe(0);
    images.dispose();
    method.dispose();
  });

  it('a step without batch.indices (or with indices outside the banks) is a ContrastiveError', async () => {
    const method = build();
    const batch = batchOf(50);
    const step = method.trainStep({ images: batch.images });
    await expect(step).rejects.toThrow(ContrastiveError);
    await expect(method.trainStep({ images: batch.images })).rejects.toThrow(
      /argument 'batch.indices' must be each image's index in the training set.*needs them/,
    );
    await expect(
      method.trainStep({ images: batch.images, indices: [0, 1, 2, 3, 4, N] }),
    ).rejects.toThrow(/batch.indices\[5\].*datasetSize/);
    await expect(method.trainStep({ images: batch.images, indices: [0, 1] })).rejects.toThrow(
      /batch.indices/,
    );
    expect(method.step).toBe(0);
    batch.images.dispose();
    method.dispose();
  });

  it('bad options raise ContrastiveError naming the argument', async () => {
    const [a, b, c] = [conv(1), conv(2), conv(3)];
    const ab = conv(4, 2);
    const base = { datasetSize: N };
    const bad =
      (o: unknown): (() => unknown) =>
      () =>
        cmc(o as CmcMethodOptions);
    expect(bad({ ...base, encoders: [a, b, c] })).toThrow(/'options.encoders' must be 2 encoders/);
    expect(bad({ ...base, encoders: [a, b, c], split: 'lab' })).toThrow(/options.encoders/);
    expect(bad({ ...base, encoders: [a] })).toThrow(/options.encoders/);
    expect(bad({ ...base, encoders: a })).toThrow(/options.encoders/);
    expect(bad({ ...base, encoders: [a, a] })).toThrow(/options.encoders\[1\].*of its own/);
    expect(bad({ ...base, encoders: [a, {}] })).toThrow(/options.encoders\[1\]/);
    expect(bad({ ...base, encoders: [a, b], encoder: c })).toThrow(/options.encoder'/);
    expect(bad({ ...base, encoders: [a, b], split: 'lab' })).toThrow(
      /options.encoders\[1\]' must be a model taking the 2-channel view/,
    );
    expect(bad({ ...base, encoders: [a, ab], split: 'gradient' })).toThrow(/options.encoders\[1\]/);
    expect(bad({ ...base, encoders: [a, b], split: 'sobel' })).toThrow(/options.split/);
    expect(bad({ encoders: [a, b] })).toThrow(
      /'options.datasetSize' must be the number of training images/,
    );
    expect(bad({ ...base, encoders: [a, b], datasetSize: 0 })).toThrow(/options.datasetSize/);
    expect(bad({ ...base, encoders: [a, b], loss: 'infonce' })).toThrow(/options.loss/);
    expect(bad({ ...base, encoders: [a, b], pairing: 'star' })).toThrow(/options.pairing/);
    expect(bad({ ...base, encoders: [a, b], negatives: 0 })).toThrow(/options.negatives/);
    expect(bad({ ...base, encoders: [a, b], temperature: 0 })).toThrow(/options.temperature/);
    expect(bad({ ...base, encoders: [a, b], bankMomentum: 1 })).toThrow(/options.bankMomentum/);
    expect(bad({ ...base, encoders: [a, b], projectionDim: 0 })).toThrow(/options.projectionDim/);
    expect(bad({ ...base, encoders: [a, b], views: [{ size: 8, count: 2 }] })).toThrow(
      /options.views/,
    );
    expect(bad(null)).toThrow(/'options'/);
    // A split that does not fit: found at the first step, before anything changes.
    const batch = batchOf(60);
    const wrongCount = cmc({ ...base, encoders: [a, b], split: (x) => [x, x, x] });
    await expect(wrongCount.trainStep(batch)).rejects.toThrow(
      /options.split.*3 views for 2 encoders/,
    );
    const wrongShape = cmc({
      ...base,
      encoders: [a, b],
      split: (x) => [x, tf.concat([x, x], 3)],
    });
    await expect(wrongShape.trainStep(batch)).rejects.toThrow(
      /options.split.*view 1 \[6, 8, 8, 2\]/,
    );
    const labOnGrey = cmc({ ...base, encoders: [a, ab], split: 'lab' });
    await expect(labOnGrey.trainStep(batch)).rejects.toThrow(/options.split.*'lab' needs 3/);
    const rgb = randomImages([B, SIDE, SIDE, 3], 61);
    const gradientOnRgb = cmc({ ...base, encoders: [a, b], split: 'gradient' });
    await expect(gradientOnRgb.trainStep({ images: rgb, indices: batch.indices })).rejects.toThrow(
      /options.split/,
    );
    for (const m of [wrongCount, wrongShape, labOnGrey, gradientOnRgb]) {
      expect(m.step).toBe(0);
      m.dispose();
    }
    tf.dispose([batch.images, rgb]);
    for (const e of [a, b, c, ab]) e.dispose();
  });

  it('disposeEncoder: true frees every encoder; by default none', () => {
    const [a, b] = [conv(1), conv(2)];
    cmc({ encoders: [a, b], datasetSize: N }).dispose();
    expect(() => a.getWeights()).not.toThrow();
    expect(() => b.getWeights()).not.toThrow();
    cmc({ encoders: [a, b], datasetSize: N, disposeEncoder: true }).dispose();
    expect(() => a.getWeights()).toThrow(/disposed/);
    expect(() => b.getWeights()).toThrow(/disposed/);
  });
});
