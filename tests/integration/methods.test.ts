/**
 * The parts assembled as each method assembles them (augmentation recipe -> backbone -> heads ->
 * loss -> optimiser -> state updates), two training steps each on every backend: the losses are
 * finite, what should train trains, what should not (momentum targets, frozen prototypes and
 * last layers) does not, the state updates do what they say, and nothing leaks. A check that
 * the pieces fit, before the method presets wrap them.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import {
  byolRecipe,
  dinoRecipe,
  localCropSize,
  mocoV2Recipe,
  multiCrop,
  simclrRecipe,
  swavRecipe,
  type ViewSpec,
} from '../../src/augment/index.js';
import { l2Normalize, stopGradient } from '../../src/core/index.js';
import {
  byolPredictor,
  byolProjector,
  dinoHead,
  mocoV2Projector,
  mocoV3Predictor,
  mocoV3Projector,
  Prototypes,
  registerLayers,
  simclrV2Projector,
  simsiamPredictor,
  simsiamProjector,
  smallConvNet,
  swavProjectionHead,
  tinyVit,
  type WeightNormDense,
} from '../../src/layers/index.js';
import {
  dinoLoss,
  infoNce,
  mocoV3Loss,
  ntXentLoss,
  simsiamLoss,
  swavLoss,
  symmetricByolLoss,
} from '../../src/losses/index.js';
import { Center, cloneAsMomentumEncoder, emaUpdate, MomentumQueue } from '../../src/state/index.js';
import { describeBackends, expectClose } from '../support/backends.js';
import { randomImages, weightsOf } from '../support/layers.js';

registerLayers();

const SIDE = 16;
const BATCH = 8;
const FEATURES = 16;

const backbone = (): tfl.LayersModel =>
  smallConvNet({ inputShape: [null, null, 3], widths: [8, FEATURES] });
const chain = (...models: tfl.LayersModel[]): tfl.Sequential => tfl.sequential({ layers: models });

/**
 * Disposes chained models and their parts: a `Sequential` used as a layer keeps a reference of its
 * own in tfjs-layers 4.22, so the outer dispose leaves its weights (a functional model's go).
 */
function disposeAll(...models: tfl.LayersModel[]): void {
  for (const model of models) {
    const nested = model.layers.filter((l): l is tfl.Sequential => l instanceof tfl.Sequential);
    model.dispose();
    for (const part of nested) part.dispose();
  }
}
const run = (model: tfl.LayersModel, x: tf.Tensor): tf.Tensor2D =>
  model.apply(x, { training: true }) as tf.Tensor2D;

type Weights = Record<string, number[]>;
const changed = (a: Weights, b: Weights, names: readonly string[]): string[] =>
  names.filter((n) => a[n]?.join() !== b[n]?.join());
const trainableNames = (m: tfl.LayersModel): string[] => m.trainableWeights.map((w) => w.name);
// Weights other than batch norm's running statistics (which a forward pass in training updates).
const learnedNames = (m: tfl.LayersModel): string[] =>
  m.weights.map((w) => w.name).filter((n) => !/moving_(mean|variance)/.test(n));

/**
 * Two steps: for each, the views of a fresh seeded batch, `before(step, views)`, one SGD step on
 * `loss(views)`, `after(step, views)`. Returns the two losses.
 */
function train(
  recipe: readonly ViewSpec[],
  loss: (views: tf.Tensor4D[]) => tf.Scalar,
  hooks: {
    before?: (step: number, views: tf.Tensor4D[]) => void;
    after?: (step: number, views: tf.Tensor4D[]) => void;
  } = {},
): number[] {
  const optimizer = tf.train.sgd(0.05);
  const losses: number[] = [];
  for (let step = 0; step < 2; step++) {
    const images = randomImages([BATCH, SIDE, SIDE, 3], 10 + step);
    const views = multiCrop(images, { crops: recipe, rng: step });
    hooks.before?.(step, views);
    const cost = optimizer.minimize(() => loss(views), true);
    losses.push(cost?.dataSync()[0] ?? Number.NaN);
    cost?.dispose();
    hooks.after?.(step, views);
    tf.dispose([images, ...views]);
  }
  optimizer.dispose();
  return losses;
}

/** All weights of the models by name. */
const snapshot = (...models: tfl.LayersModel[]): Weights =>
  Object.assign({}, ...models.map(weightsOf)) as Weights;

/** Every trainable weight of the models differs from `start`. */
function expectEveryWeightTrained(start: Weights, ...models: tfl.LayersModel[]): void {
  const names = models.flatMap(trainableNames);
  expect(names.length).toBeGreaterThan(0);
  expect(changed(start, snapshot(...models), names)).toEqual(names);
}

function expectFinite(losses: number[]): void {
  expect(losses).toHaveLength(2);
  for (const l of losses) expect(Number.isFinite(l), `loss ${l}`).toBe(true);
}

/**
 * A momentum target: snapshots before each step, checks after it (before the EMA) that the
 * optimiser left its learned weights alone, then applies the EMA. Returns what it saw.
 */
function momentumTarget(target: tfl.LayersModel, online: tfl.LayersModel, m: number) {
  const start = weightsOf(target);
  let previous: Weights = {};
  const touchedByOptimiser: string[] = [];
  return {
    before: () => {
      previous = weightsOf(target);
    },
    after: () => {
      touchedByOptimiser.push(...changed(previous, weightsOf(target), learnedNames(target)));
      emaUpdate(target, online, m);
    },
    /** The optimiser never touched the target's learned weights; the EMA moved them. */
    expectMovedOnlyByEma: () => {
      expect(touchedByOptimiser).toEqual([]);
      expect(changed(start, weightsOf(target), learnedNames(target)).length).toBeGreaterThan(0);
    },
  };
}

describeBackends('methods assembled from the parts', () => {
  it('SimCLR: recipe -> conv net -> v2 projector -> NT-Xent trains every weight', () => {
    const model = chain(backbone(), simclrV2Projector({ inputDim: FEATURES, outputDim: 8 }));
    const before = weightsOf(model);
    const losses = train(
      simclrRecipe(SIDE),
      ([a, b]) => ntXentLoss(run(model, a!), run(model, b!), { temperature: 0.5 }) as tf.Scalar,
    );
    expectFinite(losses);
    expectEveryWeightTrained(before, model);
    disposeAll(model);
  });

  it('MoCo v2: the queue feeds InfoNCE; the key encoder moves only by EMA', () => {
    const query = chain(backbone(), mocoV2Projector({ inputDim: FEATURES, outputDim: 8 }));
    const key = cloneAsMomentumEncoder(query);
    const target = momentumTarget(key, query, 0.99);
    const queue = new MomentumQueue(32, 8, { seed: 1 });
    const first = queue.readConcatenated();
    const start = weightsOf(query);
    let keys: tf.Tensor2D | undefined;
    const enqueued: tf.Tensor2D[] = [];
    const losses = train(
      mocoV2Recipe(SIDE),
      ([a]) =>
        infoNce(run(query, a!), keys!, {
          negatives: queue.negatives(),
          temperature: 0.2,
        }) as tf.Scalar,
      {
        before: (_, [, b]) => {
          target.before();
          keys = tf.tidy(() => l2Normalize(stopGradient(run(key, b!))));
        },
        after: () => {
          target.after();
          queue.enqueue(keys!);
          enqueued.push(keys!);
        },
      },
    );
    expectFinite(losses);
    target.expectMovedOnlyByEma();
    expectEveryWeightTrained(start, query);
    // Two batches of 8 keys pushed out the 16 oldest rows: oldest first, the 16 newest initial
    // keys, then the two batches (stored normalised again: equal to rounding).
    const last = queue.readConcatenated();
    const expected = tf.tidy(() => tf.concat([tf.slice(first, [16, 0], [16, 8]), ...enqueued]));
    expectClose(last, expected, 1e-6, 'queue after two steps');
    expect(queue.count).toBe(16);
    tf.dispose([first, last, expected, ...enqueued]);
    queue.dispose();
    disposeAll(query, key);
  });

  it('BYOL: symmetric loss through the predictor; the target moves only by EMA', () => {
    const online = chain(
      backbone(),
      byolProjector({ inputDim: FEATURES, hiddenDim: 32, outputDim: 8 }),
    );
    const predictor = byolPredictor({ inputDim: 8, hiddenDim: 32, outputDim: 8 });
    const targetNet = cloneAsMomentumEncoder(online);
    const target = momentumTarget(targetNet, online, 0.9);
    const start = snapshot(online, predictor);
    const losses = train(
      byolRecipe(SIDE),
      ([a, b]) =>
        symmetricByolLoss(
          run(predictor, run(online, a!)),
          run(predictor, run(online, b!)),
          run(targetNet, a!),
          run(targetNet, b!),
        ) as tf.Scalar,
      { before: target.before, after: target.after },
    );
    expectFinite(losses);
    target.expectMovedOnlyByEma();
    expectEveryWeightTrained(start, online, predictor);
    disposeAll(online, predictor, targetNet);
  });

  it('SimSiam: projector and predictor train from the stop-gradient loss', () => {
    const encoder = chain(
      backbone(),
      simsiamProjector({ inputDim: FEATURES, hiddenDim: 16, outputDim: 8 }),
    );
    const predictor = simsiamPredictor({ inputDim: 8, hiddenDim: 4, outputDim: 8 });
    const start = snapshot(encoder, predictor);
    const losses = train(mocoV2Recipe(SIDE), ([a, b]) => {
      const [z1, z2] = [run(encoder, a!), run(encoder, b!)];
      return simsiamLoss(run(predictor, z1), run(predictor, z2), z1, z2) as tf.Scalar;
    });
    expectFinite(losses);
    expectEveryWeightTrained(start, encoder, predictor);
    disposeAll(encoder, predictor);
  });

  it('SwAV: 2 + 2 multi-crop views of two sizes, prototypes frozen for a step then normalised', () => {
    const prototypes = new Prototypes({ count: 6, freezeSteps: 1, seed: 2 });
    const head = swavProjectionHead({ inputDim: FEATURES, hiddenDim: 16, outputDim: 8 });
    const model = chain(backbone(), head);
    prototypes.apply(tfl.input({ shape: [8] })); // builds the kernel (symbolic: no tensors)
    const kernel = (): number[] => Array.from(prototypes.getWeights()[0]!.dataSync());
    const seen: { frozen: boolean; sizes: number[]; kernelChanged?: boolean }[] = [];
    let kernelBefore: number[] = [];
    const recipe = swavRecipe(SIDE, 2);
    const losses = train(
      recipe,
      (views) =>
        swavLoss(
          views.map((v) => prototypes.apply(run(model, v)) as tf.Tensor2D),
          { temperature: 0.1 },
        ) as tf.Scalar,
      {
        before: (step, views) => {
          const trainable = prototypes.setStep(step);
          seen.push({ frozen: !trainable, sizes: views.map((v) => v.shape[1]) });
          kernelBefore = kernel();
        },
        after: (step) => {
          seen[step]!.kernelChanged = kernel().join() !== kernelBefore.join();
          prototypes.normalize();
        },
      },
    );
    expectFinite(losses);
    const local = localCropSize(SIDE);
    expect(seen.map((s) => s.sizes)).toEqual([
      [SIDE, SIDE, local, local],
      [SIDE, SIDE, local, local],
    ]);
    expect(seen.map((s) => [s.frozen, s.kernelChanged])).toEqual([
      [true, false],
      [false, true],
    ]);
    // normalize() leaves unit-norm prototypes (columns of the [D, K] kernel).
    const norms = tf.tidy(() =>
      Array.from(tf.norm(prototypes.getWeights()[0]!, 'euclidean', 0).dataSync()),
    );
    for (const n of norms) expect(n).toBeCloseTo(1, 5);
    disposeAll(model);
    prototypes.dispose();
  });

  it('DINO: 2 + 2 crops, teacher on the global ones, centre and EMA, last layer frozen for a step', () => {
    const head = dinoHead({
      inputDim: FEATURES,
      hiddenDim: 16,
      bottleneckDim: 8,
      outDim: 12,
      freezeLastLayerSteps: 1,
      seed: 3,
    });
    const last = head.layers[head.layers.length - 1] as WeightNormDense;
    const student = chain(backbone(), head);
    const teacherNet = cloneAsMomentumEncoder(student);
    const target = momentumTarget(teacherNet, student, 0.996);
    const center = new Center(12, { momentum: 0.9 });
    const centerStart = Array.from(center.value.dataSync());
    const lastChanged: boolean[] = [];
    let lastBefore = '';
    let teacherOut: tf.Tensor2D[] = [];
    const losses = train(
      dinoRecipe(SIDE, 2),
      (views) =>
        dinoLoss(
          views.map((v) => run(student, v)),
          teacherOut,
          center.value,
          { teacherTemperature: 0.04 },
        ) as tf.Scalar,
      {
        before: (step, views) => {
          last.setStep(step);
          lastBefore = last.getWeights()[0]!.dataSync().join();
          target.before();
          teacherOut = views.slice(0, 2).map((v) => run(teacherNet, v));
        },
        after: () => {
          lastChanged.push(last.getWeights()[0]!.dataSync().join() !== lastBefore);
          center.update(teacherOut);
          tf.dispose(teacherOut);
          target.after();
        },
      },
    );
    expectFinite(losses);
    expect(lastChanged).toEqual([false, true]);
    target.expectMovedOnlyByEma();
    expect(Array.from(center.value.dataSync())).not.toEqual(centerStart);
    center.dispose();
    disposeAll(student, teacherNet);
  });

  it('MoCo v3: tiny ViT, 3-layer projector and predictor, symmetric loss against the momentum encoder', () => {
    const online = chain(
      tinyVit({ inputShape: [SIDE, SIDE, 3], dim: 16, depth: 1, heads: 2 }),
      mocoV3Projector({ inputDim: 16, layers: 3, hiddenDim: 16, outputDim: 8 }),
    );
    const predictor = mocoV3Predictor({ inputDim: 8, hiddenDim: 16, outputDim: 8 });
    const momentum = cloneAsMomentumEncoder(online);
    const target = momentumTarget(momentum, online, 0.99);
    const start = snapshot(online, predictor);
    const losses = train(
      byolRecipe(SIDE),
      ([a, b]) => {
        const [q1, q2] = [run(predictor, run(online, a!)), run(predictor, run(online, b!))];
        const [k1, k2] = [stopGradient(run(momentum, a!)), stopGradient(run(momentum, b!))];
        return tf.add(mocoV3Loss(q1, k2), mocoV3Loss(q2, k1));
      },
      { before: target.before, after: target.after },
    );
    expectFinite(losses);
    target.expectMovedOnlyByEma();
    expectEveryWeightTrained(start, online, predictor);
    disposeAll(online, predictor, momentum);
  });
});
