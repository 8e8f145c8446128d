/**
 * Every InfoNCE-family loss against the independent PyTorch reference of
 * scripts/fixtures/infonce_family.py (float64, written from the papers' formulas): the loss, the
 * per-sample losses and the gradient with respect to every float input, on every backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import {
  ContrastiveError,
  cmcLoss,
  cpcLoss,
  infoNce,
  invaSpreadLoss,
  maskedInfoNce,
  mocoV3Loss,
  ntXentLoss,
  supConLoss,
} from '../../src/index.js';
import { describeBackends, expectClose } from '../support/backends.js';

interface Input {
  shape: number[];
  data: number[];
  dtype?: 'int32' | 'bool';
}
interface Case {
  name: string;
  fn: string;
  options: Record<string, unknown>;
  inputs: Record<string, Input>;
  loss: number;
  per_sample?: number[];
  grads: Record<string, number[]>;
}

type Args = Record<string, tf.Tensor>;

function indexed(args: Args, prefix: string): tf.Tensor2D[] | undefined {
  const keys = Object.keys(args)
    .filter((k) => k.startsWith(`${prefix}.`))
    .sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]));
  return keys.length === 0 ? undefined : keys.map((k) => args[k] as tf.Tensor2D);
}

// Calls the library function a fixture case names, with its inputs and options.
function call(c: Case, a: Args, reduction?: 'none'): tf.Tensor {
  const o = { ...c.options, ...(reduction === undefined ? {} : { reduction }) };
  const t2 = (k: string): tf.Tensor2D => a[k] as tf.Tensor2D;
  switch (c.fn) {
    case 'infoNce': {
      const chunks = indexed(a, 'negatives');
      const negatives = a.negatives !== undefined ? t2('negatives') : chunks;
      return infoNce(t2('query'), t2('positiveKey'), { ...o, ...(negatives ? { negatives } : {}) });
    }
    case 'maskedInfoNce':
      return maskedInfoNce(t2('logits'), t2('positiveMask'), {
        ...o,
        ...(a.validMask ? { validMask: a.validMask } : {}),
      });
    case 'ntXentLoss':
      return ntXentLoss(t2('z1'), t2('z2'), o);
    case 'supConLoss':
      return supConLoss(t2('embeddings'), a.labels as tf.Tensor1D, o);
    case 'mocoV3Loss':
      return mocoV3Loss(t2('q'), t2('k'), o);
    case 'invaSpreadLoss':
      return invaSpreadLoss(t2('z1'), t2('z2'), o);
    case 'cmcLoss': {
      const negativesPerView = indexed(a, 'negativesPerView');
      return cmcLoss(indexed(a, 'views') ?? [], {
        ...o,
        ...(negativesPerView ? { negativesPerView } : {}),
      });
    }
    case 'cpcLoss':
      return cpcLoss(a.predictions as tf.Tensor3D, a.targets as tf.Tensor3D, o);
    default:
      throw new Error(`unknown fixture function ${c.fn}`);
  }
}

const IN_BATCH = new Set(['ntXentLoss', 'mocoV3Loss', 'supConLoss', 'invaSpreadLoss']);

// The library refuses in-batch losses without any negative (N = 1): the reference's 0 is
// degenerate there, and a silent 0 would hide a bug in the caller.
function degenerate(c: Case): boolean {
  const first = Object.values(c.inputs)[0] as Input;
  if (IN_BATCH.has(c.fn)) return first.shape[0]! < 2;
  if (c.fn === 'infoNce')
    return (
      c.inputs.negatives === undefined &&
      c.inputs['negatives.0'] === undefined &&
      first.shape[0]! < 2
    );
  return false;
}

// Read at run time rather than imported, so that the type checker does not infer a type for 1 MB
// of JSON.
const cases = (
  JSON.parse(
    readFileSync(resolve(import.meta.dirname, '../fixtures/infonce-family.json'), 'utf8'),
  ) as { cases: Case[] }
).cases;

describeBackends('InfoNCE family against the PyTorch reference', ({ tol, name: backend }) => {
  it('has fixtures for every function', () => {
    const fns = new Set(cases.map((c) => c.fn));
    for (const fn of [
      'infoNce',
      'maskedInfoNce',
      'ntXentLoss',
      'supConLoss',
      'mocoV3Loss',
      'invaSpreadLoss',
      'cmcLoss',
      'cpcLoss',
    ]) {
      expect(fns.has(fn), fn).toBe(true);
    }
  });

  for (const c of cases) {
    it(c.name, () => {
      const args: Args = {};
      for (const [k, v] of Object.entries(c.inputs)) {
        args[k] = tf.tensor(v.data, v.shape, v.dtype ?? 'float32');
      }
      try {
        if (degenerate(c)) {
          expect(() => call(c, args)).toThrow(ContrastiveError);
          return;
        }
        // Logits of order 1e4 (the temperature-0.01 cases) leave float32 a relative precision of
        // about 1e-7 * 1e4 on the loss.
        const scale = Math.max(1, Math.abs(c.loss) / 100);
        const lossTol = tol * scale * (c.name.includes('0.01') ? 10 : 1);
        const loss = call(c, args);
        expect(loss.shape).toEqual([]);
        expectClose(loss, c.loss, lossTol, `${c.name}: loss`);
        loss.dispose();
        if (c.per_sample !== undefined) {
          const per = call(c, args, 'none');
          expectClose(per, c.per_sample, lossTol, `${c.name}: per-sample`);
          per.dispose();
        }
        // Explicit negatives are constants (queue / bank entries): the reference detaches them
        // too, so its gradient there is zero, and tfjs has no path to differentiate along.
        const constant = (k: string): boolean => k.startsWith('negatives');
        for (const k of Object.keys(c.grads).filter(constant)) {
          expect(
            c.grads[k]!.every((v) => v === 0),
            `reference gradient of constant ${k}`,
          ).toBe(true);
        }
        const names = Object.keys(c.grads).filter((k) => !constant(k));
        const xs = names.map((k) => args[k] as tf.Tensor);
        const grads = tf.grads((...ts: tf.Tensor[]) => {
          const swapped: Args = { ...args };
          names.forEach((k, i) => (swapped[k] = ts[i] as tf.Tensor));
          return call(c, swapped) as tf.Scalar;
        })(xs);
        names.forEach((k, i) => {
          expectClose(
            grads[i] as tf.Tensor,
            c.grads[k] as number[],
            10 * lossTol,
            `${c.name} [${backend}]: d loss / d ${k}`,
          );
        });
        tf.dispose(grads);
      } finally {
        tf.dispose(Object.values(args));
      }
    });
  }
});
