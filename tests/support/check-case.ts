/** Compares a result of `runCase` with the PyTorch reference. */
import { expect } from 'vitest';
import { isConstantInput, isDegenerate, type Case, type CaseResult } from './infonce-cases.js';
import {
  differentiated,
  type NegativeFreeCase,
  type NegativeFreeResult,
} from './negative-free-cases.js';

function close(actual: number[], expected: number[], tol: number, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  actual.forEach((a, i) => {
    const e = expected[i] as number;
    if (!(Number.isFinite(a) && Math.abs(a - e) <= tol * (1 + Math.abs(e)))) {
      expect.fail(`${what}[${i}] = ${a}, expected ${e} (tolerance ${tol})`);
    }
  });
}

/** Compares a result with the reference, with a backend tolerance `tol`. */
export function checkCase(c: Case, r: CaseResult, tol: number, where: string): void {
  expect(r.leaked, `${c.name} [${where}]: leaked tensors`).toBe(0);
  if (isDegenerate(c)) {
    expect(r.refused, `${c.name} [${where}]: refused`).toMatch(/at least 2 rows/);
    return;
  }
  expect(r.refused, `${c.name} [${where}]`).toBeUndefined();
  // Logits of order 1e4 (the temperature-0.01 cases) leave float32 a relative precision of
  // about 1e-7 * 1e4 on the loss.
  const lossTol = tol * Math.max(1, Math.abs(c.loss) / 100) * (c.name.includes('0.01') ? 10 : 1);
  close([r.loss as number], [c.loss], lossTol, `${c.name} [${where}]: loss`);
  if (c.per_sample !== undefined) {
    close(r.perSample ?? [], c.per_sample, lossTol, `${c.name} [${where}]: per-sample`);
  }
  for (const [k, g] of Object.entries(c.grads)) {
    if (isConstantInput(k)) {
      expect(
        g.every((v) => v === 0),
        `reference gradient of constant ${k}`,
      ).toBe(true);
    } else {
      close(r.grads[k] ?? [], g, 10 * lossTol, `${c.name} [${where}]: d loss / d ${k}`);
    }
  }
}

/** Compares a result of `runNegativeFreeCase` with the reference. */
export function checkNegativeFreeCase(
  c: NegativeFreeCase,
  r: NegativeFreeResult,
  tol: number,
  where: string,
): void {
  expect(r.leaked, `${c.name} [${where}]: leaked tensors`).toBe(0);
  if (c.codes !== undefined) {
    close(r.codes ?? [], c.codes, 10 * tol, `${c.name} [${where}]: codes`);
    return;
  }
  close([r.loss as number], [c.loss as number], tol, `${c.name} [${where}]: loss`);
  for (const k of differentiated(c)) {
    close(r.grads[k] ?? [], c.grads![k]!, 10 * tol, `${c.name} [${where}]: d loss / d ${k}`);
  }
  const center = c['center_after_momentum_0.9'];
  if (center !== undefined) close(r.center ?? [], center, tol, `${c.name} [${where}]: center`);
}
