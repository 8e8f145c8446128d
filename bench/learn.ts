/**
 * The learning benchmark: pre-train a method preset on Fashion-MNIST with a library backbone for
 * a time budget, then compare weighted kNN (k 200, T 0.1) on frozen features of held-out images
 * with the same backbone at its random initialisation and with raw pixels. Batch-norm statistics
 * are re-estimated on clean training images for the random-init and the trained encoder alike.
 *
 *   npm run bench:learn -- --method simclr --minutes 5
 *   npm run bench:learn -- --method byol --minutes 5 --backend wasm --batch 128 --seed 0
 *
 * Other flags: --knn-train 60000 --knn-test 5000 (kNN: all training images, the first test
 * images), --out .tmp/learn (the run's JSON, and baselines.json, which keeps the two baselines;
 * --fresh-baselines recomputes them), --steps N (a step budget instead of --minutes), and any
 * preset option as --lr, --temperature, --momentum, --queue, --optimizer, --warmup, --wd,
 * --bn-groups, --negatives, --objective. --pretrain-images N pre-trains on the first N training images only
 * (for memory-bank methods, whose entries move only when their image is drawn).
 * scripts/twin/twin.py is the same benchmark in PyTorch.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { selectBackend, type BackendName } from '../src/core/index.js';
import { reestimateBatchNorm } from '../src/eval/index.js';
import { smallConvNet } from '../src/layers/index.js';
import { cloneAsMomentumEncoder } from '../src/state/index.js';
import { PRESETS, featuresOf, knnOf, pixelsOf, type PresetOptions } from '../demo/shared.js';
import { loadFashionMnist } from './fashion-mnist.js';

tf.enableProdMode();

function flags(argv: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) continue;
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) out.set(a.slice(2), 'true');
    else {
      out.set(a.slice(2), next);
      i++;
    }
  }
  return out;
}

const args = flags(process.argv.slice(2));
const num = (name: string, fallback: number): number => {
  const v = args.get(name);
  return v === undefined ? fallback : Number(v);
};
const optional = (name: string): number | undefined => {
  const v = args.get(name);
  return v === undefined ? undefined : Number(v);
};

async function main(): Promise<void> {
  const methodName = args.get('method') ?? 'simclr';
  const build = PRESETS[methodName];
  if (build === undefined)
    throw new Error(`--method must be one of ${Object.keys(PRESETS).join(', ')}`);
  const minutes = num('minutes', 5);
  const backend = (args.get('backend') ?? 'wasm') as BackendName;
  const batchSize = num('batch', 128);
  const seed = num('seed', 0);
  const knnTrain = num('knn-train', 60000);
  const knnTest = num('knn-test', 5000);
  const outDir = args.get('out') ?? '.tmp/learn';
  const info = await selectBackend(backend);
  console.log(`backend ${info.name}, ${info.threads} thread(s), SIMD ${info.simd}`);

  const t0 = performance.now();
  const data = loadFashionMnist();
  const toTensor = (images: Float32Array, n: number): tf.Tensor4D =>
    tf.tensor4d(images.subarray(0, n * 784), [n, 28, 28, 1]);
  // --pretrain-images N: pre-train on the first N training images only (a memory bank then holds
  // N entries and sees each image more often); kNN still uses the --knn-train images.
  const pretrainCount = Math.min(num('pretrain-images', data.train.count), data.train.count);
  const trainAll = toTensor(data.train.images, pretrainCount);
  const knnTrainImages = toTensor(data.train.images, knnTrain);
  const knnTrainLabels = data.train.labels.slice(0, knnTrain);
  const knnTestImages = toTensor(data.test.images, knnTest);
  const knnTestLabels = data.test.labels.slice(0, knnTest);
  console.log(
    `Fashion-MNIST: ${data.train.count} train, ${data.test.count} test images (${((performance.now() - t0) / 1000).toFixed(1)} s to load)`,
  );

  const encoder = smallConvNet({ inputShape: [28, 28, 1], widths: [32, 64, 128], seed });
  const bnImages = tf.slice(knnTrainImages, [0, 0, 0, 0], [Math.min(2560, knnTrain), -1, -1, -1]);

  // Baselines: raw pixels, and the same encoder at its random initialisation (a copy, with its
  // batch-norm statistics re-estimated on clean images like the trained one's). They depend only
  // on the seed, the backend and the kNN sets, so they are kept in <out>/baselines.json
  // (--fresh-baselines recomputes them).
  const baselineFile = join(outDir, 'baselines.json');
  const baselineKey = `${info.name} seed ${seed} knn ${knnTrain}/${knnTest} smallConvNet [32, 64, 128]`;
  const cached = existsSync(baselineFile)
    ? (JSON.parse(readFileSync(baselineFile, 'utf8')) as Record<
        string,
        { raw: number; init: number }
      >)
    : {};
  let baseline = args.has('fresh-baselines') ? undefined : cached[baselineKey];
  if (baseline === undefined) {
    const raw = await knnOf(pixelsOf, knnTrainImages, knnTrainLabels, knnTestImages, knnTestLabels);
    const initial = cloneAsMomentumEncoder(encoder);
    reestimateBatchNorm(initial, bnImages, { batchSize: 256 });
    const init = await knnOf(
      (x) => featuresOf(initial, x),
      knnTrainImages,
      knnTrainLabels,
      knnTestImages,
      knnTestLabels,
    );
    initial.dispose();
    baseline = { raw, init };
    mkdirSync(outDir, { recursive: true });
    writeFileSync(
      baselineFile,
      `${JSON.stringify({ ...cached, [baselineKey]: baseline }, null, 2)}\n`,
    );
  }
  const { raw, init } = baseline;
  console.log(
    `kNN before training: random init ${(100 * init).toFixed(2)}%, raw pixels ${(100 * raw).toFixed(2)}%`,
  );

  const overrides: Record<string, unknown> = {};
  const set = (key: string, value: unknown): void => {
    if (value !== undefined) overrides[key] = value;
  };
  set('learningRate', optional('lr'));
  set('temperature', optional('temperature'));
  set('momentum', optional('momentum'));
  set('queueSize', optional('queue'));
  set('warmup', optional('warmup'));
  set('weightDecay', optional('wd'));
  set('batchNormGroups', optional('bn-groups'));
  set('prototypes', optional('prototypes'));
  set('localCrops', optional('local-crops'));
  set('freezePrototypesSteps', optional('freeze-prototypes'));
  set('outDim', optional('out-dim'));
  set('teacherTemperature', optional('teacher-temp'));
  set('warmupTeacherTemperature', optional('warmup-teacher-temp'));
  set(
    'queueStart',
    optional('queue-start') === undefined ? undefined : { step: optional('queue-start') },
  );
  set('negatives', optional('negatives'));
  set('objective', args.get('objective'));
  set('optimizer', args.get('optimizer'));
  const method = build({
    encoder,
    seed,
    datasetSize: pretrainCount,
    ...overrides,
  } as PresetOptions);

  const started = performance.now();
  const steps = optional('steps');
  const result = await method.fit(trainAll, {
    ...(steps === undefined ? { seconds: minutes * 60 } : { steps }),
    batchSize,
    progress: true,
    callbacks: {
      // The step's monitors every 25 steps (collapse monitors, schedules) on their own line.
      onBatchEnd: (step, r) => {
        if (step % 25 !== 0) return;
        const shown = Object.entries(r.metrics)
          .filter(([k]) => !['imagesPerSecond', 'skippedSteps'].includes(k))
          .map(([k, v]) => `${k} ${(v ?? Number.NaN).toPrecision(4)}`);
        console.log(`\nstep ${step}: loss ${r.loss.toFixed(4)}, ${shown.join(', ')}`);
      },
    },
  });
  const trainSeconds = (performance.now() - started) / 1000;
  reestimateBatchNorm(encoder, bnImages, { batchSize: 256 });
  const trained = await knnOf(
    (x) => method.embed(x, { batchSize: 500 }),
    knnTrainImages,
    knnTrainLabels,
    knnTestImages,
    knnTestLabels,
  );
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const row = {
    method: methodName,
    backend: info.name,
    threads: info.threads,
    batchSize,
    steps: result.steps,
    skipped: result.skippedSteps,
    minutes: trainSeconds / 60,
    stepsPerSecond: result.steps / trainSeconds,
    lossStart: mean(result.losses.slice(0, 10)),
    lossEnd: mean(result.losses.slice(-10)),
    knnRandomInit: init,
    knnTrained: trained,
    knnRawPixels: raw,
    gainOverInit: trained - init,
    beatsRawPixels: trained > raw,
    overrides,
    seed,
    knnTrain,
    knnTest,
  };
  console.log(JSON.stringify(row));
  console.log(
    `| ${methodName} | ${result.steps} | ${(trainSeconds / 60).toFixed(1)} | ${row.lossStart.toFixed(3)} -> ${row.lossEnd.toFixed(3)} | ` +
      `${(100 * init).toFixed(1)}% -> ${(100 * trained).toFixed(1)}% | ${(100 * raw).toFixed(1)}% |`,
  );
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, `${methodName}.json`), `${JSON.stringify(row, null, 2)}\n`);
  method.dispose();
  encoder.dispose();
  tf.dispose([trainAll, knnTrainImages, knnTestImages, bnImages]);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
