/**
 * Every code snippet of the documentation type-checks and runs: the ```ts blocks of README.md
 * and docs/ and the `@example` blocks of the doc comments in src/ (the conventions are in
 * tests/docs/README.md). And every exported function and class of the API documentation's entry
 * points has an `@example`.
 *
 * All snippets are type-checked in one TypeScript program with tsconfig.json's options, then run
 * one after the other in one tsx process; a failure names the snippet's file and line.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  collectSnippets,
  mapStack,
  missingExamples,
  runModules,
  typecheck,
  where,
  writeModules,
  type GeneratedModule,
  type RunResult,
  type Snippet,
} from './snippets.js';

/** Snippets that are only type-checked or skipped, each with its reason: keep them few. */
const MAX_EXCEPTIONS = 8;

const all = collectSnippets();
const checked = all.filter((s) => s.skip === undefined && s.markerError === undefined);
let modules: GeneratedModule[] = [];
let diagnostics = new Map<string, string[]>();
let results = new Map<string, RunResult>();
let missing: string[] = [];

beforeAll(async () => {
  modules = writeModules(checked);
  const checkedProgram = typecheck(modules);
  diagnostics = checkedProgram.diagnostics;
  missing = missingExamples(checkedProgram.program);
  results = await runModules(modules.filter((m) => m.snippet.typecheckOnly === undefined));
}, 300_000);

describe('documentation snippets', () => {
  it('are found, with well-formed markers, and few exceptions, each with its reason', () => {
    expect(all.length).toBeGreaterThan(150);
    expect(all.filter((s) => s.file === 'README.md').length).toBeGreaterThan(4);
    expect(
      all.filter((s) => s.markerError !== undefined).map((s) => `${where(s)}: ${s.markerError}`),
    ).toEqual([]);
    const exceptions = all
      .filter((s) => s.skip !== undefined || s.typecheckOnly !== undefined)
      .map((s) =>
        s.skip === undefined
          ? `${where(s)} type-checked only: ${s.typecheckOnly}`
          : `${where(s)} skipped: ${s.skip}`,
      );
    console.info(`snippet exceptions:\n  ${exceptions.join('\n  ')}`);
    expect(exceptions.length).toBeLessThanOrEqual(MAX_EXCEPTIONS);
  });

  it.each(checked.map((s): [string, Snippet] => [where(s), s]))('%s', (_, snippet) => {
    const module = modules.find((m) => m.snippet === snippet);
    if (module === undefined) throw new Error('the snippet was not written (see beforeAll)');
    const errors = diagnostics.get(module.path) ?? [];
    if (errors.length > 0) {
      throw new Error(`type errors in the snippet at ${where(snippet)}:\n${errors.join('\n')}`);
    }
    if (snippet.typecheckOnly !== undefined) return;
    const result = results.get(module.path);
    if (result === undefined) {
      throw new Error(`${where(snippet)} did not run: an earlier snippet ended the process`);
    }
    if (!result.ok) {
      throw new Error(
        `${where(snippet)} threw when run (module ${module.path}):\n` +
          mapStack(result.error ?? '', modules),
      );
    }
  });

  it('every exported function and class of the API entry points has an @example', () => {
    expect(missing).toEqual([]);
  });
});
