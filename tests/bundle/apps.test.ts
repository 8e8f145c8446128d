/**
 * Two browser apps built the way tfjs apps are: each installs the library and ONE backend, imports
 * that backend itself, and is bundled by Vite (programmatic `build()`) and by esbuild. Each bundle
 * is served on 127.0.0.1 and run in headless Chromium, which reports the backend, an NT-Xent loss
 * and one SGD step; the numbers are checked against the same step on cpu in Node.
 *
 * Each app's node_modules holds what `npm install` would put there: a copy of the built library
 * (so that it resolves nothing from this repository), tfjs-core, tfjs-layers, the backend, and
 * tfjs-backend-cpu, which both backend packages depend on (npm hoists it), linked from this
 * repository (a linked package resolves its own imports from its real path, which is what it
 * needs; the library is copied, so it sees only the app's node_modules).
 *
 * A plugin also records which backend packages the library's own files ask the bundler for. None
 * may be asked for: Vite 7 turns a missing optional peer into a stub that throws at run time, and
 * esbuild leaves an unresolvable import() inside try/catch to the browser, so both still build;
 * webpack and plain Rollup fail, and a hoisted package (cpu here) is bundled for nothing.
 */
import { build as esbuild, type Plugin as EsbuildPlugin } from 'esbuild';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-layers';
import {
  cpSync,
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, resolve, sep } from 'node:path';
import type { Browser } from 'playwright-core';
import { build as viteBuild, type Plugin as VitePlugin } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackendInfo } from '../../src/index.js';
import { ntXentLoss } from '../../src/losses/index.js';
import { launchChromium } from '../browser/chromium.js';
import { contrastiveStep, type StepReport } from './fixtures/apps/step.js';

const root = resolve(import.meta.dirname, '../..');
const fixtures = join(import.meta.dirname, 'fixtures/apps');
const work = mkdtempSync(join(tmpdir(), 'tfjs-contrastive-apps-'));

type AppName = 'webgl' | 'wasm';
type Bundler = 'vite' | 'esbuild';
const APPS: Record<AppName, string> = {
  webgl: '@tensorflow/tfjs-backend-webgl',
  wasm: '@tensorflow/tfjs-backend-wasm',
};

interface Attempt<T> {
  ok?: T;
  error?: string;
}
interface PageResult {
  info: BackendInfo;
  step: StepReport;
  missing: Attempt<BackendInfo>;
  auto: Attempt<BackendInfo>;
  withoutModule?: Attempt<BackendInfo>;
  cores?: number;
}

/** A backend package imported by one of the library's files, as a bundler was asked to resolve it. */
interface Request {
  readonly specifier: string;
  /** The library file, relative to its dist folder, chunk hashes dropped. */
  readonly from: string;
}

const LIBRARY_DIR = `${sep}node_modules${sep}tfjs-contrastive${sep}`;

function recordRequest(requests: Request[], specifier: string, importer: string | undefined): void {
  if (!/^@tensorflow\/tfjs-backend-/.test(specifier) || !importer?.includes(LIBRARY_DIR)) return;
  const file = importer.slice(importer.lastIndexOf(sep) + 1);
  requests.push({ specifier, from: file.replace(/-[A-Z0-9]{8}(?=\.)/, '') });
}

function makeApp(app: AppName): string {
  const dir = join(work, app);
  const lib = join(dir, 'node_modules/tfjs-contrastive');
  mkdirSync(lib, { recursive: true });
  cpSync(join(root, 'dist'), join(lib, 'dist'), { recursive: true });
  cpSync(join(root, 'package.json'), join(lib, 'package.json'));
  mkdirSync(join(dir, 'node_modules/@tensorflow'));
  for (const pkg of ['tfjs-core', 'tfjs-layers', 'tfjs-backend-cpu', APPS[app].split('/')[1]!]) {
    symlinkSync(
      join(root, 'node_modules/@tensorflow', pkg),
      join(dir, 'node_modules/@tensorflow', pkg),
    );
  }
  for (const file of ['step.ts', `${app}.ts`]) {
    cpSync(join(fixtures, file), join(dir, file === 'step.ts' ? file : 'main.ts'));
  }
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: app, private: true }));
  writeFileSync(
    join(dir, 'index.html'),
    '<!doctype html><html><body><script type="module" src="./main.ts"></script></body></html>',
  );
  return dir;
}

async function bundleWithVite(dir: string, requests: Request[]): Promise<string> {
  const outDir = join(dir, 'out-vite');
  const recorder: VitePlugin = {
    name: 'record-backend-imports',
    enforce: 'pre',
    resolveId(source, importer) {
      recordRequest(requests, source, importer);
      return null;
    },
  };
  await viteBuild({
    root: dir,
    base: './',
    configFile: false,
    logLevel: 'error',
    plugins: [recorder],
    build: { outDir, minify: false, reportCompressedSize: false, target: 'es2022' },
  });
  return outDir;
}

async function bundleWithEsbuild(dir: string, requests: Request[]): Promise<string> {
  const outDir = join(dir, 'out-esbuild');
  const recorder: EsbuildPlugin = {
    name: 'record-backend-imports',
    setup(b) {
      b.onResolve({ filter: /^@tensorflow\/tfjs-backend-/ }, (args) => {
        recordRequest(requests, args.path, args.importer);
        return undefined;
      });
    },
  };
  await esbuild({
    absWorkingDir: dir,
    entryPoints: { main: 'main.ts' },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outdir: outDir,
    logLevel: 'silent',
    plugins: [recorder],
  });
  writeFileSync(
    join(outDir, 'index.html'),
    '<!doctype html><html><body><script type="module" src="./main.js"></script></body></html>',
  );
  return outDir;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.wasm': 'application/wasm',
};

// Cross-origin isolated, as wasm threads need (see tests/browser/server.ts).
function serve(routes: Record<string, string>): Promise<{ server: Server; base: string }> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const [, prefix = '', ...rest] = path.split('/');
    const dir = routes[prefix];
    const file = dir === undefined ? '' : join(dir, ...rest);
    if (dir === undefined || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, {
      'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
    });
    createReadStream(file).pipe(res);
  });
  return new Promise((r) =>
    server.listen(0, '127.0.0.1', () => {
      r({ server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
    }),
  );
}

const requests: Record<`${Bundler}-${AppName}`, Request[]> = {
  'vite-webgl': [],
  'esbuild-webgl': [],
  'vite-wasm': [],
  'esbuild-wasm': [],
};
const results: Partial<Record<`${Bundler}-${AppName}`, PageResult>> = {};
let reference: StepReport;
let browser: Browser | undefined;
let server: Server | undefined;

beforeAll(async () => {
  const routes: Record<string, string> = {};
  for (const app of ['webgl', 'wasm'] as const) {
    const dir = makeApp(app);
    routes[`vite-${app}`] = await bundleWithVite(dir, requests[`vite-${app}`]);
    routes[`esbuild-${app}`] = await bundleWithEsbuild(dir, requests[`esbuild-${app}`]);
  }
  routes.wasm = join(work, 'wasm/node_modules/@tensorflow/tfjs-backend-wasm/dist');
  const served = await serve(routes);
  server = served.server;
  browser = await launchChromium();
  const open = browser;
  await Promise.all(
    (Object.keys(requests) as Array<keyof typeof requests>).map(async (key) => {
      const page = await open.newPage();
      const crashed = new Promise<never>((_, reject) => {
        page.on('pageerror', (e) => {
          reject(new Error(`${key}: ${e.message}`));
        });
      });
      await page.goto(`${served.base}/${key}/index.html`);
      await Promise.race([
        page.waitForFunction(() => 'result' in window, undefined, { timeout: 60_000 }),
        crashed,
      ]);
      const result = (await page.evaluate(
        () => (window as unknown as { result: unknown }).result,
      )) as Attempt<PageResult>;
      if (result.ok === undefined) throw new Error(`${key}: ${result.error ?? 'no result'}`);
      results[key] = result.ok;
      await page.close();
    }),
  );
  tf.enableProdMode();
  await tf.setBackend('cpu');
  reference = await contrastiveStep(tf, ntXentLoss);
}, 150_000);

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((r) => (server === undefined ? r() : server.close(() => r())));
  rmSync(work, { recursive: true, force: true });
});

function expectStepLikeCpu(step: StepReport): void {
  expect(Number.isFinite(step.before)).toBe(true);
  expect(step.before).toBeCloseTo(reference.before, 4);
  expect(step.gradNorm).toBeCloseTo(reference.gradNorm, 3);
  expect(step.after).toBeCloseTo(reference.after, 4);
  expect(step.after).toBeLessThan(step.before);
  expect(step.leaked).toBe(0);
}

describe('a bundled app that imports one backend itself', () => {
  it('the Node reference step is a real descent step', () => {
    expect(reference.gradNorm).toBeGreaterThan(0);
    expect(reference.after).toBeLessThan(reference.before - 1e-3);
    expect(reference.leaked).toBe(0);
  });

  for (const bundler of ['vite', 'esbuild'] as const) {
    it(`${bundler}: the library's files import no backend package`, () => {
      for (const app of ['webgl', 'wasm'] as const) {
        const asked = requests[`${bundler}-${app}`];
        expect(asked).toEqual([]);
      }
    });

    it(`${bundler}, webgl app: runs on webgl, computes what cpu computes, explains a missing backend`, () => {
      const r = results[`${bundler}-webgl`]!;
      expect(r.info).toMatchObject({ name: 'webgl', environment: 'browser', float32: true });
      expectStepLikeCpu(r.step);
      expect(r.missing.error).toBe(
        "selectBackend: argument 'name' must be a backend registered with tfjs-core (by importing @tensorflow/tfjs-backend-wasm), but received 'wasm', which is not registered, and whose package cannot be loaded on demand in a browser. Add import '@tensorflow/tfjs-backend-wasm'; to your app before calling selectBackend (bundlers cannot load it on demand).",
      );
      // 'auto' prefers webgpu, which the app did not import: skipped with a note, webgl taken.
      expect(r.auto.ok?.name).toBe('webgl');
      expect(r.auto.ok?.notes[0]).toMatch(
        /^skipped webgpu: .*Add import '@tensorflow\/tfjs-backend-webgpu'; to your app/,
      );
    });

    it(`${bundler}, wasm app: runs on wasm with the module it passed (paths, threads, SIMD)`, () => {
      const r = results[`${bundler}-wasm`]!;
      expect(r.info).toMatchObject({ name: 'wasm', environment: 'browser', simd: true, notes: [] });
      // Threads are set through the module: without it tfjs would halve the cores.
      expect(r.info.threads).toBe(Math.min(8, r.cores!));
      expectStepLikeCpu(r.step);
      expect(r.withoutModule?.error).toMatch(
        /^selectBackend: argument 'options.wasmPaths' must be given together with options.wasmModule/,
      );
      expect(r.missing.error).toMatch(
        /'webgl', which is not registered.*Add import '@tensorflow\/tfjs-backend-webgl'; to your app/,
      );
      // No module passed this time: the running backend's own thread count is reported.
      expect(r.auto.ok).toMatchObject({ name: 'wasm', threads: r.info.threads });
      expect(r.auto.ok?.notes.slice(0, 2)).toEqual([
        expect.stringMatching(/^skipped webgpu: .*not registered/),
        expect.stringMatching(/^skipped webgl: .*not registered/),
      ]);
    });
  }
});

describe('the built dist', () => {
  it('keeps the on-demand import computed and marked ignored for bundlers (ESM and CJS)', () => {
    const files = readdirSync(join(root, 'dist')).filter((f) => /\.(c?js)$/.test(f));
    const backend = files.filter((f) =>
      readFileSync(join(root, 'dist', f), 'utf8').includes('bundlers cannot load it on demand'),
    );
    expect(backend.map((f) => extname(f)).sort()).toEqual(['.cjs', '.js']);
    for (const f of backend) {
      const text = readFileSync(join(root, 'dist', f), 'utf8');
      expect(text).toMatch(
        /import\(\s*\/\* webpackIgnore: true \*\/\s*\/\* @vite-ignore \*\/\s*specifier\s*\)/,
      );
      // esbuild writes string literals with double quotes; the messages quote with single ones.
      expect(text).not.toMatch(/import\(\s*"@tensorflow\/tfjs-backend-/);
    }
  });
});
