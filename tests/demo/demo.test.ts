/**
 * The main job at a tiny size (a few seconds of training, small evaluation sets), so that it
 * cannot rot: `demo/main.ts` runs to the end, prints its table, and writes two real PNGs, a
 * checkpoint that a fresh preset loads, and a JSON whose figures agree with the printed table.
 * (What the demo shows at its default size is measured by running it: see the README.)
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSafetensors, selectBackend } from '../../src/core/index.js';
import { smallConvNet } from '../../src/layers/index.js';
import { simclr } from '../../src/methods/index.js';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');
const out = mkdtempSync(join(tmpdir(), 'tfjs-contrastive-demo-'));

function demo(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, ['--import', 'tsx', 'demo/main.ts', ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 150_000,
    maxBuffer: 16 << 20,
  });
}

interface Results {
  method: string;
  backend: { name: string };
  steps: number;
  losses: number[];
  scores: Record<'rawPixels' | 'randomInit' | 'trained', { knn: number; linearProbe: number }>;
  evaluation: { trainImages: number; testImages: number };
}

/** Width and height from a PNG's IHDR chunk, after checking the signature. */
function pngSize(file: string): { width: number; height: number; bytes: number } {
  const b = readFileSync(file);
  expect(Array.from(b.subarray(0, 8))).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
  expect(b.subarray(12, 16).toString('latin1')).toBe('IHDR');
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20), bytes: b.length };
}

let stdout = '';
let results: Results;

beforeAll(async () => {
  ({ stdout } = await demo(
    '--minutes',
    '0.05',
    '--eval-train',
    '600',
    '--eval-test',
    '200',
    '--map-points',
    '150',
    '--backend',
    'wasm',
    '--out',
    out,
  ));
  results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as Results;
}, 180_000);

afterAll(() => {
  rmSync(out, { recursive: true, force: true });
});

describe('npm run demo (tiny)', () => {
  it('trains, and prints a table whose figures are those of results.json', () => {
    expect(results.method).toBe('simclr');
    expect(results.backend.name).toBe('wasm');
    expect(results.steps).toBeGreaterThanOrEqual(1);
    expect(results.losses.length).toBe(results.steps);
    expect(results.losses.every(Number.isFinite)).toBe(true);
    expect(results.evaluation).toMatchObject({ trainImages: 600, testImages: 200 });
    const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
    const rows: [string, keyof Results['scores']][] = [
      ['raw pixels', 'rawPixels'],
      ['random init', 'randomInit'],
      [`SimCLR, ${results.steps} steps`, 'trained'],
    ];
    for (const [name, key] of rows) {
      const { knn, linearProbe } = results.scores[key];
      for (const v of [knn, linearProbe]) {
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(1);
      }
      const line = stdout.split('\n').find((l) => l.startsWith(`| ${name} `));
      expect(line, `table row '${name}' in:\n${stdout}`).toBeDefined();
      expect(line).toContain(pct(knn));
      expect(line).toContain(pct(linearProbe));
    }
    // Raw pixels of Fashion-MNIST are far above chance (10%) by either measure.
    expect(results.scores.rawPixels.knn).toBeGreaterThan(0.5);
    expect(results.scores.rawPixels.linearProbe).toBeGreaterThan(0.5);
  });

  it('writes the loss curve and the embedding maps as PNGs', () => {
    const loss = pngSize(join(out, 'loss.png'));
    const map = pngSize(join(out, 'map.png'));
    expect(loss.width).toBeGreaterThan(1000);
    expect(loss.height).toBeGreaterThan(500);
    // Two square map panels side by side, and a legend.
    expect(map.width).toBeGreaterThan(2 * map.height * 0.9);
    expect(map.bytes).toBeGreaterThan(20_000);
  });

  it('writes a checkpoint that a fresh SimCLR on the same encoder loads', async () => {
    const bytes = new Uint8Array(readFileSync(join(out, 'checkpoint.safetensors')));
    const parsed = parseSafetensors(bytes);
    expect(parsed.metadata['format']).toBeDefined();
    await selectBackend('cpu');
    const before = tf.memory().numTensors;
    const encoder = smallConvNet({ inputShape: [28, 28, 1], widths: [32, 64, 128], seed: 0 });
    const method = simclr({ encoder });
    await method.load(bytes);
    expect(method.step).toBe(results.steps);
    method.dispose();
    encoder.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects a bad flag with a message naming it and the usage', async () => {
    const failure = await demo('--method', 'simclrr').then(
      () => undefined,
      (e: unknown) => e as { code: number; stderr: string },
    );
    expect(failure?.code).toBe(2);
    expect(failure?.stderr).toContain(
      "demo: --method must be one of simclr, simclrV2, moco, mocoV2, mocoV3, byol, simsiam, swav, dino, instDisc, invaSpread, got 'simclrr'",
    );
    expect(failure?.stderr).toContain('usage: npm run demo');
  });
});
