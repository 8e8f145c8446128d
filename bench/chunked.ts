/**
 * `chunkSize` for `npm run bench`: peak memory and time of one forward + backward of MoCo's
 * InfoNCE with a queue (N 4096 queries, D 128, K 65536 keys from a `MomentumQueue`, gradient with
 * respect to the queries), unchunked against `chunkSize` (4096 by default), on wasm.
 *
 * Memory is measured twice: `tf.profile`'s peakBytes (the most bytes held by live tensors after
 * any kernel of the step, nested kernels of custom gradients included; a kernel's own scratch
 * memory is not seen) minus the bytes live before the step, and the wasm heap
 * (`WebAssembly.Memory`, which grows and never shrinks: after the runs it is the high-water mark
 * of the whole process, allocator overhead and kernel scratch included). So that the heap figure
 * belongs to one configuration, each one runs in a fresh process.
 *
 * Run alone with `npx tsx bench/chunked.ts [--backends=wasm] [--chunk=4096] [--quick]`
 * (`--quick`: N 512, K 8192, chunk 1024).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import {
  MomentumQueue,
  infoNce,
  selectBackend,
  stopGradient,
  type BackendName,
} from '../src/index.js';
import { timeIt } from './timing.js';

interface Measurement {
  backend: string;
  threads: number;
  n: number;
  d: number;
  k: number;
  /** undefined: unchunked. */
  chunk?: number;
  ms: number;
  /** tf.profile peakBytes minus the bytes live before the step. */
  peakBytes: number;
  /** The wasm heap after the runs (its high-water mark), or undefined off wasm. */
  heapBytes?: number;
  /** The wasm heap before the first step (queue, queries and keys allocated). */
  heapBeforeBytes?: number;
  /** Live tensors after the runs minus before (0: no leak). */
  leaked: number;
}

/** A configuration that could not run (the error, e.g. the wasm heap's 4 GiB limit). */
interface Failure {
  n: number;
  d: number;
  k: number;
  chunk?: number;
  error: string;
}

function wasmHeapBytes(): number | undefined {
  const backend = tf.backend() as { wasm?: { HEAPU8?: Uint8Array } };
  return backend.wasm?.HEAPU8?.buffer.byteLength;
}

/** One configuration, in this process. */
async function measure(
  backend: BackendName,
  n: number,
  d: number,
  k: number,
  chunk: number | undefined,
  reps: number,
): Promise<Measurement> {
  const info = await selectBackend(backend);
  const queue = new MomentumQueue(k, d, { seed: 1 });
  const q = tf.randomNormal<tf.Rank.R2>([n, d], 0, 1, 'float32', 2);
  const key = tf.randomNormal<tf.Rank.R2>([n, d], 0, 1, 'float32', 3);
  const step = async (): Promise<void> => {
    const { value, grads } = tf.valueAndGrads((x: tf.Tensor) =>
      infoNce(x as tf.Tensor2D, stopGradient(key), {
        negatives: queue,
        temperature: 0.2,
        ...(chunk === undefined ? {} : { chunkSize: chunk }),
      }),
    )([q]);
    await Promise.all([value.data(), ...grads.map((g) => g.data())]);
    tf.dispose([value, ...grads]);
  };
  const tensorsBefore = tf.memory().numTensors;
  const heapBeforeBytes = wasmHeapBytes();
  const bytesBefore = tf.memory().numBytes;
  // The profiled run is also the warm-up.
  const profile = await tf.profile(step);
  const ms = await timeIt(step, reps);
  const heapBytes = wasmHeapBytes();
  const leaked = tf.memory().numTensors - tensorsBefore;
  queue.dispose();
  tf.dispose([q, key]);
  return {
    backend,
    threads: info.threads,
    n,
    d,
    k,
    ...(chunk === undefined ? {} : { chunk }),
    ms,
    peakBytes: profile.peakBytes - bytesBefore,
    ...(heapBytes === undefined ? {} : { heapBytes }),
    ...(heapBeforeBytes === undefined ? {} : { heapBeforeBytes }),
    leaked,
  };
}

const run = promisify(execFile);

const MB = (bytes: number | undefined): string =>
  bytes === undefined ? '-' : (bytes / 2 ** 20).toFixed(0);

/** The table's header lines. */
export const CHUNKED_HEADER = [
  '| backend | infoNce + queue, forward + backward | chunkSize | peak tensor bytes above start (MiB) | wasm heap high-water (MiB) | ms | leaked tensors |',
  '|---|---|---|---|---|---|---|',
];

/**
 * Markdown rows, unchunked then chunked per backend, and a ratio row; each configuration runs in
 * a child process of its own (a fresh wasm heap).
 */
export async function chunkedRows(
  backends: readonly BackendName[],
  quick: boolean,
  chunk = quick ? 1024 : 4096,
): Promise<string[]> {
  // The size, and (full mode) one with half the queries, where unchunked fits in wasm's
  // 4 GiB heap, for a measured ratio.
  const sizes: [number, number, number][] = quick
    ? [[512, 128, 8192]]
    : [
        [4096, 128, 65536],
        [2048, 128, 65536],
      ];
  const rows: string[] = [];
  const script = fileURLToPath(import.meta.url);
  for (const backend of backends) {
    for (const [n, d, k] of sizes) {
      const results: (Measurement | Failure)[] = [];
      for (const c of [undefined, chunk]) {
        const flags = [
          '--child',
          `--backend=${backend}`,
          `--n=${n}`,
          `--d=${d}`,
          `--k=${k}`,
          '--reps=3',
          ...(c === undefined ? [] : [`--chunk=${c}`]),
        ];
        let out = '';
        try {
          out = (
            await run(process.execPath, ['--import', 'tsx', script, ...flags], {
              encoding: 'utf8',
              maxBuffer: 1 << 26,
            })
          ).stdout;
        } catch (e) {
          // A child that failed still printed its JSON line (or nothing, if it died).
          const stdout = (e as { stdout?: unknown }).stdout;
          out = typeof stdout === 'string' ? stdout : '';
        }
        const line = out.split('\n').find((l) => l.startsWith('{'));
        results.push(
          line === undefined
            ? { n, d, k, ...(c === undefined ? {} : { chunk: c }), error: 'the process died' }
            : (JSON.parse(line) as Measurement | Failure),
        );
      }
      for (const r of results) {
        const where = `N=${r.n} D=${r.d} K=${r.k}`;
        rows.push(
          'error' in r
            ? `| ${backend} | ${where} | ${r.chunk ?? 'none'} | fails: ${r.error} | | | |`
            : `| ${r.backend} ${r.threads}T | ${where} | ${r.chunk ?? 'none'} | ${MB(r.peakBytes)} | ${MB(r.heapBytes)} | ${r.ms.toFixed(0)} | ${r.leaked} |`,
        );
      }
      const [plain, chunked] = results as [Measurement | Failure, Measurement | Failure];
      if (!('error' in plain) && !('error' in chunked)) {
        const ratio = (a: number | undefined, b: number | undefined): string =>
          a === undefined || b === undefined ? '-' : `${(a / b).toFixed(1)}x smaller`;
        rows.push(
          `| ${backend} | N=${n} K=${k}: unchunked / chunked | | ${ratio(plain.peakBytes, chunked.peakBytes)} | ${ratio(plain.heapBytes, chunked.heapBytes)} | chunked ${(chunked.ms / plain.ms).toFixed(2)}x the time | |`,
        );
      }
    }
  }
  return rows;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  tf.enableProdMode();
  const args = process.argv.slice(2);
  const arg = (name: string): string | undefined =>
    args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  if (args.includes('--child')) {
    const chunk = arg('chunk') === undefined ? undefined : Number(arg('chunk'));
    const [n, d, k] = [Number(arg('n')), Number(arg('d')), Number(arg('k'))];
    try {
      const m = await measure(
        (arg('backend') ?? 'wasm') as BackendName,
        n,
        d,
        k,
        chunk,
        Number(arg('reps') ?? 3),
      );
      console.log(JSON.stringify(m));
    } catch (e) {
      // A kernel whose output could not be allocated surfaces as a TypeError inside tfjs.
      const heap = wasmHeapBytes();
      const message = e instanceof Error ? (e.message.split('\n')[0] ?? '') : String(e);
      const error =
        heap !== undefined && heap >= 4095 * 2 ** 20
          ? `out of memory, the wasm heap at its 4096 MiB maximum (tfjs: ${message})`
          : message;
      console.log(JSON.stringify({ n, d, k, ...(chunk === undefined ? {} : { chunk }), error }));
    }
    process.exit(0);
  } else {
    const quick = args.includes('--quick');
    const chunk = arg('chunk');
    const rows = await chunkedRows(
      (arg('backends') ?? 'wasm').split(',') as BackendName[],
      quick,
      chunk === undefined ? undefined : Number(chunk),
    );
    for (const line of [...CHUNKED_HEADER, ...rows]) console.log(line);
  }
}
