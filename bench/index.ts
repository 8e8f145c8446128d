/**
 * `npm run bench [-- --backends cpu,wasm] [-- --quick] [-- --methods simclr,byol]
 * [-- --json FILE] [-- --compare FILE]`: forward + backward time of each loss next to the time
 * of the bare matrix products the same computation needs (its floor), on each backend, measured
 * in one run so that the ratios are comparable on a shared, noisy machine; then the queue, bank,
 * augmentation, kernel-fix and preset-step (bench/step.ts, wasm only) tables.
 *
 * Every figure is also a JSON record (bench/records.ts), one a line, written to `--json FILE`
 * (default .tmp/bench/latest.jsonl); `--compare FILE` prints each figure of this run next to
 * the same record of an earlier run's file and the ratio now / before.
 *
 * The floor of a loss is the plain tf.matMul calls (operands already laid out, no transpose
 * flags) that its forward pass and the gradient with respect to its trainable inputs require.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AUGMENT_HEADER, augmentRows } from './augment.js';
import { BANK_HEADER, bankRows } from './bank.js';
import { CHUNKED_HEADER, chunkedRows } from './chunked.js';
import {
  compareRecords,
  comparisonLines,
  formatRecords,
  parseBenchArgs,
  parseRecords,
  type BenchRecord,
} from './records.js';
import { stepRows } from './step.js';
import { timeIt } from './timing.js';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import {
  MomentumQueue,
  byolLoss,
  dinoLoss,
  swavLoss,
  infoNce,
  mocoV3Loss,
  ntXentLoss,
  selectBackend,
  stopGradient,
  type BackendName,
} from '../src/index.js';

tf.enableProdMode();

const args = parseBenchArgs(process.argv.slice(2));
const backends = args.backends as BackendName[];
const quick = args.quick;
const records: BenchRecord[] = [];
// Read before this run writes anything: --compare may name the file --json overwrites.
const earlier =
  args.compare === undefined ? undefined : parseRecords(readFileSync(args.compare, 'utf8'));

interface Case {
  name: string;
  /** Runs forward + backward once and waits for the result. */
  step: () => Promise<void>;
  /** Runs the bare matrix products once and waits for them. */
  floor: () => Promise<void>;
  dispose: () => void;
}

async function products(pairs: (readonly [tf.Tensor2D, tf.Tensor2D])[]): Promise<void> {
  const outs = pairs.map(([a, b]) => tf.matMul(a, b));
  await Promise.all(outs.map((o) => o.data()));
  tf.dispose(outs);
}

async function gradients(f: (...xs: tf.Tensor[]) => tf.Scalar, xs: tf.Tensor[]): Promise<void> {
  const { value, grads } = tf.valueAndGrads(f)(xs);
  await Promise.all([value.data(), ...grads.map((g) => g.data())]);
  tf.dispose([value, ...grads]);
}

function randn(shape: [number, number], seed: number): tf.Tensor2D {
  return tf.randomNormal<tf.Rank.R2>(shape, 0, 1, 'float32', seed);
}

function ntXentCase(n: number, d: number): Case {
  const z1 = randn([n, d], 1);
  const z2 = randn([n, d], 2);
  // Forward Z Z^T, [2n, d] x [d, 2n]; backward dZ = dS Z twice ([2n, 2n] x [2n, d]).
  const zt = randn([d, 2 * n], 3);
  const z = randn([2 * n, d], 4);
  const s = randn([2 * n, 2 * n], 5);
  return {
    name: `ntXentLoss N=${n} D=${d}`,
    step: () =>
      gradients((a, b) => ntXentLoss(a as tf.Tensor2D, b as tf.Tensor2D) as tf.Scalar, [z1, z2]),
    floor: () =>
      products([
        [z, zt],
        [s, z],
        [s, z],
      ]),
    dispose: () => tf.dispose([z1, z2, zt, z, s]),
  };
}

function queueCase(n: number, d: number, k: number): Case {
  const q = randn([n, d], 6);
  const key = randn([n, d], 7);
  const queue = randn([k, d], 8);
  // Forward q Queue^T ([n, d] x [d, K]); backward dq = dL Queue ([n, K] x [K, d]).
  const queueT = randn([d, k], 9);
  const dl = randn([n, k], 10);
  return {
    name: `infoNce queue N=${n} D=${d} K=${k}`,
    step: () =>
      gradients(
        (a) =>
          infoNce(a as tf.Tensor2D, stopGradient(key), {
            negatives: queue,
            temperature: 0.2,
          }) as tf.Scalar,
        [q],
      ),
    floor: () =>
      products([
        [q, queueT],
        [dl, queue],
      ]),
    dispose: () => tf.dispose([q, key, queue, queueT, dl]),
  };
}

function mocoV3Case(n: number, d: number): Case {
  const q = randn([n, d], 11);
  const k = randn([n, d], 12);
  const kt = randn([d, n], 13);
  const s = randn([n, n], 14);
  return {
    name: `mocoV3Loss N=${n} D=${d}`,
    step: () =>
      gradients((a, b) => mocoV3Loss(a as tf.Tensor2D, b as tf.Tensor2D) as tf.Scalar, [q, k]),
    floor: () =>
      products([
        [q, kt],
        [s, k],
        [s, q],
      ]),
    dispose: () => tf.dispose([q, k, kt, s]),
  };
}

/**
 * Losses without a matrix product of their own (the scores / outputs are their inputs): timed
 * against one elementwise pass (tf.exp) over all of their inputs, i.e. "how many passes" it costs.
 */
async function expPass(x: tf.Tensor): Promise<void> {
  const e = tf.exp(x);
  await e.data();
  e.dispose();
}

function swavCase(b: number, k: number, crops: number): Case {
  const scores = Array.from({ length: crops }, (_, i) => tf.tanh(randn([b, k], 100 + i)));
  const all = tf.concat(scores);
  return {
    name: `swavLoss 2+${crops - 2} crops B=${b} K=${k}`,
    step: () => gradients((...xs) => swavLoss(xs as tf.Tensor2D[]) as tf.Scalar, scores),
    floor: () => expPass(all),
    dispose: () => tf.dispose([...scores, all]),
  };
}

function dinoCase(b: number, k: number, crops: number): Case {
  const student = Array.from({ length: crops }, (_, i) => randn([b, k], 200 + i));
  const teacher = [randn([b, k], 300), randn([b, k], 301)];
  const center = tf.zeros([k]);
  const all = tf.concat(student);
  return {
    name: `dinoLoss 2+${crops - 2} crops B=${b} K=${k}`,
    step: () =>
      gradients((...xs) => dinoLoss(xs as tf.Tensor2D[], teacher, center) as tf.Scalar, student),
    floor: () => expPass(all),
    dispose: () => tf.dispose([...student, ...teacher, center, all]),
  };
}

function byolCase(n: number, d: number): Case {
  const p = randn([n, d], 400);
  const z = randn([n, d], 401);
  return {
    name: `byolLoss N=${n} D=${d}`,
    step: () => gradients((a) => byolLoss(a as tf.Tensor2D, z) as tf.Scalar, [p]),
    floor: () => expPass(p),
    dispose: () => tf.dispose([p, z]),
  };
}

interface Row {
  backend: string;
  case: string;
  lossMs: number;
  floorMs: number;
  ratio: number;
}

const rows: Row[] = [];
for (const backend of backends) {
  const info = await selectBackend(backend);
  console.log(`# ${backend}: ${JSON.stringify(info)}`);
  const slow = backend === 'cpu';
  const cases = [
    ntXentCase(256, 128),
    queueCase(256, 128, quick || slow ? 8192 : 65536),
    mocoV3Case(256, 256),
    swavCase(256, 3000, 8),
    dinoCase(64, quick || slow ? 4096 : 65536, 10),
    byolCase(256, 256),
  ];
  for (const c of cases) {
    const reps = slow ? 2 : 5;
    // Alternate loss and floor so that drift on a shared machine hits both alike.
    const lossTimes: number[] = [];
    const floorTimes: number[] = [];
    for (let r = 0; r < 2; r++) {
      lossTimes.push(await timeIt(c.step, reps));
      floorTimes.push(await timeIt(c.floor, reps));
    }
    const lossMs = Math.min(...lossTimes);
    const floorMs = Math.min(...floorTimes);
    rows.push({ backend, case: c.name, lossMs, floorMs, ratio: lossMs / floorMs });
    for (const [metric, value, unit] of [
      ['ms', lossMs, 'ms'],
      ['floorMs', floorMs, 'ms'],
      ['ratio', lossMs / floorMs, 'x'],
    ] as const) {
      records.push({ suite: 'loss', backend, case: c.name, metric, value, unit });
    }
    console.log(
      `${backend}\t${c.name}\tloss+grad ${lossMs.toFixed(1)} ms\tfloor ${floorMs.toFixed(1)} ms\tratio ${(lossMs / floorMs).toFixed(2)}`,
    );
    c.dispose();
  }
}

// MomentumQueue.enqueue against the naive immutable FIFO (slice off the oldest B rows of one
// [K, D] tensor and concatenate the new keys): O(B x D) against O(K x D) per step.
const queueRows: string[] = [];
for (const backend of backends) {
  await selectBackend(backend);
  for (const k of [4096, 65536]) {
    const b = 256;
    const d = 128;
    const keys = randn([b, d], 500);
    const queue = new MomentumQueue(k, d);
    let naive = randn([k, d], 501);
    const enqueueMs = await timeIt(async () => {
      queue.enqueue(keys);
      // Wait for every block (the one just written is not necessarily the last).
      await Promise.all(queue.read().map((block) => block.data()));
    }, 20);
    const naiveMs = await timeIt(async () => {
      const next = tf.concat([tf.slice(naive, [b, 0], [k - b, d]), keys]);
      naive.dispose();
      naive = next as tf.Tensor2D;
      await naive.data();
    }, 20);
    const name = `K=${k} B=${b} D=${d}`;
    records.push({
      suite: 'queue',
      backend,
      case: name,
      metric: 'enqueueMs',
      value: enqueueMs,
      unit: 'ms',
    });
    records.push({
      suite: 'queue',
      backend,
      case: name,
      metric: 'naiveMs',
      value: naiveMs,
      unit: 'ms',
    });
    queueRows.push(
      `| ${backend} | ${name} | ${enqueueMs.toFixed(2)} | ${naiveMs.toFixed(2)} | ${(naiveMs / enqueueMs).toFixed(1)} |`,
    );
    queue.dispose();
    tf.dispose([keys, naive]);
  }
}

console.log(
  '\nFloor: the plain matMul products a loss needs; for SwAV, DINO and BYOL (no product of',
);
console.log(
  'their own) one tf.exp pass over all their inputs, so the ratio counts elementwise passes.',
);
console.log('\n| backend | case | forward + backward (ms) | floor (ms) | ratio |');
console.log('|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${r.backend} | ${r.case} | ${r.lossMs.toFixed(1)} | ${r.floorMs.toFixed(1)} | ${r.ratio.toFixed(2)} |`,
  );
}

console.log('\n| backend | queue | enqueue (ms) | naive [K, D] FIFO (ms) | naive / enqueue |');
console.log('|---|---|---|---|---|');
for (const r of queueRows) console.log(r);

// MemoryBank update and read at InstDisc's size (bench/bank.ts).
const bankTable = await bankRows(backends, records);
console.log('');
for (const r of [...BANK_HEADER, ...bankTable]) console.log(r);

// infoNce's chunkSize: peak memory and time with a 65536-key queue (bench/chunked.ts), on wasm
// (the cpu backend would take minutes a step at this size).
if (backends.includes('wasm')) {
  const chunkedTable = await chunkedRows(['wasm'], quick);
  console.log('');
  for (const r of [...CHUNKED_HEADER, ...chunkedTable]) console.log(r);
}

// Augmentation throughput (bench/augment.ts).
const augmentTable = await augmentRows(backends, quick, false, records);
console.log('');
for (const r of [...AUGMENT_HEADER, ...augmentTable]) console.log(r);

// Kernel fixes (bench/kernels.ts): one process per configuration, since a wasm thread pool is
// fixed when the backend starts. Stock wasm is expected to fail the training step.
interface KernelRecord {
  backend: string;
  threads: number;
  case: string;
  label?: string;
  batch?: number;
  ms?: number;
  error?: string;
  flags?: string;
  n?: number;
  gflops?: number;
}
const kernelRecords: KernelRecord[] = [];
const configs: [string, number][] = [];
if (backends.includes('wasm')) configs.push(['wasm', 1], ['wasm', 2]);
if (backends.includes('cpu')) configs.push(['cpu', 1]);
for (const [backend, threads] of configs) {
  const script = fileURLToPath(new URL('./kernels.ts', import.meta.url));
  const flags = [`--backend=${backend}`, `--threads=${threads}`];
  if (quick) flags.push('--quick', '--batch=32');
  const out = execFileSync(process.execPath, ['--import', 'tsx', script, ...flags], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  for (const line of out.split('\n')) {
    if (line.startsWith('{')) kernelRecords.push(JSON.parse(line) as KernelRecord);
  }
}
const where = (r: KernelRecord): string => `${r.backend} ${r.threads}T`;
for (const r of kernelRecords) {
  const label = r.label ?? '';
  const base = { suite: 'kernels', backend: where(r) };
  if (r.case === 'step' && r.ms !== undefined)
    records.push({
      ...base,
      case: `step batch ${r.batch ?? ''} ${label}`,
      metric: 'ms',
      value: r.ms,
      unit: 'ms',
    });
  if (r.case === 'filterGradient' && r.ms !== undefined)
    records.push({
      ...base,
      case: `filterGradient ${label}`,
      metric: 'ms',
      value: r.ms,
      unit: 'ms',
    });
  if (r.case === 'matmul' && r.gflops !== undefined) {
    const name = `matMul ${r.flags ?? ''} n=${r.n ?? 0} ${label}`;
    records.push({ ...base, case: name, metric: 'gflops', value: r.gflops, unit: 'GFLOP/s' });
  }
}
console.log('\n| training step (conv encoder, 2 views, 32x32x3) | batch | kernels | ms |');
console.log('|---|---|---|---|');
for (const r of kernelRecords.filter((k) => k.case === 'step')) {
  console.log(
    `| ${where(r)} | ${r.batch ?? ''} | ${r.label ?? ''} | ${r.ms === undefined ? `fails: ${r.error ?? ''}` : r.ms.toFixed(0)} |`,
  );
}
console.log('\n| conv filter gradient x [32,16,16,64], 3x3 -> 128 | kernels | ms |');
console.log('|---|---|---|');
for (const r of kernelRecords.filter((k) => k.case === 'filterGradient')) {
  console.log(
    `| ${where(r)} | ${r.label ?? ''} | ${r.ms === undefined ? `fails: ${r.error ?? ''}` : r.ms.toFixed(1)} |`,
  );
}
console.log(
  '\n| matMul n x n, fresh operands | kernels | A B | A^T B | A B^T | A^T B^T | slowest flagged / plain |',
);
console.log('|---|---|---|---|---|---|---|');
const productRows = new Map<string, KernelRecord[]>();
for (const r of kernelRecords.filter((k) => k.case === 'matmul')) {
  const key = `${where(r)} n=${r.n ?? 0}|${r.label ?? ''}`;
  productRows.set(key, [...(productRows.get(key) ?? []), r]);
}
for (const [key, rows] of productRows) {
  const rates = rows.map((r) => r.gflops ?? 0);
  const [plain = 0, ...flagged] = rates;
  const [name, label] = key.split('|');
  console.log(
    `| ${name ?? ''} | ${label ?? ''} | ${rates.map((g) => g.toFixed(1)).join(' | ')} | ${(plain / Math.min(...flagged)).toFixed(2)}x |`,
  );
}
const step = (backend: string, threads: number): number | undefined =>
  kernelRecords.find(
    (r) =>
      r.case === 'step' && r.label === 'fixed' && r.backend === backend && r.threads === threads,
  )?.ms;
const one = step('wasm', 1);
const two = step('wasm', 2);
if (one !== undefined && two !== undefined) {
  console.log(`\nwasm training step, 1 thread / 2 threads: ${(one / two).toFixed(2)}x`);
}

// One training step of every preset, tfjs wasm next to PyTorch (bench/step.ts); cpu takes minutes
// a step (its conv gradients), so wasm only.
if (backends.includes('wasm')) {
  console.log('\nPreset training step (bench/step.ts), views given, wasm next to PyTorch:\n');
  const stepTable = await stepRows({
    backend: 'wasm',
    quick,
    ...(args.methods === undefined ? {} : { methods: args.methods }),
    records,
  });
  for (const r of stepTable) console.log(r);
}

mkdirSync(dirname(args.json), { recursive: true });
writeFileSync(args.json, formatRecords(records));
console.log(`\n${records.length} records written to ${args.json}`);
if (earlier !== undefined && args.compare !== undefined) {
  console.log(`\nCompared with ${args.compare}:\n`);
  for (const line of comparisonLines(compareRecords(records, earlier), args.compare))
    console.log(line);
}
