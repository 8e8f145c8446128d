/**
 * Runs generated snippet modules one after the other in this process (started by
 * tests/docs/snippets.test.ts through tsx, in a scratch working directory, so that relative paths
 * such as './checkpoints/...' land there).
 *
 * Usage: tsx tests/docs/run-snippets.ts <manifest.json> <results.jsonl>
 *
 * The environment every snippet runs in is an application that has imported tfjs-layers
 * (gradients) and selected the wasm backend; the backend is selected again before each snippet,
 * so that a snippet that switches to another one does not change what the next one runs on.
 * Tensors a snippet leaves are disposed after it (an engine scope around each, then every
 * variable), and their number is reported.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import { selectBackend } from '../../src/core/index.js';

interface Entry {
  readonly path: string;
  readonly timeoutMs: number;
}

export interface RunResult {
  readonly path: string;
  readonly ok: boolean;
  readonly ms: number;
  /** Tensors alive after the snippet that were not alive before it (disposed afterwards). */
  readonly leftTensors: number;
  readonly error?: string;
}

const [manifestPath, resultsPath] = process.argv.slice(2);
if (manifestPath === undefined || resultsPath === undefined) {
  throw new Error('usage: run-snippets.ts <manifest.json> <results.jsonl>');
}
const entries = JSON.parse(readFileSync(manifestPath, 'utf8')) as Entry[];

tf.enableProdMode();
const BACKEND = 'wasm';
await selectBackend(BACKEND, { threads: 1 });

let pending: unknown[] = [];
process.on('unhandledRejection', (reason) => pending.push(reason));
process.on('uncaughtException', (error) => pending.push(error));

function describeError(e: unknown): string {
  if (e instanceof Error) return e.stack ?? `${e.name}: ${e.message}`;
  return String(e);
}

for (const entry of entries) {
  if (tf.getBackend() !== BACKEND) await tf.setBackend(BACKEND);
  pending = [];
  const before = tf.memory().numTensors;
  const t0 = performance.now();
  let error: string | undefined;
  tf.engine().startScope();
  try {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      import(pathToFileURL(entry.path).href),
      new Promise((_, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`did not finish within ${entry.timeoutMs} ms`));
        }, entry.timeoutMs);
      }),
    ]).finally(() => {
      clearTimeout(timer);
    });
    // Rejections of promises the snippet did not await surface after a turn of the event loop.
    await new Promise((r) => setTimeout(r, 0));
    if (pending.length > 0) error = `unhandled: ${describeError(pending[0])}`;
  } catch (e) {
    error = describeError(e);
  }
  const ms = performance.now() - t0;
  tf.engine().endScope();
  const leftTensors = tf.memory().numTensors - before;
  tf.disposeVariables();
  const result: RunResult = {
    path: entry.path,
    ok: error === undefined,
    ms: Math.round(ms),
    leftTensors,
    ...(error === undefined ? {} : { error }),
  };
  appendFileSync(resultsPath, JSON.stringify(result) + '\n');
}
process.exit(0);
