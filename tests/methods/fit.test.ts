/**
 * `fit`: every data form, epochs / steps / a time budget, callbacks in tfjs-layers' order and
 * stopping, an AbortSignal, a last batch too small for batch norm, checkpoints, the schedule
 * following the run length, and no tensor left behind (the harness counts them).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ContrastiveError } from '../../src/core/index.js';
import { smallConvNet } from '../../src/layers/index.js';
import { simclr, type SimCLR, type TrainStepResult } from '../../src/methods/index.js';
import { describeBackends } from '../support/backends.js';
import { randomImages } from '../support/layers.js';

const SIDE = 8;
const made: { method: SimCLR; encoder: tfl.LayersModel }[] = [];

function build(seed = 1): SimCLR {
  const encoder = smallConvNet({ inputShape: [SIDE, SIDE, 1], widths: [4, 8], seed });
  const method = simclr({ encoder, projectionDim: 8, seed });
  made.push({ method, encoder });
  return method;
}

function disposeAll(): void {
  for (const { method, encoder } of made.splice(0)) {
    method.dispose();
    encoder.dispose();
  }
}

/** Records the images and indices of every batch the method is given. */
function recordBatches(method: SimCLR): { sizes: number[]; indices: (Int32Array | undefined)[] } {
  const seen = { sizes: [] as number[], indices: [] as (Int32Array | undefined)[] };
  const step = method.trainStep.bind(method);
  method.trainStep = (batch, optimizer) => {
    seen.sizes.push(batch.images.shape[0]);
    const idx = batch.indices;
    seen.indices.push(
      idx === undefined || idx instanceof tf.Tensor ? undefined : Int32Array.from(idx),
    );
    return step(batch, optimizer);
  };
  return seen;
}

describeBackends('fit', () => {
  it('a tensor of images: shuffled batches with their indices, every image once per epoch', async () => {
    const method = build();
    const seen = recordBatches(method);
    const images = randomImages([14, SIDE, SIDE, 1], 1);
    const events: string[] = [];
    const result = await method.fit(images, {
      epochs: 2,
      batchSize: 4,
      progress: false,
      callbacks: {
        onTrainBegin: () => void events.push('trainBegin'),
        onEpochBegin: (e) => void events.push(`epochBegin ${e}`),
        onBatchEnd: (s) => void events.push(`batch ${s}`),
        onEpochEnd: (e, logs) => {
          expect(Number.isFinite(logs.loss)).toBe(true);
          events.push(`epochEnd ${e}`);
        },
        onTrainEnd: () => void events.push('trainEnd'),
      },
    });
    expect(seen.sizes).toEqual([4, 4, 4, 2, 4, 4, 4, 2]);
    for (const epoch of [seen.indices.slice(0, 4), seen.indices.slice(4)]) {
      const all = epoch.flatMap((i) => Array.from(i!)).sort((a, b) => a - b);
      expect(all).toEqual(Array.from({ length: 14 }, (_, i) => i));
    }
    expect(seen.indices[0]).not.toEqual(seen.indices[4]);
    expect(result).toMatchObject({ steps: 8, skippedSteps: 0, stoppedBy: 'epochs' });
    expect(result.losses).toHaveLength(8);
    expect(events).toEqual([
      'trainBegin',
      'epochBegin 0',
      'batch 1',
      'batch 2',
      'batch 3',
      'batch 4',
      'epochEnd 0',
      'epochBegin 1',
      'batch 5',
      'batch 6',
      'batch 7',
      'batch 8',
      'epochEnd 1',
      'trainEnd',
    ]);
    images.dispose();
    disposeAll();
  });

  it('an array of batches, an iterable, an async iterable and a Dataset-like object', async () => {
    const batches = [0, 1, 2].map((s) => randomImages([4, SIDE, SIDE, 1], 10 + s));
    const forms: unknown[] = [
      batches,
      new Set(batches),
      (async function* () {
        for (const b of batches) yield await Promise.resolve({ images: b });
      })(),
    ];
    for (const data of forms) {
      const method = build();
      const seen = recordBatches(method);
      const result = await method.fit(data as tf.Tensor4D[], { progress: false });
      expect(result.steps).toBe(3);
      expect(seen.sizes).toEqual([4, 4, 4]);
    }
    // A tfjs-data Dataset: fit frees the tensors its iterator hands out (the harness counts them).
    const dataset = {
      iterator: () => {
        let i = 0;
        return Promise.resolve({
          next: () =>
            Promise.resolve(
              i < 3
                ? { done: false, value: randomImages([4, SIDE, SIDE, 1], 20 + i++) }
                : { done: true, value: undefined },
            ),
        });
      },
    };
    const method = build();
    const result = await method.fit(dataset, { epochs: 2, progress: false });
    expect(result).toMatchObject({ steps: 6, stoppedBy: 'epochs' });
    tf.dispose(batches);
    disposeAll();
  });

  it('steps, seconds, a callback returning false, stopTraining and an AbortSignal stop the run', async () => {
    const images = randomImages([8, SIDE, SIDE, 1], 2);
    const bySteps = await build().fit(images, { steps: 3, batchSize: 4, progress: false });
    expect(bySteps).toMatchObject({ steps: 3, stoppedBy: 'steps' });

    const bySeconds = await build().fit(images, { seconds: 0.001, batchSize: 4, progress: false });
    expect(bySeconds).toMatchObject({ steps: 1, stoppedBy: 'seconds' });

    const byFalse = await build().fit(images, {
      epochs: 5,
      batchSize: 4,
      progress: false,
      callbacks: { onBatchEnd: (step) => step < 2 },
    });
    expect(byFalse).toMatchObject({ steps: 2, stoppedBy: 'callback' });

    const method = build();
    const byFlag = await method.fit(images, {
      epochs: 5,
      batchSize: 4,
      progress: false,
      callbacks: {
        onBatchEnd: () => {
          method.stopTraining = true;
        },
      },
    });
    expect(byFlag).toMatchObject({ steps: 1, stoppedBy: 'callback' });

    const controller = new AbortController();
    const bySignal = await build().fit(images, {
      epochs: 5,
      batchSize: 4,
      progress: false,
      signal: controller.signal,
      callbacks: {
        onBatchEnd: (step) => {
          if (step === 3) controller.abort();
        },
      },
    });
    expect(bySignal).toMatchObject({ steps: 3, stoppedBy: 'signal' });
    images.dispose();
    disposeAll();
  });

  it('a last batch of one image is skipped and reported, the run goes on', async () => {
    const images = randomImages([9, SIDE, SIDE, 1], 3);
    const results: TrainStepResult[] = [];
    const result = await build().fit(images, {
      epochs: 2,
      batchSize: 4,
      progress: false,
      callbacks: { onBatchEnd: (_s, logs) => void results.push(logs) },
    });
    expect(result).toMatchObject({ steps: 4, skippedSteps: 2, stoppedBy: 'epochs' });
    expect(results.map((r) => r.skipped)).toEqual([false, false, true, false, false, true]);
    images.dispose();
    disposeAll();
  });

  it('the cosine schedule follows the run length: warm-up, then decay towards 0', async () => {
    const images = randomImages([8, SIDE, SIDE, 1], 4);
    const rates: number[] = [];
    await build().fit(images, {
      steps: 20,
      batchSize: 4,
      progress: false,
      callbacks: { onBatchEnd: (_s, logs) => void rates.push(logs.metrics.learningRate) },
    });
    const peak = Math.max(...rates);
    const top = rates.indexOf(peak);
    expect(top).toBeGreaterThan(0);
    expect(rates[0]!).toBeLessThan(peak);
    expect(rates.at(-1)!).toBeLessThan(peak * 0.05);
    for (let i = top + 1; i < rates.length; i++)
      expect(rates[i]!).toBeLessThanOrEqual(rates[i - 1]!);
    images.dispose();
    disposeAll();
  });

  it('a checkpoint at the end (and every k steps) restores into a fresh preset', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fit-checkpoint-'));
    try {
      const images = randomImages([8, SIDE, SIDE, 1], 5);
      const file = join(dir, 'run.safetensors');
      const saves: number[] = [];
      const method = build();
      const save = method.save.bind(method);
      method.save = (target) => {
        saves.push(method.step);
        return save(target);
      };
      await method.fit(images, {
        steps: 5,
        batchSize: 4,
        progress: false,
        checkpoint: { target: file, everySteps: 2 },
      });
      expect(saves).toEqual([2, 4, 5]);
      const fresh = build();
      await fresh.load(file);
      expect(fresh.step).toBe(5);
      images.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
      disposeAll();
    }
  });

  it('bad data or options raise ContrastiveError naming the argument', async () => {
    const method = build();
    const images = randomImages([4, SIDE, SIDE, 1], 6);
    await expect(method.fit(images, { batchSize: 0 })).rejects.toThrow(ContrastiveError);
    await expect(method.fit(images, { batchSize: 0 })).rejects.toThrow(/batchSize/);
    await expect(method.fit(images, { epochs: -1 })).rejects.toThrow(/epochs/);
    await expect(method.fit(42 as unknown as tf.Tensor4D)).rejects.toThrow(/data/);
    await expect(method.fit([images, 3] as unknown as tf.Tensor4D[])).rejects.toThrow(/data\[1\]/);
    images.dispose();
    disposeAll();
  });
});
