/**
 * The browser demo: SimCLR pre-training of a small conv net on a Fashion-MNIST subset, on the
 * backend asked for (`?backend=webgpu|webgl|wasm|auto`), with a live loss chart, the measured
 * images/s, and kNN accuracy of the random-init and the trained encoder.
 *
 * URL parameters: `backend` (auto), `steps` (100), `batch` (64), `autostart` (1 starts at once),
 * `widths` (32,64,128: smallConvNet's stage widths), `knnTrain` / `knnTest` (4000 / 1000: how
 * many of the subset's training and test images the kNN uses), `seed` (0). Everything the page
 * computes is on `window.demoState`, for the end-to-end test in tests/browser/demo-page.test.ts.
 */
// The page imports the backends it offers itself; selectBackend then activates the registered one.
import '@tensorflow/tfjs-backend-webgpu';
import '@tensorflow/tfjs-backend-webgl';
import * as wasm from '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers'; // registers the gradients
import {
  knnEvaluate,
  reestimateBatchNorm,
  selectBackend,
  type BackendChoice,
  type BackendInfo,
} from 'tfjs-contrastive';
import { smallConvNet } from 'tfjs-contrastive/layers';
import { simclr, type SimCLR, type TrainStepResult } from 'tfjs-contrastive/methods';
import { drawLossChart } from './chart.js';
import { CLASSES, DATA_FILE, decodeSubset, type ByteSplit } from './data.js';

/** What the page has done so far; the end-to-end test reads it. */
export interface DemoState {
  /** What the page is doing. */
  phase: 'loading' | 'evaluating' | 'ready' | 'training' | 'done' | 'error';
  /** The backend asked for in the URL. */
  requested: BackendChoice;
  /** The backend really running (from selectBackend), once selected. */
  backend: string | null;
  /** selectBackend's full report. */
  info: BackendInfo | null;
  /** The run's settings. */
  config: {
    steps: number;
    batch: number;
    widths: number[];
    knnTrain: number;
    knnTest: number;
    seed: number;
  };
  /** The loss of every applied step, across runs. */
  losses: number[];
  /** Steps applied so far. */
  stepsDone: number;
  /** Steps skipped (non-finite loss or gradients). */
  stepsSkipped: number;
  /** images/s of the last step, as the method measured it (augmentation included). */
  lastImagesPerSecond: number | null;
  /** Mean images/s over the steps after the first of the last run, wall clock. */
  imagesPerSecond: number | null;
  /** kNN top-1 accuracy of the encoder at its random initialisation, in [0, 1]. */
  knnInit: number | null;
  /** kNN top-1 accuracy of the trained encoder, in [0, 1]. */
  knnTrained: number | null;
  /**
   * Wall-clock seconds: from navigation to the backend's selection, then data and model set-up,
   * the first kNN, the training runs together, the last kNN.
   */
  seconds: {
    backend: number;
    setup: number;
    knnInit: number;
    training: number;
    knnTrained: number;
  };
  /** Whether a run (training and its kNN) has finished. */
  done: boolean;
  /** The error that stopped the page, if any. */
  error: string | null;
}

declare global {
  interface Window {
    demoState: DemoState;
  }
}

const BACKENDS: readonly BackendChoice[] = ['auto', 'webgpu', 'webgl', 'wasm'];
const KNN = { k: 200, temperature: 0.1 } as const;
const BN_IMAGES = 1000;

function $(id: string): HTMLElement;
function $<T extends HTMLElement>(id: string, type: new () => T): T;
function $(id: string, type: new () => HTMLElement = HTMLElement): HTMLElement {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`demo page: no ${type.name} #${id}`);
  return el;
}

function intParam(params: URLSearchParams, name: string, fallback: number, min: number): number {
  const raw = params.get(name);
  if (raw === null || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) {
    throw new Error(`URL parameter ${name}=${raw}: expected an integer >= ${min}`);
  }
  return v;
}

const params = new URLSearchParams(location.search);
const requestedRaw = params.get('backend') ?? 'auto';
const state: DemoState = {
  phase: 'loading',
  requested: (BACKENDS as readonly string[]).includes(requestedRaw)
    ? (requestedRaw as BackendChoice)
    : 'auto',
  backend: null,
  info: null,
  config: { steps: 100, batch: 64, widths: [32, 64, 128], knnTrain: 4000, knnTest: 1000, seed: 0 },
  losses: [],
  stepsDone: 0,
  stepsSkipped: 0,
  lastImagesPerSecond: null,
  imagesPerSecond: null,
  knnInit: null,
  knnTrained: null,
  seconds: { backend: 0, setup: 0, knnInit: 0, training: 0, knnTrained: 0 },
  done: false,
  error: null,
};
window.demoState = state;

const fmt = (v: number, digits: number): string =>
  v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const pct = (v: number): string => `${fmt(100 * v, 1)} %`;
const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

function setStatus(text: string): void {
  $('status').textContent = text;
}

// Lets the browser paint between steps: wasm's read-backs resolve as microtasks, so without a
// task boundary a whole run could pass without a frame. rAF does not fire in hidden tabs.
function nextFrame(): Promise<void> {
  return new Promise((resolve) => {
    if (document.hidden) setTimeout(resolve, 0);
    else requestAnimationFrame(() => setTimeout(resolve, 0));
  });
}

function showBackend(info: BackendInfo): void {
  const rows: [string, string][] = [
    ['asked for', state.requested],
    ['running', info.name],
    ['device', info.device ?? (info.name === 'wasm' ? 'CPU (WebAssembly)' : 'not reported')],
    ['software renderer', info.name === 'wasm' ? '–' : info.softwareRenderer ? 'yes' : 'no'],
    ['float32', info.float32 ? 'yes' : 'no (half precision)'],
    ['SIMD', info.name === 'wasm' ? (info.simd ? 'yes' : 'no') : '–'],
    ['threads', info.name === 'wasm' ? String(info.threads) : '–'],
    ['cross-origin isolated', crossOriginIsolated ? 'yes' : 'no'],
    [
      'kernel fixes',
      info.kernelFixes.length === 0
        ? 'none'
        : `${info.kernelFixes.length} (missing, wrong or slow in tfjs 4.22)`,
    ],
    ['notes', info.notes.length === 0 ? 'none' : info.notes.join('\n')],
  ];
  const table = $('backend-table');
  table.replaceChildren(
    ...rows.map(([k, v]) => {
      const tr = document.createElement('tr');
      const th = document.createElement('th');
      const td = document.createElement('td');
      th.textContent = k;
      td.textContent = v;
      if (k === 'running') td.className = 'strong';
      if (k === 'kernel fixes') td.title = info.kernelFixes.join(', ');
      tr.append(th, td);
      return tr;
    }),
  );
}

function toImages(split: ByteSplit, count: number): tf.Tensor4D {
  const n = Math.min(count, split.count);
  const pixels = new Float32Array(n * 784);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (split.pixels[i] ?? 0) / 255;
  return tf.tensor4d(pixels, [n, 28, 28, 1]);
}

// One row of images per tensor [N, 28, 28, 1], scaled up, with the class names above.
async function drawViews(rows: tf.Tensor4D[], labels: readonly number[]): Promise<void> {
  const canvas = $('views', HTMLCanvasElement);
  const n = labels.length;
  const scale = 2;
  const cell = 28 * scale;
  const gap = 8;
  const labelH = 18;
  const rowLabelW = 64;
  canvas.width = rowLabelW + n * (cell + gap);
  canvas.height = labelH + rows.length * (cell + gap);
  const ctx = canvas.getContext('2d');
  if (ctx === null) return;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.font = '12px system-ui, sans-serif';
  ctx.fillStyle = '#222';
  ctx.textAlign = 'center';
  labels.forEach((c, i) => {
    ctx.fillText(CLASSES[c] ?? String(c), rowLabelW + i * (cell + gap) + cell / 2, 12);
  });
  ctx.textAlign = 'left';
  const names = ['image', 'view 1', 'view 2'];
  const tile = new ImageData(28, 28);
  const small = document.createElement('canvas');
  small.width = 28;
  small.height = 28;
  const sctx = small.getContext('2d');
  if (sctx === null) return;
  ctx.imageSmoothingEnabled = false;
  for (const [r, images] of rows.entries()) {
    const data = await images.data();
    const y = labelH + r * (cell + gap);
    ctx.fillStyle = '#222';
    ctx.fillText(names[r] ?? '', 4, y + cell / 2);
    for (let i = 0; i < n; i++) {
      for (let p = 0; p < 784; p++) {
        // Fashion-MNIST is white on black; shown as stored.
        const v = Math.max(0, Math.min(255, Math.round((data[i * 784 + p] ?? 0) * 255)));
        tile.data.set([v, v, v, 255], p * 4);
      }
      sctx.putImageData(tile, 0, 0);
      ctx.drawImage(small, rowLabelW + i * (cell + gap), y, cell, cell);
    }
  }
}

async function main(): Promise<void> {
  tf.enableProdMode();
  const c = state.config;
  c.steps = intParam(params, 'steps', c.steps, 1);
  c.batch = intParam(params, 'batch', c.batch, 2);
  c.knnTrain = intParam(params, 'knnTrain', c.knnTrain, 1);
  c.knnTest = intParam(params, 'knnTest', c.knnTest, 1);
  c.seed = intParam(params, 'seed', c.seed, 0);
  const widths = params.get('widths');
  if (widths !== null) {
    c.widths = widths.split(',').map(Number);
    if (c.widths.length === 0 || !c.widths.every((w) => Number.isInteger(w) && w >= 1)) {
      throw new Error(`URL parameter widths=${widths}: expected integers >= 1, e.g. 16,32,64`);
    }
  }
  if (!(BACKENDS as readonly string[]).includes(requestedRaw)) {
    throw new Error(
      `URL parameter backend=${requestedRaw}: expected one of ${BACKENDS.join(', ')}`,
    );
  }
  const stepsInput = $('steps', HTMLInputElement);
  const batchInput = $('batch', HTMLInputElement);
  const backendSelect = $('backend', HTMLSelectElement);
  stepsInput.value = String(c.steps);
  batchInput.value = String(c.batch);
  backendSelect.value = state.requested;
  backendSelect.addEventListener('change', () => {
    params.set('backend', backendSelect.value);
    params.delete('autostart');
    location.search = params.toString();
  });

  setStatus(`Selecting the ${state.requested} backend…`);
  const info = await selectBackend(state.requested, {
    // The paths and thread count live in the wasm package's module state: hand it over.
    wasmModule: wasm,
    // Absolute: the threaded build's workers resolve it too.
    wasmPaths: new URL('wasm/', location.href).href,
    candidates: ['webgpu', 'webgl', 'wasm'],
  });
  state.info = info;
  state.backend = info.name;
  state.seconds.backend = performance.now() / 1000;
  showBackend(info);

  setStatus('Loading Fashion-MNIST…');
  const response = await fetch(new URL(DATA_FILE, location.href));
  if (!response.ok) throw new Error(`${DATA_FILE}: HTTP ${response.status}`);
  const data = decodeSubset(new Uint8Array(await response.arrayBuffer()));
  const trainImages = toImages(data.train, data.train.count);
  const knnTrain = Math.min(c.knnTrain, data.train.count);
  const knnTest = Math.min(c.knnTest, data.test.count);
  c.knnTrain = knnTrain;
  c.knnTest = knnTest;
  // InstDisc's k = 200 assumes a large memory; a small one gets a tenth of its size.
  const k = Math.max(1, Math.min(KNN.k, Math.floor(knnTrain / 10)));
  const knnTrainImages = tf.slice(trainImages, [0, 0, 0, 0], [knnTrain, -1, -1, -1]);
  const knnTestImages = toImages(data.test, knnTest);
  const knnTrainLabels = Int32Array.from(data.train.labels.subarray(0, knnTrain));
  const knnTestLabels = Int32Array.from(data.test.labels.subarray(0, knnTest));
  const bnImages = tf.slice(trainImages, [0, 0, 0, 0], [Math.min(BN_IMAGES, knnTrain), -1, -1, -1]);

  const encoder = smallConvNet({ inputShape: [28, 28, 1], widths: c.widths, seed: c.seed });
  const method: SimCLR = simclr({ encoder, seed: c.seed });
  const params_ = encoder.countParams() + method.projector.countParams();
  $('train-note').textContent =
    `${data.train.count.toLocaleString('en-US')} training images (${data.train.count / 10} per class), ` +
    `smallConvNet [${c.widths.join(', ')}] + projection head (${params_.toLocaleString('en-US')} weights), ` +
    `NT-Xent τ ${method.temperature}, the preset's small-image optimiser ` +
    `(${method.optimizer.getClassName().replace(/^.*>/, '')}, warm-up then cosine decay over each run). ` +
    `Images/s counts images, not views (each image gives 2 views); the first step includes ` +
    `the backend's shader compilation or warm-up.`;
  $('knn-note').textContent =
    `Weighted kNN (k ${k}, T ${KNN.temperature}, InstDisc) on the encoder's ` +
    `${method.featureDim}-d features: ${knnTrain.toLocaleString('en-US')} labelled training ` +
    `images vote for each of ${knnTest.toLocaleString('en-US')} test images. Batch-norm ` +
    `statistics are re-estimated on ${Math.min(BN_IMAGES, knnTrain).toLocaleString('en-US')} ` +
    `clean training images before each evaluation. Chance: 10 %.`;

  // The first image of each class (the subset is a round-robin over the classes) and its views.
  const sample = tf.slice(trainImages, [0, 0, 0, 0], [10, -1, -1, -1]);
  const views = method.makeViews(sample, 12345);
  await drawViews([sample, ...views], Array.from(data.train.labels.subarray(0, 10)));
  tf.dispose([sample, ...views]);

  const evaluate = async (): Promise<number> => {
    reestimateBatchNorm(encoder, bnImages, { batchSize: 250 });
    await nextFrame();
    const trainFeatures = method.embed(knnTrainImages, { batchSize: 250 });
    const testFeatures = method.embed(knnTestImages, { batchSize: 250 });
    try {
      const { top1 } = await knnEvaluate(
        trainFeatures,
        knnTrainLabels,
        testFeatures,
        knnTestLabels,
        { k, temperature: KNN.temperature, numClasses: 10 },
      );
      return top1;
    } finally {
      tf.dispose([trainFeatures, testFeatures]);
    }
  };

  const chart = $('chart', HTMLCanvasElement);
  let planned = c.steps;
  const redraw = (): void => {
    drawLossChart(chart, {
      losses: state.losses,
      plannedSteps: planned,
      reference: {
        value: Math.log(2 * c.batch - 1),
        label: `ln(2B − 1) = ${fmt(Math.log(2 * c.batch - 1), 2)}: every view equally similar`,
      },
    });
  };
  redraw();
  new ResizeObserver(redraw).observe(chart);

  const showKnn = (): void => {
    const show = (id: string, bar: string, v: number | null): void => {
      $(id).textContent = v === null ? '–' : pct(v);
      $(bar).style.width = v === null ? '0' : `${100 * v}%`;
    };
    show('knn-init', 'bar-init', state.knnInit);
    show('knn-trained', 'bar-trained', state.knnTrained);
    $('knn-delta').textContent =
      state.knnInit !== null && state.knnTrained !== null
        ? `${state.knnTrained >= state.knnInit ? '+' : '−'}${fmt(100 * Math.abs(state.knnTrained - state.knnInit), 1)} points after ${state.stepsDone} steps`
        : '';
  };

  state.seconds.setup = performance.now() / 1000 - state.seconds.backend;
  state.phase = 'evaluating';
  setStatus(
    `kNN of the random-init encoder (${(knnTrain + knnTest).toLocaleString('en-US')} images)…`,
  );
  await nextFrame();
  const knnStart = performance.now();
  state.knnInit = await evaluate();
  state.seconds.knnInit = (performance.now() - knnStart) / 1000;
  showKnn();

  const startButton = $('start', HTMLButtonElement);
  let controller: AbortController | undefined;
  let trainSeconds = 0;

  const train = async (): Promise<void> => {
    c.steps = Number(stepsInput.value) > 0 ? Math.round(Number(stepsInput.value)) : c.steps;
    const newBatch = Math.round(Number(batchInput.value));
    c.batch = newBatch >= 2 ? newBatch : c.batch;
    planned = state.stepsDone + c.steps;
    state.phase = 'training';
    state.done = false;
    stepsInput.disabled = true;
    batchInput.disabled = true;
    controller = new AbortController();
    startButton.textContent = 'Stop';
    startButton.disabled = false;
    const runStart = performance.now();
    let firstStepEnd: number | undefined;
    let imagesAfterFirst = 0;
    let runSteps = 0;
    const onBatchEnd = async (_step: number, result: TrainStepResult): Promise<void> => {
      const t = performance.now();
      if (result.skipped) {
        state.stepsSkipped++;
      } else {
        state.losses.push(result.loss);
        state.stepsDone = result.step;
        state.lastImagesPerSecond = result.metrics.imagesPerSecond;
        runSteps++;
        if (firstStepEnd === undefined) {
          firstStepEnd = t;
        } else {
          imagesAfterFirst += c.batch;
          state.imagesPerSecond = imagesAfterFirst / ((t - firstStepEnd) / 1000);
        }
      }
      const elapsed = trainSeconds + (t - runStart) / 1000;
      const last = state.losses.at(-1);
      $('stat-step').textContent =
        `${state.stepsDone} of ${planned}` +
        (state.stepsSkipped > 0 ? ` (${state.stepsSkipped} skipped)` : '');
      $('stat-loss').textContent = last === undefined ? '–' : fmt(last, 3);
      // Means of the first and last w steps, w up to 10 and never overlapping.
      const w = Math.min(10, Math.floor(state.losses.length / 2));
      $('stat-trend-label').textContent = `loss (first ${Math.max(w, 1)} → last ${Math.max(w, 1)})`;
      $('stat-trend').textContent =
        w >= 1
          ? `${fmt(mean(state.losses.slice(0, w)), 3)} → ${fmt(mean(state.losses.slice(-w)), 3)}`
          : '–';
      $('stat-lr').textContent = result.metrics.learningRate.toExponential(2);
      $('stat-ips').textContent =
        state.lastImagesPerSecond === null ? '–' : fmt(state.lastImagesPerSecond, 1);
      $('stat-ips-mean').textContent =
        state.imagesPerSecond === null ? '–' : fmt(state.imagesPerSecond, 1);
      $('stat-time').textContent = `${fmt(elapsed, 1)} s`;
      setStatus(`Training on ${state.backend ?? '?'}: step ${state.stepsDone} of ${planned}…`);
      redraw();
      await nextFrame();
    };
    setStatus(`Training on ${state.backend ?? '?'}: first step (compiling kernels)…`);
    await nextFrame();
    const result = await method.fit(trainImages, {
      steps: c.steps,
      batchSize: c.batch,
      signal: controller.signal,
      callbacks: { onBatchEnd },
    });
    trainSeconds += (performance.now() - runStart) / 1000;
    state.seconds.training = trainSeconds;
    controller = undefined;
    startButton.disabled = true;
    startButton.textContent = 'Start training';
    state.phase = 'evaluating';
    setStatus(
      `${result.stoppedBy === 'signal' ? 'Stopped' : 'Trained'} after ${runSteps} steps; ` +
        `kNN of the trained encoder…`,
    );
    await nextFrame();
    const evalStart = performance.now();
    state.knnTrained = await evaluate();
    state.seconds.knnTrained = (performance.now() - evalStart) / 1000;
    showKnn();
    state.phase = 'done';
    state.done = true;
    startButton.textContent = 'Continue training';
    startButton.disabled = false;
    stepsInput.disabled = false;
    batchInput.disabled = false;
    setStatus(
      `Done: ${state.stepsDone} steps on ${state.backend ?? '?'}, kNN ${pct(state.knnInit ?? 0)} → ` +
        `${pct(state.knnTrained)}.`,
    );
  };

  startButton.addEventListener('click', () => {
    if (controller !== undefined) {
      startButton.disabled = true;
      setStatus('Stopping after this step…');
      controller.abort();
      return;
    }
    train().catch(fail);
  });
  state.phase = 'ready';
  startButton.disabled = false;
  setStatus(`Ready on ${info.name}. Press Start to train ${c.steps} steps.`);
  if (params.get('autostart') === '1') await train();
}

function fail(e: unknown): void {
  const message = e instanceof Error ? e.message : String(e);
  state.phase = 'error';
  state.error = message;
  const box = $('error');
  box.hidden = false;
  box.textContent = `Error: ${message}`;
  setStatus('Stopped by an error (below).');
  console.error(e);
}

main().catch(fail);
