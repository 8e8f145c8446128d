/**
 * Augmentation throughput: images per second through the SimCLR recipe (two views of 32x32,
 * 96x96 and 224x224 images) and DINO's multi-crop (2 global 224 + 8 local 96 views), on each
 * backend, next to the same pipeline in PyTorch on 2 threads (bench/augment_torch.py: torchvision
 * when installed, else the same steps in plain torch ops), measured in the same run so that the
 * ratio holds on a shared machine. Part of `npm run bench`; alone:
 *
 *   npx tsx bench/augment.ts [--backends=wasm,cpu] [--quick] [--tensor-ops]
 *
 * --tensor-ops also times cpu and wasm with the host loops off (the tensor operations).
 *
 * The PyTorch side runs first, in its own process, when /usr/bin/python3 has torch (skipped with
 * a message otherwise); never at the same time as the TypeScript side.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import {
  dinoRecipe,
  multiCrop,
  selectBackend,
  simclrRecipe,
  type BackendName,
  type ViewSpec,
} from '../src/index.js';
import { setHostAugmentation } from '../src/augment/host.js';
import type { BenchRecord } from './records.js';

interface AugmentCase {
  readonly name: string;
  readonly side: number;
  readonly batch: number;
  readonly quickBatch: number;
  readonly recipe: ViewSpec[];
}

// The same cases, in the same order, as CASES in bench/augment_torch.py.
const CASES: readonly AugmentCase[] = [
  { name: 'SimCLR, 2 views', side: 32, batch: 256, quickBatch: 64, recipe: simclrRecipe(32) },
  { name: 'SimCLR, 2 views', side: 96, batch: 128, quickBatch: 32, recipe: simclrRecipe(96) },
  { name: 'SimCLR, 2 views', side: 224, batch: 64, quickBatch: 16, recipe: simclrRecipe(224) },
  { name: 'DINO, 2 + 8 views', side: 224, batch: 64, quickBatch: 16, recipe: dinoRecipe(224) },
];

export const AUGMENT_HEADER = [
  '| backend | recipe | image | batch | ms | images/s | PyTorch images/s (2 threads) | ratio |',
  '|---|---|---|---|---|---|---|---|',
];

interface TorchRow {
  case: string;
  side: number;
  images_per_s: number;
  pipeline: string;
}

/** The PyTorch side's images/s per case, or why there is none. */
function torchRows(quick: boolean): { rows: TorchRow[]; note: string } {
  const script = fileURLToPath(new URL('./augment_torch.py', import.meta.url));
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' });
  } catch {
    return { rows: [], note: 'PyTorch side skipped: /usr/bin/python3 cannot import torch' };
  }
  const out = execFileSync('/usr/bin/python3', [script, '--json', ...(quick ? ['--quick'] : [])], {
    encoding: 'utf8',
  });
  const rows = out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as TorchRow);
  return { rows, note: `PyTorch side: ${rows[0]?.pipeline ?? '?'} (bench/augment_torch.py)` };
}

/**
 * One row per backend and case. `tensorOps`: also time cpu and wasm with their host loops turned
 * off (the tensor operations, which webgl and webgpu run; the implementation before the host path).
 */
export async function augmentRows(
  backends: readonly BackendName[],
  quick: boolean,
  tensorOps = false,
  records?: BenchRecord[],
): Promise<string[]> {
  const torch = torchRows(quick);
  console.log(torch.note);
  const rows: string[] = [];
  const runs = backends.flatMap((backend) =>
    tensorOps && (backend === 'cpu' || backend === 'wasm')
      ? [
          { backend, host: true },
          { backend, host: false },
        ]
      : [{ backend, host: true }],
  );
  for (const { backend, host } of runs) {
    await selectBackend(backend);
    const before = setHostAugmentation(host);
    const label = host ? backend : `${backend} (tensor ops)`;
    for (const c of CASES) {
      const batch = quick ? c.quickBatch : c.batch;
      const images = tf.randomUniform(
        [batch, c.side, c.side, 3],
        0,
        1,
        'float32',
        1,
      ) as tf.Tensor4D;
      const run = async (seed: number): Promise<number> => {
        const t0 = performance.now();
        const views = multiCrop(images, { crops: c.recipe, rng: seed });
        await Promise.all(views.map((v) => v.data()));
        const ms = performance.now() - t0;
        tf.dispose(views);
        return ms;
      };
      await run(0); // warm-up
      const times: number[] = [];
      for (let r = 1; r <= 3; r++) times.push(await run(r));
      const ms = Math.min(...times);
      const perSecond = (1000 * batch) / ms;
      const theirs = torch.rows.find((t) => t.case === c.name && t.side === c.side)?.images_per_s;
      const what = `${c.name} ${c.side}x${c.side} batch ${batch}${label === backend ? '' : ` (${label})`}`;
      records?.push({ suite: 'augment', backend, case: what, metric: 'ms', value: ms, unit: 'ms' });
      if (theirs !== undefined) {
        records?.push({
          suite: 'augment',
          backend: 'torch',
          case: what,
          metric: 'images/s',
          value: theirs,
          unit: 'images/s',
        });
      }
      rows.push(
        `| ${label} | ${c.name} | ${c.side}x${c.side} | ${batch} | ${ms.toFixed(0)} | ` +
          `${perSecond.toFixed(0)} | ${theirs === undefined ? '-' : theirs.toFixed(0)} | ` +
          `${theirs === undefined ? '-' : (perSecond / theirs).toFixed(2)} |`,
      );
      console.log(rows[rows.length - 1]);
      images.dispose();
    }
    setHostAugmentation(before);
  }
  return rows;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  tf.enableProdMode();
  const args = process.argv.slice(2);
  const backendArg = args.find((a) => a.startsWith('--backends='))?.split('=')[1];
  const rows = await augmentRows(
    (backendArg ?? 'wasm').split(',') as BackendName[],
    args.includes('--quick'),
    args.includes('--tensor-ops'),
  );
  console.log('');
  for (const r of [...AUGMENT_HEADER, ...rows]) console.log(r);
}
