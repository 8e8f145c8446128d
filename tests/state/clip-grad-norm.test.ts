/**
 * clipGradNorm against scripts/fixtures/adamw_reference.py (torch.nn.utils.clip_grad_norm_ in
 * float64): the 2-norm above and below the threshold, the inf norm and the 1-norm, in the three
 * gradient forms, plus non-finite norms and errors.
 */
import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import { ContrastiveError, clipGradNorm } from '../../src/index.js';
import { describeBackends, expectClose } from '../support/backends.js';

interface ClipCase {
  name: string;
  normType: number | 'inf';
  maxNorm: number;
  grads: number[][];
  totalNorm: number;
  clipped: number[][];
}

const ref = JSON.parse(
  readFileSync(resolve(import.meta.dirname, '../fixtures/adamw-reference.json'), 'utf8'),
) as { shapes: Record<string, number[]>; clip: ClipCase[] };
const SHAPES = Object.values(ref.shapes);

describeBackends('clipGradNorm', ({ tol }) => {
  for (const c of ref.clip) {
    it(`matches clip_grad_norm_ (${c.name}: norm ${c.normType}, max ${c.maxNorm}) in every form`, async () => {
      const grads = c.grads.map((g, i) => tf.tensor(g, SHAPES[i]));
      const forms = [
        grads,
        grads.map((tensor, i) => ({ name: `g${i}`, tensor })),
        Object.fromEntries(grads.map((t, i) => [`g${i}`, t])),
      ];
      for (const form of forms) {
        const { grads: out, totalNorm } = clipGradNorm(form, c.maxNorm, { normType: c.normType });
        const list = Array.isArray(out)
          ? (out as unknown[]).map((e) =>
              e instanceof tf.Tensor ? e : (e as { tensor: tf.Tensor }).tensor,
            )
          : Object.values(out as tf.NamedTensorMap);
        expect(list).toHaveLength(grads.length);
        expectClose(await totalNorm.data(), [c.totalNorm], tol, 'total norm');
        for (let i = 0; i < list.length; i++) {
          expect(list[i]!.shape).toEqual(SHAPES[i]);
          expectClose(await list[i]!.data(), c.clipped[i]!, tol, `gradient ${i}`);
        }
        tf.dispose([...list, totalNorm]);
      }
      if (Array.isArray(forms[1])) {
        const res = clipGradNorm(forms[1], c.maxNorm);
        const names = res.grads as { name: string; tensor: tf.Tensor }[];
        expect(names.map((n) => n.name)).toEqual(grads.map((_, i) => `g${i}`));
        tf.dispose([res.totalNorm, ...names.map((n) => n.tensor)]);
      }
      tf.dispose(grads);
    });
  }

  it('below the threshold multiplies by exactly 1', async () => {
    const g = tf.tensor1d([0.1, -0.2, 0.3]);
    const { grads, totalNorm } = clipGradNorm([g], 10);
    expect(Array.from(await grads[0]!.data())).toEqual(Array.from(await g.data()));
    tf.dispose([g, totalNorm, ...grads]);
  });

  it('a NaN gradient gives a NaN norm and NaN gradients; an infinite one a factor 0', async () => {
    const a = tf.tensor1d([1, Number.NaN]);
    const b = tf.tensor1d([2, 3]);
    const nan = clipGradNorm([a, b], 1);
    expect(Number.isNaN((await nan.totalNorm.data())[0])).toBe(true);
    expect(Array.from(await nan.grads[1]!.data()).every(Number.isNaN)).toBe(true);
    const inf = tf.tensor1d([1, Number.POSITIVE_INFINITY]);
    const res = clipGradNorm([inf, b], 1);
    expect((await res.totalNorm.data())[0]).toBe(Number.POSITIVE_INFINITY);
    expect(Array.from(await res.grads[1]!.data())).toEqual([0, 0]);
    tf.dispose([a, b, inf, nan.totalNorm, res.totalNorm, ...nan.grads, ...res.grads]);
  });

  it('an empty collection has norm 0', async () => {
    const { grads, totalNorm } = clipGradNorm([], 1);
    expect(grads).toEqual([]);
    expect((await totalNorm.data())[0]).toBe(0);
    totalNorm.dispose();
  });

  it('refuses a bad maxNorm, normType or gradient with its own error', () => {
    const g = tf.tensor1d([1, 2]);
    expect(() => clipGradNorm([g], 0)).toThrow(ContrastiveError);
    expect(() => clipGradNorm([g], 0)).toThrow(/maxNorm/);
    expect(() => clipGradNorm([g], 1, { normType: -1 })).toThrow(/normType/);
    expect(() => clipGradNorm([g], 1, { normType: 'two' as unknown as 'inf' })).toThrow(/normType/);
    expect(() => clipGradNorm([g, 3 as unknown as tf.Tensor], 1)).toThrow(/grads\[1\]/);
    const i = tf.tensor1d([1, 2], 'int32');
    expect(() => clipGradNorm({ w: i }, 1)).toThrow(/float32/);
    expect(() => clipGradNorm(null as unknown as tf.Tensor[], 1)).toThrow(ContrastiveError);
    tf.dispose([g, i]);
  });
});
