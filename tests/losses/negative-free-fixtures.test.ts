/**
 * SwAV (Sinkhorn codes and swapped prediction), DINO (loss and center update), BYOL, SimSiam and
 * the negative cosine similarity against the independent float64 PyTorch reference of
 * scripts/fixtures/negative_free.py, on every backend: losses, gradients, codes, center.
 * (tests/browser/losses.test.ts runs the same cases on webgl and webgpu.)
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import { describeBackends } from '../support/backends.js';
import { checkNegativeFreeCase } from '../support/check-case.js';
import { runNegativeFreeCase, type NegativeFreeCase } from '../support/negative-free-cases.js';

const cases = (
  JSON.parse(
    readFileSync(resolve(import.meta.dirname, '../fixtures/negative-free.json'), 'utf8'),
  ) as { cases: NegativeFreeCase[] }
).cases;

describeBackends('SwAV, DINO, BYOL, SimSiam against the PyTorch reference', ({ tol, name }) => {
  for (const c of cases) {
    it(c.name, async () => {
      checkNegativeFreeCase(c, await runNegativeFreeCase(c), tol, name);
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
    const crops = (fn: string, prefix: string): number[] =>
      cases
        .filter((c) => c.fn === fn)
        .map((c) => Object.keys(c.inputs).filter((k) => k.startsWith(prefix)).length);
    for (const [fn, prefix] of [
      ['dinoLoss', 'student.'],
      ['swavLoss', 'scores.'],
    ] as const) {
      expect(Math.min(...crops(fn, prefix)), fn).toBe(2);
      expect(Math.max(...crops(fn, prefix)), fn).toBe(10);
    }
  });
});
