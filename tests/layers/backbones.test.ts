/**
 * Backbones: output shapes, parameter counts written out per layer, a training step changes the
 * trainable weights and leaves the frozen patch projection alone, save/load (to memory and to a
 * folder) gives identical outputs, errors.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, expect, it } from 'vitest';
import { ContrastiveError } from '../../src/core/index.js';
import { cloneAsMomentumEncoder, emaUpdate } from '../../src/state/index.js';
import { folderIO } from '../../src/io/index.js';
import {
  dinoHead,
  registerLayers,
  smallConvNet,
  smallResNet,
  tinyVit,
} from '../../src/layers/index.js';
import { describeBackends } from '../support/backends.js';
import { mixedSizeStep, randomInput, roundTrip, trainSteps, weightsOf } from '../support/layers.js';

registerLayers();
const work = mkdtempSync(join(tmpdir(), 'tfjs-contrastive-io-'));
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

function parameterCount(model: tfl.LayersModel): number {
  return model.countParams();
}

describeBackends('backbones', () => {
  it('smallConvNet: [28, 28, 1] -> [batch, 128], parameters per layer', () => {
    const model = smallConvNet({ inputShape: [28, 28, 1] });
    const y = tf.tidy(() => (model.predict(tf.zeros([2, 28, 28, 1])) as tf.Tensor).shape);
    expect(y).toEqual([2, 128]);
    // conv 3x3 without bias + batch norm (4 vectors) per stage: 1 -> 32 -> 64 -> 128.
    const stage = (i: number, o: number): number => 9 * i * o + 4 * o;
    expect(parameterCount(model)).toBe(stage(1, 32) + stage(32, 64) + stage(64, 128));
    model.dispose();
  });

  it('smallResNet: CIFAR stem, [32, 32, 3] -> [batch, 64], parameters per layer', () => {
    const model = smallResNet({ inputShape: [32, 32, 3] });
    const y = tf.tidy(() => (model.predict(tf.zeros([2, 32, 32, 3])) as tf.Tensor).shape);
    expect(y).toEqual([2, 64]);
    const conv = (k: number, i: number, o: number): number => k * k * i * o + 4 * o; // + BN
    const block = (i: number, o: number): number =>
      conv(3, i, o) + conv(3, o, o) + (i === o ? 0 : conv(1, i, o));
    expect(parameterCount(model)).toBe(
      conv(3, 3, 16) + block(16, 16) + block(16, 32) + block(32, 64),
    );
    model.dispose();
  });

  it('smallResNet: ImageNet stem halves twice; two blocks per stage', () => {
    const model = smallResNet({
      inputShape: [32, 32, 3],
      cifarStem: false,
      blocksPerStage: 2,
      widths: [8, 16],
    });
    expect(tf.tidy(() => (model.predict(tf.zeros([1, 32, 32, 3])) as tf.Tensor).shape)).toEqual([
      1, 16,
    ]);
    const conv4 = model.layers.filter((l) => l.getClassName() === 'Conv2D').length;
    expect(conv4).toBe(1 + 2 * 2 * 2 + 1); // stem, 4 blocks x 2 convs, one projection shortcut
    model.dispose();
  });

  it('tinyVit: [32, 32, 3], patch 4 -> [batch, 64]; the frozen patch projection never trains', () => {
    const model = tinyVit({ inputShape: [32, 32, 3], depth: 2 });
    expect(tf.tidy(() => (model.predict(tf.zeros([2, 32, 32, 3])) as tf.Tensor).shape)).toEqual([
      2, 64,
    ]);
    const patch = model.getLayer('patch_projection');
    expect(patch.trainable).toBe(false);
    const before = weightsOf(model);
    trainSteps(model, [2, 32, 32, 3], 2);
    const after = weightsOf(model);
    for (const w of patch.weights) expect(after[w.name], w.name).toEqual(before[w.name]);
    const trainable = model.trainableWeights.map((w) => w.name);
    expect(trainable.length).toBeGreaterThan(10);
    for (const name of trainable) expect(after[name], name).not.toEqual(before[name]);
    model.dispose();
  });

  it('tinyVit: parameters per layer (dim 64, 2 blocks, MLP x2, 64 patches + class token)', () => {
    const model = tinyVit({ inputShape: [32, 32, 3], depth: 2, frozenPatchProjection: false });
    const d = 64;
    const block =
      2 * d + (3 * d * d + 3 * d) + (d * d + d) + 2 * d + (d * 2 * d + 2 * d) + (2 * d * d + d);
    const expected = 4 * 4 * 3 * d + d + (d + 65 * d) + 2 * block + 2 * d;
    expect(parameterCount(model)).toBe(expected);
    model.dispose();
  });

  for (const [title, make, shape] of [
    ['smallConvNet', () => smallConvNet({ inputShape: [16, 16, 3], widths: [4, 8] }), [16, 16, 3]],
    ['smallResNet', () => smallResNet({ inputShape: [16, 16, 3], widths: [4, 8] }), [16, 16, 3]],
    [
      'tinyVit',
      () => tinyVit({ inputShape: [16, 16, 3], dim: 16, depth: 1, heads: 2 }),
      [16, 16, 3],
    ],
  ] as const) {
    it(`${title}: a training step changes the weights; save/load (memory and folder) is identical`, async () => {
      const model = make();
      const before = weightsOf(model);
      trainSteps(model, [4, ...shape], 1);
      const after = weightsOf(model);
      expect(Object.keys(after).some((k) => after[k]!.join() !== before[k]!.join())).toBe(true);
      const x = randomInput([3, ...shape], 8);
      const y = model.predict(x) as tf.Tensor;
      const fromMemory = await roundTrip(model);
      const folder = join(work, title);
      await model.save(folderIO(folder));
      expect(readdirSync(folder).sort()).toEqual(['model.json', 'weights.bin']);
      const fromFolder = await tfl.loadLayersModel(folderIO(folder));
      for (const loaded of [fromMemory, fromFolder]) {
        const z = loaded.predict(x) as tf.Tensor;
        expect(Array.from(z.dataSync())).toEqual(Array.from(y.dataSync()));
        z.dispose();
        loaded.dispose();
      }
      tf.dispose([x, y]);
      model.dispose();
    });
  }

  for (const [title, make, fixed] of [
    [
      'smallConvNet',
      (side: number | null) => smallConvNet({ inputShape: [side, side, 3], widths: [4, 8] }),
      16,
    ],
    [
      'smallResNet',
      (side: number | null) => smallResNet({ inputShape: [side, side, 3], widths: [4, 8] }),
      16,
    ],
  ] as const) {
    it(`${title} with [null, null, 3] takes any image size (multi-crop) and has the fixed-size parameters`, () => {
      const any = make(null);
      const sized = make(fixed);
      expect(any.countParams()).toBe(sized.countParams());
      // Outputs for three sizes; one loss over a global (16) and a local (8) view trains the
      // shared weights.
      const { before, after } = mixedSizeStep(any, [16, 7, 24], 8);
      for (const w of any.trainableWeights)
        expect(after[w.name], w.name).not.toEqual(before[w.name]);
      any.dispose();
      sized.dispose();
    });
  }

  it('tinyVit clones as a momentum encoder (custom layers rebuilt), and EMA moves it towards the online one', () => {
    const online = tinyVit({ inputShape: [8, 8, 3], dim: 8, depth: 1, heads: 2 });
    const target = cloneAsMomentumEncoder(online);
    const x = randomInput([2, 8, 8, 3], 4);
    const [a, b] = [online.predict(x) as tf.Tensor, target.predict(x) as tf.Tensor];
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    trainSteps(online, [2, 8, 8, 3], 1);
    const before = weightsOf(target);
    emaUpdate(target, online, 0.5);
    const after = weightsOf(target);
    const patch = target.getLayer('patch_projection').weights.map((w) => w.name);
    for (const name of Object.keys(after)) {
      if (patch.includes(name)) expect(after[name], name).toEqual(before[name]);
    }
    expect(Object.keys(after).some((k) => after[k]!.join() !== before[k]!.join())).toBe(true);
    tf.dispose([x, a, b]);
    online.dispose();
    target.dispose();
  });

  it('a DINO head on a backbone saves to a folder and loads with its custom layers', async () => {
    const backbone = smallConvNet({ inputShape: [8, 8, 1], widths: [4] });
    const head = dinoHead({ inputDim: 4, outDim: 10, hiddenDim: 6, bottleneckDim: 3 });
    const input = tfl.input({ shape: [8, 8, 1] });
    const out = head.apply(backbone.apply(input)) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: out });
    const x = randomInput([2, 8, 8, 1], 3);
    const y = model.predict(x) as tf.Tensor;
    await model.save(folderIO(join(work, 'dino')));
    const loaded = await tfl.loadLayersModel(folderIO(join(work, 'dino')));
    const z = loaded.predict(x) as tf.Tensor;
    expect(Array.from(z.dataSync())).toEqual(Array.from(y.dataSync()));
    tf.dispose([x, y, z]);
    model.dispose();
    loaded.dispose();
  });
});

it('backbones and folderIO reject bad arguments with a ContrastiveError', () => {
  expect(() =>
    smallConvNet({ inputShape: [28, 28] as unknown as [number, number, number] }),
  ).toThrow(/args\.inputShape/);
  expect(() => smallConvNet({ inputShape: [28, 28, 1], widths: [] })).toThrow(ContrastiveError);
  expect(() => smallResNet({ inputShape: [null, null, null as unknown as number] })).toThrow(
    /args\.inputShape/,
  );
  expect(() =>
    tinyVit({ inputShape: [null, null, 3] as unknown as [number, number, number] }),
  ).toThrow(/args\.inputShape/);
  expect(() => smallResNet({ inputShape: [32, 32, 3], blocksPerStage: 0 })).toThrow(
    /blocksPerStage/,
  );
  expect(() => tinyVit({ inputShape: [30, 30, 3], patchSize: 4 })).toThrow(/args\.patchSize/);
  expect(() => tinyVit({ inputShape: [32, 32, 3], dim: 64, heads: 5 })).toThrow(/args\.heads/);
  expect(() => folderIO('')).toThrow(/folder/);
});
