/**
 * MemoryBank + nceLoss against the independent PyTorch reference (scripts/fixtures/memory.py),
 * and MomentumQueue's FIFO order, wrap-around, cost and state.
 */
import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, it, vi } from 'vitest';
import {
  ContrastiveError,
  MemoryBank,
  MomentumQueue,
  infoNce,
  nceLoss,
  type InfoNceOptions,
} from '../../src/index.js';
import { describeBackends, expectClose, finiteDifferenceGradient } from '../support/backends.js';

interface NceCase {
  name: string;
  options: { temperature: number; normalize: boolean; z?: number };
  features: { shape: number[]; data: number[] };
  memory: { shape: number[]; data: number[] };
  indices: number[];
  noise: { shape: number[]; data: number[] };
  loss: number;
  z: number;
  grad: number[];
  memory_after_update: number[];
}

const cases = (
  JSON.parse(readFileSync(resolve(import.meta.dirname, '../fixtures/memory.json'), 'utf8')) as {
    cases: NceCase[];
  }
).cases;

describeBackends('nceLoss and MemoryBank against the PyTorch reference', ({ tol, name }) => {
  for (const c of cases) {
    it(c.name, async () => {
      const f = tf.tensor2d(c.features.data, c.features.shape as [number, number]);
      const memory = tf.tensor2d(c.memory.data, c.memory.shape as [number, number]);
      const noise = tf.tensor(c.noise.data, c.noise.shape, 'int32');
      const { loss, z } = nceLoss(f, c.indices, memory, noise, c.options);
      expectClose(await loss.data(), c.loss, tol, `${c.name} [${name}]: loss`);
      expectClose(await z.data(), c.z, tol, `${c.name} [${name}]: Z`);
      const g = tf.grad(
        (x: tf.Tensor) => nceLoss(x as tf.Tensor2D, c.indices, memory, noise, c.options).loss,
      )(f);
      expectClose(await g.data(), c.grad, 10 * tol, `${c.name} [${name}]: gradient`);
      for (const storage of ['host', 'backend'] as const) {
        const bank = MemoryBank.fromState(
          {
            config: {
              momentum: 0.5,
              dim: c.memory.shape[1]!,
              size: c.memory.shape[0]!,
              rng: [1, 2, 3, 4],
            },
            tensors: { values: memory },
          },
          { storage },
        );
        expect(bank.storage).toBe(storage);
        // The bank itself as the memory: only the scored rows are read, same loss and gradient.
        const fromBank = nceLoss(f, c.indices, bank, noise, c.options);
        expectClose(await fromBank.loss.data(), c.loss, tol, `${c.name} [${storage}]: loss`);
        const gb = tf.grad(
          (x: tf.Tensor) => nceLoss(x as tf.Tensor2D, c.indices, bank, noise, c.options).loss,
        )(f);
        expectClose(await gb.data(), c.grad, 10 * tol, `${c.name} [${storage}]: gradient`);
        bank.update(c.indices, f);
        expectClose(
          await bank.value.data(),
          c.memory_after_update,
          tol,
          `${c.name} [${storage}]: bank update`,
        );
        bank.dispose();
        tf.dispose([fromBank.loss, fromBank.z, gb]);
      }
      tf.dispose([f, memory, noise, loss, z, g]);
    });
  }
});

describeBackends('nceLoss properties', ({ tol }) => {
  it('a fixed Z is used as given; gradients agree with finite differences; Z has none', async () => {
    const bank = new MemoryBank(30, 6, { seed: 3 });
    const f = tf.randomNormal<tf.Rank.R2>([3, 6], 0, 1, 'float32', 1);
    const noise = bank.sampleNoise(8);
    const { loss, z } = nceLoss(f, [0, 1, 2], bank.value, noise, { z: 2.5 });
    expectClose(await z.data(), 2.5, tol);
    const fd = finiteDifferenceGradient(
      (x) => nceLoss(x as tf.Tensor2D, [0, 1, 2], bank.value, noise, { z: 2.5 }).loss,
      f,
    );
    const g = tf.grad(
      (x: tf.Tensor) => nceLoss(x as tf.Tensor2D, [0, 1, 2], bank.value, noise, { z: 2.5 }).loss,
    )(f);
    expectClose(g, fd, 5e-3, 'gradient vs finite differences');
    // With Z estimated, Z is a constant of the gradient (InstDisc estimates it without gradient).
    const gz = tf.grad((x: tf.Tensor) => nceLoss(x as tf.Tensor2D, [0, 1, 2], bank.value, noise).z)(
      f,
    );
    expect(Array.from(gz.dataSync()).every((v) => v === 0)).toBe(true);
    tf.dispose([f, noise, loss, z, g, gz]);
    bank.dispose();
  });

  it('rejects out-of-range indices and mismatched dimensions', () => {
    const bank = new MemoryBank(10, 4);
    const f = tf.zeros([2, 4]) as tf.Tensor2D;
    const f5 = tf.zeros([2, 5]) as tf.Tensor2D;
    expect(() => nceLoss(f, [0, 10], bank.value, [1, 2])).toThrow(
      "nceLoss: argument 'indices[1]' must be an integer index in [0, 10), but received 10.",
    );
    expect(() => nceLoss(f5, [0, 1], bank.value, [1, 2])).toThrow(
      "nceLoss: argument 'memory' must be a float32 tensor of shape [*, 5]",
    );
    expect(() => nceLoss(f, [0, 1], bank.value, [1, 2], { z: 0 })).toThrow("argument 'options.z'");
    expect(() => {
      bank.update([0, 1, 2], f);
    }).toThrow("MemoryBank.update: argument 'indices'");
    expect(() => new MemoryBank(0)).toThrow(ContrastiveError);
    tf.dispose([f, f5]);
    bank.dispose();
  });
});

describeBackends('MemoryBank', ({ tol, name }) => {
  it(`storage: host on cpu and wasm by default; host and backend storage hold the same entries`, async () => {
    const auto = new MemoryBank(50, 8, { seed: 2 });
    expect(auto.storage).toBe(name === 'cpu' || name === 'wasm' ? 'host' : 'backend');
    const host = new MemoryBank(50, 8, { seed: 2, storage: 'host' });
    const backend = new MemoryBank(50, 8, { seed: 2, storage: 'backend' });
    // The same initial draws.
    expect(Array.from(await host.value.data())).toEqual(Array.from(await backend.value.data()));
    for (let step = 0; step < 5; step++) {
      const f = tf.randomNormal<tf.Rank.R2>([6, 8], 0, 1, 'float32', 10 + step);
      const idx = Int32Array.from([0, 7, 13, 21, 40, 49].map((i) => (i + step * 3) % 50));
      const idxTensor = tf.tensor1d(idx, 'int32');
      host.update(idx, f);
      backend.update(idxTensor, f);
      tf.dispose([f, idxTensor]);
    }
    expectClose(await host.value.data(), Array.from(await backend.value.data()), tol);
    const rows = [host.read([1, 2, 3]), backend.read([1, 2, 3])];
    expectClose(await rows[0]!.data(), Array.from(await rows[1]!.data()), tol);
    tf.dispose(rows);
    for (const b of [auto, host, backend]) b.dispose();
  });

  for (const storage of ['host', 'backend'] as const) {
    it(`[${storage}] an update changes the rows of the batch and no others`, async () => {
      const bank = new MemoryBank(40, 6, { seed: 4, storage });
      const before = Array.from(await bank.value.data());
      const f = tf.randomNormal<tf.Rank.R2>([3, 6], 0, 1, 'float32', 3);
      bank.update([5, 17, 39], f);
      const after = Array.from(await bank.value.data());
      const changed = new Set<number>();
      after.forEach((v, i) => {
        if (v !== before[i]) changed.add(Math.floor(i / 6));
      });
      expect([...changed].sort((a, b) => a - b)).toEqual([5, 17, 39]);
      f.dispose();
      bank.dispose();
    });

    it(`[${storage}] indices out of range are refused, as arrays and as tensors (host storage)`, () => {
      const bank = new MemoryBank(10, 4, { storage });
      const f = tf.zeros([2, 4]) as tf.Tensor2D;
      expect(() => bank.read([0, 10])).toThrow(
        "MemoryBank.read: argument 'indices[1]' must be an integer index in [0, 10)",
      );
      const t = tf.tensor1d([3, -1], 'int32');
      if (storage === 'host') {
        expect(() => bank.update(t, f)).toThrow("MemoryBank.update: argument 'indices[1]'");
        expect(() => bank.read(t)).toThrow(ContrastiveError);
      }
      expect(() => bank.update([0, 1, 2], f)).toThrow("MemoryBank.update: argument 'indices'");
      tf.dispose([f, t]);
      bank.dispose();
    });
  }

  it('nceLoss refuses a bank of another width', () => {
    const bank = new MemoryBank(10, 4);
    const f = tf.zeros([2, 5]) as tf.Tensor2D;
    expect(() => nceLoss(f, [0, 1], bank, [1, 2])).toThrow(
      "nceLoss: argument 'memory' must be a bank of 5-dimensional entries",
    );
    f.dispose();
    bank.dispose();
  });

  it('starts uniform in [-s, s], s = 1/sqrt(D/3), and updates to unit rows', async () => {
    const bank = new MemoryBank(2000, 12, { seed: 5 });
    const v = Array.from(await bank.value.data());
    const s = 1 / Math.sqrt(4);
    expect(Math.max(...v)).toBeLessThanOrEqual(s);
    expect(Math.min(...v)).toBeGreaterThanOrEqual(-s);
    expect(Math.abs(v.reduce((a, b) => a + b, 0) / v.length)).toBeLessThan(0.01);
    const f = tf.ones([2, 12]) as tf.Tensor2D;
    bank.update([3, 7], f);
    const norms = tf.tidy(() => tf.norm(bank.read([3, 7]), 'euclidean', 1));
    expectClose(await norms.data(), [1, 1], tol);
    norms.dispose();
    tf.dispose(f);
    bank.dispose();
  });

  it('sampling is reproducible from the seed and survives save/restore', async () => {
    const a = new MemoryBank(100, 4, { seed: 9 });
    const b = new MemoryBank(100, 4, { seed: 9 });
    const [na, nb] = [a.sampleNoise(16, 2), b.sampleNoise(16, 2)];
    expect(await na.data()).toEqual(await nb.data());
    const state = a.getState();
    expect(Object.keys(state.config).sort()).toEqual(['dim', 'momentum', 'rng', 'size']);
    expect(state.config).toMatchObject({ momentum: 0.5, dim: 4, size: 100 });
    expect(state.config.rng).toHaveLength(4);
    expect(JSON.parse(JSON.stringify(state.config))).toEqual(state.config);
    expect(state.tensors.values!.shape).toEqual([100, 4]);
    const restored = MemoryBank.fromState(state);
    // The state's tensors are the caller's: disposing them leaves both banks intact.
    tf.dispose(Object.values(state.tensors));
    const [x, y] = [a.sampleNoise(32), restored.sampleNoise(32)];
    expect(await x.data()).toEqual(await y.data());
    expect(await restored.value.data()).toEqual(await a.value.data());
    // Both then evolve identically.
    const f = tf.randomNormal<tf.Rank.R2>([3, 4], 0, 1, 'float32', 4);
    a.update([5, 50, 99], f);
    restored.update([5, 50, 99], f);
    expect(await restored.value.data()).toEqual(await a.value.data());
    expect(restored.momentum).toBe(a.momentum);
    tf.dispose([na, nb, x, y, f]);
    [a, b, restored].forEach((m) => {
      m.dispose();
    });
  });

  it('fromState validates the config and the tensor', () => {
    const bank = new MemoryBank(6, 3, { momentum: 0.25, seed: 1 });
    const state = bank.getState();
    const values = state.tensors.values!;
    const wrong = tf.zeros([6, 4]);
    const withConfig = (patch: Record<string, unknown>) => ({
      config: { ...state.config, ...patch } as never,
      tensors: state.tensors,
    });
    expect(() =>
      MemoryBank.fromState({ config: state.config, tensors: { values: wrong } }),
    ).toThrow(
      "MemoryBank.fromState: argument 'state.tensors.values' must be a float32 tensor of shape [6, 3]",
    );
    expect(() => MemoryBank.fromState({ config: state.config, tensors: {} })).toThrow(
      "argument 'state.tensors.values' must be a float32 tensor of shape [6, 3] [size, dim] (the entries), but received undefined.",
    );
    expect(() => MemoryBank.fromState(withConfig({ size: 5 }))).toThrow("'state.tensors.values'");
    expect(() => MemoryBank.fromState(withConfig({ momentum: 1 }))).toThrow(
      "MemoryBank.fromState: argument 'state.config.momentum' must be a finite number >= 0 and < 1",
    );
    expect(() => MemoryBank.fromState(withConfig({ rng: [0, 0, 0, 0] }))).toThrow(
      "MemoryBank.fromState: argument 'state.config.rng' must be four unsigned 32-bit integers, not all zero",
    );
    expect(() => MemoryBank.fromState(withConfig({ dim: undefined }))).toThrow(
      "argument 'state.config.dim' must be an integer >= 1, but received undefined.",
    );
    expect(() => MemoryBank.fromState({ values: [1, 2] } as never)).toThrow(
      "MemoryBank.fromState: argument 'state.config' must be an object of JSON values",
    );
    expect(() => MemoryBank.fromState(null as never)).toThrow(ContrastiveError);
    tf.dispose([values, wrong]);
    bank.dispose();
  });
});

/** Keys whose direction names them: key t is [t, 1] (normalised: t = x / y), one per id. */
function namedKeys(ids: readonly number[]): tf.Tensor2D {
  return tf.tensor2d(
    ids.flatMap((t) => [t, 1]),
    [ids.length, 2],
  );
}

/** The ids of a queue's keys, oldest first (x / y of each unit row [t, 1] / |[t, 1]|). */
async function idsOf(queue: MomentumQueue): Promise<number[]> {
  const all = queue.readConcatenated();
  const rows = (await all.array()) as number[][];
  all.dispose();
  return rows.map(([x, y]) => Math.round(x! / y!));
}

const range = (start: number, n: number): number[] =>
  Array.from({ length: n }, (_, i) => start + i);

describeBackends('MomentumQueue', ({ tol }) => {
  it('is FIFO, wraps when K is not a multiple of B, counts the real keys, keeps the newest K of a long batch', async () => {
    const q = new MomentumQueue(5, 2, { blockSize: 2 }); // blocks of 2, 2, 1 rows
    expect(q.count).toBe(0);
    const batches = [range(10, 2), range(20, 2), range(30, 2), range(40, 3)].map(namedKeys);
    const counts: number[] = [];
    for (const k of batches) {
      q.enqueue(k);
      counts.push(q.count);
    }
    expect(counts).toEqual([2, 4, 5, 5]);
    // Newest 5 keys, oldest first: ... 30, 31, 40, 41, 42.
    expect(await idsOf(q)).toEqual([30, 31, 40, 41, 42]);
    expect(q.read().reduce((n, c) => n + c.shape[0], 0)).toBe(5);
    // A batch longer than K, written with the ring pointer mid-queue (at 1).
    const big = namedKeys(range(50, 7));
    q.enqueue(big);
    expect(await idsOf(q)).toEqual([52, 53, 54, 55, 56]);
    q.enqueue(batches[0]!);
    expect(await idsOf(q)).toEqual([54, 55, 56, 10, 11]);
    tf.dispose([...batches, big]);
    q.dispose();
  });

  it('the initial random keys are not counted: after B < K keys, the first K - B are the random ones', async () => {
    const q = new MomentumQueue(6, 2, { seed: 3 });
    const initial = q.readConcatenated();
    const k = namedKeys([7, 8]);
    q.enqueue(k);
    expect(q.count).toBe(2);
    const after = q.readConcatenated();
    const old = tf.tidy(() => tf.slice(initial, [2, 0], [4, 2]));
    const kept = tf.tidy(() => tf.slice(after, [0, 0], [4, 2]));
    expect(await kept.data()).toEqual(await old.data());
    expect((await idsOf(q)).slice(4)).toEqual([7, 8]);
    tf.dispose([initial, k, after, old, kept]);
    q.dispose();
  });

  it('stores keys L2-normalised once, in row blocks and their transposed column blocks', async () => {
    const q = new MomentumQueue(10, 3, { blockSize: 4 });
    const raw = tf.tensor2d([3, 0, 4, 0, 2, 0, 1, 1, 1, 0.1, -5, 2], [4, 3]);
    q.enqueue(raw);
    const { rows, columns, normalized } = q.negatives();
    expect(normalized).toBe(true);
    expect(rows.map((r) => r.shape)).toEqual([
      [4, 3],
      [4, 3],
      [2, 3],
    ]);
    expect(columns.map((c) => c.shape)).toEqual([
      [3, 4],
      [3, 4],
      [3, 2],
    ]);
    expect(q.read()).toEqual(rows);
    for (const [i, r] of rows.entries()) {
      const t = tf.transpose(r);
      expect(await columns[i]!.data(), `block ${i}`).toEqual(await t.data());
      t.dispose();
    }
    const norms = tf.tidy(() => tf.norm(q.readConcatenated(), 'euclidean', 1));
    expectClose(
      norms,
      Array.from({ length: 10 }, () => 1),
      tol,
      'norms',
    );
    const stored = tf.tidy(() => tf.slice(q.readConcatenated(), [6, 0], [4, 3]));
    const s = Math.sqrt;
    expectClose(
      stored,
      [
        0.6,
        0,
        0.8,
        0,
        1,
        0,
        1 / s(3),
        1 / s(3),
        1 / s(3),
        0.1 / s(29.01),
        -5 / s(29.01),
        2 / s(29.01),
      ],
      tol,
      'normalised keys',
    );
    tf.dispose([raw, norms, stored]);
    q.dispose();
  });

  it('holds ceil(K / blockSize) blocks (default 4096 rows, or K); an enqueue rewrites only the blocks its keys land in', () => {
    const long = new MomentumQueue(65536, 2);
    expect([long.blockSize, long.read().length, long.negatives().columns.length]).toEqual([
      4096, 16, 16,
    ]);
    long.dispose();
    const short = new MomentumQueue(1000, 2);
    expect([short.blockSize, short.read().length]).toEqual([1000, 1]);
    short.dispose();

    const q = new MomentumQueue(100, 8, { blockSize: 40 }); // blocks of 40, 40, 20 rows
    const touched = (k: tf.Tensor2D): number[] => {
      const [rows, columns] = [q.read(), q.negatives().columns];
      q.enqueue(k);
      const [r, c] = [q.read(), q.negatives().columns];
      const changed = r.flatMap((b, i) => (b === rows[i] ? [] : [i]));
      expect(c.flatMap((b, i) => (b === columns[i] ? [] : [i]))).toEqual(changed);
      return changed;
    };
    const k = (n: number): tf.Tensor2D => tf.ones([n, 8]) as tf.Tensor2D;
    const batches = [k(40), k(30), k(20), k(10), k(20), k(150)];
    const live = tf.memory().numTensors;
    expect(touched(batches[0]!)).toEqual([0]); // rows 0-39
    expect(touched(batches[1]!)).toEqual([1]); // 40-69
    expect(touched(batches[2]!)).toEqual([1, 2]); // 70-89
    expect(touched(batches[3]!)).toEqual([2]); // 90-99
    expect(touched(batches[4]!)).toEqual([0]); // 0-19
    expect(touched(batches[5]!)).toEqual([0, 1, 2]); // the newest 100 of 150
    // No tensor is left behind: still 2 x 3 blocks.
    expect(tf.memory().numTensors).toBe(live);
    tf.dispose(batches);
    q.dispose();
  });

  it('a batch that wraps around rewrites the last and first blocks, each once', async () => {
    const q = new MomentumQueue(10, 2, { blockSize: 4 }); // blocks of 4, 4, 2
    const first = namedKeys(range(1, 8));
    q.enqueue(first);
    const middle = q.read()[1];
    const wrap = namedKeys(range(20, 4)); // rows 8, 9, 0, 1
    q.enqueue(wrap);
    expect(q.read()[1]).toBe(middle);
    expect(await idsOf(q)).toEqual([3, 4, 5, 6, 7, 8, 20, 21, 22, 23]);
    tf.dispose([first, wrap]);
    q.dispose();
  });

  it('negatives() give infoNce the same loss and query/key gradients as the unnormalised keys concatenated', () => {
    const q = new MomentumQueue(40, 6, { blockSize: 16, seed: 2 });
    // 4 batches of 12 unnormalised keys (norms 0.1 to 10): the queue wraps, all 40 keys are real.
    const raw = [0, 1, 2, 3].map((i) =>
      tf.tidy(() =>
        tf.mul(
          tf.randomNormal<tf.Rank.R2>([12, 6], 0, 1, 'float32', 20 + i),
          tf.reshape(tf.linspace(0.1, 10, 12), [12, 1]),
        ),
      ),
    ) as tf.Tensor2D[];
    for (const k of raw) q.enqueue(k);
    expect(q.count).toBe(40);
    const reference = tf.tidy(() => tf.slice(tf.concat(raw, 0), [8, 0], [40, 6]));
    const x = tf.randomNormal<tf.Rank.R2>([5, 6], 0, 1, 'float32', 3);
    const y = tf.randomNormal<tf.Rank.R2>([5, 6], 0, 1, 'float32', 4);
    const loss = (negatives: InfoNceOptions['negatives']) =>
      tf.valueAndGrads(
        (a: tf.Tensor, b: tf.Tensor) =>
          infoNce(a as tf.Tensor2D, b as tf.Tensor2D, {
            negatives,
            temperature: 0.2,
          }) as tf.Scalar,
      )([x, y]);
    const viaKeys = loss(q.negatives());
    const viaTensor = loss(reference);
    expectClose(viaKeys.value, viaTensor.value, tol, 'loss');
    expectClose(viaKeys.grads[0]!, viaTensor.grads[0]!, tol, 'gradient w.r.t. the queries');
    expectClose(viaKeys.grads[1]!, viaTensor.grads[1]!, tol, 'gradient w.r.t. the keys');
    // The row blocks (read()) are the same keys, and per-query losses agree too.
    const perQuery = [q.negatives(), q.read(), reference].map((n) =>
      infoNce(x, y, { negatives: n, reduction: 'none' }),
    );
    expectClose(perQuery[0]!, perQuery[2]!, tol, 'per-query (negatives())');
    expectClose(perQuery[1]!, perQuery[2]!, tol, 'per-query (read())');
    // normalize: false uses the stored (normalised) keys as they are.
    const stored = q.readConcatenated();
    const raw1 = infoNce(x, y, { negatives: q.negatives(), normalize: false });
    const raw2 = infoNce(x, y, { negatives: stored, normalize: false });
    expectClose(raw1, raw2, tol, 'normalize: false');
    // Keys marked not normalised are normalised in both layouts.
    const unmarked = {
      rows: [reference],
      columns: [tf.transpose(reference)],
      normalized: false,
    };
    const viaUnmarked = loss(unmarked);
    expectClose(viaUnmarked.value, viaTensor.value, tol, 'unnormalised NegativeKeys: loss');
    expectClose(viaUnmarked.grads[0]!, viaTensor.grads[0]!, tol, 'unnormalised: query gradient');
    tf.dispose([
      ...raw,
      reference,
      x,
      y,
      viaKeys.value,
      ...viaKeys.grads,
      viaTensor.value,
      ...viaTensor.grads,
      viaUnmarked.value,
      ...viaUnmarked.grads,
      ...perQuery,
      stored,
      raw1,
      raw2,
      unmarked.columns[0]!,
    ]);
    q.dispose();
  });

  it('infoNce rejects NegativeKeys whose blocks do not match', () => {
    const x = tf.zeros([2, 4]) as tf.Tensor2D;
    const r = tf.zeros([3, 4]) as tf.Tensor2D;
    const c = tf.zeros([4, 3]) as tf.Tensor2D;
    const c2 = tf.zeros([4, 2]) as tf.Tensor2D;
    expect(() =>
      infoNce(x, x, { negatives: { rows: [r], columns: [c2], normalized: true } }),
    ).toThrow(
      "infoNce: argument 'options.negatives.columns[0]' must be a float32 tensor of shape [4, 3]",
    );
    expect(() =>
      infoNce(x, x, { negatives: { rows: [r], columns: [], normalized: true } }),
    ).toThrow(
      "argument 'options.negatives.columns' must be a list of 1 [D, k_i] tensors, one per row block",
    );
    expect(() => infoNce(x, x, { negatives: { rows: [], columns: [], normalized: true } })).toThrow(
      "argument 'options.negatives.rows' must be a non-empty list of [k_i, D] tensors",
    );
    expect(() =>
      infoNce(x, x, { negatives: { rows: [r], columns: [c], normalized: 'yes' as never } }),
    ).toThrow("argument 'options.negatives.normalized'");
    expect(() =>
      infoNce(x, x, { negatives: { rows: [c], columns: [r], normalized: true } }),
    ).toThrow("argument 'options.negatives.rows[0]' must be a float32 tensor of shape [*, 4]");
    tf.dispose([x, r, c, c2]);
  });

  it('getState/fromState: config and oldest-first keys; a restored queue evolves exactly like the original', async () => {
    const q = new MomentumQueue(40, 6, { blockSize: 16, seed: 2 });
    const k1 = tf.randomNormal<tf.Rank.R2>([14, 6], 0, 1, 'float32', 3);
    const k2 = tf.randomNormal<tf.Rank.R2>([9, 6], 0, 1, 'float32', 4);
    q.enqueue(k1); // the pointer is mid-block now
    const state = q.getState();
    expect(state.config).toEqual({ size: 40, dim: 6, blockSize: 16, count: 14 });
    expect(JSON.parse(JSON.stringify(state.config))).toEqual(state.config);
    expect(Object.keys(state.tensors)).toEqual(['keys']);
    const all = q.readConcatenated();
    expect(await state.tensors.keys!.data()).toEqual(await all.data());
    const restored = MomentumQueue.fromState(state);
    tf.dispose(Object.values(state.tensors)); // the caller's; the restored queue has copies
    expect([restored.size, restored.dim, restored.blockSize, restored.count]).toEqual([
      40, 6, 16, 14,
    ]);
    for (const k of [k2, k1, k2]) {
      q.enqueue(k);
      restored.enqueue(k);
    }
    expect(restored.count).toBe(q.count);
    const [c1, c2] = [q.readConcatenated(), restored.readConcatenated()];
    expect(await c2.data()).toEqual(await c1.data());
    tf.dispose([k1, k2, all, c1, c2]);
    q.dispose();
    restored.dispose();
  });

  it('fromState builds the blocks from the saved keys directly (no random queue first)', async () => {
    const kernelsOf = async (f: () => MomentumQueue): Promise<string[]> => {
      let made: MomentumQueue | undefined;
      const info = await tf.profile(() => {
        made = f();
      });
      made?.dispose();
      return [...new Set(info.kernelNames)].sort();
    };
    const q = new MomentumQueue(64, 4, { blockSize: 16 });
    const state = q.getState();
    // A new queue normalises its random keys (Rsqrt among them): the check can fail.
    expect(await kernelsOf(() => new MomentumQueue(64, 4, { blockSize: 16 }))).toContain('Rsqrt');
    // A restored one only slices and transposes the saved keys.
    expect(await kernelsOf(() => MomentumQueue.fromState(state))).toEqual(['Slice', 'Transpose']);
    tf.dispose(Object.values(state.tensors));
    q.dispose();
  });

  it('fromState validates the config and the keys', () => {
    const q = new MomentumQueue(8, 3, { blockSize: 4 });
    const state = q.getState();
    const keys = state.tensors.keys!;
    const withConfig = (patch: Record<string, unknown>) => ({
      config: { ...state.config, ...patch } as never,
      tensors: state.tensors,
    });
    const caller = 'MomentumQueue.fromState: argument';
    expect(() => MomentumQueue.fromState(withConfig({ size: 9 }))).toThrow(
      `${caller} 'state.tensors.keys' must be a float32 tensor of shape [9, 3] [size, dim] (the keys, oldest first), but received a float32 tensor of shape [8, 3].`,
    );
    expect(() => MomentumQueue.fromState(withConfig({ count: 9 }))).toThrow(
      `${caller} 'state.config.count' must be an integer >= 0 and <= 8, but received 9.`,
    );
    expect(() => MomentumQueue.fromState(withConfig({ blockSize: 0 }))).toThrow(
      `${caller} 'state.config.blockSize'`,
    );
    expect(() => MomentumQueue.fromState(withConfig({ dim: 2.5 }))).toThrow(
      `${caller} 'state.config.dim' must be an integer >= 1`,
    );
    expect(() => MomentumQueue.fromState({ config: state.config, tensors: {} })).toThrow(
      `${caller} 'state.tensors.keys'`,
    );
    expect(() => MomentumQueue.fromState({ size: 8, dim: 3, keys: [] } as never)).toThrow(
      `${caller} 'state.config' must be an object of JSON values`,
    );
    expect(() => MomentumQueue.fromState(undefined as never)).toThrow(ContrastiveError);
    tf.dispose(keys);
    q.dispose();
  });

  it('warns when the queue is longer than the data set, and rejects bad keys and block sizes', () => {
    const warn = vi.fn();
    const q = new MomentumQueue(100, 4, { datasetSize: 50, onWarning: warn });
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toMatch(/longer than the data set/);
    const bad = tf.zeros([2, 5]) as tf.Tensor2D;
    expect(() => {
      q.enqueue(bad);
    }).toThrow("MomentumQueue.enqueue: argument 'keys' must be a float32 tensor of shape [*, 4]");
    expect(() => new MomentumQueue(10, 4, { blockSize: 0 })).toThrow(
      "MomentumQueue: argument 'options.blockSize' must be an integer >= 1",
    );
    tf.dispose(bad);
    q.dispose();
  });
});
