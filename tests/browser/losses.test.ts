/**
 * The InfoNCE-family fixture cases (PyTorch reference) on the GPU backends in headless Chromium:
 * webgl (WebGL2) and webgpu, both on SwiftShader with full float32.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { checkCase, checkNegativeFreeCase } from '../support/check-case.js';
import type { Case, CaseResult } from '../support/infonce-cases.js';
import type { NegativeFreeCase, NegativeFreeResult } from '../support/negative-free-cases.js';
import { openTestPage, type BrowserPage } from './server.js';

const read = <T>(file: string): T[] =>
  (
    JSON.parse(readFileSync(resolve(import.meta.dirname, '../fixtures', file), 'utf8')) as {
      cases: T[];
    }
  ).cases;
const cases = read<Case>('infonce-family.json');
const negativeFree = read<NegativeFreeCase>('negative-free.json');

for (const backend of ['webgl', 'webgpu'] as const) {
  describe(`losses against the PyTorch references [${backend}, Chromium]`, () => {
    let p: BrowserPage;
    let results: CaseResult[] = [];
    let negativeFreeResults: NegativeFreeResult[] = [];
    beforeAll(async () => {
      p = await openTestPage();
      [results, negativeFreeResults] = await p.page.evaluate(
        async ([name, all, all2]) => {
          await window.lib.selectBackend(name, { allowSoftwareGpu: true });
          const out = [];
          for (const c of all) out.push(await window.runCase(c));
          const out2 = [];
          for (const c of all2) out2.push(await window.runNegativeFreeCase(c));
          return [out, out2] as const;
        },
        [backend, cases, negativeFree] as const,
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
    negativeFree.forEach((c, i) => {
      it(c.name, () => {
        checkNegativeFreeCase(c, negativeFreeResults[i]!, 1e-3, backend);
      });
    });
  });
}
