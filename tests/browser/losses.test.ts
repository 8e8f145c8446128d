/**
 * The InfoNCE-family fixture cases (PyTorch reference) on the GPU backends in headless Chromium:
 * webgl (WebGL2) and webgpu, both on SwiftShader with full float32.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { checkCase } from '../support/check-case.js';
import type { Case, CaseResult } from '../support/infonce-cases.js';
import { openTestPage, type BrowserPage } from './server.js';

const cases = (
  JSON.parse(
    readFileSync(resolve(import.meta.dirname, '../fixtures/infonce-family.json'), 'utf8'),
  ) as { cases: Case[] }
).cases;

for (const backend of ['webgl', 'webgpu'] as const) {
  describe(`InfoNCE family against the PyTorch reference [${backend}, Chromium]`, () => {
    let p: BrowserPage;
    let results: CaseResult[] = [];
    beforeAll(async () => {
      p = await openTestPage();
      results = await p.page.evaluate(
        async ([name, all]) => {
          await window.lib.selectBackend(name, { allowSoftwareGpu: true });
          const out = [];
          for (const c of all) out.push(await window.runCase(c));
          return out;
        },
        [backend, cases] as const,
      );
    });
    afterAll(async () => {
      await p.close();
    });
    cases.forEach((c, i) => {
      it(c.name, () => {
        checkCase(c, results[i]!, 1e-3, backend);
      });
    });
  });
}
