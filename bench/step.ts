/**
 * The preset step benchmark: one `method.trainStep({ images, views, indices })` of every preset
 * in demo/shared.ts's PRESETS, with the views given (augmentation excluded), next to the same
 * step in PyTorch (bench/step_torch.py) measured in the same run:
 *
 *   npx tsx bench/step.ts [--backend wasm] [--threads 2] [--quick] [--methods simclr,byol]
 *                         [--json FILE]
 *
 * Encoders: smallConvNet({ inputShape: [32, 32, 3], widths: [32, 64, 128] }), or tinyVit
 * ({ inputShape: [32, 32, 3] }, patch 4, width 64, depth 4) for mocoV3 and dino; batch 128 of
 * 32x32x3 images, so two views of 128 (SwAV and DINO add their 14 px local crops, InstDisc has
 * one view). Every preset gets `imageSize: 32` (its small-image defaults), InstDisc a bank of
 * 60,000 entries, and SwAV's prototypes and DINO's last layer are trainable from the first step
 * (`freezePrototypesSteps: 0`, `freezeLastLayerUntil: { step: 0 }`) so that the step timed is the
 * one of the rest of a run. Each side runs `warmup` steps (Adam creates its slots on the first),
 * then times `reps` steps one by one; the figure is their median. Per preset the order is
 * PyTorch, tfjs, PyTorch (its two medians pooled), so that drift on a shared machine hits both.
 *
 * bench/index.ts (`npm run bench`) calls {@link stepRows} for wasm.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import { PRESETS, type PresetOptions } from '../demo/shared.js';
import { selectBackend, type BackendName } from '../src/index.js';
import { smallConvNet, tinyVit } from '../src/layers/index.js';
import { flagValue, formatRecords, type BenchRecord, type RecordFields } from './records.js';

/** The presets whose encoder is tinyVit (the rest get smallConvNet). */
const VIT_PRESETS = new Set(['mocoV3', 'dino']);
const PYTHON = '/usr/bin/python3';
const TORCH_SCRIPT = fileURLToPath(new URL('./step_torch.py', import.meta.url));
const BATCH = 128;
/**
 * DINO's batch: with 2 + 8 crops through tinyVit its training step holds about 60 MB of tensors
 * per image until the backward pass ends (1.8 GB at batch 32), so batch 128 does not fit in
 * wasm's 4 GiB heap; both sides run it at 32.
 */
const DINO_BATCH = 32;
const batchOf = (name: string): number => (name === 'dino' ? DINO_BATCH : BATCH);
const DATASET_SIZE = 60000;

/** Options of {@link stepRows}. */
export interface StepOptions {
  readonly backend: BackendName;
  /** wasm threads to ask for (default: selectBackend's, the logical cores). */
  readonly threads?: number;
  readonly quick: boolean;
  /** Presets to time; default all of PRESETS. */
  readonly methods?: readonly string[];
  /** Where the records go. */
  readonly records?: BenchRecord[];
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** One preset's step on the current tfjs backend: the timed steps' ms and the views' shapes. */
async function tfjsSteps(
  name: string,
  warmup: number,
  reps: number,
): Promise<{ ms: number[]; views: number[][]; encoder: string; leaked: number }> {
  const build = PRESETS[name];
  if (build === undefined) throw new Error(`unknown preset ${name}`);
  const vit = VIT_PRESETS.has(name);
  const encoder = vit
    ? tinyVit({ inputShape: [32, 32, 3], seed: 1 })
    : smallConvNet({ inputShape: [32, 32, 3], widths: [32, 64, 128], seed: 1 });
  const method = build({
    encoder,
    disposeEncoder: true,
    seed: 0,
    imageSize: 32,
    datasetSize: DATASET_SIZE,
    freezePrototypesSteps: 0,
    freezeLastLayerUntil: { step: 0 },
  } as PresetOptions);
  const batch = batchOf(name);
  const images = tf.randomUniform([batch, 32, 32, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
  const views = method.makeViews(images, 0);
  const indices = Int32Array.from({ length: batch }, (_, i) => i);
  const step = async (): Promise<void> => {
    const r = await method.trainStep({ images, views, indices });
    if (r.skipped) throw new Error(`${name}: step skipped (${r.reason ?? ''})`);
  };
  try {
    for (let i = 0; i < warmup; i++) await step();
    const before = tf.memory().numTensors;
    const ms: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      await step();
      ms.push(performance.now() - t0);
    }
    return {
      ms,
      views: views.map((v) => [...v.shape]),
      encoder: vit ? 'tinyVit' : 'smallConvNet',
      leaked: tf.memory().numTensors - before,
    };
  } finally {
    method.dispose();
    tf.dispose([images, ...views]);
  }
}

/** Why PyTorch cannot run here, or undefined when `/usr/bin/python3 -c 'import torch'` works. */
export function torchMissing(): string | undefined {
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  if (r.error !== undefined) return `${PYTHON} does not run (${r.error.message})`;
  if (r.status !== 0) {
    const last = r.stderr.trim().split('\n').pop() ?? '';
    return `${PYTHON} -c 'import torch' failed: ${last}`;
  }
  return undefined;
}

interface TorchReply {
  readonly method?: string;
  readonly ms?: number[];
  readonly error?: string;
  readonly ready?: boolean;
  readonly torch?: string;
  readonly threads?: number;
  readonly interopThreads?: number;
  readonly memoryFormat?: string;
  readonly blas?: string;
  readonly blasGflops?: number;
}

/** bench/step_torch.py in its serving mode: one JSON request a line, one JSON reply a line. */
class TorchSteps {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: Interface;
  private readonly pending: ((line: string) => void)[] = [];
  private readonly queued: string[] = [];
  private stderr = '';

  constructor(threads: number) {
    this.child = spawn(PYTHON, [TORCH_SCRIPT, '--serve', '--threads', String(threads)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stderr.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-2000);
    });
    this.lines = createInterface({ input: this.child.stdout });
    this.lines.on('line', (line) => {
      if (!line.startsWith('{')) return;
      const next = this.pending.shift();
      if (next === undefined) this.queued.push(line);
      else next(line);
    });
    this.child.on('exit', () => {
      for (const f of this.pending.splice(0)) f(JSON.stringify({ error: this.failure() }));
    });
  }

  private failure(): string {
    const last = this.stderr.trim().split('\n').pop() ?? '';
    return `step_torch.py exited${last === '' ? '' : `: ${last}`}`;
  }

  /** The next JSON line from the script. */
  next(): Promise<TorchReply> {
    const line = this.queued.shift();
    if (line !== undefined) return Promise.resolve(JSON.parse(line) as TorchReply);
    if (this.child.exitCode !== null) return Promise.resolve({ error: this.failure() });
    return new Promise((resolve) => {
      this.pending.push((l) => resolve(JSON.parse(l) as TorchReply));
    });
  }

  run(request: Record<string, unknown>): Promise<TorchReply> {
    this.child.stdin.write(`${JSON.stringify(request)}\n`);
    return this.next();
  }

  close(): void {
    this.child.stdin.end();
    this.lines.close();
  }
}

/** The header lines of {@link stepRows}' table. */
export const STEP_HEADER = [
  '| preset | encoder | views (B x side) | tfjs (ms) | PyTorch (ms) | tfjs / PyTorch |',
  '|---|---|---|---|---|---|',
];

/**
 * Times every preset's training step on `options.backend` (and in PyTorch when it is
 * installed): markdown lines (notes, threads line, header and one row per preset); the figures
 * go to `options.records` as suite 'step' records.
 */
export async function stepRows(options: StepOptions): Promise<string[]> {
  const { backend, quick } = options;
  const methods = options.methods ?? Object.keys(PRESETS);
  for (const m of methods) {
    if (PRESETS[m] === undefined)
      throw new Error(`--methods: unknown preset ${m} (one of ${Object.keys(PRESETS).join(', ')})`);
  }
  const info = await selectBackend(
    backend,
    options.threads === undefined ? {} : { threads: options.threads },
  );
  const warmup = 2;
  const reps = quick ? 3 : 5;
  const loadBefore = loadavg()[0] ?? 0;
  const missing = torchMissing();
  const torch = missing === undefined ? new TorchSteps(info.threads) : undefined;
  const lines: string[] = [];
  let torchInfo: TorchReply | undefined;
  if (torch !== undefined) {
    torchInfo = await torch.next();
    if (torchInfo.error !== undefined) lines.push(`PyTorch column skipped: ${torchInfo.error}`);
  } else {
    lines.push(`PyTorch column skipped: ${missing ?? ''}`);
  }
  const torchOk = torch !== undefined && torchInfo?.ready === true;
  const where = `${backend} ${info.threads}T`;
  const torchWhere = `pytorch ${torchInfo?.threads ?? 0}T`;
  lines.push(
    `Threads: tfjs ${backend} ${info.threads} (${backend === 'wasm' ? 'XNNPACK pool' : 'one JavaScript thread'}), ` +
      (torchOk
        ? `PyTorch ${torchInfo?.torch ?? ''} ${torchInfo?.threads ?? ''} (torch.set_num_threads; interop ${torchInfo?.interopThreads ?? ''}, ${torchInfo?.memoryFormat ?? ''})`
        : 'PyTorch not run'),
    ...(torchOk
      ? [
          `PyTorch's BLAS (its dense layers; convolutions run on oneDNN): ${torchInfo?.blas ?? '?'}, ` +
            `${torchInfo?.blasGflops ?? '?'} GFLOP/s on a 512^3 matMul`,
        ]
      : []),
    `Batch ${BATCH} (DINO ${DINO_BATCH}), ${warmup} warm-up steps, median of ${reps} timed steps (PyTorch: of ${2 * reps}, before and after tfjs).`,
    '',
    ...STEP_HEADER,
  );
  const push = (fields: RecordFields): void => {
    options.records?.push({ suite: 'step', ...fields });
  };
  for (const name of methods) {
    let torchMs: number[] = [];
    let torchError: string | undefined;
    const torchRun = async (): Promise<void> => {
      if (!torchOk || torchError !== undefined) return;
      const reply = await torch.run({ method: name, views: shapes, warmup, reps });
      if (reply.error !== undefined) torchError = reply.error;
      else torchMs = [...torchMs, ...(reply.ms ?? [])];
    };
    // PyTorch gets the views' shapes, from the preset's own recipe.
    const shapes = viewShapes(name);
    await torchRun();
    const t = await tfjsSteps(name, warmup, reps);
    await torchRun();
    const tfjsMs = median(t.ms);
    const ptMs = torchMs.length > 0 ? median(torchMs) : Number.NaN;
    const viewText = describeViews(t.views);
    const extra = { encoder: t.encoder, batch: batchOf(name), views: viewText, reps };
    push({ backend: where, case: name, metric: 'ms', value: tfjsMs, unit: 'ms', ...extra });
    if (!Number.isNaN(ptMs)) {
      push({ backend: torchWhere, case: name, metric: 'ms', value: ptMs, unit: 'ms', ...extra });
      push({
        backend: `${where} / ${torchWhere}`,
        case: name,
        metric: 'ratio',
        value: tfjsMs / ptMs,
        unit: 'x',
      });
    }
    const ptText =
      torchError !== undefined
        ? `fails: ${torchError}`
        : Number.isNaN(ptMs)
          ? '-'
          : ptMs.toFixed(0);
    const ratio = Number.isNaN(ptMs) ? '-' : (tfjsMs / ptMs).toFixed(2);
    const row = `| ${name} | ${t.encoder} | ${viewText} | ${tfjsMs.toFixed(0)} | ${ptText} | ${ratio} |`;
    console.error(`step: ${row}${t.leaked !== 0 ? ` (${t.leaked} tensors leaked a step)` : ''}`);
    lines.push(row);
  }
  torch?.close();
  lines.push(
    '',
    `Load average (1 min) before / after: ${loadBefore.toFixed(1)} / ${(loadavg()[0] ?? 0).toFixed(1)} on ${cpus().length} cores (other processes' work slows both sides).`,
  );
  return lines;
}

/** The shapes [B, H, W, C] of a preset's views, from its own recipe (on a tiny batch). */
function viewShapes(name: string): number[][] {
  const build = PRESETS[name];
  if (build === undefined) return [];
  const encoder = smallConvNet({ inputShape: [32, 32, 3], widths: [4], seed: 1 });
  const method = build({
    encoder,
    disposeEncoder: true,
    imageSize: 32,
    datasetSize: DATASET_SIZE,
  } as PresetOptions);
  const images = tf.zeros([1, 32, 32, 3]) as tf.Tensor4D;
  const views = method.makeViews(images, 0);
  const shapes = views.map((v) => [batchOf(name), v.shape[1], v.shape[2], v.shape[3]]);
  tf.dispose([images, ...views]);
  method.dispose();
  return shapes;
}

/** '2x32 + 6x14' for two 32 px and six 14 px views. */
function describeViews(shapes: readonly number[][]): string {
  const parts: [number, number][] = [];
  for (const s of shapes) {
    const side = s[1] ?? 0;
    const last = parts[parts.length - 1];
    if (last !== undefined && last[1] === side) last[0]++;
    else parts.push([1, side]);
  }
  return `${parts.map(([n, side]) => `${n}x${side}`).join(' + ')} (B ${shapes[0]?.[0] ?? 0})`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  tf.enableProdMode();
  const argv = process.argv.slice(2);
  const threads = flagValue(argv, 'threads');
  const json = flagValue(argv, 'json');
  const records: BenchRecord[] = [];
  const lines = await stepRows({
    backend: (flagValue(argv, 'backend') ?? 'wasm') as BackendName,
    ...(threads === undefined ? {} : { threads: Number(threads) }),
    quick: argv.includes('--quick'),
    ...(flagValue(argv, 'methods') === undefined
      ? {}
      : { methods: (flagValue(argv, 'methods') ?? '').split(',') }),
    records,
  });
  console.log(lines.join('\n'));
  if (json !== undefined) {
    mkdirSync(dirname(json), { recursive: true });
    writeFileSync(json, formatRecords(records));
    console.log(`\n${records.length} records written to ${json}`);
  }
}
