/**
 * The kernel fixes (src/core/kernels) against the cpu backend's stock kernels, which are the
 * reference here: a grid of convolution, depthwise and max-pool configurations, transposed and
 * fused products, long reductions, gather's gradient; plus leaks of backend data (intermediates
 * are freed by hand, so the engine's tensor count alone would not see them) and a small conv net
 * with batch norm and max pooling that trains to the same loss curve on wasm as on cpu.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import {
  ContrastiveError,
  SeededRandom,
  installKernelFixes,
  removeKernelFixes,
  selectBackend,
} from '../../src/core/index.js';
import { FILTER_GRADIENT_COLUMNS } from '../../src/core/kernels/conv.js';
import { ntXentLoss } from '../../src/losses/index.js';
import { describeBackends } from '../support/backends.js';

function randomValues(size: number, seed: number, scale = 1): Float32Array {
  const rng = new SeededRandom(seed);
  return Float32Array.from({ length: size }, () => scale * rng.normal());
}

function randomTensor(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(
    randomValues(
      shape.reduce((a, b) => a * b, 1),
      seed,
    ),
    shape,
  );
}

function dataIds(): number {
  return (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
}

/** Runs f on the active backend; returns its outputs' values and checks that nothing leaked. */
function evaluate(f: () => tf.Tensor[]): Float32Array[] {
  const ids = dataIds();
  const outs = tf.tidy(f);
  const values = outs.map((t) => t.dataSync() as Float32Array);
  tf.dispose(outs);
  expect(dataIds(), 'backend data buffers after the computation').toBe(ids);
  return values;
}

/** Runs f on the cpu backend with its stock kernels, then returns to the active backend. */
async function onStockCpu(f: () => tf.Tensor[]): Promise<Float32Array[]> {
  const active = tf.getBackend();
  removeKernelFixes('cpu');
  try {
    await tf.setBackend('cpu');
    return evaluate(f);
  } finally {
    installKernelFixes('cpu');
    await tf.setBackend(active);
  }
}

/** max |a - e| over max(1, max |e|), per output; the worst over outputs. */
function relativeError(actual: Float32Array[], expected: Float32Array[]): number {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  expected.forEach((e, k) => {
    const a = actual[k]!;
    expect(a.length).toBe(e.length);
    let scale = 1;
    let diff = 0;
    e.forEach((v, i) => {
      scale = Math.max(scale, Math.abs(v));
      diff = Math.max(diff, Math.abs(v - a[i]!));
      if (Number.isNaN(a[i]!)) diff = Infinity;
    });
    worst = Math.max(worst, diff / scale);
  });
  return worst;
}

async function expectSameAsStockCpu(f: () => tf.Tensor[], tol: number): Promise<number> {
  const actual = evaluate(f);
  const expected = await onStockCpu(f);
  const err = relativeError(actual, expected);
  expect(err).toBeLessThanOrEqual(tol);
  return err;
}

/** Gradients of sum(op(inputs) * r) with a fixed random r, so that dy = r. */
function linearGrads(
  op: (...xs: tf.Tensor[]) => tf.Tensor,
  shapes: number[][],
  seed: number,
): () => tf.Tensor[] {
  return () => {
    const xs = shapes.map((s, i) => randomTensor(s, seed + i));
    return tf.grads((...args: tf.Tensor[]) => {
      const y = op(...args);
      return tf.sum(tf.mul(y, randomTensor(y.shape, seed + 99)));
    })(xs);
  };
}

const CONV_TOL = 1e-5;

describeBackends('kernel fixes', (ctx) => {
  const { name } = ctx;
  it('are reported by selectBackend', () => {
    const expected =
      name === 'wasm' ? installKernelFixes('wasm').kernels : ['Conv2DBackpropFilter'];
    expect(ctx.info().kernelFixes).toEqual(expected);
  });

  it('conv2d input and filter gradients match stock cpu over a grid of configurations', async () => {
    let worst = 0;
    let count = 0;
    for (const stride of [1, 2, 3]) {
      for (const pad of ['same', 'valid'] as const) {
        for (const k of [1, 2, 3, 5, 7]) {
          for (const [h, w] of [
            [9, 7],
            [12, 11],
          ] as const) {
            const op = (x: tf.Tensor, f: tf.Tensor) =>
              tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, stride, pad);
            const err = await expectSameAsStockCpu(
              linearGrads(
                op,
                [
                  [3, h, w, 2],
                  [k, k, 2, 5],
                ],
                10 * k + stride,
              ),
              CONV_TOL,
            );
            worst = Math.max(worst, err);
            count++;
          }
        }
      }
    }
    expect(count).toBe(60);
    expect(worst).toBeGreaterThan(0); // the two paths really computed differently
  });

  it('conv2d gradients with explicit and asymmetric padding, and with one channel', async () => {
    const explicit: tf.backend_util.ExplicitPadding = [
      [0, 0],
      [2, 1],
      [0, 3],
      [0, 0],
    ];
    await expectSameAsStockCpu(
      linearGrads(
        (x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, [2, 1], explicit),
        [
          [2, 8, 9, 3],
          [3, 4, 3, 2],
        ],
        5,
      ),
      CONV_TOL,
    );
    await expectSameAsStockCpu(
      linearGrads(
        (x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, [1, 2], 'same'),
        [
          [1, 10, 6, 1],
          [4, 2, 1, 1],
        ],
        6,
      ),
      CONV_TOL,
    );
  });

  it('stride-1 filter gradients by columns (wasm): padding beyond the kernel, chunks of images', async () => {
    const wide: tf.backend_util.ExplicitPadding = [
      [0, 0],
      [3, 0],
      [4, 1],
      [0, 0],
    ];
    const conv = (pad: tf.backend_util.ExplicitPadding | 'same') => (x: tf.Tensor, f: tf.Tensor) =>
      tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, pad);
    const shapes = [
      [5, 6, 7, 3],
      [2, 2, 3, 4],
    ];
    await expectSameAsStockCpu(linearGrads(conv(wide), shapes, 41), CONV_TOL);
    // A kernel wider than the image: windows whose every column is padding.
    const beyond: tf.backend_util.ExplicitPadding = [
      [0, 0],
      [1, 0],
      [3, 0],
      [0, 0],
    ];
    await expectSameAsStockCpu(
      linearGrads(
        conv(beyond),
        [
          [2, 3, 2, 2],
          [2, 4, 2, 3],
        ],
        44,
      ),
      CONV_TOL,
    );
    const before = FILTER_GRADIENT_COLUMNS.maxColumns;
    // Columns (12 taps x 42 positions an image) for 2 of the 5 images at a time: chunks of 2, 2
    // and 1 summed; with the wide padding (88 positions) one image at a time.
    FILTER_GRADIENT_COLUMNS.maxColumns = 2 * (2 * 2 * 3) * (6 * 7);
    try {
      await expectSameAsStockCpu(linearGrads(conv('same'), shapes, 42), CONV_TOL);
      await expectSameAsStockCpu(linearGrads(conv(wide), shapes, 43), CONV_TOL);
    } finally {
      FILTER_GRADIENT_COLUMNS.maxColumns = before;
    }
  });

  it('depthwise conv gradients match stock cpu (multipliers 1 and 2)', async () => {
    for (const stride of [1, 2]) {
      for (const pad of ['same', 'valid'] as const) {
        for (const k of [1, 3, 5]) {
          for (const m of [1, 2]) {
            await expectSameAsStockCpu(
              linearGrads(
                (x, f) => tf.depthwiseConv2d(x as tf.Tensor4D, f as tf.Tensor4D, stride, pad),
                [
                  [2, 9, 8, 3],
                  [k, k, 3, m],
                ],
                7 * k + m,
              ),
              CONV_TOL,
            );
          }
        }
      }
    }
  });

  it('max-pool gradient matches stock cpu, ties (ReLU zeros, rounded values) included', async () => {
    for (const size of [2, 3]) {
      for (const stride of [1, 2, 3]) {
        for (const pad of ['same', 'valid'] as const) {
          const pool = (x: tf.Tensor) => tf.maxPool(x as tf.Tensor4D, size, stride, pad);
          // ReLU leaves whole windows of zeros: exactly one position may take the gradient.
          await expectSameAsStockCpu(
            linearGrads((x) => pool(tf.relu(x)), [[2, 9, 7, 3]], size + stride),
            1e-6,
          );
          await expectSameAsStockCpu(
            linearGrads((x) => pool(tf.round(x)), [[3, 8, 8, 2]], 20 + size),
            1e-6,
          );
        }
      }
    }
  });

  it('2x2 stride-2 max-pool gradient (the SIMD kernel) matches stock cpu: ties, -Infinity, NaN', async () => {
    const pool = (x: tf.Tensor, pad: 'same' | 'valid') => tf.maxPool(x as tf.Tensor4D, 2, 2, pad);
    for (const pad of ['same', 'valid'] as const) {
      // Channels in multiples of 4 (one SIMD vector), even height and width: the windows tile x.
      await expectSameAsStockCpu(
        linearGrads((x) => pool(tf.relu(x), pad), [[2, 6, 8, 8]], 31),
        0,
      );
      await expectSameAsStockCpu(
        linearGrads((x) => pool(tf.round(x), pad), [[3, 4, 4, 4]], 32),
        0,
      );
      // Whole windows of -Infinity or NaN send their gradient nowhere, as on cpu.
      await expectSameAsStockCpu(
        linearGrads(
          (x) => {
            const lanes = tf.tensor1d([0, 1, 2, 3, 0, 1, 2, 3]);
            const special = tf.where(
              tf.equal(lanes, 1),
              tf.fill(x.shape, -Infinity),
              tf.where(tf.equal(lanes, 2), tf.fill(x.shape, Number.NaN), x),
            );
            return pool(special, pad);
          },
          [[1, 4, 6, 8]],
          33,
        ),
        0,
      );
    }
  });

  it('identity (tf.clone) shares the buffer: no copy, independent disposal, assign unaffected', async () => {
    const x = tf.tensor([1, 2, 3]);
    const ids = dataIds();
    const y = tf.clone(x);
    // On wasm the fix shares the buffer (stock wasm copies it); cpu always shares.
    expect(dataIds()).toBe(ids);
    x.dispose();
    expect(Array.from(await y.data())).toEqual([1, 2, 3]);
    y.dispose();
    expect(dataIds()).toBe(ids - 1);
    const initial = tf.tensor([1, 2]);
    const v = tf.variable(initial);
    const kept = tf.clone(v);
    const next = tf.tensor([5, 6]);
    v.assign(next);
    expect(Array.from(await kept.data())).toEqual([1, 2]);
    const s = tf.tensor(['a', 'b']);
    const s2 = tf.clone(s);
    expect(await s2.data()).toEqual(['a', 'b']);
    tf.dispose([initial, v, next, kept, s, s2]);
  });

  it('transposed and fused products match stock cpu', async () => {
    await expectSameAsStockCpu(
      () => [
        tf.matMul(randomTensor([40, 24], 1), randomTensor([32, 24], 2), false, true),
        tf.matMul(randomTensor([24, 40], 3), randomTensor([32, 24], 4), true, true),
        tf.matMul(randomTensor([3, 24, 5], 5), randomTensor([3, 24, 6], 6), true, false),
        // Both flags: computed as (B A)^T, batched, with a broadcast batch dimension.
        tf.matMul(randomTensor([3, 24, 5], 13), randomTensor([1, 6, 24], 14), true, true),
        tf.fused.matMul({
          a: randomTensor([24, 40], 15),
          b: randomTensor([32, 24], 16),
          transposeA: true,
          transposeB: true,
          bias: randomTensor([32], 17),
        }),
        tf.fused.matMul({
          a: randomTensor([40, 24], 7),
          b: randomTensor([32, 24], 8),
          transposeB: true,
          bias: randomTensor([32], 9),
          activation: 'relu',
        }),
        tf.fused.matMul({
          a: randomTensor([24, 40], 10),
          b: randomTensor([24, 32], 11),
          transposeA: true,
          bias: randomTensor([32], 12),
          activation: 'elu',
        }),
      ],
      1e-6,
    );
    // A dense layer's backward pass (transposed products) too.
    await expectSameAsStockCpu(
      linearGrads(
        (x, w) => tf.relu(tf.matMul(x, w)),
        [
          [16, 20],
          [20, 12],
        ],
        40,
      ),
      1e-6,
    );
  });

  it('long sums and means keep float32 accuracy', async () => {
    const [mean, sum, rows, keep] = evaluate(() => [
      tf.mean(tf.fill([1_000_000], 0.1)),
      tf.sum(tf.fill([1009, 997], 0.1)), // a prime count of both factors: the padded path
      tf.sum(tf.fill([5000, 3], 0.1), 0),
      tf.mean(tf.fill([7, 3001, 2], 0.25), [0, 1], true),
    ]);
    expect(Math.abs(mean![0]! - 0.1)).toBeLessThan(1e-6);
    expect(Math.abs(sum![0]! / (1009 * 997 * 0.1) - 1)).toBeLessThan(1e-6);
    expect(Array.from(rows!).map((v) => Math.abs(v / 500 - 1) < 1e-6)).toEqual([true, true, true]);
    expect(Array.from(keep!).map((v) => Math.abs(v / 0.25 - 1) < 1e-6)).toEqual([true, true]);
    const shaped = tf.tidy(() => tf.mean(tf.ones([3, 2000, 4]), [1], true).shape);
    expect(shaped).toEqual([3, 1, 4]);
    // Leading and middle reductions with >= 16 kept columns go through products of ones (batch
    // norm's statistics): the same accuracy, also below 1024 elements.
    const [lead, middle, short] = evaluate(() => [
      tf.sum(tf.fill([100_003, 16], 0.1), 0),
      tf.mean(tf.fill([3, 4099, 5, 7], 0.1), [1, 2]),
      tf.sum(tf.fill([600, 40], 0.1), 0),
    ]);
    expect(Array.from(lead!).every((v) => Math.abs(v / 10_000.3 - 1) < 1e-6)).toBe(true);
    expect(middle!.length).toBe(21);
    expect(Array.from(middle!).every((v) => Math.abs(v / 0.1 - 1) < 1e-6)).toBe(true);
    expect(Array.from(short!).every((v) => Math.abs(v / 60 - 1) < 1e-6)).toBe(true);
    // Integer sums are left to the backend (exact anyway); gradients are unaffected.
    await expectSameAsStockCpu(
      () => [
        tf.sum(tf.range(0, 5000, 1, 'int32')),
        ...linearGrads((x) => tf.mean(tf.square(x), 1), [[3, 4000]], 3)(),
        // The product path on random values: leading, middle (keepDims), every axis but the last.
        tf.sum(randomTensor([300, 20], 20), 0),
        tf.mean(randomTensor([3, 40, 20], 21), [1], true),
        tf.sum(randomTensor([4, 6, 5, 32], 22), [0, 1, 2]),
        tf.mean(randomTensor([2, 17, 3, 16], 23), [1, 2]),
        ...linearGrads((x) => tf.moments(x, [0, 1, 2]).variance, [[4, 6, 5, 32]], 24)(),
      ],
      1e-6,
    );
  });

  it('tile matches stock cpu (float32, int32, bool; batch norm gradient)', async () => {
    await expectSameAsStockCpu(
      () => [
        tf.tile(randomTensor([2, 3], 1), [2, 1]),
        tf.tile(randomTensor([1, 1, 1, 4], 2), [3, 2, 2, 1]),
        tf.tile(randomTensor([2, 1, 3], 3), [1, 4, 2]),
        tf.tile(randomTensor([3], 4), [1]),
        // A size-1 last axis repeated (layer norm's statistics over its features), and odd counts.
        tf.tile(randomTensor([4, 5, 1], 5), [1, 1, 64]),
        tf.tile(randomTensor([2, 1, 3], 6), [3, 7, 5]),
        tf.tile(tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32'), [2, 3]),
        tf.cast(tf.tile(tf.tensor2d([true, false], [1, 2], 'bool'), [3, 2]), 'float32'),
        ...linearGrads(
          (x) =>
            tf.batchNorm(x, tf.fill([4], 0.5), tf.fill([4], 2), tf.fill([4], 0.1), tf.fill([4], 3)),
          [[2, 3, 3, 4]],
          9,
        )(),
      ],
      1e-6,
    );
  });

  it('transposes of rank 5 and 6 match stock cpu (float32, int32, bool)', async () => {
    await expectSameAsStockCpu(
      () => [
        // The attention's split of q, k and v: the innermost axis stays in place.
        tf.transpose(randomTensor([4, 7, 3, 2, 5], 11), [2, 0, 3, 1, 4]),
        tf.transpose(randomTensor([3, 4, 2, 5, 2], 12), [4, 3, 2, 1, 0]),
        tf.transpose(randomTensor([2, 3, 2, 3, 2, 4], 13), [0, 2, 1, 3, 4, 5]),
        tf.transpose(randomTensor([2, 1, 3, 1, 2], 14), [1, 0, 2, 4, 3]),
        tf.cast(
          tf.transpose(tf.reshape(tf.range(0, 120, 1, 'int32'), [2, 3, 4, 5, 1]), [3, 1, 0, 2, 4]),
          'float32',
        ),
        tf.cast(
          tf.transpose(tf.greater(randomTensor([2, 2, 3, 2, 2], 15), 0), [4, 0, 2, 1, 3]),
          'float32',
        ),
        ...linearGrads((x) => tf.transpose(x, [1, 3, 0, 2, 4]), [[2, 3, 4, 2, 3]], 16)(),
      ],
      0,
    );
  });

  it('slices match stock cpu: whole trailing axes, partial middle ones, -1 sizes, every dtype', async () => {
    const x = () => randomTensor([4, 5, 6, 3], 51);
    await expectSameAsStockCpu(
      () => [
        tf.slice(randomTensor([64, 300], 50), [8, 0], [8, 300]),
        tf.slice(x(), [1, 0, 0, 0], [2, -1, -1, -1]),
        tf.slice(x(), [0, 2, 0, 0], [-1, 2, -1, -1]),
        tf.slice(x(), [1, 1, 2, 1], [2, 3, 3, 2]),
        tf.slice(x(), [3, 4, 5, 2], [1, 1, 1, 1]),
        tf.slice(randomTensor([7], 52), [2], [4]),
        tf.slice(randomTensor([2, 3, 4, 5, 6], 53), [0, 1, 0, 2, 0], [2, 2, 4, 3, 6]),
        tf.cast(
          tf.slice(tf.reshape(tf.range(0, 60, 1, 'int32'), [3, 4, 5]), [1, 1, 0], [2, 2, 5]),
          'float32',
        ),
        tf.cast(tf.slice(tf.greater(randomTensor([3, 4], 54), 0), [1, 1], [2, 3]), 'float32'),
        ...linearGrads((t) => tf.slice(t, [1, 0, 2], [2, 3, 2]), [[4, 3, 5]], 55)(),
      ],
      0,
    );
  });

  it("the gradient of tile sums dy over the repetitions (tfjs-layers' layer norm included)", async () => {
    const shape = [2, 1, 3];
    const reps = [3, 4, 2];
    const x = randomTensor(shape, 17);
    const r = randomTensor([6, 4, 6], 18);
    const [g] = evaluate(() =>
      tf.grads((t: tf.Tensor) => tf.sum(tf.mul(tf.tile(t, reps), r)))([x]),
    );
    // Independently: dx[i, j, k] = sum of r over every tile position of x[i, j, k].
    const rv = r.dataSync();
    const expected = new Float32Array(6);
    for (let a = 0; a < 6; a++)
      for (let b = 0; b < 4; b++)
        for (let c = 0; c < 6; c++) expected[(a % 2) * 3 + (c % 3)]! += rv[(a * 4 + b) * 6 + c]!;
    expect(relativeError([g!], [expected])).toBeLessThan(1e-6);
    // A layer norm's backward pass is a few dozen kernels; tfjs-core's own gradient of tile made
    // one slice and one add per repetition: 2 x 32 x 16 for the gain and offset alone.
    const layer = tfl.layers.layerNormalization({ inputShape: [16, 8] });
    const input = randomTensor([32, 16, 8], 19);
    tf.dispose(layer.apply(input) as tf.Tensor);
    const info = await tf.profile(() =>
      tf.grads((t: tf.Tensor) => tf.sum(layer.apply(t) as tf.Tensor))([input]),
    );
    expect(info.kernels.filter((k) => k.name === 'Slice').length).toBe(0);
    expect(info.kernels.length).toBeLessThan(200);
    tf.dispose(info.result as tf.Tensor[]);
    tf.dispose([x, r, input]);
    layer.dispose();
  });

  it('gather (batch dims 0) matches stock cpu on every axis and dtype; bad indices throw', async () => {
    await expectSameAsStockCpu(
      () => [
        tf.gather(randomTensor([5, 3, 4, 2], 1), tf.tensor1d([4, 0, 0, 2], 'int32')),
        tf.gather(randomTensor([5, 3, 4], 2), tf.tensor2d([2, 1, 0, 2], [2, 2], 'int32'), 1),
        tf.gather(randomTensor([2, 3, 4], 3), [3, 1], -1),
        tf.cast(tf.gather(tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2], 'int32'), [2, 2, 0]), 'float32'),
      ],
      0,
    );
    const x = randomTensor([3, 2], 4);
    expect(() => tf.gather(x, [3])).toThrow(/index/);
    x.dispose();
  });

  it("gather's gradient (UnsortedSegmentSum), repeated and out-of-range ids", async () => {
    await expectSameAsStockCpu(
      () => [
        ...tf.grads((p: tf.Tensor) =>
          tf.sum(
            tf.mul(tf.gather(p, tf.tensor1d([0, 2, 2, 5, 2], 'int32')), randomTensor([5, 3], 4)),
          ),
        )([randomTensor([6, 3], 3)]),
        tf.unsortedSegmentSum(randomTensor([4, 2, 3], 5), tf.tensor1d([1, -1, 1, 3], 'int32'), 4),
        tf.unsortedSegmentSum(tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32'), [1, 1], 2),
      ],
      1e-6,
    );
  });

  it('einsum (no wasm kernel) runs through the cpu backend', async () => {
    await expectSameAsStockCpu(
      () => [tf.einsum('ij,jk->ik', randomTensor([5, 4], 1), randomTensor([4, 3], 2))],
      1e-6,
    );
  });
});

describe('installKernelFixes / removeKernelFixes', () => {
  it('install is idempotent, remove restores the stock kernels', async () => {
    await selectBackend('wasm');
    const report = installKernelFixes('wasm');
    expect(installKernelFixes('wasm')).toEqual(report);
    expect(report.kernels).toContain('Conv2DBackpropFilter');
    const grad = () =>
      tf.tidy(() =>
        tf.grad((f: tf.Tensor) =>
          tf.sum(tf.conv2d(tf.ones([1, 4, 4, 1]) as tf.Tensor4D, f as tf.Tensor4D, 1, 'valid')),
        )(tf.ones([2, 2, 1, 1])),
      );
    removeKernelFixes('wasm');
    try {
      // Stock tfjs-backend-wasm 4.22 has no filter gradient: no conv layer can train.
      expect(grad).toThrow(/Conv2DBackpropFilter/);
    } finally {
      installKernelFixes('wasm');
    }
    const g = grad();
    expect(Array.from(g.dataSync())).toEqual([9, 9, 9, 9]);
    g.dispose();
  });

  it('stock wasm loses accuracy on long means; the fix restores it', async () => {
    await selectBackend('wasm');
    const mean = () => tf.tidy(() => tf.mean(tf.fill([1_000_000], 0.1)).dataSync()[0]!);
    removeKernelFixes('wasm');
    let stock: number;
    try {
      stock = mean();
    } finally {
      installKernelFixes('wasm');
    }
    expect(Math.abs(stock - 0.1)).toBeGreaterThan(1e-4);
    expect(Math.abs(mean() - 0.1)).toBeLessThan(1e-6);
  });

  it('rejects other backends with a ContrastiveError', () => {
    expect(() => installKernelFixes('webgl' as 'wasm')).toThrow(ContrastiveError);
    expect(() => removeKernelFixes('gpu' as 'cpu')).toThrow(/'wasm' or 'cpu'/);
  });
});

describe('a conv net with batch norm and max pooling', () => {
  // Four conv layers, two batch norms, two max pools, trained with NT-Xent for 20 SGD steps from
  // the same weights and data on each backend.
  async function lossCurve(backend: 'cpu' | 'wasm'): Promise<number[]> {
    await selectBackend(backend);
    const before = tf.memory().numTensors;
    const input = tfl.input({ shape: [16, 16, 3] });
    let h = tfl.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same' }).apply(input);
    h = tfl.layers.batchNormalization().apply(h);
    h = tfl.layers.reLU().apply(h);
    h = tfl.layers.maxPooling2d({ poolSize: 2 }).apply(h);
    h = tfl.layers.conv2d({ filters: 16, kernelSize: 3, padding: 'same' }).apply(h);
    h = tfl.layers.batchNormalization().apply(h);
    h = tfl.layers.reLU().apply(h);
    h = tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }).apply(h);
    h = tfl.layers.conv2d({ filters: 16, kernelSize: 3, strides: 2, activation: 'relu' }).apply(h);
    h = tfl.layers.conv2d({ filters: 16, kernelSize: 1 }).apply(h);
    h = tfl.layers.globalAveragePooling2d({}).apply(h);
    const output = tfl.layers.dense({ units: 8 }).apply(h) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: output });
    const initial = model
      .getWeights()
      .map((w, i) => tf.tensor(randomValues(w.size, 100 + i, 0.3), w.shape));
    model.setWeights(initial);
    tf.dispose(initial);
    const images = randomTensor([8, 16, 16, 3], 1);
    const view2 = tf.tidy(() => tf.add(images, tf.mul(0.3, randomTensor([8, 16, 16, 3], 2))));
    const optimizer = tf.train.sgd(0.05);
    const losses: number[] = [];
    for (let step = 0; step < 20; step++) {
      const loss = optimizer.minimize(() => {
        const z1 = model.apply(images, { training: true }) as tf.Tensor2D;
        const z2 = model.apply(view2, { training: true }) as tf.Tensor2D;
        return ntXentLoss(z1, z2, { temperature: 0.5 }) as tf.Scalar;
      }, true);
      losses.push(loss!.dataSync()[0]!);
      loss!.dispose();
    }
    tf.dispose([images, view2]);
    model.dispose();
    optimizer.dispose();
    expect(tf.memory().numTensors).toBe(before);
    return losses;
  }

  it('trains on wasm with the same loss curve as on cpu for 20 steps', async () => {
    const cpu = await lossCurve('cpu');
    const wasm = await lossCurve('wasm');
    expect(cpu[19]!).toBeLessThan(cpu[0]! - 0.1); // it really trains
    wasm.forEach((l, i) => {
      expect(Math.abs(l - cpu[i]!), `step ${i}`).toBeLessThan(1e-3 * Math.abs(cpu[i]!));
    });
  });
});
