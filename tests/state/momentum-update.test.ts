/** emaUpdate, cloneAsMomentumEncoder and the schedules, against scripts/fixtures/momentum.py. */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import {
  ContrastiveError,
  cloneAsMomentumEncoder,
  cosineMomentum,
  cosineSchedule,
  emaUpdate,
  linearWarmup,
  warmupCosineLearningRate,
} from '../../src/index.js';
import { BatchNorm, registerLayers } from '../../src/layers/index.js';
import { describeBackends, expectClose } from '../support/backends.js';

const ref = JSON.parse(
  readFileSync(resolve(import.meta.dirname, '../fixtures/momentum.json'), 'utf8'),
) as {
  ema: {
    shapes: number[][];
    momentum: number;
    start: number[][];
    online_per_step: number[][][];
    after: number[][];
  };
  cosine_momentum: { base: number; total: number; values: Record<string, number> };
  warmup_cosine: { base: number; warmup: number; total: number; values: Record<string, number> };
};

registerLayers(); // the library's BatchNorm, rebuilt from its config by cloneAsMomentumEncoder

function model(seed: number): tfl.Sequential {
  return tfl.sequential({
    layers: [
      tfl.layers.dense({
        inputShape: [4],
        units: 6,
        kernelInitializer: tfl.initializers.glorotUniform({ seed }),
      }),
      tfl.layers.batchNormalization(),
      tfl.layers.dense({
        units: 3,
        kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }),
      }),
    ],
  });
}

async function values(ws: readonly tfl.LayerVariable[]): Promise<number[][]> {
  return Promise.all(ws.map(async (w) => Array.from(await w.read().data())));
}

describeBackends('emaUpdate and cloneAsMomentumEncoder', ({ tol }) => {
  it('matches the reference EMA over 4 steps (variables)', async () => {
    const target = tf.tidy(() =>
      ref.ema.start.map((v, i) => tf.variable(tf.tensor(v, ref.ema.shapes[i]))),
    );
    for (const step of ref.ema.online_per_step) {
      const online = tf.tidy(() =>
        step.map((v, i) => tf.variable(tf.tensor(v, ref.ema.shapes[i]))),
      );
      emaUpdate(target, online, ref.ema.momentum);
      tf.dispose(online);
    }
    for (const [i, t] of target.entries())
      expectClose(await t.data(), ref.ema.after[i]!, tol, `weight ${i}`);
    tf.dispose(target);
  });

  it('clones a model: same outputs, not trainable, a separate copy', async () => {
    const online = model(1);
    const target = cloneAsMomentumEncoder(online);
    expect(target.trainable).toBe(false);
    expect(target.trainableWeights.length).toBe(0);
    const x = tf.randomNormal([5, 4], 0, 1, 'float32', 2);
    const [a, b] = [online.predict(x) as tf.Tensor, target.predict(x) as tf.Tensor];
    expectClose(await a.data(), await b.data(), 0);
    const kernel = online.layers[0]!.getWeights()[0]!;
    const bumped = tf.add(kernel, 1);
    online.layers[0]!.setWeights([bumped, online.layers[0]!.getWeights()[1]!]);
    const c = target.predict(x) as tf.Tensor;
    expectClose(await c.data(), await b.data(), 0);
    tf.dispose([x, a, b, c, bumped]);
    online.dispose();
    target.dispose();
  });

  it('moves trainable weights by m, and batch-norm statistics by the policy', async () => {
    const online = model(3);
    const stats = (m: tfl.Sequential): tfl.LayerVariable[] =>
      m.layers[1]!.weights.filter((w) => w.name.includes('moving'));
    const kernel = (m: tfl.Sequential): tfl.LayerVariable => m.layers[2]!.weights[0]!;
    for (const policy of ['ignore', 'copy', 'ema'] as const) {
      const target = cloneAsMomentumEncoder(online);
      // The online model moves on: a kernel and the batch-norm statistics change.
      const bumps = [...stats(online), kernel(online)].map((w) => tf.add(w.read(), 2));
      [...stats(online), kernel(online)].forEach((w, i) => w.write(bumps[i]!));
      const [before] = [await values(stats(target))];
      const kBefore = Array.from(await kernel(target).read().data());
      emaUpdate(target, online, 0.5, { buffers: policy });
      const kOnline = Array.from(await kernel(online).read().data());
      expectClose(
        Array.from(await kernel(target).read().data()),
        kBefore.map((v, j) => 0.5 * v + 0.5 * kOnline[j]!),
        tol,
        `${policy}: kernel`,
      );
      const after = await values(stats(target));
      const onl = await values(stats(online));
      after.forEach((v, i) => {
        const expected =
          policy === 'ignore'
            ? before[i]!
            : policy === 'copy'
              ? onl[i]!
              : before[i]!.map((x, j) => 0.5 * x + 0.5 * onl[i]![j]!);
        expectClose(v, expected, tol, `${policy}: statistic ${i}`);
      });
      tf.dispose(bumps);
      target.dispose();
    }
    online.dispose();
  });

  it('averages frozen parameters (a frozen layer, a weight frozen on its own) like PyTorch', async () => {
    const online = model(11);
    const target = cloneAsMomentumEncoder(online);
    const find = (l: tfl.layers.Layer, part: string): tfl.LayerVariable =>
      l.weights.find((w) => w.name.includes(part))!;
    const frozenOf = (m: tfl.Sequential): tfl.LayerVariable[] => [
      find(m.layers[0]!, 'kernel'),
      find(m.layers[0]!, 'bias'),
      find(m.layers[2]!, 'kernel'),
    ];
    // Layer 0 frozen as a whole (like tinyVit's patch projection), layer 2's kernel frozen alone,
    // which moves it behind the bias in the layer's own `weights` list.
    online.layers[0]!.trainable = false;
    find(online.layers[2]!, 'kernel').trainable = false;
    expect(online.layers[2]!.weights.map((w) => (w.name.includes('kernel') ? 'k' : 'b'))).toEqual([
      'b',
      'k',
    ]);
    const bumps = frozenOf(online).map((w) => tf.add(w.read(), 1));
    frozenOf(online).forEach((w, i) => w.write(bumps[i]!));
    const before = await values(frozenOf(target));
    emaUpdate(target, online, 0.75);
    const after = await values(frozenOf(target));
    const onl = await values(frozenOf(online));
    after.forEach((v, i) => {
      expectClose(
        v,
        before[i]!.map((x, j) => 0.75 * x + 0.25 * onl[i]![j]!),
        tol,
        `weight ${i}`,
      );
    });
    tf.dispose(bumps);
    online.dispose();
    target.dispose();
  });

  it("buffers are the weights a layer creates non-trainable (tfjs's and the library's batch norm), frozen or not", async () => {
    const online = tfl.sequential({
      layers: [
        tfl.layers.dense({ inputShape: [4], units: 5 }),
        new BatchNorm({}),
        tfl.layers.batchNormalization(),
      ],
    });
    online.layers[2]!.trainable = false; // a frozen batch norm: gamma, beta still parameters
    const target = cloneAsMomentumEncoder(online);
    const all = online.layers.flatMap((l) => l.weights);
    const bumps = all.map((w) => tf.add(w.read(), 3));
    all.forEach((w, i) => w.write(bumps[i]!));
    const names = (m: tfl.Sequential): string[] =>
      m.layers.flatMap((l) => l.weights.map((w) => w.name));
    const isStat = (n: string): boolean => /moving_(mean|variance)/.test(n);
    expect(names(online).filter(isStat)).toHaveLength(4);
    const before = await values(target.layers.flatMap((l) => l.weights));
    emaUpdate(target, online, 0.5); // buffers: 'ignore'
    const after = await values(target.layers.flatMap((l) => l.weights));
    const onl = await values(all);
    names(online).forEach((n, i) => {
      const expected = isStat(n)
        ? before[i]!
        : before[i]!.map((x, j) => 0.5 * x + 0.5 * onl[i]![j]!);
      expectClose(after[i]!, expected, tol, n);
    });
    emaUpdate(target, online, 0.5, { buffers: 'copy' });
    const copied = await values(target.layers.flatMap((l) => l.weights));
    names(online).forEach((n, i) => {
      if (isStat(n)) expectClose(copied[i]!, onl[i]!, tol, `copy ${n}`);
    });
    tf.dispose(bumps);
    online.dispose();
    target.dispose();
  });

  it('plain variables are all parameters, trainable or not', async () => {
    const t = tf.tidy(() => [tf.variable(tf.zeros([2]), false)]);
    const o = tf.tidy(() => [tf.variable(tf.ones([2]), false)]);
    emaUpdate(t, o, 0.25);
    expectClose(await t[0]!.data(), [0.75, 0.75], tol);
    tf.dispose([...t, ...o]);
  });

  it('throws, naming the weight, on a target it cannot write, before writing anything', async () => {
    const first = tf.tidy(() => tf.variable(tf.zeros([2]), true, 'first'));
    const plain = tf.zeros([3]);
    const online = tf.tidy(() => [tf.variable(tf.ones([2])), tf.variable(tf.ones([3]))]);
    expect(() => {
      emaUpdate([first, plain] as never, online, 0.5);
    }).toThrow(
      "emaUpdate: argument 'target weight 1 (unnamed)' must be a writable weight (a tfjs-layers LayerVariable or a tf.Variable), but received a float32 tensor of shape [3].",
    );
    expect(await first.data()).toEqual(new Float32Array([0, 0]));
    tf.dispose([first, plain, ...online]);
  });

  it('momentum 1 keeps the target, 0 copies; no tensor leaks over 50 updates', async () => {
    const online = model(5);
    const target = cloneAsMomentumEncoder(online);
    const moving = model(7);
    const before = await values(target.weights);
    emaUpdate(target, moving, 1);
    expect(await values(target.weights)).toEqual(before);
    const count = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) emaUpdate(target, moving, 0.9, { buffers: 'ema' });
    expect(tf.memory().numTensors).toBe(count);
    emaUpdate(target, moving, 0, { buffers: 'copy' });
    const byName = async (m: tfl.Sequential): Promise<number[][]> =>
      values(m.layers.flatMap((l) => l.weights));
    expect(await byName(target)).toEqual(await byName(moving));
    [online, target, moving].forEach((m) => {
      m.dispose();
    });
  });

  it('rejects mismatched architectures and bad momenta', () => {
    const a = tf.tidy(() => [tf.variable(tf.zeros([2, 3]))]);
    const b = tf.tidy(() => [tf.variable(tf.zeros([3, 2]))]);
    expect(() => {
      emaUpdate(a, b, 0.9);
    }).toThrow("emaUpdate: argument 'online weight 0");
    expect(() => {
      emaUpdate(a, [...b, ...b], 0.9);
    }).toThrow("must be the same architecture as 'target' (1 weights)");
    expect(() => {
      emaUpdate(a, a, 1.5);
    }).toThrow("emaUpdate: argument 'momentum' must be a finite number >= 0 and <= 1");
    expect(() => {
      emaUpdate(a, a, 0.5, { buffers: 'keep' as 'copy' });
    }).toThrow(ContrastiveError);
    expect(() => cloneAsMomentumEncoder({} as never)).toThrow(
      "cloneAsMomentumEncoder: argument 'model'",
    );
    tf.dispose([...a, ...b]);
  });
});

describeBackends('schedules', () => {
  it('BYOL momentum and warm-up + cosine learning rate match the reference', () => {
    for (const [k, v] of Object.entries(ref.cosine_momentum.values)) {
      expect(
        cosineMomentum(Number(k), ref.cosine_momentum.total, ref.cosine_momentum.base),
      ).toBeCloseTo(v, 12);
    }
    const lr = warmupCosineLearningRate({
      baseLearningRate: ref.warmup_cosine.base,
      warmupSteps: ref.warmup_cosine.warmup,
      totalSteps: ref.warmup_cosine.total,
    });
    for (const [s, v] of Object.entries(ref.warmup_cosine.values))
      expect(lr(Number(s))).toBeCloseTo(v, 12);
  });

  it('closed forms: endpoints, the cosine midpoint is the mean, warm-up is linear', () => {
    expect(cosineSchedule(0, 10, 0.2, 0.02)).toBe(0.2);
    expect(cosineSchedule(10, 10, 0.2, 0.02)).toBeCloseTo(0.02, 15);
    expect(cosineSchedule(5, 10, 0.2, 0.02)).toBeCloseTo(0.11, 15);
    expect(cosineMomentum(0, 1000)).toBe(0.996);
    expect(cosineMomentum(1000, 1000)).toBe(1);
    expect(linearWarmup(0, 4, 1)).toBe(0.25);
    expect(linearWarmup(3, 4, 1)).toBe(1);
    expect(linearWarmup(7, 0, 0.5)).toBe(0.5);
    expect(() => cosineSchedule(-1, 10, 1, 0)).toThrow("cosineSchedule: argument 'step'");
    expect(() =>
      warmupCosineLearningRate({ baseLearningRate: 0.1, warmupSteps: 20, totalSteps: 10 }),
    ).toThrow("argument 'options.warmupSteps'");
  });
});
