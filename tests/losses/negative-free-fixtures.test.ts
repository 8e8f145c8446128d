/**
 * SwAV (Sinkhorn codes and swapped prediction), DINO (loss and center update), BYOL, SimSiam and
 * the negative cosine similarity against the independent float64 PyTorch reference of
 * scripts/fixtures/negative_free.py, on every backend: losses and gradients.
 */
import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import {
  Center,
  byolLoss,
  dinoLoss,
  negativeCosineSimilarity,
  simsiamLoss,
  sinkhorn,
  swavLoss,
  symmetricByolLoss,
} from '../../src/index.js';
import { describeBackends, expectClose } from '../support/backends.js';

interface Case {
  name: string;
  fn: string;
  options: Record<string, unknown>;
  inputs: Record<string, { shape: number[]; data: number[] }>;
  loss?: number;
  grads?: Record<string, number[]>;
  codes?: number[];
  'center_after_momentum_0.9'?: number[];
}

const cases = (
  JSON.parse(
    readFileSync(resolve(import.meta.dirname, '../fixtures/negative-free.json'), 'utf8'),
  ) as { cases: Case[] }
).cases;

type Args = Record<string, tf.Tensor>;

function list(a: Args, prefix: string): tf.Tensor2D[] {
  return Object.keys(a)
    .filter((k) => k.startsWith(`${prefix}.`))
    .sort((x, y) => Number(x.split('.')[1]) - Number(y.split('.')[1]))
    .map((k) => a[k] as tf.Tensor2D);
}

function call(c: Case, a: Args): tf.Tensor {
  const t = (k: string): tf.Tensor2D => a[k] as tf.Tensor2D;
  switch (c.fn) {
    case 'swavLoss': {
      const queue = list(a, 'queue');
      return swavLoss(list(a, 'scores'), {
        ...c.options,
        ...(queue.length > 0 ? { queueScoresPerCrop: queue } : {}),
      });
    }
    case 'dinoLoss':
      return dinoLoss(list(a, 'student'), list(a, 'teacher'), a.center as tf.Tensor, c.options);
    case 'byolLoss':
      return byolLoss(t('p'), t('z'));
    case 'symmetricByolLoss':
      return symmetricByolLoss(t('p1'), t('p2'), t('z1'), t('z2'));
    case 'simsiamLoss':
      return simsiamLoss(t('p1'), t('p2'), t('z1'), t('z2'));
    case 'negativeCosineSimilarity':
      return negativeCosineSimilarity(t('a'), t('b'));
    default:
      throw new Error(`unknown function ${c.fn}`);
  }
}

describeBackends('SwAV, DINO, BYOL, SimSiam against the PyTorch reference', ({ tol, name }) => {
  for (const c of cases) {
    it(c.name, async () => {
      const args: Args = {};
      for (const [k, v] of Object.entries(c.inputs)) args[k] = tf.tensor(v.data, v.shape);
      try {
        if (c.fn === 'sinkhorn') {
          const codes = sinkhorn(args.scores as tf.Tensor2D, c.options);
          expectClose(await codes.data(), c.codes!, 10 * tol, `${c.name}: codes`);
          codes.dispose();
          return;
        }
        const loss = call(c, args);
        expectClose(await loss.data(), c.loss!, tol, `${c.name} [${name}]: loss`);
        loss.dispose();
        // An input the loss does not use (DINO's only global crop as a student view) has a zero
        // reference gradient and no path in tfjs to differentiate along.
        const names = Object.keys(c.grads!).filter((k) => c.grads![k]!.some((v) => v !== 0));
        const grads = tf.grads((...ts: tf.Tensor[]) => {
          const swapped: Args = { ...args };
          names.forEach((k, i) => (swapped[k] = ts[i] as tf.Tensor));
          return call(c, swapped) as tf.Scalar;
        })(names.map((k) => args[k] as tf.Tensor));
        for (const [i, k] of names.entries()) {
          expectClose(
            await grads[i]!.data(),
            c.grads![k]!,
            10 * tol,
            `${c.name} [${name}]: d/d ${k}`,
          );
        }
        tf.dispose(grads);
        const expectedCenter = c['center_after_momentum_0.9'];
        if (expectedCenter !== undefined) {
          const center = Center.fromState({ momentum: 0.9, values: c.inputs.center!.data });
          center.update(list(args, 'teacher'));
          expectClose(await center.value.data(), expectedCenter, tol, `${c.name}: center update`);
          center.dispose();
        }
      } finally {
        tf.dispose(Object.values(args));
      }
    });
  }

  it('covers every function and crop counts 2 + 0 to 2 + 8', () => {
    const fns = new Set(cases.map((c) => c.fn));
    for (const fn of [
      'sinkhorn',
      'swavLoss',
      'dinoLoss',
      'byolLoss',
      'symmetricByolLoss',
      'simsiamLoss',
      'negativeCosineSimilarity',
    ]) {
      expect(fns.has(fn), fn).toBe(true);
    }
    const dinoCrops = cases
      .filter((c) => c.fn === 'dinoLoss')
      .map((c) => Object.keys(c.inputs).filter((k) => k.startsWith('student.')).length);
    expect(Math.min(...dinoCrops)).toBe(2);
    expect(Math.max(...dinoCrops)).toBe(10);
  });
});
