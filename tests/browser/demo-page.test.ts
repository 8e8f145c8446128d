/**
 * End to end: serves the browser demo (demo/web) with Vite on 127.0.0.1 (its dev server, or with
 * DEMO_PAGE_BUILD=1 a production build served by `vite preview`; both with the config's COOP/COEP
 * headers), opens it in headless Chromium with `?backend=<b>&autostart=1`, waits for training and
 * both kNN evaluations, checks what the page reports, and saves a screenshot of each backend's
 * page to .tmp/demo-page-<backend>.png.
 *
 * Headless Chromium renders WebGL and WebGPU with SwiftShader on the CPU (measured here: about
 * 1.4 s a step on webgl and 5 s on webgpu at batch 16 with a narrow network, against 8 s on webgl
 * with the page's default widths), so the runs are small: smallConvNet with widths [8, 16, 32]
 * instead of [32, 64, 128], batch 16, a 300 / 100 image kNN.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { build, createServer, preview, type InlineConfig } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DemoState } from '../../demo/web/main.js';
import { launchChromium } from './chromium.js';

const root = resolve(import.meta.dirname, '../..');
const shots = join(root, '.tmp');

interface Run {
  readonly steps: number;
  readonly batch: number;
  readonly widths: string;
  readonly knnTrain: number;
  readonly knnTest: number;
}
const SMALL = { batch: 16, widths: '8,16,32', knnTrain: 300, knnTest: 100 };
// wasm and webgl train long enough for the loss to fall; webgpu (slowest under SwiftShader: about
// 10 images/s even forward only) trains 3 steps, checked against wasm's first loss, and its kNN
// uses 40 / 20 images.
const RUNS: Record<'wasm' | 'webgl' | 'webgpu', Run> = {
  wasm: { ...SMALL, steps: 24 },
  webgl: { ...SMALL, steps: 24 },
  webgpu: { ...SMALL, steps: 3, knnTrain: 40, knnTest: 20 },
};
// Loss windows: over seeds 0-7 on wasm (24 steps, batch 16, NT-Xent chance ln(31) = 3.43), the
// mean of the last 5 losses was 1.0-2.5 below the mean of the first 5 (seed 0, the page's: 1.6).
const WINDOW = 5;
const MIN_FALL = 0.3;

let base: string;
let close: () => Promise<void>;
let browser: Browser;

beforeAll(async () => {
  // No file watching: other work in the tree must not reload the page mid-run.
  const config: InlineConfig = {
    configFile: join(root, 'demo/web/vite.config.ts'),
    logLevel: 'warn',
    cacheDir: join(shots, 'demo-page-vite-cache'),
    server: { host: '127.0.0.1', port: 0, hmr: false, watch: null },
  };
  if (process.env.DEMO_PAGE_BUILD === '1') {
    const out = mkdtempSync(join(tmpdir(), 'tfjs-contrastive-demo-'));
    await build({
      ...config,
      build: { outDir: out, emptyOutDir: true, minify: false, reportCompressedSize: false },
    });
    const server = await preview({
      ...config,
      build: { outDir: out },
      preview: { host: '127.0.0.1', port: 0, open: false },
    });
    base = server.resolvedUrls?.local[0] ?? '';
    close = async () => {
      await new Promise<void>((r) => server.httpServer.close(() => r()));
      rmSync(out, { recursive: true, force: true });
    };
  } else {
    const server = await createServer(config);
    await server.listen();
    base = server.resolvedUrls?.local[0] ?? '';
    close = () => server.close();
  }
  if (base === '') throw new Error('vite reported no URL');
  browser = await launchChromium();
  mkdirSync(shots, { recursive: true });
});

afterAll(async () => {
  await browser.close();
  await close();
});

// Resolves when the page is done or reports an error; rejects at once on an uncaught page error.
async function waitForDemo(page: Page, timeout: number): Promise<void> {
  let onError: (e: Error) => void = () => undefined;
  const crashed = new Promise<never>((_, reject) => {
    onError = (e) => reject(new Error(`page error: ${e.message}`));
    page.on('pageerror', onError);
  });
  try {
    await Promise.race([
      page.waitForFunction(
        () => {
          // demoState appears once the page's module has run.
          const state = (window as Partial<Window>).demoState;
          return state !== undefined && (state.done || state.error !== null);
        },
        undefined,
        { timeout, polling: 250 },
      ),
      crashed,
    ]);
  } finally {
    page.off('pageerror', onError);
  }
}

async function runDemo(backend: string, run: Run): Promise<{ state: DemoState; text: string }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  try {
    const query = new URLSearchParams({
      backend,
      autostart: '1',
      steps: String(run.steps),
      batch: String(run.batch),
      widths: run.widths,
      knnTrain: String(run.knnTrain),
      knnTest: String(run.knnTest),
    });
    await page.goto(`${base}?${query.toString()}`);
    await waitForDemo(page, 150_000);
    const state = await page.evaluate(() => window.demoState);
    const text = await page.locator('body').innerText();
    await page.screenshot({ path: join(shots, `demo-page-${backend}.png`), fullPage: true });
    return { state, text };
  } finally {
    await page.close();
  }
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const round = (xs: readonly number[]): string => xs.map((l) => l.toFixed(3)).join(' ');

// What every backend's page must show: the backend asked for, the steps, finite losses, kNN
// accuracies in [0, 1] and on the page, measured images/s.
function checkPage(backend: string, run: Run, state: DemoState, text: string): void {
  expect(state.error).toBeNull();
  expect(state.backend).toBe(backend);
  expect(state.info?.name).toBe(backend);
  expect(state.stepsDone).toBe(run.steps);
  expect(state.losses).toHaveLength(run.steps);
  expect(state.losses.every((l) => Number.isFinite(l) && l > 0)).toBe(true);
  for (const v of [state.knnInit, state.knnTrained]) {
    expect(v).toBeGreaterThanOrEqual(0);
    expect(v).toBeLessThanOrEqual(1);
    expect(text).toContain(`${(100 * v!).toFixed(1)} %`);
  }
  expect(state.lastImagesPerSecond).toBeGreaterThan(0);
  expect(text).toMatch(new RegExp(`running\\s+${backend}`));
  expect(text).toContain(`${run.steps} of ${run.steps}`);
  console.log(
    `${backend}: ${run.steps} steps, losses ${round(state.losses)}; ` +
      `${state.imagesPerSecond?.toFixed(1) ?? '-'} images/s after step 1; ` +
      `kNN ${state.knnInit?.toFixed(3)} -> ${state.knnTrained?.toFixed(3)}; ` +
      `seconds ${JSON.stringify(state.seconds)}`,
  );
}

describe('the browser demo (demo/web) in headless Chromium', () => {
  let wasmLosses: number[] | undefined;

  it('wasm (SIMD, threads: the page is cross-origin isolated): the loss falls', async () => {
    const run = RUNS.wasm;
    const { state, text } = await runDemo('wasm', run);
    checkPage('wasm', run, state, text);
    expect(state.info).toMatchObject({ simd: true });
    expect(state.info?.threads).toBeGreaterThan(1);
    // NT-Xent starts near chance, ln(2B - 1) (an untrained encoder cannot tell the views apart;
    // seeds 0-7 started at 3.7-7.6), and falls as the views become recognisable.
    expect(state.losses[0]).toBeGreaterThan(0.9 * Math.log(2 * run.batch - 1));
    const [first, last] = [state.losses.slice(0, WINDOW), state.losses.slice(-WINDOW)];
    expect(mean(last), round(state.losses)).toBeLessThan(mean(first) - MIN_FALL);
    wasmLosses = state.losses;
  }, 180_000);

  it('webgl (SwiftShader): the loss falls, and the first steps match wasm', async () => {
    const run = RUNS.webgl;
    const { state, text } = await runDemo('webgl', run);
    checkPage('webgl', run, state, text);
    expect(state.info).toMatchObject({ float32: true });
    const [first, last] = [state.losses.slice(0, WINDOW), state.losses.slice(-WINDOW)];
    expect(mean(last), round(state.losses)).toBeLessThan(mean(first) - MIN_FALL);
    // Same seed, same run length: same initial weights, views, batches and schedule as on wasm,
    // so the first steps agree up to float32 summation order.
    if (wasmLosses !== undefined) {
      state.losses.slice(0, 3).forEach((l, i) => {
        expect(Math.abs(l - wasmLosses![i]!)).toBeLessThan(0.05);
      });
    }
  }, 180_000);

  it('webgpu (SwiftShader): trains a few steps, the first loss matches wasm', async () => {
    const run = RUNS.webgpu;
    const { state, text } = await runDemo('webgpu', run);
    checkPage('webgpu', run, state, text);
    expect(state.info).toMatchObject({ float32: true });
    // The first step's loss comes before any update, so it does not depend on the run length.
    if (wasmLosses !== undefined) {
      expect(Math.abs(state.losses[0]! - wasmLosses[0]!)).toBeLessThan(0.01);
    }
  }, 180_000);
});
