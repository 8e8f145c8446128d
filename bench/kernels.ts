/**
 * The kernel-fix benchmarks, one backend configuration per process (a wasm thread pool is fixed
 * when the backend starts): `tsx bench/kernels.ts --backend=wasm --threads=2 [--quick]`.
 * Prints one JSON line per measurement; bench/index.ts runs the configurations and tabulates.
 *
 * - step: one training step of a small conv encoder (4 conv layers with batch norm, ReLU and max
 *   pooling, global average pooling, a dense projection) on two views of a batch of 128 32x32x3
 *   images with NT-Xent and SGD, with the kernel fixes and, on wasm, stock (where it fails).
 * - matmul: GFLOP/s of tf.matMul with and without transpose flags, stock and fixed.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { removeKernelFixes, selectBackend, installKernelFixes } from '../src/core/index.js';
import { ntXentLoss } from '../src/losses/index.js';

tf.enableProdMode();

const args = process.argv.slice(2);
const arg = (name: string): string | undefined =>
  args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const backend = (arg('backend') ?? 'wasm') as 'wasm' | 'cpu';
const threads = Number(arg('threads') ?? '2');
const quick = args.includes('--quick');
const batch = Number(arg('batch') ?? '128');

function emit(record: Record<string, unknown>): void {
  console.log(JSON.stringify({ backend, threads, ...record }));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function encoder(): tfl.LayersModel {
  const input = tfl.input({ shape: [32, 32, 3] });
  let h: tfl.SymbolicTensor = input;
  for (const [i, filters] of [32, 64, 128, 256].entries()) {
    h = tfl.layers
      .conv2d({ filters, kernelSize: 3, padding: 'same', useBias: false })
      .apply(h) as tfl.SymbolicTensor;
    h = tfl.layers.batchNormalization().apply(h) as tfl.SymbolicTensor;
    h = tfl.layers.reLU().apply(h) as tfl.SymbolicTensor;
    if (i < 3) h = tfl.layers.maxPooling2d({ poolSize: 2 }).apply(h) as tfl.SymbolicTensor;
  }
  h = tfl.layers.globalAveragePooling2d({}).apply(h) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 128 }).apply(h) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out });
}

async function trainStep(label: string, reps: number): Promise<void> {
  const model = encoder();
  const optimizer = tf.train.sgd(0.01);
  const v1 = tf.randomUniform([batch, 32, 32, 3], 0, 1, 'float32', 1);
  const v2 = tf.randomUniform([batch, 32, 32, 3], 0, 1, 'float32', 2);
  const step = async (): Promise<void> => {
    const loss = optimizer.minimize(
      () =>
        ntXentLoss(
          model.apply(v1, { training: true }) as tf.Tensor2D,
          model.apply(v2, { training: true }) as tf.Tensor2D,
        ) as tf.Scalar,
      true,
    );
    await loss!.data();
    loss!.dispose();
  };
  try {
    await step(); // warm-up
    const times: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      await step();
      times.push(performance.now() - t0);
    }
    emit({ case: 'step', label, batch, ms: median(times) });
  } catch (e) {
    emit({ case: 'step', label, batch, error: (e as Error).message.split('\n')[0] });
  } finally {
    model.dispose();
    optimizer.dispose();
    tf.dispose([v1, v2]);
  }
}

async function matMulRates(label: string): Promise<void> {
  const n = quick ? 512 : 1024;
  const a = tf.randomNormal([n, n], 0, 1, 'float32', 3);
  const b = tf.randomNormal([n, n], 0, 1, 'float32', 4);
  for (const [ta, tb] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ] as const) {
    let elapsed = 0;
    // Fresh operands each time, as in training (XNNPACK caches the packed right-hand operand of
    // a tensor it has seen, which would flatter a product repeated on the same tensors).
    const run = async (): Promise<void> => {
      const a2: tf.Tensor2D = tf.add(a, 0);
      const b2: tf.Tensor2D = tf.add(b, 0);
      await Promise.all([a2.data(), b2.data()]);
      const t0 = performance.now();
      const c = tf.matMul(a2, b2, ta, tb);
      await c.data();
      elapsed = performance.now() - t0;
      tf.dispose([a2, b2, c]);
    };
    await run();
    const times: number[] = [];
    for (let r = 0; r < (backend === 'cpu' ? 1 : 5); r++) {
      await run();
      times.push(elapsed);
    }
    const flags = `${ta ? 'A^T' : 'A'} ${tb ? 'B^T' : 'B'}`;
    emit({ case: 'matmul', label, flags, n, gflops: (2 * n ** 3) / (median(times) * 1e6) });
  }
  tf.dispose([a, b]);
}

/** The conv filter gradient of one layer (x [32, 16, 16, 64], 3x3, 64 -> 128 filters). */
async function filterGradient(label: string): Promise<void> {
  const x = tf.randomNormal([32, 16, 16, 64], 0, 1, 'float32', 5);
  const dy = tf.randomNormal([32, 16, 16, 128], 0, 1, 'float32', 6);
  try {
    const run = async (): Promise<void> => {
      const g = tf
        .engine()
        .runKernel(
          'Conv2DBackpropFilter',
          { x, dy },
          { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 64, 128] },
        ) as tf.Tensor;
      await g.data();
      g.dispose();
    };
    await run();
    const times: number[] = [];
    for (let r = 0; r < (backend === 'cpu' ? 1 : 5); r++) {
      const t0 = performance.now();
      await run();
      times.push(performance.now() - t0);
    }
    emit({ case: 'filterGradient', label, ms: median(times) });
  } catch (e) {
    emit({ case: 'filterGradient', label, error: (e as Error).message.split('\n')[0] });
  } finally {
    tf.dispose([x, dy]);
  }
}

const info = await selectBackend(backend, { threads });
emit({
  case: 'info',
  simd: info.simd,
  runningThreads: info.threads,
  kernelFixes: info.kernelFixes.length,
});
const reps = backend === 'cpu' || quick ? 1 : 3;
removeKernelFixes(backend);
await filterGradient('stock');
// The stock cpu step would take many minutes (its filter gradient): measured for wasm only.
if (backend === 'wasm') await trainStep('stock', reps);
await matMulRates('stock');
installKernelFixes(backend);
await filterGradient('fixed');
await trainStep('fixed', reps);
await matMulRates('fixed');
