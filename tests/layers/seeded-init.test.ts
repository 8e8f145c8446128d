/**
 * Seeded initial weights of every backbone, head and custom layer: the same seed gives the same
 * weights (whatever Math.random does, on every backend), another seed other weights; the seeds
 * are drawn per layer as documented (reproduced here with tfjs's own initialisers); the
 * distributions are the unseeded ones (configs equal but for the seeds; bounds and standard
 * deviations of large layers); no two weights share a stream; seeded models round-trip through
 * their config, cloneAsMomentumEncoder and save/load; bad seeds are the library error.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { ContrastiveError, SeededRandom, selectBackend } from '../../src/core/index.js';
import {
  ClassTokenPosition,
  MultiHeadSelfAttention,
  Prototypes,
  WeightNormDense,
  byolPredictor,
  byolProjector,
  dinoHead,
  mlpHead,
  mocoV2Projector,
  mocoV3Predictor,
  mocoV3Projector,
  registerLayers,
  simclrV1Projector,
  simclrV2Projector,
  simsiamPredictor,
  simsiamProjector,
  smallConvNet,
  smallResNet,
  swavProjectionHead,
  tinyVit,
} from '../../src/layers/index.js';
import { cloneAsMomentumEncoder } from '../../src/state/index.js';
import { backendsUnderTest, describeBackends, expectClose } from '../support/backends.js';
import { randomInput, roundTrip } from '../support/layers.js';

registerLayers();

type Build = (seed?: number) => tfl.LayersModel;
const opt = (seed?: number): { seed?: number } => (seed === undefined ? {} : { seed });
const withInput = (layer: tfl.layers.Layer, shape: number[]): tfl.Sequential =>
  tfl.sequential({ layers: [tfl.layers.inputLayer({ inputShape: shape }), layer] });
const D = { inputDim: 6, hiddenDim: 10, outputDim: 4 };

const builders: [string, Build, number[]][] = [
  [
    'smallConvNet',
    (s) => smallConvNet({ inputShape: [8, 8, 3], widths: [4, 8], ...opt(s) }),
    [8, 8, 3],
  ],
  [
    'smallResNet (ImageNet stem)',
    (s) => smallResNet({ inputShape: [8, 8, 3], widths: [4, 8], cifarStem: false, ...opt(s) }),
    [8, 8, 3],
  ],
  [
    'tinyVit',
    (s) => tinyVit({ inputShape: [8, 8, 3], dim: 8, depth: 2, heads: 2, ...opt(s) }),
    [8, 8, 3],
  ],
  [
    'mlpHead',
    (s) =>
      mlpHead({
        inputDim: 6,
        blocks: [{ units: 10, batchNorm: true, activation: 'relu' }, { units: 4 }],
        ...opt(s),
      }),
    [6],
  ],
  ['simclrV1Projector', (s) => simclrV1Projector({ ...D, ...opt(s) }), [6]],
  ['simclrV2Projector', (s) => simclrV2Projector({ ...D, ...opt(s) }), [6]],
  ['mocoV2Projector', (s) => mocoV2Projector({ ...D, ...opt(s) }), [6]],
  ['mocoV3Projector', (s) => mocoV3Projector({ ...D, layers: 3, ...opt(s) }), [6]],
  ['mocoV3Predictor', (s) => mocoV3Predictor({ ...D, ...opt(s) }), [6]],
  ['byolProjector', (s) => byolProjector({ ...D, ...opt(s) }), [6]],
  ['byolPredictor', (s) => byolPredictor({ ...D, ...opt(s) }), [6]],
  ['simsiamProjector', (s) => simsiamProjector({ ...D, ...opt(s) }), [6]],
  ['simsiamPredictor', (s) => simsiamPredictor({ ...D, ...opt(s) }), [6]],
  ['swavProjectionHead', (s) => swavProjectionHead({ ...D, ...opt(s) }), [6]],
  [
    'dinoHead',
    (s) => dinoHead({ inputDim: 6, hiddenDim: 10, bottleneckDim: 4, outDim: 5, ...opt(s) }),
    [6],
  ],
  ['Prototypes', (s) => withInput(new Prototypes({ count: 5, ...opt(s) }), [6]), [6]],
  [
    'WeightNormDense (trainable gain)',
    (s) => withInput(new WeightNormDense({ units: 5, trainableGain: true, ...opt(s) }), [6]),
    [6],
  ],
  [
    'ClassTokenPosition',
    (s) => withInput(new ClassTokenPosition({ grid: [2, 2], ...opt(s) }), [2, 2, 8]),
    [2, 2, 8],
  ],
  [
    'MultiHeadSelfAttention',
    (s) => withInput(new MultiHeadSelfAttention({ heads: 2, ...opt(s) }), [3, 8]),
    [3, 8],
  ],
];

/** Every weight's values, in the model's order. */
function values(model: tfl.LayersModel): number[][] {
  return model.weights.map((w) => Array.from(w.read().dataSync()));
}

/** Builds, reads the weights, disposes. */
function weightsOf(build: Build, seed?: number): number[][] {
  const model = build(seed);
  const v = values(model);
  model.dispose();
  return v;
}

/** Indices of the weights with random initial values (not all one value: not ones or zeros). */
const randomOnes = (vs: number[][]): number[] =>
  vs.flatMap((v, i) => (new Set(v).size > 1 ? [i] : []));

/** Runs `f` with Math.random replaced by a Lehmer generator started at `state`. */
function underMathRandom<T>(state: number, f: () => T): T {
  const original = Math.random;
  let s = state;
  Math.random = () => {
    s = (s * 48271) % 2147483647;
    return s / 2147483647;
  };
  try {
    return f();
  } finally {
    Math.random = original;
  }
}

/** Pearson correlation of two equally long lists. */
function correlation(a: number[], b: number[]): number {
  const n = a.length;
  const ma = a.reduce((s, x) => s + x, 0) / n;
  const mb = b.reduce((s, x) => s + x, 0) / n;
  let [ab, aa, bb] = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    ab += (a[i]! - ma) * (b[i]! - mb);
    aa += (a[i]! - ma) ** 2;
    bb += (b[i]! - mb) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

function stats(v: ArrayLike<number>): { mean: number; std: number; min: number; max: number } {
  const xs = Array.from(v);
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  const std = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length);
  const min = xs.reduce((m, x) => Math.min(m, x), Infinity);
  const max = xs.reduce((m, x) => Math.max(m, x), -Infinity);
  return { mean, std, min, max };
}

/** A config without names (tfjs's counters) and seeds: what the distributions depend on. */
function withoutSeedsAndNames(config: unknown): unknown {
  if (Array.isArray(config)) return config.map(withoutSeedsAndNames);
  if (config === null || typeof config !== 'object') return config;
  return Object.fromEntries(
    Object.entries(config)
      .filter(([k]) => k !== 'seed' && k !== 'name')
      .map(([k, v]) => [k, withoutSeedsAndNames(v)]),
  );
}

// The std of a normal truncated at two standard deviations (tfjs's truncatedNormal), per unit.
const TRUNCATED_STD = 0.8796256610342398;

describeBackends('seeded initial weights', () => {
  for (const [title, build] of builders) {
    it(`${title}: the same seed gives the same weights, another seed other random weights`, () => {
      const a = weightsOf(build, 7);
      expect(weightsOf(build, 7)).toEqual(a);
      const random = randomOnes(a);
      expect(random.length).toBeGreaterThan(0);
      const other = weightsOf(build, 8);
      for (const i of random) expect(other[i], `weight ${i}`).not.toEqual(a[i]);
    });

    it(`${title}: a seeded build does not depend on Math.random (seeds 7 and 0); an unseeded one does`, () => {
      for (const seed of [7, 0]) {
        const reference = weightsOf(build, seed);
        expect(underMathRandom(1, () => weightsOf(build, seed))).toEqual(reference);
        expect(underMathRandom(2, () => weightsOf(build, seed))).toEqual(reference);
      }
      // The perturbation reaches the unseeded draws: they follow Math.random.
      const u1 = underMathRandom(1, () => weightsOf(build));
      expect(underMathRandom(1, () => weightsOf(build))).toEqual(u1);
      const u2 = underMathRandom(2, () => weightsOf(build));
      for (const i of randomOnes(u1)) expect(u2[i], `weight ${i}`).not.toEqual(u1[i]);
    });

    it(`${title}: the seeded layers are configured as the unseeded ones, but for their seeds`, () => {
      const [seeded, unseeded] = [build(3), build()];
      const configs = (m: tfl.LayersModel): unknown[] =>
        m.layers.map((l) => withoutSeedsAndNames(l.getConfig()));
      expect(configs(seeded)).toEqual(configs(unseeded));
      // Seeded: every layer with a random initialiser records its seed.
      const text = JSON.stringify(seeded.layers.map((l) => l.getConfig()));
      expect(text).toMatch(/"seed":\d+/);
      expect(JSON.stringify(unseeded.layers.map((l) => l.getConfig()))).not.toMatch(/"seed":\d+/);
      seeded.dispose();
      unseeded.dispose();
    });

    it(`${title}: no two weights of a seeded model share a random stream`, () => {
      const v = weightsOf(build, 11);
      const random = randomOnes(v);
      for (const i of random) {
        for (const j of random) {
          if (j <= i) continue;
          const n = Math.min(v[i]!.length, v[j]!.length);
          if (n < 3) continue;
          const r = correlation(v[i]!.slice(0, n), v[j]!.slice(0, n));
          expect(Math.abs(r), `weights ${i} and ${j}`).toBeLessThan(0.999);
        }
      }
    });
  }

  it('the seeds are drawn per layer in construction order: 1 + integer(2^31 - 1) of new SeededRandom(seed)', () => {
    const draws = (seed: number, n: number): number[] => {
      const rng = new SeededRandom(seed);
      return Array.from({ length: n }, () => 1 + rng.integer(2 ** 31 - 1));
    };
    const expectInit = (
      actual: tf.Tensor,
      init: ReturnType<typeof tfl.initializers.glorotNormal>,
    ): void => {
      const t = init.apply(actual.shape);
      expect(Array.from(actual.dataSync())).toEqual(Array.from(t.dataSync()));
      t.dispose();
    };
    // smallConvNet: the two conv kernels, glorot normal.
    const net = smallConvNet({ inputShape: [8, 8, 3], widths: [4, 8], seed: 21 });
    const kernels = net.layers
      .filter((l) => l.getClassName() === 'Conv2D')
      .map((l) => l.getWeights()[0]!);
    draws(21, 2).forEach((s, i) =>
      expectInit(kernels[i]!, tfl.initializers.glorotNormal({ seed: s })),
    );
    net.dispose();
    // mlpHead: the dense kernels, glorot normal.
    const head = simclrV2Projector({ ...D, seed: 22 });
    const dense = head.layers
      .filter((l) => l.getClassName() === 'Dense')
      .map((l) => l.getWeights()[0]!);
    expect(dense).toHaveLength(3);
    draws(22, 3).forEach((s, i) =>
      expectInit(dense[i]!, tfl.initializers.glorotNormal({ seed: s })),
    );
    head.dispose();
    // dinoHead: the first draw seeds the dense part (DINO's truncated normal 0.02), the second
    // the weight-normalised last layer (U(-1/sqrt(in), 1/sqrt(in)) with that seed).
    const dino = dinoHead({ inputDim: 6, hiddenDim: 10, bottleneckDim: 4, outDim: 5, seed: 23 });
    const [mlpSeed, lastSeed] = draws(23, 2) as [number, number];
    const dinoDense = dino.layers
      .filter((l) => l.getClassName() === 'Dense')
      .map((l) => l.getWeights()[0]!);
    draws(mlpSeed, 3).forEach((s, i) =>
      expectInit(dinoDense[i]!, tfl.initializers.truncatedNormal({ stddev: 0.02, seed: s })),
    );
    expectInit(
      dino.layers[dino.layers.length - 1]!.getWeights()[0]!,
      tfl.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: lastSeed }),
    );
    dino.dispose();
  });

  it('distributions of large seeded layers: glorot normal, glorot uniform, truncated normal 0.02, U(+-1/sqrt(in))', () => {
    const check = (
      what: string,
      v: ArrayLike<number>,
      bound: number,
      std: number,
      stdTol: number,
    ): void => {
      const s = stats(v);
      expect(s.max, `${what}: max`).toBeLessThanOrEqual(bound * (1 + 1e-6));
      expect(s.min, `${what}: min`).toBeGreaterThanOrEqual(-bound * (1 + 1e-6));
      expect(Math.abs(s.std / std - 1), `${what}: std ${s.std} vs ${std}`).toBeLessThan(stdTol);
      expect(Math.abs(s.mean), `${what}: mean`).toBeLessThan((4 * std) / Math.sqrt(v.length));
    };
    // Dense 512 -> 256, tfjs's default glorot normal: sigma = sqrt(2 / (in + out)), truncated at 2 sigma.
    for (const seed of [5, undefined]) {
      const head = mlpHead({ inputDim: 512, blocks: [{ units: 256 }], ...opt(seed) });
      const sigma = Math.sqrt(2 / (512 + 256));
      check(
        `dense, seed ${seed}`,
        head.getWeights()[0]!.dataSync(),
        2 * sigma,
        TRUNCATED_STD * sigma,
        0.02,
      );
      head.dispose();
    }
    // Conv 3x3, 16 -> 64 channels: fan in 9 * 16, fan out 9 * 64.
    const net = smallConvNet({ inputShape: [8, 8, 16], widths: [64], seed: 6 });
    const sigma = Math.sqrt(2 / (9 * 16 + 9 * 64));
    check('conv', net.getWeights()[0]!.dataSync(), 2 * sigma, TRUNCATED_STD * sigma, 0.03);
    net.dispose();
    // Attention projections, glorot uniform: bound sqrt(6 / (in + out)), std bound / sqrt(3).
    const attention = new MultiHeadSelfAttention({ heads: 4, seed: 7 });
    const a = withInput(attention, [5, 64]);
    const [qkv, , proj] = attention.getWeights();
    const qkvBound = Math.sqrt(6 / (64 + 192));
    check('qkv', qkv!.dataSync(), qkvBound, qkvBound / Math.sqrt(3), 0.03);
    const projBound = Math.sqrt(6 / 128);
    check('proj', proj!.dataSync(), projBound, projBound / Math.sqrt(3), 0.04);
    a.dispose();
    // Class token and position embeddings, and DINO's dense kernels: truncated normal, std 0.02.
    const position = new ClassTokenPosition({ grid: [8, 8], seed: 8 });
    const p = withInput(position, [8, 8, 64]);
    check('position', position.getWeights()[1]!.dataSync(), 0.04, TRUNCATED_STD * 0.02, 0.05);
    p.dispose();
    const dino = dinoHead({ inputDim: 256, hiddenDim: 512, bottleneckDim: 16, outDim: 8, seed: 9 });
    check('dino dense', dino.getWeights()[0]!.dataSync(), 0.04, TRUNCATED_STD * 0.02, 0.02);
    dino.dispose();
    // Prototypes: U(-1/sqrt(D), 1/sqrt(D)), std 1 / sqrt(3 D).
    const prototypes = withInput(new Prototypes({ count: 512, seed: 10 }), [128]);
    const bound = 1 / Math.sqrt(128);
    check('prototypes', prototypes.getWeights()[0]!.dataSync(), bound, bound / Math.sqrt(3), 0.02);
    prototypes.dispose();
  });

  it('seeded models: config round trip, fromConfig reproduces the initial weights, cloneAsMomentumEncoder and save/load keep the outputs', async () => {
    for (const [build, shape] of [
      [() => tinyVit({ inputShape: [8, 8, 3], dim: 8, depth: 1, heads: 2, seed: 31 }), [8, 8, 3]],
      [() => dinoHead({ inputDim: 6, hiddenDim: 10, bottleneckDim: 4, outDim: 5, seed: 32 }), [6]],
      [() => simclrV1Projector({ ...D, seed: 33 }), [6]],
    ] as const) {
      const model = build();
      const cls = model.constructor as unknown as {
        fromConfig: (c: unknown, config: unknown) => tfl.LayersModel;
      };
      const rebuilt = cls.fromConfig(cls, model.getConfig());
      expect(values(rebuilt)).toEqual(values(model));
      expect(withoutSeedsAndNames(rebuilt.getConfig())).toEqual(
        withoutSeedsAndNames(model.getConfig()),
      );
      const x = randomInput([3, ...shape], 34);
      const clone = cloneAsMomentumEncoder(model);
      const loaded = await roundTrip(model);
      const y = model.predict(x) as tf.Tensor;
      for (const other of [clone, loaded]) {
        const z = other.predict(x) as tf.Tensor;
        expect(Array.from(z.dataSync())).toEqual(Array.from(y.dataSync()));
        z.dispose();
        other.dispose();
      }
      tf.dispose([x, y]);
      rebuilt.dispose();
      model.dispose();
    }
    // The custom layers keep their seed in their config, and rebuild from it.
    for (const layer of [
      new ClassTokenPosition({ grid: [2, 2], seed: 5 }),
      new MultiHeadSelfAttention({ heads: 2, seed: 6 }),
    ]) {
      const config = layer.getConfig();
      expect(config['seed']).toBeDefined();
      const [cls, fromConfig] =
        tf.serialization.SerializationMap.getMap().classNameMap[layer.getClassName()]!;
      const again = fromConfig(cls, config) as unknown as { getConfig(): object };
      expect(again.getConfig()).toEqual(config);
    }
  });
});

it('seeded weights are the same on every backend under test', async () => {
  const results: number[][][][] = [];
  for (const name of backendsUnderTest()) {
    await selectBackend(name);
    const before = tf.memory().numTensors;
    results.push(builders.map(([, build]) => weightsOf(build, 41)));
    expect(tf.memory().numTensors, `live tensors on ${name}`).toBe(before);
  }
  const [first, ...rest] = results;
  for (const other of rest) {
    builders.forEach(([title], i) => {
      if (title.startsWith('WeightNormDense')) {
        // The draws are the same; the trainable gain starts at ||v||, computed from them on the
        // device, equal to float32 rounding.
        expect(other[i]![0], title).toEqual(first![i]![0]);
        expectClose(other[i]!.flat(), first![i]!.flat(), 1e-6, title);
      } else {
        expect(other[i], title).toEqual(first![i]);
      }
    });
  }
});

it('bad seeds are a ContrastiveError naming the argument', () => {
  expect(() => smallConvNet({ inputShape: [8, 8, 1], seed: 1.5 })).toThrow(
    /smallConvNet.*args\.seed/,
  );
  expect(() => smallResNet({ inputShape: [8, 8, 1], seed: Number.NaN })).toThrow(/args\.seed/);
  expect(() => tinyVit({ inputShape: [8, 8, 1], seed: 'a' as unknown as number })).toThrow(
    ContrastiveError,
  );
  expect(() => mlpHead({ inputDim: 4, blocks: [{ units: 2 }], seed: 0.5 })).toThrow(
    /mlpHead.*args\.seed/,
  );
  expect(() => simclrV1Projector({ inputDim: 4, seed: 0.5 })).toThrow(
    /simclrV1Projector.*dims\.seed/,
  );
  expect(() => mocoV3Predictor({ inputDim: 4, seed: Infinity })).toThrow(
    /mocoV3Predictor.*dims\.seed/,
  );
  expect(() => dinoHead({ inputDim: 4, seed: 2.5 })).toThrow(/dinoHead.*args\.seed/);
  expect(() => new ClassTokenPosition({ seed: 0.1 })).toThrow(/ClassTokenPosition.*args\.seed/);
  expect(() => new MultiHeadSelfAttention({ heads: 2, seed: 0.1 })).toThrow(/args\.seed/);
});
