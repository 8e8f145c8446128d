/**
 * The CPC preset: patches on a grid (or windows of a sequence) through the encoder, a GRU context
 * down the rows, one W_k per step. Checked on every backend: every weight trains (encoder, context
 * network, each W_k), 100 steps at a constant tensor count, a non-finite batch changes nothing,
 * the loss is the documented mean over k of InfoNCE on (W_k c_{i,j}, z_{i+k,j}) pairs, the context
 * is autoregressive, options reach the loss, bad options name the argument; on cpu, save -> load
 * into a differently initialised preset -> continue is bit-identical.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { ContrastiveError, decodeSafetensors } from '../../src/core/index.js';
import { smallConvNet } from '../../src/layers/index.js';
import { cpcLoss } from '../../src/losses/index.js';
import { cpc, type CPC, type CpcMethodOptions } from '../../src/methods/cpc.js';
import { describeBackends, expectClose } from '../support/backends.js';
import { randomImages } from '../support/layers.js';

const SIDE = 8;
const BATCH = 6;
/** 4 px patches at stride 2 on 8 px: a 3 x 3 grid; K = 2 leaves 2 rows for k = 1, 1 for k = 2. */
const TINY = { contextDim: 6, predictionSteps: 2, patchSize: 4, patchStride: 2 } as const;

const encoderOf = (seed = 1, channels = 1): tfl.LayersModel =>
  smallConvNet({ inputShape: [null, null, channels], widths: [4, 8], seed });
const images = (n: number, seed: number): tf.Tensor4D => randomImages([n, SIDE, SIDE, 1], seed);
const values = (t: tf.Tensor): number[] => Array.from(t.dataSync());

interface Built {
  method: CPC;
  encoder: tfl.LayersModel;
  done: () => void;
}
function build(options: Partial<CpcMethodOptions> = {}, encoderSeed = 1): Built {
  const encoder = encoderOf(encoderSeed);
  const method = cpc({ encoder, seed: 3, ...TINY, ...options });
  return {
    method,
    encoder,
    done: () => {
      method.dispose();
      encoder.dispose();
    },
  };
}

const trainable = (m: CPC): tf.Variable[] =>
  (m as unknown as { trainableVariables(): tf.Variable[] }).trainableVariables();

async function allWeights(method: CPC): Promise<Record<string, number[]>> {
  const { tensors } = decodeSafetensors(await method.save());
  const out: Record<string, number[]> = {};
  for (const [name, t] of Object.entries(tensors)) {
    out[name] = values(t);
    t.dispose();
  }
  return out;
}

describeBackends('cpc preset', ({ name: backend, tol }) => {
  it('a step trains every trainable weight: encoder, context network, every W_k', async () => {
    const { method, done } = build({ predictionSteps: 2 });
    const nets = (method as unknown as { networks(): Record<string, tfl.LayersModel> }).networks();
    expect(Object.keys(nets)).toEqual(['encoder', 'context', 'predictor1', 'predictor2']);
    for (const key of ['context', 'predictor1', 'predictor2']) {
      expect(nets[key]?.trainableWeights.length, key).toBeGreaterThan(0);
    }
    const vars = trainable(method);
    const before = vars.map(values);
    const batch = { images: images(BATCH, 1) };
    const result = await method.trainStep(batch);
    expect(result.skipped).toBe(false);
    expect(Number.isFinite(result.loss)).toBe(true);
    expect(result.metrics.embeddingStd).toBeGreaterThan(0);
    const unchanged = vars.filter((v, i) => values(v).join() === before[i]?.join());
    expect(unchanged.map((v) => v.name)).toEqual([]);
    batch.images.dispose();
    done();
  });

  it('100 steps at a constant tensor count, finite losses', async () => {
    const { method, done } = build();
    const batch = { images: images(BATCH, 2) };
    await method.trainStep(batch); // Adam's slots are created on the first step
    const count = tf.memory().numTensors;
    const losses: number[] = [];
    for (let i = 0; i < 100; i++) losses.push((await method.trainStep(batch)).loss);
    expect(tf.memory().numTensors).toBe(count);
    expect(losses.every(Number.isFinite)).toBe(true);
    // The same batch 100 times (with fresh crops): the predictions learn it.
    expect(losses.slice(-10).reduce((a, b) => a + b) / 10).toBeLessThan(losses[0] as number);
    batch.images.dispose();
    done();
  });

  it('a step with non-finite input changes nothing and is reported', async () => {
    const { method, done } = build({ maxConsecutiveSkips: 3 });
    const good = { images: images(BATCH, 3) };
    await method.trainStep(good);
    const before = await allWeights(method);
    const bad = {
      images: tf.tidy(() =>
        tf.where(tf.greater(good.images, 0.9), tf.fill(good.images.shape, Number.NaN), good.images),
      ) as tf.Tensor4D,
    };
    const result = await method.trainStep(bad);
    expect(result).toMatchObject({ skipped: true, reason: 'non-finite', step: 1 });
    const after = await allWeights(method);
    const differing = Object.keys(before).filter((k) => before[k]?.join() !== after[k]?.join());
    expect(differing).toEqual([]);
    tf.dispose([good.images, bad.images]);
    done();
  });

  it('the loss is the mean over k of InfoNCE on the pairs (W_k c[i, j], z[i + k, j])', async () => {
    for (const negatives of ['batch', 'sameStep'] as const) {
      const { method, done } = build({ negatives, predictionSteps: 2 });
      const batch = { images: images(4, 4) };
      const views = method.makeViews(batch.images, 1);
      // The reference, pair by pair, from the same networks before the step (training mode).
      const expected = tf.tidy(() => {
        const [z, c] = method.encode(views[0] as tf.Tensor4D, true);
        const [b, rows, cols] = z.shape;
        const terms = method.predictors.map((w, i) => {
          const k = i + 1;
          const preds: tf.Tensor[][] = [];
          const targets: tf.Tensor[][] = [];
          for (let n = 0; n < b; n++) {
            preds.push([]);
            targets.push([]);
            for (let r = 0; r + k < rows; r++) {
              for (let q = 0; q < cols; q++) {
                const cv = tf.reshape(tf.slice(c, [n, r, q, 0], [1, 1, 1, -1]), [1, -1]);
                preds[n]?.push(w.apply(cv) as tf.Tensor);
                targets[n]?.push(tf.reshape(tf.slice(z, [n, r + k, q, 0], [1, 1, 1, -1]), [1, -1]));
              }
            }
          }
          // [B, S, F]: position s of image n is (row, col) in reading order.
          const stackRows = (t: tf.Tensor[][]): tf.Tensor3D =>
            tf.stack(t.map((row) => tf.concat(row, 0))) as tf.Tensor3D;
          return cpcLoss(stackRows(preds), stackRows(targets), { negatives });
        });
        return tf.div(tf.addN(terms), terms.length);
      });
      const { loss } = await method.trainStep({ images: batch.images, views });
      expectClose(loss, expected, tol * 10, `${negatives} loss`);
      tf.dispose([batch.images, ...views, expected]);
      done();
    }
  });

  it('the context is autoregressive: rows below i do not change the context at rows <= i', () => {
    const { method, done } = build();
    const a = images(3, 5);
    // 4 px patches at stride 2: row 2 covers pixels 4..7, rows 0 and 1 end at pixel 5.
    const b = tf.tidy(() => {
      const top = tf.slice(a, [0, 0, 0, 0], [-1, 6, -1, -1]);
      return tf.concat([top, tf.sub(1, tf.slice(a, [0, 6, 0, 0], [-1, 2, -1, -1]))], 1);
    }) as tf.Tensor4D;
    const [za, ca] = method.encode(a);
    const [zb, cb] = method.encode(b);
    expect(ca.shape).toEqual([3, 3, 3, 6]);
    const rowsOf = (t: tf.Tensor4D, start: number, n: number): tf.Tensor =>
      tf.slice(t, [0, start, 0, 0], [-1, n, -1, -1]);
    tf.tidy(() => {
      expectClose(rowsOf(cb, 0, 2), rowsOf(ca, 0, 2), tol, 'context rows 0-1');
      expectClose(rowsOf(zb, 0, 2), rowsOf(za, 0, 2), tol, 'latents rows 0-1');
      // The change does reach row 2 (so the check above could fail).
      const moved = tf.max(tf.abs(tf.sub(rowsOf(cb, 2, 1), rowsOf(ca, 2, 1)))).dataSync()[0];
      expect(moved).toBeGreaterThan(1e-3);
    });
    // The same on the context network alone, with latents changed from row 1 on.
    tf.tidy(() => {
      const z = tf.randomNormal([2, 3, 3, 8], 0, 1, 'float32', 7) as tf.Tensor4D;
      const z2 = tf.concat(
        [
          tf.slice(z, [0, 0, 0, 0], [-1, 1, -1, -1]),
          tf.randomNormal([2, 2, 3, 8], 0, 1, 'float32', 8),
        ],
        1,
      ) as tf.Tensor4D;
      const ctx = (x: tf.Tensor4D): tf.Tensor4D =>
        (method as unknown as { contextOf(z: tf.Tensor4D, t: boolean): tf.Tensor4D }).contextOf(
          x,
          false,
        );
      const [c1, c2] = [ctx(z), ctx(z2)];
      expectClose(rowsOf(c2, 0, 1), rowsOf(c1, 0, 1), tol, 'context row 0');
      expect(
        tf.max(tf.abs(tf.sub(rowsOf(c2, 1, 1), rowsOf(c1, 1, 1)))).dataSync()[0],
      ).toBeGreaterThan(1e-3);
      // ... and each column is its own sequence: column 0 of z alone gives column 0 of c.
      const col = tf.slice(z, [0, 0, 0, 0], [-1, -1, 1, -1]) as tf.Tensor4D;
      expectClose(ctx(col), tf.slice(c1, [0, 0, 0, 0], [-1, -1, 1, -1]), tol, 'column 0');
    });
    tf.dispose([a, b, za, ca, zb, cb]);
    done();
  });

  it('temperature, prediction steps and negatives reach the loss', async () => {
    const lossWith = async (options: Partial<CpcMethodOptions>): Promise<number> => {
      const { method, done } = build(options);
      const batch = { images: images(BATCH, 9) };
      const views = method.makeViews(batch.images, 1);
      const { loss } = await method.trainStep({ images: batch.images, views });
      tf.dispose([batch.images, ...views]);
      done();
      return loss;
    };
    const base = await lossWith({});
    expect(await lossWith({})).toBe(base);
    expect(await lossWith({ temperature: 0.5 })).not.toBe(base);
    expect(await lossWith({ predictionSteps: 1 })).not.toBe(base);
    expect(await lossWith({ negatives: 'sameStep' })).not.toBe(base);
    expect(await lossWith({ contextDim: 5 })).not.toBe(base);
  });

  it('embed: the context (or latents) averaged over the grid, in inference mode, [N, featureDim]', () => {
    const ctx = build();
    const lat = build({ embedding: 'latent' });
    expect(ctx.method.featureDim).toBe(6);
    expect(lat.method.featureDim).toBe(8);
    const x = images(5, 11);
    const [f1, f2, f3] = [
      ctx.method.embed(x),
      ctx.method.embed(x, { batchSize: 2 }),
      lat.method.embed(x, { batchSize: 3 }),
    ];
    expect(f1.shape).toEqual([5, 6]);
    expect(f3.shape).toEqual([5, 8]);
    expectClose(f2, f1, tol, 'batched embed');
    tf.tidy(() => {
      // The latent embedding by hand: each 4 px patch through the encoder, then the mean.
      const patches: tf.Tensor[] = [];
      for (let i = 0; i < 3; i++)
        for (let j = 0; j < 3; j++)
          patches.push(
            lat.encoder.apply(tf.slice(x, [0, 2 * i, 2 * j, 0], [-1, 4, 4, -1]), {
              training: false,
            }) as tf.Tensor,
          );
      expectClose(f3, tf.div(tf.addN(patches), 9), tol, 'latent embedding');
      const [, c] = ctx.method.encode(x);
      expectClose(f1, tf.mean(c, [1, 2]), tol, 'context embedding');
    });
    tf.dispose([x, f1, f2, f3]);
    ctx.done();
    lat.done();
  });

  it('default grids: 2 px patches (7 x 7) on 8 px, 8 px at stride 4 (6 x 6) on 28 px; Adam 1e-3 under 96 px, 2e-4 from 96', async () => {
    const encoder = encoderOf();
    const method = cpc({ encoder, contextDim: 4 });
    const x8 = images(2, 12);
    const x28 = randomImages([1, 28, 28, 1], 13);
    const [z8, c8] = method.encode(x8);
    const [z28, c28] = method.encode(x28);
    expect(z8.shape).toEqual([2, 7, 7, 8]);
    expect(z28.shape).toEqual([1, 6, 6, 8]);
    expect(c28.shape).toEqual([1, 6, 6, 4]);
    const result = await method.trainStep({ images: x8 });
    // A run of unknown length: the peak after no warm-up in steps; under 96 px Adam 1e-3.
    expect(result.metrics.learningRate).toBeCloseTo(1e-3, 12);
    // From 96 px the paper's 2e-4: 24 px patches, 7 x 7 on 96 px.
    const large = cpc({ encoder, contextDim: 4 });
    const x96 = randomImages([2, 96, 96, 1], 16);
    const big = await large.trainStep({ images: x96 });
    expect(big.skipped).toBe(false);
    expect(big.metrics.learningRate).toBeCloseTo(2e-4, 12);
    tf.dispose([x8, x28, x96, z8, c8, z28, c28]);
    method.dispose();
    large.dispose();
    encoder.dispose();
  });

  it('an encoder built for the patch: patchSize defaults to its input, views keep the image size', async () => {
    const encoder = smallConvNet({ inputShape: [4, 4, 1], widths: [4, 8], seed: 1 });
    const method = cpc({ encoder, contextDim: 6, predictionSteps: 2, patchStride: 2 });
    const x = images(BATCH, 15);
    const views = method.makeViews(x, 1);
    expect(views[0]?.shape).toEqual([BATCH, SIDE, SIDE, 1]);
    const result = await method.trainStep({ images: x });
    expect(result.skipped).toBe(false);
    const [z, c] = method.encode(x);
    expect(z.shape).toEqual([BATCH, 3, 3, 8]);
    expect(c.shape).toEqual([BATCH, 3, 3, 6]);
    tf.dispose([x, ...views, z, c]);
    method.dispose();
    encoder.dispose();
  });

  it('sequence mode: windows along T, a GRU over time, every weight trains', async () => {
    const encoder = encoderOf(2);
    const method = cpc({
      encoder,
      input: 'sequence',
      patchSize: 4,
      patchStride: 2,
      contextDim: 5,
      predictionSteps: 3,
      seed: 1,
    });
    // [B, T, 1, C]: T = 24 gives 11 windows of 4 samples.
    const seq = randomImages([4, 24, 1, 1], 14);
    const [z, c] = method.encode(seq);
    expect(z.shape).toEqual([4, 11, 1, 8]);
    expect(c.shape).toEqual([4, 11, 1, 5]);
    const vars = trainable(method);
    const before = vars.map(values);
    const losses = [(await method.trainStep({ images: seq })).loss];
    const count = tf.memory().numTensors; // after the optimiser's slots
    for (let i = 0; i < 5; i++) losses.push((await method.trainStep({ images: seq })).loss);
    expect(tf.memory().numTensors).toBe(count);
    expect(losses.every(Number.isFinite)).toBe(true);
    const unchanged = vars.filter((v, i) => values(v).join() === before[i]?.join());
    expect(unchanged.map((v) => v.name)).toEqual([]);
    expect(
      await method.trainStep({ images: seq, views: [seq] }).then((r) => r.loss),
      'your own views[0] is the sequence',
    ).toBeCloseTo((await method.trainStep({ images: seq })).loss, 0);
    // Causal along T: samples 20-23 lie in windows 9 and 10 only ([2w, 2w + 4)).
    const changed = tf.tidy(() =>
      tf.concat([tf.slice(seq, [0, 0, 0, 0], [-1, 20, -1, -1]), tf.zeros([4, 4, 1, 1])], 1),
    ) as tf.Tensor4D;
    const [z2, c2] = method.encode(changed);
    const [z1, c1] = method.encode(seq);
    tf.tidy(() =>
      expectClose(
        tf.slice(c2, [0, 0, 0, 0], [-1, 9, -1, -1]),
        tf.slice(c1, [0, 0, 0, 0], [-1, 9, -1, -1]),
        tol,
        'context before the change',
      ),
    );
    const moved = tf.tidy(
      () =>
        tf
          .max(
            tf.abs(
              tf.sub(
                tf.slice(c2, [0, 9, 0, 0], [-1, 1, -1, -1]),
                tf.slice(c1, [0, 9, 0, 0], [-1, 1, -1, -1]),
              ),
            ),
          )
          .dataSync()[0],
    );
    expect(moved).toBeGreaterThan(1e-3);
    const features = method.embed(seq);
    expect(features.shape).toEqual([4, 5]);
    tf.dispose([seq, z, c, changed, z1, c1, z2, c2, features]);
    method.dispose();
    encoder.dispose();
  });

  if (backend === 'cpu') {
    it('save after 2 steps, load into a fresh preset with other initial weights, continue: bit-identical', async () => {
      const a = build({ totalSteps: 10 }, 1);
      const batches = [0, 1, 2, 3, 4].map((i) => ({ images: images(BATCH, 20 + i) }));
      for (const batch of batches.slice(0, 2)) await a.method.trainStep(batch);
      const bytes = await a.method.save();
      const b = build({ totalSteps: 10, seed: 99, headSeed: 7 }, 2);
      expect(values(trainable(b.method)[0] as tf.Variable)).not.toEqual(
        values(trainable(a.method)[0] as tf.Variable),
      );
      await b.method.load(bytes);
      expect(b.method.step).toBe(2);
      for (const batch of batches.slice(2)) {
        const [ra, rb] = [await a.method.trainStep(batch), await b.method.trainStep(batch)];
        expect(rb.loss).toBe(ra.loss);
        expect(rb.metrics.learningRate).toBe(ra.metrics.learningRate);
      }
      const [wa, wb] = [await allWeights(a.method), await allWeights(b.method)];
      expect(Object.keys(wb)).toEqual(Object.keys(wa));
      expect(Object.keys(wa).some((k) => k.startsWith('networks.predictor2.'))).toBe(true);
      const differing = Object.keys(wa).filter((k) => wa[k]?.join() !== wb[k]?.join());
      expect(differing).toEqual([]);
      // A checkpoint of another configuration is refused.
      const c = build({ predictionSteps: 1 });
      await expect(c.method.load(bytes)).rejects.toThrow(ContrastiveError);
      tf.dispose(batches.map((x) => x.images));
      a.done();
      b.done();
      c.done();
    });
  }

  it('bad options and inputs raise ContrastiveError naming the argument', async () => {
    const encoder = encoderOf();
    const bad: [Partial<CpcMethodOptions>, RegExp][] = [
      [{ input: 'audio' as never }, /options\.input/],
      [{ patchSize: 0 }, /options\.patchSize/],
      [{ patchStride: 1.5 }, /options\.patchStride/],
      [{ contextDim: 0 }, /options\.contextDim/],
      [{ predictionSteps: 0 }, /options\.predictionSteps/],
      [{ negatives: 'queue' as never }, /options\.negatives/],
      [{ temperature: 0 }, /options\.temperature/],
      [{ embedding: 'projection' as never }, /options\.embedding/],
      [{ headSeed: 0.5 }, /options\.headSeed/],
    ];
    for (const [options, pattern] of bad) {
      expect(() => cpc({ encoder, ...TINY, ...options }), pattern.source).toThrow(ContrastiveError);
      expect(() => cpc({ encoder, ...TINY, ...options })).toThrow(pattern);
    }
    // An encoder with a fixed input that is not the patch size.
    const fixed = smallConvNet({ inputShape: [5, 5, 1], widths: [4], seed: 1 });
    expect(() => cpc({ encoder: fixed, ...TINY })).toThrow(/options\.patchSize/);
    fixed.dispose();
    const x = images(4, 30);
    const run = async (options: Partial<CpcMethodOptions>, e = encoder): Promise<unknown> => {
      const method = cpc({ encoder: e, ...TINY, ...options });
      try {
        return await method.trainStep({ images: x });
      } finally {
        method.dispose();
      }
    };
    // A 3-row grid cannot predict 3 rows ahead; a 9 px patch does not fit 8 px images.
    await expect(run({ predictionSteps: 3 })).rejects.toThrow(/options\.predictionSteps/);
    await expect(run({ patchSize: 9 })).rejects.toThrow(/options\.patchSize/);
    const colour = encoderOf(1, 3);
    await expect(run({}, colour)).rejects.toThrow(/options\.encoder/);
    colour.dispose();
    const method = cpc({ encoder, ...TINY });
    const rank3 = tf.zeros([2, 8, 8]);
    expect(() => method.embed(rank3 as never)).toThrow(/images/);
    rank3.dispose();
    method.dispose();
    expect(() => method.embed(x)).toThrow(/disposed/);
    x.dispose();
    encoder.dispose();
  });
});
