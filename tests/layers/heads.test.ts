/**
 * Heads: output shapes and parameter counts against the reference architectures (written out per
 * layer from the papers' code, not from the builder), at the default dimensions; the generic
 * builder's options; errors.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { ContrastiveError, selectBackend } from '../../src/core/index.js';
import {
  byolPredictor,
  byolProjector,
  dinoHead,
  mlpHead,
  mocoV2Projector,
  mocoV3Predictor,
  mocoV3Projector,
  simclrV1Projector,
  simclrV2Projector,
  simsiamPredictor,
  simsiamProjector,
  registerLayers,
  swavProjectionHead,
} from '../../src/layers/index.js';
import { describeBackends } from '../support/backends.js';
import { randomInput, roundTrip, trainSteps, weightsOf } from '../support/layers.js';

// Parameter counts of single layers: [trainable, non-trainable].
const linear = (i: number, o: number, bias: boolean): [number, number] => [
  i * o + (bias ? o : 0),
  0,
];
// Batch norm over u features with `affine` learned vectors (gamma, beta: 0, 1 or 2) and 2 running ones.
const bn = (u: number, affine: number): [number, number] => [affine * u, 2 * u];
const total = (...parts: [number, number][]): [number, number] =>
  parts.reduce(([a, b], [c, d]) => [a + c, b + d], [0, 0]);

function counts(model: tfl.LayersModel): [number, number] {
  const size = (ws: tfl.LayerVariable[]): number =>
    ws.reduce((s, w) => s + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
  return [size(model.trainableWeights), size(model.nonTrainableWeights)];
}

function outputShape(model: tfl.LayersModel, inputDim: number): number[] {
  return tf.tidy(() => (model.predict(tf.ones([2, inputDim])) as tf.Tensor).shape);
}

describe('preset heads at their default dimensions', () => {
  beforeAll(async () => {
    await selectBackend('cpu');
  });

  const cases: [string, () => tfl.LayersModel, number, number, [number, number]][] = [
    // SimCLR v1 (google-research/simclr): Linear(2048, 2048, no bias) BN ReLU Linear(2048, 128, no bias) BN(no centre).
    [
      'simclrV1Projector',
      () => simclrV1Projector({ inputDim: 2048 }),
      2048,
      128,
      total(linear(2048, 2048, false), bn(2048, 2), linear(2048, 128, false), bn(128, 1)),
    ],
    // SimCLR v2: three such layers, hidden = input width.
    [
      'simclrV2Projector',
      () => simclrV2Projector({ inputDim: 2048 }),
      2048,
      128,
      total(
        linear(2048, 2048, false),
        bn(2048, 2),
        linear(2048, 2048, false),
        bn(2048, 2),
        linear(2048, 128, false),
        bn(128, 1),
      ),
    ],
    // MoCo v2: Linear(2048, 2048) ReLU Linear(2048, 128), with biases, no BN.
    [
      'mocoV2Projector',
      () => mocoV2Projector({ inputDim: 2048 }),
      2048,
      128,
      total(linear(2048, 2048, true), linear(2048, 128, true)),
    ],
    // MoCo v3 ResNet projector: Linear(2048, 4096, no bias) BN ReLU Linear(4096, 256, no bias) BN(affine=False).
    [
      'mocoV3Projector',
      () => mocoV3Projector({ inputDim: 2048 }),
      2048,
      256,
      total(linear(2048, 4096, false), bn(4096, 2), linear(4096, 256, false), bn(256, 0)),
    ],
    // MoCo v3 ViT projector: 3 layers.
    [
      'mocoV3Projector (ViT, 3 layers)',
      () => mocoV3Projector({ inputDim: 384, layers: 3 }),
      384,
      256,
      total(
        linear(384, 4096, false),
        bn(4096, 2),
        linear(4096, 4096, false),
        bn(4096, 2),
        linear(4096, 256, false),
        bn(256, 0),
      ),
    ],
    // MoCo v3 predictor: Linear(256, 4096, no bias) BN ReLU Linear(4096, 256, no bias) BN(affine=False).
    [
      'mocoV3Predictor',
      () => mocoV3Predictor({ inputDim: 256 }),
      256,
      256,
      total(linear(256, 4096, false), bn(4096, 2), linear(4096, 256, false), bn(256, 0)),
    ],
    // MoCo_ResNet's predictor: _build_mlp(2, dim, mlp_dim, dim, last_bn=False).
    [
      'mocoV3Predictor (ResNet, lastBatchNorm false)',
      () => mocoV3Predictor({ inputDim: 256, lastBatchNorm: false }),
      256,
      256,
      total(linear(256, 4096, false), bn(4096, 2), linear(4096, 256, false)),
    ],
    // BYOL: Linear(2048, 4096) BN ReLU Linear(4096, 256); the first bias is dropped (BN follows).
    [
      'byolProjector',
      () => byolProjector({ inputDim: 2048 }),
      2048,
      256,
      total(linear(2048, 4096, false), bn(4096, 2), linear(4096, 256, true)),
    ],
    [
      'byolPredictor',
      () => byolPredictor({ inputDim: 256 }),
      256,
      256,
      total(linear(256, 4096, false), bn(4096, 2), linear(4096, 256, true)),
    ],
    // SimSiam: [Linear(2048, 2048, no bias) BN ReLU] x 2, Linear(2048, 2048) BN(affine=False) (its bias unused).
    [
      'simsiamProjector',
      () => simsiamProjector({ inputDim: 2048 }),
      2048,
      2048,
      total(
        linear(2048, 2048, false),
        bn(2048, 2),
        linear(2048, 2048, false),
        bn(2048, 2),
        linear(2048, 2048, false),
        bn(2048, 0),
      ),
    ],
    // SimSiam predictor: Linear(2048, 512, no bias) BN ReLU Linear(512, 2048).
    [
      'simsiamPredictor',
      () => simsiamPredictor({ inputDim: 2048 }),
      2048,
      2048,
      total(linear(2048, 512, false), bn(512, 2), linear(512, 2048, true)),
    ],
    // SwAV: Linear(2048, 2048) BN ReLU Linear(2048, 128), then L2 normalisation (no weights).
    [
      'swavProjectionHead',
      () => swavProjectionHead({ inputDim: 2048 }),
      2048,
      128,
      total(linear(2048, 2048, false), bn(2048, 2), linear(2048, 128, true)),
    ],
    // DINO (ViT-S/16, 384): Linear(384, 2048) GELU Linear(2048, 2048) GELU Linear(2048, 256), L2 norm,
    // weight-normalised Linear(256, 65536, no bias) with g fixed at 1 (no gain parameter).
    [
      'dinoHead',
      () => dinoHead({ inputDim: 384 }),
      384,
      65536,
      total(
        linear(384, 2048, true),
        linear(2048, 2048, true),
        linear(2048, 256, true),
        linear(256, 65536, false),
      ),
    ],
  ];
  for (const [title, make, inputDim, outputDim, expected] of cases) {
    it(`${title}: output [batch, ${outputDim}], parameters as the reference`, () => {
      const before = tf.memory().numTensors;
      const model = make();
      expect(outputShape(model, inputDim)).toEqual([2, outputDim]);
      expect(counts(model)).toEqual(expected);
      model.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('dinoHead: a trainable gain adds one vector; the last layer is the weight-normalised one', () => {
    const head = dinoHead({
      inputDim: 8,
      outDim: 16,
      hiddenDim: 12,
      bottleneckDim: 4,
      normLastLayer: false,
    });
    expect(counts(head)).toEqual(
      total(
        linear(8, 12, true),
        linear(12, 12, true),
        linear(12, 4, true),
        linear(4, 16, false),
        [16, 0],
      ),
    );
    expect(head.layers[head.layers.length - 1]!.getClassName()).toBe(
      'TfjsContrastive>WeightNormDense',
    );
    head.dispose();
  });

  it('the swav head and the dino bottleneck output unit vectors', () => {
    // 64 hidden units: a sample whose ReLU row is all zero (then the output is the zero bias and
    // its norm 0) has probability about 2^-64 with the unseeded initialisation.
    const swav = swavProjectionHead({ inputDim: 6, hiddenDim: 64, outputDim: 4 });
    const dino = dinoHead({ inputDim: 6, hiddenDim: 64, bottleneckDim: 5, outDim: 7 });
    // DINO's bottleneck: everything but the weight-normalised last layer.
    const bottleneck = tfl.sequential({ layers: dino.layers.slice(0, -1) });
    const norms = tf.tidy(() => {
      const x = tf.randomNormal([3, 6], 0, 1, 'float32', 1);
      return [swav, bottleneck].flatMap((m) =>
        Array.from(tf.norm(m.predict(x) as tf.Tensor, 'euclidean', 1).dataSync()),
      );
    });
    expect(norms).toHaveLength(6);
    norms.forEach((n) => expect(n).toBeCloseTo(1, 5));
    swav.dispose();
    dino.dispose();
  });
});

describe('mlpHead', () => {
  it('a dense layer followed by batch norm has no bias; activations and BN options are honoured', () => {
    const head = mlpHead({
      inputDim: 4,
      blocks: [
        { units: 3, batchNorm: true, activation: 'gelu', useBias: true },
        { units: 2, batchNorm: { center: true, scale: false } },
        { units: 5, useBias: false },
      ],
    });
    expect(counts(head)).toEqual(
      total(linear(4, 3, false), bn(3, 2), linear(3, 2, false), bn(2, 1), linear(2, 5, false)),
    );
    const classes = head.layers.map((l) => l.getClassName());
    expect(classes).toEqual([
      'Dense',
      'TfjsContrastive>BatchNorm',
      'Activation',
      'Dense',
      'TfjsContrastive>BatchNorm',
      'Dense',
    ]);
    head.dispose();
  });

  it('rejects bad blocks with a ContrastiveError naming the argument', () => {
    expect(() => mlpHead({ inputDim: 4, blocks: [] })).toThrow(/args\.blocks/);
    expect(() => mlpHead({ inputDim: 0, blocks: [{ units: 2 }] })).toThrow(ContrastiveError);
    expect(() => mlpHead({ inputDim: 4, blocks: [{ units: 2.5 }] })).toThrow(
      /args\.blocks\[0\]\.units/,
    );
    expect(() =>
      mlpHead({ inputDim: 4, blocks: [{ units: 2, activation: 'tanh' as 'relu' }] }),
    ).toThrow(/activation/);
    expect(() =>
      mlpHead({
        inputDim: 4,
        blocks: [{ units: 2, batchNorm: { center: 0 as unknown as boolean } }],
      }),
    ).toThrow(/args\.blocks\[0\]\.batchNorm\.center/);
    expect(() => mocoV3Projector({ inputDim: 4, layers: 4 as 3 })).toThrow(/dims\.layers/);
    expect(() => mocoV3Predictor({ inputDim: 4, lastBatchNorm: 1 as unknown as boolean })).toThrow(
      "mocoV3Predictor: argument 'dims.lastBatchNorm' must be true or false, but received 1.",
    );
  });
});

// Small widths: what matters is that each preset trains (tfjs-layers' own batch norm fails in
// training without offset or gain, which SimCLR's, MoCo v3's and SimSiam's heads need).
const D = { inputDim: 6, hiddenDim: 10, outputDim: 4 };
const trainable: [string, () => tfl.Sequential][] = [
  ['simclrV1Projector', () => simclrV1Projector(D)],
  ['simclrV2Projector', () => simclrV2Projector(D)],
  ['mocoV2Projector', () => mocoV2Projector(D)],
  ['mocoV3Projector (3 layers)', () => mocoV3Projector({ ...D, layers: 3 })],
  ['mocoV3Predictor', () => mocoV3Predictor(D)],
  ['byolProjector', () => byolProjector(D)],
  ['byolPredictor', () => byolPredictor(D)],
  ['simsiamProjector', () => simsiamProjector(D)],
  ['simsiamPredictor', () => simsiamPredictor(D)],
  ['swavProjectionHead', () => swavProjectionHead(D)],
  [
    'dinoHead',
    () => dinoHead({ inputDim: 6, hiddenDim: 10, bottleneckDim: 4, outDim: 5, useBatchNorm: true }),
  ],
];

describeBackends('preset heads train', () => {
  registerLayers();
  for (const [title, make] of trainable) {
    it(`${title}: a training step changes every trainable weight and the running statistics; save/load keeps the outputs`, async () => {
      const head = make();
      const before = weightsOf(head);
      trainSteps(head, [8, 6], 1);
      const after = weightsOf(head);
      expect(head.trainableWeights.length).toBeGreaterThan(0);
      for (const w of head.trainableWeights)
        expect(after[w.name], w.name).not.toEqual(before[w.name]);
      const running = head.nonTrainableWeights.filter((w) => /moving_(mean|variance)/.test(w.name));
      if (title !== 'mocoV2Projector') expect(running.length).toBeGreaterThan(0);
      for (const w of running) expect(after[w.name], w.name).not.toEqual(before[w.name]);
      const loaded = await roundTrip(head);
      const x = randomInput([3, 6], 5);
      const [a, b] = [head.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor];
      expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
      tf.dispose([x, a, b]);
      head.dispose();
      loaded.dispose();
    });
  }
});
