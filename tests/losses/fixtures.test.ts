/**
 * Every InfoNCE-family loss against the independent PyTorch reference of
 * scripts/fixtures/infonce_family.py (float64, written from the papers' formulas): the loss, the
 * per-sample losses and the gradient with respect to every float input, on every backend.
 * (tests/browser/losses.test.ts runs the same cases on webgl and webgpu.)
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import { describeBackends } from '../support/backends.js';
import { checkCase } from '../support/check-case.js';
import { runCase, type Case } from '../support/infonce-cases.js';

// Read at run time rather than imported, so that the type checker does not infer a type for 1 MB
// of JSON.
const cases = (
  JSON.parse(
    readFileSync(resolve(import.meta.dirname, '../fixtures/infonce-family.json'), 'utf8'),
  ) as { cases: Case[] }
).cases;

describeBackends('InfoNCE family against the PyTorch reference', ({ tol, name }) => {
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
    it(c.name, async () => {
      checkCase(c, await runCase(c), tol, name);
    });
  }
});
