/**
 * What is particular to SwAV and DINO (the checks every preset shares, including 100 steps at a
 * constant tensor count and bit-identical resume, are in presets.test.ts): SwAV's prototypes are
 * frozen, then trained, and unit-norm after every step; its queue fills only from its start and
 * joins the loss only once full; DINO's last layer is frozen in the first epoch; the teacher moves
 * only by the EMA; the center follows the teacher's outputs after the loss; the schedules of
 * the teacher temperature and the weight decay; gradient clipping; the collapse warning.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { smallConvNet, tinyVit } from '../../src/layers/index.js';
import { dino, mocoV3, swav, type DINO, type SwAV } from '../../src/methods/index.js';
import { describeBackends } from '../support/backends.js';
import { randomImages } from '../support/layers.js';

const SIDE = 8;
const conv = (): tfl.LayersModel =>
  smallConvNet({ inputShape: [SIDE, SIDE, 1], widths: [4, 8], seed: 1 });
const images = (n: number, seed: number): tf.Tensor4D => randomImages([n, SIDE, SIDE, 1], seed);
const values = (t: tf.Tensor): number[] => Array.from(t.dataSync());
const weightsOf = (layer: tfl.layers.Layer): number[][] => layer.getWeights().map(values);
const small = { projectionDim: 8, prototypes: 12, localCrops: 2 } as const;
const tinyDino = { outDim: 16, hiddenDim: 16, bottleneckDim: 8, localCrops: 2 } as const;

function columnNorms(kernel: tf.Tensor): number[] {
  return tf.tidy(() => values(tf.sqrt(tf.sum(tf.square(kernel), 0))));
}

describeBackends('swav and dino presets', ({ tol }) => {
  it('swav: prototypes frozen for freezePrototypesSteps, then trained; unit-norm after every step', async () => {
    const encoder = conv();
    const method: SwAV = swav({ encoder, ...small, freezePrototypesSteps: 2, seed: 1 });
    const batch = { images: images(6, 1) };
    const kernel = (): tf.Tensor => method.prototypeLayer.getWeights()[0] as tf.Tensor;
    for (const n of columnNorms(kernel())) expect(n).toBeCloseTo(1, 5);
    const seen: number[][] = [values(kernel())];
    for (let i = 0; i < 4; i++) {
      await method.trainStep(batch);
      seen.push(values(kernel()));
      for (const n of columnNorms(kernel())) expect(n).toBeCloseTo(1, 5);
    }
    // Steps 0 and 1 frozen (the re-normalisation of unit columns moves them by rounding only);
    // steps 2 and 3 train the prototypes.
    const moved = (a: number[], b: number[]): number =>
      Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
    expect(moved(seen[1]!, seen[0]!)).toBeLessThan(1e-6);
    expect(moved(seen[2]!, seen[0]!)).toBeLessThan(1e-6);
    expect(moved(seen[3]!, seen[2]!)).toBeGreaterThan(1e-4);
    expect(moved(seen[4]!, seen[3]!)).toBeGreaterThan(1e-4);
    batch.images.dispose();
    method.dispose();
    encoder.dispose();
  });

  it('swav: the queue fills from queueStart and joins the loss only once full', async () => {
    const encoderA = conv();
    const encoderB = conv();
    const queued = swav({
      encoder: encoderA,
      ...small,
      queueSize: 12,
      queueStart: { step: 1 },
      seed: 2,
    });
    const plain = swav({ encoder: encoderB, ...small, seed: 2 });
    const x = images(6, 2);
    const views = queued.makeViews(x, 5);
    const counts: number[] = [];
    const same: boolean[] = [];
    for (let i = 0; i < 5; i++) {
      const a = await queued.trainStep({ images: x, views });
      const b = await plain.trainStep({ images: x, views });
      counts.push(queued.queues[0]?.count ?? -1);
      same.push(a.loss === b.loss);
      expect(a.metrics['queueFill']).toBe(counts[i]! / 12);
    }
    // Step 0: before the start; steps 1 and 2 fill 6 + 6; from step 3 the full queue is used.
    expect(counts).toEqual([0, 6, 12, 12, 12]);
    expect(same).toEqual([true, true, true, false, false]);
    tf.dispose([x, ...views]);
    queued.dispose();
    plain.dispose();
    encoderA.dispose();
    encoderB.dispose();
  });

  it('swav: an epoch-based queue start waits for that epoch in fit', async () => {
    const encoder = conv();
    const method = swav({ encoder, ...small, queueSize: 12, queueStart: { epoch: 1 } });
    const x = images(12, 3);
    const counts: number[] = [];
    await method.fit(x, {
      epochs: 2,
      batchSize: 6,
      progress: false,
      callbacks: { onBatchEnd: () => void counts.push(method.queues[0]?.count ?? -1) },
    });
    expect(counts).toEqual([0, 0, 6, 12]);
    x.dispose();
    method.dispose();
    encoder.dispose();
  });

  it('swav: prototypeUsage is the share of min(B, K) prototypes the codes use', async () => {
    const encoder = conv();
    const method = swav({ encoder, ...small, prototypes: 4 });
    const x = images(6, 4);
    const { metrics } = await method.trainStep({ images: x });
    const usage = metrics['prototypeUsage'] as number;
    // 1 to 4 prototypes of min(6, 4) = 4.
    expect([0.25, 0.5, 0.75, 1]).toContain(usage);
    x.dispose();
    method.dispose();
    encoder.dispose();
  });

  it('dino: the last layer is frozen in the first epoch and trained in the second', async () => {
    const encoder = conv();
    const method: DINO = dino({ encoder, ...tinyDino });
    const x = images(12, 5);
    const snapshots: number[][][] = [weightsOf(method.lastLayer)];
    const trainable: boolean[] = [];
    await method.fit(x, {
      epochs: 2,
      batchSize: 6,
      progress: false,
      callbacks: {
        onBatchEnd: () => {
          snapshots.push(weightsOf(method.lastLayer));
          trainable.push(method.lastLayer.trainable);
        },
      },
    });
    expect(snapshots[1]).toEqual(snapshots[0]);
    expect(snapshots[2]).toEqual(snapshots[0]);
    expect(snapshots[3]).not.toEqual(snapshots[2]);
    expect(snapshots[4]).not.toEqual(snapshots[3]);
    expect(trainable).toEqual([false, false, true, true]);
    x.dispose();
    method.dispose();
    encoder.dispose();
  });

  it('dino: epochs count across a resumed run, and from stepsPerEpoch in a loop of trainStep', async () => {
    const x = images(12, 9);
    const encoderA = conv();
    const first = dino({ encoder: encoderA, ...tinyDino, seed: 4 });
    await first.fit(x, { epochs: 1, batchSize: 6, progress: false });
    expect(first.lastLayer.trainable).toBe(false); // epoch 0 only so far
    const bytes = await first.save();
    const encoderB = conv();
    const resumed = dino({ encoder: encoderB, ...tinyDino, seed: 4 });
    await resumed.load(bytes);
    const trainable: boolean[] = [];
    await resumed.fit(x, {
      epochs: 1,
      batchSize: 6,
      progress: false,
      callbacks: { onBatchEnd: () => void trainable.push(resumed.lastLayer.trainable) },
    });
    expect(trainable).toEqual([true, true]); // steps 2 and 3: the preset's epoch 1
    const encoderC = conv();
    const looped = dino({ encoder: encoderC, ...tinyDino, stepsPerEpoch: 2 });
    const states: boolean[] = [];
    for (let i = 0; i < 3; i++) {
      await looped.trainStep({ images: x });
      states.push(looped.lastLayer.trainable);
    }
    expect(states).toEqual([false, false, true]);
    expect(() => dino({ encoder: encoderC, stepsPerEpoch: 0 })).toThrow(/options\.stepsPerEpoch/);
    x.dispose();
    [first, resumed, looped].forEach((m) => m.dispose());
    [encoderA, encoderB, encoderC].forEach((e) => e.dispose());
  });

  it('dino: the teacher moves only by the EMA of the student, the center by the teacher outputs', async () => {
    const encoder = conv();
    const method = dino({ encoder, ...tinyDino, momentum: 0.9, totalSteps: 10 });
    const x = images(6, 6);
    const views = method.makeViews(x, 3);
    const teacherBefore = method.teacherHead.getWeights().map(values);
    const centerBefore = values(method.center);
    // The teacher's outputs of the global views before the step, as the step computes them.
    const expectedCenter = tf.tidy(() => {
      const t = method.teacherHead.apply(
        method.teacherEncoder.apply(tf.concat(views.slice(0, 2), 0), { training: true }),
        { training: true },
      ) as tf.Tensor2D;
      return values(tf.add(tf.mul(tf.tensor1d(centerBefore), 0.9), tf.mul(tf.mean(t, 0), 0.1)));
    });
    const { metrics } = await method.trainStep({ images: x, views });
    const m = metrics.momentum as number;
    expect(m).toBeCloseTo(0.9, 10); // the cosine schedule at step 0
    const student = method.head.getWeights().map(values);
    const teacher = method.teacherHead.getWeights().map(values);
    teacher.forEach((w, i) => {
      w.forEach((v, j) => {
        const expected = m * teacherBefore[i]![j]! + (1 - m) * student[i]![j]!;
        expect(Math.abs(v - expected)).toBeLessThan(1e-6 + tol * 1e-3);
      });
    });
    values(method.center).forEach((c, j) => {
      expect(Math.abs(c - expectedCenter[j]!)).toBeLessThan(1e-5 + tol * 1e-3);
    });
    tf.dispose([x, ...views]);
    method.dispose();
    encoder.dispose();
  });

  it('dino: teacher temperature 0.04 -> 0.07 over 30% of the run, weight decay 0.04 -> 0.4', async () => {
    const encoder = conv();
    const method = dino({
      encoder,
      ...tinyDino,
      totalSteps: 10,
      freezeLastLayerUntil: { step: 0 },
    });
    const x = images(6, 7);
    const temperatures: number[] = [];
    const decays: number[] = [];
    for (let i = 0; i < 10; i++) {
      const { metrics } = await method.trainStep({ images: x });
      temperatures.push(metrics['teacherTemperature'] as number);
      decays.push(metrics.weightDecay as number);
    }
    temperatures.forEach((t, k) => {
      expect(t).toBeCloseTo(0.04 + 0.03 * Math.min(1, k / 10 / 0.3), 10);
    });
    decays.forEach((wd, k) => {
      expect(wd).toBeCloseTo(0.4 + (0.04 - 0.4) * 0.5 * (1 + Math.cos((Math.PI * k) / 10)), 10);
    });
    expect((method.optimizer as unknown as { weightDecay: number }).weightDecay).toBeCloseTo(
      decays[9]!,
      10,
    );
    // 'adam' is AdamW without decay: the schedule leaves it alone.
    const adam = dino({ encoder, ...tinyDino, optimizer: 'adam', totalSteps: 10 });
    const { metrics } = await adam.trainStep({ images: x });
    expect(metrics.weightDecay).toBeUndefined();
    expect((adam.optimizer as unknown as { weightDecay: number }).weightDecay).toBe(0);
    adam.dispose();
    x.dispose();
    method.dispose();
    encoder.dispose();
  });

  it('dino: gradients clipped per parameter (the released code) or by their global norm', () => {
    const encoder = conv();
    const clip = (mode: 'parameter' | 'global'): number[] => {
      const method = dino({ encoder, ...tinyDino, clipMode: mode });
      const transform = (
        method as unknown as {
          transformGradients(g: tf.NamedTensorMap): tf.NamedTensorMap;
        }
      ).transformGradients.bind(method);
      const grads = { a: tf.tensor1d([6, 0]), b: tf.tensor1d([0, 1]) };
      const out = transform(grads);
      const norms = Object.values(out).map((t) => tf.tidy(() => tf.norm(t).dataSync()[0]!));
      tf.dispose([...Object.values(grads), ...Object.values(out)]);
      method.dispose();
      return norms;
    };
    const perParameter = clip('parameter');
    expect(perParameter[0]).toBeCloseTo(3, 4);
    expect(perParameter[1]).toBeCloseTo(1, 5);
    const global = clip('global');
    const scale = 3 / Math.sqrt(37);
    expect(global[0]).toBeCloseTo(6 * scale, 4);
    expect(global[1]).toBeCloseTo(scale, 4);
    encoder.dispose();
  });

  it('dino: fit warns once when the teacher has collapsed for 20 steps in a row', async () => {
    const encoder = conv();
    // A teacher temperature of 100 makes its softmax uniform: entropy at log K.
    const method = dino({
      encoder,
      ...tinyDino,
      teacherTemperature: 100,
      warmupTeacherTemperature: 100,
    });
    const x = images(6, 8);
    const warnings: string[] = [];
    await method.fit([x], {
      epochs: 25,
      progress: false,
      onWarning: (message) => warnings.push(message),
    });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/dino\.fit: the teacher has collapsed \(uniform/);
    x.dispose();
    method.dispose();
    encoder.dispose();
  });

  it('dino trains a tinyVit patch projection, which MoCo v3 keeps frozen', () => {
    const vit = (): tfl.LayersModel =>
      tinyVit({ inputShape: [8, 8, 1], patchSize: 4, dim: 8, depth: 1, heads: 2, seed: 1 });
    const a = vit();
    const isTrained = (m: tfl.LayersModel): boolean =>
      m.trainableWeights.some((w) => w.originalName.startsWith('patch_projection'));
    expect(isTrained(a)).toBe(false);
    const withDino = dino({ encoder: a, ...tinyDino });
    expect(isTrained(a)).toBe(true);
    const b = vit();
    const withMoco = mocoV3({ encoder: b, projectionDim: 8, hiddenDim: 16 });
    expect(isTrained(b)).toBe(false);
    withDino.dispose();
    withMoco.dispose();
    a.dispose();
    b.dispose();
  });

  it('dino and swav train a tinyVit (multi-crop views of two sizes through one ViT)', async () => {
    const x = images(6, 10);
    for (const build of [
      (e: tfl.LayersModel) => dino({ encoder: e, ...tinyDino, freezeLastLayerUntil: { step: 0 } }),
      (e: tfl.LayersModel) => swav({ encoder: e, ...small, freezePrototypesSteps: 0 }),
    ]) {
      const encoder = tinyVit({
        inputShape: [8, 8, 1],
        patchSize: 2,
        dim: 8,
        depth: 1,
        heads: 2,
        seed: 1,
      });
      const method = build(encoder);
      const before = encoder.trainableWeights.map((w) => values(w.read()));
      const result = await method.trainStep({ images: x });
      expect(result.skipped).toBe(false);
      expect(Number.isFinite(result.loss)).toBe(true);
      const after = encoder.trainableWeights.map((w) => values(w.read()));
      expect(after.every((w, i) => w.join() !== before[i]!.join())).toBe(true);
      method.dispose();
      encoder.dispose();
    }
    x.dispose();
  });

  it('bad options raise ContrastiveError naming the argument', () => {
    const encoder = conv();
    expect(() => swav({ encoder, queueStart: { epochs: 2 } as never })).toThrow(
      /options\.queueStart/,
    );
    expect(() => swav({ encoder, prototypes: 1 })).toThrow(/options\.prototypes/);
    expect(() => swav({ encoder, epsilon: 0 })).toThrow(/options\.epsilon/);
    expect(() => dino({ encoder, clipMode: 'norm' as never })).toThrow(/options\.clipMode/);
    expect(() => dino({ encoder, ...tinyDino, teacherTemperature: -1 })).toThrow(
      /options\.teacherTemperature/,
    );
    expect(() => dino({ encoder, ...tinyDino, freezeLastLayerUntil: { step: -1 } })).toThrow(
      /options\.freezeLastLayerUntil\.step/,
    );
    encoder.dispose();
  });
});
